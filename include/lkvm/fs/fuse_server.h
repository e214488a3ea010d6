/*
 * fuse_server.h - a FUSE filesystem served over a transport.  The
 * filesystem (struct fuse_fs_ops: lkvm export's one file, a passthrough
 * directory) sees requests as struct fuse_req and answers each exactly
 * once through fuse_reply*(); the transport (/dev/fuse here,
 * fs/fuse_devq.c; a virtqueue for virtio-fs) reads requests, places
 * payloads and sends replies.  Only the transport differs between the
 * two: the dispatch code is the filesystem's.
 *
 * Threads: a transport has queues, each served by one thread with its
 * own I/O engine; a request is handled, and its reply sent, on the
 * thread of its queue.  A filesystem that completes requests later (an
 * engine's completion) does so on the same thread.
 */
#ifndef LKVM_FS_FUSE_SERVER_H
#define LKVM_FS_FUSE_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "lkvm/fs/fuse_msg.h"

struct aio;
struct fuse_pool;
struct fuse_req;

/*
 * A transport's queue as the filesystem sees it: its index (for
 * per-queue state) and its I/O engine (io_uring, or synchronous; NULL on
 * a queue that takes no I/O requests, virtio-fs's hiprio).
 */
struct fuse_queue {
	unsigned int index;
	struct aio *aio;
	struct fuse_pool *pool;	/* helpers for blocking requests, or NULL */
};

/* What a transport does with a request's answer. */
struct fuse_transport_ops {
	/*
	 * Sends the reply: error (0 or -errno), then the payload: iov, or
	 * with iov NULL the first len bytes the filesystem put in
	 * req->out.  Then the request is over.
	 */
	void (*reply)(struct fuse_req *r, int err, const struct iovec *iov,
		      unsigned int n, size_t len);
	/* A request that gets no reply (FORGET, INTERRUPT) is over. */
	void (*drop)(struct fuse_req *r);
	/*
	 * reply in two halves, for a request a pool helper ran
	 * (fuse_pool.h): send writes the reply (any thread); finish, on
	 * the queue's thread, ends the request (replied: send came first;
	 * else it was dropped).
	 */
	void (*send)(struct fuse_req *r, int err, const struct iovec *iov,
		     unsigned int n, size_t len);
	void (*finish)(struct fuse_req *r, bool replied);
};

/*
 * One request.  Everything up to and including the opcode's fixed body
 * is in `m` (checked: fuse_msg.h).  A WRITE's data is `in` (n_in
 * pieces); a reply's payload may be put straight into `out` (up to
 * out_len bytes: a READ's data), then sent with fuse_reply_out().
 */
struct fuse_req {
	struct fuse_msg m;
	uint64_t unique;
	uint32_t opcode;
	struct iovec *in;
	unsigned int n_in;
	size_t in_len;
	struct iovec *out;
	unsigned int n_out;
	size_t out_len;
	struct fuse_queue *q;
	const struct fuse_transport_ops *t;
	void *priv;		/* the filesystem's per-request state */
	/* While a pool helper has it (fuse_pool.c). */
	const struct fuse_transport_ops *t_owner;
	void (*pool_fn)(void *fs, struct fuse_req *r);
	void *pool_fs;
	struct fuse_req *pool_next;
	bool pool_replied;
};

struct fuse_fs_ops {
	size_t req_priv;	/* bytes of per-request state it wants */
	/* Helpers per queue for its blocking requests (0: none). */
	unsigned int pool_threads;
	/*
	 * INIT: out has the transport's limits (max_write, max_pages) and
	 * the version; the filesystem sets the flags it wants, from the
	 * kernel's in->flags, and may lower limits.
	 */
	void (*init)(void *fs, const struct fuse_init_in *in,
		     struct fuse_init_out *out);
	/* One request (not INIT): answer it now or later, exactly once. */
	void (*request)(void *fs, struct fuse_req *r);
};

/*
 * INIT, for any transport: out gets the version agreed, the transport's
 * limits (max_write, one request page each for max_pages; asynchronous
 * requests up to max_background) and the flags the filesystem picks
 * from the kernel's.  -EPROTO if the kernel's version is not one lkvm
 * speaks (7.FUSE_MSG_MIN_MINOR or later).
 */
int fuse_init_answer(const struct fuse_init_in *in, uint32_t max_write,
		     uint32_t max_background, const struct fuse_fs_ops *ops,
		     void *fs, struct fuse_init_out *out);

static inline void fuse_reply(struct fuse_req *r, int err, const void *data,
			      size_t len)
{
	struct iovec v = { (void *)data, len };

	r->t->reply(r, err, data ? &v : NULL, data ? 1 : 0, data ? len : 0);
}

static inline void fuse_reply_err(struct fuse_req *r, int err)
{
	r->t->reply(r, err, NULL, 0, 0);
}

/* The payload is the first len bytes of r->out. */
static inline void fuse_reply_out(struct fuse_req *r, size_t len)
{
	r->t->reply(r, 0, NULL, 0, len);
}

static inline void fuse_reply_none(struct fuse_req *r)
{
	r->t->drop(r);
}

static inline struct aio *fuse_queue_aio(const struct fuse_queue *q)
{
	return q->aio;
}

static inline unsigned int fuse_queue_index(const struct fuse_queue *q)
{
	return q->index;
}

#endif
