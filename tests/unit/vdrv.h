/*
 * vdrv.h - a simulated guest driver for device tests without KVM: a VM
 * object with guest memory and buses, its devices made by the real
 * machine code (machine_create_devices) and started, and register
 * accesses made through the same bus dispatch a vCPU's exit reaches
 * (io_bus_access, pci_cfg_write), on either transport.  Rings live in
 * guest memory areas the test picks (ring_of).
 */
#ifndef LKVM_TESTS_VDRV_H
#define LKVM_TESTS_VDRV_H

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "lkvm/arch.h"
#include "lkvm/bus.h"
#include "lkvm/device.h"
#include "lkvm/lib/util.h"
#include "lkvm/machine.h"
#include "lkvm/pci.h"
#include "lkvm/seccomp.h"
#include "lkvm/virtio/device.h"
#include "lkvm/vm.h"
#include "test.h"

#define VDRV_MEM	(64 * MiB)
#define VDRV_PCI_MMIO	0xc0000000ULL	/* a window of the test's own */
#define VDRV_PCI_SIZE	0x10000000ULL
#define VDRV_PCI_IO	0xc000
#define VDRV_PCI_IOSZ	0x4000
#define VDRV_MAX_DEVS	8
#define VDRV_QSIZE	8
#define VDRV_AREA	0x10000ULL	/* guest memory per (device, racer) */
#define VDRV_AREAS	0x100000ULL	/* start of the ring areas */
#define VDRV_DISK_SECTORS 64

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

struct vdrv_dev {
	uint32_t id;			/* virtio device ID */
	unsigned int nq;
	uint64_t mmio;			/* virtio-mmio: register window */
	unsigned int devfn;		/* virtio-pci: config address */
	uint64_t bar0, bar1;
	unsigned int msix_cap;
};

struct vdrv {
	struct lkvm vm;
	bool pci;
	unsigned int ncpus;
	struct vdrv_dev dev[VDRV_MAX_DEVS];
	unsigned int ndev;
	atomic_uint log_lines;
	char disk[64];
	const char *devices[4];		/* more devices for the config */
	unsigned int ndevices;
};

static inline void vdrv_log(void *opaque, enum lkvm_log_level level, const char *msg)
{
	struct vdrv *r = opaque;

	(void)level;
	if (atomic_fetch_add(&r->log_lines, 1) < 10)
		fprintf(stderr, "  lkvm: %s\n", msg);
}

/* --- register access, as a vCPU's exit would make it --- */

static inline void bus_w(struct vdrv *r, uint64_t addr, uint64_t v, unsigned int len)
{
	io_bus_access(&r->vm.mmio, addr, &v, len, true);
}

static inline uint64_t bus_r(struct vdrv *r, uint64_t addr, unsigned int len)
{
	uint64_t v = 0;

	io_bus_access(&r->vm.mmio, addr, &v, len, false);
	return v;
}

static inline void cfg_w(struct vdrv *r, unsigned int devfn, unsigned int off,
		  uint32_t v, unsigned int len)
{
	pci_cfg_write(&r->vm.pci, devfn, off, &v, len);
}

static inline uint32_t cfg_r(struct vdrv *r, unsigned int devfn, unsigned int off,
		      unsigned int len)
{
	uint32_t v = 0;

	pci_cfg_read(&r->vm.pci, devfn, off, &v, len);
	return v;
}

static inline void dev_status(struct vdrv *r, struct vdrv_dev *d, uint8_t s)
{
	if (r->pci)
		bus_w(r, d->bar0 + CC_STATUS, s, 1);
	else
		bus_w(r, d->mmio + MM_STATUS, s, 4);
}

static inline uint8_t dev_status_read(struct vdrv *r, struct vdrv_dev *d)
{
	return r->pci ? bus_r(r, d->bar0 + CC_STATUS, 1) :
			bus_r(r, d->mmio + MM_STATUS, 4);
}

static inline void dev_features(struct vdrv *r, struct vdrv_dev *d, unsigned int sel,
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

static inline void dev_queue_sel(struct vdrv *r, struct vdrv_dev *d, unsigned int q)
{
	if (r->pci)
		bus_w(r, d->bar0 + CC_Q_SELECT, q, 2);
	else
		bus_w(r, d->mmio + MM_QUEUE_SEL, q, 4);
}

static inline void dev_queue_num(struct vdrv *r, struct vdrv_dev *d, uint32_t n)
{
	if (r->pci)
		bus_w(r, d->bar0 + CC_Q_SIZE, n, 2);
	else
		bus_w(r, d->mmio + MM_QUEUE_NUM, n, 4);
}

static inline void dev_queue_ready(struct vdrv *r, struct vdrv_dev *d, uint32_t on)
{
	if (r->pci)
		bus_w(r, d->bar0 + CC_Q_ENABLE, on, 2);
	else
		bus_w(r, d->mmio + MM_QUEUE_READY, on, 4);
}

static inline void dev_queue_addrs(struct vdrv *r, struct vdrv_dev *d, uint64_t desc,
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

static inline void dev_notify(struct vdrv *r, struct vdrv_dev *d, unsigned int q)
{
	if (r->pci)
		bus_w(r, d->bar0 + VPCI_NOTIFY + 4 * q, q, 2);
	else
		bus_w(r, d->mmio + MM_NOTIFY, q, 4);
}

static inline void dev_config(struct vdrv *r, struct vdrv_dev *d, unsigned int off,
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
static inline struct ring ring_of(struct vdrv *r, unsigned int dev, unsigned int who,
			   unsigned int q)
{
	struct ring g;

	g.gpa = VDRV_AREAS + ((uint64_t)(dev * 8 + who) * 4 + q % 4) * VDRV_AREA;
	g.hva = guest_ptr(&r->vm.mem, g.gpa, VDRV_AREA);
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
 * A request shaped for device id on queue q, published at avail_idx: a
 * blk read of sector 0, a buffer for rng or console receive, a frame for
 * console transmit, PFNs for the balloon.  Returns the bytes the device
 * should write.
 */
static inline uint32_t ring_request(struct ring *g, uint32_t id,
				    unsigned int q, uint16_t avail_idx)
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
	} else if (id == 5) {
		/* Balloon: four PFNs of this area's data page onwards. */
		uint32_t pfn[4];
		unsigned int k;

		for (k = 0; k < 4; k++)
			pfn[k] = ((g->gpa + R_DATA) >> 12) + k;
		memcpy(g->hva + R_HDR, pfn, sizeof(pfn));
		dt[0] = (struct desc){ g->gpa + R_HDR, sizeof(pfn), 0, 0 };
		want = 0;
	} else {
		dt[0] = (struct desc){ g->gpa + R_DATA, 64, 2, 0 };
		want = 64;
	}
	avail[2 + avail_idx % VDRV_QSIZE] = 0;
	__atomic_store_n(&avail[1], (uint16_t)(avail_idx + 1), __ATOMIC_RELEASE);
	return want;
}

static inline void ring_clear(struct ring *g)
{
	memset(g->hva, 0, R_HDR);
}

static inline uint64_t pci_bar_base(struct vdrv *r, struct vdrv_dev *d, unsigned int n)
{
	return cfg_r(r, d->devfn, 0x10 + 4 * n, 4) & ~0xfULL;
}

/* --- a VM to drive --- */

static inline unsigned int dev_count_queues(struct vdrv *r, struct vdrv_dev *d)
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

static inline int vdrv_find_devices(struct vdrv *r)
{
	unsigned int slot;

	r->ndev = 0;
	if (!r->pci) {
		for (slot = 0; slot < arch_ops.dev_mmio_size / 0x200 &&
			       r->ndev < VDRV_MAX_DEVS; slot++) {
			uint64_t base = arch_ops.dev_mmio_base + slot * 0x200;
			struct vdrv_dev *d = &r->dev[r->ndev];

			if (bus_r(r, base + MM_MAGIC, 4) != 0x74726976)
				continue;
			d->mmio = base;
			d->id = bus_r(r, base + MM_DEVICE_ID, 4);
			r->ndev++;
		}
	} else {
		for (slot = 0; slot < PCI_MAX_SLOTS && r->ndev < VDRV_MAX_DEVS;
		     slot++) {
			struct vdrv_dev *d = &r->dev[r->ndev];
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

/*
 * A VM without KVM: guest memory, the buses, and the devices a config
 * with one disk, rng, virtio-console and r->devices asks for, on the
 * transport chosen, started.  Set r->devices before; r is cleared.
 */
static inline int vdrv_create(struct vdrv *r, bool pci, unsigned int ncpus)
{
	static const char *disks[1];
	struct mem_region reg = { 0, VDRV_MEM };
	char err[256];
	uint8_t sector[512];
	int fd, ret;
	unsigned int i;

	const char *devices[4];
	unsigned int ndevices = r->ndevices;

	memcpy(devices, r->devices, sizeof(devices));
	memset(r, 0, sizeof(*r));
	memcpy(r->devices, devices, sizeof(devices));
	r->ndevices = ndevices;
	r->pci = pci;
	r->ncpus = ncpus;
	snprintf(r->disk, sizeof(r->disk), "/tmp/lkvm-vdrv-%d.img", getpid());
	fd = open(r->disk, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -errno;
	for (i = 0; i < VDRV_DISK_SECTORS; i++) {
		memset(sector, 0xa0 + (i & 15), sizeof(sector));
		if (write(fd, sector, sizeof(sector)) != sizeof(sector)) {
			close(fd);
			return -EIO;
		}
	}
	close(fd);
	disks[0] = r->disk;

	lkvm_config_init(&r->vm.cfg);
	r->vm.cfg.cpus = ncpus;
	r->vm.cfg.devices = r->devices;
	r->vm.cfg.ndevices = r->ndevices;
	r->vm.cfg.disks = disks;
	r->vm.cfg.ndisks = 1;
	r->vm.cfg.rng = 1;
	r->vm.cfg.console_virtio = 1;
	r->vm.cfg.virtio_transport = pci ? LKVM_VIRTIO_PCI : LKVM_VIRTIO_MMIO;
	r->vm.cfg.log = vdrv_log;
	/* VDRV_SECCOMP=1: the device threads run under their filters. */
	if (getenv("VDRV_SECCOMP") && !strcmp(getenv("VDRV_SECCOMP"), "1")) {
		r->vm.cfg.seccomp = 1;
		seccomp_install_handler();
	}
	r->vm.cfg.log_opaque = r;
	r->vm.kvm_fd = r->vm.vm_fd = -1;
	r->vm.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	io_bus_init(&r->vm.pio);
	io_bus_init(&r->vm.mmio);
	ret = console_init(&r->vm.console, &r->vm, -1, -1, -1, 0);
	if (!ret)
		ret = guest_memory_init(&r->vm.mem, &reg, 1, NULL);
	if (ret)
		return ret;
	pci_bus_init(&r->vm.pci, &r->vm, VDRV_PCI_MMIO, VDRV_PCI_SIZE,
		     VDRV_PCI_IO, VDRV_PCI_IOSZ);
	ret = machine_create_devices(&r->vm, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "vdrv: %s\n", err);
		return ret;
	}
	ret = vm_devices_start(&r->vm);
	return ret ? ret : vdrv_find_devices(r);
}

static inline void vdrv_destroy(struct vdrv *r)
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


static inline bool wait_used(struct ring *g, uint16_t idx, uint32_t *len)
{
	volatile uint16_t *used = (uint16_t *)(g->hva + R_USED);
	struct timespec t = { 0, 1000000 };
	int tries;

	/* Up to 30 s: under qemu-user on a loaded machine, slow is not broken. */
	for (tries = 0; tries < 30000; tries++) {
		if (__atomic_load_n(&used[1], __ATOMIC_ACQUIRE) == idx) {
			memcpy(len, (uint8_t *)used + 8 +
			       8 * ((idx - 1) % VDRV_QSIZE), 4);
			return true;
		}
		nanosleep(&t, NULL);
	}
	return false;
}

#endif
