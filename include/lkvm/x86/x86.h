/*
 * x86.h - state the x86 arch code keeps per VM (vm->arch).  Filled by
 * vm_init/load_kernel on the creating thread; read-only afterwards.
 */
#ifndef LKVM_X86_X86_H
#define LKVM_X86_X86_H

#include <linux/kvm.h>

#include "lkvm/pci.h"
#include "lkvm/x86/boot.h"

struct lkvm;
struct vcpu;

struct x86_vm {
	struct x86_boot boot;
	struct kvm_cpuid2 *cpuid;	/* what KVM supports, unmodified */
	struct pci_dev host_bridge;
	uint32_t pci_addr;		/* 0xcf8 latch (vCPU threads, atomic) */
};

int x86_cpuid_init(struct lkvm *vm, struct x86_vm *x, char *err,
		   size_t errlen);
int x86_cpuid_setup(struct vcpu *v, const struct kvm_cpuid2 *supported,
		    unsigned int ncpus);
/* CPUID.1 EAX and EDX from what KVM supports, for the MP table. */
void x86_cpuid_signature(const struct kvm_cpuid2 *c, uint32_t *sig,
			 uint32_t *features);

int x86_msrs_setup(struct vcpu *v);
int x86_lapic_setup(struct vcpu *v);
int x86_regs_setup(struct vcpu *v, const struct x86_boot *b);
void x86_regs_dump(struct vcpu *v, char *buf, size_t len);
/* Writes the boot GDT and (for 64-bit entry) identity page tables. */
int x86_boot_tables(struct guest_memory *m, const struct x86_boot *b);

int x86_pci_ports_init(struct lkvm *vm, struct x86_vm *x);
int x86_i8042_init(struct lkvm *vm);
int x86_debug_exit_init(struct lkvm *vm);
/* The ACPI sleep registers (acpi_pm.c). */
int x86_acpi_pm_init(struct lkvm *vm);

#endif
