/*
 * pci_ports.c - PCI configuration mechanism #1 (ports 0xcf8 address,
 * 0xcfc-0xcff data) in front of the shared PCI bus, and the host bridge
 * at 00.0.  The address latch is per VM; vCPUs race on it exactly as CPUs
 * would on real hardware, so it is a plain atomic word.
 */
#include <string.h>

#include "lkvm/vm.h"
#include "lkvm/x86/layout.h"
#include "lkvm/x86/x86.h"

#define CFG_ENABLE	(1u << 31)
#define HOST_BRIDGE_VENDOR	0x1b36	/* Red Hat, Inc. (QEMU's space) */
#define HOST_BRIDGE_DEVICE	0x0008	/* PCIe host bridge */
#define HOST_BRIDGE_CLASS	0x060000

static void cfg_addr_read(void *opaque, uint64_t off, void *data,
			  unsigned int len)
{
	struct x86_vm *x = opaque;
	uint32_t v = __atomic_load_n(&x->pci_addr, __ATOMIC_RELAXED);

	memset(data, 0xff, len);
	if (off == 0 && len == 4)
		memcpy(data, &v, 4);
}

static void cfg_addr_write(void *opaque, uint64_t off, const void *data,
			   unsigned int len)
{
	struct x86_vm *x = opaque;
	uint32_t v;

	/* Only dword writes to 0xcf8 latch; byte writes there are other
	 * chipset registers that we do not have. */
	if (off != 0 || len != 4)
		return;
	memcpy(&v, data, 4);
	__atomic_store_n(&x->pci_addr, v, __ATOMIC_RELAXED);
}

static const struct io_ops cfg_addr_ops = {
	.read = cfg_addr_read,
	.write = cfg_addr_write,
};

/* Decodes the latch; false for disabled cycles and buses other than 0. */
static bool cfg_target(struct lkvm *vm, uint64_t off, unsigned int *devfn,
		       unsigned int *reg)
{
	struct x86_vm *x = vm->arch;
	uint32_t a = __atomic_load_n(&x->pci_addr, __ATOMIC_RELAXED);

	if (!(a & CFG_ENABLE) || ((a >> 16) & 0xff) != 0)
		return false;
	*devfn = (a >> 8) & 0xff;
	*reg = (a & 0xfc) + off;
	return true;
}

static void cfg_data_read(void *opaque, uint64_t off, void *data,
			  unsigned int len)
{
	struct lkvm *vm = opaque;
	unsigned int devfn, reg;

	if (!cfg_target(vm, off, &devfn, &reg)) {
		memset(data, 0xff, len);
		return;
	}
	pci_cfg_read(&vm->pci, devfn, reg, data, len);
}

static void cfg_data_write(void *opaque, uint64_t off, const void *data,
			   unsigned int len)
{
	struct lkvm *vm = opaque;
	unsigned int devfn, reg;

	if (cfg_target(vm, off, &devfn, &reg))
		pci_cfg_write(&vm->pci, devfn, reg, data, len);
}

static const struct io_ops cfg_data_ops = {
	.read = cfg_data_read,
	.write = cfg_data_write,
};

int x86_pci_ports_init(struct lkvm *vm, struct x86_vm *x)
{
	int ret;

	pci_bus_init(&vm->pci, vm, X86_PCI_MMIO_BASE, X86_PCI_MMIO_SIZE,
		     X86_PCI_IO_BASE, X86_PCI_IO_SIZE);
	ret = io_bus_register(&vm->pio, X86_PCI_CONFIG_PORT, 4, &cfg_addr_ops,
			      x);
	if (!ret)
		ret = io_bus_register(&vm->pio, X86_PCI_CONFIG_PORT + 4, 4,
				      &cfg_data_ops, vm);
	if (ret)
		return ret;
	pci_dev_init(&x->host_bridge, HOST_BRIDGE_VENDOR, HOST_BRIDGE_DEVICE,
		     HOST_BRIDGE_CLASS, HOST_BRIDGE_VENDOR, 0x1100);
	return pci_register(&vm->pci, &x->host_bridge);
}
