/*
 * virtio.c - the test guests' virtio driver (see virtio.h).  Two small
 * transports side by side: virtio-mmio registers, and the virtio-pci
 * common configuration structure.
 */
#include "runtime/virtio.h"

/* virtio-mmio registers */
#define R_MAGIC		0x000
#define R_DEVICE_ID	0x008
#define R_DEV_FEAT	0x010
#define R_DEV_FEAT_SEL	0x014
#define R_DRV_FEAT	0x020
#define R_DRV_FEAT_SEL	0x024
#define R_QUEUE_SEL	0x030
#define R_QUEUE_NUM_MAX	0x034
#define R_QUEUE_NUM	0x038
#define R_QUEUE_READY	0x044
#define R_QUEUE_NOTIFY	0x050
#define R_ISR		0x060
#define R_ISR_ACK	0x064
#define R_STATUS	0x070
#define R_DESC_LO	0x080
#define R_DESC_HI	0x084
#define R_DRIVER_LO	0x090
#define R_DRIVER_HI	0x094
#define R_DEVICE_LO	0x0a0
#define R_DEVICE_HI	0x0a4

/* virtio-pci common configuration */
#define C_DFSELECT	0x00
#define C_DF		0x04
#define C_GFSELECT	0x08
#define C_GF		0x0c
#define C_MSIX_CONFIG	0x10
#define C_STATUS	0x14
#define C_Q_SELECT	0x16
#define C_Q_SIZE	0x18
#define C_Q_MSIX	0x1a
#define C_Q_ENABLE	0x1c
#define C_Q_NOFF	0x1e
#define C_Q_DESC	0x20
#define C_Q_DRIVER	0x28
#define C_Q_DEVICE	0x30

/* Ring memory for up to VQ_RINGS queues of VQ_MAX entries; rows keep the
 * alignment the spec asks (16, 2 and 4 bytes). */
static struct vdesc desc_mem[VQ_RINGS][VQ_MAX] __attribute__((aligned(4096)));
static uint16_t avail_mem[VQ_RINGS][VQ_MAX + 4] __attribute__((aligned(4096)));
static uint16_t used_mem[VQ_RINGS][4 * VQ_MAX + 4] __attribute__((aligned(4096)));

static struct vdev *irq_devs[64];	/* by vector: the IDT has 64 */

static uint32_t vmmio_read(struct vdev *d, unsigned int reg)
{
	return mmio_read32(d->base + reg);
}

static void vmmio_write(struct vdev *d, unsigned int reg, uint32_t v)
{
	mmio_write32(d->base + reg, v);
}

static uint8_t pci_cfg_read8(unsigned int dev, unsigned int off)
{
	return pci_cfg_read32(dev, 0, off & ~3u) >> 8 * (off & 3);
}

static uintptr_t pci_bar(unsigned int dev, unsigned int bar)
{
	return pci_cfg_read32(dev, 0, 0x10 + 4 * bar) & ~0xfu;
}

/* Walks the capability list for the virtio structures and MSI-X. */
static void vpci_probe(struct vdev *d)
{
	unsigned int dev = d->slot, p;

	for (p = pci_cfg_read8(dev, 0x34); p; p = pci_cfg_read8(dev, p + 1)) {
		uint8_t id = pci_cfg_read8(dev, p);

		if (id == 0x11) {
			uint32_t t = pci_cfg_read32(dev, 0, p + 4);
			uint32_t b = pci_cfg_read32(dev, 0, p + 8);

			d->msix_cap = p;
			d->msix_table = pci_bar(dev, t & 7) + (t & ~7u);
			d->msix_pba = pci_bar(dev, b & 7) + (b & ~7u);
		} else if (id == 0x09) {
			uintptr_t a = pci_bar(dev, pci_cfg_read8(dev, p + 4)) +
				      pci_cfg_read32(dev, 0, p + 8);

			switch (pci_cfg_read8(dev, p + 3)) {
			case 1:
				d->common = a;
				break;
			case 2:
				d->notify = a;
				d->notify_mult = pci_cfg_read32(dev, 0, p + 16);
				break;
			case 3:
				d->isr = a;
				break;
			case 4:
				d->devcfg = a;
				break;
			}
		}
	}
}

void vdev_pci_move_bar0(struct vdev *d, uint32_t addr)
{
	uint32_t cmd = pci_cfg_read32(d->slot, 0, 4) & 0xffff;

	pci_cfg_write32(d->slot, 0, 4, cmd & ~2u);	/* decoding off */
	pci_cfg_write32(d->slot, 0, 0x10, addr);
	pci_cfg_write32(d->slot, 0, 4, cmd | 2);
	vpci_probe(d);
}

bool vdev_find(uint32_t device_id, struct vdev *d)
{
	uint32_t want = (0x1040 + device_id) << 16 | 0x1af4;
	unsigned int i;

	memset(d, 0, sizeof(*d));
	for (i = 0; i < 32; i++) {
		if (pci_cfg_read32(i, 0, 0) != want)
			continue;
		d->pci = true;
		d->slot = i;
		d->intx_pin = pci_cfg_read8(i, 0x3c);
		/* memory decoding and bus mastering on */
		pci_cfg_write32(i, 0, 4, (pci_cfg_read32(i, 0, 4) & 0xffff) | 6);
		vpci_probe(d);
		return d->common && d->notify && d->isr;
	}
	for (i = 0; i < VMMIO_SLOTS; i++) {
		uintptr_t base = VMMIO_BASE + i * VMMIO_STRIDE;

		if (mmio_read32(base + R_MAGIC) == 0x74726976 &&
		    mmio_read32(base + R_DEVICE_ID) == device_id) {
			d->base = base;
			d->slot = i;
			d->intx_pin = VMMIO_GSI + i % 8;
			return true;
		}
	}
	return false;
}

uint32_t vdev_status(struct vdev *d)
{
	return d->pci ? mmio_read8(d->common + C_STATUS) :
			vmmio_read(d, R_STATUS);
}

uint32_t vdev_cfg_read32(struct vdev *d, unsigned int off)
{
	return d->pci ? mmio_read32(d->devcfg + off) :
			vmmio_read(d, 0x100 + off);
}

static void vdev_set_status(struct vdev *d, uint32_t s)
{
	if (d->pci)
		mmio_write8(d->common + C_STATUS, s);
	else
		vmmio_write(d, R_STATUS, s);
}

static uint32_t vdev_features(struct vdev *d, unsigned int sel)
{
	if (d->pci) {
		mmio_write32(d->common + C_DFSELECT, sel);
		return mmio_read32(d->common + C_DF);
	}
	vmmio_write(d, R_DEV_FEAT_SEL, sel);
	return vmmio_read(d, R_DEV_FEAT);
}

static void vdev_set_features(struct vdev *d, unsigned int sel, uint32_t v)
{
	if (d->pci) {
		mmio_write32(d->common + C_GFSELECT, sel);
		mmio_write32(d->common + C_GF, v);
		return;
	}
	vmmio_write(d, R_DRV_FEAT_SEL, sel);
	vmmio_write(d, R_DRV_FEAT, v);
}

bool vdev_init(struct vdev *d, uint64_t want)
{
	uint64_t offered;

	vdev_set_status(d, 0);
	vdev_set_status(d, VSTATUS_ACK);
	vdev_set_status(d, VSTATUS_ACK | VSTATUS_DRIVER);
	offered = vdev_features(d, 0) | (uint64_t)vdev_features(d, 1) << 32;
	d->features = (want | 1ULL << VIRTIO_F_VERSION_1) & offered;
	vdev_set_features(d, 0, d->features);
	vdev_set_features(d, 1, d->features >> 32);
	vdev_set_status(d, VSTATUS_ACK | VSTATUS_DRIVER | VSTATUS_FEATURES_OK);
	return vdev_status(d) & VSTATUS_FEATURES_OK;
}

static void vq_rings(struct vq *q, unsigned int qi, uint16_t size)
{
	q->size = size;
	q->index = qi;
	q->desc = desc_mem[qi];
	q->avail = avail_mem[qi];
	q->used = used_mem[qi];
	q->avail_idx = q->last_used = 0;
	memset(desc_mem[qi], 0, sizeof(desc_mem[qi]));
	memset(avail_mem[qi], 0, sizeof(avail_mem[qi]));
	memset(used_mem[qi], 0, sizeof(used_mem[qi]));
}

static bool vq_init_pci(struct vdev *d, struct vq *q, unsigned int qi,
			uint16_t size)
{
	uintptr_t c = d->common;

	mmio_write16(c + C_Q_SELECT, qi);
	if (mmio_read16(c + C_Q_SIZE) < size)
		return false;
	vq_rings(q, qi, size);
	mmio_write16(c + C_Q_SIZE, size);
	mmio_write32(c + C_Q_DESC, (uintptr_t)q->desc);
	mmio_write32(c + C_Q_DESC + 4, 0);
	mmio_write32(c + C_Q_DRIVER, (uintptr_t)q->avail);
	mmio_write32(c + C_Q_DRIVER + 4, 0);
	mmio_write32(c + C_Q_DEVICE, (uintptr_t)q->used);
	mmio_write32(c + C_Q_DEVICE + 4, 0);
	mmio_write16(c + C_Q_MSIX, d->msix ? 0 : VIRTIO_MSI_NO_VECTOR);
	if (d->msix && mmio_read16(c + C_Q_MSIX) != 0)
		return false;
	q->notify = d->notify + mmio_read16(c + C_Q_NOFF) * d->notify_mult;
	mmio_write16(c + C_Q_ENABLE, 1);
	return mmio_read16(c + C_Q_ENABLE) == 1;
}

bool vq_init(struct vdev *d, struct vq *q, unsigned int qi, uint16_t size)
{
	if (qi >= VQ_RINGS || size > VQ_MAX)
		return false;
	if (d->pci)
		return vq_init_pci(d, q, qi, size);
	vmmio_write(d, R_QUEUE_SEL, qi);
	if (vmmio_read(d, R_QUEUE_NUM_MAX) < size)
		return false;
	vq_rings(q, qi, size);
	q->notify = d->base + R_QUEUE_NOTIFY;
	vmmio_write(d, R_QUEUE_NUM, size);
	vmmio_write(d, R_DESC_LO, (uintptr_t)q->desc);
	vmmio_write(d, R_DESC_HI, 0);
	vmmio_write(d, R_DRIVER_LO, (uintptr_t)q->avail);
	vmmio_write(d, R_DRIVER_HI, 0);
	vmmio_write(d, R_DEVICE_LO, (uintptr_t)q->used);
	vmmio_write(d, R_DEVICE_HI, 0);
	vmmio_write(d, R_QUEUE_READY, 1);
	return vmmio_read(d, R_QUEUE_READY) == 1;
}

void vdev_driver_ok(struct vdev *d)
{
	vdev_set_status(d, vdev_status(d) | VSTATUS_DRIVER_OK);
}

void vq_publish(struct vq *q, uint16_t head)
{
	q->avail[2 + q->avail_idx % q->size] = head;
	q->avail_idx++;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	q->avail[1] = q->avail_idx;
}

void vq_kick(struct vdev *d, struct vq *q)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (d->pci)
		mmio_write16(q->notify, q->index);
	else
		vmmio_write(d, R_QUEUE_NOTIFY, q->index);
}

bool vq_get_used(struct vq *q, uint32_t *id, uint32_t *len)
{
	const volatile uint32_t *ring = (const volatile uint32_t *)&q->used[2];
	unsigned int i;

	if (q->used[1] == q->last_used)
		return false;
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	i = q->last_used % q->size;
	*id = ring[2 * i];
	*len = ring[2 * i + 1];
	q->last_used++;
	return true;
}

void vq_set_used_event(struct vq *q, uint16_t idx)
{
	q->avail[2 + q->size] = idx;
}

static void vdev_irq(struct trap_frame *f)
{
	struct vdev *d = irq_devs[f->vector];
	uint32_t isr;

	if (d && d->msix) {
		d->irqs++;		/* an MSI is never shared */
	} else if (d) {
		if (d->pci) {
			isr = mmio_read8(d->isr);	/* reading acks */
		} else {
			isr = vmmio_read(d, R_ISR);
			if (isr)
				vmmio_write(d, R_ISR_ACK, isr);
		}
		if (isr)
			d->irqs++;
	}
	lapic_eoi();
}

static void vdev_msix_entry(struct vdev *d, unsigned int vector)
{
	mmio_write32(d->msix_table + 0, 0xfee00000u | lapic_id() << 12);
	mmio_write32(d->msix_table + 4, 0);
	mmio_write32(d->msix_table + 8, vector);
}

void vdev_irq_enable(struct vdev *d, unsigned int vector)
{
	unsigned int pin = d->intx_pin;

	irq_devs[vector] = d;
	irq_set_handler(vector, vdev_irq);
	lapic_write(0xf0, 0x1ff);
	if (d->pci && d->msix_cap && !d->force_intx) {
		/* Entry 0 serves the queues and configuration changes. */
		vdev_msix_entry(d, vector);
		vdev_msix_mask(d, false);
		pci_cfg_write32(d->slot, 0, d->msix_cap,
				pci_cfg_read32(d->slot, 0, d->msix_cap) |
				1u << 31);
		mmio_write16(d->common + C_MSIX_CONFIG, 0);
		d->msix = true;
		return;
	}
	/* level-triggered (bit 15), active high, to this CPU */
	mmio_write32(IOAPIC_BASE, 0x10 + 2 * pin + 1);
	mmio_write32(IOAPIC_BASE + 0x10, lapic_id() << 24);
	mmio_write32(IOAPIC_BASE, 0x10 + 2 * pin);
	mmio_write32(IOAPIC_BASE + 0x10, vector | 1u << 15);
}

void vdev_msix_mask(struct vdev *d, bool mask)
{
	mmio_write32(d->msix_table + 12, mask);
}

void vdev_msix_retarget(struct vdev *d, unsigned int vector)
{
	vdev_msix_entry(d, vector);
}

bool vdev_msix_pending(struct vdev *d)
{
	return mmio_read32(d->msix_pba) & 1;
}
