/*
 * gic.c - the in-kernel interrupt controller: a GICv3 (distributor + one
 * redistributor per vCPU) with, where the host has one, its ITS for
 * MSIs; or a GICv2 (distributor + CPU interface, 8 CPUs, no MSI) where
 * that is all the host can emulate or --irqchip asks.  The addresses are
 * set before the vCPUs exist; KVM_DEV_ARM_VGIC_CTRL_INIT comes after.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "lkvm/arm64/arm64.h"
#include "lkvm/arm64/layout.h"
#include "lkvm/log.h"
#include "lkvm/lib/util.h"
#include "lkvm/vm.h"

int arm64_set_attr(int fd, uint32_t group, uint64_t attr, void *val)
{
	struct kvm_device_attr a = {
		.group = group,
		.attr = attr,
		.addr = (uintptr_t)val,
	};

	return ioctl(fd, KVM_SET_DEVICE_ATTR, &a) < 0 ? -errno : 0;
}

static int create_dev(struct lkvm *vm, uint32_t type)
{
	struct kvm_create_device cd = { .type = type };

	return ioctl(vm->vm_fd, KVM_CREATE_DEVICE, &cd) < 0 ? -errno : (int)cd.fd;
}

static int gic_v2(struct lkvm *vm, char *err, size_t errlen)
{
	struct arm64_vm *a = vm->arch;
	uint64_t dist = ARM64_GICD_BASE, cpu = ARM64_GICC_BASE;
	uint32_t nr = ARM64_NR_IRQS;
	int ret;

	if (vm->cfg.cpus > ARM64_GICV2_MAX_CPUS)
		return errf(err, errlen, -EINVAL,
			    "a GICv2 serves at most %d CPUs", ARM64_GICV2_MAX_CPUS);
	a->gic_fd = create_dev(vm, KVM_DEV_TYPE_ARM_VGIC_V2);
	if (a->gic_fd < 0)
		return errf(err, errlen, a->gic_fd,
			    "KVM here cannot emulate a GICv2: %s",
			    strerror(-a->gic_fd));
	a->gicv2 = true;
	ret = arm64_set_attr(a->gic_fd, KVM_DEV_ARM_VGIC_GRP_ADDR,
			     KVM_VGIC_V2_ADDR_TYPE_DIST, &dist);
	if (!ret)
		ret = arm64_set_attr(a->gic_fd, KVM_DEV_ARM_VGIC_GRP_ADDR,
				     KVM_VGIC_V2_ADDR_TYPE_CPU, &cpu);
	if (!ret)
		ret = arm64_set_attr(a->gic_fd, KVM_DEV_ARM_VGIC_GRP_NR_IRQS,
				     0, &nr);
	return ret ? errf(err, errlen, ret, "GICv2 set-up: %s",
			  strerror(-ret)) : 0;
}

static int gic_v3(struct lkvm *vm, bool want_its, bool need_its, char *err,
		  size_t errlen)
{
	struct arm64_vm *a = vm->arch;
	uint64_t dist = ARM64_GICD_BASE, redist = ARM64_GICR_BASE;
	uint64_t its = ARM64_ITS_BASE;
	uint32_t nr = ARM64_NR_IRQS;
	int ret;

	a->gic_fd = create_dev(vm, KVM_DEV_TYPE_ARM_VGIC_V3);
	if (a->gic_fd < 0)
		return errf(err, errlen, a->gic_fd,
			    "KVM here cannot emulate a GICv3: %s",
			    strerror(-a->gic_fd));
	ret = arm64_set_attr(a->gic_fd, KVM_DEV_ARM_VGIC_GRP_ADDR,
			     KVM_VGIC_V3_ADDR_TYPE_DIST, &dist);
	if (!ret)
		ret = arm64_set_attr(a->gic_fd, KVM_DEV_ARM_VGIC_GRP_ADDR,
				     KVM_VGIC_V3_ADDR_TYPE_REDIST, &redist);
	if (!ret)
		ret = arm64_set_attr(a->gic_fd, KVM_DEV_ARM_VGIC_GRP_NR_IRQS,
				     0, &nr);
	if (ret)
		return errf(err, errlen, ret, "GICv3 set-up: %s", strerror(-ret));
	if (!want_its)
		return 0;
	/* Without an ITS there is no MSI: virtio-pci falls back to INTx. */
	a->its_fd = create_dev(vm, KVM_DEV_TYPE_ARM_VGIC_ITS);
	if (a->its_fd >= 0 &&
	    arm64_set_attr(a->its_fd, KVM_DEV_ARM_VGIC_GRP_ADDR,
			   KVM_VGIC_ITS_ADDR_TYPE, &its)) {
		close(a->its_fd);
		a->its_fd = -1;
	}
	if (a->its_fd < 0 && need_its)
		return errf(err, errlen, -ENODEV,
			    "KVM here cannot emulate a GICv3 ITS");
	if (a->its_fd < 0)
		vm_info(vm, "no GICv3 ITS: no MSIs");
	return 0;
}

int arm64_gic_create(struct lkvm *vm, char *err, size_t errlen)
{
	struct arm64_vm *a = vm->arch;
	int ret;

	switch (vm->cfg.irqchip) {
	case LKVM_IRQCHIP_GICV2:
		return gic_v2(vm, err, errlen);
	case LKVM_IRQCHIP_GICV3:
		return gic_v3(vm, false, false, err, errlen);
	case LKVM_IRQCHIP_GICV3_ITS:
		return gic_v3(vm, true, true, err, errlen);
	default:
		ret = gic_v3(vm, true, false, err, errlen);
		if (ret && a->gic_fd < 0)
			ret = gic_v2(vm, err, errlen);	/* a v2-only host */
		return ret;
	}
}

int arm64_gic_init(struct lkvm *vm, char *err, size_t errlen)
{
	struct arm64_vm *a = vm->arch;
	int ret;

	ret = arm64_set_attr(a->gic_fd, KVM_DEV_ARM_VGIC_GRP_CTRL,
			     KVM_DEV_ARM_VGIC_CTRL_INIT, NULL);
	if (!ret && a->its_fd >= 0)
		ret = arm64_set_attr(a->its_fd, KVM_DEV_ARM_VGIC_GRP_CTRL,
				     KVM_DEV_ARM_VGIC_CTRL_INIT, NULL);
	return ret ? errf(err, errlen, ret, "GIC initialisation: %s",
			  strerror(-ret)) : 0;
}

void arm64_gic_free(struct lkvm *vm)
{
	struct arm64_vm *a = vm->arch;

	if (a->its_fd >= 0)
		close(a->its_fd);
	if (a->gic_fd >= 0)
		close(a->gic_fd);
	a->its_fd = a->gic_fd = -1;
}
