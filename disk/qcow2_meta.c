/*
 * qcow2_meta.c - qcow2 metadata: refcounts (any width), cluster
 * allocation at the end of the file, and the L2 tables, through the
 * cache of qcow2_cache.c.  Runs under the image lock, on whichever
 * queue thread holds it.  Ordering for crash safety is described in
 * qcow2_cache.c.
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

/* ---- refcounts (cached blocks) ---- */

/* The refcount block for table index ti, or NULL if it has none. */
static int rb_get(struct disk *d, uint64_t ti, uint8_t **blk)
{
	struct qcow2 *q = d->priv;
	uint64_t off = ti < q->rt_entries ? q->rt[ti] & ~511ULL : 0;

	*blk = NULL;
	if (!off)
		return 0;
	return qcow2_cache_get(d, &q->rbc, off, (void **)blk);
}

static uint64_t rc_read(const struct qcow2 *q, const uint8_t *blk, uint64_t bi)
{
	uint64_t bit = bi * q->refcount_bits, rc = 0;
	unsigned int nbytes = (q->refcount_bits + 7) / 8, i;

	if (q->refcount_bits < 8)
		return (blk[bit / 8] >> (bit % 8)) &
		       ((1u << q->refcount_bits) - 1);
	for (i = 0; i < nbytes; i++)
		rc = rc << 8 | blk[bit / 8 + i];
	return rc;
}

static void rc_write(const struct qcow2 *q, uint8_t *blk, uint64_t bi,
		     uint64_t rc)
{
	uint64_t bit = bi * q->refcount_bits;
	unsigned int nbytes = (q->refcount_bits + 7) / 8, i;

	if (q->refcount_bits < 8) {
		unsigned int mask = ((1u << q->refcount_bits) - 1) << (bit % 8);

		blk[bit / 8] = (blk[bit / 8] & ~mask) | ((rc << (bit % 8)) & mask);
		return;
	}
	for (i = 0; i < nbytes; i++)
		blk[bit / 8 + nbytes - 1 - i] = rc >> (8 * i);
}

static uint64_t refcount_max(const struct qcow2 *q)
{
	return q->refcount_bits == 64 ? UINT64_MAX :
					(1ULL << q->refcount_bits) - 1;
}

static int refcount_add(struct disk *d, uint64_t cluster, int delta);

/*
 * A new refcount block for table index ti, at the end of the file.  It
 * is written whole (counting itself if it covers itself), then, with
 * the block that counts it if another does, made durable before the
 * table entry that points at it is written: written through, since it
 * happens once per rb_entries clusters.
 */
static int refcount_new_block(struct disk *d, uint64_t ti)
{
	struct qcow2 *q = d->priv;
	uint64_t blk = q->file_end, bc = blk >> q->cluster_bits;
	uint8_t *b, e[8];
	int ret;

	b = calloc(1, q->cluster_size);
	if (!b)
		return -ENOMEM;
	q->file_end += q->cluster_size;
	if (bc / q->rb_entries == ti)
		rc_write(q, b, bc % q->rb_entries, 1);
	ret = pwrite_full(d->fd, b, q->cluster_size, blk);
	free(b);
	if (!ret && bc / q->rb_entries != ti)
		ret = refcount_add(d, bc, 1);
	if (!ret)
		ret = qcow2_writeback(d, true);
	if (ret)
		return ret;
	put_be64(e, blk);
	ret = pwrite_full(d->fd, e, 8, q->rt_offset + ti * 8);
	if (!ret)
		q->rt[ti] = blk;
	return ret;
}

/* Adds delta to a cluster's refcount, in the cached block. */
static int refcount_add(struct disk *d, uint64_t cluster, int delta)
{
	struct qcow2 *q = d->priv;
	uint64_t ti = cluster / q->rb_entries, rc;
	uint8_t *blk;
	int ret;

	if (ti >= q->rt_entries)
		return -EFBIG;		/* growing the table: not yet */
	if (!(q->rt[ti] & ~511ULL)) {
		if (delta < 0)
			return -EIO;
		ret = refcount_new_block(d, ti);
		if (ret)
			return ret;
	}
	ret = rb_get(d, ti, &blk);
	if (ret)
		return ret;
	if (!blk)
		return -EIO;
	rc = rc_read(q, blk, cluster % q->rb_entries);
	if ((delta < 0 && rc == 0) || (delta > 0 && rc == refcount_max(q)))
		return -EIO;		/* would under- or overflow */
	rc_write(q, blk, cluster % q->rb_entries, rc + delta);
	qcow2_cache_dirty(q, &q->rbc, blk);
	return 0;
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

/*
 * Drops one reference from every host cluster an entry used, once the
 * entry's new value (already in the cache) is safe on disk.
 */
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
	/* No pointer to them may be left on disk when their counts drop. */
	ret = qcow2_writeback(d, true);
	if (ret)
		return ret;
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

/* ---- L2 tables (cached) ---- */

static int l2_get(struct disk *d, uint64_t off, uint64_t **table)
{
	struct qcow2 *q = d->priv;

	return qcow2_cache_get(d, &q->l2c, off, (void **)table);
}

/* Sets an entry of a cached table (and its bitmap); written back later. */
int qcow2_l2_set(struct disk *d, uint64_t *table, uint64_t idx, uint64_t val,
		 uint64_t bitmap)
{
	struct qcow2 *q = d->priv;

	*qcow2_l2_desc(q, table, idx) = val;
	if (q->ext_l2)
		table[2 * idx + 1] = bitmap;
	qcow2_cache_dirty(q, &q->l2c, table);
	return 0;
}

/* The L2 table for guest offset vo; with alloc, one that may be written. */
int qcow2_l2_lookup(struct disk *d, uint64_t vo, bool alloc,
		    uint64_t *l2off, uint64_t **table)
{
	struct qcow2 *q = d->priv;
	uint64_t i1 = qcow2_l1_index(q, vo), e = q->l1[i1], n;
	uint64_t old_shared = 0;
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
		/*
		 * Refcounts count L1 tables a cluster is reachable from: the
		 * snapshot's still reaches it through the old table, ours
		 * through the copy; no change.  Only COPIED goes (bitmaps of
		 * extended entries are copied as they are).
		 */
		for (i = 0; !ret && i < q->cluster_size / 8; i++)
			put_be64(buf + 8 * i,
				 q->ext_l2 && (i & 1) ? old[i] :
				 old[i] & ~QCOW2_OFLAG_COPIED);
		if (!ret)
			ret = pwrite_full(d->fd, buf, q->cluster_size, n);
		free(buf);
		old_shared = *l2off;
	} else {
		uint8_t *zero = calloc(1, q->cluster_size);

		ret = zero ? pwrite_full(d->fd, zero, q->cluster_size, n) :
			     -ENOMEM;
		free(zero);
	}
	/* The table and its count durable before the L1 entry. */
	if (!ret)
		ret = qcow2_writeback(d, true);
	if (ret)
		return ret;
	put_be64(be, n | QCOW2_OFLAG_COPIED);
	ret = pwrite_full(d->fd, be, 8, q->l1_offset + i1 * 8);
	if (ret)
		return ret;
	q->l1[i1] = n | QCOW2_OFLAG_COPIED;
	qcow2_cache_forget(&q->l2c, n);
	/* The shared table loses our reference once the L1 entry is safe. */
	if (old_shared) {
		ret = q->barriers && fdatasync(d->fd) ? -errno : 0;
		if (!ret)
			ret = refcount_add(d, old_shared >> q->cluster_bits, -1);
		if (ret)
			return ret;
	}
	*l2off = n;
	return l2_get(d, n, table);
}
