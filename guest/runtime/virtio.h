/*
 * virtio.h - a small virtio driver for test guests: finds a device on
 * virtio-pci (modern, found by PCI enumeration and its capabilities) or
 * else on virtio-mmio (probing lkvm's window), negotiates features, sets
 * up split rings with or without EVENT_IDX and indirect descriptors, and
 * takes interrupts through MSI-X or, on virtio-mmio and with
 * force_intx, a level-triggered I/O APIC pin.  Each call runs a handful
 * of instructions.
 */
#ifndef GUEST_VIRTIO_H
#define GUEST_VIRTIO_H

#include "runtime/guest.h"

#define VMMIO_BASE	0xd0000000UL	/* lkvm's x86 virtio-mmio window */
#define VMMIO_STRIDE	0x200
#define VMMIO_SLOTS	32
#define VMMIO_GSI	16		/* slot n interrupts on pin 16+n%8 */

#define VIRTIO_F_INDIRECT_DESC	28
#define VIRTIO_F_EVENT_IDX	29
#define VIRTIO_F_VERSION_1	32

#define VSTATUS_ACK		1
#define VSTATUS_DRIVER		2
#define VSTATUS_DRIVER_OK	4
#define VSTATUS_FEATURES_OK	8
#define VSTATUS_NEEDS_RESET	0x40

#define VRING_DESC_F_NEXT	1
#define VRING_DESC_F_WRITE	2
#define VRING_DESC_F_INDIRECT	4

#define VIRTIO_MSI_NO_VECTOR	0xffff

struct vdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vdev {
	bool pci;
	uintptr_t base;		/* mmio: the register window */
	unsigned int slot;	/* mmio slot or PCI device number */
	/* virtio-pci structures, found through the capabilities */
	uintptr_t common, isr, devcfg, notify;
	uint32_t notify_mult;
	uintptr_t msix_table, msix_pba;
	unsigned int msix_cap;	/* 0: no MSI-X */
	unsigned int intx_pin;	/* I/O APIC pin for INTx / the mmio line */
	bool force_intx;	/* set before vdev_irq_enable */
	bool msix;		/* interrupts come as MSI-X vector 0 */
	uint64_t features;	/* negotiated */
	volatile unsigned int irqs;
};

#define VQ_MAX 256
#define VQ_RINGS 6	/* queues a guest may set up: net, 2 pairs + control */

struct vq {
	uint16_t size;
	unsigned int index;
	struct vdesc *desc;
	volatile uint16_t *avail;	/* flags, idx, ring[], used_event */
	volatile uint16_t *used;	/* flags, idx, ring (8-byte), avail_event */
	uint16_t avail_idx;
	uint16_t last_used;
	uintptr_t notify;		/* where vq_kick writes */
};

/* Finds the first device of this type; false if none. */
bool vdev_find(uint32_t device_id, struct vdev *d);
/* Moves a PCI device's BAR0 (as an OS might) and finds its structures. */
void vdev_pci_move_bar0(struct vdev *d, uint32_t addr);
/* Reset, ACK, DRIVER, features (want & offered, plus VERSION_1), FEATURES_OK. */
bool vdev_init(struct vdev *d, uint64_t want);
/*
 * Routes the device's interrupt to vector and counts interrupts in
 * d->irqs.  Call before vq_init: MSI-X queue vectors are set with the
 * queue.
 */
void vdev_irq_enable(struct vdev *d, unsigned int vector);
/* Sets queue qi up with size entries in static memory (one per index). */
bool vq_init(struct vdev *d, struct vq *q, unsigned int qi, uint16_t size);
void vdev_driver_ok(struct vdev *d);
uint32_t vdev_status(struct vdev *d);
/* Device-specific configuration, 32 bits at off. */
uint32_t vdev_cfg_read32(struct vdev *d, unsigned int off);
/* Publishes chain head; vq_kick notifies the device. */
void vq_publish(struct vq *q, uint16_t head);
void vq_kick(struct vdev *d, struct vq *q);
/* Takes one used entry; false if none. */
bool vq_get_used(struct vq *q, uint32_t *id, uint32_t *len);
/* With EVENT_IDX: interrupt me once used->idx passes `idx`. */
void vq_set_used_event(struct vq *q, uint16_t idx);

/* MSI-X entry 0 of a PCI device: mask, re-aim (the caller installs the
 * handler of the new IDT vector), pending bit. */
void vdev_msix_mask(struct vdev *d, bool mask);
void vdev_msix_retarget(struct vdev *d, unsigned int vector);
bool vdev_msix_pending(struct vdev *d);

#endif
