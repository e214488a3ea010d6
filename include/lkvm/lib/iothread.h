/*
 * iothread.h - the I/O thread primitive.  A thread owns a set of fds (a
 * queue's kick eventfd, a backend's completion fd, an interrupt resample
 * fd) and runs their handlers, and nothing else touches what it owns.
 *
 * Control is a handshake: iothread_pause() (from a vCPU thread that wrote
 * a device status or queue register) returns once the thread is parked
 * between handler calls; iothread_resume() lets it go on.  Pauses nest
 * (a device with two queues on one thread pauses it twice).  No lock is
 * taken on the data path: the thread sleeps in epoll_wait and runs
 * handlers without holding anything.
 */
#ifndef LKVM_IOTHREAD_H
#define LKVM_IOTHREAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef void (*iothread_fn)(void *opaque, uint32_t events);

struct iot_handler;
struct iothread;

#define IOT_MAX_POLLERS 4

/*
 * Poll policies (iothread_set_poll): IOT_POLL_AUTO (0, so a zeroed
 * setting means the default) adapts the window between 0 and
 * IOT_POLL_AUTO_MAX_NS; IOT_POLL_OFF never polls; any other value is a
 * fixed window in nanoseconds.
 */
#define IOT_POLL_AUTO		0
#define IOT_POLL_OFF		UINT64_MAX
#define IOT_POLL_AUTO_MAX_NS	64000
#define IOT_POLL_GROW_FROM_NS	4000	/* the first window after zero */
#define IOT_POLL_MAX_NS		1000000000ULL	/* a fixed window's limit */

/*
 * IOT_DEAD: the thread's wait failed and it ended.  pause, resume and
 * stop return at once from then on; the owner learns of it through the
 * death hook (iothread_on_death), called once on the dying thread.
 */
enum iothread_state {
	IOT_RUN, IOT_PAUSE_REQ, IOT_PAUSED, IOT_STOP_REQ, IOT_DEAD,
};

typedef void (*iothread_death_fn)(void *opaque, struct iothread *t, int err);

struct iothread {
	char name[16];
	pthread_t thread;
	bool started;
	int epfd;
	int ctl_fd;
	pthread_mutex_t lock;		/* control state only */
	pthread_cond_t cond;
	enum iothread_state state;
	unsigned int pauses;		/* nested pause requests */
	struct iot_handler *handlers;	/* registrations, under lock */
	/* Optional sleep other than epoll_wait: see iothread_set_wait. */
	int (*wait)(void *opaque, int epfd);
	void *wait_opaque;
	int (*watch)(void *opaque, int fd, iothread_fn fn, void *fn_opaque);
	void *watch_opaque;
	/* Busy-polling before sleep: see iothread_add_poller. */
	struct {
		bool (*fn)(void *opaque);
		void *opaque;
	} pollers[IOT_MAX_POLLERS];
	unsigned int npollers;
	uint64_t poll_policy;		/* see IOT_POLL_AUTO */
	uint64_t poll_ns;		/* the window now */
	uint64_t poll_max_ns;
	atomic_bool ctl_pending;	/* a control request waits */
	iothread_death_fn on_death;
	void *death_opaque;
	/* Runs first on the new thread; an error kills it (see death). */
	int (*on_start)(void *opaque, struct iothread *t);
	void *start_opaque;
	bool fail_wait;			/* test hook: die before the first wait */
	/* Statistics, written by the thread only. */
	uint64_t poll_hits, poll_misses, slept;
	uint64_t cpu_ns_final;		/* its CPU time when it ended */
	int tid;
};

int iothread_init(struct iothread *t, const char *name);
/* Adds fd; the handler runs on the thread with the epoll events. */
int iothread_add(struct iothread *t, int fd, uint32_t events, iothread_fn fn,
		 void *opaque);
int iothread_del(struct iothread *t, int fd);
/*
 * Changes the events watched on fd (added before); 0 stops watching it
 * without forgetting the handler.  On the owner thread, or while it is
 * paused.
 */
int iothread_watch(struct iothread *t, int fd, uint32_t events);
/*
 * Before start: the thread sleeps in wait(opaque, epfd), which returns
 * once epfd is readable (or early, having done work of its own), instead
 * of in epoll_wait; handlers are then run from a non-blocking epoll_wait.
 * An I/O engine uses it to sleep on its completions and the fds at once.
 */
void iothread_set_wait(struct iothread *t, int (*wait)(void *, int),
		       void *opaque);
/*
 * Before start, with a wait hook that can watch fds itself (an io_uring
 * poll per fd): iothread_add_hot() hands it the fd, and when the wait
 * hook ran the handler it returns 1, so no epoll_wait is needed.
 */
void iothread_set_watch(struct iothread *t,
			int (*watch)(void *opaque, int fd, iothread_fn fn,
				     void *fn_opaque),
			void *opaque);
/*
 * Before start: fd is readable now and then and fn always consumes
 * that (an eventfd it reads).  Watched by the wait hook where it can,
 * else like iothread_add(t, fd, EPOLLIN, ...).  Never removed.
 */
int iothread_add_hot(struct iothread *t, int fd, iothread_fn fn,
		     void *opaque);
/*
 * Before start: before going to sleep the thread spins for up to its
 * poll window calling every poller, which looks for work without a
 * syscall (a ring that moved, completions posted) and does it, returning
 * true if it found some.  Waking a sleeping thread costs tens of
 * microseconds under nested virtualisation; a short spin after each
 * burst of work hides that from a guest doing one request at a time.
 * But a spin that finds nothing takes the CPU from whoever would have
 * produced the work (the guest's vCPU on a small or nested host), so by
 * default the window adapts (iothread_set_poll).
 */
int iothread_add_poller(struct iothread *t, bool (*fn)(void *), void *opaque);
/*
 * Before start: the poll policy (IOT_POLL_AUTO, the default,
 * IOT_POLL_OFF or a fixed window in ns).  Adaptive: after each idle period the thread
 * looks at how long it waited for work.  Found within the window: a
 * hit, the window stays.  Slept, but the work came within the cap: the
 * window doubles (from IOT_POLL_GROW_FROM_NS) towards the cap.  Slept
 * longer than the cap: no window could have helped, it drops to zero.
 */
void iothread_set_poll(struct iothread *t, uint64_t policy);
/* On the thread: an idle period lasted waited_ns; adapt the window. */
void iothread_poll_account(struct iothread *t, uint64_t waited_ns);
/* "auto", "off" or microseconds into a policy; -EINVAL if none. */
int iothread_poll_parse(const char *s, uint64_t *policy);
/* The thread's CPU time so far (or at its end). */
uint64_t iothread_cpu_ns(const struct iothread *t);
/*
 * Before start: fn runs once, on the thread, if it dies (its wait or
 * epoll_wait failed).  Without a hook a death goes unreported, but
 * pause and stop still return.
 */
void iothread_on_death(struct iothread *t, iothread_death_fn fn,
		       void *opaque);
/*
 * Before start: fn runs first thing on the new thread (a filter to
 * install, say); if it fails the thread dies with its error.
 */
void iothread_on_start(struct iothread *t,
		       int (*fn)(void *opaque, struct iothread *t),
		       void *opaque);
/*
 * Test hook: LKVM_TEST_FAULT=iothread-wait:NAME in the environment makes
 * the thread called NAME fail its first wait, as a broken epoll or ring
 * would.  Read at iothread_start().
 */
#define IOTHREAD_FAULT_ENV "LKVM_TEST_FAULT"
int iothread_start(struct iothread *t);
void iothread_pause(struct iothread *t);
void iothread_resume(struct iothread *t);
/* Stops and joins the thread; fds added stay open (their owners close). */
void iothread_stop(struct iothread *t);
void iothread_free(struct iothread *t);
bool iothread_is_current(const struct iothread *t);
bool iothread_is_dead(struct iothread *t);

#endif
