/*
 * pvpanic.h - the QEMU-compatible pvpanic PCI device (1b36:0011): a guest
 * that panics writes to its BAR and the run ends with LKVM_EXIT_PANIC.
 * Linux binds its pvpanic-pci driver to it.
 */
#ifndef LKVM_PVPANIC_H
#define LKVM_PVPANIC_H

struct lkvm;

int pvpanic_pci_create(struct lkvm *vm);
#define PVPANIC_MMIO_SIZE 2
int pvpanic_mmio_create(struct lkvm *vm, uint64_t base);

#define PVPANIC_PANICKED	(1u << 0)
#define PVPANIC_CRASH_LOADED	(1u << 1)

#endif
