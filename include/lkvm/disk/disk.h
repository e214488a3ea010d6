/*
 * disk.h - the block backend interface.  virtio-blk knows disks only
 * through struct disk_ops; each image format is one file in disk/ that
 * fills one (raw.c now, qcow2.c later) and one line in disk.c's list.
 *
 * A request is submitted on a queue's I/O thread with that thread's
 * engine (aio.h) and completes on the same thread through r->done.  A
 * disk is shared by all its queues: backends keep no per-request state
 * outside the request, and any shared metadata they have is theirs to
 * lock.
 */
#ifndef LKVM_DISK_DISK_H
#define LKVM_DISK_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "lkvm/lib/aio.h"

#define DISK_SERIAL_MAX 20	/* virtio-blk's ID string */

enum disk_cache {
	DISK_CACHE_WRITEBACK,	/* host page cache; FLUSH = fdatasync */
	DISK_CACHE_NONE,	/* O_DIRECT; FLUSH = fdatasync */
	DISK_CACHE_UNSAFE,	/* host page cache; FLUSH does nothing */
};

/* One -d option. */
struct disk_spec {
	char *path;
	bool ro;
	enum disk_cache cache;
	unsigned int queues;		/* 0: the default */
	bool aio_sync;			/* aio=sync: no io_uring */
	uint64_t poll;			/* poll=: an iothread poll policy
					 * (0: IOT_POLL_AUTO) */
	char serial[DISK_SERIAL_MAX + 1];
	char format[16];		/* "": probe */
	unsigned int depth;		/* in a backing chain: 0 at the top */
	bool no_lock;			/* lock=off */
	bool has_fd;			/* fd=N given: */
	int fd;				/* already open */
	/*
	 * Optional: a helper thread the backend starts (qcow2's write-back)
	 * calls this first, on itself; non-zero ends the thread.  The VM
	 * sets it to install its I/O seccomp filter.
	 */
	int (*thread_start)(const char *name);
};

enum disk_req_type {
	DISK_READ,
	DISK_WRITE,
	DISK_FLUSH,
	DISK_DISCARD,
	DISK_WRITE_ZEROES,
};

struct disk_req {
	enum disk_req_type type;
	struct iovec *iov;		/* the backend may advance these */
	unsigned int niov;
	uint64_t off, len;		/* bytes */
	bool unmap;			/* write zeroes may deallocate */
	void (*done)(struct disk_req *r, int err);	/* 0 or -errno */
	struct disk *disk;
	struct aio *aio;		/* the engine it was submitted on */
	struct aio_io io;		/* for backends that map 1:1 */
};

struct disk;

struct disk_ops {
	const char *name;
	/* Is this image ours?  hdr: the file's first bytes (n of them). */
	bool (*probe)(const uint8_t *hdr, size_t n);
	/* d->fd is open; set d->size and anything private. */
	int (*open)(struct disk *d, char *err, size_t errlen);
	void (*submit)(struct disk *d, struct aio *a, struct disk_req *r);
	void (*close)(struct disk *d);
};

/* The largest direct I/O alignment lkvm handles (and its buffers'). */
#define DISK_DIO_MAX	4096

struct disk {
	const struct disk_ops *ops;
	struct disk_spec spec;
	int fd;
	uint64_t size;			/* bytes the guest sees */
	/*
	 * Logical block size the guest is told: 512, or the device's, or
	 * with O_DIRECT what the file's direct I/O needs (a file on a
	 * 4096-byte-sector disk), so that a guest's requests are aligned.
	 */
	unsigned int block_size;
	/* With O_DIRECT: offsets, lengths and buffers align to this. */
	unsigned int dio_align;
	bool blockdev;
	void *priv;
	/* Counters; updated from queue threads. */
	uint64_t errors;
};

/*
 * PATH[,ro][,direct][,cache=writeback|none|unsafe][,queues=N]
 * [,serial=TEXT][,format=raw|qcow2][,aio=io_uring|sync][,lock=on|off]
 * [,fd=N].  ",," is a comma inside a field (a path with commas).  With
 * fd=N the disk is that open file (dup'ed; its access mode must allow
 * what ro says) and PATH only names it in messages.
 */
int disk_spec_parse(const char *s, struct disk_spec *spec, char *err,
		    size_t errlen);
void disk_spec_free(struct disk_spec *spec);
int disk_open(struct disk **dp, const struct disk_spec *spec, char *err,
	      size_t errlen);
/*
 * Takes the image locks QEMU takes (disk/lock.c): shared for reading,
 * refusing writers; for writing, refusing every other user.
 */
int disk_lock(struct disk *d, char *err, size_t errlen);
void disk_close(struct disk *d);
/*
 * Whole-buffer pread (lib's pread_full) where the image reads as zeroes
 * past the end of its file: 0 or -errno.  Writes use pwrite_full().
 */
int disk_pread_full(int fd, void *buf, size_t len, uint64_t off);
/* Writes len zero bytes at off (no allocation): 0 or -errno. */
int disk_pwrite_zeroes(int fd, uint64_t off, uint64_t len);

static inline void disk_submit(struct disk *d, struct aio *a,
			       struct disk_req *r)
{
	r->disk = d;
	r->aio = a;
	d->ops->submit(d, a, r);
}

extern const struct disk_ops disk_raw_ops;
extern const struct disk_ops disk_null_ops;
extern const struct disk_ops disk_qcow2_ops;

/* A disk of size bytes with no storage (benchmarks). */
int disk_null_open(struct disk **dp, uint64_t size);

#endif
