/*
 * pci.c - bus 0 of a PCI hierarchy: configuration spaces, BAR sizing and
 * relocation.  Config accesses arrive from vCPU threads through the arch's
 * config mechanism (x86 ports 0xcf8/0xcfc); bus->lock serialises them.
 * BARs are mapped on the MMIO/PIO bus while the command register enables
 * decoding and the address is set; moving a BAR re-registers its range.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lkvm/log.h"
#include "lkvm/pci.h"
#include "lkvm/lib/util.h"
#include "lkvm/vm.h"

#define PCI_VENDOR_ID		0x00
#define PCI_DEVICE_ID		0x02
#define PCI_COMMAND		0x04
#define  PCI_COMMAND_IO		0x1
#define  PCI_COMMAND_MEMORY	0x2
#define PCI_STATUS		0x06
#define  PCI_STATUS_CAP_LIST	0x10
#define PCI_REVISION		0x08
#define PCI_CLASS_PROG		0x09
#define PCI_HEADER_TYPE		0x0e
#define PCI_BAR0		0x10
#define PCI_SUBSYS_VENDOR	0x2c
#define PCI_SUBSYS_ID		0x2e
#define PCI_CAP_PTR		0x34
#define PCI_INTERRUPT_LINE	0x3c
#define PCI_INTERRUPT_PIN	0x3d

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v;
	p[1] = v >> 8;
}

static uint32_t get32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v);
	put16(p + 2, v >> 16);
}

void pci_bus_init(struct pci_bus *bus, struct lkvm *vm, uint64_t mmio_base,
		  uint64_t mmio_size, uint32_t io_base, uint32_t io_size)
{
	memset(bus, 0, sizeof(*bus));
	bus->vm = vm;
	pthread_mutex_init(&bus->lock, NULL);
	bus->mmio_next = mmio_base;
	bus->mmio_end = mmio_base + mmio_size;
	bus->io_next = io_base;
	bus->io_end = io_base + io_size;
}

void pci_bus_free(struct pci_bus *bus)
{
	unsigned int i;

	for (i = 0; i < PCI_MAX_SLOTS; i++)
		if (bus->slots[i] && bus->slots[i]->release)
			bus->slots[i]->release(bus->slots[i]);
	pthread_mutex_destroy(&bus->lock);
}

void pci_dev_init(struct pci_dev *dev, uint16_t vendor, uint16_t device,
		  uint32_t class_code, uint16_t subsys_vendor,
		  uint16_t subsys_id)
{
	memset(dev, 0, sizeof(*dev));
	put16(dev->cfg + PCI_VENDOR_ID, vendor);
	put16(dev->cfg + PCI_DEVICE_ID, device);
	dev->cfg[PCI_CLASS_PROG] = class_code;
	dev->cfg[PCI_CLASS_PROG + 1] = class_code >> 8;
	dev->cfg[PCI_CLASS_PROG + 2] = class_code >> 16;
	dev->cfg[PCI_HEADER_TYPE] = 0;
	put16(dev->cfg + PCI_SUBSYS_VENDOR, subsys_vendor);
	put16(dev->cfg + PCI_SUBSYS_ID, subsys_id);
}

void pci_dev_set_bar(struct pci_dev *dev, unsigned int n, uint32_t size,
		     bool io, const struct io_ops *ops, void *opaque)
{
	if (n >= ARRAY_SIZE(dev->bars))
		return;
	dev->bars[n] = (struct pci_bar){ .size = size, .io = io, .ops = ops,
					 .opaque = opaque };
	put32(dev->cfg + PCI_BAR0 + 4 * n, io ? 1 : 0);
}

int pci_dev_add_cap(struct pci_dev *dev, const void *cap, unsigned int len)
{
	unsigned int off, p;

	if (!dev->cap_end)
		dev->cap_end = PCI_CAP_START;
	off = ALIGN_UP(dev->cap_end, 4);
	if (len < 2 || off + len > PCI_CFG_SIZE)
		return -ENOSPC;
	memcpy(dev->cfg + off, cap, len);
	dev->cfg[off + 1] = 0;
	/* Chain it after the last one. */
	for (p = PCI_CAP_PTR; dev->cfg[p]; p = dev->cfg[p] + 1)
		;
	dev->cfg[p] = off;
	dev->cfg[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
	dev->cap_end = off + len;
	return off;
}

void pci_dev_set_intx(struct pci_dev *dev, unsigned int pin,
		      unsigned int line)
{
	dev->cfg[PCI_INTERRUPT_PIN] = pin;
	dev->cfg[PCI_INTERRUPT_LINE] = line;
}

bool pci_dev_intx_enabled(const struct pci_dev *dev)
{
	/* Command bit 10; read without the lock: a byte is atomic. */
	return !(__atomic_load_n(&dev->cfg[PCI_COMMAND + 1], __ATOMIC_RELAXED) &
		 0x04);
}

static uint64_t pci_bar_addr(const struct pci_dev *dev, unsigned int n)
{
	uint32_t v = get32(dev->cfg + PCI_BAR0 + 4 * n);

	return dev->bars[n].io ? v & ~3u : v & ~0xfu;
}

/* Brings BAR n's bus registration in line with its config registers. */
static void pci_bar_update(struct pci_bus *bus, struct pci_dev *dev,
			   unsigned int n)
{
	struct pci_bar *bar = &dev->bars[n];
	struct io_bus *iob = bar->io ? &bus->vm->pio : &bus->vm->mmio;
	uint16_t cmd = dev->cfg[PCI_COMMAND] | dev->cfg[PCI_COMMAND + 1] << 8;
	bool enabled = cmd & (bar->io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY);
	uint64_t addr = pci_bar_addr(dev, n);
	/* An all-ones sizing pattern is not a place to decode at. */
	bool want = enabled && addr && addr != ALIGN_DOWN(
			bar->io ? 0xffffu : 0xffffffffu, bar->size) &&
		    (!bar->io || addr + bar->size <= 0x10000);

	if (bar->mapped && (!want || bar->mapped_at != addr)) {
		io_bus_unregister(iob, bar->mapped_at);
		bar->mapped = false;
		if (dev->bar_map)
			dev->bar_map(dev, n, bar->mapped_at, false);
	}
	if (want && !bar->mapped) {
		if (io_bus_register(iob, addr, bar->size, bar->ops,
				    bar->opaque) == 0) {
			bar->mapped = true;
			bar->mapped_at = addr;
			if (dev->bar_map)
				dev->bar_map(dev, n, addr, true);
		} else {
			vm_warn_limited(bus->vm, &dev->warn_bar,
					"pci %02x.0: BAR%u at 0x%llx overlaps another device; not decoded",
					dev->slot, n, (unsigned long long)addr);
		}
	}
}

int pci_register(struct pci_bus *bus, struct pci_dev *dev)
{
	unsigned int slot, n;

	for (slot = 0; slot < PCI_MAX_SLOTS && bus->slots[slot]; slot++)
		;
	if (slot == PCI_MAX_SLOTS)
		return -ENOSPC;
	dev->slot = slot;
	for (n = 0; n < ARRAY_SIZE(dev->bars); n++) {
		struct pci_bar *bar = &dev->bars[n];
		uint64_t addr;

		if (!bar->size)
			continue;
		if (bar->size < 16 || (bar->size & (bar->size - 1)))
			return -EINVAL;
		if (bar->io) {
			addr = ALIGN_UP((uint64_t)bus->io_next, bar->size);
			if (addr + bar->size > bus->io_end)
				return -ENOSPC;
			bus->io_next = addr + bar->size;
			put32(dev->cfg + PCI_BAR0 + 4 * n, addr | 1);
		} else {
			addr = ALIGN_UP(bus->mmio_next, bar->size);
			if (addr + bar->size > bus->mmio_end)
				return -ENOSPC;
			bus->mmio_next = addr + bar->size;
			put32(dev->cfg + PCI_BAR0 + 4 * n, addr);
		}
	}
	/* Decoding on, as firmware would leave it. */
	dev->cfg[PCI_COMMAND] |= PCI_COMMAND_IO | PCI_COMMAND_MEMORY;
	bus->slots[slot] = dev;
	for (n = 0; n < ARRAY_SIZE(dev->bars); n++)
		if (dev->bars[n].size)
			pci_bar_update(bus, dev, n);
	return 0;
}

void pci_unregister(struct pci_bus *bus, struct pci_dev *dev)
{
	unsigned int n;

	pthread_mutex_lock(&bus->lock);
	if (dev->slot < PCI_MAX_SLOTS && bus->slots[dev->slot] == dev) {
		char what[32];

		snprintf(what, sizeof(what), "pci %02x.0 BAR overlaps",
			 dev->slot);
		vm_log_limit_report(bus->vm, &dev->warn_bar, what);
		/* Decoding off unmaps every BAR through the usual path. */
		dev->cfg[PCI_COMMAND] &= ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
		for (n = 0; n < ARRAY_SIZE(dev->bars); n++)
			if (dev->bars[n].size)
				pci_bar_update(bus, dev, n);
		bus->slots[dev->slot] = NULL;
	}
	pthread_mutex_unlock(&bus->lock);
}

static struct pci_dev *pci_lookup(struct pci_bus *bus, unsigned int devfn)
{
	/* Only function 0 of each slot exists. */
	if (devfn & 7 || (devfn >> 3) >= PCI_MAX_SLOTS)
		return NULL;
	return bus->slots[devfn >> 3];
}

static bool pci_access_ok(unsigned int off, unsigned int len)
{
	return (len == 1 || len == 2 || len == 4) && off < PCI_CFG_SIZE &&
	       (off & (len - 1)) == 0;
}

void pci_cfg_read(struct pci_bus *bus, unsigned int devfn, unsigned int off,
		  void *data, unsigned int len)
{
	struct pci_dev *dev;

	memset(data, 0xff, len);
	if (!pci_access_ok(off, len))
		return;
	pthread_mutex_lock(&bus->lock);
	dev = pci_lookup(bus, devfn);
	if (dev) {
		memcpy(data, dev->cfg + off, len);
		if (off >= PCI_CAP_START && dev->cfg_read)
			dev->cfg_read(dev, off, data, len);
	}
	pthread_mutex_unlock(&bus->lock);
}

/* A BAR dword after a write: only address bits above the size stick. */
static void pci_bar_write(struct pci_bus *bus, struct pci_dev *dev,
			  unsigned int n, uint32_t v)
{
	struct pci_bar *bar = &dev->bars[n];

	if (!bar->size) {
		put32(dev->cfg + PCI_BAR0 + 4 * n, 0);
		return;
	}
	v &= ~(bar->size - 1);
	put32(dev->cfg + PCI_BAR0 + 4 * n, bar->io ? (v & ~3u) | 1 : v & ~0xfu);
	pci_bar_update(bus, dev, n);
}

void pci_cfg_write(struct pci_bus *bus, unsigned int devfn, unsigned int off,
		   const void *data, unsigned int len)
{
	struct pci_dev *dev;
	uint8_t buf[4];
	unsigned int i, n;

	if (!pci_access_ok(off, len))
		return;
	pthread_mutex_lock(&bus->lock);
	dev = pci_lookup(bus, devfn);
	if (!dev)
		goto out;
	if (off >= PCI_CAP_START) {
		if (dev->cfg_write)
			dev->cfg_write(dev, off, data, len);
		goto out;
	}
	if (off >= PCI_BAR0 && off < PCI_BAR0 + 24) {
		n = (off - PCI_BAR0) / 4;
		memcpy(buf, dev->cfg + PCI_BAR0 + 4 * n, 4);
		memcpy(buf + (off & 3), data, len);
		pci_bar_write(bus, dev, n, get32(buf));
		goto out;
	}
	for (i = 0; i < len; i++) {
		unsigned int o = off + i;
		uint8_t v = ((const uint8_t *)data)[i];

		/* Writable: command, cache line, latency, interrupt line. */
		if (o == PCI_COMMAND)
			dev->cfg[o] = v & 0x47;
		else if (o == PCI_COMMAND + 1)
			dev->cfg[o] = v & 0x05;
		else if (o == 0x0c || o == 0x0d || o == PCI_INTERRUPT_LINE)
			dev->cfg[o] = v;
	}
	if (off <= PCI_COMMAND && off + len > PCI_COMMAND)
		for (n = 0; n < ARRAY_SIZE(dev->bars); n++)
			if (dev->bars[n].size)
				pci_bar_update(bus, dev, n);
out:
	pthread_mutex_unlock(&bus->lock);
}
