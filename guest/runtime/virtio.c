/*
 * virtio.c - the test guests' virtio-mmio driver (see virtio.h).
 */
#include "runtime/virtio.h"

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

/* Ring memory for up to 4 queues of VQ_MAX entries; rows keep the
 * alignment the spec asks (16, 2 and 4 bytes). */
static struct vdesc desc_mem[4][VQ_MAX] __attribute__((aligned(4096)));
static uint16_t avail_mem[4][VQ_MAX + 4] __attribute__((aligned(4096)));
static uint16_t used_mem[4][4 * VQ_MAX + 4] __attribute__((aligned(4096)));

static struct vdev *irq_devs[64];	/* by vector: the IDT has 64 */

uint32_t vmmio_read(struct vdev *d, unsigned int reg)
{
	return mmio_read32(d->base + reg);
}

void vmmio_write(struct vdev *d, unsigned int reg, uint32_t v)
{
	mmio_write32(d->base + reg, v);
}

bool vdev_find(uint32_t device_id, struct vdev *d)
{
	unsigned int i;

	for (i = 0; i < VMMIO_SLOTS; i++) {
		uintptr_t base = VMMIO_BASE + i * VMMIO_STRIDE;

		if (mmio_read32(base + R_MAGIC) == 0x74726976 &&
		    mmio_read32(base + R_DEVICE_ID) == device_id) {
			d->base = base;
			d->slot = i;
			d->irqs = 0;
			return true;
		}
	}
	return false;
}

uint32_t vdev_status(struct vdev *d)
{
	return vmmio_read(d, R_STATUS);
}

bool vdev_init(struct vdev *d, uint64_t want)
{
	uint64_t offered;

	vmmio_write(d, R_STATUS, 0);
	vmmio_write(d, R_STATUS, VSTATUS_ACK);
	vmmio_write(d, R_STATUS, VSTATUS_ACK | VSTATUS_DRIVER);
	vmmio_write(d, R_DEV_FEAT_SEL, 0);
	offered = vmmio_read(d, R_DEV_FEAT);
	vmmio_write(d, R_DEV_FEAT_SEL, 1);
	offered |= (uint64_t)vmmio_read(d, R_DEV_FEAT) << 32;
	d->features = (want | 1ULL << VIRTIO_F_VERSION_1) & offered;
	vmmio_write(d, R_DRV_FEAT_SEL, 0);
	vmmio_write(d, R_DRV_FEAT, d->features);
	vmmio_write(d, R_DRV_FEAT_SEL, 1);
	vmmio_write(d, R_DRV_FEAT, d->features >> 32);
	vmmio_write(d, R_STATUS, VSTATUS_ACK | VSTATUS_DRIVER |
		    VSTATUS_FEATURES_OK);
	return vdev_status(d) & VSTATUS_FEATURES_OK;
}

bool vq_init(struct vdev *d, struct vq *q, unsigned int qi, uint16_t size)
{
	if (qi >= 4 || size > VQ_MAX)
		return false;
	vmmio_write(d, R_QUEUE_SEL, qi);
	if (vmmio_read(d, R_QUEUE_NUM_MAX) < size)
		return false;
	q->size = size;
	q->index = qi;
	q->desc = desc_mem[qi];
	q->avail = avail_mem[qi];
	q->used = used_mem[qi];
	q->avail_idx = q->last_used = 0;
	memset(desc_mem[qi], 0, sizeof(desc_mem[qi]));
	memset(avail_mem[qi], 0, sizeof(avail_mem[qi]));
	memset(used_mem[qi], 0, sizeof(used_mem[qi]));
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
	vmmio_write(d, R_STATUS, vdev_status(d) | VSTATUS_DRIVER_OK);
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

	if (d) {
		uint32_t isr = vmmio_read(d, R_ISR);

		if (isr) {
			vmmio_write(d, R_ISR_ACK, isr);
			d->irqs++;
		}
	}
	lapic_eoi();
}

void vdev_irq_enable(struct vdev *d, unsigned int vector)
{
	unsigned int pin = VMMIO_GSI + d->slot;

	irq_devs[vector] = d;
	irq_set_handler(vector, vdev_irq);
	lapic_write(0xf0, 0x1ff);
	/* level-triggered (bit 15), active high, to this CPU */
	mmio_write32(IOAPIC_BASE, 0x10 + 2 * pin + 1);
	mmio_write32(IOAPIC_BASE + 0x10, lapic_id() << 24);
	mmio_write32(IOAPIC_BASE, 0x10 + 2 * pin);
	mmio_write32(IOAPIC_BASE + 0x10, vector | 1u << 15);
}
