/*
 * devices.h - creating the virtio devices a configuration asks for,
 * placing them on the transport, and their threads' lifetime.
 */
#ifndef LKVM_VIRTIO_DEVICES_H
#define LKVM_VIRTIO_DEVICES_H

#include <stdbool.h>
#include <stddef.h>

struct lkvm;
struct virtio_device;
struct virtio_device_ops;

extern const struct virtio_device_ops virtio_rng_ops;
extern const struct virtio_device_ops virtio_console_ops;

void *virtio_console_priv(struct virtio_device *d, bool guest_console);

int virtio_devices_create(struct lkvm *vm, char *err, size_t errlen);
int virtio_devices_start(struct lkvm *vm);
void virtio_devices_stop(struct lkvm *vm);
void virtio_devices_free(struct lkvm *vm);

/* Do virtio devices sit on PCI (else on virtio-mmio slots 0..n-1)? */
bool virtio_use_pci(const struct lkvm *vm);

#endif
