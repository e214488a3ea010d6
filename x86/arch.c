/*
 * arch.c - the x86_64 arch_ops: memory layout with the 3-4 GiB hole,
 * in-kernel irqchip and PIT, the legacy platform devices (COM1, i8042
 * reset, debug-exit port, PCI config ports, pvpanic), kernel loading with
 * the e820 map and MP table, and per-vCPU CPUID/MSR/register set-up.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lkvm/arch.h"
#include "lkvm/device.h"
#include "lkvm/log.h"
#include "lkvm/platform/pvpanic.h"
#include "lkvm/platform/uart8250.h"
#include "lkvm/lib/util.h"
#include "lkvm/vcpu.h"
#include "lkvm/vm.h"
#include "lkvm/x86/acpi.h"
#include "lkvm/x86/e820.h"
#include "lkvm/x86/layout.h"
#include "lkvm/x86/mptable.h"
#include "lkvm/x86/x86.h"

static unsigned int x86_mem_layout(uint64_t mem, struct mem_region *r,
				   unsigned int max)
{
	if (max < 2)
		return 0;
	if (mem <= X86_LOW_MEM_END) {
		r[0] = (struct mem_region){ 0, mem };
		return 1;
	}
	r[0] = (struct mem_region){ 0, X86_LOW_MEM_END };
	r[1] = (struct mem_region){ X86_4G, mem - X86_LOW_MEM_END };
	return 2;
}

static int x86_vm_init(struct lkvm *vm, char *err, size_t errlen)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	uint64_t idmap = X86_IDENTITY_MAP_ADDR;
	struct x86_vm *x;
	int ret;

	x = calloc(1, sizeof(*x));
	if (!x)
		return errf(err, errlen, -ENOMEM, "out of memory");
	vm->arch = x;
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, X86_TSS_ADDR) < 0 ||
	    ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
		return errf(err, errlen, -errno, "KVM TSS set-up: %s",
			    strerror(errno));
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return errf(err, errlen, -errno,
			    "KVM_CREATE_IRQCHIP: %s", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return errf(err, errlen, -errno, "KVM_CREATE_PIT2: %s",
			    strerror(errno));
	ret = x86_cpuid_init(vm, x, err, errlen);
	if (ret)
		return ret;
	ret = uart8250_create(vm, X86_COM1_PORT, 1, X86_COM1_IRQ);
	if (!ret)
		ret = x86_i8042_init(vm);
	if (!ret)
		ret = x86_debug_exit_init(vm);
	if (!ret && !vm->cfg.no_acpi)
		ret = x86_acpi_pm_init(vm);
	if (!ret)
		ret = x86_pci_ports_init(vm, x);
	if (!ret)
		ret = pvpanic_pci_create(vm);
	if (ret)
		return errf(err, errlen, ret, "platform device set-up: %s",
			    strerror(-ret));
	return 0;
}

/*
 * The routes KVM creates with its irqchip: ISA IRQs 0-15 reach both the
 * 8259 pair and the I/O APIC, GSIs 16-23 the I/O APIC only.
 */
static unsigned int x86_irq_routes_base(struct kvm_irq_routing_entry *e,
					unsigned int max)
{
	unsigned int gsi, n = 0;

	for (gsi = 0; gsi < 24 && n + 2 <= max; gsi++) {
		if (gsi < 16)
			e[n++] = (struct kvm_irq_routing_entry){
				.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
				.u.irqchip = {
					.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER :
							     KVM_IRQCHIP_PIC_SLAVE,
					.pin = gsi % 8 },
			};
		e[n++] = (struct kvm_irq_routing_entry){
			.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC,
				       .pin = gsi },
		};
	}
	return n;
}

/* INTx routes of every PCI device that has an interrupt pin. */
static unsigned int x86_pci_irqs(struct lkvm *vm,
				 struct mptable_pci_irq *irqs)
{
	unsigned int slot, n = 0;

	for (slot = 0; slot < PCI_MAX_SLOTS; slot++) {
		struct pci_dev *d = vm->pci.slots[slot];

		if (!d || !d->cfg[0x3d])
			continue;
		irqs[n++] = (struct mptable_pci_irq){
			.slot = slot, .pin = d->cfg[0x3d],
			.ioapic_pin = d->cfg[0x3c],
		};
	}
	return n;
}

static int x86_write_mptable(struct lkvm *vm, char *err, size_t errlen)
{
	struct x86_vm *x = vm->arch;
	struct mptable_pci_irq irqs[PCI_MAX_SLOTS];
	struct mptable_params p = { .ncpus = vm->cfg.cpus, .pci_irqs = irqs };
	uint8_t *buf = guest_ptr(&vm->mem, X86_MPTABLE_ADDR, X86_MPTABLE_MAX);
	int ret;

	if (!buf)
		return errf(err, errlen, -ENOMEM, "no room for the MP table");
	x86_cpuid_signature(x->cpuid, &p.cpu_signature, &p.cpu_features);
	p.npci_irqs = x86_pci_irqs(vm, irqs);
	p.level_gsi_base = X86_DEV_GSI;
	p.nlevel_gsis = X86_DEV_GSIS;
	ret = mptable_build(buf, X86_MPTABLE_MAX, X86_MPTABLE_ADDR, &p);
	return ret < 0 ? errf(err, errlen, ret, "MP table: %s",
			      strerror(-ret)) : 0;
}

struct acpi_collect {
	struct acpi_mmio_dev dev[ACPI_MAX_MMIO_DEVS];
	unsigned int n;
	bool overflow;
};

static void acpi_collect_mmio(void *opaque, const struct vm_resource *r)
{
	struct acpi_collect *c = opaque;

	if (!r->size || !r->dt_compatible ||
	    strcmp(r->dt_compatible, "virtio,mmio"))
		return;
	if (c->n == ACPI_MAX_MMIO_DEVS) {
		c->overflow = true;
		return;
	}
	c->dev[c->n++] = (struct acpi_mmio_dev){ r->base, r->size,
						 (unsigned int)r->irq };
}

/* Each table as DIR/SIGNATURE.dat (--dump-acpi), for iasl -d. */
static int acpi_dump(const char *dir, const uint8_t *buf,
		     const struct acpi_table_loc *loc, unsigned int n,
		     char *err, size_t errlen)
{
	unsigned int i;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return input_errf(err, errlen, -errno, "cannot make %s: %s",
				  dir, strerror(errno));
	for (i = 0; i < n; i++) {
		char path[4096];
		int fd, ret;

		snprintf(path, sizeof(path), "%s/%s.dat", dir, loc[i].sig);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			return input_errf(err, errlen, -errno,
					  "cannot write %s: %s", path,
					  strerror(errno));
		ret = pwrite_full(fd, buf + loc[i].off, loc[i].len, 0);
		close(fd);
		if (ret)
			return errf(err, errlen, ret, "cannot write %s: %s",
				    path, strerror(-ret));
	}
	return 0;
}

/*
 * The ACPI tables at X86_ACPI_ADDR, inside the reserved BIOS area where
 * a scan finds the RSDP (the loaders also put that address in
 * boot_params or the PVH start info).
 */
static int x86_write_acpi(struct lkvm *vm, char *err, size_t errlen)
{
	struct mptable_pci_irq irqs[PCI_MAX_SLOTS];
	struct acpi_table_loc loc[ACPI_MAX_TABLES];
	struct acpi_collect c = { .n = 0 };
	struct acpi_params p = { .ncpus = vm->cfg.cpus, .pci_irqs = irqs };
	uint8_t *buf = guest_ptr(&vm->mem, X86_ACPI_ADDR, X86_ACPI_MAX);
	unsigned int nloc = 0;
	int ret;

	if (!buf)
		return errf(err, errlen, -ENOMEM, "no room for ACPI tables");
	vm_resources_each(vm, acpi_collect_mmio, &c);
	if (c.overflow)
		return errf(err, errlen, -ENOSPC,
			    "more than %d virtio-mmio devices for ACPI",
			    ACPI_MAX_MMIO_DEVS);
	p.mmio = c.dev;
	p.nmmio = c.n;
	p.npci_irqs = x86_pci_irqs(vm, irqs);
	ret = acpi_build(buf, X86_ACPI_MAX, X86_ACPI_ADDR, &p, loc, &nloc);
	if (ret < 0)
		return errf(err, errlen, ret, "ACPI tables: %s",
			    strerror(-ret));
	vm_dbg(vm, "ACPI tables at 0x%llx, %d bytes",
	       (unsigned long long)X86_ACPI_ADDR, ret);
	return vm->cfg.dump_acpi ?
	       acpi_dump(vm->cfg.dump_acpi, buf, loc, nloc, err, errlen) : 0;
}

static int open_image(const char *path, const char *what, uint64_t *size,
		      char *err, size_t errlen)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	/* A file the configuration named: its fault if unusable. */
	if (fd < 0)
		return input_errf(err, errlen, -errno, "cannot open %s %s: %s",
				  what, path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return input_errf(err, errlen, -EINVAL,
				  "%s %s is not a regular file", what, path);
	}
	*size = st.st_size;
	return fd;
}

static int x86_load_kernel(struct lkvm *vm, char *err, size_t errlen)
{
	struct x86_vm *x = vm->arch;
	struct boot_e820_entry e820[16];
	uint8_t head[X86_KERNEL_HEAD];
	struct x86_boot_args a = {
		.mem = &vm->mem,
		.head = head,
		.cmdline = vm->cfg.cmdline,
		.initrd_fd = -1,
		.e820 = e820,
		.acpi_rsdp = vm->cfg.no_acpi ? 0 : X86_ACPI_ADDR,
	};
	int ret;

	/*
	 * The defaults, the user's words, then what the devices add: with
	 * neither a device tree nor ACPI, this is how Linux learns of MMIO
	 * devices.  With ACPI the DSDT names them (twice would clash).  A
	 * flat binary ignores it all.
	 */
	char *cmdline = vm_kernel_cmdline(vm, vm->cfg.no_acpi);

	if (!cmdline)
		return errf(err, errlen, -ENOMEM, "out of memory");
	a.cmdline = cmdline;
	ret = open_image(vm->cfg.kernel, "kernel", &a.kernel_size, err,
			 errlen);
	if (ret < 0) {
		free(cmdline);
		return ret;
	}
	a.kernel_fd = ret;
	a.head_len = MIN(sizeof(head), a.kernel_size);
	memset(head, 0, sizeof(head));
	ret = pread_exact(a.kernel_fd, head, a.head_len, 0);
	if (ret) {
		errf(err, errlen, ret, "cannot read kernel %s: %s",
		     vm->cfg.kernel, strerror(-ret));
		goto out;
	}
	if (vm->cfg.initrd) {
		ret = open_image(vm->cfg.initrd, "initrd", &a.initrd_size,
				 err, errlen);
		if (ret < 0)
			goto out;
		a.initrd_fd = ret;
	}
	a.e820_n = e820_build(&vm->mem, e820, ARRAY_SIZE(e820));
	ret = x86_kernel_load(&a, &x->boot, err, errlen);
	if (ret)
		goto out;
	/* Said, not silently dropped: a flat binary has no command line. */
	if (x->boot.mode == X86_BOOT_REAL16 && vm->cfg.cmdline) {
		ret = input_errf(err, errlen, -EINVAL,
				 "%s is a flat binary, which takes no kernel command line (-p)",
				 vm->cfg.kernel);
		goto out;
	}
	ret = x86_boot_tables(&vm->mem, &x->boot);
	if (ret) {
		errf(err, errlen, ret, "no room for boot tables");
		goto out;
	}
	ret = x86_write_mptable(vm, err, errlen);
	if (!ret && !vm->cfg.no_acpi)
		ret = x86_write_acpi(vm, err, errlen);
	if (!ret)
		vm_dbg(vm, "loaded %s as %s, entry 0x%llx", vm->cfg.kernel,
		       x->boot.format, (unsigned long long)x->boot.entry);
out:
	free(cmdline);
	close(a.kernel_fd);
	if (a.initrd_fd >= 0)
		close(a.initrd_fd);
	return ret;
}

static int x86_vcpu_init(struct vcpu *v, char *err, size_t errlen)
{
	struct x86_vm *x = v->vm->arch;
	int ret;

	ret = x86_cpuid_setup(v, x->cpuid, v->vm->cfg.cpus);
	if (ret)
		return errf(err, errlen, ret, "vCPU %u CPUID: %s", v->id,
			    strerror(-ret));
	ret = x86_msrs_setup(v);
	if (ret)
		return errf(err, errlen, ret, "vCPU %u MSRs: %s", v->id,
			    strerror(-ret));
	ret = x86_lapic_setup(v);
	if (ret)
		return errf(err, errlen, ret, "vCPU %u LAPIC: %s", v->id,
			    strerror(-ret));
	/* Application processors wait for INIT/SIPI in the kernel's LAPIC. */
	if (v->id != 0)
		return 0;
	ret = x86_regs_setup(v, &x->boot);
	if (ret)
		return errf(err, errlen, ret, "vCPU %u registers: %s", v->id,
			    strerror(-ret));
	return 0;
}

static void x86_vcpu_dump(struct vcpu *v, char *buf, size_t len)
{
	x86_regs_dump(v, buf, len);
}

static int x86_vcpu_nmi(struct vcpu *v)
{
	return ioctl(v->fd, KVM_NMI) < 0 ? -errno : 0;
}

static void x86_vm_free(struct lkvm *vm)
{
	struct x86_vm *x = vm->arch;

	if (!x)
		return;
	free(x->cpuid);
	free(x);
	vm->arch = NULL;
}

/* What the loaders boot as Linux: a bzImage or a PVH ELF (vmlinux). */
static bool x86_kernel_is_linux(const uint8_t *head, size_t len)
{
	return bzimage_probe(head, len) || elf_probe(head, len);
}

const struct arch_ops arch_ops = {
	.name = "x86_64",
	.max_cpus = X86_MAX_CPUS,
	.dev_mmio_base = X86_DEV_MMIO_BASE,
	.dev_mmio_size = X86_DEV_MMIO_SIZE,
	.dev_gsi = X86_DEV_GSI,
	.dev_gsis = X86_DEV_GSIS,
	.pci_default = true,
	.acpi = true,
	.serial_console_args = "console=ttyS0 earlyprintk=serial",
	.irq_routes_base = x86_irq_routes_base,
	.msi_gsi_base = X86_MSI_GSI_BASE,
	.mem_layout = x86_mem_layout,
	.vm_init = x86_vm_init,
	.kernel_is_linux = x86_kernel_is_linux,
	.load_kernel = x86_load_kernel,
	.vcpu_init = x86_vcpu_init,
	.vcpu_dump = x86_vcpu_dump,
	.vcpu_nmi = x86_vcpu_nmi,
	.vm_free = x86_vm_free,
};
