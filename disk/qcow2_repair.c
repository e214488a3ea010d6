/*
 * qcow2_repair.c - rebuilding the refcounts of an image that was left
 * dirty: open for writing with lazy refcounts when its writer died, so
 * its refcount blocks may lag behind its tables.  The tables are the
 * truth (they were written in order, qcow2_cache.c); the counts are
 * derived from them the way the qcow2 specification defines them: one
 * reference per L1 table a cluster is reached from, plus one for each
 * table cluster itself (header, L1, refcount table and blocks, snapshot
 * table, snapshot L1 tables).  Counts that differ are set, leaks freed
 * included, and COPIED in the active tables is made to say "count is
 * 1".  Then everything is written back and synced.
 *
 * Runs once, in qcow2_open, before the write-back thread or any queue
 * exists: the lock is not needed.  Every table pointer read here comes
 * from the file and is checked against it; a bad one refuses the open.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lkvm/disk/qcow2.h"
#include "lkvm/lib/util.h"

struct walk {
	struct disk *d;
	uint32_t *cnt;		/* references per cluster of the file */
	uint64_t n;		/* clusters in the file */
	uint8_t *buf;		/* a cluster: an L2 table being read */
	const char *bad;	/* what pointed outside, for the message */
};

/* One more reference to each cluster of [off, off + len). */
static int count(struct walk *w, uint64_t off, uint64_t len, const char *what)
{
	struct qcow2 *q = w->d->priv;
	uint64_t c, last;

	if (!len)
		return 0;
	last = (off + len - 1) >> q->cluster_bits;
	if (off + len < off || last >= w->n) {
		w->bad = what;
		return -EINVAL;
	}
	for (c = off >> q->cluster_bits; c <= last; c++) {
		if (w->cnt[c] == UINT32_MAX)
			return -EOVERFLOW;
		w->cnt[c]++;
	}
	return 0;
}

/* The clusters an L2 entry's descriptor points at. */
static int count_entry(struct walk *w, uint64_t e)
{
	struct qcow2 *q = w->d->priv;

	if (e & QCOW2_OFLAG_COMPRESSED) {
		unsigned int x = 62 - (q->cluster_bits - 8);
		uint64_t off = e & ((1ULL << x) - 1);
		uint64_t sectors = ((e & ~(QCOW2_OFLAG_COPIED |
					   QCOW2_OFLAG_COMPRESSED)) >> x) + 1;

		return count(w, off & ~511ULL, sectors * 512, "compressed data");
	}
	if (!(e & QCOW2_OFFSET_MASK))
		return 0;
	if ((e & QCOW2_OFFSET_MASK) % q->cluster_size) {
		w->bad = "an unaligned data cluster";
		return -EINVAL;
	}
	return count(w, e & QCOW2_OFFSET_MASK, q->cluster_size, "a data cluster");
}

/* An L1 table (host order) and everything its L2 tables point at. */
static int walk_l1(struct walk *w, const uint64_t *l1, uint64_t n1)
{
	struct qcow2 *q = w->d->priv;
	unsigned int step = q->ext_l2 ? 16 : 8;
	uint64_t i, j, o;
	int ret;

	for (i = 0; i < n1; i++) {
		o = l1[i] & QCOW2_OFFSET_MASK;
		if (!o)
			continue;
		if (o % q->cluster_size) {
			w->bad = "an unaligned L2 table";
			return -EINVAL;
		}
		ret = count(w, o, q->cluster_size, "an L2 table");
		if (!ret)
			ret = disk_pread_full(qcow2_fd(w->d), w->buf,
					      q->cluster_size, o);
		for (j = 0; !ret && j < q->l2_entries; j++)
			ret = count_entry(w, be64(w->buf + j * step));
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * The snapshot table: each entry's L1 table, and the table itself.  The
 * entry layout (a fixed part of 40 bytes, extra data, id, name, padded
 * to 8) is the qcow2 specification's.
 */
static int walk_snapshots(struct walk *w, uint32_t nsnap, uint64_t off)
{
	struct qcow2 *q = w->d->priv;
	uint64_t at = off, *l1 = NULL;
	uint8_t sh[40];
	uint32_t i, k;
	int ret = 0;

	if (nsnap > QCOW2_MAX_SNAPSHOTS || off % 8) {
		w->bad = "the snapshot table";
		return -EINVAL;
	}
	for (i = 0; !ret && i < nsnap; i++) {
		uint64_t l1_off, l1_size;

		ret = disk_pread_full(qcow2_fd(w->d), sh, sizeof(sh), at);
		if (ret)
			break;
		l1_off = be64(sh);
		l1_size = be32(sh + 8);
		if (l1_off % q->cluster_size || l1_size > (32u << 20) / 8) {
			w->bad = "a snapshot's L1 table";
			ret = -EINVAL;
			break;
		}
		ret = count(w, l1_off, l1_size * 8, "a snapshot's L1 table");
		free(l1);
		l1 = malloc(MAX(l1_size, 1) * 8);
		if (!ret && !l1)
			ret = -ENOMEM;
		if (!ret)
			ret = disk_pread_full(qcow2_fd(w->d), l1, l1_size * 8,
					      l1_off);
		for (k = 0; !ret && k < l1_size; k++)
			l1[k] = be64((uint8_t *)&l1[k]);
		if (!ret)
			ret = walk_l1(w, l1, l1_size);
		/* extra data, then the id and the name */
		at += ALIGN_UP(40ULL + be32(sh + 36) + (sh[12] << 8 | sh[13]) +
			       (sh[14] << 8 | sh[15]), 8);
	}
	free(l1);
	return ret ? ret : count(w, off, at - off, "the snapshot table");
}

/* COPIED in the active L1 and L2 tables: set exactly where the count is 1. */
static int fix_copied(struct walk *w)
{
	struct qcow2 *q = w->d->priv;
	uint64_t i, j, *t, l2off;
	uint8_t be[8];
	int ret;

	for (i = 0; i < q->l1_size; i++) {
		uint64_t o = q->l1[i] & QCOW2_OFFSET_MASK, want;

		if (!o)
			continue;
		want = o | (w->cnt[o >> q->cluster_bits] == 1 ?
			    QCOW2_OFLAG_COPIED : 0);
		if (want != q->l1[i]) {
			put_be64(be, want);
			ret = pwrite_full(qcow2_fd(w->d), be, 8,
					  q->l1_offset + i * 8);
			if (ret)
				return ret;
			q->l1[i] = want;
		}
		ret = qcow2_l2_lookup(w->d, i << (q->cluster_bits + q->l2_bits),
				      false, &l2off, &t);
		for (j = 0; !ret && j < q->l2_entries; j++) {
			uint64_t e = *qcow2_l2_desc(q, t, j), c, ne;

			c = (e & QCOW2_OFFSET_MASK) >> q->cluster_bits;
			if (e & QCOW2_OFLAG_COMPRESSED)
				ne = e & ~QCOW2_OFLAG_COPIED;
			else if (!c)
				ne = e;
			else
				ne = (e & ~QCOW2_OFLAG_COPIED) |
				     (w->cnt[c] == 1 ? QCOW2_OFLAG_COPIED : 0);
			if (ne != e)
				ret = qcow2_l2_set(w->d, t, j, ne,
						   qcow2_l2_bitmap(q, t, j));
		}
		if (ret)
			return ret;
	}
	return 0;
}

/* Every count that differs from the one the tables give is set. */
static int apply(struct walk *w)
{
	struct qcow2 *q = w->d->priv;
	uint64_t ti, c, rc, want, nt = q->rt_entries;
	uint64_t max = qcow2_refcount_max(q);
	int ret;

	for (c = 0; c < w->n; c++)
		if (w->cnt[c] > max)
			return -EOVERFLOW;
	/* Blocks that exist: no allocation, so the table stays put. */
	for (ti = 0; ti < nt; ti++) {
		if (!(q->rt[ti] & ~511ULL))
			continue;
		for (c = ti * q->rb_entries; c < (ti + 1) * q->rb_entries; c++) {
			want = c < w->n ? w->cnt[c] : 0;
			ret = qcow2_refcount_get(w->d, c, &rc);
			if (!ret && rc != want)
				ret = qcow2_refcount_set(w->d, c, want);
			if (ret)
				return ret;
		}
	}
	/*
	 * Referenced clusters no block covers: blocks are made at the end
	 * of the file, counting themselves (past w->n, not in cnt).
	 */
	for (c = 0; c < w->n; c++) {
		ti = c / q->rb_entries;
		if (!w->cnt[c] || (ti < nt && (q->rt[ti] & ~511ULL)))
			continue;
		ret = qcow2_refcount_set(w->d, c, w->cnt[c]);
		if (ret)
			return ret;
	}
	return 0;
}

int qcow2_repair(struct disk *d, char *err, size_t errlen)
{
	struct qcow2 *q = d->priv;
	struct walk w = { .d = d, .n = q->file_end >> q->cluster_bits };
	uint8_t h[72];
	uint64_t i;
	int ret;

	w.cnt = calloc(MAX(w.n, 1), sizeof(*w.cnt));
	w.buf = malloc(q->cluster_size);
	ret = w.cnt && w.buf ? 0 : -ENOMEM;
	if (!ret)
		ret = disk_pread_full(qcow2_fd(d), h, sizeof(h), 0);
	if (!ret)
		ret = count(&w, 0, q->cluster_size, "the header");
	if (!ret)
		ret = count(&w, q->l1_offset, (uint64_t)q->l1_size * 8,
			    "the L1 table");
	if (!ret)
		ret = count(&w, q->rt_offset, q->rt_entries * 8,
			    "the refcount table");
	for (i = 0; !ret && i < q->rt_entries; i++)
		if (q->rt[i] & ~511ULL)
			ret = count(&w, q->rt[i] & ~511ULL, q->cluster_size,
				    "a refcount block");
	if (!ret)
		ret = walk_l1(&w, q->l1, q->l1_size);
	if (!ret && be32(h + 60))
		ret = walk_snapshots(&w, be32(h + 60), be64(h + 64));
	if (!ret)
		ret = apply(&w);
	if (!ret)
		ret = fix_copied(&w);
	if (!ret)
		ret = qcow2_writeback(d, true);
	q->free_hint = 0;
	free(w.cnt);
	free(w.buf);
	if (ret == -EINVAL)
		return input_errf(err, errlen, ret,
				  "disk %s: dirty image: %s points outside "
				  "the image; run qemu-img check -r all",
				  d->spec.path, w.bad ? w.bad : "a table");
	if (ret == -EOVERFLOW)
		return errf(err, errlen, ret,
			    "disk %s: dirty image: a cluster has more "
			    "references than its refcount can hold",
			    d->spec.path);
	if (ret)
		return errf(err, errlen, ret,
			    "disk %s: repairing the refcounts of a dirty "
			    "image: %s", d->spec.path, strerror(-ret));
	return 0;
}
