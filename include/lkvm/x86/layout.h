/*
 * layout.h - where lkvm puts things in an x86 guest's physical address
 * space.  The low 1 MiB holds the boot structures; the 3-4 GiB hole holds
 * PCI BARs and the interrupt controllers.
 */
#ifndef LKVM_X86_LAYOUT_H
#define LKVM_X86_LAYOUT_H

#define X86_GDT_ADDR		0x500ULL
#define X86_START_INFO_ADDR	0x6000ULL	/* PVH start info + tables */
#define X86_ZERO_PAGE_ADDR	0x7000ULL	/* bzImage boot_params */
#define X86_PML4_ADDR		0x9000ULL	/* 64-bit boot page tables: */
#define X86_PDPT_ADDR		0xa000ULL	/* PML4, PDPT and four PDs */
#define X86_PD_ADDR		0xb000ULL	/* identity-mapping 4 GiB */
#define X86_FLAT_LOAD_ADDR	0x10000ULL	/* flat binaries, CS=0x1000 */
#define X86_CMDLINE_ADDR	0x20000ULL
#define X86_CMDLINE_MAX		0x10000ULL
#define X86_EBDA_START		0x9fc00ULL	/* reserved up to 1 MiB */
#define X86_ACPI_ADDR		0xe0000ULL	/* RSDP, where a scan finds it */
#define X86_ACPI_MAX		0x10000ULL
#define X86_MPTABLE_ADDR	0xf0000ULL
#define X86_MPTABLE_MAX		0x10000ULL
#define X86_HIGH_MEM		0x100000ULL	/* where bzImage kernels go */

#define X86_PCI_MMIO_BASE	0xc0000000ULL	/* start of the MMIO hole */
#define X86_PCI_MMIO_SIZE	0x10000000ULL
#define X86_DEV_MMIO_BASE	0xd0000000ULL	/* platform devices (virtio-mmio) */
#define X86_DEV_MMIO_SIZE	0x4000ULL	/* 32 windows of 0x200 */
#define X86_DEV_GSI		16		/* level-triggered device lines: */
#define X86_DEV_GSIS		8		/* pins 16-23, shared round-robin */
#define X86_MSI_GSI_BASE	24		/* past the I/O APIC's pins */
#define X86_IOAPIC_ADDR		0xfec00000ULL
#define X86_LAPIC_ADDR		0xfee00000ULL
#define X86_IDENTITY_MAP_ADDR	0xfffbc000ULL	/* KVM's private pages */
#define X86_TSS_ADDR		0xfffbd000ULL
#define X86_LOW_MEM_END		0xc0000000ULL	/* RAM above goes to 4 GiB+ */
#define X86_4G			0x100000000ULL

#define X86_PCI_IO_BASE		0xc000
#define X86_PCI_IO_SIZE		0x4000

/* Selectors of the boot GDT (Linux's __BOOT_CS and __BOOT_DS match). */
#define X86_SEL_CODE32		0x08
#define X86_SEL_CODE64		0x10
#define X86_SEL_DATA		0x18
#define X86_SEL_TSS		0x20

/* Fixed I/O ports. */
#define X86_COM1_PORT		0x3f8
#define X86_COM1_IRQ		4
#define X86_DEBUG_EXIT_PORT	0x501	/* status = byte written */
#define X86_I8042_PORT		0x60	/* 0x60 and 0x64 */
#define X86_PCI_CONFIG_PORT	0xcf8	/* 0xcf8 address, 0xcfc data */

#define X86_MAX_CPUS		254	/* xAPIC IDs; 255 is broadcast, the IOAPIC takes ncpus */

#endif
