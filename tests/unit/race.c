/*
 * race.c - hostile vCPUs racing on the virtio control path, without KVM.
 *
 * The VM's virtio devices (blk with a queue per racer up to the cores,
 * rng, console, balloon)
 * are made by the real device code on the real transports; 2 or 4
 * threads stand in for vCPUs and hammer the register windows through
 * the same bus dispatch KVM exits reach (io_bus_access, pci_cfg_write):
 *   racer 0 resets the device again and again;
 *   racer 1 runs the whole driver set-up: features, a ring, QueueReady,
 *           DRIVER_OK, a request on the ring and a notify;
 *   racer 2 re-selects queues, enables and disables them with bad sizes,
 *           writes features and the config space;
 *   racer 3 moves BAR0 away and back, rewrites MSI-X entries and
 *           toggles MSI-X enable (pci), or acks interrupts and notifies
 *           random queues (mmio).
 * The queue threads serve whatever gets through meanwhile.  After the
 * race every device must still work from a clean reset (a blk read
 * returns the disk's bytes, rng fills its buffer), the guest-triggered
 * warnings must have stayed few, and nothing may crash (this test also
 * runs under AddressSanitizer).
 *
 * Also here: a storm of 20,000 bad queue enables logs a bounded number
 * of lines, and QueueReady=1 on a live queue replays nothing.
 *
 * Usage: race [ITERATIONS]   (default 30000 per transport and racer count)
 */
#include <pthread.h>

#include "vdrv.h"

#define RACE_BAR_AWAY	0xcf000000U	/* where racer 3 moves BAR0 */

/* Racers start together and run this many iterations. */
static atomic_bool race_go;
static unsigned long race_iters;

struct racer {
	struct vdrv *r;
	unsigned int id;
	pthread_t thread;
	uint64_t seed;
};

static void racer_reset(struct vdrv *r, struct vdrv_dev *d, unsigned long i)
{
	dev_status(r, d, 0);
	if (i % 3 == 0)
		(void)dev_status_read(r, d);
	if (i % 5 == 0)
		dev_features(r, d, i & 1, 0);
}

static void racer_setup(struct vdrv *r, struct racer *me, struct vdrv_dev *d,
			unsigned int di, unsigned long i)
{
	unsigned int q = i % d->nq;
	struct ring g = ring_of(r, di, me->id, q);

	dev_status(r, d, 1 | 2);
	dev_features(r, d, 0, 1u << 28 | 1u << 29);
	dev_features(r, d, 1, 1);	/* VERSION_1 */
	dev_status(r, d, 1 | 2 | 8);
	dev_queue_sel(r, d, q);
	dev_queue_num(r, d, VDRV_QSIZE);
	ring_clear(&g);
	dev_queue_addrs(r, d, g.gpa + R_DESC, g.gpa + R_AVAIL, g.gpa + R_USED);
	dev_queue_ready(r, d, 1);
	dev_status(r, d, 1 | 2 | 8 | 4);
	ring_request(&g, d->id, q, 0);
	dev_notify(r, d, q);
}

static void racer_queues(struct vdrv *r, struct racer *me, struct vdrv_dev *d,
			 unsigned long i)
{
	uint32_t x = test_rand(&me->seed);

	dev_queue_sel(r, d, x % (d->nq + 2));
	switch (x >> 8 & 7) {
	case 0:
		dev_queue_num(r, d, 1024 + (x >> 12 & 0xffff));	/* too big */
		dev_queue_ready(r, d, 1);
		break;
	case 1:
		dev_queue_ready(r, d, 0);
		break;
	case 2:
		dev_queue_ready(r, d, 1);	/* again, maybe live */
		break;
	case 3:
		dev_features(r, d, x >> 16 & 3, x);
		break;
	case 4:
		dev_config(r, d, (x >> 12) % 64 & ~3u, true, x);
		break;
	case 5:
		dev_config(r, d, (x >> 12) % 64 & ~3u, false, 0);
		break;
	case 6:
		dev_queue_addrs(r, d, x & ~15u, x >> 4 & ~1u, 0xfffffffffff0ULL);
		break;
	default:
		if (r->pci)
			bus_w(r, d->bar0 + CC_MSIX_CONFIG, x >> 16 & 7, 2);
		else
			bus_w(r, d->mmio + MM_INT_ACK, x >> 16, 4);
		break;
	}
	(void)i;
}

/* Another device's index, for a BAR moved on top of it. */
static unsigned int di_other(struct vdrv *r, struct vdrv_dev *d)
{
	unsigned int i = (unsigned int)(d - r->dev);

	return (i + 1) % r->ndev;
}

static void racer_platform(struct vdrv *r, struct racer *me,
			   struct vdrv_dev *d, unsigned long i)
{
	uint32_t x = test_rand(&me->seed), to;

	if (!r->pci) {
		bus_w(r, d->mmio + MM_INT_ACK, 3, 4);
		dev_notify(r, d, x % (d->nq + 3));
		return;
	}
	switch (x >> 8 & 3) {
	case 0:		/* BAR0 away (maybe onto another device) and back */
		to = x & 1 ? RACE_BAR_AWAY : (uint32_t)r->dev[di_other(r, d)].bar0;
		cfg_w(r, d->devfn, 0x10, to, 4);
		cfg_w(r, d->devfn, 0x10, (uint32_t)d->bar0, 4);
		break;
	case 1:		/* an MSI-X entry: address, data, mask */
		bus_w(r, d->bar1 + 16 * (x % 4), 0xfee00000 | (x & 0xff000), 4);
		bus_w(r, d->bar1 + 16 * (x % 4) + 8, x >> 16 & 0xff, 4);
		bus_w(r, d->bar1 + 16 * (x % 4) + 12, x >> 24 & 1, 4);
		break;
	case 2:		/* MSI-X enable and function mask */
		if (d->msix_cap)
			cfg_w(r, d->devfn, d->msix_cap + 3, x >> 16 & 0xc0, 1);
		break;
	default:
		bus_w(r, d->bar0 + CC_Q_MSIX, x >> 16 & 3, 2);
		break;
	}
	(void)i;
}

static void *racer_main(void *arg)
{
	struct racer *me = arg;
	struct vdrv *r = me->r;
	unsigned long i;

	while (!atomic_load(&race_go))
		;
	for (i = 0; i < race_iters; i++) {
		unsigned int di = (i / 64) % r->ndev;
		struct vdrv_dev *d = &r->dev[di];

		switch (me->id) {
		case 0:
			racer_reset(r, d, i);
			break;
		case 1:
			racer_setup(r, me, d, di, i);
			break;
		case 2:
			racer_queues(r, me, d, i);
			break;
		default:
			racer_platform(r, me, d, i);
			break;
		}
	}
	return NULL;
}

static bool race_check_device(struct vdrv *r, unsigned int di)
{
	struct vdrv_dev *d = &r->dev[di];
	struct ring g = ring_of(r, di, 7, 0);
	uint32_t want, len = 0;
	unsigned int q;

	dev_status(r, d, 0);
	if (dev_status_read(r, d) != 0)
		return false;
	dev_status(r, d, 1 | 2);
	dev_features(r, d, 0, 0);
	dev_features(r, d, 1, 1);
	dev_status(r, d, 1 | 2 | 8);
	if (!(dev_status_read(r, d) & 8))
		return false;
	for (q = 0; q < d->nq; q++) {
		struct ring qg = ring_of(r, di, 7, q);

		ring_clear(&qg);
		dev_queue_sel(r, d, q);
		dev_queue_num(r, d, VDRV_QSIZE);
		dev_queue_addrs(r, d, qg.gpa + R_DESC, qg.gpa + R_AVAIL,
				qg.gpa + R_USED);
		dev_queue_ready(r, d, 1);
	}
	dev_status(r, d, 1 | 2 | 8 | 4);
	memset(g.hva + R_DATA, 0, 512);
	memset(g.hva + R_STATUS, 0xff, 1);
	want = ring_request(&g, d->id, 0, 0);
	dev_notify(r, d, 0);
	if (d->id == 3)
		return !(dev_status_read(r, d) & 0x40);	/* rx waits for input */
	if (!wait_used(&g, 1, &len) || len != want)
		return false;
	if (d->id == 2)
		return g.hva[R_STATUS] == 0 && g.hva[R_DATA] == 0xa0 &&
		       g.hva[R_DATA + 511] == 0xa0;
	return !(dev_status_read(r, d) & 0x40);
}

static void test_race(bool pci, unsigned int nracers, unsigned long iters)
{
	struct racer racers[4];
	struct vdrv *r = calloc(1, sizeof(*r));
	unsigned int i;
	int ret;

	r->devices[r->ndevices++] = "balloon";
	ret = vdrv_create(r, pci, nracers);
	CHECK_EQ(ret, 0);
	if (ret) {
		free(r);
		return;
	}
	race_iters = iters;
	atomic_store(&race_go, false);
	/* The moved BAR needs a partner: its own window otherwise. */
	for (i = 0; i < nracers; i++) {
		racers[i] = (struct racer){ r, i, 0, 0x9e3779b97f4a7c15ULL * (i + 1) };
		CHECK_EQ(pthread_create(&racers[i].thread, NULL, racer_main,
					&racers[i]), 0);
	}
	atomic_store(&race_go, true);
	for (i = 0; i < nracers; i++)
		pthread_join(racers[i].thread, NULL);
	/* Put every BAR back where the driver found it. */
	for (i = 0; pci && i < r->ndev; i++)
		cfg_w(r, r->dev[i].devfn, 0x10, (uint32_t)r->dev[i].bar0, 4);
	for (i = 0; i < r->ndev; i++) {
		bool ok = race_check_device(r, i);

		if (!ok)
			fprintf(stderr, "  %s, %u racers: device %u (id %u) does not work after the race\n",
				pci ? "pci" : "mmio", nracers, i, r->dev[i].id);
		CHECK(ok);
	}
	/* Thousands of bad enables and BAR clashes: a bounded log. */
	printf("race: %s, %u racers, %lu iterations, %u devices: %u log lines\n",
	       pci ? "pci" : "mmio", nracers, iters, r->ndev,
	       atomic_load(&r->log_lines));
	CHECK(atomic_load(&r->log_lines) < 100);
	vdrv_destroy(r);
	free(r);
}

/* 20,000 enables of a bad ring on one device: at most a few lines. */
static void test_storm(bool pci)
{
	struct vdrv *r = calloc(1, sizeof(*r));
	struct vdrv_dev *d;
	unsigned int i, before, during, after;

	CHECK_EQ(vdrv_create(r, pci, 1), 0);
	d = &r->dev[0];
	before = atomic_load(&r->log_lines);
	for (i = 0; i < 20000; i++) {
		dev_status(r, d, 0);
		dev_status(r, d, 1 | 2);
		dev_queue_sel(r, d, 0);
		dev_queue_addrs(r, d, 0x7ffffffff000ULL, 1, 3);	/* outside RAM */
		dev_queue_ready(r, d, 1);
	}
	during = atomic_load(&r->log_lines) - before;
	vdrv_destroy(r);
	after = atomic_load(&r->log_lines) - before - during;
	printf("race: storm of 20000 bad enables (%s): %u lines, then %u at teardown\n",
	       pci ? "pci" : "mmio", during, after);
	CHECK(during <= LOG_LIMIT_BURST);
	CHECK(after <= 1);
	free(r);
}

/*
 * QueueReady=1 written again on a live queue must not set the ring up
 * afresh: the 32 reads posted are served once each.
 */
static void test_live_reenable(bool pci)
{
	struct vdrv *r = calloc(1, sizeof(*r));
	struct vdrv_dev *d;
	struct virtio_device *vd;
	struct ring g;
	struct desc *dt;
	volatile uint16_t *avail;
	uint32_t len;
	unsigned int k;

	CHECK_EQ(vdrv_create(r, pci, 1), 0);
	for (d = r->dev; d->id != 2; d++)
		;
	g = ring_of(r, (unsigned int)(d - r->dev), 0, 0);
	ring_clear(&g);
	dt = (struct desc *)(g.hva + R_DESC);
	avail = (uint16_t *)(g.hva + R_AVAIL);
	dev_status(r, d, 0);
	dev_status(r, d, 1 | 2);
	dev_features(r, d, 1, 1);
	dev_status(r, d, 1 | 2 | 8);
	dev_queue_sel(r, d, 0);
	dev_queue_num(r, d, 128);
	dev_queue_addrs(r, d, g.gpa + R_DESC, g.gpa + R_AVAIL, g.gpa + R_USED);
	dev_queue_ready(r, d, 1);
	dev_status(r, d, 1 | 2 | 8 | 4);
	for (k = 0; k < 32; k++) {
		uint32_t hdr[4] = { 0, 0, k, 0 };

		memcpy(g.hva + R_HDR + 16 * k, hdr, 16);
		dt[3 * k] = (struct desc){ g.gpa + R_HDR + 16 * k, 16, 1, 3 * k + 1 };
		dt[3 * k + 1] = (struct desc){ g.gpa + 0x6000 + 512 * k, 512, 3, 3 * k + 2 };
		dt[3 * k + 2] = (struct desc){ g.gpa + R_STATUS + k, 1, 2, 0 };
		avail[2 + k] = 3 * k;
	}
	__atomic_store_n(&avail[1], 32, __ATOMIC_RELEASE);
	dev_notify(r, d, 0);
	for (k = 0; k < 20; k++)
		dev_queue_ready(r, d, 1);
	(void)wait_used(&g, 32, &len);
	usleep(50000);
	vd = container_of(vm_device_find(&r->vm, "blk0"), struct virtio_device,
			  vdev);
	CHECK(vd != NULL);
	if (vd) {
		CHECK_EQ(vd->queues[0].stats.chains, 32);
		CHECK_EQ(__atomic_load_n((uint16_t *)(g.hva + R_USED) + 1,
					 __ATOMIC_ACQUIRE), 32);
	}
	/* A size above the maximum is refused: the queue stays off. */
	dev_status(r, d, 0);
	dev_status(r, d, 1 | 2);
	dev_features(r, d, 1, 1);
	dev_status(r, d, 1 | 2 | 8);
	dev_queue_sel(r, d, 0);
	dev_queue_num(r, d, pci ? 0x8000 : 0x10080);
	dev_queue_ready(r, d, 1);
	CHECK(dev_status_read(r, d) & 0x40);
	vdrv_destroy(r);
	free(r);
}

int main(int argc, char **argv)
{
	unsigned long iters = argc > 1 ? strtoul(argv[1], NULL, 0) : 30000;

	setvbuf(stdout, NULL, _IOLBF, 0);
	test_live_reenable(false);
	test_live_reenable(true);
	test_storm(false);
	test_storm(true);
	test_race(false, 2, iters);
	test_race(false, 4, iters);
	test_race(true, 2, iters);
	test_race(true, 4, iters);
	return test_done();
}
