/*
 * race.c - hostile vCPUs racing on the virtio control path, without KVM.
 *
 * The VM's virtio devices (blk with one queue per racer, rng, console)
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
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "lkvm/arch.h"
#include "lkvm/bus.h"
#include "lkvm/pci.h"
#include "lkvm/lib/util.h"
#include "lkvm/virtio/device.h"
#include "lkvm/device.h"
#include "lkvm/machine.h"
#include "lkvm/vm.h"
#include "test.h"

#define RACE_MEM	(64 * MiB)
#define RACE_PCI_MMIO	0xc0000000ULL	/* a window of the test's own */
#define RACE_PCI_SIZE	0x10000000ULL
#define RACE_PCI_IO	0xc000
#define RACE_PCI_IOSZ	0x4000
#define RACE_BAR_AWAY	0xcf000000U	/* where racer 3 moves BAR0 */
#define RACE_MAX_DEVS	8
#define RACE_QSIZE	8
#define RACE_AREA	0x10000ULL	/* guest memory per (device, racer) */
#define RACE_AREAS	0x100000ULL	/* start of the ring areas */
#define RACE_DISK_SECTORS 64

/* virtio-mmio registers (virtio 1.2, 4.2.2). */
#define MM_MAGIC	0x000
#define MM_DEVICE_ID	0x008
#define MM_DRV_FEAT	0x020
#define MM_DRV_FEAT_SEL	0x024
#define MM_QUEUE_SEL	0x030
#define MM_QUEUE_NUM	0x038
#define MM_QUEUE_READY	0x044
#define MM_NOTIFY	0x050
#define MM_INT_ACK	0x064
#define MM_STATUS	0x070
#define MM_DESC		0x080
#define MM_DRIVER	0x090
#define MM_DEVICE	0x0a0
#define MM_CONFIG	0x100

/* virtio-pci common configuration (virtio 1.2, 4.1.4.3). */
#define CC_GFSELECT	0x08
#define CC_GF		0x0c
#define CC_MSIX_CONFIG	0x10
#define CC_STATUS	0x14
#define CC_Q_SELECT	0x16
#define CC_Q_SIZE	0x18
#define CC_Q_MSIX	0x1a
#define CC_Q_ENABLE	0x1c
#define CC_Q_DESC	0x20
#define CC_Q_DRIVER	0x28
#define CC_Q_DEVICE	0x30
#define VPCI_DEVICE	0x2000
#define VPCI_NOTIFY	0x3000

struct race_dev {
	uint32_t id;			/* virtio device ID */
	unsigned int nq;
	uint64_t mmio;			/* virtio-mmio: register window */
	unsigned int devfn;		/* virtio-pci: config address */
	uint64_t bar0, bar1;
	unsigned int msix_cap;
};

struct race {
	struct lkvm vm;
	bool pci;
	unsigned int nracers;
	unsigned long iters;
	struct race_dev dev[RACE_MAX_DEVS];
	unsigned int ndev;
	atomic_uint log_lines;
	atomic_bool go;
	char disk[64];
};

struct racer {
	struct race *r;
	unsigned int id;
	pthread_t thread;
	uint64_t seed;
};

static void race_log(void *opaque, enum lkvm_log_level level, const char *msg)
{
	struct race *r = opaque;

	(void)level;
	if (atomic_fetch_add(&r->log_lines, 1) < 10)
		fprintf(stderr, "  lkvm: %s\n", msg);
}

/* --- register access, as a vCPU's exit would make it --- */

static void bus_w(struct race *r, uint64_t addr, uint64_t v, unsigned int len)
{
	io_bus_access(&r->vm.mmio, addr, &v, len, true);
}

static uint64_t bus_r(struct race *r, uint64_t addr, unsigned int len)
{
	uint64_t v = 0;

	io_bus_access(&r->vm.mmio, addr, &v, len, false);
	return v;
}

static void cfg_w(struct race *r, unsigned int devfn, unsigned int off,
		  uint32_t v, unsigned int len)
{
	pci_cfg_write(&r->vm.pci, devfn, off, &v, len);
}

static uint32_t cfg_r(struct race *r, unsigned int devfn, unsigned int off,
		      unsigned int len)
{
	uint32_t v = 0;

	pci_cfg_read(&r->vm.pci, devfn, off, &v, len);
	return v;
}

static void dev_status(struct race *r, struct race_dev *d, uint8_t s)
{
	if (r->pci)
		bus_w(r, d->bar0 + CC_STATUS, s, 1);
	else
		bus_w(r, d->mmio + MM_STATUS, s, 4);
}

static uint8_t dev_status_read(struct race *r, struct race_dev *d)
{
	return r->pci ? bus_r(r, d->bar0 + CC_STATUS, 1) :
			bus_r(r, d->mmio + MM_STATUS, 4);
}

static void dev_features(struct race *r, struct race_dev *d, unsigned int sel,
			 uint32_t v)
{
	if (r->pci) {
		bus_w(r, d->bar0 + CC_GFSELECT, sel, 4);
		bus_w(r, d->bar0 + CC_GF, v, 4);
	} else {
		bus_w(r, d->mmio + MM_DRV_FEAT_SEL, sel, 4);
		bus_w(r, d->mmio + MM_DRV_FEAT, v, 4);
	}
}

static void dev_queue_sel(struct race *r, struct race_dev *d, unsigned int q)
{
	if (r->pci)
		bus_w(r, d->bar0 + CC_Q_SELECT, q, 2);
	else
		bus_w(r, d->mmio + MM_QUEUE_SEL, q, 4);
}

static void dev_queue_num(struct race *r, struct race_dev *d, uint32_t n)
{
	if (r->pci)
		bus_w(r, d->bar0 + CC_Q_SIZE, n, 2);
	else
		bus_w(r, d->mmio + MM_QUEUE_NUM, n, 4);
}

static void dev_queue_ready(struct race *r, struct race_dev *d, uint32_t on)
{
	if (r->pci)
		bus_w(r, d->bar0 + CC_Q_ENABLE, on, 2);
	else
		bus_w(r, d->mmio + MM_QUEUE_READY, on, 4);
}

static void dev_queue_addrs(struct race *r, struct race_dev *d, uint64_t desc,
			    uint64_t avail, uint64_t used)
{
	if (r->pci) {
		bus_w(r, d->bar0 + CC_Q_DESC, desc, 8);
		bus_w(r, d->bar0 + CC_Q_DRIVER, avail, 8);
		bus_w(r, d->bar0 + CC_Q_DEVICE, used, 8);
		return;
	}
	bus_w(r, d->mmio + MM_DESC, (uint32_t)desc, 4);
	bus_w(r, d->mmio + MM_DESC + 4, desc >> 32, 4);
	bus_w(r, d->mmio + MM_DRIVER, (uint32_t)avail, 4);
	bus_w(r, d->mmio + MM_DRIVER + 4, avail >> 32, 4);
	bus_w(r, d->mmio + MM_DEVICE, (uint32_t)used, 4);
	bus_w(r, d->mmio + MM_DEVICE + 4, used >> 32, 4);
}

static void dev_notify(struct race *r, struct race_dev *d, unsigned int q)
{
	if (r->pci)
		bus_w(r, d->bar0 + VPCI_NOTIFY + 4 * q, q, 2);
	else
		bus_w(r, d->mmio + MM_NOTIFY, q, 4);
}

static void dev_config(struct race *r, struct race_dev *d, unsigned int off,
		       bool write, uint32_t v)
{
	uint64_t a = r->pci ? d->bar0 + VPCI_DEVICE + off : d->mmio + MM_CONFIG + off;

	if (write)
		bus_w(r, a, v, 4);
	else
		(void)bus_r(r, a, 4);
}

/* --- rings in guest memory --- */

struct ring {
	uint64_t gpa;
	uint8_t *hva;
};

/* Each (device, racer, queue) has its own area: desc, avail, used, data. */
static struct ring ring_of(struct race *r, unsigned int dev, unsigned int who,
			   unsigned int q)
{
	struct ring g;

	g.gpa = RACE_AREAS + ((uint64_t)(dev * 8 + who) * 4 + q % 4) * RACE_AREA;
	g.hva = guest_ptr(&r->vm.mem, g.gpa, RACE_AREA);
	return g;
}

#define R_DESC		0x0000
#define R_AVAIL		0x1000
#define R_USED		0x2000
#define R_HDR		0x3000
#define R_DATA		0x4000
#define R_STATUS	0x5000

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

/*
 * A request shaped for the device: a blk read of sector 0, a buffer for
 * rng or console receive, a frame for console transmit.  Returns the
 * bytes the device should write.
 */
static uint32_t ring_request(struct ring *g, uint32_t id, unsigned int q,
			     uint16_t avail_idx)
{
	struct desc *dt = (struct desc *)(g->hva + R_DESC);
	volatile uint16_t *avail = (uint16_t *)(g->hva + R_AVAIL);
	uint32_t hdr[4] = { 0 /* VIRTIO_BLK_T_IN */, 0, 0, 0 };
	uint32_t want;

	if (id == 2) {
		memcpy(g->hva + R_HDR, hdr, sizeof(hdr));
		dt[0] = (struct desc){ g->gpa + R_HDR, 16, 1, 1 };
		dt[1] = (struct desc){ g->gpa + R_DATA, 512, 1 | 2, 2 };
		dt[2] = (struct desc){ g->gpa + R_STATUS, 1, 2, 0 };
		want = 513;
	} else if (id == 3 && q == 1) {
		dt[0] = (struct desc){ g->gpa + R_HDR, 4, 0, 0 };
		want = 0;
	} else {
		dt[0] = (struct desc){ g->gpa + R_DATA, 64, 2, 0 };
		want = 64;
	}
	avail[2 + avail_idx % RACE_QSIZE] = 0;
	__atomic_store_n(&avail[1], (uint16_t)(avail_idx + 1), __ATOMIC_RELEASE);
	return want;
}

static void ring_clear(struct ring *g)
{
	memset(g->hva, 0, R_HDR);
}

/* --- the racers --- */

static uint64_t pci_bar_base(struct race *r, struct race_dev *d, unsigned int n)
{
	return cfg_r(r, d->devfn, 0x10 + 4 * n, 4) & ~0xfULL;
}

static void racer_reset(struct race *r, struct race_dev *d, unsigned long i)
{
	dev_status(r, d, 0);
	if (i % 3 == 0)
		(void)dev_status_read(r, d);
	if (i % 5 == 0)
		dev_features(r, d, i & 1, 0);
}

static void racer_setup(struct race *r, struct racer *me, struct race_dev *d,
			unsigned int di, unsigned long i)
{
	unsigned int q = i % d->nq;
	struct ring g = ring_of(r, di, me->id, q);

	dev_status(r, d, 1 | 2);
	dev_features(r, d, 0, 1u << 28 | 1u << 29);
	dev_features(r, d, 1, 1);	/* VERSION_1 */
	dev_status(r, d, 1 | 2 | 8);
	dev_queue_sel(r, d, q);
	dev_queue_num(r, d, RACE_QSIZE);
	ring_clear(&g);
	dev_queue_addrs(r, d, g.gpa + R_DESC, g.gpa + R_AVAIL, g.gpa + R_USED);
	dev_queue_ready(r, d, 1);
	dev_status(r, d, 1 | 2 | 8 | 4);
	ring_request(&g, d->id, q, 0);
	dev_notify(r, d, q);
}

static void racer_queues(struct race *r, struct racer *me, struct race_dev *d,
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
static unsigned int di_other(struct race *r, struct race_dev *d)
{
	unsigned int i = (unsigned int)(d - r->dev);

	return (i + 1) % r->ndev;
}

static void racer_platform(struct race *r, struct racer *me,
			   struct race_dev *d, unsigned long i)
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
	struct race *r = me->r;
	unsigned long i;

	while (!atomic_load(&r->go))
		;
	for (i = 0; i < r->iters; i++) {
		unsigned int di = (i / 64) % r->ndev;
		struct race_dev *d = &r->dev[di];

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

/* --- set-up --- */

static unsigned int dev_count_queues(struct race *r, struct race_dev *d)
{
	unsigned int q;

	if (r->pci)
		return bus_r(r, d->bar0 + 0x12, 2);	/* num_queues */
	for (q = 0; q < 64; q++) {
		bus_w(r, d->mmio + MM_QUEUE_SEL, q, 4);
		if (!bus_r(r, d->mmio + 0x034, 4))	/* QueueNumMax */
			break;
	}
	return q;
}

static int race_find_devices(struct race *r)
{
	unsigned int slot;

	r->ndev = 0;
	if (!r->pci) {
		for (slot = 0; slot < arch_ops.dev_mmio_size / 0x200 &&
			       r->ndev < RACE_MAX_DEVS; slot++) {
			uint64_t base = arch_ops.dev_mmio_base + slot * 0x200;
			struct race_dev *d = &r->dev[r->ndev];

			if (bus_r(r, base + MM_MAGIC, 4) != 0x74726976)
				continue;
			d->mmio = base;
			d->id = bus_r(r, base + MM_DEVICE_ID, 4);
			r->ndev++;
		}
	} else {
		for (slot = 0; slot < PCI_MAX_SLOTS && r->ndev < RACE_MAX_DEVS;
		     slot++) {
			struct race_dev *d = &r->dev[r->ndev];
			unsigned int cap;

			if ((cfg_r(r, slot << 3, 0, 4) & 0xffff) != 0x1af4)
				continue;
			d->devfn = slot << 3;
			d->id = (cfg_r(r, d->devfn, 0, 4) >> 16) - 0x1040;
			d->bar0 = pci_bar_base(r, d, 0);
			d->bar1 = pci_bar_base(r, d, 1);
			for (cap = cfg_r(r, d->devfn, 0x34, 1); cap;
			     cap = cfg_r(r, d->devfn, cap + 1, 1))
				if (cfg_r(r, d->devfn, cap, 1) == 0x11)
					d->msix_cap = cap;
			r->ndev++;
		}
	}
	for (slot = 0; slot < r->ndev; slot++)
		r->dev[slot].nq = dev_count_queues(r, &r->dev[slot]);
	return r->ndev ? 0 : -ENODEV;
}

static int race_create(struct race *r, bool pci, unsigned int nracers)
{
	static const char *disks[1];
	struct mem_region reg = { 0, RACE_MEM };
	char err[256];
	uint8_t sector[512];
	int fd, ret;
	unsigned int i;

	memset(r, 0, sizeof(*r));
	r->pci = pci;
	r->nracers = nracers;
	snprintf(r->disk, sizeof(r->disk), "/tmp/lkvm-race-%d.img", getpid());
	fd = open(r->disk, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -errno;
	for (i = 0; i < RACE_DISK_SECTORS; i++) {
		memset(sector, 0xa0 + (i & 15), sizeof(sector));
		if (write(fd, sector, sizeof(sector)) != sizeof(sector)) {
			close(fd);
			return -EIO;
		}
	}
	close(fd);
	disks[0] = r->disk;

	lkvm_config_init(&r->vm.cfg);
	r->vm.cfg.cpus = nracers;
	r->vm.cfg.disks = disks;
	r->vm.cfg.ndisks = 1;
	r->vm.cfg.rng = 1;
	r->vm.cfg.console_virtio = 1;
	r->vm.cfg.virtio_transport = pci ? LKVM_VIRTIO_PCI : LKVM_VIRTIO_MMIO;
	r->vm.cfg.log = race_log;
	r->vm.cfg.log_opaque = r;
	r->vm.kvm_fd = r->vm.vm_fd = -1;
	r->vm.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	io_bus_init(&r->vm.pio);
	io_bus_init(&r->vm.mmio);
	ret = console_init(&r->vm.console, &r->vm, -1, -1, -1, 0);
	if (!ret)
		ret = guest_memory_init(&r->vm.mem, &reg, 1);
	if (ret)
		return ret;
	pci_bus_init(&r->vm.pci, &r->vm, RACE_PCI_MMIO, RACE_PCI_SIZE,
		     RACE_PCI_IO, RACE_PCI_IOSZ);
	ret = machine_create_devices(&r->vm, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "race: %s\n", err);
		return ret;
	}
	ret = vm_devices_start(&r->vm);
	return ret ? ret : race_find_devices(r);
}

static void race_destroy(struct race *r)
{
	vm_devices_free(&r->vm);
	pci_bus_free(&r->vm.pci);
	io_bus_free(&r->vm.pio);
	io_bus_free(&r->vm.mmio);
	guest_memory_free(&r->vm.mem);
	console_free(&r->vm.console);
	close(r->vm.stop_fd);
	unlink(r->disk);
}

/* --- after the race: a clean driver must find every device working --- */

static bool wait_used(struct ring *g, uint16_t idx, uint32_t *len)
{
	volatile uint16_t *used = (uint16_t *)(g->hva + R_USED);
	struct timespec t = { 0, 1000000 };
	int tries;

	for (tries = 0; tries < 5000; tries++) {
		if (__atomic_load_n(&used[1], __ATOMIC_ACQUIRE) == idx) {
			memcpy(len, (uint8_t *)used + 8 +
			       8 * ((idx - 1) % RACE_QSIZE), 4);
			return true;
		}
		nanosleep(&t, NULL);
	}
	return false;
}

static bool race_check_device(struct race *r, unsigned int di)
{
	struct race_dev *d = &r->dev[di];
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
		dev_queue_num(r, d, RACE_QSIZE);
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
	struct race *r = calloc(1, sizeof(*r));
	unsigned int i;
	int ret;

	ret = race_create(r, pci, nracers);
	CHECK_EQ(ret, 0);
	if (ret) {
		free(r);
		return;
	}
	r->iters = iters;
	/* The moved BAR needs a partner: its own window otherwise. */
	for (i = 0; i < nracers; i++) {
		racers[i] = (struct racer){ r, i, 0, 0x9e3779b97f4a7c15ULL * (i + 1) };
		CHECK_EQ(pthread_create(&racers[i].thread, NULL, racer_main,
					&racers[i]), 0);
	}
	atomic_store(&r->go, true);
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
	race_destroy(r);
	free(r);
}

/* 20,000 enables of a bad ring on one device: at most a few lines. */
static void test_storm(bool pci)
{
	struct race *r = calloc(1, sizeof(*r));
	struct race_dev *d;
	unsigned int i, before, during, after;

	CHECK_EQ(race_create(r, pci, 1), 0);
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
	race_destroy(r);
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
	struct race *r = calloc(1, sizeof(*r));
	struct race_dev *d;
	struct virtio_device *vd;
	struct ring g;
	struct desc *dt;
	volatile uint16_t *avail;
	uint32_t len;
	unsigned int k;

	CHECK_EQ(race_create(r, pci, 1), 0);
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
	race_destroy(r);
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
