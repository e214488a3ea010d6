/*
 * iothread.c - I/O threads (see iothread.h).  Each registered fd has a
 * small handler record as its epoll data; the records are listed under
 * the control lock only so that teardown can free them.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lkvm/lib/iothread.h"
#include "lkvm/lib/util.h"

struct iot_handler {
	int fd;
	uint32_t events;		/* 0: registered but not watched */
	iothread_fn fn;
	void *opaque;
	struct iot_handler *next;
};

#define IOT_MAX_EVENTS 16

int iothread_init(struct iothread *t, const char *name)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	int err;

	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	t->ctl_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	/* data.ptr NULL marks the control eventfd. */
	if (t->epfd < 0 || t->ctl_fd < 0 ||
	    epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->ctl_fd, &ev) < 0) {
		err = -errno;
		if (t->epfd >= 0)
			close(t->epfd);
		if (t->ctl_fd >= 0)
			close(t->ctl_fd);
		t->epfd = t->ctl_fd = -1;
		return err;
	}
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	iothread_set_poll(t, IOT_POLL_AUTO);
	return 0;
}

int iothread_add(struct iothread *t, int fd, uint32_t events, iothread_fn fn,
		 void *opaque)
{
	struct iot_handler *h = calloc(1, sizeof(*h));
	struct epoll_event ev = { .events = events };
	int err;

	if (!h)
		return -ENOMEM;
	h->fd = fd;
	h->events = events;
	h->fn = fn;
	h->opaque = opaque;
	ev.data.ptr = h;
	pthread_mutex_lock(&t->lock);
	if (events && epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		err = -errno;
		pthread_mutex_unlock(&t->lock);
		free(h);
		return err;
	}
	h->next = t->handlers;
	t->handlers = h;
	pthread_mutex_unlock(&t->lock);
	return 0;
}

/* Only while the thread is paused or not running: it may hold h. */
int iothread_del(struct iothread *t, int fd)
{
	struct iot_handler **pp, *h;
	int ret = -ENOENT;

	pthread_mutex_lock(&t->lock);
	for (pp = &t->handlers; (h = *pp); pp = &h->next) {
		if (h->fd == fd) {
			if (h->events)
				epoll_ctl(t->epfd, EPOLL_CTL_DEL, fd, NULL);
			*pp = h->next;
			free(h);
			ret = 0;
			break;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return ret;
}

int iothread_watch(struct iothread *t, int fd, uint32_t events)
{
	struct iot_handler *h;
	int ret = -ENOENT, op;

	pthread_mutex_lock(&t->lock);
	for (h = t->handlers; h; h = h->next) {
		struct epoll_event ev = { .events = events, .data.ptr = h };

		if (h->fd != fd)
			continue;
		ret = 0;
		if (h->events == events)
			break;
		/*
		 * Taken out of the set rather than given no events: epoll
		 * reports errors and hang-ups whatever was asked for.
		 */
		op = !events ? EPOLL_CTL_DEL :
		     !h->events ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
		if (epoll_ctl(t->epfd, op, fd, events ? &ev : NULL) < 0)
			ret = -errno;
		else
			h->events = events;
		break;
	}
	pthread_mutex_unlock(&t->lock);
	return ret;
}

/* Returns false when the thread must exit. */
static bool iothread_control(struct iothread *t)
{
	uint64_t v;
	bool run = true;

	if (read(t->ctl_fd, &v, sizeof(v)) < 0) {
		/* spurious wake-up: nothing pending */
	}
	atomic_store(&t->ctl_pending, false);
	pthread_mutex_lock(&t->lock);
	if (t->state == IOT_PAUSE_REQ) {
		t->state = IOT_PAUSED;
		pthread_cond_broadcast(&t->cond);
		while (t->state == IOT_PAUSED)
			pthread_cond_wait(&t->cond, &t->lock);
	}
	if (t->state == IOT_STOP_REQ)
		run = false;
	pthread_mutex_unlock(&t->lock);
	return run;
}

void iothread_set_watch(struct iothread *t,
			int (*watch)(void *opaque, int fd, iothread_fn fn,
				     void *fn_opaque),
			void *opaque)
{
	t->watch = watch;
	t->watch_opaque = opaque;
}

int iothread_add_hot(struct iothread *t, int fd, iothread_fn fn,
		     void *opaque)
{
	if (t->watch && t->watch(t->watch_opaque, fd, fn, opaque) == 0)
		return 0;
	return iothread_add(t, fd, EPOLLIN, fn, opaque);
}

void iothread_set_wait(struct iothread *t, int (*wait)(void *, int),
		       void *opaque)
{
	t->wait = wait;
	t->wait_opaque = opaque;
}

int iothread_add_poller(struct iothread *t, bool (*fn)(void *), void *opaque)
{
	if (t->npollers == IOT_MAX_POLLERS)
		return -ENOSPC;
	t->pollers[t->npollers].fn = fn;
	t->pollers[t->npollers++].opaque = opaque;
	return 0;
}

void iothread_set_poll(struct iothread *t, uint64_t policy)
{
	t->poll_policy = policy;
	if (policy == IOT_POLL_AUTO) {
		t->poll_max_ns = IOT_POLL_AUTO_MAX_NS;
		t->poll_ns = 0;		/* earned by the first short wait */
	} else if (policy == IOT_POLL_OFF) {
		t->poll_max_ns = t->poll_ns = 0;
	} else {
		t->poll_max_ns = t->poll_ns = MIN(policy, IOT_POLL_MAX_NS);
	}
}

int iothread_poll_parse(const char *s, uint64_t *policy)
{
	uint64_t us = 0;

	if (!strcmp(s, "auto")) {
		*policy = IOT_POLL_AUTO;
		return 0;
	}
	if (parse_uint(s, 0, IOT_POLL_MAX_NS / 1000, &us) &&
	    strcmp(s, "off"))
		return -EINVAL;
	*policy = !strcmp(s, "off") || !us ? IOT_POLL_OFF : us * 1000;
	return 0;
}

void iothread_poll_account(struct iothread *t, uint64_t waited_ns)
{
	if (t->poll_policy != IOT_POLL_AUTO || waited_ns <= t->poll_ns)
		return;
	if (waited_ns > t->poll_max_ns)
		t->poll_ns = 0;
	else
		t->poll_ns = MIN(t->poll_max_ns,
				 MAX(t->poll_ns * 2, IOT_POLL_GROW_FROM_NS));
}

static bool iothread_pollers_run(struct iothread *t)
{
	bool work = false;
	unsigned int i;

	for (i = 0; i < t->npollers; i++)
		work |= t->pollers[i].fn(t->pollers[i].opaque);
	return work;
}

/*
 * Spins for work from since, for the window; true if some was done (so
 * do not sleep yet).  Once work turns up, rounds go on without a
 * syscall between them for as long as they find more.
 */
static bool iothread_poll(struct iothread *t, uint64_t since)
{
	uint64_t deadline = since + t->poll_ns;

	do {
		if (iothread_pollers_run(t)) {
			t->poll_hits++;
			while (!atomic_load_explicit(&t->ctl_pending,
						     memory_order_relaxed) &&
			       iothread_pollers_run(t))
				;
			return true;
		}
		/* Control requests are seen between rounds. */
		if (atomic_load_explicit(&t->ctl_pending,
					 memory_order_relaxed))
			return false;
		/*
		 * Give the CPU to anyone runnable: with more spinners than
		 * CPUs (two queues and their guest on two cores) a plain
		 * spin would hold off the very thread we wait for.
		 */
		sched_yield();
	} while (now_ns() < deadline);
	t->poll_misses++;
	return false;
}

/*
 * The thread cannot go on: wake every pauser and stopper (a dead thread
 * counts as paused and as stopped), and tell the owner why.
 */
static void *iothread_die(struct iothread *t, int err)
{
	pthread_mutex_lock(&t->lock);
	t->state = IOT_DEAD;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	if (t->on_death)
		t->on_death(t->death_opaque, t, err);
	return NULL;
}

static void *iothread_loop(struct iothread *t)
{
	struct epoll_event evs[IOT_MAX_EVENTS];
	sigset_t set;

	/* A write to a closed pipe must fail (EPIPE), not kill the process. */
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (t->on_start) {
		int ret = t->on_start(t->start_opaque, t);

		if (ret)
			return iothread_die(t, ret);
	}
	if (t->fail_wait)
		return iothread_die(t, -EIO);

	for (;;) {
		int i, n, ret, timeout = -1;
		uint64_t idle = t->npollers ? now_ns() : 0;

		if (idle && t->poll_ns && iothread_poll(t, idle)) {
			timeout = 0;	/* look at the fds, then poll again */
			idle = 0;
		} else if (t->wait) {
			t->slept++;
			ret = t->wait(t->wait_opaque, t->epfd);
			if (ret < 0 && ret != -EINTR)
				return iothread_die(t, ret);
			if (idle)
				iothread_poll_account(t, now_ns() - idle);
			/* A watched fd's handler ran: epoll has nothing. */
			if (ret == 1)
				continue;
			idle = 0;
			timeout = 0;
		} else {
			t->slept++;
		}
		n = epoll_wait(t->epfd, evs, IOT_MAX_EVENTS, timeout);
		if (idle)
			iothread_poll_account(t, now_ns() - idle);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return iothread_die(t, -errno);
		}
		for (i = 0; i < n; i++) {
			struct iot_handler *h = evs[i].data.ptr;

			if (!h) {
				if (!iothread_control(t))
					return NULL;
				/* Registrations may have changed: re-poll. */
				break;
			}
			h->fn(h->opaque, evs[i].events);
		}
	}
	return NULL;
}

/* A thread's CPU clock in ns, or fallback if it cannot be read. */
static uint64_t cpu_clock_ns(clockid_t cid, uint64_t fallback)
{
	struct timespec ts;

	if (clock_gettime(cid, &ts))
		return fallback;
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

uint64_t iothread_cpu_ns(const struct iothread *t)
{
	clockid_t cid;

	if (!t->started || !t->tid ||
	    pthread_getcpuclockid(t->thread, &cid))
		return t->cpu_ns_final;
	return cpu_clock_ns(cid, t->cpu_ns_final);
}

static void *iothread_main(void *arg)
{
	struct iothread *t = arg;

	t->tid = gettid();
	iothread_loop(t);
	t->cpu_ns_final = cpu_clock_ns(CLOCK_THREAD_CPUTIME_ID, 0);
	return NULL;
}

void iothread_on_start(struct iothread *t,
		       int (*fn)(void *opaque, struct iothread *t),
		       void *opaque)
{
	t->on_start = fn;
	t->start_opaque = opaque;
}

void iothread_on_death(struct iothread *t, iothread_death_fn fn,
		       void *opaque)
{
	t->on_death = fn;
	t->death_opaque = opaque;
}

/* IOTHREAD_FAULT_ENV names this thread (see iothread.h). */
static bool iothread_fault_wanted(const struct iothread *t)
{
	const char *f = getenv(IOTHREAD_FAULT_ENV);
	static const char key[] = "iothread-wait:";

	return f && !strncmp(f, key, sizeof(key) - 1) &&
	       !strcmp(f + sizeof(key) - 1, t->name);
}

int iothread_start(struct iothread *t)
{
	int ret;

	t->state = IOT_RUN;
	t->pauses = 0;
	if (iothread_fault_wanted(t))
		t->fail_wait = true;
	ret = pthread_create(&t->thread, NULL, iothread_main, t);
	if (ret)
		return -ret;
	t->started = true;
	pthread_setname_np(t->thread, t->name);
	return 0;
}

bool iothread_is_current(const struct iothread *t)
{
	return t->started && pthread_equal(pthread_self(), t->thread);
}

static void iothread_kick(struct iothread *t)
{
	uint64_t one = 1;

	atomic_store(&t->ctl_pending, true);
	if (write(t->ctl_fd, &one, sizeof(one)) < 0) {
		/* counter saturated: a wake-up is pending anyway */
	}
}

/*
 * Every caller waits until the thread is parked, not only the first:
 * with pauses from two vCPUs (two devices sharing a thread, or a reset
 * racing a queue enable) the second must not go on while the first is
 * still waiting for the handshake.
 */
void iothread_pause(struct iothread *t)
{
	if (!t->started || iothread_is_current(t))
		return;
	pthread_mutex_lock(&t->lock);
	if (t->state != IOT_DEAD && t->state != IOT_STOP_REQ) {
		if (t->pauses++ == 0) {
			t->state = IOT_PAUSE_REQ;
			iothread_kick(t);
		}
		while (t->state == IOT_PAUSE_REQ)
			pthread_cond_wait(&t->cond, &t->lock);
	}
	pthread_mutex_unlock(&t->lock);
}

void iothread_resume(struct iothread *t)
{
	if (!t->started || iothread_is_current(t))
		return;
	pthread_mutex_lock(&t->lock);
	if (t->pauses && --t->pauses == 0 &&
	    (t->state == IOT_PAUSED || t->state == IOT_PAUSE_REQ)) {
		t->state = IOT_RUN;
		pthread_cond_broadcast(&t->cond);
	}
	pthread_mutex_unlock(&t->lock);
}

void iothread_stop(struct iothread *t)
{
	if (!t->started)
		return;
	pthread_mutex_lock(&t->lock);
	if (t->state != IOT_DEAD) {
		t->state = IOT_STOP_REQ;
		pthread_cond_broadcast(&t->cond);
		iothread_kick(t);
	}
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	t->started = false;
}

bool iothread_is_dead(struct iothread *t)
{
	bool dead;

	pthread_mutex_lock(&t->lock);
	dead = t->state == IOT_DEAD;
	pthread_mutex_unlock(&t->lock);
	return dead;
}

void iothread_free(struct iothread *t)
{
	struct iot_handler *h;

	iothread_stop(t);
	while ((h = t->handlers)) {
		t->handlers = h->next;
		free(h);
	}
	if (t->epfd >= 0)
		close(t->epfd);
	if (t->ctl_fd >= 0)
		close(t->ctl_fd);
	t->epfd = t->ctl_fd = -1;
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cond);
}
