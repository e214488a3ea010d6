/*
 * mptable.h - the Intel MultiProcessor Specification 1.4 tables through
 * which guests without ACPI find their CPUs, the I/O APIC and interrupt
 * routing.
 */
#ifndef LKVM_X86_MPTABLE_H
#define LKVM_X86_MPTABLE_H

#include <stddef.h>
#include <stdint.h>

struct mptable_pci_irq {
	uint8_t slot;		/* device number on bus 0 */
	uint8_t pin;		/* 1 = INTA# .. 4 = INTD# */
	uint8_t ioapic_pin;
};

struct mptable_params {
	unsigned int ncpus;
	uint32_t cpu_signature;	/* CPUID.1:EAX */
	uint32_t cpu_features;	/* CPUID.1:EDX */
	const struct mptable_pci_irq *pci_irqs;
	unsigned int npci_irqs;
	/* Level-triggered, active-high lines (virtio-mmio), pin = irq. */
	unsigned int level_gsi_base;
	unsigned int nlevel_gsis;
};

/*
 * Writes the floating pointer and the configuration table into buf, which
 * will sit at guest-physical base.  Returns the bytes used or -ENOSPC.
 */
int mptable_build(uint8_t *buf, size_t len, uint32_t base,
		  const struct mptable_params *p);

#define MPTABLE_IOAPIC_PINS 24

#endif
