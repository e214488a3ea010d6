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

struct pci_dev {
	uint8_t cfg[PCI_CFG_SIZE];
	struct pci_bar bars[6];
	unsigned int slot;
	/* Called by pci_bus_free(): frees the object embedding the dev. */
	void (*release)(struct pci_dev *dev);
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
/* Picks a slot, assigns and maps the BARs. */
int pci_register(struct pci_bus *bus, struct pci_dev *dev);

/* Config space of bus 0 by device/function/offset; others read ones. */
void pci_cfg_read(struct pci_bus *bus, unsigned int devfn, unsigned int off,
		  void *data, unsigned int len);
void pci_cfg_write(struct pci_bus *bus, unsigned int devfn, unsigned int off,
		   const void *data, unsigned int len);

#endif
