/*
 * layout.h - where lkvm puts things in an arm64 guest's physical address
 * space, and which interrupts they use.  Everything below 2 GiB is
 * devices; RAM starts at 2 GiB.  "SPI n" is GIC INTID 32 + n, and the
 * GSI KVM's irqfds and our vm_irq_line() take for it is n.
 */
#ifndef LKVM_ARM64_LAYOUT_H
#define LKVM_ARM64_LAYOUT_H

#define ARM64_GICD_BASE		0x08000000ULL	/* distributor, 64 KiB */
#define ARM64_GICD_SIZE		0x10000ULL
#define ARM64_GICC_BASE		0x08010000ULL	/* GICv2 CPU interface, 8 KiB */
#define ARM64_GICC_SIZE		0x2000ULL
#define ARM64_GICV2_DIST_SIZE	0x1000ULL
#define ARM64_GICV2_MAX_CPUS	8
#define ARM64_ITS_BASE		0x08080000ULL	/* ITS, 128 KiB */
#define ARM64_ITS_SIZE		0x20000ULL
#define ARM64_UART_BASE		0x09000000ULL
#define ARM64_UART_SIZE		0x1000ULL
#define ARM64_PVPANIC_BASE	0x09010000ULL
#define ARM64_GICR_BASE		0x0a000000ULL	/* redistributors, 128 KiB a vCPU */
#define ARM64_GICR_STRIDE	0x20000ULL
#define ARM64_MAX_CPUS		256		/* up to 0x0c000000 */
#define ARM64_DEV_MMIO_BASE	0x0c000000ULL
#define ARM64_DEV_MMIO_SIZE	0x4000ULL	/* 32 windows of 0x200 */
#define ARM64_PVTIME_BASE	0x0d000000ULL	/* stolen-time records, 64 B a vCPU */
#define ARM64_PVTIME_SIZE	0x10000ULL
#define ARM64_PCI_ECAM_BASE	0x10000000ULL	/* bus 0 only: 1 MiB */
#define ARM64_PCI_ECAM_SIZE	0x100000ULL
#define ARM64_PCI_MMIO_BASE	0x20000000ULL	/* 32-bit BAR window */
#define ARM64_PCI_MMIO_SIZE	0x20000000ULL
#define ARM64_RAM_BASE		0x80000000ULL

#define ARM64_PMU_PPI		7		/* INTID 23, as on QEMU's virt */
#define ARM64_UART_SPI		1
#define ARM64_DEV_SPI		16		/* 16-23, level, shared round-robin */
#define ARM64_DEV_SPIS		8
#define ARM64_NR_IRQS		128		/* INTIDs the vGIC has */
#define ARM64_MSI_GSI_BASE	(ARM64_NR_IRQS - 32)

/* Where the kernel, its device tree and the initrd go in RAM. */
#define ARM64_KERNEL_ALIGN	0x200000ULL	/* 2 MiB */
#define ARM64_FDT_MAX		0x200000ULL

#endif
