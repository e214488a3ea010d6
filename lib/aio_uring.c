/*
 * aio_uring.c - the io_uring engine (see aio.h), through the raw syscalls.
 *
 * One ring per I/O thread.  Requests become SQEs in shared memory as the
 * thread's handlers queue them; they reach the kernel in the
 * io_uring_enter that is also the thread's sleep.  A one-shot POLL_ADD on
 * the thread's epoll fd rides in the same ring, so a kick eventfd, a
 * resample fd or a control request ends that sleep as surely as a
 * completion does.  A watched fd (a queue's kick eventfd) has a
 * multishot poll of its own, tagged with its handler: the CQE says which
 * fd fired, so waking for a kick costs no epoll_wait, and the poll stays
 * armed (re-armed only if the kernel ends it, or has no multishot).
 *
 * A barrier (an fdatasync that must follow every earlier request) is
 * held here until the ring has no request of ours in flight, and later
 * requests are held behind it until it ends.  IOSQE_IO_DRAIN would do
 * that in the kernel, but it also waits for the polls in the ring, and
 * a multishot poll never ends.
 *
 * The ring is created disabled and enabled by its thread on first use,
 * which lets it be SINGLE_ISSUER | DEFER_TASKRUN (completion work runs
 * in our io_uring_enter, not as interrupts of whatever the thread does)
 * where the kernel has them, falling back to plainer set-ups where not.
 */
#include <errno.h>
#include <sys/uio.h>
#include <linux/io_uring.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lkvm/lib/aio.h"
#include "lkvm/lib/util.h"

/*
 * user_data that is not an io (ios are pointers, 8-byte aligned): the
 * epoll poll, and watch n as WATCH_TAG | n << 3.
 */
#define POLL_TAG	1ULL
#define WATCH_TAG	2ULL

struct aio_uring {
	struct aio a;
	int fd;
	bool enabled;
	bool deferred;			/* DEFER_TASKRUN: reaping needs enter */
	bool poll_armed;
	unsigned int sq_entries;
	unsigned int *sq_head, *sq_tail, *sq_mask, *sq_array;
	struct io_uring_sqe *sqes;
	unsigned int *cq_head, *cq_tail, *cq_mask;
	struct io_uring_cqe *cqes;
	struct uring_watch {
		int fd;
		void (*fn)(void *opaque, uint32_t events);
		void *opaque;
		bool armed;
	} watch[AIO_MAX_WATCH];
	unsigned int nwatch;
	bool no_multishot;		/* the kernel refused one: one-shot */
	unsigned int ring_ios;		/* ios in the ring (polls are not) */
	bool barrier_busy;		/* a barrier io is in the ring */
	struct aio_io *held, **held_tail;	/* waiting for a barrier */
	unsigned int sq_local_tail;	/* SQEs written, tail not published */
	unsigned int to_submit;
	void *sq_ring, *cq_ring;
	size_t sq_ring_size, cq_ring_size, sqes_size;
};

static int uring_setup(unsigned int entries, struct io_uring_params *p)
{
	return syscall(__NR_io_uring_setup, entries, p);
}

static int uring_enter(int fd, unsigned int submit, unsigned int min,
		       unsigned int flags)
{
	return syscall(__NR_io_uring_enter, fd, submit, min, flags, NULL, 0);
}

static int uring_register(int fd, unsigned int op, void *arg,
			  unsigned int n)
{
	return syscall(__NR_io_uring_register, fd, op, arg, n);
}

/*
 * Submits what is queued; with wait, sleeps for one completion too.
 * getevents without wait runs completion work the kernel deferred to
 * us (DEFER_TASKRUN) and returns at once.
 */
static int uring_flush(struct aio_uring *u, bool wait, bool getevents)
{
	int n;

	if (!u->enabled) {
		if (uring_register(u->fd, IORING_REGISTER_ENABLE_RINGS, NULL,
				   0) < 0 && errno != EINVAL)
			return -errno;
		u->enabled = true;
	}
	__atomic_store_n(u->sq_tail, u->sq_local_tail, __ATOMIC_RELEASE);
	n = uring_enter(u->fd, u->to_submit, wait ? 1 : 0,
			wait || getevents ? IORING_ENTER_GETEVENTS : 0);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN || errno == EBUSY ?
		       0 : -errno;
	u->to_submit -= MIN((unsigned int)n, u->to_submit);
	return 0;
}

static struct io_uring_sqe *uring_sqe(struct aio_uring *u)
{
	unsigned int head = __atomic_load_n(u->sq_head, __ATOMIC_ACQUIRE);
	struct io_uring_sqe *sqe;
	unsigned int idx;

	if (u->sq_local_tail - head >= u->sq_entries) {
		/* Full: hand what is queued to the kernel now. */
		uring_flush(u, false, false);
		head = __atomic_load_n(u->sq_head, __ATOMIC_ACQUIRE);
		if (u->sq_local_tail - head >= u->sq_entries)
			return NULL;
	}
	idx = u->sq_local_tail & *u->sq_mask;
	sqe = &u->sqes[idx];
	memset(sqe, 0, sizeof(*sqe));
	u->sq_array[idx] = idx;
	u->sq_local_tail++;
	u->to_submit++;
	return sqe;
}

/* The page-cache fast path: true if io is done (result in io->res). */
static bool uring_try_nowait(struct aio_io *io)
{
	int flags = io->hint == AIO_TRY_NOWAIT ? RWF_NOWAIT : 0;
	ssize_t n;

	if (io->hint == AIO_ASYNC || (io->op != AIO_READ && io->op != AIO_WRITE))
		return false;
	if (io->op == AIO_READ)
		n = preadv2(io->fd, io->iov, io->niov, io->off, flags);
	else
		n = pwritev2(io->fd, io->iov, io->niov, io->off, flags);
	if (n < 0 && flags && errno == EOPNOTSUPP)
		io->nowait_failed = true;
	if (n < 0 && flags && (errno == EAGAIN || errno == EOPNOTSUPP))
		return false;	/* would block: the ring takes it */
	if (flags && n >= 0 && (uint64_t)n < iov_total(io->iov, io->niov))
		return false;	/* partial: redo it all through the ring */
	io->res = n < 0 ? -errno : n;
	return true;
}

static void uring_start(struct aio_uring *u, struct aio_io *io)
{
	struct aio *a = &u->a;
	struct io_uring_sqe *sqe;

	if (uring_try_nowait(io)) {
		/* Done already: complete now, so the guest can see it early. */
		aio_complete(a, io, io->res);
		return;
	}
	sqe = uring_sqe(u);
	if (!sqe) {
		/* Cannot happen with the ring sized for the depth; stay safe. */
		io->res = -EAGAIN;
		aio_complete(a, io, -EAGAIN);
		return;
	}
	sqe->fd = io->fd;
	sqe->user_data = (uintptr_t)io;
	sqe->off = io->off;
	u->ring_ios++;
	if (io->barrier)
		u->barrier_busy = true;
	switch (io->op) {
	case AIO_READ:
	case AIO_WRITE:
		if (io->niov == 1) {
			sqe->opcode = io->op == AIO_READ ? IORING_OP_READ :
							   IORING_OP_WRITE;
			sqe->addr = (uintptr_t)io->iov[0].iov_base;
			sqe->len = io->iov[0].iov_len;
		} else {
			sqe->opcode = io->op == AIO_READ ? IORING_OP_READV :
							   IORING_OP_WRITEV;
			sqe->addr = (uintptr_t)io->iov;
			sqe->len = io->niov;
		}
		break;
	case AIO_FDATASYNC:
		sqe->opcode = IORING_OP_FSYNC;
		sqe->fsync_flags = IORING_FSYNC_DATASYNC;
		break;
	case AIO_FALLOCATE:
		/* The length travels in addr and the mode in len. */
		sqe->opcode = IORING_OP_FALLOCATE;
		sqe->addr = io->len;
		sqe->len = io->mode;
		break;
	}
}

/* Starts what was held, up to the next barrier that must wait. */
static void uring_release(struct aio_uring *u)
{
	struct aio_io *io;

	while ((io = u->held) && !u->barrier_busy &&
	       !(io->barrier && u->ring_ios)) {
		u->held = io->next;
		if (!u->held)
			u->held_tail = &u->held;
		uring_start(u, io);
	}
}

static void uring_submit(struct aio *a, struct aio_io *io)
{
	struct aio_uring *u = (struct aio_uring *)a;

	a->inflight++;
	a->submitted++;
	if (u->held || u->barrier_busy || (io->barrier && u->ring_ios)) {
		io->next = NULL;
		*u->held_tail = io;
		u->held_tail = &io->next;
		return;
	}
	uring_start(u, io);
}

static void uring_arm_poll(struct aio_uring *u, int epfd)
{
	struct io_uring_sqe *sqe = uring_sqe(u);

	if (!sqe)
		return;
	sqe->opcode = IORING_OP_POLL_ADD;
	sqe->fd = epfd;
	sqe->poll32_events = POLLIN;
	sqe->user_data = POLL_TAG;
	u->poll_armed = true;
}

static void uring_arm_watch(struct aio_uring *u, unsigned int n)
{
	struct io_uring_sqe *sqe = uring_sqe(u);

	if (!sqe)
		return;
	sqe->opcode = IORING_OP_POLL_ADD;
	sqe->fd = u->watch[n].fd;
	sqe->poll32_events = POLLIN;
	sqe->len = u->no_multishot ? 0 : IORING_POLL_ADD_MULTI;
	sqe->user_data = WATCH_TAG | (uint64_t)n << 3;
	u->watch[n].armed = true;
}

static int uring_watch(struct aio *a, int fd, void (*fn)(void *, uint32_t),
		       void *opaque)
{
	struct aio_uring *u = (struct aio_uring *)a;

	if (u->nwatch == AIO_MAX_WATCH)
		return -ENOSPC;
	/* Armed by the owner thread at its first wait (SINGLE_ISSUER). */
	u->watch[u->nwatch++] = (struct uring_watch){ fd, fn, opaque, false };
	return 0;
}

/* A watch's CQE: note whether it stays armed and whether it fired. */
static bool uring_watch_cqe(struct aio_uring *u, uint64_t data, int res,
			    uint32_t flags)
{
	struct uring_watch *w = &u->watch[(data >> 3) % AIO_MAX_WATCH];

	if (!(flags & IORING_CQE_F_MORE))
		w->armed = false;
	if (res == -EINVAL && !u->no_multishot) {
		u->no_multishot = true;	/* pre-5.13: re-arm each time */
		return false;
	}
	return res > 0;
}

/*
 * Runs every CQE there is; true if the epoll poll fired.  Watches that
 * fired are marked in *fired, their handlers run by the caller once the
 * ring is consistent.
 */
static bool uring_reap(struct aio_uring *u, unsigned int *ios,
		       unsigned int *fired)
{
	unsigned int head = *u->cq_head;
	unsigned int tail = __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE);
	bool polled = false;

	while (head != tail) {
		struct io_uring_cqe *cqe = &u->cqes[head & *u->cq_mask];
		uint64_t data = cqe->user_data;
		uint32_t flags = cqe->flags;
		int res = cqe->res;

		head++;
		__atomic_store_n(u->cq_head, head, __ATOMIC_RELEASE);
		if (data == POLL_TAG) {
			u->poll_armed = false;
			polled = true;
		} else if ((data & 7) == WATCH_TAG) {
			if (uring_watch_cqe(u, data, res, flags))
				*fired |= 1u << ((data >> 3) % AIO_MAX_WATCH);
		} else {
			struct aio_io *io = (struct aio_io *)(uintptr_t)data;

			u->ring_ios--;
			if (io->barrier)
				u->barrier_busy = false;
			aio_complete(&u->a, io, res);
			(*ios)++;
		}
		if (head == tail)
			tail = __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE);
	}
	return polled;
}

/* What uring_complete() found. */
#define GOT_EPOLL	1u	/* the epoll poll fired */
#define GOT_IOS		2u	/* requests completed */
#define GOT_WATCH	4u	/* a watched fd's handler ran */

/*
 * Runs every CQE there is, starts what a barrier held back, ends the
 * batch once, then runs the handlers of the watches that fired.
 */
static unsigned int uring_complete(struct aio_uring *u)
{
	unsigned int ios = 0, fired = 0, n;
	bool polled = uring_reap(u, &ios, &fired);

	uring_release(u);
	if (ios)
		aio_batch_end(&u->a);
	for (n = 0; n < u->nwatch; n++)
		if (fired & 1u << n)
			u->watch[n].fn(u->watch[n].opaque, POLLIN);
	return (polled ? GOT_EPOLL : 0) | (ios ? GOT_IOS : 0) |
	       (fired ? GOT_WATCH : 0);
}

static int uring_wait(struct aio *a, int epfd)
{
	struct aio_uring *u = (struct aio_uring *)a;
	unsigned int n;
	int ret;

	for (;;) {
		unsigned int got;

		if (!u->poll_armed)
			uring_arm_poll(u, epfd);
		for (n = 0; n < u->nwatch; n++)
			if (!u->watch[n].armed)
				uring_arm_watch(u, n);
		a->waits++;
		ret = uring_flush(u, true, true);
		if (ret)
			return ret;
		got = uring_complete(u);
		if (got & GOT_EPOLL)
			return 0;
		if (got & GOT_WATCH)
			return 1;
	}
}

static bool uring_poll(struct aio *a)
{
	struct aio_uring *u = (struct aio_uring *)a;

	if (u->to_submit || (a->inflight && u->deferred))
		uring_flush(u, false, u->deferred);
	/*
	 * An epoll poll that ended here is re-armed before the next sleep,
	 * and a re-armed poll on a readable epfd completes at once.
	 */
	return uring_complete(u) & (GOT_IOS | GOT_WATCH);
}

static void uring_free(struct aio *a)
{
	struct aio_uring *u = (struct aio_uring *)a;

	if (u->sqes && u->sqes != MAP_FAILED)
		munmap(u->sqes, u->sqes_size);
	if (u->cq_ring && u->cq_ring != MAP_FAILED && u->cq_ring != u->sq_ring)
		munmap(u->cq_ring, u->cq_ring_size);
	if (u->sq_ring && u->sq_ring != MAP_FAILED)
		munmap(u->sq_ring, u->sq_ring_size);
	if (u->fd >= 0)
		close(u->fd);
	free(u);
}

static const struct aio_ops uring_ops = {
	.name = "io_uring",
	.submit = uring_submit,
	.wait = uring_wait,
	.watch = uring_watch,
	.poll = uring_poll,
	.free = uring_free,
};

static int uring_open(unsigned int entries, struct io_uring_params *p)
{
	static const unsigned int setups[] = {
		IORING_SETUP_R_DISABLED | IORING_SETUP_SINGLE_ISSUER |
			IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_R_DISABLED | IORING_SETUP_COOP_TASKRUN,
		0,
	};
	unsigned int i;
	int fd = -1;

	for (i = 0; i < sizeof(setups) / sizeof(setups[0]); i++) {
		memset(p, 0, sizeof(*p));
		p->flags = setups[i] | IORING_SETUP_CQSIZE;
		p->cq_entries = 2 * entries;
		fd = uring_setup(entries, p);
		if (fd >= 0 || errno != EINVAL)
			break;
	}
	return fd < 0 ? -errno : fd;
}

/*
 * A ring may do only what lkvm submits to it.  Operations on a ring are
 * not system calls, so a seccomp filter never sees them: the ring is
 * restricted instead, while it is still disabled (the kernel accepts
 * restrictions only then), to these operations and to enabling itself.
 */
static int uring_restrict(int fd)
{
	static const uint8_t ops[] = {
		IORING_OP_READ, IORING_OP_WRITE, IORING_OP_READV,
		IORING_OP_WRITEV, IORING_OP_FSYNC, IORING_OP_FALLOCATE,
		IORING_OP_POLL_ADD,
	};
	struct io_uring_restriction r[sizeof(ops) + 1];
	unsigned int i, n = 0;

	memset(r, 0, sizeof(r));
	for (i = 0; i < sizeof(ops); i++) {
		r[n].opcode = IORING_RESTRICTION_SQE_OP;
		r[n++].sqe_op = ops[i];
	}
	/* No SQE flag is allowed: lkvm sets none (barriers are its own). */
	r[n].opcode = IORING_RESTRICTION_REGISTER_OP;
	r[n++].register_op = IORING_REGISTER_ENABLE_RINGS;
	return uring_register(fd, IORING_REGISTER_RESTRICTIONS, r, n) < 0 ?
	       -errno : 0;
}

int aio_uring_create(struct aio **ap, unsigned int depth)
{
	struct aio_uring *u = calloc(1, sizeof(*u));
	struct io_uring_params p;
	unsigned int entries = 8;
	uint8_t *sq, *cq;

	if (!u)
		return -ENOMEM;
	u->a.ops = &uring_ops;
	u->held_tail = &u->held;
	/* Room for a full queue, the epoll poll and every watch. */
	while (entries < depth + 1 + AIO_MAX_WATCH && entries < 4096)
		entries *= 2;
	u->fd = uring_open(entries, &p);
	if (u->fd < 0) {
		int ret = u->fd;

		free(u);
		return ret;
	}
	u->enabled = !(p.flags & IORING_SETUP_R_DISABLED);
	if (!u->enabled && uring_restrict(u->fd)) {
		/* A kernel without restrictions still runs it: no worse. */
	}
	u->deferred = p.flags & IORING_SETUP_DEFER_TASKRUN;
	u->sq_entries = p.sq_entries;
	u->sq_ring_size = p.sq_off.array + p.sq_entries * sizeof(unsigned int);
	u->cq_ring_size = p.cq_off.cqes +
			  p.cq_entries * sizeof(struct io_uring_cqe);
	if (p.features & IORING_FEAT_SINGLE_MMAP)
		u->sq_ring_size = u->cq_ring_size =
			MAX(u->sq_ring_size, u->cq_ring_size);
	u->sq_ring = mmap(NULL, u->sq_ring_size, PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_POPULATE, u->fd, IORING_OFF_SQ_RING);
	if (u->sq_ring == MAP_FAILED)
		goto fail;
	u->cq_ring = (p.features & IORING_FEAT_SINGLE_MMAP) ? u->sq_ring :
		mmap(NULL, u->cq_ring_size, PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_POPULATE, u->fd, IORING_OFF_CQ_RING);
	if (u->cq_ring == MAP_FAILED)
		goto fail;
	u->sqes_size = p.sq_entries * sizeof(struct io_uring_sqe);
	u->sqes = mmap(NULL, u->sqes_size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, u->fd, IORING_OFF_SQES);
	if (u->sqes == MAP_FAILED)
		goto fail;
	sq = u->sq_ring;
	cq = u->cq_ring;
	u->sq_head = (unsigned int *)(sq + p.sq_off.head);
	u->sq_tail = (unsigned int *)(sq + p.sq_off.tail);
	u->sq_mask = (unsigned int *)(sq + p.sq_off.ring_mask);
	u->sq_array = (unsigned int *)(sq + p.sq_off.array);
	u->cq_head = (unsigned int *)(cq + p.cq_off.head);
	u->cq_tail = (unsigned int *)(cq + p.cq_off.tail);
	u->cq_mask = (unsigned int *)(cq + p.cq_off.ring_mask);
	u->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	u->sq_local_tail = *u->sq_tail;
	*ap = &u->a;
	return 0;
fail:
	uring_free(&u->a);
	return -ENOMEM;
}
