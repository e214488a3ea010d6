/*
 * fsbench - drives lkvm's real virtio-fs device (virtio/fs.c and the
 * passthrough server behind it) the way a guest's FUSE client would,
 * with no KVM: rings in a private guest-memory mapping, a driver thread
 * per request queue posting requests, kicking the queue's eventfd when
 * EVENT_IDX asks, and sleeping on an interrupt eventfd.
 *
 *   fsbench --dir DIR --op read|write|getattr|lookup --depth D
 *           --queues Q --seconds S [--slow N]
 *     DIR holds "data" (the file READ and WRITE use, 4 KiB at random
 *     offsets) and, for lookup, the files "n0".."n999" (looked up at
 *     random; --names N: n0..n(N-1)).  --slow N: queue 0 sends instead N at a time LOOKUPs of
 *     "slow" (lkvm's LKVM_TEST_FAULT=fs-slow-lookup:MS makes them
 *     slow), the other queues the op: the other queues' latency shows
 *     whether a blocking request stalls them.
 *     Prints one JSON object: ops/s and p50/p99 latency (us) of the
 *     queues doing the op, and the device's CPU time per op.
 *   fsbench --direct getattr|lookup --dir DIR --queues Q --seconds S
 *     the same operations done directly (fstatat), Q threads.
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lkvm/fs/fuse_msg.h"
#include "lkvm/lib/iothread.h"
#include "lkvm/lib/util.h"
#include "lkvm/memory.h"
#include "lkvm/virtio/device.h"
#include "lkvm/virtio/fs.h"
#include "lkvm/vm.h"

#define QSIZE		128
#define MAX_DEPTH	32		/* 4 descriptors each */
#define MAX_QUEUES	4
#define SPAN		(4 << 20)	/* guest memory per queue */
#define REQ_AT		16384		/* request buffers, 256 B each */
#define REP_AT		(REQ_AT + 65536)	/* reply buffers, 256 B each */
#define DATA_AT		(1 << 20)	/* 4 KiB data buffers */
#define F_EVENT_IDX	29
#define F_VERSION_1	32
#define DRIVER_POLL_NS	50000

enum op { OP_READ, OP_WRITE, OP_GETATTR, OP_LOOKUP, OP_SLOW };

struct vdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct sim {
	struct virtio_device *dev;
	unsigned int qi;		/* the device's queue (1 + index) */
	int irq_fd;
	uint64_t base;
	uint8_t *hva;
	struct vdesc *desc;
	volatile uint16_t *avail, *used;
	uint16_t avail_idx, kicked_idx, last_used;
	enum op op;
	unsigned int depth;
	uint64_t rng, unique, fh, node, size, names;
	uint64_t t_post[MAX_DEPTH];
	uint32_t *lat;
	size_t nlat, maxlat;
	uint64_t done, errors, cpu_ns;
	atomic_bool *stop;
	pthread_t thread;
};

struct bench {
	struct lkvm vm;
	struct iothread hiprio;
	struct virtio_device *dev;
	struct sim q[MAX_QUEUES];
	unsigned int nq;
	atomic_bool stop;
};

static void sig_queue(struct virtio_device *d, struct virtio_queue *q)
{
	struct bench *b = d->tr_priv;
	uint64_t one = 1;

	if (q->index && write(b->q[q->index - 1].irq_fd, &one, 8) < 0)
		return;
}

static void sig_config(struct virtio_device *d)
{
	(void)d;
}

static const struct virtio_transport_ops transport = {
	.name = "bench",
	.signal_queue = sig_queue,
	.signal_config = sig_config,
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

/* Request slot `slot`: its header and body, and where the reply goes. */
static void post(struct sim *s, unsigned int slot, enum op op)
{
	uint8_t *req = s->hva + REQ_AT + slot * 256;
	struct fuse_in_header *h = (void *)req;
	struct vdesc *d = &s->desc[4 * slot];
	uint64_t g = s->base, rep = g + REP_AT + slot * 256;
	uint64_t data = g + DATA_AT + (uint64_t)slot * 4096;
	unsigned int n = 0;
	char name[16];

	memset(req, 0, 128);
	h->unique = ++s->unique;
	h->len = sizeof(*h);
	switch (op) {
	case OP_READ:
	case OP_WRITE: {
		struct fuse_read_in *in = (void *)(h + 1);	/* same layout */

		h->opcode = op == OP_READ ? FUSE_READ : FUSE_WRITE;
		h->nodeid = s->node;
		in->fh = s->fh;
		in->offset = (xorshift(&s->rng) % (s->size / 4096)) * 4096;
		in->size = 4096;
		h->len += sizeof(*in) + (op == OP_WRITE ? 4096 : 0);
		break;
	}
	case OP_GETATTR:
		h->opcode = FUSE_GETATTR;
		h->nodeid = s->node;
		h->len += sizeof(struct fuse_getattr_in);
		break;
	case OP_LOOKUP:
	case OP_SLOW:
		h->opcode = FUSE_LOOKUP;
		h->nodeid = FUSE_ROOT_ID;
		if (op == OP_SLOW)
			snprintf(name, sizeof(name), "slow");
		else
			snprintf(name, sizeof(name), "n%u",
				 (unsigned int)(xorshift(&s->rng) % s->names));
		memcpy(h + 1, name, strlen(name) + 1);
		h->len += strlen(name) + 1;
		break;
	}
	d[n] = (struct vdesc){ g + REQ_AT + slot * 256,
			       op == OP_WRITE ? h->len - 4096 : h->len, 1, 0 };
	if (op == OP_WRITE) {
		d[n].next = 4 * slot + n + 1;
		n++;
		d[n] = (struct vdesc){ data, 4096, 1, 0 };
	}
	d[n].next = 4 * slot + n + 1;
	n++;
	d[n] = (struct vdesc){ rep, op == OP_READ ? 16 : 256, 2, 0 };
	if (op == OP_READ) {
		d[n].flags |= 1;
		d[n].next = 4 * slot + n + 1;
		n++;
		d[n] = (struct vdesc){ data, 4096, 2, 0 };
	}
	s->avail[2 + s->avail_idx % QSIZE] = 4 * slot;
	s->avail_idx++;
}

static void kick(struct sim *s)
{
	uint16_t event, old = s->kicked_idx, now = s->avail_idx;
	uint64_t one = 1;

	__atomic_store_n(&s->avail[1], now, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	event = load16(&s->used[2 + 4 * QSIZE]);
	s->kicked_idx = now;
	if ((uint16_t)(now - event - 1) < (uint16_t)(now - old) &&
	    write(s->dev->queues[s->qi].kick_fd, &one, 8) < 0)
		s->errors++;
}

static unsigned int reap(struct sim *s, unsigned int *out)
{
	unsigned int n = 0;
	uint16_t idx = load16(&s->used[1]);

	while (s->last_used != idx) {
		volatile uint32_t *e = (volatile uint32_t *)&s->used[2] +
				       2 * (s->last_used % QSIZE);

		out[n++] = e[0] / 4;
		s->last_used++;
	}
	return n;
}

/* One request, waited for (set-up: INIT, LOOKUP, OPEN). */
static struct fuse_out_header *call(struct sim *s, uint32_t opcode,
				    uint64_t node, const void *body,
				    size_t blen)
{
	uint8_t *req = s->hva + REQ_AT;
	struct fuse_in_header *h = (void *)req;
	unsigned int got[QSIZE];
	uint64_t v;

	memset(req, 0, 256);
	memset(s->hva + REP_AT, 0, 256);
	h->unique = ++s->unique;
	h->opcode = opcode;
	h->nodeid = node;
	h->len = sizeof(*h) + blen;
	memcpy(h + 1, body, blen);
	s->desc[0] = (struct vdesc){ s->base + REQ_AT, h->len, 1, 1 };
	s->desc[1] = (struct vdesc){ s->base + REP_AT, 256, 2, 0 };
	s->avail[2 + s->avail_idx % QSIZE] = 0;
	s->avail_idx++;
	kick(s);
	for (;;) {
		__atomic_store_n(&s->avail[2 + QSIZE], s->last_used, __ATOMIC_RELEASE);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (reap(s, got))
			return (void *)(s->hva + REP_AT);
		if (read(s->irq_fd, &v, 8) != 8)
			return NULL;
	}
}

static void *driver(void *arg)
{
	struct sim *s = arg;
	unsigned int free_slots[MAX_DEPTH], nfree = 0, got[QSIZE], i, n;
	struct timespec ts;
	uint64_t v, now, end;

	for (i = 0; i < s->depth; i++)
		free_slots[nfree++] = i;
	while (!atomic_load_explicit(s->stop, memory_order_relaxed)) {
		now = now_ns();
		while (nfree) {
			unsigned int slot = free_slots[--nfree];

			s->t_post[slot] = now;
			post(s, slot, s->op);
		}
		kick(s);
		n = reap(s, got);
		if (!n) {
			__atomic_store_n(&s->avail[2 + QSIZE], s->last_used,
					 __ATOMIC_RELEASE);
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			end = now_ns() + DRIVER_POLL_NS;
			while (!(n = reap(s, got)) && now_ns() < end)
				sched_yield();
			if (!n) {
				if (read(s->irq_fd, &v, 8) != 8)
					s->errors++;
				continue;
			}
		}
		now = now_ns();
		for (i = 0; i < n; i++) {
			struct fuse_out_header *oh =
				(void *)(s->hva + REP_AT + got[i] * 256);

			if (oh->error)
				s->errors++;
			if (s->nlat < s->maxlat)
				s->lat[s->nlat++] = now - s->t_post[got[i]];
			s->done++;
			free_slots[nfree++] = got[i];
		}
	}
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	s->cpu_ns = ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	return NULL;
}

static int setup(struct bench *b, const char *dir, unsigned int nq)
{
	struct mem_region r = { 0, (uint64_t)SPAN * MAX_QUEUES };
	uint64_t feat = 1ULL << F_VERSION_1 | 1ULL << F_EVENT_IDX;
	char opts[4200], err[256];
	struct virtio_device *d;
	unsigned int i;
	int ret;

	b->nq = nq;
	b->vm.cfg.cpus = nq;
	ret = guest_memory_init(&b->vm.mem, &r, 1, NULL);
	if (!ret)
		ret = iothread_init(&b->hiprio, "fs-hiprio");
	snprintf(opts, sizeof(opts), "%s,tag=bench,queues=%u", dir, nq);
	if (!ret)
		ret = virtio_fs_create(&b->vm, opts, &b->hiprio, 0, &d, err,
				       sizeof(err));
	if (ret) {
		fprintf(stderr, "fsbench: %s\n", err);
		return ret;
	}
	b->dev = d;
	d->tr = &transport;
	d->tr_priv = b;
	virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	virtio_set_features_word(d, 0, feat);
	virtio_set_features_word(d, 1, feat >> 32);
	virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			  VIRTIO_STATUS_FEATURES_OK);
	for (i = 0; i < nq; i++) {
		struct sim *s = &b->q[i];
		struct virtio_queue *q;

		s->dev = d;
		s->qi = 1 + i;
		s->base = (uint64_t)i * SPAN;
		s->irq_fd = eventfd(0, EFD_CLOEXEC);
		s->stop = &b->stop;
		s->rng = 0x9e3779b97f4a7c15ULL * (i + 1);
		s->hva = guest_ptr(&b->vm.mem, s->base, SPAN);
		s->desc = (struct vdesc *)s->hva;
		s->avail = (volatile uint16_t *)(s->hva + 4096);
		s->used = (volatile uint16_t *)(s->hva + 8192);
		d->queue_sel = s->qi;
		q = virtio_selected_queue(d);
		q->num = QSIZE;
		q->desc = s->base;
		q->driver = s->base + 4096;
		q->device = s->base + 8192;
		virtio_queue_set_ready(d, q, true);
		if (!q->ready) {
			fprintf(stderr, "fsbench: queue %u not ready\n", s->qi);
			return -EINVAL;
		}
	}
	virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			  VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	ret = iothread_start(&b->hiprio);
	if (!ret)
		ret = virtio_device_start(d);
	if (ret)
		fprintf(stderr, "fsbench: starting: %s\n", strerror(-ret));
	return ret;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t cpu_self_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ULL +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ULL;
}

static int run(const char *dir, enum op op, unsigned int depth,
	       unsigned int nq, double seconds, unsigned int slow,
	       unsigned int names)
{
	struct bench *b = calloc(1, sizeof(*b));
	struct fuse_init_in init = { .major = 7, .minor = 38,
				     .max_readahead = 131072 };
	struct fuse_open_in oin = { .flags = O_RDWR };
	struct fuse_out_header *oh;
	uint64_t t0, t1, c0, c1, done = 0, errors = 0, drv = 0, node, fh;
	uint32_t *all;
	size_t nall = 0;
	unsigned int i, first = slow ? 1 : 0;
	struct stat st;
	char path[4200];

	snprintf(path, sizeof(path), "%s/data", dir);
	if (!b || stat(path, &st)) {
		fprintf(stderr, "fsbench: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (setup(b, dir, nq)) {
		fprintf(stderr, "fsbench: the device's set-up failed\n");
		return 1;
	}
	oh = call(&b->q[0], FUSE_INIT, 0, &init, sizeof(init));
	if (oh && !oh->error)
		oh = call(&b->q[0], FUSE_LOOKUP, FUSE_ROOT_ID, "data", 5);
	if (oh && !oh->error) {
		node = ((struct fuse_entry_out *)(oh + 1))->nodeid;
		oh = call(&b->q[0], FUSE_OPEN, node, &oin, sizeof(oin));
	}
	if (!oh || oh->error) {
		fprintf(stderr, "fsbench: INIT, LOOKUP data, OPEN: %s\n",
			oh ? strerror(-oh->error) : "no reply");
		return 1;
	}
	fh = ((struct fuse_open_out *)(oh + 1))->fh;
	for (i = 0; i < nq; i++) {
		struct sim *s = &b->q[i];

		s->node = node;
		s->fh = fh;
		s->size = st.st_size;
		s->names = names;
		s->op = slow && i == 0 ? OP_SLOW : op;
		s->depth = slow && i == 0 ? slow : depth;
		s->maxlat = (size_t)(seconds * 2e6) + 1024;
		s->lat = malloc(s->maxlat * sizeof(uint32_t));
		if (!s->lat)
			return 1;
	}
	c0 = cpu_self_ns();
	t0 = now_ns();
	for (i = 0; i < nq; i++)
		pthread_create(&b->q[i].thread, NULL, driver, &b->q[i]);
	usleep(seconds * 1e6);
	atomic_store(&b->stop, true);
	for (i = 0; i < nq; i++) {
		uint64_t one = 1;

		if (write(b->q[i].irq_fd, &one, 8) < 0)
			errors++;
		pthread_join(b->q[i].thread, NULL);
	}
	t1 = now_ns();
	c1 = cpu_self_ns();
	all = malloc(nq * b->q[0].maxlat * sizeof(uint32_t));
	for (i = 0; i < nq; i++) {
		drv += b->q[i].cpu_ns;
		if (i < first)
			continue;
		done += b->q[i].done;
		errors += b->q[i].errors;
		memcpy(all + nall, b->q[i].lat, b->q[i].nlat * sizeof(uint32_t));
		nall += b->q[i].nlat;
	}
	qsort(all, nall, sizeof(uint32_t), cmp_u32);
	printf("{\"ops\": %.0f, \"p50_us\": %.2f, \"p99_us\": %.2f, "
	       "\"cpu_us_per_op\": %.3f, \"slow_done\": %llu, \"errors\": %llu}\n",
	       done / ((t1 - t0) / 1e9),
	       nall ? all[nall / 2] / 1e3 : 0.0,
	       nall ? all[nall * 99 / 100] / 1e3 : 0.0,
	       done ? (double)(c1 - c0 - drv) / 1e3 / (done + (slow ? b->q[0].done : 0)) : 0,
	       (unsigned long long)(slow ? b->q[0].done : 0),
	       (unsigned long long)errors);
	fflush(stdout);
	/* The device's threads and helpers go with the process. */
	_exit(errors ? 1 : 0);
}

struct direct_arg {
	int dirfd, fd;
	enum op op;
	atomic_bool *stop;
	uint64_t done, rng;
};

static void *direct_main(void *arg)
{
	struct direct_arg *a = arg;
	struct stat st;
	char name[16];

	while (!atomic_load_explicit(a->stop, memory_order_relaxed)) {
		if (a->op == OP_GETATTR) {
			fstatat(a->fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
		} else {
			int fd;

			snprintf(name, sizeof(name), "n%u",
				 (unsigned int)(xorshift(&a->rng) % 1000));
			/* What a LOOKUP does: open O_PATH, stat, close. */
			fd = openat(a->dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
			fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
			close(fd);
		}
		a->done++;
	}
	return NULL;
}

static int run_direct(const char *dir, enum op op, unsigned int nq,
		      double seconds)
{
	struct direct_arg a[MAX_QUEUES];
	pthread_t th[MAX_QUEUES];
	atomic_bool stop = false;
	uint64_t t0, t1, done = 0;
	char path[4200];
	unsigned int i;

	snprintf(path, sizeof(path), "%s/data", dir);
	for (i = 0; i < nq; i++) {
		a[i] = (struct direct_arg){ open(dir, O_PATH | O_CLOEXEC),
					    open(path, O_PATH | O_CLOEXEC), op,
					    &stop, 0, 77 * (i + 1) };
		if (a[i].dirfd < 0 || a[i].fd < 0)
			return 1;
	}
	t0 = now_ns();
	for (i = 0; i < nq; i++)
		pthread_create(&th[i], NULL, direct_main, &a[i]);
	usleep(seconds * 1e6);
	atomic_store(&stop, true);
	for (i = 0; i < nq; i++) {
		pthread_join(th[i], NULL);
		done += a[i].done;
	}
	t1 = now_ns();
	printf("{\"ops\": %.0f}\n", done / ((t1 - t0) / 1e9));
	return 0;
}

static enum op parse_op(const char *s)
{
	return !strcmp(s, "write") ? OP_WRITE : !strcmp(s, "getattr") ? OP_GETATTR :
	       !strcmp(s, "lookup") ? OP_LOOKUP : OP_READ;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "op", required_argument, NULL, 'o' },
		{ "depth", required_argument, NULL, 'q' },
		{ "queues", required_argument, NULL, 'n' },
		{ "seconds", required_argument, NULL, 's' },
		{ "slow", required_argument, NULL, 'w' },
		{ "direct", required_argument, NULL, 'D' },
		{ "names", required_argument, NULL, 'N' },
		{ 0 },
	};
	const char *dir = NULL, *direct = NULL;
	unsigned int depth = 1, nq = 1, slow = 0, names = 1000;
	enum op op = OP_READ;
	double seconds = 2;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'o': op = parse_op(optarg); break;
		case 'q': depth = atoi(optarg); break;
		case 'n': nq = atoi(optarg); break;
		case 's': seconds = atof(optarg); break;
		case 'w': slow = atoi(optarg); break;
		case 'D': direct = optarg; break;
		case 'N': names = atoi(optarg); break;
		default: return 2;
		}
	}
	if (!dir || !names || !depth || depth > MAX_DEPTH || !nq || nq > MAX_QUEUES ||
	    (slow && (nq < 2 || slow > MAX_DEPTH))) {
		fprintf(stderr, "usage: fsbench --dir DIR --op read|write|getattr|lookup --depth D --queues Q --seconds S [--slow N]\n");
		return 2;
	}
	if (direct)
		return run_direct(dir, parse_op(direct), nq, seconds);
	return run(dir, op, depth, nq, seconds, slow, names);
}
