/*
 * mmio.h - the virtio-mmio (version 2) transport: a 0x200-byte register
 * window per device, queue notifies through KVM_IOEVENTFD, interrupts
 * through a level-triggered KVM_IRQFD with a resample fd.
 */
#ifndef LKVM_VIRTIO_MMIO_H
#define LKVM_VIRTIO_MMIO_H

#include <stdint.h>

struct virtio_device;

#define VIRTIO_MMIO_SIZE	0x200
#define VIRTIO_MMIO_MAGIC	0x74726976	/* "virt" */

/* Queues must be attached to their threads first. */
int virtio_mmio_register(struct virtio_device *d, uint64_t base,
			 unsigned int gsi);

#endif
