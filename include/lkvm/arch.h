/*
 * arch.h - the one interface through which x86/ and arm64/ plug into the
 * arch-independent core.  Exactly one arch_ops table is linked in.
 */
#ifndef LKVM_ARCH_H
#define LKVM_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lkvm/memory.h"

struct lkvm;
struct vcpu;
struct kvm_irq_routing_entry;

struct arch_ops {
	const char *name;
	unsigned int max_cpus;
	/*
	 * The window platform devices are placed in (vm_mmio_alloc), and
	 * the level-triggered GSIs they and PCI INTx share, round-robin:
	 * the n-th ask gets dev_gsi + n % dev_gsis (vm_irq_alloc).
	 */
	uint64_t dev_mmio_base;
	uint64_t dev_mmio_size;
	unsigned int dev_gsi;
	unsigned int dev_gsis;
	/* Devices that can sit on PCI or on the window go on PCI. */
	bool pci_default;
	bool irqchip_choice;		/* cfg.irqchip means something */
	bool device_tree;		/* the guest gets one (cfg.dump_dtb) */
	bool acpi;			/* ... or ACPI tables (cfg.dump_acpi) */
	/* The default command line's serial console words. */
	const char *serial_console_args;
	/*
	 * GSI routing: the irqchip routes KVM sets up by default, which a
	 * KVM_SET_GSI_ROUTING must repeat; MSI GSIs are allocated above
	 * msi_gsi_base; MSI routes carry a device ID where the interrupt
	 * translation needs one (GICv3 ITS).
	 */
	unsigned int (*irq_routes_base)(struct kvm_irq_routing_entry *e,
					unsigned int max);
	unsigned int msi_gsi_base;
	bool msi_needs_devid;
	/* KVM_IRQ_LINE's id for a GSI, where it is not the GSI itself. */
	uint32_t (*irq_line_id)(unsigned int gsi);
	/* After every vCPU exists (an arm64 vGIC initialises then). */
	int (*vcpus_ready)(struct lkvm *vm, char *err, size_t errlen);
	/* Guest RAM layout for a VM of mem bytes; returns region count. */
	unsigned int (*mem_layout)(uint64_t mem, struct mem_region *r,
				   unsigned int max);
	/* After memory exists: irqchip, timers, platform devices. */
	int (*vm_init)(struct lkvm *vm, char *err, size_t errlen);
	/*
	 * Is a kernel whose first bytes are head a Linux kernel (which gets
	 * the default command line and network), not a flat test binary?
	 */
	bool (*kernel_is_linux)(const uint8_t *head, size_t len);
	/* Loads kernel/initrd/command line; decides the boot state. */
	int (*load_kernel)(struct lkvm *vm, char *err, size_t errlen);
	/* Per vCPU, before its thread starts. */
	int (*vcpu_init)(struct vcpu *vcpu, char *err, size_t errlen);
	/*
	 * Handles an exit reason the core does not know.  Returns 0 to keep
	 * running, 1 when the vCPU must stop (vm_request_exit done).
	 */
	int (*vcpu_exit)(struct vcpu *vcpu);
	/* Appends a register dump (and instruction bytes) to buf. */
	void (*vcpu_dump)(struct vcpu *vcpu, char *buf, size_t len);
	/* Optional: an NMI to a vCPU out of KVM_RUN (parked). */
	int (*vcpu_nmi)(struct vcpu *vcpu);
	void (*vm_free)(struct lkvm *vm);
};

extern const struct arch_ops arch_ops;

#endif
