/*
 * msr.c - boot-time MSR values and local APIC wiring for each vCPU:
 * syscall MSRs cleared, fast strings on, MTRRs enabled with write-back as
 * the default type (Linux otherwise maps RAM uncached), and LINT0/LINT1
 * as ExtINT/NMI so the 8259 and NMIs reach the CPU as the MP table says.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>

#include "lkvm/lib/util.h"
#include "lkvm/vcpu.h"
#include "lkvm/vm.h"
#include "lkvm/x86/x86.h"

#define MSR_IA32_TSC		0x10
#define MSR_IA32_SYSENTER_CS	0x174
#define MSR_IA32_SYSENTER_ESP	0x175
#define MSR_IA32_SYSENTER_EIP	0x176
#define MSR_IA32_MISC_ENABLE	0x1a0
#define MSR_MTRR_DEF_TYPE	0x2ff
#define MSR_STAR		0xc0000081
#define MSR_LSTAR		0xc0000082
#define MSR_CSTAR		0xc0000083
#define MSR_SYSCALL_MASK	0xc0000084
#define MSR_KERNEL_GS_BASE	0xc0000102

#define MISC_ENABLE_FAST_STRING	(1ULL << 0)
#define MTRR_ENABLE		(1ULL << 11)
#define MTRR_TYPE_WB		6

int x86_msrs_setup(struct vcpu *v)
{
	static const struct { uint32_t index; uint64_t data; } boot[] = {
		{ MSR_IA32_SYSENTER_CS, 0 },
		{ MSR_IA32_SYSENTER_ESP, 0 },
		{ MSR_IA32_SYSENTER_EIP, 0 },
		{ MSR_STAR, 0 },
		{ MSR_LSTAR, 0 },
		{ MSR_CSTAR, 0 },
		{ MSR_SYSCALL_MASK, 0 },
		{ MSR_KERNEL_GS_BASE, 0 },
		{ MSR_IA32_TSC, 0 },
		{ MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING },
		{ MSR_MTRR_DEF_TYPE, MTRR_ENABLE | MTRR_TYPE_WB },
	};
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[ARRAY_SIZE(boot)];
	} msrs;
	unsigned int i;
	int ret;

	memset(&msrs, 0, sizeof(msrs));
	for (i = 0; i < ARRAY_SIZE(boot); i++) {
		msrs.e[i].index = boot[i].index;
		msrs.e[i].data = boot[i].data;
	}
	msrs.hdr.nmsrs = ARRAY_SIZE(boot);
	ret = ioctl(v->fd, KVM_SET_MSRS, &msrs);
	if (ret < 0)
		return -errno;
	/* KVM_SET_MSRS returns how many it set; an unknown one stops it. */
	return ret == (int)ARRAY_SIZE(boot) ? 0 : -EINVAL;
}

#define APIC_LVT_LINT0	0x350
#define APIC_LVT_LINT1	0x360
#define APIC_MODE_NMI	(4 << 8)
#define APIC_MODE_EXTINT (7 << 8)

static void lapic_set_lvt(struct kvm_lapic_state *s, unsigned int reg,
			  uint32_t mode)
{
	uint32_t v;

	memcpy(&v, s->regs + reg, 4);
	v = (v & ~0x700u & ~(1u << 16)) | mode;	/* unmask, set mode */
	memcpy(s->regs + reg, &v, 4);
}

int x86_lapic_setup(struct vcpu *v)
{
	struct kvm_lapic_state s;

	if (ioctl(v->fd, KVM_GET_LAPIC, &s) < 0)
		return -errno;
	lapic_set_lvt(&s, APIC_LVT_LINT0, APIC_MODE_EXTINT);
	lapic_set_lvt(&s, APIC_LVT_LINT1, APIC_MODE_NMI);
	if (ioctl(v->fd, KVM_SET_LAPIC, &s) < 0)
		return -errno;
	return 0;
}
