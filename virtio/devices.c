/*
 * devices.c - the VM's virtio devices: created from the configuration on
 * the chosen transport, with their queues on I/O threads.  Low-rate
 * devices (rng, console) share one thread.
 *
 * On virtio-mmio each device takes the next slot the arch provides, and
 * Linux guests learn about the slots from "virtio_mmio.device=" entries
 * added to the kernel command line (vm->cmdline_extra).  On virtio-pci
 * each device is a PCI function; its INTx line takes the same level GSIs
 * the mmio slots would (shared round-robin past the last one).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lkvm/arch.h"
#include "lkvm/iothread.h"
#include "lkvm/util.h"
#include "lkvm/virtio/device.h"
#include "lkvm/virtio/devices.h"
#include "lkvm/virtio/mmio.h"
#include "lkvm/virtio/pci.h"
#include "lkvm/vm.h"

static int cmdline_append(struct lkvm *vm, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int cmdline_append(struct lkvm *vm, const char *fmt, ...)
{
	size_t old = vm->cmdline_extra ? strlen(vm->cmdline_extra) : 0;
	char add[128], *s;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(add, sizeof(add), fmt, ap);
	va_end(ap);
	s = realloc(vm->cmdline_extra, old + n + 1);
	if (!s)
		return -ENOMEM;
	memcpy(s + old, add, n + 1);
	vm->cmdline_extra = s;
	return 0;
}

static bool virtio_use_pci(const struct lkvm *vm)
{
	switch (vm->cfg.virtio_transport) {
	case LKVM_VIRTIO_PCI:
		return true;
	case LKVM_VIRTIO_MMIO:
		return false;
	default:
		return arch_ops.virtio_pci_default;
	}
}

static int virtio_attach_mmio(struct lkvm *vm, struct virtio_device *d,
			      unsigned int slot)
{
	uint64_t base = arch_ops.virtio_mmio_base + slot * VIRTIO_MMIO_SIZE;
	unsigned int gsi = arch_ops.virtio_mmio_gsi + slot;
	int ret;

	ret = virtio_mmio_register(d, base, gsi);
	if (!ret)
		ret = cmdline_append(vm, " virtio_mmio.device=%u@0x%llx:%u",
				     VIRTIO_MMIO_SIZE, (unsigned long long)base,
				     gsi);
	return ret;
}

static int virtio_add(struct lkvm *vm, const struct virtio_device_ops *ops,
		      bool guest_console, char *err, size_t errlen)
{
	unsigned int slot = vm->virtio_slots, i;
	bool pci = virtio_use_pci(vm);
	struct virtio_device *d;
	char name[16];
	int ret;

	if (!pci && slot >= arch_ops.virtio_mmio_slots)
		return errf(err, errlen, -ENOSPC,
			    "too many virtio devices (at most %u)",
			    arch_ops.virtio_mmio_slots);
	d = calloc(1, sizeof(*d));
	if (!d)
		return errf(err, errlen, -ENOMEM, "out of memory");
	snprintf(name, sizeof(name), "%s%u", ops->name, slot);
	ret = virtio_device_init(d, vm, ops, NULL, name);
	if (!ret && ops == &virtio_console_ops) {
		d->priv = virtio_console_priv(d, guest_console);
		if (!d->priv)
			ret = -ENOMEM;
	}
	for (i = 0; !ret && i < ops->nqueues; i++)
		ret = virtio_queue_attach(d, i, vm->lowrate);
	if (!ret && pci)
		ret = virtio_pci_register(d, arch_ops.virtio_mmio_gsi +
					     slot % arch_ops.virtio_mmio_slots);
	else if (!ret)
		ret = virtio_attach_mmio(vm, d, slot);
	d->next = vm->virtio_devs;
	vm->virtio_devs = d;
	vm->virtio_slots++;
	if (ret)
		return errf(err, errlen, ret, "cannot create virtio-%s: %s",
			    ops->name, strerror(-ret));
	return 0;
}

int virtio_devices_create(struct lkvm *vm, char *err, size_t errlen)
{
	int ret;

	if (!vm->cfg.rng && !vm->cfg.console_virtio)
		return 0;
	vm->lowrate = calloc(1, sizeof(*vm->lowrate));
	if (!vm->lowrate)
		return errf(err, errlen, -ENOMEM, "out of memory");
	ret = iothread_init(vm->lowrate, "virtio-lo");
	if (ret) {
		free(vm->lowrate);
		vm->lowrate = NULL;
		return errf(err, errlen, ret, "cannot create I/O thread");
	}
	if (vm->cfg.console_virtio) {
		ret = virtio_add(vm, &virtio_console_ops, true, err, errlen);
		if (ret)
			return ret;
	}
	if (vm->cfg.rng)
		return virtio_add(vm, &virtio_rng_ops, false, err, errlen);
	return 0;
}

int virtio_devices_start(struct lkvm *vm)
{
	return vm->lowrate ? iothread_start(vm->lowrate) : 0;
}

void virtio_devices_stop(struct lkvm *vm)
{
	if (vm->lowrate)
		iothread_stop(vm->lowrate);
}

void virtio_devices_free(struct lkvm *vm)
{
	struct virtio_device *d;

	virtio_devices_stop(vm);
	while ((d = vm->virtio_devs)) {
		vm->virtio_devs = d->next;
		virtio_device_free(d);
		free(d);
	}
	if (vm->lowrate) {
		iothread_free(vm->lowrate);
		free(vm->lowrate);
		vm->lowrate = NULL;
	}
	free(vm->cmdline_extra);
	vm->cmdline_extra = NULL;
}
