/*
 * qcow2_meta.c - qcow2 metadata: refcounts (any width) and their table,
 * cluster allocation (freed clusters again, else at the end of the
 * file), and the L2 tables, through the
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
#include <stdatomic.h>

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
	ret = pwrite_full(qcow2_fd(d), b, q->cluster_size, blk);
	free(b);
	if (!ret && bc / q->rb_entries != ti)
		ret = refcount_add(d, bc, 1);
	if (!ret)
		ret = qcow2_writeback(d, true);
	if (ret)
		return ret;
	put_be64(e, blk);
	ret = pwrite_full(qcow2_fd(d), e, 8, q->rt_offset + ti * 8);
	if (!ret)
		q->rt[ti] = blk;
	return ret;
}

/*
 * Is table index ti's block among those that exist?  (A table index past
 * the table, or a zero entry, has none.)
 */
static bool rb_exists(const struct qcow2 *q, uint64_t ti)
{
	return ti < q->rt_entries && (q->rt[ti] & ~511ULL);
}

/*
 * A refcount table with room for index need: at least twice the size,
 * written at the end of the file after the new refcount blocks that the
 * new clusters (those blocks and the table) need, each counting them.
 * Then, in order: everything durable, the header switched to the new
 * table (offset and size are neighbours: one 12-byte write), durable,
 * and only then the old table's clusters freed.  A crash before the
 * header write leaves the old table in force and the new clusters
 * leaked.
 */
static int refcount_table_grow(struct disk *d, uint64_t need)
{
	struct qcow2 *q = d->priv;
	uint64_t per = q->cluster_size / 8, rb = q->rb_entries;
	uint64_t sc = q->file_end >> q->cluster_bits, nb = 0, entries, end, ti;
	uint64_t old_off = q->rt_offset, old_cl = q->rt_entries / per, k, c;
	uint64_t *nrt;
	uint8_t *blk, h[12];
	int ret = 0;

	entries = MAX(need + 1, q->rt_entries * 2);
	for (;;) {
		uint64_t want = 0;

		entries = ALIGN_UP(entries, per);
		end = sc + nb + entries / per;
		for (ti = sc / rb; ti <= (end - 1) / rb; ti++)
			want += !rb_exists(q, ti);
		if (want == nb && (end - 1) / rb < entries)
			break;
		nb = want;
		entries = MAX(entries, (end - 1) / rb + 1);
	}
	if (entries > (8u << 20))
		return -EFBIG;
	nrt = calloc(entries, 8);
	blk = calloc(1, q->cluster_size);
	if (!nrt || !blk) {
		free(nrt);
		free(blk);
		return -ENOMEM;
	}
	memcpy(nrt, q->rt, q->rt_entries * 8);
	q->file_end = end << q->cluster_bits;
	for (ti = sc / rb, k = 0; !ret && ti <= (end - 1) / rb; ti++) {
		uint64_t lo = MAX(sc, ti * rb), hi = MIN(end, (ti + 1) * rb);

		if (rb_exists(q, ti)) {
			for (c = lo; !ret && c < hi; c++)
				ret = refcount_add(d, c, 1);
			continue;
		}
		memset(blk, 0, q->cluster_size);
		for (c = lo; c < hi; c++)
			rc_write(q, blk, c % rb, 1);
		nrt[ti] = (sc + k++) << q->cluster_bits;
		ret = pwrite_full(qcow2_fd(d), blk, q->cluster_size, nrt[ti]);
	}
	/* The new table, big-endian, after the new blocks. */
	for (k = 0; !ret && k < entries / per; k++) {
		for (c = 0; c < per; c++)
			put_be64(blk + 8 * c, nrt[k * per + c]);
		ret = pwrite_full(qcow2_fd(d), blk, q->cluster_size,
				  (sc + nb + k) << q->cluster_bits);
	}
	free(blk);
	if (!ret)
		ret = qcow2_writeback(d, true);
	if (!ret) {
		put_be64(h, (sc + nb) << q->cluster_bits);
		put_be32(h + 8, entries / per);
		ret = pwrite_full(qcow2_fd(d), h, sizeof(h), 48);
	}
	if (!ret && q->barriers && fdatasync(d->fd))
		ret = -errno;
	if (ret) {
		free(nrt);
		return ret;
	}
	free(q->rt);
	q->rt = nrt;
	q->rt_offset = (sc + nb) << q->cluster_bits;
	q->rt_entries = entries;
	for (k = 0; !ret && k < old_cl; k++)
		ret = refcount_add(d, (old_off >> q->cluster_bits) + k, -1);
	q->free_hint = MIN(q->free_hint, old_off >> q->cluster_bits);
	return ret;
}

/*
 * The cached refcount block that holds cluster's count; with create,
 * made (and the table grown) if there is none, else *blk is NULL.
 */
static int rb_for(struct disk *d, uint64_t cluster, bool create, uint8_t **blk)
{
	struct qcow2 *q = d->priv;
	uint64_t ti = cluster / q->rb_entries;
	int ret;

	*blk = NULL;
	if (!rb_exists(q, ti)) {
		if (!create)
			return 0;
		if (ti >= q->rt_entries) {
			ret = refcount_table_grow(d, ti);
			if (ret)
				return ret;
		}
		if (!rb_exists(q, ti)) {
			ret = refcount_new_block(d, ti);
			if (ret)
				return ret;
		}
	}
	ret = rb_get(d, ti, blk);
	return ret ? ret : *blk ? 0 : -EIO;
}

/* Sets a cluster's count in its cached block (rb_for made it exist). */
static void refcount_put(struct disk *d, uint8_t *blk, uint64_t cluster,
			 uint64_t rc)
{
	struct qcow2 *q = d->priv;

	rc_write(q, blk, cluster % q->rb_entries, rc);
	qcow2_cache_dirty(q, &q->rbc, blk);
	if (rc == 0 && cluster < q->free_hint)
		q->free_hint = cluster;
}

/* Adds delta to a cluster's refcount, in the cached block. */
static int refcount_add(struct disk *d, uint64_t cluster, int delta)
{
	struct qcow2 *q = d->priv;
	uint64_t rc;
	uint8_t *blk;
	int ret;

	ret = rb_for(d, cluster, delta > 0, &blk);
	if (ret)
		return ret;
	if (!blk)
		return -EIO;		/* a drop from a count never made */
	rc = rc_read(q, blk, cluster % q->rb_entries);
	if ((delta < 0 && rc == 0) || (delta > 0 && rc == qcow2_refcount_max(q)))
		return -EIO;		/* would under- or overflow */
	refcount_put(d, blk, cluster, rc + delta);
	return 0;
}

int qcow2_refcount_get(struct disk *d, uint64_t cluster, uint64_t *rc)
{
	uint8_t *blk;
	int ret = rb_for(d, cluster, false, &blk);

	*rc = !ret && blk ? rc_read(d->priv, blk,
				    cluster % ((struct qcow2 *)d->priv)->rb_entries) : 0;
	return ret;
}

int qcow2_refcount_set(struct disk *d, uint64_t cluster, uint64_t rc)
{
	uint8_t *blk;
	int ret;

	if (rc > qcow2_refcount_max(d->priv))
		return -EOVERFLOW;
	ret = rb_for(d, cluster, rc != 0, &blk);
	if (!ret && blk)
		refcount_put(d, blk, cluster, rc);
	return ret;
}

/*
 * A free cluster below the end of the file, from the hint on: true and
 * *c if one is found.  The hint only moves up past clusters in use and
 * back down when one is freed, so each is looked at about once.
 */
static bool cluster_find_free(struct disk *d, uint64_t *c)
{
	struct qcow2 *q = d->priv;
	uint64_t i, end = q->file_end >> q->cluster_bits;
	uint8_t *blk;

	for (i = MAX(q->free_hint, 1); i < end; i++) {
		uint64_t ti = i / q->rb_entries;

		if (!qcow2_cluster_ok(q, i << q->cluster_bits))
			continue;	/* header, tables: never free */
		if (!rb_exists(q, ti))
			break;		/* no block: nothing counted here */
		if (rb_get(d, ti, &blk) || !blk)
			break;
		if (!rc_read(q, blk, i % q->rb_entries))
			break;
	}
	q->free_hint = i;
	if (i >= end)
		return false;
	*c = i;
	return true;
}

int qcow2_cluster_alloc(struct disk *d, uint64_t *off, bool *fresh)
{
	struct qcow2 *q = d->priv;
	bool reused = false;
	uint64_t c;
	int ret;

	/*
	 * A freed cluster is taken again only while no request maps
	 * clusters outside the lock: one mapped before the free could
	 * still be writing to it.
	 */
	if (!atomic_load_explicit(&q->inflight, memory_order_acquire) &&
	    cluster_find_free(d, &c)) {
		reused = true;
		c <<= q->cluster_bits;
	} else {
		c = q->file_end;
		q->file_end += q->cluster_size;
	}
	if (fresh)
		*fresh = !reused;
	ret = refcount_add(d, c >> q->cluster_bits, 1);
	if (ret)
		return ret;
	*off = c;
	return 0;
}

/*
 * Drops one reference from every host cluster entries e[0..n) used, once
 * their new values (already in the cache) are safe on disk: one
 * write-back and sync for all of them.
 */
int qcow2_entries_release(struct disk *d, const uint64_t *e, size_t n)
{
	struct qcow2 *q = d->priv;
	unsigned int x = 62 - (q->cluster_bits - 8);
	uint64_t first, last, c;
	bool synced = false;
	size_t i;
	int ret;

	for (i = 0; i < n; i++) {
		if (e[i] & QCOW2_OFLAG_COMPRESSED) {
			uint64_t off = e[i] & ((1ULL << x) - 1);
			uint64_t sectors = ((e[i] & ~(QCOW2_OFLAG_COPIED |
						      QCOW2_OFLAG_COMPRESSED)) >> x) + 1;

			first = off >> q->cluster_bits;
			last = ((off & ~511ULL) + sectors * 512 - 1) >>
			       q->cluster_bits;
		} else if (e[i] & QCOW2_OFFSET_MASK) {
			first = last = (e[i] & QCOW2_OFFSET_MASK) >> q->cluster_bits;
		} else {
			continue;
		}
		/* No pointer to them may be left on disk when counts drop. */
		if (!synced) {
			ret = qcow2_writeback(d, true);
			if (ret)
				return ret;
			synced = true;
		}
		for (c = first; c <= last; c++) {
			ret = refcount_add(d, c, -1);
			if (ret)
				return ret;
		}
	}
	return 0;
}

int qcow2_entry_release(struct disk *d, uint64_t e)
{
	return qcow2_entries_release(d, &e, 1);
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
	ret = qcow2_cluster_alloc(d, &n, NULL);	/* written whole */
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
			ret = pwrite_full(qcow2_fd(d), buf, q->cluster_size, n);
		free(buf);
		old_shared = *l2off;
	} else {
		uint8_t *zero = calloc(1, q->cluster_size);

		ret = zero ? pwrite_full(qcow2_fd(d), zero, q->cluster_size, n) :
			     -ENOMEM;
		free(zero);
	}
	/* The table and its count durable before the L1 entry. */
	if (!ret)
		ret = qcow2_writeback(d, true);
	if (ret)
		return ret;
	put_be64(be, n | QCOW2_OFLAG_COPIED);
	ret = pwrite_full(qcow2_fd(d), be, 8, q->l1_offset + i1 * 8);
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
