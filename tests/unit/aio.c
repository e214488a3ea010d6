/*
 * aio.c - tests for the I/O engines (lib/aio_uring.c, lib/aio_sync.c)
 * on their owner thread: requests complete with the right results, a
 * barrier (fdatasync) starts only after every earlier request ended and
 * later ones wait for it, also while the ring holds a multishot poll
 * for a watched kick eventfd (IOSQE_IO_DRAIN would wait for that poll
 * forever).  alarm() turns a hang into a failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <linux/io_uring.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "lkvm/lib/aio.h"
#include "lkvm/lib/iothread.h"
#include "lkvm/lib/util.h"
#include "test.h"

#define NW 4			/* writes before the barrier */
#define NR 2			/* reads after it */
#define NIO (NW + 1 + NR)

struct job {
	struct aio *a;
	int kick, fd;
	struct aio_io io[NIO];
	struct iovec iov[NIO];
	char buf[NIO][4096];
	long res[NIO];
	int order[NIO];
	atomic_int done;
};

/* The one job (its requests' callbacks find it here). */
static struct job job;

static void job_done(struct aio_io *io, long res)
{
	int i = io - job.io;

	job.res[i] = res;
	job.order[atomic_fetch_add(&job.done, 1)] = i;
}

/* On the engine's thread: a kick submits the whole job at once. */
static void job_kick(void *opaque, uint32_t events)
{
	struct job *j = opaque;
	uint64_t v;
	int i;

	(void)events;
	if (read(j->kick, &v, sizeof(v)) != sizeof(v))
		return;
	for (i = 0; i < NIO; i++) {
		struct aio_io *io = &j->io[i];

		memset(io, 0, sizeof(*io));
		io->fd = j->fd;
		io->hint = AIO_ASYNC;
		io->done = job_done;
		io->iov = &j->iov[i];
		io->niov = 1;
		j->iov[i] = (struct iovec){ j->buf[i], 4096 };
		if (i < NW) {
			io->op = AIO_WRITE;
			io->off = i * 4096;
			memset(j->buf[i], 'a' + i, 4096);
		} else if (i == NW) {
			io->op = AIO_FDATASYNC;
			io->barrier = true;
		} else {
			io->op = AIO_READ;
			io->off = (i - NW - 1) * 4096;
		}
		aio_submit(j->a, io);
	}
}

static bool uring_works(void)
{
	struct io_uring_params p;
	int fd;

	memset(&p, 0, sizeof(p));
	fd = syscall(__NR_io_uring_setup, 4, &p);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static bool wait_done(struct job *j, int want)
{
	struct timespec t = { 0, 1000000 };
	int i;

	for (i = 0; i < 20000; i++) {
		if (atomic_load(&j->done) >= want)
			return true;
		nanosleep(&t, NULL);
	}
	return false;
}

static void test_barrier(bool uring)
{
	char path[] = "/tmp/lkvm-aio-XXXXXX";
	struct iothread t;
	uint64_t one = 1;
	int i, k, round;

	memset(&job, 0, sizeof(job));
	job.fd = mkstemp(path);
	CHECK(job.fd >= 0);
	unlink(path);
	job.kick = eventfd(0, EFD_NONBLOCK);
	CHECK_EQ(iothread_init(&t, "t-aio"), 0);
	CHECK_EQ(aio_create(&job.a, &t, 16, uring), 0);
	/* Where the kernel has no io_uring (qemu-user), the sync engine. */
	CHECK(!strcmp(job.a->ops->name,
		      uring && uring_works() ? "io_uring" : "sync"));
	CHECK_EQ(iothread_add_hot(&t, job.kick, job_kick, &job), 0);
	CHECK_EQ(iothread_start(&t), 0);
	for (round = 0; round < 3; round++) {
		atomic_store(&job.done, 0);
		CHECK_EQ(write(job.kick, &one, sizeof(one)), (ssize_t)sizeof(one));
		CHECK(wait_done(&job, NIO));
		if (atomic_load(&job.done) < NIO)
			break;
		for (i = 0; i < NIO; i++)
			CHECK_EQ(job.res[i], i == NW ? 0 : 4096);
		/* The barrier came after every write, before every read. */
		for (k = 0; k < NIO && job.order[k] != NW; k++)
			CHECK(job.order[k] < NW);
		CHECK_EQ(k, NW);
		for (k++; k < NIO; k++)
			CHECK(job.order[k] > NW);
		CHECK(job.buf[NW + 1][0] == 'a' && job.buf[NW + 2][4095] == 'b');
	}
	iothread_stop(&t);
	aio_free(job.a);
	iothread_free(&t);
	close(job.kick);
	close(job.fd);
}

int main(void)
{
	alarm(120);
	test_barrier(true);
	test_barrier(false);
	return test_done();
}
