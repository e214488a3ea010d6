/*
 * pci.h - the virtio-pci modern transport (virtio 1.2, section 4.1): a
 * PCI function 1af4:(1040 + device ID) whose BAR0 holds the common,
 * ISR, device-specific and notify structures, with MSI-X in BAR1 and
 * INTx on a level-triggered GSI as the fallback.
 */
#ifndef LKVM_VIRTIO_PCI_H
#define LKVM_VIRTIO_PCI_H

struct virtio_device;

/* Queues must be attached to their threads first. */
int virtio_pci_register(struct virtio_device *d, unsigned int intx_gsi);

#endif
