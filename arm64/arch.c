/*
 * arch.c - the arm64 arch_ops: RAM from 2 GiB, an in-kernel GICv3 (+ITS),
 * the 8250 UART and pvpanic on MMIO, the ECAM PCI host, vCPUs with PSCI
 * 0.2, and Linux Image loading with a generated device tree (booting.rst:
 * x0 = DT address, MMU off, EL1h with interrupts masked).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lkvm/arch.h"
#include "lkvm/arm64/arm64.h"
#include "lkvm/arm64/image.h"
#include "lkvm/arm64/layout.h"
#include "lkvm/log.h"
#include "lkvm/platform/pvpanic.h"
#include "lkvm/platform/uart8250.h"
#include "lkvm/lib/util.h"
#include "lkvm/vcpu.h"
#include "lkvm/vm.h"

#define CORE_REG(x)	(KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | \
			 (offsetof(struct kvm_regs, x) / sizeof(uint32_t)))
#define PSTATE_EL1H_MASKED	0x3c5	/* EL1h, D A I F set */

static unsigned int arm64_mem_layout(uint64_t mem, struct mem_region *r,
				     unsigned int max)
{
	if (max < 1)
		return 0;
	r[0] = (struct mem_region){ ARM64_RAM_BASE, mem };
	return 1;
}

static uint32_t arm64_irq_line_id(unsigned int gsi)
{
	return KVM_ARM_IRQ_TYPE_SPI << KVM_ARM_IRQ_TYPE_SHIFT | (gsi + 32);
}

/* The default routes: GSI n is SPI n on irqchip 0. */
static unsigned int arm64_irq_routes_base(struct kvm_irq_routing_entry *e,
					  unsigned int max)
{
	unsigned int n;

	for (n = 0; n < ARM64_NR_IRQS - 32 && n < max; n++)
		e[n] = (struct kvm_irq_routing_entry){
			.gsi = n, .type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = 0, .pin = n },
		};
	return n;
}

static int arm64_vm_init(struct lkvm *vm, char *err, size_t errlen)
{
	struct arm64_vm *a = calloc(1, sizeof(*a));
	int ret;

	if (!a)
		return errf(err, errlen, -ENOMEM, "out of memory");
	a->gic_fd = a->its_fd = -1;
	vm->arch = a;
	arm64_features_choose(vm);
	ret = arm64_pvtime_map(vm);
	if (ret)
		return errf(err, errlen, ret, "steal time memory: %s",
			    strerror(-ret));
	ret = arm64_gic_create(vm, err, errlen);
	if (ret)
		return ret;
	ret = uart8250_create(vm, ARM64_UART_BASE, 0, ARM64_UART_SPI);
	if (!ret)
		ret = pvpanic_mmio_create(vm, ARM64_PVPANIC_BASE);
	if (!ret)
		ret = arm64_pci_init(vm);
	if (ret)
		return errf(err, errlen, ret, "platform device set-up: %s",
			    strerror(-ret));
	return 0;
}

/* Reads a whole file into guest memory at gpa. */
static int load_file(struct lkvm *vm, int fd, uint64_t gpa, uint64_t size)
{
	uint8_t *p = guest_ptr(&vm->mem, gpa, size);

	return p ? pread_exact(fd, p, size, 0) : -ENOSPC;
}

static int open_sized(const char *path, uint64_t *size)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	*size = st.st_size;
	return fd;
}

static int arm64_load_kernel(struct lkvm *vm, char *err, size_t errlen)
{
	struct arm64_vm *a = vm->arch;
	uint8_t hdr[ARM64_IMAGE_HEADER_SIZE], *blob = NULL;
	struct arm64_image img;
	uint64_t ksize, isize = 0;
	int kfd, ifd = -1, ret;
	long n;

	kfd = open_sized(vm->cfg.kernel, &ksize);
	if (kfd < 0)	/* the file named: the configuration's fault */
		return input_errf(err, errlen, kfd, "cannot open kernel %s: %s",
				  vm->cfg.kernel, strerror(-kfd));
	if (pread(kfd, hdr, sizeof(hdr), 0) != sizeof(hdr) ||
	    arm64_image_parse(hdr, sizeof(hdr), ksize, &img)) {
		close(kfd);
		return input_errf(err, errlen, -EINVAL,
				  "%s is not an arm64 Linux Image",
				  vm->cfg.kernel);
	}
	if (vm->cfg.initrd) {
		ifd = open_sized(vm->cfg.initrd, &isize);
		if (ifd < 0) {
			close(kfd);
			return input_errf(err, errlen, ifd,
					  "cannot open initrd %s: %s",
					  vm->cfg.initrd, strerror(-ifd));
		}
	}
	ret = arm64_image_place(&img, ARM64_RAM_BASE, vm->cfg.mem_mib << 20,
				isize, &a->kernel, &a->fdt, &a->initrd);
	if (ret) {
		ret = input_errf(err, errlen, ret,
				 "kernel, device tree and initrd do not fit in %llu MiB",
				 (unsigned long long)vm->cfg.mem_mib);
		goto out;
	}
	a->initrd_size = isize;
	ret = load_file(vm, kfd, a->kernel, ksize);
	if (!ret && ifd >= 0)
		ret = load_file(vm, ifd, a->initrd, isize);
	if (ret) {
		errf(err, errlen, ret, "loading the kernel or initrd: %s",
		     strerror(-ret));
		goto out;
	}
	n = arm64_fdt_build(vm, &blob);
	if (n < 0 || (uint64_t)n > ARM64_FDT_MAX) {
		ret = errf(err, errlen, n < 0 ? (int)n : -E2BIG,
			   "device tree: %s", strerror(n < 0 ? (int)-n : E2BIG));
		goto out;
	}
	ret = guest_write(&vm->mem, a->fdt, blob, n);
	if (!ret && vm->cfg.dump_dtb) {
		int fd = open(vm->cfg.dump_dtb, O_WRONLY | O_CREAT | O_TRUNC |
			      O_CLOEXEC, 0644);

		if (fd < 0 || write(fd, blob, n) != n)
			ret = errf(err, errlen, -EIO, "cannot write %s",
				   vm->cfg.dump_dtb);
		if (fd >= 0)
			close(fd);
	}
out:
	free(blob);
	close(kfd);
	if (ifd >= 0)
		close(ifd);
	return ret;
}

static int set_reg(struct vcpu *v, uint64_t id, uint64_t val)
{
	struct kvm_one_reg r = { .id = id, .addr = (uintptr_t)&val };

	return ioctl(v->fd, KVM_SET_ONE_REG, &r) < 0 ? -errno : 0;
}

static int get_reg(struct vcpu *v, uint64_t id, uint64_t *val)
{
	struct kvm_one_reg r = { .id = id, .addr = (uintptr_t)val };

	return ioctl(v->fd, KVM_GET_ONE_REG, &r) < 0 ? -errno : 0;
}

static int arm64_vcpu_init(struct vcpu *v, char *err, size_t errlen)
{
	struct arm64_vm *a = v->vm->arch;
	struct kvm_vcpu_init init;
	int ret;

	if (ioctl(v->vm->vm_fd, KVM_ARM_PREFERRED_TARGET, &init) < 0)
		return errf(err, errlen, -errno, "KVM_ARM_PREFERRED_TARGET: %s",
			    strerror(errno));
	init.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
	/* Secondaries wait, powered off, for the guest's PSCI CPU_ON. */
	if (v->id)
		init.features[0] |= 1u << KVM_ARM_VCPU_POWER_OFF;
	arm64_features_init_bits(v->vm, &init);
	if (ioctl(v->fd, KVM_ARM_VCPU_INIT, &init) < 0)
		return errf(err, errlen, -errno, "KVM_ARM_VCPU_INIT: %s",
			    strerror(errno));
	ret = arm64_features_vcpu(v, err, errlen);
	if (ret || v->id)
		return ret;
	ret = set_reg(v, CORE_REG(regs.pstate), PSTATE_EL1H_MASKED);
	if (!ret)
		ret = set_reg(v, CORE_REG(regs.regs[0]), a->fdt);
	if (!ret)
		ret = set_reg(v, CORE_REG(regs.regs[1]), 0);
	if (!ret)
		ret = set_reg(v, CORE_REG(regs.regs[2]), 0);
	if (!ret)
		ret = set_reg(v, CORE_REG(regs.regs[3]), 0);
	if (!ret)
		ret = set_reg(v, CORE_REG(regs.pc), a->kernel);
	return ret ? errf(err, errlen, ret, "vCPU 0 registers: %s",
			  strerror(-ret)) : 0;
}

static int arm64_vcpus_ready(struct lkvm *vm, char *err, size_t errlen)
{
	int ret = arm64_gic_init(vm, err, errlen);

	return ret ? ret : arm64_features_vgic_ready(vm, err, errlen);
}

/* Appends the core registers: x0-x30, the stack pointers, pc, state. */
static void arm64_vcpu_dump(struct vcpu *v, char *buf, size_t len)
{
	uint64_t pc = 0, pstate = 0, sp0 = 0, sp1 = 0, elr = 0, r;
	size_t pos = strlen(buf);
	unsigned int i;

	get_reg(v, CORE_REG(regs.pc), &pc);
	get_reg(v, CORE_REG(regs.pstate), &pstate);
	get_reg(v, CORE_REG(regs.sp), &sp0);
	get_reg(v, CORE_REG(sp_el1), &sp1);
	get_reg(v, CORE_REG(elr_el1), &elr);
	if (pos + 1 >= len)
		return;
	pos += snprintf(buf + pos, len - pos,
			"pc %016llx pstate %08llx sp_el0 %016llx sp_el1 %016llx elr_el1 %016llx\n",
			(unsigned long long)pc, (unsigned long long)pstate,
			(unsigned long long)sp0, (unsigned long long)sp1,
			(unsigned long long)elr);
	for (i = 0; i < 31 && pos + 1 < len; i++) {
		r = 0;
		get_reg(v, CORE_REG(regs.regs[i]), &r);
		pos += snprintf(buf + pos, len - pos, "x%-2u %016llx%s", i,
				(unsigned long long)r,
				i % 4 == 3 || i == 30 ? "\n" : "  ");
	}
}

static void arm64_vm_free(struct lkvm *vm)
{
	struct arm64_vm *a = vm->arch;

	if (!a)
		return;
	arm64_gic_free(vm);
	arm64_pvtime_unmap(a);
	free(a);
	vm->arch = NULL;
}

/* The arm64 loader boots Linux Images only (anything else is refused). */
static bool arm64_kernel_is_linux(const uint8_t *head, size_t len)
{
	(void)head;
	(void)len;
	return true;
}

const struct arch_ops arch_ops = {
	.name = "arm64",
	.serial_console_args = "console=ttyS0",
	.max_cpus = ARM64_MAX_CPUS,
	.dev_mmio_base = ARM64_DEV_MMIO_BASE,
	.dev_mmio_size = ARM64_DEV_MMIO_SIZE,
	.pci_default = true,
	.irqchip_choice = true,
	.device_tree = true,
	.dev_gsi = ARM64_DEV_SPI,
	.dev_gsis = ARM64_DEV_SPIS,
	.irq_routes_base = arm64_irq_routes_base,
	.msi_gsi_base = ARM64_MSI_GSI_BASE,
	.msi_needs_devid = true,
	.irq_line_id = arm64_irq_line_id,
	.mem_layout = arm64_mem_layout,
	.vm_init = arm64_vm_init,
	.kernel_is_linux = arm64_kernel_is_linux,
	.load_kernel = arm64_load_kernel,
	.vcpu_init = arm64_vcpu_init,
	.vcpus_ready = arm64_vcpus_ready,
	.vcpu_dump = arm64_vcpu_dump,
	.vm_free = arm64_vm_free,
};
