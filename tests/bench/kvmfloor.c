/*
 * kvmfloor - the start-up floor of any KVM VMM on this host, for
 * tests/bench/startup.sh to set lkvm beside: open /dev/kvm, create a VM
 * with the in-kernel irqchip and PIT, give it 64 MiB of memory and one
 * vCPU, run that vCPU until its first exit (an "out" to port 0x501, the
 * instruction lkvm's hello guest ends with), and close everything.  On
 * these machines destroying a VM alone takes ~20 ms inside close(), so
 * no VMM can start and stop a guest faster than this program.
 * Exit status 0, or 1 with a message if KVM is not usable.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEM_SIZE	(64u << 20)
#define ENTRY		0x1000

static int fail(const char *what)
{
	fprintf(stderr, "kvmfloor: %s: %s\n", what, strerror(errno));
	return 1;
}

int main(void)
{
	/* out %al, $0x01 ... : mov $0x501, %dx; out %al, (%dx); hlt */
	static const uint8_t code[] = { 0xba, 0x01, 0x05, 0xee, 0xf4 };
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	struct kvm_userspace_memory_region reg = { 0 };
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_run *run;
	int kvm, vm, vcpu, size;
	uint8_t *mem;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return fail("/dev/kvm");
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		return fail("KVM_CREATE_VM");
	if (ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000) < 0 ||
	    ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0 ||
	    ioctl(vm, KVM_CREATE_PIT2, &pit) < 0)
		return fail("irqchip");
	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED)
		return fail("mmap");
	memcpy(mem + ENTRY, code, sizeof(code));
	reg.memory_size = MEM_SIZE;
	reg.userspace_addr = (uintptr_t)mem;
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &reg) < 0)
		return fail("KVM_SET_USER_MEMORY_REGION");
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vcpu < 0 || size <= 0)
		return fail("KVM_CREATE_VCPU");
	run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		return fail("mmap kvm_run");
	/* Real mode at 0:ENTRY. */
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
		return fail("KVM_GET_SREGS");
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
		return fail("KVM_SET_SREGS");
	memset(&regs, 0, sizeof(regs));
	regs.rip = ENTRY;
	regs.rflags = 2;
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
		return fail("KVM_SET_REGS");
	if (ioctl(vcpu, KVM_RUN, 0) < 0)
		return fail("KVM_RUN");
	if (run->exit_reason != KVM_EXIT_IO || run->io.port != 0x501) {
		fprintf(stderr, "kvmfloor: unexpected exit %u\n",
			run->exit_reason);
		return 1;
	}
	munmap(run, size);
	close(vcpu);
	close(vm);
	munmap(mem, MEM_SIZE);
	close(kvm);
	return 0;
}
