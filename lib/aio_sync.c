/*
 * aio_sync.c - the synchronous engine (see aio.h), for kernels without
 * io_uring.  Each request is done at submit time and its result kept
 * on a list; completions run when the thread next goes to sleep, exactly
 * as io_uring's would, so devices see the same order of events from both
 * engines.  Owner thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include "lkvm/lib/aio.h"

struct aio_sync {
	struct aio a;
	struct aio_io *head, **tail;
};

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

/* Runs every completion queued, then the batch hooks; false if none. */
static bool aio_sync_complete_all(struct aio_sync *s)
{
	struct aio_io *io;

	if (!s->head)
		return false;
	while ((io = s->head)) {
		s->head = io->next;
		if (!s->head)
			s->tail = &s->head;
		aio_complete(&s->a, io, io->res);
	}
	aio_batch_end(&s->a);
	return true;
}

static int aio_sync_wait(struct aio *a, int epfd)
{
	struct aio_sync *s = (struct aio_sync *)a;
	struct pollfd p = { .fd = epfd, .events = POLLIN };

	a->waits++;
	/* Completions may queue more: go round then, no sleep. */
	if (aio_sync_complete_all(s) && s->head)
		return 0;
	while (poll(&p, 1, s->head ? 0 : -1) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static bool aio_sync_poll(struct aio *a)
{
	return aio_sync_complete_all((struct aio_sync *)a);
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
