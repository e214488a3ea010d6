/*
 * pci.h - a PCI bus 0 with type-0 configuration spaces, BAR sizing and
 * relocation, shared by both architectures (x86 reaches it through ports
 * 0xcf8/0xcfc, arm64 through ECAM).  Config accesses come from vCPU
 * threads and are serialised by the bus lock; BAR moves re-register the
 * device's range on the MMIO or PIO bus.
 */
#ifndef LKVM_PCI_H
#define LKVM_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "lkvm/bus.h"
#include "lkvm/log.h"

#define PCI_MAX_SLOTS 32
#define PCI_CFG_SIZE 256

struct lkvm;

struct pci_bar {
	uint32_t size;		/* 0: unused; power of two, >= 16 */
	bool io;		/* port I/O instead of memory */
	const struct io_ops *ops;
	void *opaque;
	uint64_t mapped_at;	/* valid if mapped */
	bool mapped;
};

#define PCI_CAP_START 0x40		/* capabilities live from here up */
#define PCI_CAP_ID_MSIX 0x11
#define PCI_CAP_ID_VENDOR 0x09

struct pci_dev {
	uint8_t cfg[PCI_CFG_SIZE];
	struct pci_bar bars[6];
	unsigned int slot;
	unsigned int cap_end;		/* next free capability offset */
	/*
	 * Optional hooks, called with the bus lock held from the vCPU
	 * thread doing the access.  cfg_write sees every write at or above
	 * PCI_CAP_START and stores what it accepts in cfg[] itself;
	 * cfg_read may replace what was read there.  bar_map follows a
	 * memory or I/O BAR as the guest maps, moves or unmaps it.
	 */
	void (*cfg_write)(struct pci_dev *dev, unsigned int off,
			  const void *data, unsigned int len);
	void (*cfg_read)(struct pci_dev *dev, unsigned int off, void *data,
			 unsigned int len);
	void (*bar_map)(struct pci_dev *dev, unsigned int n, uint64_t addr,
			bool mapped);
	/* Called by pci_bus_free(): frees the object embedding the dev. */
	void (*release)(struct pci_dev *dev);
	struct log_limit warn_bar;	/* BARs placed over another device */
};

struct pci_bus {
	struct lkvm *vm;
	pthread_mutex_t lock;
	struct pci_dev *slots[PCI_MAX_SLOTS];
	uint64_t mmio_next, mmio_end;	/* BAR allocation window */
	uint32_t io_next, io_end;
};

void pci_bus_init(struct pci_bus *bus, struct lkvm *vm, uint64_t mmio_base,
		  uint64_t mmio_size, uint32_t io_base, uint32_t io_size);
void pci_bus_free(struct pci_bus *bus);

/* Fills the identity fields of a config space. */
void pci_dev_init(struct pci_dev *dev, uint16_t vendor, uint16_t device,
		  uint32_t class_code, uint16_t subsys_vendor,
		  uint16_t subsys_id);
/* Describes BAR n before pci_register(). */
void pci_dev_set_bar(struct pci_dev *dev, unsigned int n, uint32_t size,
		     bool io, const struct io_ops *ops, void *opaque);
/*
 * Appends a capability (its first byte the ID; the next pointer is
 * filled in) and returns its config offset, or -ENOSPC.
 */
int pci_dev_add_cap(struct pci_dev *dev, const void *cap, unsigned int len);
/* Sets the INTx pin (1 = INTA) and the line it is wired to. */
void pci_dev_set_intx(struct pci_dev *dev, unsigned int pin,
		      unsigned int line);
/* True while the command register's INTx-disable bit is clear. */
bool pci_dev_intx_enabled(const struct pci_dev *dev);
/* Picks a slot, assigns and maps the BARs. */
int pci_register(struct pci_bus *bus, struct pci_dev *dev);

/* Unmaps the BARs and empties the slot (the dev is the caller's). */
void pci_unregister(struct pci_bus *bus, struct pci_dev *dev);

/* Config space of bus 0 by device/function/offset; others read ones. */
void pci_cfg_read(struct pci_bus *bus, unsigned int devfn, unsigned int off,
		  void *data, unsigned int len);
void pci_cfg_write(struct pci_bus *bus, unsigned int devfn, unsigned int off,
		   const void *data, unsigned int len);

#endif
