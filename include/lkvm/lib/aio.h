/*
 * aio.h - the asynchronous I/O engine of one I/O thread.
 *
 * Every queue thread that does disk I/O owns one engine.  Requests are
 * queued from handlers running on that thread (a virtio-blk drain) and
 * go to the kernel when the thread next sleeps; completions run their
 * callbacks on the same thread, then each registered batch hook runs
 * once, so a device signals the guest once per round of completions.
 * A request done on the spot (below) completes inside aio_submit, on
 * the drain's own stack; the drain's caller then signals for it.
 *
 * Two engines share the interface: io_uring through raw syscalls (the
 * thread sleeps in io_uring_enter, with its epoll fd polled by the ring,
 * so kick eventfds and completions wake it in one place; a kick eventfd
 * may instead have a multishot poll of its own in the ring, which names
 * the fd that fired, so no epoll_wait follows), and a
 * synchronous one (preadv/pwritev/fdatasync/fallocate done at submit)
 * for kernels without io_uring.
 *
 * Buffered reads and writes hinted AIO_TRY_NOWAIT are first tried on the
 * spot with RWF_NOWAIT: a page-cache hit is done in a microsecond or
 * two, whereas io_uring hands buffered I/O it cannot do without blocking
 * to its worker threads, a cross-CPU wake-up each way.  Only what would
 * block goes to the ring.  Files on memory filesystems (tmpfs has no
 * RWF_NOWAIT, and never waits for a device) are AIO_INLINE: done at
 * once.
 *
 * Nothing here is shared between threads; no locks.
 */
#ifndef LKVM_LIB_AIO_H
#define LKVM_LIB_AIO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct iothread;

enum aio_op {
	AIO_READ,
	AIO_WRITE,
	AIO_FDATASYNC,
	AIO_FALLOCATE,		/* mode, off, len */
};

enum aio_hint {
	AIO_ASYNC,		/* through the ring */
	AIO_TRY_NOWAIT,		/* buffered: page cache first (RWF_NOWAIT) */
	AIO_INLINE,		/* memory-backed file: never waits, do it now */
};

struct aio_io {
	enum aio_op op;
	int fd;
	const struct iovec *iov;
	unsigned int niov;
	uint64_t off;
	uint64_t len;		/* AIO_FALLOCATE */
	int mode;		/* AIO_FALLOCATE */
	bool barrier;		/* start after every earlier request ended */
	enum aio_hint hint;	/* how the engine may do it (below) */
	bool nowait_failed;	/* out: RWF_NOWAIT is not supported here */
	/* res: bytes moved, 0, or -errno; on the owner thread. */
	void (*done)(struct aio_io *io, long res);
	struct aio_io *next;	/* engine's use */
	long res;		/* engine's use */
};

struct aio;

struct aio_ops {
	const char *name;
	void (*submit)(struct aio *a, struct aio_io *io);
	/*
	 * The iothread's sleep: returns 0 when epfd is readable, 1 when it
	 * ran the handler of a watched fd instead (see watch).
	 */
	int (*wait)(struct aio *a, int epfd);
	/*
	 * Optional.  Before the thread starts: the ring polls fd itself
	 * and wait() runs fn when it is readable.  fn must consume the
	 * readiness (read the eventfd): the poll is multishot, woken
	 * again only by a new event.
	 */
	int (*watch)(struct aio *a, int fd, void (*fn)(void *, uint32_t),
		     void *opaque);
	/* Without sleeping: send what is queued, run what completed;
	 * true if anything completed.  An iothread poller. */
	bool (*poll)(struct aio *a);
	void (*free)(struct aio *a);
};

#define AIO_MAX_HOOKS 4
#define AIO_MAX_WATCH 4

struct aio {
	const struct aio_ops *ops;
	unsigned int inflight;
	void (*hook[AIO_MAX_HOOKS])(void *opaque);
	void *hook_opaque[AIO_MAX_HOOKS];
	unsigned int nhooks;
	uint64_t submitted, completed, waits;	/* statistics */
};

/*
 * Creates an engine for up to `depth` requests in flight and makes it
 * t's way of sleeping.  io_uring unless unavailable or want_uring is
 * false; *name says which.
 */
int aio_create(struct aio **ap, struct iothread *t, unsigned int depth,
	       bool want_uring);
/* The same, io_uring or nothing (-errno): for callers with their own
 * synchronous path. */
int aio_create_uring(struct aio **ap, struct iothread *t, unsigned int depth);
void aio_free(struct aio *a);
/* Makes the engine one of t's pollers (see iothread_add_poller). */
int aio_poll_on(struct aio *a, struct iothread *t);
/* Runs fn(opaque) after each round of completions. */
int aio_add_batch_hook(struct aio *a, void (*fn)(void *), void *opaque);

static inline void aio_submit(struct aio *a, struct aio_io *io)
{
	a->ops->submit(a, io);
}

/* Internal: engines' constructors, and the shared completion step. */
int aio_uring_create(struct aio **ap, unsigned int depth);
int aio_sync_create(struct aio **ap);
void aio_complete(struct aio *a, struct aio_io *io, long res);
void aio_batch_end(struct aio *a);

#endif
