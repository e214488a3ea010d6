/*
 * iothread.c - tests for vmm/iothread.c: handlers run on the thread,
 * pauses from several callers all wait for the handshake, and a thread
 * whose wait fails dies in a way its owner sees (the death hook runs
 * once; pause, resume and stop return).  A device whose queue thread
 * dies reports NEEDS_RESET, stops the VM with status 1, and can still be
 * reset by a vCPU without hanging.
 *
 * alarm() turns a hang into a failure: that is the bug being tested.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "lkvm/lib/aio.h"
#include "lkvm/lib/iothread.h"
#include "lkvm/lib/util.h"
#include "lkvm/virtio/device.h"
#include "lkvm/device.h"
#include "lkvm/machine.h"
#include "lkvm/vm.h"
#include "test.h"

static atomic_uint handled;

static void count_handler(void *opaque, uint32_t events)
{
	int fd = *(int *)opaque;
	uint64_t v;

	(void)events;
	if (read(fd, &v, sizeof(v)) == sizeof(v))
		atomic_fetch_add(&handled, 1);
}

static void kick(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) != sizeof(one))
		abort();
}

static bool wait_for(atomic_uint *v, unsigned int want)
{
	struct timespec t = { 0, 1000000 };
	int i;

	for (i = 0; i < 30000; i++) {
		if (atomic_load(v) >= want)
			return true;
		nanosleep(&t, NULL);
	}
	return false;
}

static void test_handlers(void)
{
	struct iothread t;
	int fd = eventfd(0, EFD_NONBLOCK);

	atomic_store(&handled, 0);
	CHECK_EQ(iothread_init(&t, "t-basic"), 0);
	CHECK_EQ(iothread_add(&t, fd, EPOLLIN, count_handler, &fd), 0);
	CHECK_EQ(iothread_start(&t), 0);
	kick(fd);
	CHECK(wait_for(&handled, 1));
	iothread_free(&t);
	close(fd);
}

struct pauser {
	struct iothread *t;
	atomic_uint *parked;
	atomic_bool *release;
};

static void *pause_thread(void *arg)
{
	struct pauser *p = arg;

	iothread_pause(p->t);
	atomic_fetch_add(p->parked, 1);
	while (!atomic_load(p->release))
		;
	iothread_resume(p->t);
	return NULL;
}

/*
 * Two callers pause at once: when each returns, the thread must be
 * parked (a kick is not served) until both have resumed.
 */
static void test_nested_pause(void)
{
	struct iothread t;
	int fd = eventfd(0, EFD_NONBLOCK);
	atomic_uint parked = 0;
	atomic_bool release = false;
	struct pauser p = { &t, &parked, &release };
	pthread_t a, b;
	int round;

	CHECK_EQ(iothread_init(&t, "t-pause"), 0);
	CHECK_EQ(iothread_add(&t, fd, EPOLLIN, count_handler, &fd), 0);
	CHECK_EQ(iothread_start(&t), 0);
	for (round = 0; round < 200; round++) {
		unsigned int before;

		atomic_store(&parked, 0);
		atomic_store(&release, false);
		pthread_create(&a, NULL, pause_thread, &p);
		pthread_create(&b, NULL, pause_thread, &p);
		while (atomic_load(&parked) < 2)
			;
		before = atomic_load(&handled);
		kick(fd);
		usleep(round < 3 ? 20000 : 0);
		if (atomic_load(&handled) != before) {
			CHECK(!"a paused thread ran a handler");
			break;
		}
		atomic_store(&release, true);
		pthread_join(a, NULL);
		pthread_join(b, NULL);
		if (!wait_for(&handled, before + 1)) {
			CHECK(!"the thread did not run again after resume");
			break;
		}
	}
	CHECK_EQ(round, 200);
	iothread_free(&t);
	close(fd);
}

static atomic_uint deaths;
static int death_err;

static void on_death(void *opaque, struct iothread *t, int err)
{
	(void)opaque;
	(void)t;
	death_err = err;
	atomic_fetch_add(&deaths, 1);
}

static void test_dead_thread(void)
{
	struct iothread t;

	atomic_store(&deaths, 0);
	CHECK_EQ(iothread_init(&t, "t-dead"), 0);
	iothread_on_death(&t, on_death, NULL);
	setenv(IOTHREAD_FAULT_ENV, "iothread-wait:t-dead", 1);
	CHECK_EQ(iothread_start(&t), 0);
	unsetenv(IOTHREAD_FAULT_ENV);
	CHECK(wait_for(&deaths, 1));
	CHECK_EQ(death_err, -EIO);
	CHECK(iothread_is_dead(&t));
	/* None of these may wait for a thread that is gone. */
	iothread_pause(&t);
	iothread_pause(&t);
	iothread_resume(&t);
	iothread_resume(&t);
	iothread_stop(&t);
	CHECK_EQ(atomic_load(&deaths), 1);
	iothread_free(&t);
}

/* The hook names one thread: the others start normally. */
static void test_fault_names_one(void)
{
	struct iothread t;

	atomic_store(&deaths, 0);
	CHECK_EQ(iothread_init(&t, "t-alive"), 0);
	iothread_on_death(&t, on_death, NULL);
	setenv(IOTHREAD_FAULT_ENV, "iothread-wait:t-dead", 1);
	CHECK_EQ(iothread_start(&t), 0);
	unsetenv(IOTHREAD_FAULT_ENV);
	usleep(20000);
	CHECK_EQ(atomic_load(&deaths), 0);
	CHECK(!iothread_is_dead(&t));
	iothread_pause(&t);
	iothread_resume(&t);
	iothread_free(&t);
}

/* A blk queue thread that dies: NEEDS_RESET, status 1, reset returns. */
static void test_device_thread_death(void)
{
	static const char *disks[1];
	struct mem_region reg = { 0, 16 * MiB };
	char path[64], err[256];
	struct virtio_device *d;
	struct lkvm *vm = calloc(1, sizeof(*vm));
	struct timespec ts = { 0, 1000000 };
	int fd, i;

	snprintf(path, sizeof(path), "/tmp/lkvm-iot-%d.img", getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && ftruncate(fd, 1 << 20) == 0);
	close(fd);
	disks[0] = path;
	lkvm_config_init(&vm->cfg);
	vm->cfg.disks = disks;
	vm->cfg.ndisks = 1;
	vm->cfg.virtio_transport = LKVM_VIRTIO_MMIO;
	vm->kvm_fd = vm->vm_fd = -1;
	vm->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	io_bus_init(&vm->pio);
	io_bus_init(&vm->mmio);
	CHECK_EQ(console_init(&vm->console, vm, -1, -1, -1, 0), 0);
	CHECK_EQ(guest_memory_init(&vm->mem, &reg, 1, NULL), 0);
	CHECK_EQ(machine_create_devices(vm, err, sizeof(err)), 0);
	setenv(IOTHREAD_FAULT_ENV, "iothread-wait:blk0-q0", 1);
	CHECK_EQ(vm_devices_start(vm), 0);
	unsetenv(IOTHREAD_FAULT_ENV);
	for (i = 0; i < 30000 && !atomic_load(&vm->result_set); i++)
		nanosleep(&ts, NULL);
	CHECK(atomic_load(&vm->result_set));
	CHECK_EQ(vm->result.reason, LKVM_EXIT_ERROR);
	CHECK_EQ(vm->result.status, 1);
	CHECK(strstr(vm->result.message, "I/O thread blk0-q0 failed") != NULL);
	d = container_of(vm_device_find(vm, "blk0"), struct virtio_device,
			 vdev);
	CHECK(d != NULL);
	if (d) {
		CHECK(atomic_load(&d->status) & VIRTIO_STATUS_NEEDS_RESET);
		/* What a vCPU does next: reset.  It must come back. */
		virtio_device_lock(d);
		virtio_set_status(d, 0);
		virtio_device_unlock(d);
		CHECK_EQ(atomic_load(&d->status), 0);
	}
	vm_devices_free(vm);
	io_bus_free(&vm->pio);
	io_bus_free(&vm->mmio);
	guest_memory_free(&vm->mem);
	console_free(&vm->console);
	close(vm->stop_fd);
	free(vm);
	unlink(path);
}

static void test_poll_parse(void)
{
	uint64_t p;

	CHECK_EQ(iothread_poll_parse("auto", &p), 0);
	CHECK_EQ(p, IOT_POLL_AUTO);
	CHECK_EQ(iothread_poll_parse("off", &p), 0);
	CHECK_EQ(p, IOT_POLL_OFF);
	CHECK_EQ(iothread_poll_parse("0", &p), 0);
	CHECK_EQ(p, IOT_POLL_OFF);
	CHECK_EQ(iothread_poll_parse("25", &p), 0);
	CHECK_EQ(p, 25000);
	CHECK_EQ(iothread_poll_parse("", &p), -EINVAL);
	CHECK_EQ(iothread_poll_parse("fast", &p), -EINVAL);
	CHECK_EQ(iothread_poll_parse("-1", &p), -EINVAL);
	CHECK_EQ(iothread_poll_parse("1000001", &p), -EINVAL);
}

/* Work a poller finds without a kick: a counter the test raises. */
static atomic_uint poll_pending, poll_done;

static bool take_work(void *opaque)
{
	(void)opaque;
	if (!atomic_load(&poll_pending))
		return false;
	atomic_fetch_sub(&poll_pending, 1);
	atomic_fetch_add(&poll_done, 1);
	return true;
}

static void kick_work(void *opaque, uint32_t events)
{
	int fd = *(int *)opaque;
	uint64_t v;

	(void)events;
	if (read(fd, &v, sizeof(v)) == sizeof(v))
		while (take_work(NULL))
			;
}

/* n items, gap_us apart, each also kicked (as a guest would notify). */
static void feed(int fd, unsigned int n, unsigned int gap_us)
{
	unsigned int i, want = atomic_load(&poll_done);

	for (i = 0; i < n; i++) {
		uint64_t until = now_ns() + gap_us * 1000ULL;

		atomic_fetch_add(&poll_pending, 1);
		kick(fd);
		want++;
		while (now_ns() < until)
			;
	}
	CHECK(wait_for(&poll_done, want));
}

/*
 * Adaptive: work that keeps coming within the cap opens a window and
 * polling finds it; work far apart closes the window again.  Fixed and
 * off keep theirs.
 */
static void test_poll_policies(void)
{
	static const uint64_t policies[] = { IOT_POLL_AUTO, 30000, IOT_POLL_OFF };
	unsigned int k;

	for (k = 0; k < ARRAY_SIZE(policies); k++) {
		struct iothread t;
		int fd = eventfd(0, EFD_NONBLOCK);

		atomic_store(&poll_pending, 0);
		atomic_store(&poll_done, 0);
		CHECK_EQ(iothread_init(&t, "t-poll"), 0);
		CHECK_EQ(iothread_add(&t, fd, EPOLLIN, kick_work, &fd), 0);
		CHECK_EQ(iothread_add_poller(&t, take_work, NULL), 0);
		iothread_set_poll(&t, policies[k]);
		CHECK_EQ(iothread_start(&t), 0);
		feed(fd, 3000, 5);
		/*
		 * Timing on a shared host decides how often auto polls.  A
		 * fixed window must catch some item: on a loaded 2-core host
		 * the feeder may be descheduled through a whole round, so it
		 * gets a few more rounds to show that.
		 */
		if (policies[k] != IOT_POLL_OFF && policies[k] != IOT_POLL_AUTO) {
			unsigned int round;

			for (round = 0; round < 5 &&
			     !__atomic_load_n(&t.poll_hits, __ATOMIC_RELAXED);
			     round++)
				feed(fd, 3000, 5);
			CHECK(t.poll_hits > 0);
		}
		feed(fd, 10, 5000);
		iothread_stop(&t);
		if (policies[k] == IOT_POLL_AUTO) {
			CHECK_EQ(t.poll_ns, 0);		/* closed again */
			CHECK_EQ(t.poll_max_ns, IOT_POLL_AUTO_MAX_NS);
		} else if (policies[k] == IOT_POLL_OFF) {
			CHECK_EQ(t.poll_hits + t.poll_misses, 0);
		} else {
			CHECK_EQ(t.poll_ns, 30000);
			CHECK(t.poll_misses >= 10);	/* one per far gap */
		}
		CHECK(t.slept > 0);
		CHECK(iothread_cpu_ns(&t) > 0);
		iothread_free(&t);
		close(fd);
	}
}

/* The adaptive window's steps, without a thread or a clock. */
static void test_poll_adapt(void)
{
	static const uint64_t grow[] = { 4000, 8000, 16000, 32000, 64000, 64000 };
	struct iothread t;
	unsigned int i;

	CHECK_EQ(iothread_init(&t, "t-adapt"), 0);
	CHECK_EQ(t.poll_ns, 0);		/* auto starts closed */
	for (i = 0; i < ARRAY_SIZE(grow); i++) {
		/* Work came after a sleep, but within the cap: grow. */
		iothread_poll_account(&t, 60000);
		CHECK_EQ(t.poll_ns, grow[i]);
	}
	iothread_poll_account(&t, 10000);	/* within the window: stays */
	CHECK_EQ(t.poll_ns, 64000);
	iothread_poll_account(&t, 64001);	/* past the cap: closes */
	CHECK_EQ(t.poll_ns, 0);
	iothread_poll_account(&t, 1000);	/* opens from the start */
	CHECK_EQ(t.poll_ns, 4000);
	iothread_set_poll(&t, 20000);		/* fixed: never moves */
	iothread_poll_account(&t, 1000000);
	iothread_poll_account(&t, 30000);
	CHECK_EQ(t.poll_ns, 20000);
	iothread_set_poll(&t, IOT_POLL_OFF);
	iothread_poll_account(&t, 30000);
	CHECK_EQ(t.poll_ns, 0);
	iothread_free(&t);
}

/*
 * A hot fd on a thread that sleeps in io_uring: the ring's own multishot
 * poll runs the handler (wait returns without epoll), every kick is
 * served, and control requests (through epoll) still get through.
 */
static void test_hot_fd(void)
{
	struct iothread t;
	struct aio *a = NULL;
	int fd = eventfd(0, EFD_NONBLOCK);
	unsigned int i;

	atomic_store(&handled, 0);
	CHECK_EQ(iothread_init(&t, "t-hot"), 0);
	/* Without io_uring (qemu-user) the fd falls back to epoll. */
	CHECK_EQ(aio_create(&a, &t, 8, true), 0);
	if (!a) {
		iothread_free(&t);
		close(fd);
		return;
	}
	CHECK_EQ(iothread_add_hot(&t, fd, count_handler, &fd), 0);
	CHECK_EQ(iothread_start(&t), 0);
	for (i = 1; i <= 200; i++) {
		kick(fd);
		CHECK(wait_for(&handled, i));
		if (i % 50 == 0) {
			iothread_pause(&t);
			iothread_resume(&t);
		}
	}
	CHECK_EQ(atomic_load(&handled), 200);
	/* The kicks woke the ring's own poll, not epoll's. */
	CHECK(t.slept >= 100);
	/* Kicked while paused: served after the resume. */
	iothread_pause(&t);
	kick(fd);
	iothread_resume(&t);
	CHECK(wait_for(&handled, 201));
	iothread_stop(&t);
	aio_free(a);
	iothread_free(&t);
	close(fd);
}

int main(void)
{
	alarm(300);
	test_poll_parse();
	test_poll_adapt();
	test_hot_fd();
	test_poll_policies();
	test_handlers();
	test_nested_pause();
	test_dead_thread();
	test_fault_names_one();
	test_device_thread_death();
	return test_done();
}
