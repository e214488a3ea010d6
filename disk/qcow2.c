/*
 * qcow2.c - qcow2 images, versions 2 and 3 (the qcow2 specification in
 * QEMU's docs/interop/qcow2.txt): two-level cluster tables, refcounts of
 * any width, zero clusters, zlib-compressed clusters, backing files.
 * This file probes, opens (checking every header field and table) and
 * closes an image; qcow2_meta.c keeps the metadata, qcow2_io.c serves
 * requests.
 *
 * Requests run synchronously on the submitting queue thread and
 * complete inside submit, like a page-cache hit.  Metadata is under one
 * per-image mutex; a read or in-place write whose clusters are all
 * allocated only maps them under it and does its I/O outside, so queues
 * run in parallel in the steady state.  L2 tables and refcount blocks
 * are cached and written back in batches, refcounts before the pointers
 * that depend on them, one fdatasync between (qcow2_cache.c): what
 * reached the file is always consistent, up to leaked clusters.
 * Freed clusters are taken again (a search from a hint); else new ones
 * are appended at the end of the file, and the refcount table grows.
 *
 * Extended L2 entries (subclusters, 32 per cluster) are read and
 * written: a write allocates the subclusters it touches, not a cluster.
 *
 * With cache=none the file is opened twice: O_DIRECT for the aligned
 * asynchronous I/O of allocated clusters, and plainly for metadata and
 * the synchronous path (see qcow2_open).
 *
 * Refused at open with a message: encryption, external data files,
 * compression other than zlib, the corrupt bit,
 * unknown incompatible features, and tables outside the file.
 *
 * Lazy refcounts: opened for writing, such an image is marked dirty and
 * its refcount blocks are written lazily (qcow2_cache.c); a clean close
 * clears the mark.  A dirty image opened for writing is repaired first
 * (qcow2_repair.c); read-only, it is read as it is.  Snapshots are kept: a shared cluster or L2
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

#include "lkvm/disk/qcow2.h"
#include "lkvm/lib/util.h"

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

/* The v3 header's feature words (incompatible, compatible, autoclear). */
static int header_features(struct disk *d, uint64_t incompat, uint64_t compat)
{
	struct qcow2 *q = d->priv;
	uint8_t f[24] = { 0 };
	int ret;

	put_be64(f, incompat);
	put_be64(f + 8, compat);
	ret = pwrite_full(qcow2_fd(d), f, sizeof(f), 72);
	if (!ret && q->barriers && fdatasync(d->fd))
		ret = -errno;
	if (!ret)
		q->incompat = incompat;
	return ret;
}

/*
 * Before the first write: autoclear features (bitmaps) cleared, as the
 * specification asks of a writer that keeps none of them; a dirty image
 * repaired; under lazy refcounts the dirty bit set and durable before
 * any refcount is left unwritten.
 */
static int qcow2_open_writable(struct disk *d, uint64_t compat,
			       uint64_t autoclear, char *err, size_t errlen)
{
	struct qcow2 *q = d->priv;
	bool lazy = q->version == 3 && (compat & QCOW2_COMPAT_LAZY);
	uint64_t incompat = q->incompat;
	int ret = 0;

	if (q->version == 3 && autoclear)
		ret = header_features(d, incompat, compat);
	if (!ret && (incompat & QCOW2_INCOMPAT_DIRTY)) {
		ret = qcow2_repair(d, err, errlen);
		if (ret)
			return ret;
		q->repaired = true;
		if (!lazy)
			ret = header_features(d, incompat & ~QCOW2_INCOMPAT_DIRTY,
					      compat);
	} else if (!ret && lazy) {
		ret = header_features(d, incompat | QCOW2_INCOMPAT_DIRTY, compat);
	}
	if (ret)
		return errf(err, errlen, ret, "disk %s: cannot update the header: %s",
			    d->spec.path, strerror(-ret));
	q->compat = compat;
	q->lazy = lazy;
	return 0;
}

static int qcow2_open(struct disk *d, char *err, size_t errlen)
{
	struct qcow2 *q = calloc(1, sizeof(*q));
	uint8_t h[112] = { 0 }, *buf = NULL;
	uint64_t incompat = 0, compat = 0, autoclear = 0, backing_off, ext;
	uint64_t hdr_len, fsize = d->size;
	uint32_t backing_len, refcount_order = 4;
	char backing[1024] = "", fmt[16] = "";
	unsigned int i;
	int ret;

	if (!q)
		return errf(err, errlen, -ENOMEM, "out of memory");
	d->priv = q;
	pthread_mutex_init(&q->lock, NULL);
	/*
	 * cache=none: d->fd has O_DIRECT, which wants aligned offsets,
	 * lengths and buffers.  Metadata (8-byte entries, a 12-byte
	 * header update, compressed data at any byte) and the synchronous
	 * path use a second descriptor of the same file without it; the
	 * kernel keeps the two coherent (direct I/O writes back and drops
	 * cached pages of its range).
	 */
	q->fd = d->fd;
	if (d->spec.cache == DISK_CACHE_NONE) {
		char self[64];

		snprintf(self, sizeof(self), "/proc/self/fd/%d", d->fd);
		q->fd = open(self, (d->spec.ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (q->fd < 0)
			return errf(err, errlen, -errno,
				    "disk %s: cannot reopen it without O_DIRECT: %s",
				    d->spec.path, strerror(errno));
		q->own_fd = true;
	}
	/* cache=unsafe: no fdatasync at all, FLUSH included. */
	q->barriers = d->spec.cache != DISK_CACHE_UNSAFE;
	ret = disk_pread_full(qcow2_fd(d), h, sizeof(h), 0);
	if (ret)
		return errf(err, errlen, ret, "disk %s: cannot read: %s",
			    d->spec.path, strerror(-ret));
#define BAD(...) input_errf(err, errlen, -EINVAL, "disk %s: " __VA_ARGS__)
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
		compat = be64(h + 80);
		autoclear = be64(h + 88);
		refcount_order = be32(h + 96);
		hdr_len = be32(h + 100);
		if (incompat & QCOW2_INCOMPAT_CORRUPT)
			return BAD("the image is marked corrupt (qemu-img check -r)",
				   d->spec.path);
		if (incompat & ~QCOW2_INCOMPAT_KNOWN)
			return BAD("unsupported qcow2 features 0x%llx (external "
				   "data or non-zlib compression)",
				   d->spec.path,
				   (unsigned long long)(incompat &
							~QCOW2_INCOMPAT_KNOWN));
		if (hdr_len < 104 || hdr_len > q->cluster_size)
			return BAD("bad header length %llu", d->spec.path,
				   (unsigned long long)hdr_len);
	}
	if (incompat & QCOW2_INCOMPAT_EXTL2) {
		if (q->cluster_bits < 14)
			return BAD("extended L2 entries need clusters of 16 KiB "
				   "or more", d->spec.path);
		q->ext_l2 = true;
		q->l2_entries = q->cluster_size / 16;
		q->sc_size = q->cluster_size / QCOW2_SUBCLUSTERS;
	}
	q->l2_bits = __builtin_ctzll(q->l2_entries);
	q->incompat = incompat;
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
	if (!q->l1 || !q->rt || !buf || !q->cbuf || qcow2_cache_init(q))
		goto nomem;
	ret = disk_pread_full(qcow2_fd(d), buf, (uint64_t)q->l1_size * 8,
			      q->l1_offset);
	for (i = 0; !ret && i < q->l1_size; i++)
		q->l1[i] = be64(buf + 8 * i);
	if (!ret)
		ret = disk_pread_full(qcow2_fd(d), buf, q->rt_entries * 8,
				      q->rt_offset);
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

		if (disk_pread_full(qcow2_fd(d), eh, 8, ext))
			break;
		type = be32(eh);
		len = be32(eh + 4);
		if (!type)
			break;
		if (type == QCOW2_EXT_BACKING_FMT && len < sizeof(fmt)) {
			if (disk_pread_full(qcow2_fd(d), fmt, len, ext + 8))
				break;
			fmt[len] = 0;
		}
		ext += 8 + ALIGN_UP((uint64_t)len, 8);
	}
	if (backing_off) {
		if (!backing_len || backing_len >= sizeof(backing) ||
		    !range_within(backing_off, backing_len, 0, q->cluster_size))
			return BAD("bad backing file name", d->spec.path);
		ret = disk_pread_full(qcow2_fd(d), backing, backing_len, backing_off);
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
	if (!d->spec.ro) {
		ret = qcow2_open_writable(d, compat, autoclear, err, errlen);
		if (ret)
			return ret;
		ret = qcow2_wb_start(d);
		if (ret)
			return errf(err, errlen, ret, "disk %s: %s", d->spec.path,
				    strerror(-ret));
	}
	return 0;
nomem:
	free(buf);
	return errf(err, errlen, -ENOMEM, "out of memory");
#undef BAD
}

static void qcow2_close(struct disk *d)
{
	struct qcow2 *q = d->priv;
	int ret;

	if (!q)
		return;
	qcow2_wb_stop(d);
	/* Everything out, refcount blocks included; then clean again. */
	q->lazy = false;
	ret = d->spec.ro ? 0 : qcow2_writeback(d, true);
	if (!ret && !d->spec.ro && (q->incompat & QCOW2_INCOMPAT_DIRTY))
		ret = header_features(d, q->incompat & ~QCOW2_INCOMPAT_DIRTY,
				      q->compat);
	if (ret)
		fprintf(stderr, "lkvm: disk %s: writing back qcow2 metadata failed: %s\n",
			d->spec.path, strerror(-ret));
	disk_close(q->backing);
	qcow2_cache_free(q);
	if (q->own_fd)
		close(q->fd);
	while (q->mio_all) {
		struct qcow2_mio *m = q->mio_all;

		q->mio_all = m->all_next;
		free(m);
	}
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
