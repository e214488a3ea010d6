/* Tests vmm/pci.c: config space access rules, BAR sizing and moves. */
#include <errno.h>

#include "lkvm/pci.h"
#include "lkvm/vm.h"
#include "test.h"

static int hits;

static void bar_read(void *opaque, uint64_t off, void *data, unsigned int len)
{
	(void)opaque;
	hits++;
	memset(data, 0, len);
	*(uint8_t *)data = 0x40 + off;
}

static const struct io_ops bar_ops = { .read = bar_read };

static uint32_t cfg32(struct pci_bus *bus, unsigned int devfn, unsigned int off)
{
	uint32_t v;

	pci_cfg_read(bus, devfn, off, &v, 4);
	return v;
}

static void wr32(struct pci_bus *bus, unsigned int devfn, unsigned int off,
		 uint32_t v)
{
	pci_cfg_write(bus, devfn, off, &v, 4);
}

int main(void)
{
	static struct lkvm vm;
	struct pci_dev host, dev, full[PCI_MAX_SLOTS];
	struct pci_bus *bus = &vm.pci;
	unsigned int devfn, i;
	uint8_t b;
	uint16_t w;

	io_bus_init(&vm.mmio);
	io_bus_init(&vm.pio);
	pci_bus_init(bus, &vm, 0xc0000000, 0x100000, 0xc000, 0x1000);
	pci_dev_init(&host, 0x1b36, 0x0008, 0x060000, 0x1b36, 0);
	CHECK_EQ(pci_register(bus, &host), 0);
	pci_dev_init(&dev, 0x1234, 0x5678, 0x088000, 0x1af4, 7);
	pci_dev_set_bar(&dev, 0, 4096, false, &bar_ops, NULL);
	pci_dev_set_bar(&dev, 1, 32, true, &bar_ops, NULL);
	CHECK_EQ(pci_register(bus, &dev), 0);
	CHECK_EQ(dev.slot, 1);
	devfn = dev.slot << 3;

	CHECK_EQ(cfg32(bus, devfn, 0), 0x56781234);
	CHECK_EQ(cfg32(bus, devfn, 8) >> 8, 0x088000);
	CHECK_EQ(cfg32(bus, devfn, 0x2c), 0x00071af4);
	CHECK_EQ(cfg32(bus, devfn, 0x10), 0xc0000000);
	CHECK_EQ(cfg32(bus, devfn, 0x14), 0xc001);
	/* Unaligned, oversized and out-of-range accesses read ones. */
	pci_cfg_read(bus, devfn, 1, &w, 2);
	CHECK_EQ(w, 0xffff);
	pci_cfg_read(bus, devfn, 256, &b, 1);
	CHECK_EQ(b, 0xff);
	CHECK_EQ(cfg32(bus, devfn | 1, 0), 0xffffffff);	/* function 1 */
	CHECK_EQ(cfg32(bus, 5 << 3, 0), 0xffffffff);	/* empty slot */
	CHECK_EQ(cfg32(bus, 0xff, 0), 0xffffffff);

	/* The BAR decodes where it was assigned. */
	CHECK(io_bus_access(&vm.mmio, 0xc0000003, &b, 1, false));
	CHECK_EQ(b, 0x43);
	CHECK(io_bus_access(&vm.pio, 0xc001, &b, 1, false));
	/* Sizing: all-ones reads back the size mask. */
	wr32(bus, devfn, 0x10, 0xffffffff);
	CHECK_EQ(cfg32(bus, devfn, 0x10), 0xfffff000);
	wr32(bus, devfn, 0x14, 0xffffffff);
	CHECK_EQ(cfg32(bus, devfn, 0x14), 0xffffffe1);
	CHECK(!io_bus_access(&vm.mmio, 0xc0000003, &b, 1, false));
	/* Moving the BAR moves the decoding. */
	wr32(bus, devfn, 0x10, 0xc0080000);
	CHECK_EQ(cfg32(bus, devfn, 0x10), 0xc0080000);
	CHECK(io_bus_access(&vm.mmio, 0xc0080001, &b, 1, false));
	CHECK_EQ(b, 0x41);
	/* Decoding off in the command register unmaps it. */
	w = 0;
	pci_cfg_write(bus, devfn, 4, &w, 2);
	CHECK(!io_bus_access(&vm.mmio, 0xc0080001, &b, 1, false));
	w = 2;
	pci_cfg_write(bus, devfn, 4, &w, 2);
	CHECK(io_bus_access(&vm.mmio, 0xc0080001, &b, 1, false));
	/* Read-only identity fields stay. */
	wr32(bus, devfn, 0, 0);
	CHECK_EQ(cfg32(bus, devfn, 0), 0x56781234);
	/* Interrupt line is writable. */
	b = 11;
	pci_cfg_write(bus, devfn, 0x3c, &b, 1);
	CHECK_EQ(cfg32(bus, devfn, 0x3c) & 0xff, 11);
	/* Moving a BAR onto another device's range is refused. */
	wr32(bus, 0, 0x10, 0);
	pci_dev_init(&full[0], 1, 2, 0, 0, 0);
	pci_dev_set_bar(&full[0], 0, 4096, false, &bar_ops, NULL);
	CHECK_EQ(pci_register(bus, &full[0]), 0);
	wr32(bus, full[0].slot << 3, 0x10, 0xc0080000);
	CHECK(!full[0].bars[0].mapped);
	/* Bad BAR sizes and a full bus are errors. */
	pci_dev_init(&full[1], 1, 2, 0, 0, 0);
	pci_dev_set_bar(&full[1], 0, 100, false, &bar_ops, NULL);
	CHECK_EQ(pci_register(bus, &full[1]), -EINVAL);
	pci_dev_set_bar(&full[1], 0, 1 << 30, false, &bar_ops, NULL);
	CHECK_EQ(pci_register(bus, &full[1]), -ENOSPC);
	for (i = 1; i < PCI_MAX_SLOTS; i++)
		pci_dev_init(&full[i], 1, 2, 0, 0, 0);
	for (i = 1; i < PCI_MAX_SLOTS - 2; i++)
		CHECK_EQ(pci_register(bus, &full[i]), 0);
	CHECK_EQ(pci_register(bus, &full[PCI_MAX_SLOTS - 1]), -ENOSPC);
	pci_bus_free(bus);
	io_bus_free(&vm.mmio);
	io_bus_free(&vm.pio);
	return test_done();
}
