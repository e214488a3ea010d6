/*
 * iobench.c - the in-guest load generator of make bench-arm64: 4 KiB
 * O_DIRECT random reads or writes on a block device for a fixed time,
 * through psync (QD1), Linux AIO or io_uring (any depth), the way fio's
 * psync, libaio and io_uring engines issue them.  A static aarch64
 * program with raw syscalls, so the L2 initramfs needs nothing else.
 *
 *   iobench DEV randread|randwrite psync|libaio|io_uring QD SECONDS
 *
 * Prints one line: "ops N secs S iops I irqs Q", where irqs counts the
 * virtio interrupts the guest took meanwhile (/proc/interrupts).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <linux/io_uring.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BS	4096
#define MAXQD	128

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t nblocks;
static int writing;

static uint64_t rnd_off(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (rng_state % nblocks) * BS;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "iobench: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Interrupts of every virtio line, all CPUs added up. */
static unsigned long long virtio_irqs(void)
{
	unsigned long long total = 0;
	char line[1024];
	FILE *f = fopen("/proc/interrupts", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char *p = strchr(line, ':');

		if (!p || !strstr(line, "virtio"))
			continue;
		for (p++;;) {
			char *end;
			unsigned long long v = strtoull(p, &end, 10);

			if (end == p)
				break;
			total += v;
			p = end;
		}
	}
	fclose(f);
	return total;
}

static long run_psync(int fd, char *buf, double end)
{
	long ops = 0;

	while ((ops & 15) || now() < end) {
		ssize_t n = writing ? pwrite(fd, buf, BS, rnd_off()) :
				      pread(fd, buf, BS, rnd_off());

		if (n != BS)
			die("pread/pwrite");
		ops++;
	}
	return ops;
}

static long run_libaio(int fd, char *bufs, int qd, double end)
{
	struct iocb cbs[MAXQD], *list[MAXQD];
	struct io_event ev[MAXQD];
	aio_context_t ctx = 0;
	long ops = 0, inflight = 0;
	int i, n;
	int stop = 0;

	if (syscall(__NR_io_setup, qd, &ctx) < 0)
		die("io_setup");
	for (i = 0; i < qd; i++) {
		memset(&cbs[i], 0, sizeof(cbs[i]));
		cbs[i].aio_fildes = fd;
		cbs[i].aio_lio_opcode = writing ? IOCB_CMD_PWRITE :
						  IOCB_CMD_PREAD;
		cbs[i].aio_buf = (uintptr_t)(bufs + (size_t)i * BS);
		cbs[i].aio_nbytes = BS;
		cbs[i].aio_offset = rnd_off();
		cbs[i].aio_data = i;
		list[i] = &cbs[i];
	}
	if (syscall(__NR_io_submit, ctx, qd, list) != qd)
		die("io_submit");
	inflight = qd;
	while (inflight) {
		n = syscall(__NR_io_getevents, ctx, 1, qd, ev, NULL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("io_getevents");
		inflight -= n;
		ops += n;
		if (!stop && now() >= end)
			stop = 1;
		if (stop)
			continue;
		for (i = 0; i < n; i++) {
			struct iocb *cb = &cbs[ev[i].data];

			if (ev[i].res != BS)
				errno = -(long)ev[i].res, die("aio result");
			cb->aio_offset = rnd_off();
			list[i] = cb;
		}
		if (syscall(__NR_io_submit, ctx, n, list) != n)
			die("io_submit");
		inflight += n;
	}
	syscall(__NR_io_destroy, ctx);
	return ops;
}

struct ring {
	int fd;
	unsigned int *sq_tail, *sq_mask, *sq_array;
	unsigned int *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
	unsigned int tail;
};

static void ring_setup(struct ring *r, unsigned int entries)
{
	struct io_uring_params p;
	uint8_t *sq, *cq;

	memset(&p, 0, sizeof(p));
	r->fd = syscall(__NR_io_uring_setup, entries, &p);
	if (r->fd < 0)
		die("io_uring_setup");
	sq = mmap(NULL, p.sq_off.array + p.sq_entries * 4, PROT_READ |
		  PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
		  IORING_OFF_SQ_RING);
	cq = mmap(NULL, p.cq_off.cqes + p.cq_entries *
		  sizeof(struct io_uring_cqe), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
	r->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe),
		       PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		       r->fd, IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || r->sqes == MAP_FAILED)
		die("io_uring mmap");
	r->sq_tail = (unsigned int *)(sq + p.sq_off.tail);
	r->sq_mask = (unsigned int *)(sq + p.sq_off.ring_mask);
	r->sq_array = (unsigned int *)(sq + p.sq_off.array);
	r->cq_head = (unsigned int *)(cq + p.cq_off.head);
	r->cq_tail = (unsigned int *)(cq + p.cq_off.tail);
	r->cq_mask = (unsigned int *)(cq + p.cq_off.ring_mask);
	r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	r->tail = *r->sq_tail;
}

static void ring_queue(struct ring *r, int fd, char *buf, uint64_t tag)
{
	unsigned int idx = r->tail & *r->sq_mask;
	struct io_uring_sqe *sqe = &r->sqes[idx];

	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = writing ? IORING_OP_WRITE : IORING_OP_READ;
	sqe->fd = fd;
	sqe->addr = (uintptr_t)buf;
	sqe->len = BS;
	sqe->off = rnd_off();
	sqe->user_data = tag;
	r->sq_array[idx] = idx;
	r->tail++;
}

static long run_uring(int fd, char *bufs, int qd, double end)
{
	struct ring r;
	long ops = 0, inflight = 0;
	unsigned int submit = 0;
	int i, stop = 0;

	ring_setup(&r, qd);
	for (i = 0; i < qd; i++)
		ring_queue(&r, fd, bufs + (size_t)i * BS, i);
	submit = qd;
	inflight = qd;
	while (inflight) {
		unsigned int head, tail;

		__atomic_store_n(r.sq_tail, r.tail, __ATOMIC_RELEASE);
		if (syscall(__NR_io_uring_enter, r.fd, submit, 1,
			    IORING_ENTER_GETEVENTS, NULL, 0) < 0 &&
		    errno != EINTR)
			die("io_uring_enter");
		submit = 0;
		head = *r.cq_head;
		tail = __atomic_load_n(r.cq_tail, __ATOMIC_ACQUIRE);
		if (!stop && now() >= end)
			stop = 1;
		for (; head != tail; head++) {
			struct io_uring_cqe *c = &r.cqes[head & *r.cq_mask];

			if (c->res != BS)
				errno = -c->res, die("io_uring result");
			inflight--;
			ops++;
			if (!stop) {
				ring_queue(&r, fd, bufs + c->user_data * BS,
					   c->user_data);
				submit++;
				inflight++;
			}
		}
		__atomic_store_n(r.cq_head, head, __ATOMIC_RELEASE);
	}
	close(r.fd);
	return ops;
}

int main(int argc, char **argv)
{
	unsigned long long irq0, irq1;
	uint64_t size;
	double t0, t1, secs;
	char *bufs;
	long ops;
	int fd, qd;

	if (argc != 6) {
		fprintf(stderr, "usage: iobench DEV randread|randwrite "
			"psync|libaio|io_uring QD SECONDS\n");
		return 2;
	}
	writing = !strcmp(argv[2], "randwrite");
	qd = atoi(argv[4]);
	secs = atof(argv[5]);
	if (qd < 1 || qd > MAXQD || secs <= 0)
		return 2;
	fd = open(argv[1], (writing ? O_RDWR : O_RDONLY) | O_DIRECT);
	if (fd < 0)
		die(argv[1]);
	if (ioctl(fd, BLKGETSIZE64, &size) < 0)
		die("BLKGETSIZE64");
	nblocks = size / BS;
	if (!nblocks)
		return 1;
	bufs = mmap(NULL, (size_t)qd * BS, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (bufs == MAP_FAILED)
		die("mmap");
	memset(bufs, 0x5a, (size_t)qd * BS);
	irq0 = virtio_irqs();
	t0 = now();
	if (!strcmp(argv[3], "psync"))
		ops = run_psync(fd, bufs, t0 + secs);
	else if (!strcmp(argv[3], "libaio"))
		ops = run_libaio(fd, bufs, qd, t0 + secs);
	else if (!strcmp(argv[3], "io_uring"))
		ops = run_uring(fd, bufs, qd, t0 + secs);
	else
		return 2;
	t1 = now();
	irq1 = virtio_irqs();
	printf("ops %ld secs %.3f iops %.0f irqs %llu\n", ops, t1 - t0,
	       ops / (t1 - t0), irq1 - irq0);
	return 0;
}
