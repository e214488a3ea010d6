/*
 * pvpanic.c - pvpanic PCI device, QEMU-compatible (vendor 1b36, device
 * 0011, class "system peripheral, other").  BAR0 is a small MMIO window:
 * reading byte 0 gives the events we understand; writing PANICKED ends
 * the run with LKVM_EXIT_PANIC.  CRASH_LOADED (a kdump kernel will take
 * over) is logged and the guest goes on.  Accessed by vCPU threads; the
 * device has no mutable state.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "lkvm/device.h"
#include "lkvm/lib/util.h"
#include "lkvm/log.h"
#include "lkvm/pci.h"
#include "lkvm/platform/pvpanic.h"
#include "lkvm/vm.h"

#define PVPANIC_VENDOR	0x1b36
#define PVPANIC_DEVICE	0x0011
#define PVPANIC_CLASS	0x088000
#define PVPANIC_BAR_SIZE 16

struct pvpanic {
	struct vm_device dev;		/* the MMIO flavour */
	struct lkvm *vm;
	struct pci_dev pci;
};

static void pvpanic_read(void *opaque, uint64_t off, void *data,
			 unsigned int len)
{
	(void)opaque;
	memset(data, 0, len);
	if (off == 0)
		*(uint8_t *)data = PVPANIC_PANICKED | PVPANIC_CRASH_LOADED;
}

static void pvpanic_write(void *opaque, uint64_t off, const void *data,
			  unsigned int len)
{
	struct pvpanic *p = opaque;
	uint8_t v = *(const uint8_t *)data;

	(void)len;
	if (off != 0)
		return;
	if (v & PVPANIC_PANICKED)
		vm_request_exit(p->vm, LKVM_EXIT_PANIC, 0,
				"guest reported a panic (pvpanic)");
	else if (v & PVPANIC_CRASH_LOADED)
		vm_info(p->vm, "guest panicked; its crash kernel takes over");
}

static const struct io_ops pvpanic_ops = {
	.read = pvpanic_read,
	.write = pvpanic_write,
};

static void pvpanic_release(struct pci_dev *dev)
{
	free((char *)dev - offsetof(struct pvpanic, pci));
}

static void pvpanic_mmio_free(struct vm_device *dev)
{
	free(container_of(dev, struct pvpanic, dev));
}

static const struct vm_device_ops pvpanic_mmio_ops = {
	.kind = "pvpanic-mmio",
	.free = pvpanic_mmio_free,
};

/* The MMIO flavour (arm64's device tree, "qemu,pvpanic-mmio"). */
int pvpanic_mmio_create(struct lkvm *vm, uint64_t base)
{
	struct pvpanic *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->vm = vm;
	/* The bus does not own opaques: the VM's device list frees it. */
	vm_device_add(vm, &p->dev, &pvpanic_mmio_ops, "pvpanic0");
	return io_bus_register(&vm->mmio, base, PVPANIC_MMIO_SIZE,
			       &pvpanic_ops, p);
}

int pvpanic_pci_create(struct lkvm *vm)
{
	struct pvpanic *p = calloc(1, sizeof(*p));
	int ret;

	if (!p)
		return -ENOMEM;
	p->vm = vm;
	pci_dev_init(&p->pci, PVPANIC_VENDOR, PVPANIC_DEVICE, PVPANIC_CLASS,
		     PVPANIC_VENDOR, PVPANIC_DEVICE);
	pci_dev_set_bar(&p->pci, 0, PVPANIC_BAR_SIZE, false, &pvpanic_ops, p);
	p->pci.release = pvpanic_release;
	ret = pci_register(&vm->pci, &p->pci);
	if (ret)
		free(p);
	return ret;
}
