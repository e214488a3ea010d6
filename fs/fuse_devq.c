/*
 * fuse_devq.c - the /dev/fuse transport (fuse_devq.h).
 *
 * Each queue is an iothread that owns one /dev/fuse descriptor, an I/O
 * engine and DEVQ_SLOTS request slots.  The descriptors are watched with
 * EPOLLEXCLUSIVE: they share the session's pending list, and a new
 * request wakes one idle queue, not all of them.  A queue reads requests
 * while it has free slots (a full queue stops watching its descriptor
 * until a slot frees, so the others take the new requests) and hands
 * each to the filesystem; the reply goes out on the same descriptor,
 * since each clone has its own list of requests being processed, and
 * frees the slot.
 *
 * A request is read at an offset that puts a WRITE's data on a page
 * boundary (O_DIRECT images take it as it is); the same page-aligned
 * space takes a READ's reply payload.
 *
 * Closing: unmount, then each queue is told to quit: it stops reading,
 * and once its last request is answered it says so on done_fd; then the
 * threads are stopped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lkvm/fs/fuse_devq.h"
#include "lkvm/fs/fuse_dev.h"
#include "lkvm/fs/fuse_pool.h"
#include "lkvm/lib/aio.h"
#include "lkvm/lib/iothread.h"
#include "lkvm/lib/util.h"

#define DEVQ_SLOTS	64		/* requests in flight per queue */
#define DEVQ_ROOM	4096		/* a request is read to end here... */
#define DEVQ_WRITE_HDR	(sizeof(struct fuse_in_header) + \
			 sizeof(struct fuse_write_in))
/* ...so a WRITE's data starts at DEVQ_ROOM; room after for anything. */
#define DEVQ_BUF	(DEVQ_ROOM + FUSE_DEVQ_MAX_WRITE + 4096)
#define DEVQ_READ_MAX	(DEVQ_BUF - (DEVQ_ROOM - DEVQ_WRITE_HDR))

struct devq_slot {
	struct fuse_req r;
	uint8_t *buf;		/* DEVQ_BUF bytes, page-aligned */
	struct iovec in_iov, out_iov;
	struct devq_slot *next;	/* free list */
};

struct devq_queue {
	struct fuse_queue fq;	/* index and engine, for the filesystem */
	struct fuse_devq *d;
	struct iothread t;
	bool t_init;
	int fd;			/* this queue's /dev/fuse descriptor */
	int quit_fd;		/* eventfd: finish what is in flight, stop */
	bool quitting, watching, done;
	struct devq_slot slot[DEVQ_SLOTS];
	struct devq_slot *free;
	unsigned int busy;
	uint8_t *mem;		/* the slots' buffers */
	uint8_t *priv;		/* the filesystem's per-request state */
	uint64_t bad;		/* malformed requests (dropped or EINVAL) */
	uint64_t requests;	/* read from the descriptor */
};

struct fuse_devq {
	struct fuse_session s;
	const struct fuse_fs_ops *ops;
	void *fs;
	unsigned int n;
	struct devq_queue *q;
	int end_fd;		/* eventfd: the session ended */
	int done_fd;		/* eventfd: a quitting queue is idle */
	bool aio_sync;
};

static struct devq_queue *to_devq(struct fuse_queue *fq)
{
	return container_of(fq, struct devq_queue, fq);
}

/* ---- slots and replies ---- */

/* A quitting queue with nothing in flight tells fuse_devq_close, once. */
static void check_done(struct devq_queue *q)
{
	uint64_t one = 1;

	if (q->quitting && !q->busy && !q->done) {
		q->done = true;
		if (write(q->d->done_fd, &one, 8) != 8)
			return;
	}
}

static void slot_put(struct devq_slot *s)
{
	struct devq_queue *q = to_devq(s->r.q);

	s->next = q->free;
	q->free = s;
	q->busy--;
	if (q->quitting) {
		check_done(q);
	} else if (!q->watching && q->t_init) {
		if (!iothread_watch(&q->t, q->fd, EPOLLIN | EPOLLEXCLUSIVE))
			q->watching = true;
	}
}

/* The reply on the queue's descriptor (any thread: one writev). */
static void devq_send(struct fuse_req *r, int err, const struct iovec *iov,
		      unsigned int n, size_t len)
{
	struct devq_slot *s = container_of(r, struct devq_slot, r);
	struct fuse_out_header oh = { .error = err, .unique = r->unique };
	struct iovec v[4];
	unsigned int i, k = 1;

	v[0] = (struct iovec){ &oh, sizeof(oh) };
	oh.len = sizeof(oh);
	if (!err && iov) {
		for (i = 0; i < n && k < 4; i++, k++) {
			v[k] = iov[i];
			oh.len += iov[i].iov_len;
		}
	} else if (!err && len) {
		v[k++] = (struct iovec){ s->out_iov.iov_base,
					 MIN(len, s->out_iov.iov_len) };
		oh.len += v[1].iov_len;
	}
	/*
	 * A failure is the requester's loss, not ours: ENOENT, it was
	 * interrupted meanwhile; ENODEV, the session is gone.
	 */
	if (writev(to_devq(r->q)->fd, v, k) < 0)
		(void)errno;
}

static void devq_finish(struct fuse_req *r, bool replied)
{
	(void)replied;
	slot_put(container_of(r, struct devq_slot, r));
}

static void devq_reply(struct fuse_req *r, int err, const struct iovec *iov,
		       unsigned int n, size_t len)
{
	devq_send(r, err, iov, n, len);
	devq_finish(r, true);
}

static void devq_drop(struct fuse_req *r)
{
	devq_finish(r, false);
}

static const struct fuse_transport_ops devq_ops = {
	.reply = devq_reply,
	.drop = devq_drop,
	.send = devq_send,
	.finish = devq_finish,
};

static struct devq_slot *slot_get(struct devq_queue *q)
{
	struct devq_slot *s = q->free;

	if (s) {
		q->free = s->next;
		q->busy++;
	}
	return s;
}

/* n bytes at p (inside s->buf): checked, then to the filesystem. */
static void dispatch(struct devq_queue *q, struct devq_slot *s, const void *p,
		     size_t n)
{
	struct fuse_req *r = &s->r;
	int ret = fuse_msg_parse(p, n, &r->m);
	size_t fixed;

	if (ret == -EPROTO) {		/* not one request: nobody to answer */
		q->bad++;
		slot_put(s);
		return;
	}
	r->unique = r->m.h->unique;
	r->opcode = r->m.h->opcode;
	if (ret) {
		q->bad++;
		fuse_reply_err(r, ret);
		return;
	}
	if (r->opcode == FUSE_INIT) {	/* only once, answered at mount */
		fuse_reply_err(r, -EPROTO);
		return;
	}
	fixed = fuse_msg_fixed_size(r->opcode);
	s->in_iov = (struct iovec){ (uint8_t *)r->m.body + fixed,
				    r->m.body_len - fixed };
	r->in = &s->in_iov;
	r->n_in = 1;
	r->in_len = s->in_iov.iov_len;
	s->out_iov = (struct iovec){ s->buf + DEVQ_ROOM, DEVQ_BUF - DEVQ_ROOM };
	r->out = &s->out_iov;
	r->n_out = 1;
	r->out_len = s->out_iov.iov_len;
	q->d->ops->request(q->d->fs, r);
}

static void session_end(struct fuse_devq *d)
{
	uint64_t one = 1;

	if (write(d->end_fd, &one, 8) != 8)
		return;
}

/* The queue's descriptor is readable: requests while there are slots. */
static void on_fuse(void *opaque, uint32_t events)
{
	struct devq_queue *q = opaque;
	struct devq_slot *s;
	ssize_t n;

	(void)events;
	while (!q->quitting) {
		s = slot_get(q);
		if (!s) {
			/* Full: another queue takes new requests. */
			if (!iothread_watch(&q->t, q->fd, 0))
				q->watching = false;
			return;
		}
		n = read(q->fd, s->buf + DEVQ_ROOM - DEVQ_WRITE_HDR,
			 DEVQ_READ_MAX);
		if (n > 0) {
			q->requests++;
			dispatch(q, s, s->buf + DEVQ_ROOM - DEVQ_WRITE_HDR, n);
			continue;
		}
		slot_put(s);
		if (n < 0 && (errno == EINTR || errno == ENOENT))
			continue;	/* ENOENT: interrupted while queued */
		if (n < 0 && errno == EAGAIN)
			return;
		/* ENODEV: unmounted; anything else: the session is broken. */
		if (!iothread_watch(&q->t, q->fd, 0))
			q->watching = false;
		session_end(q->d);
		return;
	}
}

static void on_quit(void *opaque, uint32_t events)
{
	struct devq_queue *q = opaque;
	uint64_t v;

	(void)events;
	if (read(q->quit_fd, &v, 8) != 8 || q->quitting)
		return;
	q->quitting = true;
	if (q->watching && !iothread_watch(&q->t, q->fd, 0))
		q->watching = false;
	check_done(q);
}

/* ---- queues ---- */

/* A queue's slots and buffers; fd is its descriptor. */
static int queue_setup(struct fuse_devq *d, struct devq_queue *q,
		       unsigned int i, int fd)
{
	size_t priv = ALIGN_UP(d->ops->req_priv, 64);
	unsigned int k;

	q->d = d;
	q->fq.index = i;
	q->fd = fd;
	q->quit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	q->mem = mmap(NULL, (size_t)DEVQ_SLOTS * DEVQ_BUF,
		      PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (q->mem == MAP_FAILED)
		q->mem = NULL;
	q->priv = priv ? calloc(DEVQ_SLOTS, priv) : NULL;
	if (q->quit_fd < 0 || !q->mem || (priv && !q->priv))
		return -ENOMEM;
	for (k = 0; k < DEVQ_SLOTS; k++) {
		struct devq_slot *s = &q->slot[k];

		s->buf = q->mem + (size_t)k * DEVQ_BUF;
		s->r.q = &q->fq;
		s->r.t = &devq_ops;
		s->r.priv = priv ? q->priv + k * priv : NULL;
		s->next = q->free;
		q->free = s;
	}
	return 0;
}

/* Its thread, with an io_uring engine (or the synchronous one). */
static int queue_thread(struct fuse_devq *d, struct devq_queue *q)
{
	char name[16];
	int ret;

	snprintf(name, sizeof(name), "fuse-%u", q->fq.index);
	ret = iothread_init(&q->t, name);
	if (ret)
		return ret;
	q->t_init = true;
	ret = aio_create(&q->fq.aio, &q->t, DEVQ_SLOTS * 2, !d->aio_sync);
	if (!ret)
		ret = iothread_add(&q->t, q->quit_fd, EPOLLIN, on_quit, q);
	if (!ret)
		ret = iothread_add(&q->t, q->fd, EPOLLIN | EPOLLEXCLUSIVE,
				   on_fuse, q);
	if (!ret && d->ops->pool_threads) {
		struct fuse_pool_opts po = {
			.threads = d->ops->pool_threads,
			.name = name,
			.owner = &q->t,
		};

		ret = fuse_pool_create(&q->fq.pool, &po);
	}
	if (ret)
		return ret;
	q->watching = true;
	return iothread_start(&q->t);
}

static void queue_free(struct devq_queue *q)
{
	if (q->t_init)
		iothread_stop(&q->t);
	/* Its helpers hold nothing now: the queue answered everything. */
	fuse_pool_free(q->fq.pool);
	if (q->t_init)
		iothread_free(&q->t);
	if (q->fq.aio)
		aio_free(q->fq.aio);
	if (q->quit_fd >= 0)
		close(q->quit_fd);
	if (q->fd >= 0 && q->fd != q->d->s.fd)
		close(q->fd);
	q->fd = -1;
	if (q->mem)
		munmap(q->mem, (size_t)DEVQ_SLOTS * DEVQ_BUF);
	free(q->priv);
}

/* ---- INIT ---- */

/*
 * The kernel's first request, on the first descriptor (blocking): the
 * protocol version and what each side does.  The filesystem picks its
 * flags from the kernel's.
 */
static int answer_init(struct fuse_devq *d, char *err, size_t errlen)
{
	static uint8_t buf[DEVQ_ROOM + 8192];
	const struct fuse_init_in *in;
	struct fuse_init_out out;
	struct fuse_out_header oh = { 0 };
	struct fuse_msg m;
	struct iovec v[2];
	ssize_t n;

	do {
		n = read(d->s.fd, buf, sizeof(buf));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errf(err, errlen, -errno, "FUSE: no INIT: %s",
			    strerror(errno));
	if (fuse_msg_parse(buf, n, &m) || m.h->opcode != FUSE_INIT)
		return errf(err, errlen, -EPROTO,
			    "FUSE: the first request is not INIT");
	in = m.body;
	oh.unique = m.h->unique;
	/* Background (asynchronous) requests: one per slot. */
	if (fuse_init_answer(in, FUSE_DEVQ_MAX_WRITE, DEVQ_SLOTS * d->n,
			     d->ops, d->fs, &out)) {
		oh.error = -EPROTO;
		oh.len = sizeof(oh);
		if (write(d->s.fd, &oh, sizeof(oh)) < 0)
			return -errno;
		return errf(err, errlen, -EPROTO,
			    "FUSE: the kernel speaks %u.%u, lkvm needs 7.%u or later",
			    in->major, in->minor, FUSE_MSG_MIN_MINOR);
	}
	oh.len = sizeof(oh) + sizeof(out);
	v[0] = (struct iovec){ &oh, sizeof(oh) };
	v[1] = (struct iovec){ &out, sizeof(out) };
	if (writev(d->s.fd, v, 2) < 0)
		return errf(err, errlen, -errno, "FUSE: INIT reply: %s",
			    strerror(errno));
	return 0;
}

/* ---- open and close ---- */

static int devq_alloc(struct fuse_devq **dp, const struct fuse_fs_ops *ops,
		      void *fs, unsigned int n)
{
	struct fuse_devq *d = calloc(1, sizeof(*d));
	unsigned int i;

	*dp = d;
	if (!d)
		return -ENOMEM;
	d->ops = ops;
	d->fs = fs;
	d->n = n;
	d->s.fd = -1;
	d->q = calloc(n, sizeof(*d->q));
	d->end_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	d->done_fd = eventfd(0, EFD_CLOEXEC);
	for (i = 0; d->q && i < n; i++) {
		d->q[i].d = d;
		d->q[i].fd = -1;
		d->q[i].quit_fd = -1;
	}
	return d->q && d->end_fd >= 0 && d->done_fd >= 0 ? 0 : -ENOMEM;
}

static void devq_free(struct fuse_devq *d)
{
	unsigned int i;

	for (i = 0; d->q && i < d->n; i++)
		queue_free(&d->q[i]);
	if (d->s.fd >= 0)
		close(d->s.fd);
	if (d->end_fd >= 0)
		close(d->end_fd);
	if (d->done_fd >= 0)
		close(d->done_fd);
	free(d->q);
	free(d);
}

int fuse_devq_open(struct fuse_devq **dp, const struct fuse_devq_opts *o,
		   char *err, size_t errlen)
{
	struct fuse_devq *d;
	unsigned int i;
	int ret;

	*dp = NULL;
	ret = devq_alloc(&d, o->ops, o->fs, MAX(o->threads, 1u));
	if (ret) {
		if (d)
			devq_free(d);
		return errf(err, errlen, ret, "out of memory");
	}
	d->aio_sync = o->aio_sync;
	ret = fuse_session_mount(&d->s, o->mountpoint, o->rootmode, o->source,
				 o->allow_other, err, errlen);
	if (!ret)
		ret = answer_init(d, err, errlen);
	for (i = 0; !ret && i < d->n; i++) {
		int fd = i ? fuse_session_clone(&d->s) : d->s.fd;

		if (!i && fcntl(fd, F_SETFL, O_NONBLOCK))
			fd = -errno;
		ret = fd < 0 ? fd : queue_setup(d, &d->q[i], i, fd);
		if (!ret)
			ret = queue_thread(d, &d->q[i]);
		if (ret)
			errf(err, errlen, ret, "FUSE queue %u: %s", i,
			     strerror(-ret));
	}
	if (ret) {
		fuse_session_unmount(&d->s);
		devq_free(d);
		return ret;
	}
	*dp = d;
	return 0;
}

int fuse_devq_end_fd(const struct fuse_devq *d)
{
	return d->end_fd;
}

unsigned int fuse_devq_threads(const struct fuse_devq *d)
{
	return d->n;
}

uint64_t fuse_devq_cpu_ns(const struct fuse_devq *d, unsigned int i)
{
	return i < d->n && d->q[i].t_init ? iothread_cpu_ns(&d->q[i].t) : 0;
}

uint64_t fuse_devq_requests(const struct fuse_devq *d, unsigned int i)
{
	return i < d->n ? __atomic_load_n(&d->q[i].requests, __ATOMIC_RELAXED) : 0;
}

uint64_t fuse_devq_malformed(const struct fuse_devq *d, unsigned int i)
{
	return i < d->n ? __atomic_load_n(&d->q[i].bad, __ATOMIC_RELAXED) : 0;
}

void fuse_devq_close(struct fuse_devq *d)
{
	uint64_t v, done = 0, one = 1;
	unsigned int i, started = 0;

	fuse_session_unmount(&d->s);
	for (i = 0; i < d->n; i++) {
		if (!d->q[i].t_init || d->q[i].quit_fd < 0)
			continue;
		if (write(d->q[i].quit_fd, &one, 8) == 8)
			started++;
	}
	while (done < started && read(d->done_fd, &v, 8) == 8)
		done += v;
	devq_free(d);
}

/* ---- for fuzz targets ---- */

int fuse_devq_test_open(struct fuse_devq **dp, const struct fuse_fs_ops *ops,
			void *fs, int reply_fd)
{
	struct fuse_devq *d;
	int ret = devq_alloc(&d, ops, fs, 1);

	if (!ret)
		ret = queue_setup(d, &d->q[0], 0, reply_fd);
	if (!ret)
		ret = aio_sync_create(&d->q[0].fq.aio);
	if (ret) {
		if (d) {
			d->q[0].fd = -1;
			devq_free(d);
		}
		return ret;
	}
	*dp = d;
	return 0;
}

void fuse_devq_test_request(struct fuse_devq *d, const void *buf, size_t n)
{
	struct devq_queue *q = &d->q[0];
	struct devq_slot *s = slot_get(q);
	uint8_t *p;

	if (!s)
		return;
	n = MIN(n, (size_t)DEVQ_READ_MAX);
	p = s->buf + DEVQ_ROOM - DEVQ_WRITE_HDR;
	memcpy(p, buf, n);
	dispatch(q, s, p, n);
	while (q->busy)
		q->fq.aio->ops->poll(q->fq.aio);
}

void fuse_devq_test_close(struct fuse_devq *d)
{
	d->q[0].fd = -1;	/* the caller's */
	devq_free(d);
}
