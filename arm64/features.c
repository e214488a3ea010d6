/*
 * features.c - the arm64 vCPU features a guest gets beyond the base
 * architecture: SVE (at the host's largest vector length), pointer
 * authentication (address and generic keys), PMUv3 and paravirtual
 * steal time.  Each is on when the host KVM offers it and the
 * configuration does not turn it off; the choice is made once at VM
 * creation (arm64_features_choose) so the device tree and every vCPU
 * agree.
 *
 * Threads: all of it runs on the thread creating the VM, before any
 * vCPU runs.  The steal-time page is KVM's to write afterwards; lkvm
 * never reads it.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "lkvm/arm64/arm64.h"
#include "lkvm/arm64/layout.h"
#include "lkvm/log.h"
#include "lkvm/lib/util.h"
#include "lkvm/vm.h"

#ifndef KVM_CAP_ARM_SVE
#define KVM_CAP_ARM_SVE 170
#endif

/* One stolen-time record per vCPU (the SMCCC PV time spec: 64 bytes). */
#define PVTIME_RECORD	64

static bool has_cap(struct lkvm *vm, long cap)
{
	return kvm_check_extension(vm, cap) > 0;
}

void arm64_features_choose(struct lkvm *vm)
{
	struct arm64_vm *a = vm->arch;

	a->sve = !vm->cfg.no_sve && has_cap(vm, KVM_CAP_ARM_SVE);
	a->ptrauth = !vm->cfg.no_ptrauth &&
		     has_cap(vm, KVM_CAP_ARM_PTRAUTH_ADDRESS) &&
		     has_cap(vm, KVM_CAP_ARM_PTRAUTH_GENERIC);
	a->pmu = !vm->cfg.no_pmu && has_cap(vm, KVM_CAP_ARM_PMU_V3);
	a->pvtime = !vm->cfg.no_pvtime && has_cap(vm, KVM_CAP_STEAL_TIME);
	vm_log(vm, LKVM_LOG_DEBUG,
	       "arm64 vCPU features: sve %d, ptrauth %d, pmu %d, pvtime %d",
	       a->sve, a->ptrauth, a->pmu, a->pvtime);
}

/*
 * The stolen-time records live in a memory slot of their own outside
 * RAM: the guest maps what the PV_TIME_ST hypercall names, and it must
 * not be memory the guest also uses as RAM.
 */
int arm64_pvtime_map(struct lkvm *vm)
{
	struct arm64_vm *a = vm->arch;
	struct kvm_userspace_memory_region reg = {
		.slot = GUEST_MEM_MAX_SLOTS,	/* above guest_memory's */
		.guest_phys_addr = ARM64_PVTIME_BASE,
		.memory_size = ARM64_PVTIME_SIZE,
	};
	void *p;

	if (!a->pvtime)
		return 0;
	if (vm->cfg.cpus * PVTIME_RECORD > ARM64_PVTIME_SIZE)
		return -E2BIG;
	p = mmap(NULL, ARM64_PVTIME_SIZE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	reg.userspace_addr = (uintptr_t)p;
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &reg) < 0) {
		int err = -errno;

		munmap(p, ARM64_PVTIME_SIZE);
		return err;
	}
	a->pvtime_map = p;
	return 0;
}

void arm64_pvtime_unmap(struct arm64_vm *a)
{
	if (a->pvtime_map)
		munmap(a->pvtime_map, ARM64_PVTIME_SIZE);
	a->pvtime_map = NULL;
}

void arm64_features_init_bits(struct lkvm *vm, struct kvm_vcpu_init *init)
{
	struct arm64_vm *a = vm->arch;

	if (a->sve)
		init->features[0] |= 1u << KVM_ARM_VCPU_SVE;
	if (a->ptrauth)
		init->features[0] |= 1u << KVM_ARM_VCPU_PTRAUTH_ADDRESS |
				     1u << KVM_ARM_VCPU_PTRAUTH_GENERIC;
	if (a->pmu)
		init->features[0] |= 1u << KVM_ARM_VCPU_PMU_V3;
}

/* After KVM_ARM_VCPU_INIT: what has to be set before the vCPU runs. */
int arm64_features_vcpu(struct vcpu *v, char *err, size_t errlen)
{
	struct arm64_vm *a = v->vm->arch;
	int what = KVM_ARM_VCPU_SVE;

	/* The vector lengths stay the host's: finalize as offered. */
	if (a->sve && ioctl(v->fd, KVM_ARM_VCPU_FINALIZE, &what) < 0)
		return errf(err, errlen, -errno, "SVE finalize: %s",
			    strerror(errno));
	if (a->pvtime) {
		uint64_t ipa = ARM64_PVTIME_BASE + v->id * PVTIME_RECORD;
		int ret = arm64_set_attr(v->fd, KVM_ARM_VCPU_PVTIME_CTRL,
					 KVM_ARM_VCPU_PVTIME_IPA, &ipa);

		if (ret)
			return errf(err, errlen, ret, "steal time set-up: %s",
				    strerror(-ret));
	}
	return 0;
}

/* After the vGIC is initialised: each vCPU's PMU and its interrupt. */
int arm64_features_vgic_ready(struct lkvm *vm, char *err, size_t errlen)
{
	struct arm64_vm *a = vm->arch;
	int irq = 16 + ARM64_PMU_PPI;	/* the PPI as an INTID */
	unsigned int i;
	int ret;

	if (!a->pmu)
		return 0;
	for (i = 0; i < vm->cfg.cpus; i++) {
		int fd = vm->vcpus[i].fd;

		ret = arm64_set_attr(fd, KVM_ARM_VCPU_PMU_V3_CTRL,
				     KVM_ARM_VCPU_PMU_V3_IRQ, &irq);
		if (!ret)
			ret = arm64_set_attr(fd, KVM_ARM_VCPU_PMU_V3_CTRL,
					     KVM_ARM_VCPU_PMU_V3_INIT, NULL);
		if (ret)
			return errf(err, errlen, ret, "PMU set-up: %s",
				    strerror(-ret));
	}
	return 0;
}
