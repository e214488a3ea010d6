/*
 * export.c - `lkvm export`: a disk image (raw or qcow2, with its backing
 * chain) served as one regular file over FUSE.  The file is the FUSE
 * root; its size is the disk's and never changes.  Reads, writes, fsync
 * and fallocate go through the disk layer virtio-blk uses, so a qcow2
 * image keeps its crash-safety order; fsync is the disk's FLUSH, punch
 * hole a write-zeroes that may deallocate, zero range one that need not.
 *
 * This file is the filesystem; the /dev/fuse transport is
 * fuse_devq.c.  Threads: the opener's thread opens, then only waits
 * (fsx_end_fd) and closes.  Each of the N queue threads (the transport's)
 * calls fsx_request for the requests it read, submits their disk I/O on
 * its own io_uring engine, and replies from the completions.  On the
 * data path queues share only the disk (whose backends lock their own
 * metadata: a qcow2 read or write of allocated clusters takes its lock
 * for the lookup only) and the attributes, under attr_lock, which only
 * GETATTR and SETATTR touch; counters are per queue (struct fsx_queue).
 *
 * Requests at 512-byte granularity go to the engine as they are, a
 * write's data straight from the buffer the kernel copied it into (read
 * at an offset that puts it on a page boundary).  Others are rare (the
 * page cache of a client filesystem, a loop device, fio all align): a
 * synchronous read-modify-write on the worker, under rmw_lock so that
 * two of them in one sector cannot undo each other.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "lkvm/fs/export.h"
#include "lkvm/fs/fuse_devq.h"
#include "lkvm/lib/aio.h"
#include "lkvm/lib/util.h"

#define FSX_MAX_WRITE	FUSE_DEVQ_MAX_WRITE	/* and the largest read */
#define FSX_ATTR_VALID	3600		/* s: only we change the attributes */

/* What a request keeps while its disk I/O is in flight. */
struct fsx_req {
	struct disk_req dr;
	struct iovec iov;
	struct fuse_req *r;
	struct fsx *x;
};

/* Per queue: counters, and the synchronous path's engine and buffer. */
struct fsx_queue {
	struct aio *sync;	/* read-modify-write */
	uint8_t *bounce;
	uint64_t reads, writes, flushes, zeroes, bytes_read, bytes_written;
	uint64_t errors;
};

struct fsx {
	struct disk *d;
	bool ro;
	struct fuse_devq *dq;
	unsigned int nq;
	struct fsx_queue *q;
	pthread_mutex_t rmw_lock;
	pthread_mutex_t attr_lock;
	struct fuse_attr attr;
};

static struct fsx_queue *fq(struct fsx *x, struct fuse_req *r)
{
	return &x->q[fuse_queue_index(r->q)];
}

/* Replies, counting the data path's errors (ENOSYS for xattrs is not). */
static void reply(struct fsx *x, struct fuse_req *r, int err, const void *data,
		  size_t len)
{
	if (err && (r->opcode == FUSE_READ || r->opcode == FUSE_WRITE ||
		    r->opcode == FUSE_FSYNC || r->opcode == FUSE_FALLOCATE))
		fq(x, r)->errors++;
	fuse_reply(r, err, data, len);
}

/* ---- attributes ---- */

static void reply_attr(struct fsx *x, struct fuse_req *r)
{
	struct fuse_attr_out out = { .attr_valid = FSX_ATTR_VALID };

	pthread_mutex_lock(&x->attr_lock);
	out.attr = x->attr;
	pthread_mutex_unlock(&x->attr_lock);
	reply(x, r, 0, &out, sizeof(out));
}

static void do_setattr(struct fsx *x, struct fuse_req *r,
		       const struct fuse_setattr_in *in)
{
	struct timespec now;

	/* The size is the disk's: it may be "set" only to itself. */
	if ((in->valid & FATTR_SIZE) && in->size != x->attr.size) {
		reply(x, r, -EPERM, NULL, 0);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	pthread_mutex_lock(&x->attr_lock);
	if (in->valid & FATTR_MODE)
		x->attr.mode = S_IFREG | (in->mode & 07777);
	if (in->valid & FATTR_UID)
		x->attr.uid = in->uid;
	if (in->valid & FATTR_GID)
		x->attr.gid = in->gid;
	if (in->valid & FATTR_ATIME) {
		x->attr.atime = in->atime;
		x->attr.atimensec = in->atimensec;
	}
	if (in->valid & FATTR_ATIME_NOW) {
		x->attr.atime = now.tv_sec;
		x->attr.atimensec = now.tv_nsec;
	}
	if (in->valid & FATTR_MTIME) {
		x->attr.mtime = in->mtime;
		x->attr.mtimensec = in->mtimensec;
	}
	if (in->valid & FATTR_MTIME_NOW) {
		x->attr.mtime = now.tv_sec;
		x->attr.mtimensec = now.tv_nsec;
	}
	x->attr.ctime = now.tv_sec;
	x->attr.ctimensec = now.tv_nsec;
	pthread_mutex_unlock(&x->attr_lock);
	reply_attr(x, r);
}

/* ---- data ---- */

struct sync_req {
	struct disk_req r;
	int err;		/* 1 until done */
};

static void sync_done(struct disk_req *r, int err)
{
	container_of(r, struct sync_req, r)->err = err;
}

/* One request on a synchronous engine: 0 or -errno. */
static int sync_io(struct disk *d, struct aio *a, enum disk_req_type type,
		   void *buf, uint64_t off, uint64_t len, bool unmap)
{
	struct iovec v = { buf, len };
	struct sync_req q = {
		.r = { .type = type, .iov = &v, .niov = buf ? 1 : 0,
		       .off = off, .len = len, .unmap = unmap,
		       .done = sync_done },
		.err = 1,
	};

	disk_submit(d, a, &q.r);
	while (q.err == 1)
		a->ops->poll(a);
	return q.err;
}

/*
 * Bytes [off, off + len) that do not fall on 512-byte boundaries: the
 * covering sectors are read into the queue's bounce buffer; then data
 * (if any) or zeroes are put in and written back.  For a read, *out
 * points at the bytes asked for.  Under rmw_lock.
 */
static int rmw(struct fsx *x, struct fsx_queue *q, bool write,
	       const void *data, uint64_t off, uint64_t len, const uint8_t **out)
{
	uint64_t lo = ALIGN_DOWN(off, 512), hi = ALIGN_UP(off + len, 512);
	int ret;

	pthread_mutex_lock(&x->rmw_lock);
	ret = sync_io(x->d, q->sync, DISK_READ, q->bounce, lo, hi - lo, false);
	if (!ret && write) {
		if (data)
			memcpy(q->bounce + (off - lo), data, len);
		else
			memset(q->bounce + (off - lo), 0, len);
		ret = sync_io(x->d, q->sync, DISK_WRITE, q->bounce, lo, hi - lo,
			      false);
	}
	pthread_mutex_unlock(&x->rmw_lock);
	if (out)
		*out = q->bounce + (off - lo);
	return ret;
}

static bool aligned(uint64_t off, uint64_t len)
{
	return !(off % 512) && !(len % 512);
}

/* Submits a disk request for r, completed by done. */
static void submit(struct fsx *x, struct fuse_req *r, struct disk_req dr,
		   void (*done)(struct disk_req *, int))
{
	struct fsx_req *p = r->priv;

	p->r = r;
	p->x = x;
	p->dr = dr;
	p->dr.done = done;
	if (dr.niov) {
		p->iov = dr.iov[0];
		p->dr.iov = &p->iov;
	}
	disk_submit(x->d, fuse_queue_aio(r->q), &p->dr);
}

static void read_done(struct disk_req *dr, int err)
{
	struct fsx_req *p = container_of(dr, struct fsx_req, dr);
	struct fsx_queue *q = fq(p->x, p->r);

	if (err) {
		reply(p->x, p->r, err, NULL, 0);
		return;
	}
	q->reads++;
	q->bytes_read += dr->len;
	fuse_reply_out(p->r, dr->len);
}

static void do_read(struct fsx *x, struct fuse_req *r,
		    const struct fuse_read_in *in)
{
	uint64_t size = x->d->size, len = in->size;
	struct fsx_queue *q = fq(x, r);
	struct iovec v;
	const uint8_t *p;
	int ret;

	if (in->size > FSX_MAX_WRITE || in->size > r->out_len) {
		reply(x, r, -EINVAL, NULL, 0);
		return;
	}
	if (in->offset >= size || !len) {
		fuse_reply_out(r, 0);		/* end of file */
		return;
	}
	len = MIN(len, size - in->offset);
	if (!aligned(in->offset, len)) {
		ret = rmw(x, q, false, NULL, in->offset, len, &p);
		if (!ret) {
			q->reads++;
			q->bytes_read += len;
		}
		reply(x, r, ret, ret ? NULL : p, ret ? 0 : len);
		return;
	}
	/* Straight into the reply's payload space (one piece here). */
	v = (struct iovec){ r->out[0].iov_base, len };
	submit(x, r, (struct disk_req){ .type = DISK_READ, .iov = &v,
					.niov = 1, .off = in->offset,
					.len = len }, read_done);
}

static void write_done(struct disk_req *dr, int err)
{
	struct fsx_req *p = container_of(dr, struct fsx_req, dr);
	struct fuse_write_out out = { .size = dr->len };
	struct fsx_queue *q = fq(p->x, p->r);

	if (!err) {
		q->writes++;
		q->bytes_written += dr->len;
	}
	reply(p->x, p->r, err, err ? NULL : &out, err ? 0 : sizeof(out));
}

static void do_write(struct fsx *x, struct fuse_req *r,
		     const struct fuse_write_in *in)
{
	uint64_t size = x->d->size, len = in->size;
	struct fsx_queue *q = fq(x, r);
	struct fuse_write_out out = { 0 };
	int ret;

	if (x->ro) {
		reply(x, r, -EROFS, NULL, 0);
		return;
	}
	if (in->size != r->in_len || in->size > FSX_MAX_WRITE || r->n_in != 1) {
		reply(x, r, -EINVAL, NULL, 0);
		return;
	}
	if (!len) {
		reply(x, r, 0, &out, sizeof(out));
		return;
	}
	/* A fixed-size file: past the end there is no room. */
	if (in->offset >= size) {
		reply(x, r, -ENOSPC, NULL, 0);
		return;
	}
	len = MIN(len, size - in->offset);
	if (!aligned(in->offset, len)) {
		out.size = len;
		ret = rmw(x, q, true, r->in[0].iov_base, in->offset, len, NULL);
		if (!ret) {
			q->writes++;
			q->bytes_written += len;
		}
		reply(x, r, ret, ret ? NULL : &out, ret ? 0 : sizeof(out));
		return;
	}
	submit(x, r, (struct disk_req){ .type = DISK_WRITE,
					.iov = &(struct iovec){ r->in[0].iov_base, len },
					.niov = 1, .off = in->offset,
					.len = len }, write_done);
}

static void plain_done(struct disk_req *dr, int err)
{
	struct fsx_req *p = container_of(dr, struct fsx_req, dr);

	reply(p->x, p->r, err, NULL, 0);
}

static void do_fsync(struct fsx *x, struct fuse_req *r)
{
	fq(x, r)->flushes++;
	submit(x, r, (struct disk_req){ .type = DISK_FLUSH }, plain_done);
}

/*
 * fallocate: punch hole (always with keep size) reads back as zeroes,
 * and may deallocate; zero range need not deallocate.  Plain
 * allocation within the file is already true.  The file never grows.
 */
static void do_fallocate(struct fsx *x, struct fuse_req *r,
			 const struct fuse_fallocate_in *in)
{
	uint64_t size = x->d->size, off = in->offset, end, lo, hi;
	uint32_t mode = in->mode & ~FALLOC_FL_KEEP_SIZE;
	bool unmap = mode == FALLOC_FL_PUNCH_HOLE;
	struct fsx_queue *q = fq(x, r);
	int ret = 0;

	if (in->length > UINT64_MAX - off) {
		reply(x, r, -EINVAL, NULL, 0);
		return;
	}
	end = off + in->length;
	if (!mode) {
		reply(x, r, end > size && !(in->mode & FALLOC_FL_KEEP_SIZE) ?
			    -EFBIG : 0, NULL, 0);
		return;
	}
	if ((mode != FALLOC_FL_PUNCH_HOLE || !(in->mode & FALLOC_FL_KEEP_SIZE)) &&
	    mode != FALLOC_FL_ZERO_RANGE) {
		reply(x, r, -EOPNOTSUPP, NULL, 0);
		return;
	}
	if (x->ro) {
		reply(x, r, -EROFS, NULL, 0);
		return;
	}
	end = MIN(end, size);
	if (off >= end) {
		reply(x, r, 0, NULL, 0);
		return;
	}
	q->zeroes++;
	if (aligned(off, end - off)) {
		submit(x, r, (struct disk_req){ .type = DISK_WRITE_ZEROES,
						.off = off, .len = end - off,
						.unmap = unmap }, plain_done);
		return;
	}
	/* Ragged edges by hand, the whole sectors between as zeroes. */
	lo = ALIGN_UP(off, 512);
	hi = ALIGN_DOWN(end, 512);
	if (lo >= hi) {
		ret = rmw(x, q, true, NULL, off, end - off, NULL);
	} else {
		if (off < lo)
			ret = rmw(x, q, true, NULL, off, lo - off, NULL);
		if (!ret && hi < end)
			ret = rmw(x, q, true, NULL, hi, end - hi, NULL);
		if (!ret) {
			pthread_mutex_lock(&x->rmw_lock);
			ret = sync_io(x->d, q->sync, DISK_WRITE_ZEROES, NULL,
				      lo, hi - lo, unmap);
			pthread_mutex_unlock(&x->rmw_lock);
		}
	}
	reply(x, r, ret, NULL, 0);
}

static void do_open(struct fsx *x, struct fuse_req *r,
		    const struct fuse_open_in *in)
{
	struct fuse_open_out out = {
		.fh = 1,
		/* Every read and write comes here (the image is the cache),
		 * and direct writes need not take the inode lock. */
		.open_flags = FOPEN_DIRECT_IO | FOPEN_PARALLEL_DIRECT_WRITES,
	};

	if (x->ro && (in->flags & O_ACCMODE) != O_RDONLY) {
		reply(x, r, -EROFS, NULL, 0);
		return;
	}
	reply(x, r, 0, &out, sizeof(out));
}

static void do_statfs(struct fsx *x, struct fuse_req *r)
{
	struct fuse_statfs_out out = { 0 };

	out.st.bsize = 512;
	out.st.frsize = 512;
	out.st.blocks = x->d->size / 512;
	out.st.files = 1;
	out.st.namelen = 255;
	reply(x, r, 0, &out, sizeof(out));
}

/* One checked request, on its queue's thread.  Replies, now or later. */
static void fsx_request(void *fs, struct fuse_req *r)
{
	struct fsx *x = fs;
	const void *body = r->m.body;

	switch (r->opcode) {
	case FUSE_READ:
		do_read(x, r, body);
		break;
	case FUSE_WRITE:
		do_write(x, r, body);
		break;
	case FUSE_FSYNC:
		do_fsync(x, r);
		break;
	case FUSE_FALLOCATE:
		do_fallocate(x, r, body);
		break;
	case FUSE_GETATTR:
		reply_attr(x, r);
		break;
	case FUSE_SETATTR:
		do_setattr(x, r, body);
		break;
	case FUSE_OPEN:
		do_open(x, r, body);
		break;
	case FUSE_FLUSH:		/* close(): fsync is what makes durable */
	case FUSE_RELEASE:
	case FUSE_DESTROY:
		reply(x, r, 0, NULL, 0);
		break;
	case FUSE_STATFS:
		do_statfs(x, r);
		break;
	case FUSE_FORGET:		/* no replies to these */
	case FUSE_BATCH_FORGET:
	case FUSE_INTERRUPT:
		fuse_reply_none(r);
		break;
	case FUSE_LOOKUP:		/* the root is a file */
	case FUSE_OPENDIR:
	case FUSE_READDIR:
	case FUSE_READDIRPLUS:
	case FUSE_MKDIR:
	case FUSE_MKNOD:
	case FUSE_CREATE:
	case FUSE_UNLINK:
	case FUSE_RMDIR:
	case FUSE_SYMLINK:
	case FUSE_LINK:
	case FUSE_RENAME:
	case FUSE_RENAME2:
		reply(x, r, -ENOTDIR, NULL, 0);
		break;
	default:			/* xattrs, lseek, ioctl, ... */
		reply(x, r, -ENOSYS, NULL, 0);
		break;
	}
}

static void fsx_init(void *fs, const struct fuse_init_in *in,
		     struct fuse_init_out *out)
{
	(void)fs;
	out->flags |= in->flags & (FUSE_ASYNC_READ | FUSE_BIG_WRITES |
				   FUSE_ASYNC_DIO);
}

static const struct fuse_fs_ops fsx_ops = {
	.req_priv = sizeof(struct fsx_req),
	.init = fsx_init,
	.request = fsx_request,
};

/* ---- open, close ---- */

static int make_mountpoint(const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	if (!stat(path, &st)) {
		if (S_ISDIR(st.st_mode))
			return input_errf(err, errlen, -EISDIR,
					  "%s is a directory: the mount point "
					  "must be a regular file", path);
		if (!S_ISREG(st.st_mode))
			return input_errf(err, errlen, -EINVAL,
					  "%s is not a regular file", path);
		return 0;
	}
	if (errno != ENOENT)
		return errf(err, errlen, -errno, "%s: %s", path, strerror(errno));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return errf(err, errlen, -errno, "cannot create %s: %s", path,
			    strerror(errno));
	close(fd);
	return 0;
}

static void fsx_free(struct fsx *x)
{
	unsigned int i;

	for (i = 0; x->q && i < x->nq; i++) {
		if (x->q[i].sync)
			aio_free(x->q[i].sync);
		free(x->q[i].bounce);
	}
	pthread_mutex_destroy(&x->rmw_lock);
	pthread_mutex_destroy(&x->attr_lock);
	free(x->q);
	free(x);
}

static int fsx_alloc(struct fsx **xp, struct disk *d, bool ro, unsigned int nq)
{
	struct fsx *x = calloc(1, sizeof(*x));
	struct timespec now;
	unsigned int i;
	int ret = 0;

	*xp = NULL;
	if (!x)
		return -ENOMEM;
	x->d = d;
	x->ro = ro;
	x->nq = nq;
	x->q = calloc(nq, sizeof(*x->q));
	pthread_mutex_init(&x->rmw_lock, NULL);
	pthread_mutex_init(&x->attr_lock, NULL);
	for (i = 0; !ret && x->q && i < nq; i++) {
		ret = aio_sync_create(&x->q[i].sync);
		if (!ret && posix_memalign((void **)&x->q[i].bounce, 4096,
					   FSX_MAX_WRITE + 8192))
			ret = -ENOMEM;
	}
	if (ret || !x->q) {
		fsx_free(x);
		return ret ? ret : -ENOMEM;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	x->attr.ino = 1;
	x->attr.size = d->size;
	x->attr.blocks = d->size / 512;
	x->attr.atime = x->attr.mtime = x->attr.ctime = now.tv_sec;
	x->attr.mode = S_IFREG | (ro ? 0444 : 0644);
	x->attr.nlink = 1;
	x->attr.uid = getuid();
	x->attr.gid = getgid();
	x->attr.blksize = 65536;	/* what cp and cmp read at once */
	*xp = x;
	return 0;
}

int fsx_open(struct fsx **xp, const struct fsx_opts *o, char *err,
	     size_t errlen)
{
	struct fuse_devq_opts dopts = { 0 };
	struct disk_spec spec = { 0 };
	unsigned int n = o->threads;
	struct disk *d;
	struct fsx *x;
	long cpus;
	int ret;

	*xp = NULL;
	if (!n) {
		cpus = sysconf(_SC_NPROCESSORS_ONLN);
		n = cpus > 0 ? MIN(cpus, 64) : 1;
	}
	ret = make_mountpoint(o->mountpoint, err, errlen);
	if (ret)
		return ret;
	ret = disk_spec_parse(o->image, &spec, err, errlen);
	if (ret)
		return ret;
	if (o->ro)
		spec.ro = true;
	if (o->format)
		snprintf(spec.format, sizeof(spec.format), "%s", o->format);
	if (o->cache_set)
		spec.cache = o->cache;
	ret = disk_open(&d, &spec, err, errlen);
	disk_spec_free(&spec);
	if (ret)
		return ret;
	ret = fsx_alloc(&x, d, d->spec.ro, n);
	if (ret) {
		disk_close(d);
		return errf(err, errlen, ret, "out of memory");
	}
	dopts.mountpoint = o->mountpoint;
	dopts.rootmode = S_IFREG | (x->ro ? 0444 : 0644);
	dopts.source = "lkvm-export";
	dopts.allow_other = o->allow_other;
	dopts.threads = n;
	dopts.aio_sync = d->spec.aio_sync;
	dopts.ops = &fsx_ops;
	dopts.fs = x;
	ret = fuse_devq_open(&x->dq, &dopts, err, errlen);
	if (ret) {
		fsx_free(x);
		disk_close(d);
		return ret;
	}
	*xp = x;
	return 0;
}

int fsx_end_fd(const struct fsx *x)
{
	return fuse_devq_end_fd(x->dq);
}

void fsx_stats(struct fsx *x, int worker, struct fsx_stats *st)
{
	unsigned int i;

	memset(st, 0, sizeof(*st));
	st->threads = x->nq;
	st->size = x->d->size;
	for (i = 0; i < x->nq; i++) {
		struct fsx_queue *q = &x->q[i];

		if (worker >= 0 && i != (unsigned int)worker)
			continue;
#define ADD(f) st->f += __atomic_load_n(&q->f, __ATOMIC_RELAXED)
		ADD(reads);
		ADD(writes);
		ADD(flushes);
		ADD(zeroes);
		ADD(bytes_read);
		ADD(bytes_written);
		ADD(errors);
#undef ADD
		if (x->dq) {
			st->cpu_ns += fuse_devq_cpu_ns(x->dq, i);
			st->bad += fuse_devq_malformed(x->dq, i);
		}
	}
}

int fsx_close(struct fsx *x)
{
	struct disk *d = x->d;
	int ret;

	/* Requests in flight are answered, then the queues stop. */
	fuse_devq_close(x->dq);
	/*
	 * Everything written is made durable before the image closes, on
	 * a queue's synchronous engine (its thread is gone).
	 */
	ret = d->spec.ro ? 0 : sync_io(d, x->q[0].sync, DISK_FLUSH, NULL, 0, 0,
				       false);
	fsx_free(x);
	disk_close(d);
	return ret;
}

/* ---- for the fuzz target ---- */

int fsx_test_open(struct fsx **xp, struct disk *d, bool ro, int reply_fd)
{
	struct fsx *x;
	int ret = fsx_alloc(&x, d, ro, 1);

	if (!ret)
		ret = fuse_devq_test_open(&x->dq, &fsx_ops, x, reply_fd);
	if (ret) {
		if (x)
			fsx_free(x);
		return ret;
	}
	*xp = x;
	return 0;
}

void fsx_test_request(struct fsx *x, const void *buf, size_t n)
{
	fuse_devq_test_request(x->dq, buf, n);
}

void fsx_test_close(struct fsx *x)
{
	fuse_devq_test_close(x->dq);
	fsx_free(x);
}
