/*
 * fuse_pool.c - a queue's helper threads for blocking FUSE requests
 * (fuse_pool.h).
 *
 * Hand-over: the queue's thread puts the request on `todo` (under the
 * pool's lock) and signals a helper; the helper runs the filesystem's
 * handler with the request's transport swapped for pool_transport, whose
 * reply writes the answer at once through the owner's send and then
 * puts the request on `done`; a write to the pool's eventfd wakes the
 * queue's thread, which swaps the transport back and finishes each done
 * request.  A drop goes the same way without the send.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lkvm/fs/fuse_pool.h"
#include "lkvm/lib/iothread.h"
#include "lkvm/lib/util.h"

struct fuse_pool {
	struct fuse_pool_opts o;
	pthread_mutex_t lock;
	pthread_cond_t work, idle;
	struct fuse_req *todo, *todo_tail, *done;
	unsigned int inflight;		/* handed over, not yet finished */
	bool stop;
	int efd;
	unsigned int nthreads;
	pthread_t *threads;
	char name[16];
};

struct helper_arg {
	struct fuse_pool *p;
	unsigned int i;
};

static void pool_done(struct fuse_req *r, bool replied)
{
	struct fuse_pool *p = r->q->pool;
	uint64_t one = 1;

	pthread_mutex_lock(&p->lock);
	r->pool_replied = replied;
	r->pool_next = p->done;
	p->done = r;
	pthread_mutex_unlock(&p->lock);
	if (write(p->efd, &one, 8) != 8)
		return;		/* the counter is full: it is readable anyway */
}

static void pool_reply(struct fuse_req *r, int err, const struct iovec *iov,
		       unsigned int n, size_t len)
{
	r->t_owner->send(r, err, iov, n, len);
	pool_done(r, true);
}

static void pool_drop(struct fuse_req *r)
{
	pool_done(r, false);
}

static const struct fuse_transport_ops pool_transport = {
	.reply = pool_reply,
	.drop = pool_drop,
};

static void *helper_main(void *arg)
{
	struct helper_arg *a = arg;
	struct fuse_pool *p = a->p;
	char name[16];
	struct fuse_req *r;

	snprintf(name, sizeof(name), "%.11s-p%u", p->name, a->i);
	free(a);
	pthread_setname_np(pthread_self(), name);
	if (p->o.thread_start && p->o.thread_start(name))
		return NULL;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->todo && !p->stop)
			pthread_cond_wait(&p->work, &p->lock);
		if (!p->todo)
			break;
		r = p->todo;
		p->todo = r->pool_next;
		if (!p->todo)
			p->todo_tail = NULL;
		pthread_mutex_unlock(&p->lock);
		r->pool_fn(r->pool_fs, r);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/*
 * On the owner (or for it, while it is paused): finishes every request
 * the helpers answered; returns how many.
 */
static unsigned int finish_done(struct fuse_pool *p)
{
	struct fuse_req *r, *next;
	unsigned int n = 0;

	pthread_mutex_lock(&p->lock);
	r = p->done;
	p->done = NULL;
	pthread_mutex_unlock(&p->lock);
	for (; r; r = next) {
		next = r->pool_next;
		r->t = r->t_owner;
		r->t->finish(r, r->pool_replied);
		n++;
	}
	pthread_mutex_lock(&p->lock);
	p->inflight -= n;
	if (!p->inflight)
		pthread_cond_broadcast(&p->idle);
	pthread_mutex_unlock(&p->lock);
	return n;
}

/* The owner's eventfd: finish what the helpers answered. */
static void on_done(void *opaque, uint32_t events)
{
	struct fuse_pool *p = opaque;
	uint64_t v;

	(void)events;
	if (read(p->efd, &v, 8) != 8)
		return;
	if (finish_done(p) && p->o.flush)
		p->o.flush(p->o.flush_opaque);
}

int fuse_pool_create(struct fuse_pool **pp, const struct fuse_pool_opts *o)
{
	struct fuse_pool *p = calloc(1, sizeof(*p));
	unsigned int i;
	int ret;

	*pp = NULL;
	if (!p)
		return -ENOMEM;
	p->o = *o;
	snprintf(p->name, sizeof(p->name), "%s", o->name);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->idle, NULL);
	p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	p->threads = calloc(o->threads, sizeof(*p->threads));
	if (p->efd < 0 || !p->threads) {
		fuse_pool_free(p);
		return -ENOMEM;
	}
	ret = iothread_add(o->owner, p->efd, EPOLLIN, on_done, p);
	for (i = 0; !ret && i < o->threads; i++) {
		struct helper_arg *a = malloc(sizeof(*a));

		if (!a) {
			ret = -ENOMEM;
			break;
		}
		*a = (struct helper_arg){ p, i };
		ret = -pthread_create(&p->threads[i], NULL, helper_main, a);
		if (ret)
			free(a);
		else
			p->nthreads++;
	}
	if (ret) {
		fuse_pool_free(p);
		return ret;
	}
	*pp = p;
	return 0;
}

void fuse_pool_free(struct fuse_pool *p)
{
	unsigned int i;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	if (p->efd >= 0)
		close(p->efd);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->idle);
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
	free(p);
}

unsigned int fuse_pool_inflight(struct fuse_pool *p)
{
	return __atomic_load_n(&p->inflight, __ATOMIC_RELAXED);
}

void fuse_pool_drain(struct fuse_pool *p)
{
	uint64_t v;

	/*
	 * The owner is paused, so on_done will not run: finish here what
	 * the helpers hand back, until nothing is out.
	 */
	while (fuse_pool_inflight(p)) {
		if (!finish_done(p) && read(p->efd, &v, 8) < 0)
			usleep(1000);
	}
}

void fuse_run_blocking(struct fuse_req *r,
		       void (*fn)(void *fs, struct fuse_req *r), void *fs)
{
	struct fuse_pool *p = r->q->pool;

	if (!p) {
		fn(fs, r);
		return;
	}
	r->pool_fn = fn;
	r->pool_fs = fs;
	r->t_owner = r->t;
	r->t = &pool_transport;
	r->pool_next = NULL;
	pthread_mutex_lock(&p->lock);
	p->inflight++;
	if (p->todo_tail)
		p->todo_tail->pool_next = r;
	else
		p->todo = r;
	p->todo_tail = r;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->lock);
}
