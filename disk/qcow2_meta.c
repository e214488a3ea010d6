/*
 * qcow2_meta.c - qcow2 metadata: refcounts (any width), cluster
 * allocation at the end of the file, and the L2 tables
 * through a small write-through cache.  Runs under the image lock, on
 * whichever queue thread holds it.  Ordering for crash safety is
 * described in qcow2.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "lkvm/disk/qcow2.h"
#include "lkvm/lib/util.h"

/* ---- refcounts ---- */

static int refcount_get(struct disk *d, uint64_t cluster, uint64_t *rc)
{
	struct qcow2 *q = d->priv;
	uint64_t ti = cluster / q->rb_entries, bi = cluster % q->rb_entries;
	uint64_t bit = bi * q->refcount_bits;
	uint8_t b[8] = { 0 };
	unsigned int nbytes = (q->refcount_bits + 7) / 8;
	int ret;

	*rc = 0;
	if (ti >= q->rt_entries || !(q->rt[ti] & ~511ULL))
		return 0;
	ret = disk_pread_full(d->fd, b, nbytes,
			      (q->rt[ti] & ~511ULL) + bit / 8);
	if (ret)
		return ret;
	if (q->refcount_bits < 8) {
		*rc = (b[0] >> (bit % 8)) & ((1u << q->refcount_bits) - 1);
	} else {
		unsigned int i;

		for (i = 0; i < nbytes; i++)
			*rc = *rc << 8 | b[i];
	}
	return 0;
}

/* Writes one refcount into an existing block at blk. */
static int refcount_put(struct disk *d, uint64_t blk, uint64_t bi, uint64_t rc)
{
	struct qcow2 *q = d->priv;
	uint64_t bit = bi * q->refcount_bits;
	unsigned int nbytes = (q->refcount_bits + 7) / 8, i;
	uint8_t b[8];
	int ret;

	if (q->refcount_bits < 8) {
		unsigned int mask = ((1u << q->refcount_bits) - 1) << (bit % 8);

		ret = disk_pread_full(d->fd, b, 1, blk + bit / 8);
		if (ret)
			return ret;
		b[0] = (b[0] & ~mask) | ((rc << (bit % 8)) & mask);
	} else {
		for (i = 0; i < nbytes; i++)
			b[nbytes - 1 - i] = rc >> (8 * i);
	}
	return pwrite_full(d->fd, b, nbytes, blk + bit / 8);
}

static uint64_t refcount_max(const struct qcow2 *q)
{
	return q->refcount_bits == 64 ? UINT64_MAX :
					(1ULL << q->refcount_bits) - 1;
}

/* Adds delta to a cluster's refcount, making its refcount block if new. */
static int refcount_add(struct disk *d, uint64_t cluster, int delta)
{
	struct qcow2 *q = d->priv;
	uint64_t ti = cluster / q->rb_entries, rc;
	uint8_t e[8];
	int ret;

	if (ti >= q->rt_entries)
		return -EFBIG;		/* growing the table: not yet */
	if (!(q->rt[ti] & ~511ULL)) {
		/* A new block at the end; it may have to count itself. */
		uint64_t blk = q->file_end, bc = blk >> q->cluster_bits;
		uint8_t *zero;

		if (delta < 0)
			return -EIO;
		zero = calloc(1, q->cluster_size);
		if (!zero)
			return -ENOMEM;
		q->file_end += q->cluster_size;
		ret = pwrite_full(d->fd, zero, q->cluster_size, blk);
		free(zero);
		if (!ret && bc / q->rb_entries == ti)
			ret = refcount_put(d, blk, bc % q->rb_entries, 1);
		else if (!ret)
			ret = refcount_add(d, bc, 1);
		if (ret)
			return ret;
		if (q->barriers && fdatasync(d->fd))
			return -errno;
		put_be64(e, blk);
		ret = pwrite_full(d->fd, e, 8, q->rt_offset + ti * 8);
		if (ret)
			return ret;
		q->rt[ti] = blk;
	}
	ret = refcount_get(d, cluster, &rc);
	if (ret)
		return ret;
	if ((delta < 0 && rc == 0) || (delta > 0 && rc == refcount_max(q)))
		return -EIO;		/* would under- or overflow */
	return refcount_put(d, q->rt[ti] & ~511ULL, cluster % q->rb_entries,
			    rc + delta);
}

/* A new cluster at the end of the file, counted. */
int qcow2_cluster_alloc(struct disk *d, uint64_t *off)
{
	struct qcow2 *q = d->priv;
	uint64_t c;
	int ret;

	c = q->file_end;
	q->file_end += q->cluster_size;
	ret = refcount_add(d, c >> q->cluster_bits, 1);
	if (ret)
		return ret;
	*off = c;
	return 0;
}

/* Drops one reference from every host cluster an entry uses. */
int qcow2_entry_release(struct disk *d, uint64_t e)
{
	struct qcow2 *q = d->priv;
	unsigned int x = 62 - (q->cluster_bits - 8);
	uint64_t first, last, c;
	int ret;

	if (e & QCOW2_OFLAG_COMPRESSED) {
		uint64_t off = e & ((1ULL << x) - 1);
		uint64_t sectors = ((e & ~(QCOW2_OFLAG_COPIED |
					   QCOW2_OFLAG_COMPRESSED)) >> x) + 1;

		first = off >> q->cluster_bits;
		last = ((off & ~511ULL) + sectors * 512 - 1) >> q->cluster_bits;
	} else if (e & QCOW2_OFFSET_MASK) {
		first = last = (e & QCOW2_OFFSET_MASK) >> q->cluster_bits;
	} else {
		return 0;
	}
	for (c = first; c <= last; c++) {
		ret = refcount_add(d, c, -1);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * May a table or data cluster live at host offset off?  Not in the
 * header, the L1 table or the refcount table, not past the end: a
 * hostile image must not make us write over its own metadata.
 */
bool qcow2_cluster_ok(const struct qcow2 *q, uint64_t off)
{
	return off >= q->cluster_size && off % q->cluster_size == 0 &&
	       off + q->cluster_size <= q->file_end &&
	       !range_overlaps(off, q->cluster_size, q->l1_offset,
			       (uint64_t)q->l1_size * 8) &&
	       !range_overlaps(off, q->cluster_size, q->rt_offset,
			       q->rt_entries * 8);
}

/* ---- L2 tables (write-through cache) ---- */

static int l2_get(struct disk *d, uint64_t off, uint64_t **table)
{
	struct qcow2 *q = d->priv;
	struct l2_cache_entry *victim = &q->cache[0];
	unsigned int i;
	uint8_t *raw;
	int ret;

	for (i = 0; i < L2_CACHE; i++) {
		if (q->cache[i].off == off) {
			q->cache[i].age = ++q->tick;
			*table = q->cache[i].table;
			return 0;
		}
		if (q->cache[i].age < victim->age)
			victim = &q->cache[i];
	}
	if (!qcow2_cluster_ok(q, off))
		return -EIO;		/* outside the image, or over metadata */
	raw = (uint8_t *)victim->table;
	ret = disk_pread_full(d->fd, raw, q->cluster_size, off);
	if (ret) {
		victim->off = 0;
		return ret;
	}
	for (i = 0; i < q->l2_entries; i++)
		victim->table[i] = be64(raw + 8 * i);
	victim->off = off;
	victim->age = ++q->tick;
	*table = victim->table;
	return 0;
}

int qcow2_l2_set(struct disk *d, uint64_t l2off, uint64_t *table,
		 uint64_t idx, uint64_t val)
{
	uint8_t e[8];

	put_be64(e, val);
	table[idx] = val;
	return pwrite_full(d->fd, e, 8, l2off + idx * 8);
}

static void l2_forget(struct qcow2 *q, uint64_t off)
{
	unsigned int i;

	for (i = 0; i < L2_CACHE; i++)
		if (q->cache[i].off == off)
			q->cache[i].off = 0;
}

/* The L2 table for guest offset vo; with alloc, one that may be written. */
int qcow2_l2_lookup(struct disk *d, uint64_t vo, bool alloc,
		    uint64_t *l2off, uint64_t **table)
{
	struct qcow2 *q = d->priv;
	uint64_t i1 = vo >> (q->cluster_bits * 2 - 3), e = q->l1[i1], n;
	uint8_t be[8];
	int ret;

	*l2off = e & QCOW2_OFFSET_MASK;
	if (*l2off && (!alloc || (e & QCOW2_OFLAG_COPIED)))
		return l2_get(d, *l2off, table);
	if (!alloc) {
		*table = NULL;
		return 0;
	}
	/* New table, or a copy of one a snapshot shares. */
	ret = qcow2_cluster_alloc(d, &n);
	if (ret)
		return ret;
	if (*l2off) {
		uint64_t *old, i;
		uint8_t *buf = malloc(q->cluster_size);

		ret = buf ? l2_get(d, *l2off, &old) : -ENOMEM;
		for (i = 0; !ret && i < q->l2_entries; i++) {
			uint64_t o = old[i] & QCOW2_OFFSET_MASK;

			/*
			 * Refcounts count L1 tables a cluster is reachable
			 * from: the snapshot's still reaches it through the
			 * old table, ours through the copy; no change.
			 */
			(void)o;
			put_be64(buf + 8 * i, old[i] & ~QCOW2_OFLAG_COPIED);
		}
		if (!ret)
			ret = pwrite_full(d->fd, buf, q->cluster_size, n);
		free(buf);
		if (!ret)
			ret = refcount_add(d, *l2off >> q->cluster_bits, -1);
	} else {
		uint8_t *zero = calloc(1, q->cluster_size);

		ret = zero ? pwrite_full(d->fd, zero, q->cluster_size, n) :
			     -ENOMEM;
		free(zero);
	}
	if (ret)
		return ret;
	if (q->barriers && fdatasync(d->fd))
		return -errno;
	put_be64(be, n | QCOW2_OFLAG_COPIED);
	ret = pwrite_full(d->fd, be, 8, q->l1_offset + i1 * 8);
	if (ret)
		return ret;
	q->l1[i1] = n | QCOW2_OFLAG_COPIED;
	l2_forget(q, n);
	*l2off = n;
	return l2_get(d, n, table);
}
