/*
 * cpuid.c - the CPUID a vCPU sees: what KVM supports, with this vCPU's
 * APIC ID and the VM's CPU count written into the topology leaves, the
 * hypervisor bit set and the architectural PMU hidden (no PMU emulation
 * is promised).  The supported list is fetched once per VM.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "lkvm/lib/util.h"
#include "lkvm/vcpu.h"
#include "lkvm/vm.h"
#include "lkvm/x86/x86.h"

#define CPUID_MAX_ENTRIES 1024

int x86_cpuid_init(struct lkvm *vm, struct x86_vm *x, char *err,
		   size_t errlen)
{
	unsigned int n;

	for (n = 64; n <= CPUID_MAX_ENTRIES; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) +
					      n * sizeof(c->entries[0]));

		if (!c)
			return errf(err, errlen, -ENOMEM, "out of memory");
		c->nent = n;
		if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			x->cpuid = c;
			return 0;
		}
		free(c);
		if (errno != E2BIG)
			return errf(err, errlen, -errno,
				    "KVM_GET_SUPPORTED_CPUID: %s",
				    strerror(errno));
	}
	return errf(err, errlen, -E2BIG, "KVM reports too many CPUID leaves");
}

static unsigned int bits_for(unsigned int n)
{
	unsigned int b = 0;

	while ((1u << b) < n)
		b++;
	return b;
}

int x86_cpuid_setup(struct vcpu *v, const struct kvm_cpuid2 *supported,
		    unsigned int ncpus)
{
	size_t size = sizeof(*supported) +
		      supported->nent * sizeof(supported->entries[0]);
	struct kvm_cpuid2 *c = malloc(size);
	unsigned int i;
	int ret = 0;

	if (!c)
		return -ENOMEM;
	memcpy(c, supported, size);
	for (i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000ffff) | v->id << 24 |
				 (ncpus > 1 ? ncpus : 1) << 16;
			if (ncpus > 1)
				e->edx |= 1u << 28;	/* HTT: count valid */
			e->ecx |= 1u << 31;		/* hypervisor */
			break;
		case 0xa:
			e->eax = e->ebx = e->ecx = e->edx = 0;
			break;
		case 0xb:
		case 0x1f:
			/* One thread per core, ncpus cores in one package. */
			e->edx = v->id;
			if (e->index == 0) {
				e->eax = 0;
				e->ebx = 1;
				e->ecx = 1 << 8;
			} else if (e->index == 1) {
				e->eax = bits_for(ncpus);
				e->ebx = ncpus;
				e->ecx = 2 << 8 | 1;
			} else {
				e->eax = e->ebx = 0;
				e->ecx = e->index;
			}
			break;
		default:
			break;
		}
	}
	if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0)
		ret = -errno;
	free(c);
	return ret;
}

void x86_cpuid_signature(const struct kvm_cpuid2 *c, uint32_t *sig,
			 uint32_t *features)
{
	unsigned int i;

	*sig = 0x600;
	*features = 0x201;	/* FPU, APIC */
	for (i = 0; c && i < c->nent; i++) {
		if (c->entries[i].function == 1) {
			*sig = c->entries[i].eax;
			*features = c->entries[i].edx;
		}
	}
}
