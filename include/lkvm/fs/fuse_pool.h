/*
 * fuse_pool.h - a queue's helper threads for FUSE requests that may
 * block (a lookup on a slow disk, a directory listing, a rename), so
 * that they do not stall the queue behind them.  Data I/O needs none:
 * it goes through the queue's io_uring.
 *
 * Threads: the queue's own thread hands a request over
 * (fuse_pool_run); a helper runs the filesystem's handler for it, whose
 * reply is written at once (the transport's send, safe on any thread)
 * and then passed back; the queue's thread finishes it (the transport's
 * finish: the used ring, the slot) when its eventfd fires, and calls
 * the transport's flush once per such round.  The pool's lock is the
 * queue's own, shared with nothing else.
 */
#ifndef LKVM_FS_FUSE_POOL_H
#define LKVM_FS_FUSE_POOL_H

#include "lkvm/fs/fuse_server.h"

struct iothread;
struct fuse_pool;

struct fuse_pool_opts {
	unsigned int threads;
	const char *name;		/* helpers are NAME-p0, ... */
	struct iothread *owner;		/* the queue's thread */
	/* Optional, first thing on each helper (a seccomp filter). */
	int (*thread_start)(const char *name);
	/* Optional, on the owner after each round of finished requests. */
	void (*flush)(void *opaque);
	void *flush_opaque;
};

int fuse_pool_create(struct fuse_pool **pp, const struct fuse_pool_opts *o);
/* Stops the helpers (after the requests they hold) and frees it. */
void fuse_pool_free(struct fuse_pool *p);
/* Requests handed over and not yet finished (any thread, racy). */
unsigned int fuse_pool_inflight(struct fuse_pool *p);
/* Waits until none is (a reset, with the owner paused). */
void fuse_pool_drain(struct fuse_pool *p);

/*
 * On the queue's thread: fn(fs, r) on a helper when the queue has a
 * pool, else here and now.
 */
void fuse_run_blocking(struct fuse_req *r,
		       void (*fn)(void *fs, struct fuse_req *r), void *fs);

#endif
