/*
 * qcow2_io.c - qcow2 requests: mapping guest ranges to clusters, reads
 * (backing files, zero and compressed clusters), writes (allocating and
 * copying shared clusters), write-zeroes and discard, and the submit
 * entry point.  On the submitting queue thread; metadata under the image
 * lock, data I/O of allocated clusters outside it, on the queue's engine
 * (io_uring) straight between the guest's buffers and the file.
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
	ret = disk_pread_full(qcow2_fd(d), q->cbuf, len, off);
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

/* Does a standard entry say its cluster reads as zeroes (v3, no bitmap)? */
static bool desc_zero(const struct qcow2 *q, uint64_t e)
{
	return !q->ext_l2 && q->version >= 3 && (e & QCOW2_OFLAG_ZERO);
}

enum sc_state { SC_ALLOC, SC_ZERO, SC_BACKING, SC_BAD };

/* What subcluster sc of an extended entry holds. */
static enum sc_state sc_state(uint64_t e, uint64_t bm, unsigned int sc)
{
	bool a = bm >> sc & 1, z = bm >> (32 + sc) & 1;

	if (a && (z || !(e & QCOW2_OFFSET_MASK)))
		return SC_BAD;	/* allocated and zero, or with no cluster */
	return a ? SC_ALLOC : z ? SC_ZERO : SC_BACKING;
}

/*
 * Reads [vo, vo+len) of a cluster with an extended entry (not
 * compressed): runs of subclusters alike, from the cluster, zeroes, or
 * the backing file.
 */
static int sub_read(struct disk *d, uint8_t *buf, uint64_t vo, uint64_t len,
		    uint64_t e, uint64_t bm)
{
	struct qcow2 *q = d->priv;
	uint64_t in = vo & (q->cluster_size - 1), cbase = vo - in;
	int ret = 0;

	while (!ret && len) {
		unsigned int sc = in / q->sc_size;
		enum sc_state st = sc_state(e, bm, sc);
		uint64_t k = MIN(len, q->sc_size - in % q->sc_size);

		while (k < len && sc_state(e, bm, (in + k) / q->sc_size) == st)
			k += MIN(len - k, q->sc_size);
		switch (st) {
		case SC_ALLOC: {
			uint64_t ho = (e & QCOW2_OFFSET_MASK) + in;

			ret = ho + k > q->file_end ? -EIO :
			      disk_pread_full(qcow2_fd(d), buf, k, ho);
			break;
		}
		case SC_ZERO:
			memset(buf, 0, k);
			break;
		case SC_BACKING:
			ret = backing_read(d, buf, cbase + in, k);
			break;
		case SC_BAD:
			ret = -EIO;
			break;
		}
		buf += k;
		in += k;
		len -= k;
	}
	return ret;
}

/* Reads [vo, vo+len) of one cluster (len within it) into buf. */
static int cluster_read(struct disk *d, uint8_t *buf, uint64_t vo,
			uint64_t len)
{
	struct qcow2 *q = d->priv;
	uint64_t *t, l2off, e, bm, in = vo & (q->cluster_size - 1), idx;
	int ret;

	ret = qcow2_l2_lookup(d, vo, false, &l2off, &t);
	if (ret)
		return ret;
	idx = qcow2_l2_index(q, vo);
	e = t ? *qcow2_l2_desc(q, t, idx) : 0;
	bm = t ? qcow2_l2_bitmap(q, t, idx) : 0;
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
	if (q->ext_l2)
		return sub_read(d, buf, vo, len, e, bm);
	if (desc_zero(q, e)) {
		memset(buf, 0, len);
		return 0;
	}
	if (e & QCOW2_OFFSET_MASK) {
		uint64_t ho = (e & QCOW2_OFFSET_MASK) + in;

		if (ho + len > q->file_end)
			return -EIO;
		return disk_pread_full(qcow2_fd(d), buf, len, ho);
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
	return disk_pread_full(b->fd, buf, have, off);
}

/* ---- writes ---- */

/* Do the contents of the cluster at guest offset cbase, entry e, read as zeroes? */
static bool old_zero(struct disk *d, uint64_t e, uint64_t cbase)
{
	struct qcow2 *q = d->priv;

	if (e & (QCOW2_OFLAG_COMPRESSED | QCOW2_OFFSET_MASK))
		return false;
	if (desc_zero(q, e))
		return true;
	return !q->backing || cbase >= q->backing->size;
}

/* Makes a reused cluster read as zeroes: a hole, or written zeroes. */
static int cluster_clear(struct disk *d, uint64_t off)
{
	struct qcow2 *q = d->priv;

	if (!fallocate(qcow2_fd(d), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
		       q->cluster_size))
		return 0;
	return disk_pwrite_zeroes(qcow2_fd(d), off, q->cluster_size);
}

/*
 * Writes [vo, vo+len) of one cluster with an extended entry, ours alone
 * or not yet allocated: only the subclusters it touches are allocated
 * and written (a 4 KiB write into a fresh overlay writes 4 KiB, where a
 * cluster would copy 64 KiB from the backing file).  A subcluster it
 * covers in part and that was not allocated gets its old contents
 * (zeroes or the backing file's) around ours.
 */
static int sub_write(struct disk *d, const uint8_t *buf, uint64_t vo,
		     uint64_t len, uint64_t *t, uint64_t idx)
{
	struct qcow2 *q = d->priv;
	uint64_t e = *qcow2_l2_desc(q, t, idx), bm = qcow2_l2_bitmap(q, t, idx);
	uint64_t in = vo & (q->cluster_size - 1), cbase = vo - in;
	unsigned int first = in / q->sc_size, last = (in + len - 1) / q->sc_size;
	uint64_t lo = in, hi = in + len, host = e & QCOW2_OFFSET_MASK;
	uint32_t mask = qcow2_sc_mask(first, last);
	uint8_t *span = NULL;
	int ret;

	if (!host) {
		/* Fresh or reused alike: unallocated subclusters are not read. */
		ret = qcow2_cluster_alloc(d, &host, NULL);
		if (ret)
			return ret;
	} else if (!qcow2_cluster_ok(q, host)) {
		return -EIO;		/* would write over metadata */
	}
	if (in % q->sc_size && !(bm >> first & 1))
		lo = (uint64_t)first * q->sc_size;
	if (hi % q->sc_size && !(bm >> last & 1))
		hi = (uint64_t)(last + 1) * q->sc_size;
	if (lo == in && hi == in + len && buf) {
		ret = pwrite_full(qcow2_fd(d), buf, len, host + in);
	} else {
		span = malloc(hi - lo);
		if (!span)
			return -ENOMEM;
		ret = lo < in ? sub_read(d, span, cbase + lo, in - lo, e, bm) : 0;
		if (!ret && hi > in + len)
			ret = sub_read(d, span + (in + len - lo), vo + len,
				       hi - in - len, e, bm);
		if (buf)
			memcpy(span + (in - lo), buf, len);
		else
			memset(span + (in - lo), 0, len);
		if (!ret)
			ret = pwrite_full(qcow2_fd(d), span, hi - lo, host + lo);
		free(span);
	}
	if (ret)
		return ret;
	bm = (bm | mask) & ~((uint64_t)mask << 32);
	return qcow2_l2_set(d, t, idx, host | QCOW2_OFLAG_COPIED, bm);
}

/* Writes [vo, vo+len) of one cluster from buf (NULL: zeroes). */
static int cluster_write(struct disk *d, const uint8_t *buf, uint64_t vo,
			 uint64_t len)
{
	struct qcow2 *q = d->priv;
	uint64_t *t, l2off, e, idx, in = vo & (q->cluster_size - 1), n;
	uint64_t cbase = vo & ~(q->cluster_size - 1);
	bool fresh;
	uint8_t *c;
	int ret;

	ret = qcow2_l2_lookup(d, vo, true, &l2off, &t);
	if (ret)
		return ret;
	idx = qcow2_l2_index(q, vo);
	e = *qcow2_l2_desc(q, t, idx);
	if (q->ext_l2 && !(e & QCOW2_OFLAG_COMPRESSED) &&
	    (!(e & QCOW2_OFFSET_MASK) || (e & QCOW2_OFLAG_COPIED)))
		return sub_write(d, buf, vo, len, t, idx);
	if (!q->ext_l2 && (e & QCOW2_OFLAG_COPIED) &&
	    !(e & QCOW2_OFLAG_COMPRESSED) && !desc_zero(q, e) &&
	    (e & QCOW2_OFFSET_MASK)) {
		uint64_t ho = (e & QCOW2_OFFSET_MASK) + in;

		if (!qcow2_cluster_ok(q, e & QCOW2_OFFSET_MASK))
			return -EIO;	/* would write over metadata */
		return buf ? pwrite_full(qcow2_fd(d), buf, len, ho) :
			     disk_pwrite_zeroes(qcow2_fd(d), ho, len);
	}
	/*
	 * A new cluster.  Where the old contents read as zeroes, only our
	 * bytes are written: new clusters lie past the end of the file, so
	 * the rest of one reads as zeroes too (a 4 KiB write into a fresh
	 * image writes 4 KiB, not a cluster).  Else (and for a shared or
	 * compressed cluster with extended entries) the old contents, our
	 * bytes over them, all subclusters allocated.
	 */
	if (!q->ext_l2 && old_zero(d, e, cbase)) {
		if (!buf)
			return 0;	/* zeroes over zeroes */
		ret = qcow2_cluster_alloc(d, &n, &fresh);
		/* A cluster used before is emptied first. */
		if (!ret && !fresh)
			ret = cluster_clear(d, n);
		if (!ret)
			ret = pwrite_full(qcow2_fd(d), buf, len, n + in);
	} else {
		c = malloc(q->cluster_size);
		if (!c)
			return -ENOMEM;
		ret = (in || len < q->cluster_size) ?
		      cluster_read(d, c, cbase, q->cluster_size) : 0;
		if (buf)
			memcpy(c + in, buf, len);
		else
			memset(c + in, 0, len);
		if (!ret)	/* written whole: fresh or reused alike */
			ret = qcow2_cluster_alloc(d, &n, NULL);
		if (!ret)
			ret = pwrite_full(qcow2_fd(d), c, q->cluster_size, n);
		free(c);
	}
	/* The pointer waits in the cache for write-back (qcow2_cache.c). */
	if (!ret)
		ret = qcow2_l2_set(d, t, idx, n | QCOW2_OFLAG_COPIED,
				   q->ext_l2 ? QCOW2_SC_ALLOC_ALL : 0);
	/* The old cluster loses this user (a snapshot may keep it). */
	if (!ret)
		ret = qcow2_entry_release(d, e);
	return ret;
}

/*
 * Discard (unmap) or v3 zero a whole cluster; the entry it held goes to
 * *old, for the caller to release (once for a whole range).
 */
static int cluster_unmap(struct disk *d, uint64_t vo, bool zero, uint64_t *old)
{
	struct qcow2 *q = d->priv;
	uint64_t *t, l2off, idx;
	int ret;

	*old = 0;
	ret = qcow2_l2_lookup(d, vo, zero, &l2off, &t);
	if (ret || !t)
		return ret;
	idx = qcow2_l2_index(q, vo);
	*old = *qcow2_l2_desc(q, t, idx);
	if (q->ext_l2)	/* zero: every subcluster reads as zero */
		return qcow2_l2_set(d, t, idx, 0, zero ? QCOW2_SC_ZERO_ALL : 0);
	return qcow2_l2_set(d, t, idx, zero ? QCOW2_OFLAG_ZERO : 0, 0);
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

#define QCOW2_RELEASE_BATCH	256

static int qcow2_zero_range(struct disk *d, uint64_t off, uint64_t len,
			    bool discard)
{
	struct qcow2 *q = d->priv;
	uint64_t old[QCOW2_RELEASE_BATCH];
	size_t n = 0;
	int ret = 0;

	while (!ret && len) {
		uint64_t in = off & (q->cluster_size - 1);
		uint64_t k = MIN(len, q->cluster_size - in);

		if (!in && k == q->cluster_size &&
		    (q->version >= 3 || (discard && !q->backing))) {
			ret = cluster_unmap(d, off, q->version >= 3 && !discard ?
					    true : !q->backing ? false :
					    q->version >= 3, &old[n]);
			/* Freed clusters: one write-back per batch of them. */
			if (!ret && old[n] && ++n == QCOW2_RELEASE_BATCH) {
				ret = qcow2_entries_release(d, old, n);
				n = 0;
			}
		} else {	/* partial cluster: zeroes, so discarded reads as zero */
			ret = qcow2_write(d, NULL, off, k);
		}
		off += k;
		len -= k;
	}
	if (!ret && n)
		ret = qcow2_entries_release(d, old, n);
	return ret;
}

struct extent {
	uint64_t host, len;
};

/*
 * Maps [off, off+len) to host extents if every cluster of it is a plain
 * allocated one (for a write: also ours alone, COPIED).  Returns false
 * when any part needs the full path.  Called with the lock held; the
 * I/O itself then runs without it.  A mapping that goes stale meanwhile
 * (a racing discard) still points at a cluster nobody else uses: freed
 * clusters are not taken again while such a request is in flight
 * (q->inflight, qcow2_cluster_alloc).
 */
static bool qcow2_map(struct disk *d, uint64_t off, uint64_t len, bool write,
		      struct extent *ext, unsigned int *n)
{
	struct qcow2 *q = d->priv;

	*n = 0;
	while (len) {
		uint64_t in = off & (q->cluster_size - 1);
		uint64_t k = MIN(len, q->cluster_size - in), *t, l2off, e, host;

		if (qcow2_l2_lookup(d, off, false, &l2off, &t) || !t)
			return false;
		if (write && !(q->l1[qcow2_l1_index(q, off)] &
			       QCOW2_OFLAG_COPIED))
			return false;
		e = *qcow2_l2_desc(q, t, qcow2_l2_index(q, off));
		if ((e & QCOW2_OFLAG_COMPRESSED) || !(e & QCOW2_OFFSET_MASK) ||
		    desc_zero(q, e) || (write && !(e & QCOW2_OFLAG_COPIED)) ||
		    !qcow2_cluster_ok(q, e & QCOW2_OFFSET_MASK))
			return false;
		if (q->ext_l2) {
			/* Every subcluster in range allocated, none zero. */
			uint32_t want = qcow2_sc_mask(in / q->sc_size,
						      (in + k - 1) / q->sc_size);
			uint64_t bm = qcow2_l2_bitmap(q, t,
						      qcow2_l2_index(q, off));

			if (((uint32_t)bm & want) != want ||
			    ((uint32_t)(bm >> 32) & want))
				return false;
		}
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
		ret = write ?
		      pwrite_full(qcow2_fd(d), buf, ext[i].len, ext[i].host) :
		      disk_pread_full(qcow2_fd(d), buf, ext[i].len, ext[i].host);
		buf += ext[i].len;
	}
	return ret;
}

/* ---- the asynchronous path: allocated clusters through the engine ---- */

/*
 * Finishes on the spot an extent the engine moved only part of (done
 * bytes): the rest of a read past the end of the file reads as zeroes
 * (a new cluster written in part ends the file early).
 */
static int extent_finish(struct disk *d, bool write, const struct iovec *iov,
			 unsigned int n, uint64_t host, uint64_t done)
{
	unsigned int i;
	int ret = 0;

	for (i = 0; !ret && i < n; i++) {
		uint64_t len = iov[i].iov_len;

		if (done >= len) {
			done -= len;
			host += len;
			continue;
		}
		ret = write ?
		      pwrite_full(qcow2_fd(d), (uint8_t *)iov[i].iov_base + done,
				  len - done, host + done) :
		      disk_pread_full(qcow2_fd(d), (uint8_t *)iov[i].iov_base + done,
				      len - done, host + done);
		host += len;
		done = 0;
	}
	return ret;
}

static enum aio_hint qcow2_hint(struct disk *d, bool write)
{
	struct qcow2 *q = d->priv;

	if (d->spec.cache == DISK_CACHE_NONE)
		return AIO_ASYNC;	/* the device's own path */
	/* As raw: buffered writes land in the page cache at once. */
	if (write)
		return AIO_INLINE;
	return atomic_load_explicit(&q->read_nowait_off, memory_order_relaxed) ?
	       AIO_ASYNC : AIO_TRY_NOWAIT;
}

/* The result of one extent's I/O: 0 or -errno, short ones finished. */
static int extent_result(struct disk *d, struct aio_io *io, long res,
			 uint64_t len)
{
	struct qcow2 *q = d->priv;

	if (io->nowait_failed)
		atomic_store_explicit(&q->read_nowait_off, true,
				      memory_order_relaxed);
	if (res < 0)
		return (int)res;
	if ((uint64_t)res < len)
		return extent_finish(d, io->op == AIO_WRITE, io->iov, io->niov,
				     io->off, res);
	return 0;
}

/* A request mapped outside the lock has ended (see qcow2_cluster_alloc). */
static void mapped_end(struct qcow2 *q)
{
	atomic_fetch_sub_explicit(&q->inflight, 1, memory_order_release);
}

/* A request of one extent: the request's own aio_io and iovecs. */
static void qcow2_io_done(struct aio_io *io, long res)
{
	struct disk_req *r = container_of(io, struct disk_req, io);
	int err = extent_result(r->disk, io, res, r->len);

	mapped_end(r->disk->priv);
	r->done(r, err);
}

/* Back to the pool: pushes race only with each other and one pop. */
static void mio_put(struct qcow2 *q, struct qcow2_mio *m)
{
	m->next = atomic_load_explicit(&q->mio_free, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(&q->mio_free, &m->next, m,
						      memory_order_release,
						      memory_order_relaxed))
		;
}

static void mio_ext_done(struct aio_io *io, long res)
{
	struct qcow2_mio_ext *x = container_of(io, struct qcow2_mio_ext, io);
	struct qcow2_mio *m = x->m;
	struct disk_req *r = m->r;
	struct qcow2 *q = r->disk->priv;
	int err = extent_result(r->disk, io, res, x->len);

	if (err && !m->err)
		m->err = err;
	if (--m->pending)
		return;
	err = m->err;
	mio_put(q, m);
	mapped_end(q);
	r->done(r, err);
}

/* A context for a request of several extents, from the pool (under the lock). */
static struct qcow2_mio *mio_get(struct qcow2 *q)
{
	struct qcow2_mio *m = atomic_load_explicit(&q->mio_free,
						   memory_order_acquire);

	/* Pops are serialized by the lock, so no ABA. */
	while (m && !atomic_compare_exchange_weak_explicit(&q->mio_free, &m,
							   m->next,
							   memory_order_acquire,
							   memory_order_acquire))
		;
	if (m)
		return m;
	m = calloc(1, sizeof(*m));
	if (m) {
		m->all_next = q->mio_all;
		q->mio_all = m;
	}
	return m;
}

/*
 * Submits the request's extents on the queue's engine, straight from and
 * into the guest's buffers.  False if it must take the synchronous path
 * (more pieces than a context holds).
 */
static bool qcow2_submit_async(struct disk *d, struct aio *a,
			       struct disk_req *r, const struct extent *ext,
			       unsigned int n, struct qcow2_mio *m)
{
	bool write = r->type == DISK_WRITE;
	enum aio_hint hint = qcow2_hint(d, write);
	uint64_t skip = 0, a_mask = d->dio_align - 1;
	unsigned int i, used = 0;

	/* O_DIRECT: buffers, offsets and lengths aligned, or the slow path. */
	if (a_mask) {
		for (i = 0; i < r->niov; i++)
			if (((uintptr_t)r->iov[i].iov_base | r->iov[i].iov_len) & a_mask)
				return false;
		for (i = 0; i < n; i++)
			if ((ext[i].host | ext[i].len) & a_mask)
				return false;
	}
	if (n == 1) {
		memset(&r->io, 0, sizeof(r->io));
		r->io.op = write ? AIO_WRITE : AIO_READ;
		r->io.fd = d->fd;
		r->io.iov = r->iov;
		r->io.niov = r->niov;
		r->io.off = ext[0].host;
		r->io.hint = hint;
		r->io.done = qcow2_io_done;
		aio_submit(a, &r->io);
		return true;
	}
	/* Each extent's slice of the request's iovecs. */
	for (i = 0; i < n; i++) {
		struct qcow2_mio_ext *x = &m->ext[i];
		unsigned int k = iov_slice(m->iov + used, QCOW2_MIO_IOV - used,
					   r->iov, r->niov, skip, ext[i].len);

		if (!k || iov_total(m->iov + used, k) != ext[i].len)
			return false;
		memset(&x->io, 0, sizeof(x->io));
		x->io.op = write ? AIO_WRITE : AIO_READ;
		x->io.fd = d->fd;
		x->io.iov = m->iov + used;
		x->io.niov = k;
		x->io.off = ext[i].host;
		x->io.hint = hint;
		x->io.done = mio_ext_done;
		x->m = m;
		x->len = ext[i].len;
		used += k;
		skip += ext[i].len;
	}
	m->r = r;
	m->err = 0;
	m->pending = n;
	for (i = 0; i < n; i++)
		aio_submit(a, &m->ext[i].io);
	return true;
}

void qcow2_submit(struct disk *d, struct aio *a, struct disk_req *r)
{
	struct qcow2 *q = d->priv;
	uint8_t *buf = NULL;
	bool own = true;	/* buf is ours (else the guest's) */
	int ret = 0;

	if ((r->type == DISK_READ || r->type == DISK_WRITE) && r->len) {
		struct extent ext[QCOW2_MAX_EXTENTS];
		bool write = r->type == DISK_WRITE;
		struct qcow2_mio *m = NULL;
		unsigned int n;
		bool plain;

		/*
		 * Allocated clusters: mapped under the lock, their I/O on the
		 * queue's engine without it, no copy, no allocation.
		 */
		pthread_mutex_lock(&q->lock);
		plain = qcow2_map(d, r->off, r->len, write, ext, &n);
		if (plain)
			atomic_fetch_add_explicit(&q->inflight, 1,
						  memory_order_relaxed);
		if (plain && n > 1)
			m = mio_get(q);
		pthread_mutex_unlock(&q->lock);
		if (plain && (n == 1 || m) &&
		    qcow2_submit_async(d, a, r, ext, n, m))
			return;
		if (m)
			mio_put(q, m);
		/*
		 * One guest buffer is used as it is (as raw does: a guest
		 * changing it meanwhile gets what it asked for); several are
		 * gathered into one.
		 */
		if (r->niov == 1 && r->iov[0].iov_len == r->len) {
			buf = r->iov[0].iov_base;
			own = false;
		} else {
			buf = malloc(r->len);
		}
		if (!buf) {
			if (plain)
				mapped_end(q);
			r->done(r, -ENOMEM);
			return;
		}
		if (plain) {
			if (write && own)
				iov_to_buf(r->iov, r->niov, 0, buf, r->len);
			ret = extents_io(d, buf, ext, n, write);
			if (!ret && !write && own)
				buf_to_iov(r->iov, r->niov, 0, buf, r->len);
			if (own)
				free(buf);
			mapped_end(q);
			r->done(r, ret);
			return;
		}
	}
	pthread_mutex_lock(&q->lock);
	switch (r->type) {
	case DISK_READ:
		if (r->len)
			ret = qcow2_read(d, buf, r->off, r->len);
		if (!ret && r->len && own)
			buf_to_iov(r->iov, r->niov, 0, buf, r->len);
		break;
	case DISK_WRITE:
		if (r->len) {
			if (own)
				iov_to_buf(r->iov, r->niov, 0, buf, r->len);
			ret = qcow2_write(d, buf, r->off, r->len);
		}
		break;
	case DISK_FLUSH:
		/* Metadata in dependency order, then everything durable. */
		ret = qcow2_writeback(d, true);
		break;
	case DISK_DISCARD:
		ret = qcow2_zero_range(d, r->off, r->len, true);
		break;
	case DISK_WRITE_ZEROES:
		ret = qcow2_zero_range(d, r->off, r->len, false);
		break;
	}
	pthread_mutex_unlock(&q->lock);
	if (own)
		free(buf);
	r->done(r, ret);
}
