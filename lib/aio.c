/*
 * aio.c - the engine interface (see aio.h): choosing an engine, making
 * it the I/O thread's way of sleeping and polling, and the completion
 * step every engine shares.  Runs on the engine's owner thread only.
 */
#include <errno.h>

#include "lkvm/lib/aio.h"
#include "lkvm/lib/iothread.h"

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

static bool aio_thread_poll(void *opaque)
{
	struct aio *a = opaque;

	return a->ops->poll(a);
}

int aio_poll_on(struct aio *a, struct iothread *t)
{
	return iothread_add_poller(t, aio_thread_poll, a);
}

static int aio_thread_wait(void *opaque, int epfd)
{
	struct aio *a = opaque;

	return a->ops->wait(a, epfd);
}

static int aio_thread_watch(void *opaque, int fd,
			    void (*fn)(void *, uint32_t), void *fn_opaque)
{
	struct aio *a = opaque;

	return a->ops->watch ? a->ops->watch(a, fd, fn, fn_opaque) :
			       -ENOTSUP;
}

static void aio_thread_attach(struct iothread *t, struct aio *a)
{
	iothread_set_wait(t, aio_thread_wait, a);
	iothread_set_watch(t, aio_thread_watch, a);
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
	aio_thread_attach(t, *ap);
	return 0;
}

int aio_create_uring(struct aio **ap, struct iothread *t, unsigned int depth)
{
	int ret = aio_uring_create(ap, depth);

	if (!ret)
		aio_thread_attach(t, *ap);
	return ret;
}

void aio_free(struct aio *a)
{
	if (a)
		a->ops->free(a);
}
