/*
 * blkbench - drives lkvm's real virtio-blk device code the way a guest
 * driver would, with no KVM: rings live in a private guest-memory
 * mapping, a driver thread per queue posts requests, kicks the queue's
 * eventfd (only when EVENT_IDX says the device wants it) and sleeps on
 * an interrupt eventfd that the device's transport writes.
 *
 *   blkbench --disk SPEC|null --rw randread|randwrite --depth D
 *            --queues Q --seconds S [--aio io_uring|sync]
 *     SPEC is a -d specification ("img,cache=none,poll=off").  Prints
 *     one JSON object: iops, p50/p99 latency (us), interrupts and kicks
 *     per request, and the device threads' CPU time per request.
 *   blkbench --check PATH
 *     writes 256 distinct 4 KiB blocks through the device at depth 16,
 *     flushes, reads them back through the device and from the file
 *     directly; ends with "N passed, N failed".
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "lkvm/disk/disk.h"
#include "lkvm/lib/iothread.h"
#include "lkvm/memory.h"
#include "lkvm/lib/util.h"
#include "lkvm/virtio/blk.h"
#include "lkvm/virtio/device.h"
#include "lkvm/vm.h"

#define QSIZE		256
#define BLOCK		4096
#define MAX_DEPTH	64
#define MAX_QUEUES	4
#define QUEUE_SPAN	(4 << 20)	/* guest memory per queue */
#define DRIVER_POLL_NS	50000
#define F_EVENT_IDX	29
#define F_VERSION_1	32
#define F_MQ		12

struct vdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct hdr {
	uint32_t type, ioprio;
	uint64_t sector;
};

struct sim_queue {
	struct virtio_device *dev;
	unsigned int qi;
	int irq_fd;
	uint64_t base;			/* guest address of this queue's area */
	struct vdesc *desc;
	volatile uint16_t *avail;	/* flags, idx, ring[QSIZE], used_event */
	volatile uint16_t *used;	/* flags, idx, ring (4 u16 each), avail_event */
	struct hdr *hdrs;
	volatile uint8_t *status;
	uint8_t *data;
	uint16_t avail_idx, kicked_idx, last_used;
	uint32_t type;
	unsigned int depth;
	uint64_t sectors;		/* disk capacity */
	uint64_t rng;
	uint64_t t_post[MAX_DEPTH];
	uint64_t sector_of[MAX_DEPTH];
	uint32_t *lat;
	size_t nlat, maxlat;
	uint64_t done, kicks, irqs, errors;
	atomic_bool *stop;
	pthread_t thread;
};

struct bench {
	struct lkvm vm;
	struct virtio_device *dev;
	struct sim_queue q[MAX_QUEUES];
	unsigned int nq;
	atomic_bool stop;
};

static void bench_signal_queue(struct virtio_device *d, struct virtio_queue *q)
{
	struct bench *b = d->tr_priv;
	uint64_t one = 1;

	if (write(b->q[q->index].irq_fd, &one, sizeof(one)) < 0) {
		/* saturated: the driver is being woken anyway */
	}
}

static void bench_signal_config(struct virtio_device *d)
{
	(void)d;
}

static const struct virtio_transport_ops bench_transport = {
	.name = "bench",
	.signal_queue = bench_signal_queue,
	.signal_config = bench_signal_config,
};

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint16_t load16(volatile uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* Posts request `slot` as header + 4 KiB + status at `sector`. */
static void post(struct sim_queue *s, unsigned int slot, uint64_t sector,
		 uint32_t type)
{
	uint64_t g = s->base;
	struct vdesc *d = &s->desc[3 * slot];
	bool in = type == 0;

	s->hdrs[slot] = (struct hdr){ type, 0, sector };
	s->status[slot] = 0xff;
	d[0] = (struct vdesc){ g + 16384 + slot * sizeof(struct hdr),
			       sizeof(struct hdr), 1, 3 * slot + 1 };
	d[1] = (struct vdesc){ g + (1 << 20) + (uint64_t)slot * BLOCK, BLOCK,
			       1 | (in ? 2 : 0), 3 * slot + 2 };
	d[2] = (struct vdesc){ g + 20480 + slot, 1, 2, 0 };
	s->avail[2 + s->avail_idx % QSIZE] = 3 * slot;
	s->avail_idx++;
	s->sector_of[slot] = sector;
}

static void publish_and_kick(struct sim_queue *s)
{
	uint16_t event, old = s->kicked_idx, now = s->avail_idx;
	uint64_t one = 1;

	__atomic_store_n(&s->avail[1], now, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	event = load16(&s->used[2 + 4 * QSIZE]);
	s->kicked_idx = now;
	/* Kick only if the device asked to hear about this range. */
	if ((uint16_t)(now - event - 1) < (uint16_t)(now - old)) {
		s->kicks++;
		if (write(s->dev->queues[s->qi].kick_fd, &one, sizeof(one)) < 0)
			s->errors++;
	}
}

/* Takes used entries; returns the slots (head / 3) in out. */
static unsigned int reap(struct sim_queue *s, unsigned int *out)
{
	unsigned int n = 0;
	uint16_t idx = load16(&s->used[1]);

	while (s->last_used != idx) {
		volatile uint32_t *e = (volatile uint32_t *)&s->used[2] +
				       2 * (s->last_used % QSIZE);

		out[n++] = e[0] / 3;
		s->last_used++;
	}
	return n;
}

/*
 * Like a vCPU with KVM halt polling, spin a while for a completion
 * before sleeping on the interrupt.
 */
static unsigned int reap_spin(struct sim_queue *s, unsigned int *out)
{
	uint64_t end = now_ns() + DRIVER_POLL_NS;
	unsigned int n;

	do {
		n = reap(s, out);
		if (n)
			return n;
		sched_yield();	/* two queues' drivers and threads share 2 CPUs */
	} while (now_ns() < end);
	return 0;
}

static void record(struct sim_queue *s, unsigned int slot, uint64_t now)
{
	if (s->status[slot] != 0)
		s->errors++;
	if (s->nlat < s->maxlat)
		s->lat[s->nlat++] = now - s->t_post[slot];
	s->done++;
}

static void *driver_main(void *arg)
{
	struct sim_queue *s = arg;
	unsigned int free_slots[MAX_DEPTH], nfree = 0, got[QSIZE], i, n;
	uint64_t v;

	for (i = 0; i < s->depth; i++)
		free_slots[nfree++] = i;
	while (!atomic_load_explicit(s->stop, memory_order_relaxed)) {
		uint64_t now = now_ns();

		while (nfree) {
			unsigned int slot = free_slots[--nfree];
			uint64_t sector = (xorshift(&s->rng) %
					   (s->sectors / 8)) * 8;

			s->t_post[slot] = now;
			post(s, slot, sector, s->type);
		}
		publish_and_kick(s);
		n = reap(s, got);
		if (!n) {
			/* Ask for an interrupt at the next completion. */
			__atomic_store_n(&s->avail[2 + QSIZE], s->last_used,
					 __ATOMIC_RELEASE);
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			n = reap_spin(s, got);
			if (!n) {
				if (read(s->irq_fd, &v, sizeof(v)) == sizeof(v))
					s->irqs++;
				continue;
			}
		}
		now = now_ns();
		for (i = 0; i < n; i++) {
			record(s, got[i], now);
			free_slots[nfree++] = got[i];
		}
	}
	return NULL;
}

static int bench_setup(struct bench *b, struct disk *disk, unsigned int nq,
		       bool uring)
{
	struct mem_region r = { 0, (uint64_t)QUEUE_SPAN * MAX_QUEUES };
	struct virtio_device *d;
	uint64_t feat = 1ULL << F_VERSION_1 | 1ULL << F_EVENT_IDX |
			(nq > 1 ? 1ULL << F_MQ : 0);
	unsigned int i;
	int ret;

	memset(b, 0, sizeof(*b));
	b->nq = nq;
	b->vm.cfg.cpus = nq;
	ret = guest_memory_init(&b->vm.mem, &r, 1, NULL);
	if (ret)
		return ret;
	ret = virtio_blk_create(&b->vm, disk, 0, nq, uring, &d);
	if (ret)
		return ret;
	b->dev = d;
	d->tr = &bench_transport;
	d->tr_priv = b;
	virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	virtio_set_features_word(d, 0, feat);
	virtio_set_features_word(d, 1, feat >> 32);
	virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			  VIRTIO_STATUS_FEATURES_OK);
	if (!(atomic_load(&d->status) & VIRTIO_STATUS_FEATURES_OK))
		return -EPROTO;
	for (i = 0; i < nq; i++) {
		struct sim_queue *s = &b->q[i];
		struct virtio_queue *q;
		uint8_t *hva;

		s->dev = d;
		s->qi = i;
		s->base = (uint64_t)i * QUEUE_SPAN;
		s->irq_fd = eventfd(0, EFD_CLOEXEC);
		s->stop = &b->stop;
		s->rng = 0x9e3779b97f4a7c15ULL * (i + 1);
		s->sectors = disk->size / 512;
		hva = guest_ptr(&b->vm.mem, s->base, QUEUE_SPAN);
		s->desc = (struct vdesc *)hva;
		s->avail = (volatile uint16_t *)(hva + 4096);
		s->used = (volatile uint16_t *)(hva + 8192);
		s->hdrs = (struct hdr *)(hva + 16384);
		s->status = hva + 20480;
		s->data = hva + (1 << 20);
		d->queue_sel = i;
		q = virtio_selected_queue(d);
		q->num = QSIZE;
		q->desc = s->base;
		q->driver = s->base + 4096;
		q->device = s->base + 8192;
		virtio_queue_set_ready(d, q, true);
		if (!q->ready || s->irq_fd < 0)
			return -EINVAL;
	}
	virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			  VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	return virtio_device_start(d);
}

static void bench_teardown(struct bench *b)
{
	unsigned int i;

	if (b->dev) {
		virtio_device_stop(b->dev);
		virtio_device_free(b->dev);
	}
	for (i = 0; i < b->nq; i++) {
		if (b->q[i].irq_fd >= 0)
			close(b->q[i].irq_fd);
		free(b->q[i].lat);
	}
	guest_memory_free(&b->vm.mem);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int run_bench(const char *path, uint32_t type, unsigned int depth,
		     unsigned int nq, double seconds, bool uring)
{
	struct bench *b = calloc(1, sizeof(*b));
	struct disk_spec spec = { 0 };
	char err[256];
	struct disk *disk;
	uint64_t t0, t1, done = 0, kicks = 0, irqs = 0, errors = 0;
	uint64_t c0 = 0, c1 = 0;
	uint32_t *all;
	size_t nall = 0;
	unsigned int i;
	int ret;

	if (!strcmp(path, "null")) {
		ret = disk_null_open(&disk, 1ULL << 30);
	} else {
		ret = disk_spec_parse(path, &spec, err, sizeof(err));
		if (!ret) {
			ret = disk_open(&disk, &spec, err, sizeof(err));
			disk_spec_free(&spec);
		}
		if (ret)
			fprintf(stderr, "blkbench: %s\n", err);
	}
	if (ret)
		return 1;
	ret = bench_setup(b, disk, nq, uring);
	if (ret) {
		fprintf(stderr, "blkbench: set-up failed: %s\n", strerror(-ret));
		return 1;
	}
	for (i = 0; i < nq; i++) {
		b->q[i].type = type;
		b->q[i].depth = depth;
		b->q[i].maxlat = (size_t)(seconds * 3e6) + 1024;
		b->q[i].lat = malloc(b->q[i].maxlat * sizeof(uint32_t));
		if (!b->q[i].lat)
			return 1;
	}
	t0 = now_ns();
	for (i = 0; i < nq; i++)
		pthread_create(&b->q[i].thread, NULL, driver_main, &b->q[i]);
	for (i = 0; i < b->dev->threads_ready; i++)
		c0 += iothread_cpu_ns(&b->dev->threads[i]);
	usleep(seconds * 1e6);
	for (i = 0; i < b->dev->threads_ready; i++)
		c1 += iothread_cpu_ns(&b->dev->threads[i]);
	atomic_store(&b->stop, true);
	for (i = 0; i < nq; i++) {
		uint64_t one = 1;

		/* A driver asleep on its interrupt fd wakes to see stop. */
		if (write(b->q[i].irq_fd, &one, sizeof(one)) < 0)
			errors++;
		pthread_join(b->q[i].thread, NULL);
	}
	t1 = now_ns();
	all = malloc((nq * b->q[0].maxlat) * sizeof(uint32_t));
	for (i = 0; i < nq; i++) {
		done += b->q[i].done;
		kicks += b->q[i].kicks;
		irqs += b->q[i].irqs;
		errors += b->q[i].errors;
		memcpy(all + nall, b->q[i].lat, b->q[i].nlat * sizeof(uint32_t));
		nall += b->q[i].nlat;
	}
	qsort(all, nall, sizeof(uint32_t), cmp_u32);
	printf("{\"iops\": %.0f, \"p50_us\": %.2f, \"p99_us\": %.2f, "
	       "\"irqs_per_req\": %.3f, \"kicks_per_req\": %.3f, "
	       "\"cpu_us_per_req\": %.3f, "
	       "\"requests\": %llu, \"errors\": %llu, \"engine\": \"%s\"}\n",
	       done / ((t1 - t0) / 1e9),
	       nall ? all[nall / 2] / 1e3 : 0.0,
	       nall ? all[nall * 99 / 100] / 1e3 : 0.0,
	       done ? (double)irqs / done : 0, done ? (double)kicks / done : 0,
	       done ? (c1 - c0) / 1e3 / done : 0,
	       (unsigned long long)done, (unsigned long long)errors,
	       b->dev ? (uring ? "io_uring" : "sync") : "?");
	free(all);
	bench_teardown(b);
	free(b);
	return errors ? 1 : 0;
}

/* Submits one batch of `n` requests on queue 0 and waits for all. */
static bool check_batch(struct sim_queue *s, uint32_t type,
			const uint64_t *sectors, unsigned int n)
{
	unsigned int got[QSIZE], i, k, done = 0;
	uint64_t v;

	for (i = 0; i < n; i++)
		post(s, i, sectors[i], type);
	publish_and_kick(s);
	while (done < n) {
		__atomic_store_n(&s->avail[2 + QSIZE], s->last_used,
				 __ATOMIC_RELEASE);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		k = reap(s, got);
		if (!k) {
			if (read(s->irq_fd, &v, sizeof(v)) != sizeof(v))
				return false;
			continue;
		}
		for (i = 0; i < k; i++)
			if (s->status[got[i]] != 0)
				return false;
		done += k;
	}
	return true;
}

static uint8_t check_byte(uint64_t sector, unsigned int i)
{
	return (uint8_t)(sector * 131 + i * 7 + (i >> 9));
}

static int run_check(const char *path, bool uring)
{
	struct bench *b = calloc(1, sizeof(*b));
	struct disk_spec spec = { .path = (char *)path };
	unsigned int passed = 0, failed = 0, i, j, round;
	uint64_t sectors[16], rng = 12345;
	struct disk *disk;
	char err[256];
	int fd;

	if (disk_open(&disk, &spec, err, sizeof(err))) {
		fprintf(stderr, "blkbench: %s\n", err);
		return 1;
	}
	if (bench_setup(b, disk, 1, uring)) {
		fprintf(stderr, "blkbench: set-up failed\n");
		return 1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	for (round = 0; round < 16; round++) {
		struct sim_queue *s = &b->q[0];
		uint64_t flush_sector = 0;
		bool ok = true;

		/* 16 distinct 4 KiB blocks (distinct: one per 1/16th). */
		for (i = 0; i < 16; i++) {
			uint64_t span = s->sectors / 8 / 16;

			sectors[i] = ((i * span) + xorshift(&rng) % span) * 8;
			for (j = 0; j < BLOCK; j++)
				s->data[i * BLOCK + j] = check_byte(sectors[i], j);
		}
		ok &= check_batch(s, 1, sectors, 16);
		ok &= check_batch(s, 4, &flush_sector, 1);
		memset(s->data, 0, 16 * BLOCK);
		ok &= check_batch(s, 0, sectors, 16);
		for (i = 0; ok && i < 16; i++) {
			uint8_t file[BLOCK];

			for (j = 0; j < BLOCK; j++)
				ok &= s->data[i * BLOCK + j] ==
				      check_byte(sectors[i], j);
			ok &= pread(fd, file, BLOCK, sectors[i] * 512) == BLOCK &&
			      !memcmp(file, s->data + i * BLOCK, BLOCK);
		}
		printf("%s round %u: 16 blocks written, flushed, read back "
		       "through the device and from the file (%s)\n",
		       ok ? "PASS" : "FAIL", round, uring ? "io_uring" : "sync");
		if (ok)
			passed++;
		else
			failed++;
	}
	close(fd);
	bench_teardown(b);
	free(b);
	printf("%u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "disk", required_argument, NULL, 'd' },
		{ "rw", required_argument, NULL, 'r' },
		{ "depth", required_argument, NULL, 'q' },
		{ "queues", required_argument, NULL, 'n' },
		{ "seconds", required_argument, NULL, 's' },
		{ "aio", required_argument, NULL, 'a' },
		{ "check", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	const char *disk = "null", *check = NULL;
	unsigned int depth = 1, nq = 1;
	double seconds = 2;
	uint32_t type = 0;
	bool uring = true;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': disk = optarg; break;
		case 'r': type = !strcmp(optarg, "randwrite"); break;
		case 'q': depth = atoi(optarg); break;
		case 'n': nq = atoi(optarg); break;
		case 's': seconds = atof(optarg); break;
		case 'a': uring = strcmp(optarg, "sync") != 0; break;
		case 'c': check = optarg; break;
		default: return 2;
		}
	}
	if (depth < 1 || depth > MAX_DEPTH || nq < 1 || nq > MAX_QUEUES ||
	    seconds <= 0) {
		fprintf(stderr, "blkbench: depth 1-%d, queues 1-%d\n",
			MAX_DEPTH, MAX_QUEUES);
		return 2;
	}
	if (check)
		return run_check(check, uring);
	return run_bench(disk, type, depth, nq, seconds, uring);
}
