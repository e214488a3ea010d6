/*
 * aio.c - engine selection and the synchronous engine (see aio.h).
 *
 * The synchronous engine does each request at submit time and keeps the
 * result on a list; completions run when the thread next goes to sleep,
 * exactly as io_uring's would, so devices see the same order of events
 * from both engines.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include "lkvm/disk/aio.h"
#include "lkvm/iothread.h"

struct aio_sync {
	struct aio a;
	struct aio_io *head, **tail;
};

void aio_complete(struct aio *a, struct aio_io *io, long res)
{
	a->inflight--;
	a->completed++;
	io->done(io, res);
}

void aio_batch_end(struct aio *a)
{
	unsigned int i;

	for (i = 0; i < a->nhooks; i++)
		a->hook[i](a->hook_opaque[i]);
}

int aio_add_batch_hook(struct aio *a, void (*fn)(void *), void *opaque)
{
	if (a->nhooks == AIO_MAX_HOOKS)
		return -ENOSPC;
	a->hook[a->nhooks] = fn;
	a->hook_opaque[a->nhooks++] = opaque;
	return 0;
}

static long aio_sync_do(struct aio_io *io)
{
	ssize_t n;

	switch (io->op) {
	case AIO_READ:
		n = preadv(io->fd, io->iov, io->niov, io->off);
		break;
	case AIO_WRITE:
		n = pwritev(io->fd, io->iov, io->niov, io->off);
		break;
	case AIO_FDATASYNC:
		n = fdatasync(io->fd);
		break;
	case AIO_FALLOCATE:
		n = fallocate(io->fd, io->mode, io->off, io->len);
		break;
	default:
		return -EINVAL;
	}
	return n < 0 ? -errno : n;
}

static void aio_sync_submit(struct aio *a, struct aio_io *io)
{
	struct aio_sync *s = (struct aio_sync *)a;

	a->inflight++;
	a->submitted++;
	io->res = aio_sync_do(io);
	io->next = NULL;
	*s->tail = io;
	s->tail = &io->next;
}

static int aio_sync_wait(struct aio *a, int epfd)
{
	struct aio_sync *s = (struct aio_sync *)a;
	struct pollfd p = { .fd = epfd, .events = POLLIN };
	struct aio_io *io;

	a->waits++;
	if (s->head) {
		while ((io = s->head)) {
			s->head = io->next;
			if (!s->head)
				s->tail = &s->head;
			aio_complete(a, io, io->res);
		}
		aio_batch_end(a);
		/* Completions may have queued more: go round, no sleep. */
		if (s->head)
			return 0;
	}
	while (poll(&p, 1, s->head ? 0 : -1) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static bool aio_sync_poll(struct aio *a)
{
	struct aio_sync *s = (struct aio_sync *)a;
	struct aio_io *io;

	if (!s->head)
		return false;
	while ((io = s->head)) {
		s->head = io->next;
		if (!s->head)
			s->tail = &s->head;
		aio_complete(a, io, io->res);
	}
	aio_batch_end(a);
	return true;
}

static void aio_sync_free(struct aio *a)
{
	free(a);
}

static const struct aio_ops aio_sync_ops = {
	.name = "sync",
	.submit = aio_sync_submit,
	.wait = aio_sync_wait,
	.poll = aio_sync_poll,
	.free = aio_sync_free,
};

int aio_sync_create(struct aio **ap)
{
	struct aio_sync *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->a.ops = &aio_sync_ops;
	s->tail = &s->head;
	*ap = &s->a;
	return 0;
}

static bool aio_thread_poll(void *opaque)
{
	struct aio *a = opaque;

	return a->ops->poll(a);
}

int aio_poll_on(struct aio *a, struct iothread *t, uint64_t poll_ns)
{
	return iothread_add_poller(t, aio_thread_poll, a, poll_ns);
}

static int aio_thread_wait(void *opaque, int epfd)
{
	struct aio *a = opaque;

	return a->ops->wait(a, epfd);
}

int aio_create(struct aio **ap, struct iothread *t, unsigned int depth,
	       bool want_uring)
{
	int ret = -ENOTSUP;

	if (want_uring)
		ret = aio_uring_create(ap, depth);
	if (ret)
		ret = aio_sync_create(ap);
	if (ret)
		return ret;
	iothread_set_wait(t, aio_thread_wait, *ap);
	return 0;
}

int aio_create_uring(struct aio **ap, struct iothread *t, unsigned int depth)
{
	int ret = aio_uring_create(ap, depth);

	if (!ret)
		iothread_set_wait(t, aio_thread_wait, *ap);
	return ret;
}

void aio_free(struct aio *a)
{
	if (a)
		a->ops->free(a);
}
