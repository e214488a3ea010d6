/*
 * regs.c - the boot CPU's initial state for each boot mode, the boot GDT
 * and identity page tables those modes need, and the register dump
 * printed when a guest dies.  vCPU set-up runs on the creating thread; the
 * dump runs on the failing vCPU's own thread.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "lkvm/lib/util.h"
#include "lkvm/vcpu.h"
#include "lkvm/vm.h"
#include "lkvm/x86/layout.h"
#include "lkvm/x86/x86.h"

#define CR0_PE	(1ULL << 0)
#define CR0_MP	(1ULL << 1)
#define CR0_ET	(1ULL << 4)
#define CR0_NE	(1ULL << 5)
#define CR0_WP	(1ULL << 16)
#define CR0_PG	(1ULL << 31)
#define CR4_PAE	(1ULL << 5)
#define CR4_OSFXSR (1ULL << 9)
#define CR4_OSXMMEXCPT (1ULL << 10)
#define EFER_SCE (1ULL << 0)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)

#define PTE_P	0x1ULL
#define PTE_RW	0x2ULL
#define PTE_PWT	0x8ULL
#define PTE_PCD	0x10ULL
#define PTE_PS	0x80ULL

static const uint64_t boot_gdt[] = {
	0,
	0x00cf9b000000ffffULL,	/* 0x08: 32-bit code, flat */
	0x00af9b000000ffffULL,	/* 0x10: 64-bit code */
	0x00cf93000000ffffULL,	/* 0x18: data, flat */
	0x00008b0000000067ULL,	/* 0x20: busy TSS at 0 (16 bytes in long mode) */
	0,
};

int x86_boot_tables(struct guest_memory *m, const struct x86_boot *b)
{
	uint64_t *pml4, *pdpt, *pd;
	unsigned int i, j;

	if (guest_write(m, X86_GDT_ADDR, boot_gdt, sizeof(boot_gdt)))
		return -ENOMEM;
	if (b->mode != X86_BOOT_LONG64)
		return 0;
	pml4 = guest_ptr(m, X86_PML4_ADDR, 4096);
	pdpt = guest_ptr(m, X86_PDPT_ADDR, 4096);
	pd = guest_ptr(m, X86_PD_ADDR, 4 * 4096);
	if (!pml4 || !pdpt || !pd)
		return -ENOMEM;
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = X86_PDPT_ADDR | PTE_P | PTE_RW;
	/* 2 MiB pages over 4 GiB; the top GiB (APICs, BARs) uncached. */
	for (i = 0; i < 4; i++) {
		pdpt[i] = (X86_PD_ADDR + i * 4096) | PTE_P | PTE_RW;
		for (j = 0; j < 512; j++)
			pd[i * 512 + j] = ((uint64_t)i << 30 | (uint64_t)j << 21) |
					  PTE_P | PTE_RW | PTE_PS |
					  (i == 3 ? PTE_PCD | PTE_PWT : 0);
	}
	return 0;
}

static struct kvm_segment seg(uint16_t sel, uint64_t base, uint32_t limit,
			      uint8_t type, bool code_data, bool db, bool l,
			      bool g)
{
	return (struct kvm_segment){
		.base = base, .limit = limit, .selector = sel, .type = type,
		.present = 1, .s = code_data, .db = db, .l = l, .g = g,
	};
}

static void sregs_protected(struct kvm_sregs *s, uint16_t cs_sel, bool lm)
{
	struct kvm_segment data = seg(X86_SEL_DATA, 0, 0xffffffff, 3, true,
				      true, false, true);

	s->cs = seg(cs_sel, 0, 0xffffffff, 11, true, !lm, lm, true);
	s->ds = s->es = s->fs = s->gs = s->ss = data;
	s->tr = seg(X86_SEL_TSS, 0, 0x67, 11, false, false, false, false);
	s->gdt.base = X86_GDT_ADDR;
	s->gdt.limit = sizeof(boot_gdt) - 1;
}

int x86_regs_setup(struct vcpu *v, const struct x86_boot *b)
{
	struct kvm_sregs s;
	struct kvm_regs r;
	struct kvm_fpu fpu;

	if (ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
		return -errno;
	memset(&r, 0, sizeof(r));
	r.rflags = 0x2;
	switch (b->mode) {
	case X86_BOOT_REAL16:
		s.cs.selector = b->entry >> 4;
		s.cs.base = b->entry;
		s.ds = s.es = s.fs = s.gs = s.ss = s.cs;
		s.ds.type = s.es.type = s.fs.type = s.gs.type = s.ss.type = 3;
		r.rip = 0;
		r.rsp = 0x8000;	/* kvmtool's convention for flat binaries */
		break;
	case X86_BOOT_PROT32:
		sregs_protected(&s, X86_SEL_CODE32, false);
		s.cr0 = CR0_PE | CR0_ET;
		s.cr4 = 0;
		s.efer = 0;
		r.rip = b->entry;
		r.rbx = b->arg;
		break;
	case X86_BOOT_LONG64:
		sregs_protected(&s, X86_SEL_CODE64, true);
		s.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
		s.cr3 = X86_PML4_ADDR;
		s.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
		s.efer = EFER_SCE | EFER_LME | EFER_LMA;
		r.rip = b->entry;
		r.rsi = b->arg;
		break;
	}
	if (ioctl(v->fd, KVM_SET_SREGS, &s) < 0 ||
	    ioctl(v->fd, KVM_SET_REGS, &r) < 0)
		return -errno;
	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = 0x37f;
	fpu.mxcsr = 0x1f80;
	if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
		return -errno;
	return 0;
}

static size_t dump_printf(char *buf, size_t len, size_t pos,
			  const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static size_t dump_printf(char *buf, size_t len, size_t pos,
			  const char *fmt, ...)
{
	va_list ap;
	int n;

	if (pos >= len)
		return pos;
	va_start(ap, fmt);
	n = vsnprintf(buf + pos, len - pos, fmt, ap);
	va_end(ap);
	return n < 0 ? pos : MIN(len, pos + n);
}

/* Instruction bytes at CS:RIP, through the guest's own page tables. */
static size_t dump_code(struct vcpu *v, const struct kvm_sregs *s,
			const struct kvm_regs *r, char *buf, size_t len,
			size_t pos)
{
	struct kvm_translation tr = { .linear_address = s->cs.base + r->rip };
	const uint8_t *code;
	unsigned int i, n = 16;

	if (ioctl(v->fd, KVM_TRANSLATE, &tr) < 0 || !tr.valid)
		return dump_printf(buf, len, pos, "code: <RIP not mapped>\n");
	/* Stay inside the page: the next one may map elsewhere. */
	n = MIN(n, 4096 - (tr.physical_address & 0xfff));
	code = guest_ptr(&v->vm->mem, tr.physical_address, n);
	if (!code)
		return dump_printf(buf, len, pos,
				   "code: <RIP at 0x%llx is not RAM>\n",
				   (unsigned long long)tr.physical_address);
	pos = dump_printf(buf, len, pos, "code at 0x%llx:",
			  (unsigned long long)tr.physical_address);
	for (i = 0; i < n; i++)
		pos = dump_printf(buf, len, pos, " %02x", code[i]);
	return dump_printf(buf, len, pos, "\n");
}

void x86_regs_dump(struct vcpu *v, char *buf, size_t len)
{
	struct kvm_sregs s;
	struct kvm_regs r;
	size_t pos = strlen(buf);

	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 ||
	    ioctl(v->fd, KVM_GET_SREGS, &s) < 0) {
		dump_printf(buf, len, pos, "(registers unavailable: %s)\n",
			    strerror(errno));
		return;
	}
	pos = dump_printf(buf, len, pos,
		"rip %016llx rsp %016llx rflags %08llx\n"
		"rax %016llx rbx %016llx rcx %016llx rdx %016llx\n"
		"rsi %016llx rdi %016llx rbp %016llx\n"
		"r8  %016llx r9  %016llx r10 %016llx r11 %016llx\n"
		"r12 %016llx r13 %016llx r14 %016llx r15 %016llx\n"
		"cs %04x base %llx  ss %04x  cr0 %llx cr2 %llx cr3 %llx cr4 %llx efer %llx\n",
		r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi,
		r.rdi, r.rbp, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14,
		r.r15, s.cs.selector, s.cs.base, s.ss.selector, s.cr0, s.cr2,
		s.cr3, s.cr4, s.efer);
	dump_code(v, &s, &r, buf, len, pos);
}
