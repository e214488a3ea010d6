/*
 * dt.c - the device tree lkvm hands an arm64 guest: memory, CPUs
 * (PSCI 0.2 through HVC), the architected timer, the PMU when the vCPUs
 * have one, the GICv3 (and ITS),
 * the 8250 UART, pvpanic, the MMIO devices that published themselves,
 * and the ECAM PCI host with its INTx map and MSI map, plus /chosen.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lkvm/arch.h"
#include "lkvm/device.h"
#include "lkvm/arm64/arm64.h"
#include "lkvm/arm64/layout.h"
#include "lkvm/lib/fdt.h"
#include "lkvm/pci.h"
#include "lkvm/vm.h"

#define PHANDLE_GIC	1
#define PHANDLE_ITS	2
#define GIC_SPI		0
#define GIC_PPI		1
#define IRQ_LEVEL_HIGH	4

uint32_t arm64_mpidr(unsigned int id)
{
	return (id & 0xf) | ((id >> 4) & 0xff) << 8 | ((id >> 12) & 0xff) << 16;
}

static void reg64(struct fdt *f, uint64_t base, uint64_t size)
{
	uint32_t c[4] = { base >> 32, (uint32_t)base, size >> 32,
			  (uint32_t)size };

	fdt_prop_cells(f, "reg", c, 4);
}

static void spi(struct fdt *f, unsigned int n)
{
	uint32_t c[3] = { GIC_SPI, n, IRQ_LEVEL_HIGH };

	fdt_prop_cells(f, "interrupts", c, 3);
}

static void dt_cpus(struct fdt *f, struct lkvm *vm)
{
	char name[32];
	unsigned int i;

	fdt_begin_node(f, "cpus");
	fdt_prop_u32(f, "#address-cells", 1);
	fdt_prop_u32(f, "#size-cells", 0);
	for (i = 0; i < vm->cfg.cpus; i++) {
		snprintf(name, sizeof(name), "cpu@%x", arm64_mpidr(i));
		fdt_begin_node(f, name);
		fdt_prop_string(f, "device_type", "cpu");
		fdt_prop_string(f, "compatible", "arm,arm-v8");
		fdt_prop_string(f, "enable-method", "psci");
		fdt_prop_u32(f, "reg", arm64_mpidr(i));
		fdt_end_node(f);
	}
	fdt_end_node(f);
}

static void dt_gicv2(struct fdt *f)
{
	uint32_t reg[8] = {
		0, ARM64_GICD_BASE, 0, ARM64_GICV2_DIST_SIZE,
		0, ARM64_GICC_BASE, 0, ARM64_GICC_SIZE,
	};
	char name[32];

	snprintf(name, sizeof(name), "intc@%llx",
		 (unsigned long long)ARM64_GICD_BASE);
	fdt_begin_node(f, name);
	fdt_prop_string(f, "compatible", "arm,cortex-a15-gic");
	fdt_prop_u32(f, "#interrupt-cells", 3);
	fdt_prop_empty(f, "interrupt-controller");
	fdt_prop_u32(f, "#address-cells", 0);
	fdt_prop_cells(f, "reg", reg, 8);
	fdt_prop_u32(f, "phandle", PHANDLE_GIC);
	fdt_end_node(f);
}

static void dt_gic(struct fdt *f, struct lkvm *vm)
{
	struct arm64_vm *a = vm->arch;
	uint32_t reg[8] = {
		0, ARM64_GICD_BASE, 0, ARM64_GICD_SIZE,
		0, ARM64_GICR_BASE, 0, ARM64_GICR_STRIDE * vm->cfg.cpus,
	};
	char name[32];

	if (a->gicv2) {
		dt_gicv2(f);
		return;
	}
	snprintf(name, sizeof(name), "intc@%llx",
		 (unsigned long long)ARM64_GICD_BASE);
	fdt_begin_node(f, name);
	fdt_prop_string(f, "compatible", "arm,gic-v3");
	fdt_prop_u32(f, "#interrupt-cells", 3);
	fdt_prop_empty(f, "interrupt-controller");
	fdt_prop_cells(f, "reg", reg, 8);
	fdt_prop_u32(f, "#address-cells", 2);
	fdt_prop_u32(f, "#size-cells", 2);
	fdt_prop_empty(f, "ranges");
	fdt_prop_u32(f, "phandle", PHANDLE_GIC);
	if (a->its_fd >= 0) {
		snprintf(name, sizeof(name), "msi-controller@%llx",
			 (unsigned long long)ARM64_ITS_BASE);
		fdt_begin_node(f, name);
		fdt_prop_string(f, "compatible", "arm,gic-v3-its");
		fdt_prop_empty(f, "msi-controller");
		fdt_prop_u32(f, "#msi-cells", 1);
		reg64(f, ARM64_ITS_BASE, ARM64_ITS_SIZE);
		fdt_prop_u32(f, "phandle", PHANDLE_ITS);
		fdt_end_node(f);
	}
	fdt_end_node(f);
}

static void dt_timer_psci(struct fdt *f, struct lkvm *vm)
{
	struct arm64_vm *a = vm->arch;
	/* A GICv2 PPI specifier also names the CPUs it reaches. */
	uint32_t fl = IRQ_LEVEL_HIGH |
		      (a->gicv2 ? ((1u << vm->cfg.cpus) - 1) << 8 : 0);
	/* Secure and non-secure physical, virtual, hypervisor timers. */
	uint32_t t[12] = {
		GIC_PPI, 13, fl, GIC_PPI, 14, fl,
		GIC_PPI, 11, fl, GIC_PPI, 10, fl,
	};

	fdt_begin_node(f, "timer");
	fdt_prop_string(f, "compatible", "arm,armv8-timer");
	fdt_prop_cells(f, "interrupts", t, 12);
	fdt_prop_empty(f, "always-on");
	fdt_end_node(f);
	if (a->pmu) {
		uint32_t p[3] = { GIC_PPI, ARM64_PMU_PPI, fl };

		fdt_begin_node(f, "pmu");
		fdt_prop_string(f, "compatible", "arm,armv8-pmuv3");
		fdt_prop_cells(f, "interrupts", p, 3);
		fdt_end_node(f);
	}
	fdt_begin_node(f, "psci");
	fdt_prop_string(f, "compatible", "arm,psci-0.2");
	fdt_prop_string(f, "method", "hvc");
	fdt_end_node(f);
}

/* A node for each MMIO device that published itself (device.h). */
static void dt_resource(void *opaque, const struct vm_resource *r)
{
	struct fdt *f = opaque;
	char name[48];

	if (!r->dt_compatible || !r->size)
		return;
	snprintf(name, sizeof(name), "%s@%llx", r->dt_name,
		 (unsigned long long)r->base);
	fdt_begin_node(f, name);
	fdt_prop_string(f, "compatible", r->dt_compatible);
	reg64(f, r->base, r->size);
	if (r->irq >= 0)
		spi(f, r->irq);
	if (r->dt_dma_coherent)
		fdt_prop_empty(f, "dma-coherent");
	fdt_end_node(f);
}

static void dt_devices(struct fdt *f, struct lkvm *vm)
{
	char name[48];

	snprintf(name, sizeof(name), "uart@%llx",
		 (unsigned long long)ARM64_UART_BASE);
	fdt_begin_node(f, name);
	fdt_prop_string(f, "compatible", "ns16550a");
	reg64(f, ARM64_UART_BASE, ARM64_UART_SIZE);
	spi(f, ARM64_UART_SPI);
	fdt_prop_u32(f, "clock-frequency", 1843200);
	fdt_end_node(f);

	snprintf(name, sizeof(name), "pvpanic@%llx",
		 (unsigned long long)ARM64_PVPANIC_BASE);
	fdt_begin_node(f, name);
	fdt_prop_string(f, "compatible", "qemu,pvpanic-mmio");
	reg64(f, ARM64_PVPANIC_BASE, 2);
	fdt_end_node(f);

	vm_resources_each(vm, dt_resource, f);
}

static void dt_pci(struct fdt *f, struct lkvm *vm)
{
	struct arm64_vm *a = vm->arch;
	/* 32-bit memory space, CPU address = PCI address. */
	uint32_t ranges[7] = {
		0x02000000, 0, ARM64_PCI_MMIO_BASE,
		0, ARM64_PCI_MMIO_BASE, 0, ARM64_PCI_MMIO_SIZE,
	};
	uint32_t map[PCI_MAX_SLOTS * 10], mask[4] = { 0xf800, 0, 0, 7 };
	uint32_t msi[4] = { 0, PHANDLE_ITS, 0, 0x10000 };
	uint32_t bus_range[2] = { 0, 0 };
	unsigned int slot, n = 0;
	char name[32];

	snprintf(name, sizeof(name), "pcie@%llx",
		 (unsigned long long)ARM64_PCI_ECAM_BASE);
	fdt_begin_node(f, name);
	fdt_prop_string(f, "compatible", "pci-host-ecam-generic");
	fdt_prop_string(f, "device_type", "pci");
	fdt_prop_u32(f, "#address-cells", 3);
	fdt_prop_u32(f, "#size-cells", 2);
	fdt_prop_u32(f, "#interrupt-cells", 1);
	fdt_prop_cells(f, "bus-range", bus_range, 2);
	reg64(f, ARM64_PCI_ECAM_BASE, ARM64_PCI_ECAM_SIZE);
	fdt_prop_cells(f, "ranges", ranges, 7);
	fdt_prop_empty(f, "dma-coherent");
	/* INTx: each device's pin to the SPI written in its line register. */
	for (slot = 0; slot < PCI_MAX_SLOTS; slot++) {
		struct pci_dev *d = vm->pci.slots[slot];
		uint32_t *e = map + 10 * n;

		if (!d || !d->cfg[0x3d])
			continue;
		e[0] = slot << 11;
		e[1] = e[2] = 0;
		e[3] = d->cfg[0x3d];
		e[4] = PHANDLE_GIC;
		e[5] = e[6] = 0;
		e[7] = GIC_SPI;
		e[8] = d->cfg[0x3c];
		e[9] = IRQ_LEVEL_HIGH;
		n++;
	}
	if (n) {
		fdt_prop_cells(f, "interrupt-map", map, 10 * n);
		fdt_prop_cells(f, "interrupt-map-mask", mask, 4);
	}
	/* Requester ID n is ITS device ID n (msi-map; no msi-parent too). */
	if (a->its_fd >= 0)
		fdt_prop_cells(f, "msi-map", msi, 4);
	fdt_end_node(f);
}

long arm64_fdt_build(struct lkvm *vm, uint8_t **blob)
{
	struct arm64_vm *a = vm->arch;
	char name[32], stdout_path[40], *cmdline = vm_kernel_cmdline(vm, false);
	struct fdt f;

	if (!cmdline)
		return -ENOMEM;

	fdt_init(&f);
	fdt_begin_node(&f, "");
	fdt_prop_string(&f, "compatible", "linux,dummy-virt");
	fdt_prop_u32(&f, "#address-cells", 2);
	fdt_prop_u32(&f, "#size-cells", 2);
	fdt_prop_u32(&f, "interrupt-parent", PHANDLE_GIC);

	fdt_begin_node(&f, "chosen");
	fdt_prop_string(&f, "bootargs", cmdline);
	free(cmdline);
	snprintf(stdout_path, sizeof(stdout_path), "/uart@%llx",
		 (unsigned long long)ARM64_UART_BASE);
	fdt_prop_string(&f, "stdout-path", stdout_path);
	if (a->initrd_size) {
		fdt_prop_u64(&f, "linux,initrd-start", a->initrd);
		fdt_prop_u64(&f, "linux,initrd-end",
			     a->initrd + a->initrd_size);
	}
	/* Our BARs are assigned already; Linux need not move them. */
	fdt_prop_u32(&f, "linux,pci-probe-only", 1);
	fdt_end_node(&f);

	snprintf(name, sizeof(name), "memory@%llx",
		 (unsigned long long)ARM64_RAM_BASE);
	fdt_begin_node(&f, name);
	fdt_prop_string(&f, "device_type", "memory");
	reg64(&f, ARM64_RAM_BASE, vm->cfg.mem_mib << 20);
	fdt_end_node(&f);

	dt_cpus(&f, vm);
	dt_timer_psci(&f, vm);
	dt_gic(&f, vm);
	dt_devices(&f, vm);
	dt_pci(&f, vm);
	fdt_end_node(&f);
	return fdt_finish(&f, blob);
}
