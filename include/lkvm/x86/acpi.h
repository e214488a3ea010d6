/*
 * acpi.h - the ACPI tables of an x86 guest: RSDP, XSDT, FADT (hardware-
 * reduced, with sleep control and status registers), MADT and a DSDT
 * describing COM1, the virtio-mmio windows, the PCI host bridge with its
 * INTx routing, and \_S5.  Pure: built into a buffer for a guest-physical
 * address; unit-tested against iasl.
 */
#ifndef LKVM_X86_ACPI_H
#define LKVM_X86_ACPI_H

#include <stddef.h>
#include <stdint.h>

#include "lkvm/x86/mptable.h"

/* The sleep registers' I/O ports (x86/acpi_pm.c serves them). */
#define ACPI_PM_SLEEP_CONTROL	0x600
#define ACPI_PM_SLEEP_STATUS	0x601
#define ACPI_SLP_TYP_S5		5	/* \_S5's SLP_TYP: power off */
#define ACPI_SLP_EN		0x20	/* SLP_EN in the control register */
#define ACPI_SLP_TYP_SHIFT	2

#define ACPI_MAX_MMIO_DEVS	32
#define ACPI_MAX_TABLES		5

struct acpi_mmio_dev {
	uint64_t base, size;
	unsigned int gsi;
};

struct acpi_params {
	unsigned int ncpus;
	const struct acpi_mmio_dev *mmio;
	unsigned int nmmio;
	const struct mptable_pci_irq *pci_irqs;
	unsigned int npci_irqs;
};

/* Where each table landed, for --dump-acpi. */
struct acpi_table_loc {
	char sig[5];
	size_t off, len;
};

/*
 * Writes the tables into buf, which the guest will see at gpa (the RSDP
 * first, 16-byte aligned).  Returns the bytes used, -ENOSPC or -EINVAL;
 * fills loc[] (ACPI_MAX_TABLES) and *nloc if loc is not NULL.
 */
int acpi_build(uint8_t *buf, size_t len, uint64_t gpa,
	       const struct acpi_params *p, struct acpi_table_loc *loc,
	       unsigned int *nloc);

#endif
