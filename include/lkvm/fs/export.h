/*
 * export.h - a disk image served as one regular file over FUSE (`lkvm
 * export`): the file reads and writes as the image's guest-visible
 * contents, through the same disk layer virtio-blk uses.
 *
 * Threads: the caller opens, polls fsx_end_fd() and closes; `threads`
 * workers (iothreads, each with its own /dev/fuse descriptor and
 * io_uring engine) serve requests.
 */
#ifndef LKVM_FS_EXPORT_H
#define LKVM_FS_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lkvm/disk/disk.h"

struct fsx_opts {
	const char *image;	/* a -d specification: PATH[,options] */
	const char *mountpoint;	/* a regular file, made if missing */
	bool ro;
	unsigned int threads;	/* 0: one per host CPU */
	const char *format;	/* NULL: probe */
	enum disk_cache cache;
	bool cache_set;		/* cache was given (else the spec's) */
	bool allow_other;
};

/* One worker's counters, or (worker -1) the sums over all. */
struct fsx_stats {
	uint64_t reads, writes, flushes, zeroes, bytes_read, bytes_written;
	uint64_t errors, bad;	/* requests failed; malformed, dropped */
	uint64_t cpu_ns;	/* the workers' CPU time */
	unsigned int threads;
	uint64_t size;
};

struct fsx;

/*
 * Opens the image (locked: exclusively unless ro), mounts the file,
 * answers the kernel's INIT and starts the workers.  Returns 0, or
 * -errno with one line in err.
 */
int fsx_open(struct fsx **xp, const struct fsx_opts *o, char *err,
	     size_t errlen);
/* Readable (an eventfd) once the session ended: unmounted from outside. */
int fsx_end_fd(const struct fsx *x);
void fsx_stats(struct fsx *x, int worker, struct fsx_stats *st);
/*
 * Unmounts (lazily if the file is still in use), lets requests in
 * flight finish, stops the workers, flushes and closes the image.
 * Returns 0, or -errno if the final flush failed.
 */
int fsx_close(struct fsx *x);

/*
 * For the fuzz target: one request's bytes through the dispatcher of an
 * export with no mount (replies are written to reply_fd), on a disk
 * opened from spec, with a synchronous engine.
 */
int fsx_test_open(struct fsx **xp, struct disk *d, bool ro, int reply_fd);
void fsx_test_request(struct fsx *x, const void *buf, size_t n);
void fsx_test_close(struct fsx *x);

#endif
