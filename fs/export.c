/*
 * export.c - `lkvm export`: a disk image (raw or qcow2, with its backing
 * chain) served as one regular file over FUSE.  The file is the FUSE
 * root; its size is the disk's and never changes.  Reads, writes, fsync
 * and fallocate go through the disk layer virtio-blk uses, so a qcow2
 * image keeps its crash-safety order; fsync is the disk's FLUSH, punch
 * hole a write-zeroes that may deallocate, zero range one that need not.
 *
 * Threads.  The opener's thread mounts, answers INIT, then only waits
 * (fsx_end_fd) and closes.  Each of the N workers is an iothread with
 * its own /dev/fuse descriptor (the first, or a clone) and its own
 * io_uring engine: it reads requests while it has free slots, submits
 * their disk I/O, and replies from the completions, on its own
 * descriptor (the kernel matches a reply only there).  The descriptors
 * are watched with EPOLLEXCLUSIVE, so a request wakes one idle worker,
 * not all.  On the data path workers share only the disk (whose
 * backends lock their own metadata: a qcow2 read or write of allocated
 * clusters takes its lock for the lookup only) and the attributes, under
 * attr_lock, which only GETATTR and SETATTR touch.
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
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "lkvm/fs/export.h"
#include "lkvm/fs/fuse_dev.h"
#include "lkvm/fs/fuse_msg.h"
#include "lkvm/lib/aio.h"
#include "lkvm/lib/iothread.h"
#include "lkvm/lib/util.h"

#define FSX_SLOTS	64		/* requests in flight per worker */
#define FSX_MAX_WRITE	(1u << 20)	/* and the largest read */
#define FSX_ROOM	4096		/* a request is read to end here... */
#define FSX_WRITE_HDR	(sizeof(struct fuse_in_header) + \
			 sizeof(struct fuse_write_in))
/* ...so a WRITE's data starts at FSX_ROOM; room after for anything. */
#define FSX_BUF		(FSX_ROOM + FSX_MAX_WRITE + 4096)
#define FSX_READ_MAX	(FSX_BUF - (FSX_ROOM - FSX_WRITE_HDR))
#define FSX_ATTR_VALID	3600		/* s: only we change the attributes */

struct fsx_worker;

struct fsx_slot {
	struct fsx_worker *w;
	uint8_t *buf;		/* FSX_BUF bytes, page-aligned */
	struct disk_req r;
	struct iovec iov;
	uint64_t unique;
	uint32_t opcode;
	struct fsx_slot *next;	/* free list */
};

struct fsx_worker {
	struct fsx *x;
	unsigned int idx;
	struct iothread t;
	bool t_init;
	struct aio *aio;	/* the ring: aligned requests */
	struct aio *sync;	/* synchronous: read-modify-write */
	int fd;			/* this worker's /dev/fuse descriptor */
	int quit_fd;		/* eventfd: finish what is in flight, stop */
	bool quitting, watching, done;
	struct fsx_slot slot[FSX_SLOTS];
	struct fsx_slot *free;
	unsigned int busy;
	uint8_t *mem;		/* the slots' buffers */
	uint8_t *bounce;	/* read-modify-write */
	uint64_t reads, writes, flushes, zeroes, bytes_read, bytes_written;
	uint64_t errors, bad;
};

struct fsx {
	struct disk *d;
	bool ro;
	struct fuse_session s;
	unsigned int nworkers;
	struct fsx_worker *w;
	pthread_mutex_t rmw_lock;
	pthread_mutex_t attr_lock;
	struct fuse_attr attr;
	int end_fd;		/* eventfd: the session ended */
	int done_fd;		/* eventfd: a quitting worker is idle */
	int reply_fd;		/* fsx_test_open: where replies go */
	uint32_t minor;		/* the protocol minor agreed at INIT */
};

/* ---- replies (on the worker's own descriptor) ---- */

static void reply_iov(struct fsx_worker *w, uint64_t unique, int err,
		      const struct iovec *iov, unsigned int n)
{
	struct fuse_out_header oh = { .error = err, .unique = unique };
	struct iovec v[3];
	unsigned int i;

	v[0] = (struct iovec){ &oh, sizeof(oh) };
	oh.len = sizeof(oh);
	for (i = 0; i < n && i < 2; i++) {
		v[1 + i] = iov[i];
		oh.len += iov[i].iov_len;
	}
	/* ENOENT: the request was interrupted meanwhile; nothing to do. */
	if (writev(w->fd, v, 1 + i) < 0 && errno != ENOENT)
		w->errors++;
}

/* A quitting worker with nothing in flight tells fsx_close, once. */
static void check_done(struct fsx_worker *w)
{
	uint64_t one = 1;

	if (w->quitting && !w->busy && !w->done) {
		w->done = true;
		if (write(w->x->done_fd, &one, 8) != 8)
			w->errors++;
	}
}

static void slot_put(struct fsx_slot *s)
{
	struct fsx_worker *w = s->w;

	s->next = w->free;
	w->free = s;
	w->busy--;
	if (w->quitting) {
		check_done(w);
	} else if (!w->watching && w->t_init) {
		if (!iothread_watch(&w->t, w->fd, EPOLLIN | EPOLLEXCLUSIVE))
			w->watching = true;
	}
}

static void reply(struct fsx_slot *s, int err, const void *data, size_t len)
{
	struct iovec v = { (void *)data, len };

	/* Errors counted are the data path's (ENOSYS for xattrs is not). */
	if (err && (s->opcode == FUSE_READ || s->opcode == FUSE_WRITE ||
		    s->opcode == FUSE_FSYNC || s->opcode == FUSE_FALLOCATE))
		s->w->errors++;

	reply_iov(s->w, s->unique, err, &v, data ? 1 : 0);
	slot_put(s);
}

/* ---- attributes ---- */

static void reply_attr(struct fsx_slot *s)
{
	struct fuse_attr_out out = { .attr_valid = FSX_ATTR_VALID };
	struct fsx *x = s->w->x;

	pthread_mutex_lock(&x->attr_lock);
	out.attr = x->attr;
	pthread_mutex_unlock(&x->attr_lock);
	reply(s, 0, &out, sizeof(out));
}

static void do_setattr(struct fsx_slot *s, const struct fuse_setattr_in *in)
{
	struct fsx *x = s->w->x;
	struct timespec now;

	/* The size is the disk's: it may be "set" only to itself. */
	if ((in->valid & FATTR_SIZE) && in->size != x->attr.size) {
		reply(s, -EPERM, NULL, 0);
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
	reply_attr(s);
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
 * covering sectors are read into the bounce buffer; then data (if any)
 * or zeroes are put in and written back.  For a read, *out points at
 * the bytes asked for.  Under rmw_lock.
 */
static int rmw(struct fsx_worker *w, bool write, const void *data,
	       uint64_t off, uint64_t len, const uint8_t **out)
{
	uint64_t lo = ALIGN_DOWN(off, 512), hi = ALIGN_UP(off + len, 512);
	int ret;

	pthread_mutex_lock(&w->x->rmw_lock);
	ret = sync_io(w->x->d, w->sync, DISK_READ, w->bounce, lo, hi - lo,
		      false);
	if (!ret && write) {
		if (data)
			memcpy(w->bounce + (off - lo), data, len);
		else
			memset(w->bounce + (off - lo), 0, len);
		ret = sync_io(w->x->d, w->sync, DISK_WRITE, w->bounce, lo,
			      hi - lo, false);
	}
	pthread_mutex_unlock(&w->x->rmw_lock);
	if (out)
		*out = w->bounce + (off - lo);
	return ret;
}

static bool aligned(uint64_t off, uint64_t len)
{
	return !(off % 512) && !(len % 512);
}

static void read_done(struct disk_req *r, int err)
{
	struct fsx_slot *s = container_of(r, struct fsx_slot, r);

	if (!err) {
		s->w->reads++;
		s->w->bytes_read += r->len;
	}
	reply(s, err, err ? NULL : s->buf + FSX_ROOM, err ? 0 : r->len);
}

static void do_read(struct fsx_slot *s, const struct fuse_read_in *in)
{
	struct fsx_worker *w = s->w;
	uint64_t size = w->x->d->size, len = in->size;
	const uint8_t *p;
	int ret;

	if (in->size > FSX_MAX_WRITE) {
		reply(s, -EINVAL, NULL, 0);
		return;
	}
	if (in->offset >= size || !len) {
		reply(s, 0, s->buf, 0);		/* end of file */
		return;
	}
	len = MIN(len, size - in->offset);
	if (!aligned(in->offset, len)) {
		ret = rmw(w, false, NULL, in->offset, len, &p);
		if (!ret) {
			w->reads++;
			w->bytes_read += len;
		}
		reply(s, ret, ret ? NULL : p, ret ? 0 : len);
		return;
	}
	s->iov = (struct iovec){ s->buf + FSX_ROOM, len };
	s->r = (struct disk_req){ .type = DISK_READ, .iov = &s->iov,
				  .niov = 1, .off = in->offset, .len = len,
				  .done = read_done };
	disk_submit(w->x->d, w->aio, &s->r);
}

static void write_done(struct disk_req *r, int err)
{
	struct fsx_slot *s = container_of(r, struct fsx_slot, r);
	struct fuse_write_out out = { .size = r->len };

	if (!err) {
		s->w->writes++;
		s->w->bytes_written += r->len;
	}
	reply(s, err, err ? NULL : &out, err ? 0 : sizeof(out));
}

static void do_write(struct fsx_slot *s, const struct fuse_write_in *in,
		     size_t data_len)
{
	struct fsx_worker *w = s->w;
	uint64_t size = w->x->d->size, len = in->size;
	const uint8_t *data = (const uint8_t *)(in + 1);
	int ret;

	if (w->x->ro) {
		reply(s, -EROFS, NULL, 0);
		return;
	}
	if (in->size != data_len || in->size > FSX_MAX_WRITE) {
		reply(s, -EINVAL, NULL, 0);
		return;
	}
	if (!len) {
		struct fuse_write_out out = { 0 };

		reply(s, 0, &out, sizeof(out));
		return;
	}
	/* A fixed-size file: past the end there is no room. */
	if (in->offset >= size) {
		reply(s, -ENOSPC, NULL, 0);
		return;
	}
	len = MIN(len, size - in->offset);
	if (!aligned(in->offset, len)) {
		struct fuse_write_out out = { .size = len };

		ret = rmw(w, true, data, in->offset, len, NULL);
		if (!ret) {
			w->writes++;
			w->bytes_written += len;
		}
		reply(s, ret, ret ? NULL : &out, ret ? 0 : sizeof(out));
		return;
	}
	s->iov = (struct iovec){ (void *)data, len };
	s->r = (struct disk_req){ .type = DISK_WRITE, .iov = &s->iov,
				  .niov = 1, .off = in->offset, .len = len,
				  .done = write_done };
	disk_submit(w->x->d, w->aio, &s->r);
}

static void plain_done(struct disk_req *r, int err)
{
	struct fsx_slot *s = container_of(r, struct fsx_slot, r);

	reply(s, err, NULL, 0);
}

static void do_fsync(struct fsx_slot *s)
{
	s->w->flushes++;
	s->r = (struct disk_req){ .type = DISK_FLUSH, .done = plain_done };
	disk_submit(s->w->x->d, s->w->aio, &s->r);
}

/*
 * fallocate: punch hole (always with keep size) reads back as zeroes,
 * and may deallocate; zero range need not deallocate.  Plain
 * allocation within the file is already true.  The file never grows.
 */
static void do_fallocate(struct fsx_slot *s, const struct fuse_fallocate_in *in)
{
	struct fsx_worker *w = s->w;
	uint64_t size = w->x->d->size, off = in->offset, end, lo, hi;
	uint32_t mode = in->mode & ~FALLOC_FL_KEEP_SIZE;
	bool unmap = mode == FALLOC_FL_PUNCH_HOLE;
	int ret = 0;

	if (in->length > UINT64_MAX - off) {
		reply(s, -EINVAL, NULL, 0);
		return;
	}
	end = off + in->length;
	if (!mode) {
		reply(s, end > size && !(in->mode & FALLOC_FL_KEEP_SIZE) ?
			 -EFBIG : 0, NULL, 0);
		return;
	}
	if ((mode != FALLOC_FL_PUNCH_HOLE || !(in->mode & FALLOC_FL_KEEP_SIZE)) &&
	    mode != FALLOC_FL_ZERO_RANGE) {
		reply(s, -EOPNOTSUPP, NULL, 0);
		return;
	}
	if (w->x->ro) {
		reply(s, -EROFS, NULL, 0);
		return;
	}
	end = MIN(end, size);
	if (off >= end) {
		reply(s, 0, NULL, 0);
		return;
	}
	w->zeroes++;
	if (aligned(off, end - off)) {
		s->r = (struct disk_req){ .type = DISK_WRITE_ZEROES,
					  .off = off, .len = end - off,
					  .unmap = unmap, .done = plain_done };
		disk_submit(w->x->d, w->aio, &s->r);
		return;
	}
	/* Ragged edges by hand, the whole sectors between as zeroes. */
	lo = ALIGN_UP(off, 512);
	hi = ALIGN_DOWN(end, 512);
	if (lo >= hi) {
		ret = rmw(w, true, NULL, off, end - off, NULL);
	} else {
		if (off < lo)
			ret = rmw(w, true, NULL, off, lo - off, NULL);
		if (!ret && hi < end)
			ret = rmw(w, true, NULL, hi, end - hi, NULL);
		if (!ret) {
			pthread_mutex_lock(&w->x->rmw_lock);
			ret = sync_io(w->x->d, w->sync, DISK_WRITE_ZEROES,
				      NULL, lo, hi - lo, unmap);
			pthread_mutex_unlock(&w->x->rmw_lock);
		}
	}
	reply(s, ret, NULL, 0);
}

static void do_open(struct fsx_slot *s, const struct fuse_open_in *in)
{
	struct fuse_open_out out = {
		.fh = 1,
		/* Every read and write comes here (the image is the cache),
		 * and direct writes need not take the inode lock. */
		.open_flags = FOPEN_DIRECT_IO | FOPEN_PARALLEL_DIRECT_WRITES,
	};

	if (s->w->x->ro && (in->flags & O_ACCMODE) != O_RDONLY) {
		reply(s, -EROFS, NULL, 0);
		return;
	}
	reply(s, 0, &out, sizeof(out));
}

static void do_statfs(struct fsx_slot *s)
{
	struct fuse_statfs_out out = { 0 };

	out.st.bsize = 512;
	out.st.frsize = 512;
	out.st.blocks = s->w->x->d->size / 512;
	out.st.files = 1;
	out.st.namelen = 255;
	reply(s, 0, &out, sizeof(out));
}

static void session_end(struct fsx *x)
{
	uint64_t one = 1;

	if (write(x->end_fd, &one, 8) != 8)
		return;
}

/* One request, n bytes at p (inside s->buf).  Replies, now or later. */
static void dispatch(struct fsx_worker *w, struct fsx_slot *s, const void *p,
		     size_t n)
{
	struct fuse_msg m;
	int ret = fuse_msg_parse(p, n, &m);

	if (ret == -EPROTO) {		/* not one request: nobody to answer */
		w->bad++;
		slot_put(s);
		return;
	}
	s->unique = m.h->unique;
	s->opcode = m.h->opcode;
	if (ret) {
		w->bad++;
		reply(s, ret, NULL, 0);
		return;
	}
	switch (m.h->opcode) {
	case FUSE_READ:
		do_read(s, m.body);
		break;
	case FUSE_WRITE:
		do_write(s, m.body, m.body_len - sizeof(struct fuse_write_in));
		break;
	case FUSE_FSYNC:
		do_fsync(s);
		break;
	case FUSE_FALLOCATE:
		do_fallocate(s, m.body);
		break;
	case FUSE_GETATTR:
		reply_attr(s);
		break;
	case FUSE_SETATTR:
		do_setattr(s, m.body);
		break;
	case FUSE_OPEN:
		do_open(s, m.body);
		break;
	case FUSE_FLUSH:		/* close(): fsync is what makes durable */
	case FUSE_RELEASE:
		reply(s, 0, NULL, 0);
		break;
	case FUSE_STATFS:
		do_statfs(s);
		break;
	case FUSE_FORGET:		/* no replies to these */
	case FUSE_BATCH_FORGET:
	case FUSE_INTERRUPT:
		slot_put(s);
		break;
	case FUSE_DESTROY:
		reply(s, 0, NULL, 0);
		session_end(w->x);
		break;
	case FUSE_INIT:			/* only once, answered at mount */
		reply(s, -EPROTO, NULL, 0);
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
		reply(s, -ENOTDIR, NULL, 0);
		break;
	default:			/* xattrs, lseek, ioctl, ... */
		reply(s, -ENOSYS, NULL, 0);
		break;
	}
}

/* ---- the workers ---- */

static struct fsx_slot *slot_get(struct fsx_worker *w)
{
	struct fsx_slot *s = w->free;

	if (s) {
		w->free = s->next;
		w->busy++;
	}
	return s;
}

/* The worker's descriptor is readable: requests while there are slots. */
static void on_fuse(void *opaque, uint32_t events)
{
	struct fsx_worker *w = opaque;
	struct fsx_slot *s;
	ssize_t n;

	(void)events;
	while (!w->quitting) {
		s = slot_get(w);
		if (!s) {
			/* Full: another worker takes new requests. */
			if (!iothread_watch(&w->t, w->fd, 0))
				w->watching = false;
			return;
		}
		n = read(w->fd, s->buf + FSX_ROOM - FSX_WRITE_HDR, FSX_READ_MAX);
		if (n > 0) {
			dispatch(w, s, s->buf + FSX_ROOM - FSX_WRITE_HDR, n);
			continue;
		}
		slot_put(s);
		if (n < 0 && (errno == EINTR || errno == ENOENT))
			continue;	/* ENOENT: interrupted while queued */
		if (n < 0 && errno == EAGAIN)
			return;
		/* ENODEV: unmounted; anything else: the session is broken. */
		if (!iothread_watch(&w->t, w->fd, 0))
			w->watching = false;
		session_end(w->x);
		return;
	}
}

static void on_quit(void *opaque, uint32_t events)
{
	struct fsx_worker *w = opaque;
	uint64_t v;

	(void)events;
	if (read(w->quit_fd, &v, 8) != 8 || w->quitting)
		return;
	w->quitting = true;
	if (w->watching && !iothread_watch(&w->t, w->fd, 0))
		w->watching = false;
	check_done(w);
}

/* A worker's slots, buffers and synchronous engine; fd is its descriptor. */
static int worker_setup(struct fsx *x, struct fsx_worker *w, unsigned int i,
			int fd)
{
	unsigned int k;

	w->x = x;
	w->idx = i;
	w->fd = fd;
	w->quit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	w->mem = mmap(NULL, (size_t)FSX_SLOTS * FSX_BUF, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (w->mem == MAP_FAILED)
		w->mem = NULL;
	if (posix_memalign((void **)&w->bounce, 4096, FSX_MAX_WRITE + 8192))
		w->bounce = NULL;
	if (w->quit_fd < 0 || !w->mem || !w->bounce)
		return -ENOMEM;
	for (k = 0; k < FSX_SLOTS; k++) {
		w->slot[k].w = w;
		w->slot[k].buf = w->mem + (size_t)k * FSX_BUF;
		w->slot[k].next = w->free;
		w->free = &w->slot[k];
	}
	return aio_sync_create(&w->sync);
}

/* Its thread, with an io_uring engine (or the synchronous one, aio=sync). */
static int worker_thread(struct fsx *x, struct fsx_worker *w)
{
	char name[16];
	int ret;

	snprintf(name, sizeof(name), "fsx-%u", w->idx);
	ret = iothread_init(&w->t, name);
	if (ret)
		return ret;
	w->t_init = true;
	ret = aio_create(&w->aio, &w->t, FSX_SLOTS * 2, !x->d->spec.aio_sync);
	if (!ret)
		ret = iothread_add(&w->t, w->quit_fd, EPOLLIN, on_quit, w);
	if (!ret)
		ret = iothread_add(&w->t, w->fd, EPOLLIN | EPOLLEXCLUSIVE,
				   on_fuse, w);
	if (ret)
		return ret;
	w->watching = true;
	return iothread_start(&w->t);
}

static void worker_free(struct fsx_worker *w)
{
	if (w->t_init) {
		iothread_stop(&w->t);
		iothread_free(&w->t);
	}
	if (w->aio && w->aio != w->sync)
		aio_free(w->aio);
	if (w->sync)
		aio_free(w->sync);
	if (w->quit_fd >= 0)
		close(w->quit_fd);
	if (w->fd >= 0 && w->fd != w->x->s.fd)
		close(w->fd);
	w->fd = -1;
	if (w->mem)
		munmap(w->mem, (size_t)FSX_SLOTS * FSX_BUF);
	free(w->bounce);
}

/* ---- INIT, open, close ---- */

/*
 * The kernel's first request, on the first descriptor (blocking): the
 * protocol version and what each side does.  Only what lkvm does is
 * agreed to.
 */
static int answer_init(struct fsx *x, char *err, size_t errlen)
{
	static uint8_t buf[FSX_ROOM + 8192];
	const struct fuse_init_in *in;
	struct fuse_init_out out = { 0 };
	struct fuse_out_header oh = { 0 };
	struct fuse_msg m;
	struct iovec v[2];
	ssize_t n;

	do {
		n = read(x->s.fd, buf, sizeof(buf));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errf(err, errlen, -errno, "FUSE: no INIT: %s",
			    strerror(errno));
	if (fuse_msg_parse(buf, n, &m) || m.h->opcode != FUSE_INIT)
		return errf(err, errlen, -EPROTO, "FUSE: the first request is not INIT");
	in = m.body;
	oh.unique = m.h->unique;
	if (in->major != FUSE_KERNEL_VERSION || in->minor < FUSE_MSG_MIN_MINOR) {
		oh.error = -EPROTO;
		oh.len = sizeof(oh);
		if (write(x->s.fd, &oh, sizeof(oh)) < 0)
			return -errno;
		return errf(err, errlen, -EPROTO,
			    "FUSE: the kernel speaks %u.%u, lkvm needs 7.%u or later",
			    in->major, in->minor, FUSE_MSG_MIN_MINOR);
	}
	x->minor = MIN(in->minor, (uint32_t)FUSE_KERNEL_MINOR_VERSION);
	out.major = FUSE_KERNEL_VERSION;
	out.minor = x->minor;
	out.max_readahead = in->max_readahead;
	out.flags = in->flags & (FUSE_ASYNC_READ | FUSE_BIG_WRITES |
				 FUSE_ASYNC_DIO | FUSE_MAX_PAGES);
	/* Background (asynchronous direct I/O) requests: one per slot. */
	out.max_background = MIN(FSX_SLOTS * x->nworkers, 65535u);
	out.congestion_threshold = out.max_background * 3 / 4;
	out.max_write = FSX_MAX_WRITE;
	out.time_gran = 1;
	out.max_pages = FSX_MAX_WRITE / 4096;
	oh.len = sizeof(oh) + sizeof(out);
	v[0] = (struct iovec){ &oh, sizeof(oh) };
	v[1] = (struct iovec){ &out, sizeof(out) };
	if (writev(x->s.fd, v, 2) < 0)
		return errf(err, errlen, -errno, "FUSE: INIT reply: %s",
			    strerror(errno));
	return 0;
}

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

static int fsx_alloc(struct fsx **xp, struct disk *d, bool ro,
		     unsigned int nworkers)
{
	struct fsx *x = calloc(1, sizeof(*x));
	struct timespec now;
	unsigned int i;

	if (!x)
		return -ENOMEM;
	x->d = d;
	x->ro = ro;
	x->s.fd = -1;
	x->reply_fd = -1;
	x->nworkers = nworkers;
	x->w = calloc(nworkers, sizeof(*x->w));
	x->end_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	x->done_fd = eventfd(0, EFD_CLOEXEC);
	pthread_mutex_init(&x->rmw_lock, NULL);
	pthread_mutex_init(&x->attr_lock, NULL);
	for (i = 0; x->w && i < nworkers; i++) {
		x->w[i].fd = -1;
		x->w[i].quit_fd = -1;
		x->w[i].x = x;
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
	return x->w && x->end_fd >= 0 && x->done_fd >= 0 ? 0 : -ENOMEM;
}

static void fsx_free(struct fsx *x)
{
	unsigned int i;

	for (i = 0; x->w && i < x->nworkers; i++)
		worker_free(&x->w[i]);
	if (x->s.fd >= 0)
		close(x->s.fd);
	if (x->end_fd >= 0)
		close(x->end_fd);
	if (x->done_fd >= 0)
		close(x->done_fd);
	pthread_mutex_destroy(&x->rmw_lock);
	pthread_mutex_destroy(&x->attr_lock);
	free(x->w);
	free(x);
}

int fsx_open(struct fsx **xp, const struct fsx_opts *o, char *err,
	     size_t errlen)
{
	struct disk_spec spec = { 0 };
	unsigned int n = o->threads, i;
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
		errf(err, errlen, ret, "out of memory");
		goto fail;
	}
	ret = fuse_session_mount(&x->s, o->mountpoint,
				 S_IFREG | (x->ro ? 0444 : 0644), "lkvm-export",
				 o->allow_other, err, errlen);
	if (!ret)
		ret = answer_init(x, err, errlen);
	if (ret)
		goto fail;
	for (i = 0; i < n; i++) {
		int fd = i ? fuse_session_clone(&x->s) : x->s.fd;

		if (!i && fcntl(fd, F_SETFL, O_NONBLOCK))
			fd = -errno;
		ret = fd < 0 ? fd : worker_setup(x, &x->w[i], i, fd);
		if (!ret)
			ret = worker_thread(x, &x->w[i]);
		if (ret) {
			errf(err, errlen, ret, "FUSE worker %u: %s", i,
			     strerror(-ret));
			goto fail;
		}
	}
	*xp = x;
	return 0;
fail:
	if (x) {
		fuse_session_unmount(&x->s);
		fsx_free(x);
	}
	disk_close(d);
	return ret;
}

int fsx_end_fd(const struct fsx *x)
{
	return x->end_fd;
}

void fsx_stats(struct fsx *x, int worker, struct fsx_stats *st)
{
	unsigned int i;

	memset(st, 0, sizeof(*st));
	st->threads = x->nworkers;
	st->size = x->d->size;
	for (i = 0; i < x->nworkers; i++) {
		if (worker >= 0 && i != (unsigned int)worker)
			continue;
		struct fsx_worker *w = &x->w[i];

#define ADD(f) st->f += __atomic_load_n(&w->f, __ATOMIC_RELAXED)
		ADD(reads);
		ADD(writes);
		ADD(flushes);
		ADD(zeroes);
		ADD(bytes_read);
		ADD(bytes_written);
		ADD(errors);
		ADD(bad);
#undef ADD
		if (w->t_init)
			st->cpu_ns += iothread_cpu_ns(&w->t);
	}
}

int fsx_close(struct fsx *x)
{
	struct disk *d = x->d;
	uint64_t v, done = 0, one = 1;
	unsigned int i, started = 0;
	struct aio *a;
	int ret;

	fuse_session_unmount(&x->s);
	/* Requests in flight finish and are answered; then the workers stop. */
	for (i = 0; i < x->nworkers; i++) {
		if (!x->w[i].t_init || x->w[i].quit_fd < 0)
			continue;
		if (write(x->w[i].quit_fd, &one, 8) == 8)
			started++;
	}
	while (done < started && read(x->done_fd, &v, 8) == 8)
		done += v;
	fsx_free(x);
	/* Everything written is made durable before the image closes. */
	ret = d->spec.ro ? 0 : aio_sync_create(&a);
	if (!ret && !d->spec.ro) {
		ret = sync_io(d, a, DISK_FLUSH, NULL, 0, 0, false);
		aio_free(a);
	}
	disk_close(d);
	return ret;
}

/* ---- for the fuzz target ---- */

int fsx_test_open(struct fsx **xp, struct disk *d, bool ro, int reply_fd)
{
	struct fsx *x;
	int ret = fsx_alloc(&x, d, ro, 1);

	if (!ret)
		ret = worker_setup(x, &x->w[0], 0, reply_fd);
	if (ret) {
		fsx_free(x);
		return ret;
	}
	x->w[0].aio = x->w[0].sync;	/* no thread: completions polled */
	*xp = x;
	return 0;
}

void fsx_test_request(struct fsx *x, const void *buf, size_t n)
{
	struct fsx_worker *w = &x->w[0];
	struct fsx_slot *s = slot_get(w);
	uint8_t *p;

	if (!s)
		return;
	n = MIN(n, (size_t)FSX_READ_MAX);
	p = s->buf + FSX_ROOM - FSX_WRITE_HDR;
	memcpy(p, buf, n);
	dispatch(w, s, p, n);
	while (w->busy)
		w->aio->ops->poll(w->aio);
}

void fsx_test_close(struct fsx *x)
{
	x->w[0].fd = -1;	/* the caller's */
	fsx_free(x);
}
