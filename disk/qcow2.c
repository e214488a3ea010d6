/*
 * qcow2.c - qcow2 images, versions 2 and 3 (the qcow2 specification in
 * QEMU's docs/interop/qcow2.txt): two-level cluster tables, refcounts of
 * any width, zero clusters, zlib-compressed clusters, backing files.
 *
 * Requests run synchronously on the submitting queue thread and
 * complete inside submit, like a page-cache hit.  Metadata is under one
 * per-image mutex; a read or in-place write whose clusters are all
 * allocated only maps them under it and does its I/O outside, so queues
 * run in parallel in the steady state.  Tables are written
 * through (no dirty metadata cache), so what reached the file is always
 * consistent:
 *   allocation: refcount of the new cluster first, then its contents,
 *   then the L2 (or L1) entry pointing at it; a crash in between leaks a
 *   cluster at worst.  With barriers (the default) an fdatasync sits
 *   between the refcount and the pointer, for power loss too.
 * New clusters are appended at the end of the file; freed ones are not
 * reused (they read as free to qemu-img check, not as leaks).
 *
 * Refused at open with a message: encryption, external data files,
 * extended L2 entries, compression other than zlib, the corrupt bit,
 * unknown incompatible features, a dirty image opened for writing, and
 * tables outside the file.  Snapshots are kept: a shared cluster or L2
 * table (no COPIED flag) is copied before it is written.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "lkvm/disk/disk.h"
#include "lkvm/lib/util.h"

#define QCOW2_MAGIC		0x514649fb
#define QCOW2_OFLAG_COPIED	(1ULL << 63)
#define QCOW2_OFLAG_COMPRESSED	(1ULL << 62)
#define QCOW2_OFLAG_ZERO	1ULL
#define QCOW2_OFFSET_MASK	0x00fffffffffffe00ULL
#define QCOW2_INCOMPAT_DIRTY	(1ULL << 0)
#define QCOW2_INCOMPAT_CORRUPT	(1ULL << 1)
#define QCOW2_INCOMPAT_KNOWN	QCOW2_INCOMPAT_DIRTY
#define QCOW2_EXT_BACKING_FMT	0xe2792aca
#define QCOW2_MAX_CHAIN		16
#define L2_CACHE		16

struct l2_cache_entry {
	uint64_t off;		/* 0: empty */
	uint64_t *table;	/* host order */
	unsigned int age;
};

struct qcow2 {
	pthread_mutex_t lock;
	uint32_t version;
	unsigned int cluster_bits;
	uint64_t cluster_size;
	uint64_t l2_entries;
	uint64_t size;
	uint64_t *l1;		/* host order */
	uint32_t l1_size;
	uint64_t l1_offset;
	uint64_t *rt;		/* refcount table, host order */
	uint64_t rt_entries;
	uint64_t rt_offset;
	unsigned int refcount_bits;
	uint64_t rb_entries;	/* refcounts per block */
	uint64_t file_end;	/* next cluster to allocate */
	bool barriers;
	struct disk *backing;	/* NULL: reads of unallocated are zero */
	struct l2_cache_entry cache[L2_CACHE];
	unsigned int tick;
	uint8_t *cbuf;		/* compressed data, 2 clusters */
};

static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
}

static void put_be64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--, v >>= 8)
		p[i] = v;
}

static int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + done, len - done,
				  off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0) {	/* past the end of the file: zeroes */
			memset((uint8_t *)buf + done, 0, len - done);
			return 0;
		}
		done += n;
	}
	return 0;
}

static int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const uint8_t *)buf + done, len - done,
				   off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += n;
	}
	return 0;
}

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
	ret = pread_full(d->fd, b, nbytes, (q->rt[ti] & ~511ULL) + bit / 8);
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

		ret = pread_full(d->fd, b, 1, blk + bit / 8);
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
static int cluster_alloc(struct disk *d, uint64_t *off)
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
static int entry_release(struct disk *d, uint64_t e)
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
static bool cluster_ok(const struct qcow2 *q, uint64_t off)
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
	if (!cluster_ok(q, off))
		return -EIO;		/* outside the image, or over metadata */
	raw = (uint8_t *)victim->table;
	ret = pread_full(d->fd, raw, q->cluster_size, off);
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

static int l2_set(struct disk *d, uint64_t l2off, uint64_t *table,
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
static int l2_lookup(struct disk *d, uint64_t vo, bool alloc,
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
	ret = cluster_alloc(d, &n);
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

/* ---- reads ---- */

static int backing_read(struct disk *d, uint8_t *buf, uint64_t off,
			uint64_t len);

static int compressed_read(struct disk *d, uint64_t e, uint8_t *out)
{
	struct qcow2 *q = d->priv;
	unsigned int x = 62 - (q->cluster_bits - 8);
	uint64_t off = e & ((1ULL << x) - 1);
	uint64_t sectors = ((e & ~QCOW2_OFLAG_COPIED & ~QCOW2_OFLAG_COMPRESSED)
			    >> x) + 1;
	uint64_t len = sectors * 512 - (off & 511);
	z_stream z;
	int ret;

	if (len > 2 * q->cluster_size)
		len = 2 * q->cluster_size;
	if (off >= q->file_end)
		return -EIO;
	ret = pread_full(d->fd, q->cbuf, len, off);
	if (ret)
		return ret;
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, -15) != Z_OK)
		return -ENOMEM;
	z.next_in = q->cbuf;
	z.avail_in = len;
	z.next_out = out;
	z.avail_out = q->cluster_size;
	ret = inflate(&z, Z_FINISH);
	/* The cluster must come out whole; trailing input is padding. */
	if ((ret != Z_STREAM_END && ret != Z_BUF_ERROR && ret != Z_OK) ||
	    z.avail_out != 0)
		ret = -EIO;
	else
		ret = 0;
	inflateEnd(&z);
	return ret;
}

/* Reads [vo, vo+len) of one cluster (len within it) into buf. */
static int cluster_read(struct disk *d, uint8_t *buf, uint64_t vo,
			uint64_t len)
{
	struct qcow2 *q = d->priv;
	uint64_t *t, l2off, e, in = vo & (q->cluster_size - 1);
	int ret;

	ret = l2_lookup(d, vo, false, &l2off, &t);
	if (ret)
		return ret;
	e = t ? t[(vo >> q->cluster_bits) & (q->l2_entries - 1)] : 0;
	if (e & QCOW2_OFLAG_COMPRESSED) {
		uint8_t *c = malloc(q->cluster_size);

		if (!c)
			return -ENOMEM;
		ret = compressed_read(d, e, c);
		if (!ret)
			memcpy(buf, c + in, len);
		free(c);
		return ret;
	}
	if (q->version >= 3 && (e & QCOW2_OFLAG_ZERO)) {
		memset(buf, 0, len);
		return 0;
	}
	if (e & QCOW2_OFFSET_MASK) {
		uint64_t ho = (e & QCOW2_OFFSET_MASK) + in;

		if (ho + len > q->file_end)
			return -EIO;
		return pread_full(d->fd, buf, len, ho);
	}
	return backing_read(d, buf, vo, len);
}

static int qcow2_read(struct disk *d, uint8_t *buf, uint64_t off, uint64_t len)
{
	struct qcow2 *q = d->priv;

	while (len) {
		uint64_t n = MIN(len, q->cluster_size -
				      (off & (q->cluster_size - 1)));
		int ret = cluster_read(d, buf, off, n);

		if (ret)
			return ret;
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int backing_read(struct disk *d, uint8_t *buf, uint64_t off,
			uint64_t len)
{
	struct qcow2 *q = d->priv;
	struct disk *b = q->backing;
	uint64_t have;

	memset(buf, 0, len);
	if (!b || off >= b->size)
		return 0;
	have = MIN(len, b->size - off);
	if (b->ops == &disk_qcow2_ops) {
		struct qcow2 *bq = b->priv;
		int ret;

		pthread_mutex_lock(&bq->lock);
		ret = qcow2_read(b, buf, off, have);
		pthread_mutex_unlock(&bq->lock);
		return ret;
	}
	return pread_full(b->fd, buf, have, off);
}

/* ---- writes ---- */

/* Writes [vo, vo+len) of one cluster from buf (NULL: zeroes). */
static int cluster_write(struct disk *d, const uint8_t *buf, uint64_t vo,
			 uint64_t len)
{
	struct qcow2 *q = d->priv;
	uint64_t *t, l2off, e, idx, in = vo & (q->cluster_size - 1), n;
	uint64_t cbase = vo & ~(q->cluster_size - 1);
	uint8_t *c;
	int ret;

	ret = l2_lookup(d, vo, true, &l2off, &t);
	if (ret)
		return ret;
	idx = (vo >> q->cluster_bits) & (q->l2_entries - 1);
	e = t[idx];
	if ((e & QCOW2_OFLAG_COPIED) && !(e & QCOW2_OFLAG_COMPRESSED) &&
	    !(e & QCOW2_OFLAG_ZERO) && (e & QCOW2_OFFSET_MASK)) {
		uint64_t ho = (e & QCOW2_OFFSET_MASK) + in;

		if (!cluster_ok(q, e & QCOW2_OFFSET_MASK))
			return -EIO;	/* would write over metadata */
		if (buf)
			return pwrite_full(d->fd, buf, len, ho);
		c = calloc(1, len);
		ret = c ? pwrite_full(d->fd, c, len, ho) : -ENOMEM;
		free(c);
		return ret;
	}
	/* A new cluster: the old contents, our bytes over them. */
	c = malloc(q->cluster_size);
	if (!c)
		return -ENOMEM;
	ret = (in || len < q->cluster_size) ?
	      cluster_read(d, c, cbase, q->cluster_size) : 0;
	if (buf)
		memcpy(c + in, buf, len);
	else
		memset(c + in, 0, len);
	if (!ret)
		ret = cluster_alloc(d, &n);
	if (!ret)
		ret = pwrite_full(d->fd, c, q->cluster_size, n);
	free(c);
	if (!ret && q->barriers && fdatasync(d->fd))
		ret = -errno;
	if (!ret)
		ret = l2_set(d, l2off, t, idx, n | QCOW2_OFLAG_COPIED);
	/* The old cluster loses this user (a snapshot may keep it). */
	if (!ret)
		ret = entry_release(d, e);
	return ret;
}

/* Discard (unmap) or v3 zero a whole cluster. */
static int cluster_unmap(struct disk *d, uint64_t vo, bool zero)
{
	struct qcow2 *q = d->priv;
	uint64_t *t, l2off, e, idx;
	int ret;

	ret = l2_lookup(d, vo, zero, &l2off, &t);
	if (ret || !t)
		return ret;
	idx = (vo >> q->cluster_bits) & (q->l2_entries - 1);
	e = t[idx];
	ret = l2_set(d, l2off, t, idx, zero ? QCOW2_OFLAG_ZERO : 0);
	if (!ret)
		ret = entry_release(d, e);
	return ret;
}

static int qcow2_write(struct disk *d, const uint8_t *buf, uint64_t off,
		       uint64_t len)
{
	struct qcow2 *q = d->priv;

	while (len) {
		uint64_t n = MIN(len, q->cluster_size -
				      (off & (q->cluster_size - 1)));
		int ret = cluster_write(d, buf, off, n);

		if (ret)
			return ret;
		if (buf)
			buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int qcow2_zero_range(struct disk *d, uint64_t off, uint64_t len,
			    bool discard)
{
	struct qcow2 *q = d->priv;

	while (len) {
		uint64_t in = off & (q->cluster_size - 1);
		uint64_t n = MIN(len, q->cluster_size - in);
		int ret;

		if (!in && n == q->cluster_size &&
		    (q->version >= 3 || (discard && !q->backing)))
			ret = cluster_unmap(d, off, q->version >= 3 && !discard ?
					    true : !q->backing ? false :
					    q->version >= 3);
		else	/* partial cluster: zeroes, so discarded reads as zero */
			ret = qcow2_write(d, NULL, off, n);
		if (ret)
			return ret;
		off += n;
		len -= n;
	}
	return 0;
}

#define QCOW2_MAX_EXTENTS 64

struct extent {
	uint64_t host, len;
};

/*
 * Maps [off, off+len) to host extents if every cluster of it is a plain
 * allocated one (for a write: also ours alone, COPIED).  Returns false
 * when any part needs the full path.  Called with the lock held; the
 * I/O itself then runs without it: clusters are never reused, so a
 * mapping that goes stale meanwhile points at a cluster nobody else
 * uses, which is what racing guest requests to one sector deserve.
 */
static bool qcow2_map(struct disk *d, uint64_t off, uint64_t len, bool write,
		      struct extent *ext, unsigned int *n)
{
	struct qcow2 *q = d->priv;

	*n = 0;
	while (len) {
		uint64_t in = off & (q->cluster_size - 1);
		uint64_t k = MIN(len, q->cluster_size - in), *t, l2off, e, host;

		if (l2_lookup(d, off, false, &l2off, &t) || !t)
			return false;
		if (write && !(q->l1[off >> (q->cluster_bits * 2 - 3)] &
			       QCOW2_OFLAG_COPIED))
			return false;
		e = t[(off >> q->cluster_bits) & (q->l2_entries - 1)];
		if ((e & QCOW2_OFLAG_COMPRESSED) || !(e & QCOW2_OFFSET_MASK) ||
		    (q->version >= 3 && (e & QCOW2_OFLAG_ZERO)) ||
		    (write && !(e & QCOW2_OFLAG_COPIED)) ||
		    !cluster_ok(q, e & QCOW2_OFFSET_MASK))
			return false;
		host = (e & QCOW2_OFFSET_MASK) + in;
		if (*n && ext[*n - 1].host + ext[*n - 1].len == host) {
			ext[*n - 1].len += k;
		} else {
			if (*n == QCOW2_MAX_EXTENTS)
				return false;
			ext[(*n)++] = (struct extent){ host, k };
		}
		off += k;
		len -= k;
	}
	return true;
}

static int extents_io(struct disk *d, uint8_t *buf, const struct extent *ext,
		      unsigned int n, bool write)
{
	unsigned int i;
	int ret = 0;

	for (i = 0; !ret && i < n; i++) {
		ret = write ? pwrite_full(d->fd, buf, ext[i].len, ext[i].host) :
			      pread_full(d->fd, buf, ext[i].len, ext[i].host);
		buf += ext[i].len;
	}
	return ret;
}

static void qcow2_submit(struct disk *d, struct aio *a, struct disk_req *r)
{
	struct qcow2 *q = d->priv;
	uint8_t *buf = NULL;
	int ret = 0;

	(void)a;
	if ((r->type == DISK_READ || r->type == DISK_WRITE) && r->len) {
		buf = malloc(r->len);
		if (!buf) {
			r->done(r, -ENOMEM);
			return;
		}
	}
	if (buf) {
		struct extent ext[QCOW2_MAX_EXTENTS];
		bool write = r->type == DISK_WRITE;
		unsigned int n;
		bool plain;

		/* Allocated clusters: map under the lock, I/O without it. */
		pthread_mutex_lock(&q->lock);
		plain = qcow2_map(d, r->off, r->len, write, ext, &n);
		pthread_mutex_unlock(&q->lock);
		if (plain) {
			if (write)
				iov_to_buf(r->iov, r->niov, 0, buf, r->len);
			ret = extents_io(d, buf, ext, n, write);
			if (!ret && !write)
				buf_to_iov(r->iov, r->niov, 0, buf, r->len);
			free(buf);
			r->done(r, ret);
			return;
		}
	}
	pthread_mutex_lock(&q->lock);
	switch (r->type) {
	case DISK_READ:
		if (r->len)
			ret = qcow2_read(d, buf, r->off, r->len);
		if (!ret && r->len)
			buf_to_iov(r->iov, r->niov, 0, buf, r->len);
		break;
	case DISK_WRITE:
		if (r->len) {
			iov_to_buf(r->iov, r->niov, 0, buf, r->len);
			ret = qcow2_write(d, buf, r->off, r->len);
		}
		break;
	case DISK_FLUSH:
		if (d->spec.cache != DISK_CACHE_UNSAFE && fdatasync(d->fd))
			ret = -errno;
		break;
	case DISK_DISCARD:
		ret = qcow2_zero_range(d, r->off, r->len, true);
		break;
	case DISK_WRITE_ZEROES:
		ret = qcow2_zero_range(d, r->off, r->len, false);
		break;
	}
	pthread_mutex_unlock(&q->lock);
	free(buf);
	r->done(r, ret);
}

/* ---- open ---- */

static bool qcow2_probe(const uint8_t *hdr, size_t n)
{
	return n >= 8 && be32(hdr) == QCOW2_MAGIC;
}

static int qcow2_open_backing(struct disk *d, const char *name,
			      const char *fmt, unsigned int depth, char *err,
			      size_t errlen)
{
	struct qcow2 *q = d->priv;
	struct disk_spec spec = { .ro = true };
	char path[PATH_MAX], dir[PATH_MAX];

	if (depth >= QCOW2_MAX_CHAIN)
		return errf(err, errlen, -ELOOP,
			    "disk %s: backing chain deeper than %d (a loop?)",
			    d->spec.path, QCOW2_MAX_CHAIN);
	if (name[0] == '/') {
		snprintf(path, sizeof(path), "%s", name);
	} else {
		snprintf(dir, sizeof(dir), "%s", d->spec.path);
		snprintf(path, sizeof(path), "%s/%s", dirname(dir), name);
	}
	spec.path = path;
	if (fmt[0])
		snprintf(spec.format, sizeof(spec.format), "%s", fmt);
	spec.depth = depth + 1;
	return disk_open(&q->backing, &spec, err, errlen);
}

static int qcow2_open(struct disk *d, char *err, size_t errlen)
{
	struct qcow2 *q = calloc(1, sizeof(*q));
	uint8_t h[112] = { 0 }, *buf = NULL;
	uint64_t incompat = 0, backing_off, ext, hdr_len, fsize = d->size;
	uint32_t backing_len, refcount_order = 4;
	char backing[1024] = "", fmt[16] = "";
	unsigned int i;
	int ret;

	if (!q)
		return errf(err, errlen, -ENOMEM, "out of memory");
	if (d->spec.cache == DISK_CACHE_NONE)
		return errf(err, errlen, -EINVAL,
			    "disk %s: cache=none (O_DIRECT) is not supported "
			    "for qcow2 yet", d->spec.path);
	d->priv = q;
	pthread_mutex_init(&q->lock, NULL);
	q->barriers = true;
	ret = pread_full(d->fd, h, sizeof(h), 0);
	if (ret)
		return errf(err, errlen, ret, "disk %s: cannot read: %s",
			    d->spec.path, strerror(-ret));
#define BAD(...) errf(err, errlen, -EINVAL, "disk %s: " __VA_ARGS__)
	q->version = be32(h + 4);
	if (q->version != 2 && q->version != 3)
		return BAD("qcow2 version %u is not supported", d->spec.path,
			   q->version);
	backing_off = be64(h + 8);
	backing_len = be32(h + 16);
	q->cluster_bits = be32(h + 20);
	q->size = be64(h + 24);
	if (q->cluster_bits < 9 || q->cluster_bits > 21)
		return BAD("bad cluster size 2^%u", d->spec.path,
			   q->cluster_bits);
	q->cluster_size = 1ULL << q->cluster_bits;
	q->l2_entries = q->cluster_size / 8;
	if (be32(h + 32))
		return BAD("encrypted qcow2 images are not supported",
			   d->spec.path);
	q->l1_size = be32(h + 36);
	q->l1_offset = be64(h + 40);
	q->rt_offset = be64(h + 48);
	q->rt_entries = (uint64_t)be32(h + 56) * q->cluster_size / 8;
	hdr_len = 72;
	if (q->version == 3) {
		incompat = be64(h + 72);
		refcount_order = be32(h + 96);
		hdr_len = be32(h + 100);
		if (incompat & QCOW2_INCOMPAT_CORRUPT)
			return BAD("the image is marked corrupt (qemu-img check -r)",
				   d->spec.path);
		if (incompat & ~QCOW2_INCOMPAT_KNOWN)
			return BAD("unsupported qcow2 features 0x%llx (external "
				   "data, extended L2 or non-zlib compression)",
				   d->spec.path,
				   (unsigned long long)(incompat &
							~QCOW2_INCOMPAT_KNOWN));
		if (hdr_len < 104 || hdr_len > q->cluster_size)
			return BAD("bad header length %llu", d->spec.path,
				   (unsigned long long)hdr_len);
	}
	if ((incompat & QCOW2_INCOMPAT_DIRTY) && !d->spec.ro)
		return BAD("the image is dirty (lazy refcounts); run qemu-img "
			   "check -r all, or open it read-only", d->spec.path);
	if (refcount_order > 6)
		return BAD("bad refcount order %u", d->spec.path, refcount_order);
	q->refcount_bits = 1u << refcount_order;
	q->rb_entries = q->cluster_size * 8 / q->refcount_bits;
	/* Tables inside the file, aligned, big enough for the disk. */
	if (q->size > (1ULL << 56) ||
	    (q->size + q->cluster_size - 1) / q->cluster_size >
	    (uint64_t)q->l1_size * q->l2_entries ||
	    q->l1_size > (32u << 20) / 8 ||
	    q->l1_offset % q->cluster_size || q->rt_offset % q->cluster_size ||
	    !q->rt_entries || q->rt_entries > (8u << 20) ||
	    !range_within(q->l1_offset, (uint64_t)q->l1_size * 8, 0, fsize) ||
	    !range_within(q->rt_offset, q->rt_entries * 8, 0, fsize) ||
	    q->l1_offset < q->cluster_size || q->rt_offset < q->cluster_size)
		return BAD("bad qcow2 tables (size, L1 or refcount table)",
			   d->spec.path);
	q->l1 = calloc(q->l1_size ? q->l1_size : 1, 8);
	q->rt = calloc(q->rt_entries, 8);
	buf = malloc(MAX((uint64_t)q->l1_size * 8, q->rt_entries * 8) + 8);
	q->cbuf = malloc(2 * q->cluster_size);
	for (i = 0; i < L2_CACHE; i++)
		q->cache[i].table = malloc(q->cluster_size);
	if (!q->l1 || !q->rt || !buf || !q->cbuf || !q->cache[L2_CACHE - 1].table)
		goto nomem;
	for (i = 0; i < L2_CACHE; i++)
		if (!q->cache[i].table)
			goto nomem;
	ret = pread_full(d->fd, buf, (uint64_t)q->l1_size * 8, q->l1_offset);
	for (i = 0; !ret && i < q->l1_size; i++)
		q->l1[i] = be64(buf + 8 * i);
	if (!ret)
		ret = pread_full(d->fd, buf, q->rt_entries * 8, q->rt_offset);
	for (i = 0; !ret && i < q->rt_entries; i++)
		q->rt[i] = be64(buf + 8 * i);
	free(buf);
	buf = NULL;
	if (ret)
		return errf(err, errlen, ret, "disk %s: %s", d->spec.path,
			    strerror(-ret));
	q->file_end = ALIGN_UP(fsize, q->cluster_size);
	for (i = 0; i < q->l1_size; i++) {
		uint64_t o = q->l1[i] & QCOW2_OFFSET_MASK;

		if (o && (o % q->cluster_size || o < q->cluster_size ||
			  o + q->cluster_size > q->file_end))
			return BAD("L1 entry %u points outside the image",
				   d->spec.path, i);
	}
	for (i = 0; i < q->rt_entries; i++) {
		uint64_t o = q->rt[i] & ~511ULL;

		if (o && (o % q->cluster_size || o < q->cluster_size ||
			  o + q->cluster_size > q->file_end))
			return BAD("refcount table entry %u points outside the "
				   "image", d->spec.path, i);
	}
	/* Header extensions: the backing file's format. */
	for (ext = hdr_len; ext + 8 <= MIN(q->cluster_size, fsize);) {
		uint8_t eh[8];
		uint32_t type, len;

		if (pread_full(d->fd, eh, 8, ext))
			break;
		type = be32(eh);
		len = be32(eh + 4);
		if (!type)
			break;
		if (type == QCOW2_EXT_BACKING_FMT && len < sizeof(fmt)) {
			if (pread_full(d->fd, fmt, len, ext + 8))
				break;
			fmt[len] = 0;
		}
		ext += 8 + ALIGN_UP((uint64_t)len, 8);
	}
	if (backing_off) {
		if (!backing_len || backing_len >= sizeof(backing) ||
		    !range_within(backing_off, backing_len, 0, q->cluster_size))
			return BAD("bad backing file name", d->spec.path);
		ret = pread_full(d->fd, backing, backing_len, backing_off);
		if (ret)
			return errf(err, errlen, ret, "disk %s: %s",
				    d->spec.path, strerror(-ret));
		backing[backing_len] = 0;
		ret = qcow2_open_backing(d, backing, fmt, d->spec.depth, err,
					 errlen);
		if (ret)
			return ret;
	}
	d->size = ALIGN_DOWN(q->size, 512);
	return 0;
nomem:
	free(buf);
	return errf(err, errlen, -ENOMEM, "out of memory");
#undef BAD
}

static void qcow2_close(struct disk *d)
{
	struct qcow2 *q = d->priv;
	unsigned int i;

	if (!q)
		return;
	disk_close(q->backing);
	for (i = 0; i < L2_CACHE; i++)
		free(q->cache[i].table);
	free(q->cbuf);
	free(q->l1);
	free(q->rt);
	pthread_mutex_destroy(&q->lock);
	free(q);
	d->priv = NULL;
}

const struct disk_ops disk_qcow2_ops = {
	.name = "qcow2",
	.probe = qcow2_probe,
	.open = qcow2_open,
	.submit = qcow2_submit,
	.close = qcow2_close,
};
