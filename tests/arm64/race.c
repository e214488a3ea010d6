/*
 * race - a hostile Linux guest program for the arm64 nested tests: real
 * vCPUs racing on lkvm's virtio control path.  Runs as root in L2 with
 * no virtio transport driver loaded, and reaches the devices' registers
 * itself: virtio-mmio windows through /dev/mem, virtio-pci BARs through
 * sysfs resource files and config space through sysfs config.  One
 * thread per vCPU (pinned), each with a job:
 *   0 resets the device again and again;
 *   1 runs the whole driver set-up (features, a ring, QueueReady,
 *     DRIVER_OK) and posts a request with a notify;
 *   2 re-selects queues, enables and disables them with sizes above the
 *     maximum, writes features and config space;
 *   3 moves BAR0 away and back and rewrites MSI-X entries (pci), or acks
 *     interrupts and notifies random queues (mmio).
 * Afterwards every device must still work from a clean reset (an rng
 * request filled, a blk read of sector 0 answered OK).  Rings live in
 * locked pages whose physical addresses come from /proc/self/pagemap.
 *
 * Usage: race mmio|pci THREADS ITERATIONS
 * Prints "L2 race ..." lines; exits 0 if every device works afterwards.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define DEV_MMIO_BASE	0x0c000000UL	/* lkvm's arm64 device window */
#define DEV_MMIO_SIZE	0x4000UL
#define MAX_DEVS	8
#define QSIZE		8
#define AREA		0x4000		/* ring area: desc, avail, used, data */

struct dev {
	uint32_t id;
	volatile uint8_t *regs;		/* mmio window, or pci BAR0 */
	volatile uint8_t *msix;		/* pci BAR1 */
	int cfg_fd;			/* pci config space */
	uint32_t bar0;			/* pci: where BAR0 sits */
	unsigned int nq;
};

struct area {
	uint8_t *va;
	uint64_t pa;
};

static bool pci;
static struct dev devs[MAX_DEVS];
static unsigned int ndevs, nthreads;
static unsigned long iters;
static struct area areas[MAX_DEVS][5];	/* [dev][thread 0-3, check] */
static volatile int go;

/* --- memory with known physical addresses --- */

static int area_alloc(struct area *a)
{
	uint64_t entry;
	int fd;

	a->va = mmap(NULL, AREA, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE | MAP_LOCKED,
		     -1, 0);
	if (a->va == MAP_FAILED)
		return -1;
	memset(a->va, 0, AREA);
	/* The area must be physically contiguous: check page by page. */
	fd = open("/proc/self/pagemap", O_RDONLY);
	for (unsigned int p = 0; p < AREA / 4096; p++) {
		if (pread(fd, &entry, 8, ((uintptr_t)a->va / 4096 + p) * 8) != 8 ||
		    !(entry >> 63)) {
			close(fd);
			return -1;
		}
		if (p == 0)
			a->pa = (entry & ((1ULL << 55) - 1)) * 4096;
		else if ((entry & ((1ULL << 55) - 1)) * 4096 != a->pa + p * 4096) {
			close(fd);
			return 1;	/* not contiguous: try another */
		}
	}
	close(fd);
	return 0;
}

static int area_get(struct area *a)
{
	int r, tries = 0;

	while ((r = area_alloc(a)) == 1 && tries++ < 200)
		;	/* leak the fragmented one: it keeps the next away */
	return r;
}

/* --- register access --- */

static void w32(volatile uint8_t *p, uint32_t v) { *(volatile uint32_t *)p = v; }
static uint32_t r32(volatile uint8_t *p) { return *(volatile uint32_t *)p; }
static void w16(volatile uint8_t *p, uint16_t v) { *(volatile uint16_t *)p = v; }
static void w8(volatile uint8_t *p, uint8_t v) { *(volatile uint8_t *)p = v; }
static uint8_t r8(volatile uint8_t *p) { return *(volatile uint8_t *)p; }

static void cfg_w32(struct dev *d, unsigned int off, uint32_t v)
{
	if (pwrite(d->cfg_fd, &v, 4, off) != 4) {
		/* the kernel refused: nothing raced */
	}
}

/* virtio-mmio (4.2.2) and virtio-pci common config (4.1.4.3) offsets */
static void status(struct dev *d, uint8_t s)
{
	if (pci)
		w8(d->regs + 0x14, s);
	else
		w32(d->regs + 0x70, s);
}

static uint8_t status_read(struct dev *d)
{
	return pci ? r8(d->regs + 0x14) : r32(d->regs + 0x70);
}

static void features(struct dev *d, unsigned int sel, uint32_t v)
{
	if (pci) {
		w32(d->regs + 0x08, sel);
		w32(d->regs + 0x0c, v);
	} else {
		w32(d->regs + 0x24, sel);
		w32(d->regs + 0x20, v);
	}
}

static void queue_sel(struct dev *d, unsigned int q)
{
	if (pci)
		w16(d->regs + 0x16, q);
	else
		w32(d->regs + 0x30, q);
}

static void queue_num(struct dev *d, uint32_t n)
{
	if (pci)
		w16(d->regs + 0x18, n);
	else
		w32(d->regs + 0x38, n);
}

static void queue_ready(struct dev *d, uint32_t on)
{
	if (pci)
		w16(d->regs + 0x1c, on);
	else
		w32(d->regs + 0x44, on);
}

static void queue_addrs(struct dev *d, uint64_t desc, uint64_t avail,
			uint64_t used)
{
	unsigned int o = pci ? 0x20 : 0x80, step = pci ? 8 : 0x10;

	w32(d->regs + o, desc);
	w32(d->regs + o + 4, desc >> 32);
	w32(d->regs + o + step, avail);
	w32(d->regs + o + step + 4, avail >> 32);
	w32(d->regs + o + 2 * step, used);
	w32(d->regs + o + 2 * step + 4, used >> 32);
}

static void notify(struct dev *d, unsigned int q)
{
	if (pci)
		w16(d->regs + 0x3000 + 4 * q, q);
	else
		w32(d->regs + 0x50, q);
}

/* A request for device id on the area's ring, published as avail idx. */
static uint32_t post(struct dev *d, struct area *a, uint16_t idx)
{
	uint64_t *desc = (uint64_t *)a->va;	/* 16-byte descriptors */
	volatile uint16_t *avail = (uint16_t *)(a->va + 0x1000);
	uint64_t data = a->pa + 0x3000;
	uint32_t want;

	if (d->id == 2) {
		uint32_t *hdr = (uint32_t *)(a->va + 0x3800);

		hdr[0] = 0;	/* VIRTIO_BLK_T_IN, sector 0 */
		hdr[1] = hdr[2] = hdr[3] = 0;
		desc[0] = a->pa + 0x3800;
		desc[1] = 16 | 1ULL << 32 | 1ULL << 48;		/* NEXT, next 1 */
		desc[2] = data;
		desc[3] = 512 | 3ULL << 32 | 2ULL << 48;	/* NEXT|WRITE, 2 */
		desc[4] = a->pa + 0x3c00;
		desc[5] = 1 | 2ULL << 32;			/* WRITE */
		want = 513;
	} else {
		desc[0] = data;
		desc[1] = 64 | 2ULL << 32;			/* WRITE */
		want = 64;
	}
	avail[2 + idx % QSIZE] = 0;
	__atomic_store_n(&avail[1], (uint16_t)(idx + 1), __ATOMIC_RELEASE);
	return want;
}

/* --- the racers --- */

static uint32_t rnd(uint64_t *s)
{
	*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
	return *s >> 33;
}

static void *racer(void *arg)
{
	unsigned int me = (unsigned int)(uintptr_t)arg, di;
	uint64_t seed = 0x9e3779b97f4a7c15ULL * (me + 1);
	cpu_set_t cpus;
	unsigned long i;

	CPU_ZERO(&cpus);
	CPU_SET(me, &cpus);
	sched_setaffinity(0, sizeof(cpus), &cpus);
	while (!go)
		;
	for (i = 0; i < iters; i++) {
		struct dev *d = &devs[(i / 64) % ndevs];
		uint32_t x = rnd(&seed);

		di = (unsigned int)(d - devs);
		switch (me % 4) {
		case 0:
			status(d, 0);
			break;
		case 1: {
			struct area *a = &areas[di][1];

			status(d, 1 | 2);
			features(d, 1, 1);		/* VERSION_1 */
			status(d, 1 | 2 | 8);
			queue_sel(d, 0);
			queue_num(d, QSIZE);
			memset(a->va, 0, 0x3000);
			queue_addrs(d, a->pa, a->pa + 0x1000, a->pa + 0x2000);
			queue_ready(d, 1);
			status(d, 1 | 2 | 8 | 4);
			post(d, a, 0);
			notify(d, 0);
			break;
		}
		case 2:
			queue_sel(d, x % (d->nq + 2));
			if (x & 0x100) {
				queue_num(d, 1024 + (x >> 16));	/* too big */
				queue_ready(d, 1);
			} else {
				queue_ready(d, (x >> 9) & 1);
				features(d, (x >> 10) & 1, x);
			}
			break;
		default:
			if (!pci) {
				w32(d->regs + 0x64, 3);		/* InterruptACK */
				notify(d, x % (d->nq + 3));
			} else if (x & 1) {
				cfg_w32(d, 0x10, 0x7f000000);	/* BAR0 away */
				cfg_w32(d, 0x10, d->bar0);	/* and back */
			} else if (d->msix) {
				w32(d->msix + 16 * (x % 2) + 12, (x >> 8) & 1);
				w32(d->msix + 16 * (x % 2) + 8, x >> 16 & 0xff);
			}
			break;
		}
	}
	return NULL;
}

/* --- finding the devices --- */

static void find_mmio(void)
{
	int fd = open("/dev/mem", O_RDWR | O_SYNC);
	volatile uint8_t *win;
	unsigned int k;

	if (fd < 0) {
		perror("L2 race: /dev/mem");
		return;
	}
	win = mmap(NULL, DEV_MMIO_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		   fd, DEV_MMIO_BASE);
	if (win == MAP_FAILED) {
		perror("L2 race: mmap /dev/mem");
		return;
	}
	for (k = 0; k < DEV_MMIO_SIZE / 0x200 && ndevs < MAX_DEVS; k++) {
		volatile uint8_t *r = win + k * 0x200;

		if (r32(r) != 0x74726976 || !r32(r + 8))
			continue;
		devs[ndevs].regs = r;
		devs[ndevs].id = r32(r + 8);
		ndevs++;
	}
}

static volatile uint8_t *map_resource(const char *dir, int n, size_t len)
{
	char path[300];
	void *p;
	int fd;

	snprintf(path, sizeof(path), "%s/resource%d", dir, n);
	fd = open(path, O_RDWR | O_SYNC);
	if (fd < 0)
		return NULL;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

static void find_pci(void)
{
	DIR *dir = opendir("/sys/bus/pci/devices");
	struct dirent *e;

	while (dir && (e = readdir(dir)) && ndevs < MAX_DEVS) {
		char base[300], path[320];
		uint16_t ids[2];
		int fd;

		if (e->d_name[0] == '.')
			continue;
		snprintf(base, sizeof(base), "/sys/bus/pci/devices/%s", e->d_name);
		snprintf(path, sizeof(path), "%s/config", base);
		fd = open(path, O_RDWR);
		if (fd < 0 || pread(fd, ids, 4, 0) != 4 || ids[0] != 0x1af4) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		devs[ndevs].id = ids[1] - 0x1040;
		devs[ndevs].cfg_fd = fd;
		if (pread(fd, &devs[ndevs].bar0, 4, 0x10) != 4)
			continue;
		devs[ndevs].regs = map_resource(base, 0, 0x4000);
		devs[ndevs].msix = map_resource(base, 1, 0x1000);
		if (devs[ndevs].regs)
			ndevs++;
	}
	if (dir)
		closedir(dir);
}

static unsigned int count_queues(struct dev *d)
{
	unsigned int q;

	if (pci)
		return *(volatile uint16_t *)(d->regs + 0x12);
	for (q = 0; q < 16; q++) {
		w32(d->regs + 0x30, q);
		if (!r32(d->regs + 0x34))
			break;
	}
	return q;
}

/* After the race: a clean driver must find the device working. */
static bool check(struct dev *d, struct area *a)
{
	volatile uint16_t *used = (uint16_t *)(a->va + 0x2000);
	uint32_t want, len = 0;
	unsigned int q, i;

	if (pci)	/* BAR0 where it was, decoding on */
		cfg_w32(d, 0x10, d->bar0);
	status(d, 0);
	if (status_read(d))
		return false;
	status(d, 1 | 2);
	features(d, 0, 0);
	features(d, 1, 1);
	status(d, 1 | 2 | 8);
	for (q = 0; q < d->nq; q++) {
		queue_sel(d, q);
		queue_ready(d, 0);
	}
	memset(a->va, 0, 0x3000);
	a->va[0x3c00] = 0xff;
	queue_sel(d, 0);
	queue_num(d, QSIZE);
	queue_addrs(d, a->pa, a->pa + 0x1000, a->pa + 0x2000);
	queue_ready(d, 1);
	status(d, 1 | 2 | 8 | 4);
	if (d->id != 2 && d->id != 4)
		return !(status_read(d) & 0x40);
	want = post(d, a, 0);
	notify(d, 0);
	for (i = 0; i < 5000 && __atomic_load_n(&used[1], __ATOMIC_ACQUIRE) != 1; i++)
		usleep(1000);
	memcpy(&len, (uint8_t *)used + 8, 4);
	if (used[1] != 1 || len != want)
		return false;
	return d->id != 2 || a->va[0x3c00] == 0;
}

int main(int argc, char **argv)
{
	pthread_t t[4];
	unsigned int i, k, ok = 0;
	struct timespec t0, t1;

	if (argc != 4)
		return 2;
	pci = !strcmp(argv[1], "pci");
	nthreads = atoi(argv[2]);
	iters = strtoul(argv[3], NULL, 0);
	if (nthreads < 1 || nthreads > 4)
		return 2;
	if (pci)
		find_pci();
	else
		find_mmio();
	for (i = 0; i < ndevs; i++) {
		devs[i].nq = count_queues(&devs[i]);
		for (k = 0; k < 5; k++)
			if (area_get(&areas[i][k])) {
				printf("L2 race: no contiguous memory for rings\n");
				return 1;
			}
	}
	printf("L2 race %s: %u devices (ids", argv[1], ndevs);
	for (i = 0; i < ndevs; i++)
		printf(" %u", devs[i].id);
	printf("), %u threads, %lu iterations\n", nthreads, iters);
	fflush(stdout);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < nthreads; i++)
		pthread_create(&t[i], NULL, racer, (void *)(uintptr_t)i);
	go = 1;
	for (i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	for (i = 0; i < ndevs; i++) {
		bool good = check(&devs[i], &areas[i][4]);

		ok += good;
		if (!good)
			printf("L2 race %s: device id %u does not work afterwards\n",
			       argv[1], devs[i].id);
	}
	printf("L2 race %s %u threads: %lu iterations in %.1f s; %u of %u devices work afterwards\n",
	       argv[1], nthreads, iters,
	       (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9, ok,
	       ndevs);
	return ndevs && ok == ndevs ? 0 : 1;
}
