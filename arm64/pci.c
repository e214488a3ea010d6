/*
 * pci.c - the arm64 PCI host: a generic ECAM window for bus 0 (each
 * function's 4 KiB of config space at (devfn << 12)), a host bridge in
 * slot 0, and memory BARs from a 512 MiB 32-bit window.  Accesses beyond
 * the 256 bytes of conventional config space read ones.
 */
#include <string.h>

#include "lkvm/arm64/arm64.h"
#include "lkvm/arm64/layout.h"
#include "lkvm/pci.h"
#include "lkvm/vm.h"

#define HOST_BRIDGE_VENDOR	0x1b36
#define HOST_BRIDGE_DEVICE	0x0008
#define HOST_BRIDGE_CLASS	0x060000

static bool ecam_decode(uint64_t off, unsigned int *devfn, unsigned int *reg)
{
	*devfn = (off >> 12) & 0xff;
	*reg = off & 0xfff;
	return (off >> 20) == 0 && *reg < PCI_CFG_SIZE;
}

static void ecam_read(void *opaque, uint64_t off, void *data, unsigned int len)
{
	struct lkvm *vm = opaque;
	unsigned int devfn, reg;

	if (!ecam_decode(off, &devfn, &reg)) {
		memset(data, 0xff, len);
		return;
	}
	pci_cfg_read(&vm->pci, devfn, reg, data, len);
}

static void ecam_write(void *opaque, uint64_t off, const void *data,
		       unsigned int len)
{
	struct lkvm *vm = opaque;
	unsigned int devfn, reg;

	if (ecam_decode(off, &devfn, &reg))
		pci_cfg_write(&vm->pci, devfn, reg, data, len);
}

static const struct io_ops ecam_ops = {
	.read = ecam_read,
	.write = ecam_write,
};

int arm64_pci_init(struct lkvm *vm)
{
	struct arm64_vm *a = vm->arch;
	int ret;

	pci_bus_init(&vm->pci, vm, ARM64_PCI_MMIO_BASE, ARM64_PCI_MMIO_SIZE,
		     0, 0);
	ret = io_bus_register(&vm->mmio, ARM64_PCI_ECAM_BASE,
			      ARM64_PCI_ECAM_SIZE, &ecam_ops, vm);
	if (ret)
		return ret;
	pci_dev_init(&a->host_bridge, HOST_BRIDGE_VENDOR, HOST_BRIDGE_DEVICE,
		     HOST_BRIDGE_CLASS, HOST_BRIDGE_VENDOR, 0);
	return pci_register(&vm->pci, &a->host_bridge);
}
