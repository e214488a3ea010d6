/*
 * raw.c - raw images and host block devices: the guest's bytes are the
 * file's bytes.  Reads and writes go straight to the engine; FLUSH is an
 * fdatasync queued as a barrier (it starts only after every earlier
 * request on this queue ended), or nothing with cache=unsafe; discard
 * punches a hole, write-zeroes zero-fills a range (or punches with
 * unmap).  Everything runs on the submitting queue's thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/vfs.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lkvm/disk/disk.h"
#include "lkvm/lib/util.h"

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC	0x01021994
#endif
#ifndef RAMFS_MAGIC
#define RAMFS_MAGIC	0x858458f6
#endif

/* Shared by the disk's queues: learnt once, read by all. */
struct raw {
	bool memfs;			/* tmpfs/ramfs: I/O never waits */
	atomic_bool read_nowait_off;	/* RWF_NOWAIT unsupported here */
	atomic_bool write_nowait_off;
};

static enum aio_hint raw_hint(struct disk *d, enum disk_req_type type)
{
	struct raw *raw = d->priv;

	if (d->spec.cache == DISK_CACHE_NONE)
		return AIO_ASYNC;
	/*
	 * Buffered writes land in the page cache: done on the spot, as a
	 * psync writer would (filesystems rarely take RWF_NOWAIT writes,
	 * and io_uring would hand each to a worker thread).
	 */
	if (raw->memfs || type == DISK_WRITE)
		return AIO_INLINE;
	if (atomic_load_explicit(type == DISK_READ ? &raw->read_nowait_off :
				 &raw->write_nowait_off, memory_order_relaxed))
		return AIO_ASYNC;
	return AIO_TRY_NOWAIT;
}

static void raw_io_done(struct aio_io *io, long res);

static void raw_resubmit(struct disk_req *r, struct aio *a)
{
	r->io.iov = r->iov;
	r->io.niov = r->niov;
	r->io.off = r->off;
	aio_submit(a, &r->io);
}

/* Moves the request's iovecs past n bytes already transferred. */
static void raw_advance(struct disk_req *r, uint64_t n)
{
	r->off += n;
	r->len -= n;
	while (n && r->niov) {
		if (n < r->iov->iov_len) {
			r->iov->iov_base = (uint8_t *)r->iov->iov_base + n;
			r->iov->iov_len -= n;
			return;
		}
		n -= r->iov->iov_len;
		r->iov++;
		r->niov--;
	}
}

static void raw_io_done(struct aio_io *io, long res)
{
	struct disk_req *r = container_of(io, struct disk_req, io);
	struct aio *a = r->aio;
	struct raw *raw = r->disk->priv;

	if (io->nowait_failed)
		atomic_store_explicit(io->op == AIO_READ ? &raw->read_nowait_off :
				      &raw->write_nowait_off, true,
				      memory_order_relaxed);
	if ((r->type == DISK_READ || r->type == DISK_WRITE) && res >= 0 &&
	    (uint64_t)res < r->len) {
		if (res == 0) {
			r->done(r, -EIO);	/* past the end of the file */
			return;
		}
		/* Short transfer: go on from where it stopped. */
		raw_advance(r, res);
		raw_resubmit(r, a);
		return;
	}
	if (res == -EOPNOTSUPP && r->type == DISK_DISCARD)
		res = 0;	/* a discard is only a hint */
	r->done(r, res < 0 ? (int)res : 0);
}

static bool raw_aligned(const struct disk_req *r, unsigned int align)
{
	unsigned int i;

	if (r->off % align)
		return false;
	for (i = 0; i < r->niov; i++)
		if ((uintptr_t)r->iov[i].iov_base % align ||
		    r->iov[i].iov_len % align)
			return false;
	return true;
}

/*
 * O_DIRECT wants aligned buffers, offsets and lengths; a guest may hand
 * out any buffer, and a hostile one any offset.  Such a request goes
 * through an aligned bounce buffer covering the aligned blocks around
 * it, synchronously: a read reads them all; a write reads the first and
 * last block when the request covers them only in part, then writes the
 * blocks back.  (A guest told the logical block size that sends
 * misaligned writes can race its own writes to the same block.)
 */
static int raw_bounce(struct disk *d, struct disk_req *r)
{
	uint64_t a = d->dio_align, start = ALIGN_DOWN(r->off, a);
	uint64_t end = ALIGN_UP(r->off + r->len, a), len = end - start;
	uint64_t head = r->off - start;
	bool write = r->type == DISK_WRITE;
	uint8_t *buf;
	int ret = 0;

	if (posix_memalign((void **)&buf, DISK_DIO_MAX, len))
		return -ENOMEM;
	if (write && head)
		ret = disk_pread_full(d->fd, buf, a, start);
	if (!ret && write && (r->off + r->len) % a && end - a >= start +
	    (head ? a : 0))
		ret = disk_pread_full(d->fd, buf + len - a, a, end - a);
	if (!ret && write) {
		iov_to_buf(r->iov, r->niov, 0, buf + head, r->len);
		ret = pwrite_full(d->fd, buf, len, start);
	} else if (!ret) {
		ret = disk_pread_full(d->fd, buf, len, start);
		if (!ret)
			buf_to_iov(r->iov, r->niov, 0, buf + head, r->len);
	}
	free(buf);
	return ret;
}

/* Write-zeroes where fallocate cannot: plain writes of zeroes. */
static void raw_zeroes_done(struct aio_io *io, long res)
{
	struct disk_req *r = container_of(io, struct disk_req, io);

	if (res == -EOPNOTSUPP || res == -EINVAL)
		res = disk_pwrite_zeroes(r->disk->fd, r->off, r->len);
	r->done(r, res < 0 ? (int)res : 0);
}

static void raw_submit(struct disk *d, struct aio *a, struct disk_req *r)
{
	struct aio_io *io = &r->io;

	memset(io, 0, sizeof(*io));
	io->fd = d->fd;
	io->done = raw_io_done;
	switch (r->type) {
	case DISK_READ:
	case DISK_WRITE:
		if (!r->len) {
			r->done(r, 0);
			return;
		}
		if (d->spec.cache == DISK_CACHE_NONE &&
		    !raw_aligned(r, d->dio_align)) {
			r->done(r, raw_bounce(d, r));
			return;
		}
		io->op = r->type == DISK_READ ? AIO_READ : AIO_WRITE;
		io->hint = raw_hint(d, r->type);
		io->iov = r->iov;
		io->niov = r->niov;
		io->off = r->off;
		break;
	case DISK_FLUSH:
		if (d->spec.cache == DISK_CACHE_UNSAFE) {
			r->done(r, 0);
			return;
		}
		io->op = AIO_FDATASYNC;
		io->barrier = true;
		break;
	case DISK_DISCARD:
	case DISK_WRITE_ZEROES:
		if (!r->len) {
			r->done(r, 0);
			return;
		}
		io->op = AIO_FALLOCATE;
		io->off = r->off;
		io->len = r->len;
		if (r->type == DISK_DISCARD || r->unmap) {
			io->mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
		} else {
			io->mode = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
		}
		if (r->type == DISK_WRITE_ZEROES)
			io->done = raw_zeroes_done;
		break;
	}
	aio_submit(a, io);
}

static bool raw_probe(const uint8_t *hdr, size_t n)
{
	(void)hdr;
	(void)n;
	return true;	/* anything no other format claims */
}

static int raw_open(struct disk *d, char *err, size_t errlen)
{
	struct raw *raw = calloc(1, sizeof(*raw));
	struct statfs sf;

	if (!raw)
		return errf(err, errlen, -ENOMEM, "out of memory");
	raw->memfs = !d->blockdev && fstatfs(d->fd, &sf) == 0 &&
		     (sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC);
	d->priv = raw;
	d->size = ALIGN_DOWN(d->size, 512);	/* a tail sector is unusable */
	return 0;
}

static void raw_close(struct disk *d)
{
	free(d->priv);
	d->priv = NULL;
}

const struct disk_ops disk_raw_ops = {
	.name = "raw",
	.probe = raw_probe,
	.open = raw_open,
	.submit = raw_submit,
	.close = raw_close,
};
