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

static struct { unsigned int off, len; uint8_t first; } last_write;
static int maps, unmaps;
static uint64_t mapped_at;

static void hook_write(struct pci_dev *dev, unsigned int off, const void *data,
		       unsigned int len)
{
	last_write.off = off;
	last_write.len = len;
	last_write.first = *(const uint8_t *)data;
	dev->cfg[off] = 0x77;	/* the device decides what sticks */
}

static void hook_read(struct pci_dev *dev, unsigned int off, void *data,
		      unsigned int len)
{
	(void)dev;
	if (off == 0x80 && len == 4)
		*(uint32_t *)data = 0xfeedf00d;
}

static void hook_map(struct pci_dev *dev, unsigned int n, uint64_t addr,
		     bool mapped)
{
	(void)dev;
	if (n != 0)
		return;
	if (mapped) {
		maps++;
		mapped_at = addr;
	} else {
		unmaps++;
	}
}

/* Capability lists, the device hooks and unregistering. */
static void test_caps(void)
{
	static struct lkvm vm;
	struct pci_bus *bus = &vm.pci;
	struct pci_dev dev;
	uint8_t cap_a[12] = { PCI_CAP_ID_MSIX, 0xee, 1, 2 };
	uint8_t cap_b[20] = { PCI_CAP_ID_VENDOR, 0xee, 20, 5 };
	uint8_t big[256] = { 9 };
	unsigned int devfn;
	uint8_t b;
	int a, c;

	io_bus_init(&vm.mmio);
	io_bus_init(&vm.pio);
	pci_bus_init(bus, &vm, 0xc0000000, 0x100000, 0xc000, 0x1000);
	pci_dev_init(&dev, 0x1af4, 0x1044, 0xff0000, 0x1af4, 0x40);
	CHECK_EQ(cfg32(bus, 0, 0x34) & 0xff, 0xffu);	/* no device yet */
	a = pci_dev_add_cap(&dev, cap_a, sizeof(cap_a));
	c = pci_dev_add_cap(&dev, cap_b, sizeof(cap_b));
	CHECK_EQ(a, PCI_CAP_START);
	CHECK_EQ(c, PCI_CAP_START + 12);
	CHECK_EQ(pci_dev_add_cap(&dev, big, sizeof(big)), -ENOSPC);
	CHECK_EQ(pci_dev_add_cap(&dev, big, 1), -ENOSPC);
	dev.cfg_write = hook_write;
	dev.cfg_read = hook_read;
	dev.bar_map = hook_map;
	pci_dev_set_bar(&dev, 0, 0x4000, false, &bar_ops, NULL);
	pci_dev_set_intx(&dev, 1, 17);
	CHECK_EQ(pci_register(bus, &dev), 0);
	devfn = dev.slot << 3;
	CHECK_EQ(maps, 1);
	CHECK_EQ(mapped_at, 0xc0000000);
	/* Status says there is a list; it chains a -> c -> end. */
	CHECK(cfg32(bus, devfn, 4) >> 16 & 0x10);
	CHECK_EQ(cfg32(bus, devfn, 0x34) & 0xff, (unsigned int)a);
	CHECK_EQ(cfg32(bus, devfn, a) & 0xffff, (unsigned int)(c << 8 | 0x11));
	CHECK_EQ(cfg32(bus, devfn, c) & 0xffff, 0x09u);
	CHECK_EQ(cfg32(bus, devfn, 0x3c) & 0xffff, 0x0111u);
	/* Writes in the capability area go to the device alone. */
	b = 0x5a;
	pci_cfg_write(bus, devfn, a + 3, &b, 1);
	CHECK_EQ(last_write.off, (unsigned int)a + 3);
	CHECK_EQ(last_write.len, 1u);
	CHECK_EQ(last_write.first, 0x5a);
	CHECK_EQ(cfg32(bus, devfn, a) >> 24, 0x77u);
	CHECK_EQ(cfg32(bus, devfn, 0x80), 0xfeedf00d);
	/* INTx disable (command bit 10) is visible to the device. */
	CHECK(pci_dev_intx_enabled(&dev));
	wr32(bus, devfn, 4, 0x0402);
	CHECK(!pci_dev_intx_enabled(&dev));
	/* The BAR hook follows moves and unmaps. */
	wr32(bus, devfn, 0x10, 0xc0040000);
	CHECK_EQ(unmaps, 1);
	CHECK_EQ(maps, 2);
	CHECK_EQ(mapped_at, 0xc0040000);
	pci_unregister(bus, &dev);
	CHECK_EQ(unmaps, 2);
	CHECK(!io_bus_access(&vm.mmio, 0xc0040000, &b, 1, false));
	CHECK_EQ(cfg32(bus, devfn, 0), 0xffffffff);
	pci_bus_free(bus);
	io_bus_free(&vm.mmio);
	io_bus_free(&vm.pio);
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
	test_caps();
	return test_done();
}
