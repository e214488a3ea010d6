/*
 * entry.S - how every test guest starts.
 *
 * Flat binary: loaded at 0x10000 and entered in real mode at CS=0x1000,
 * IP=0 (the boot CPU from lkvm, application processors from a SIPI with
 * vector 0x10).  PVH ELF: entered at pvh_entry in 32-bit protected mode.
 * Both paths meet at prot32, which takes a CPU index and a stack, turns
 * on long mode with the static identity page tables below, and calls
 * guest_start(cpu index) in C.  The page tables are data in the image so
 * that the guest spends no instructions building them (instructions cost
 * ~0.3 us each here).
 */
#define STACK_SIZE	8192
#define MAX_CPUS	16

	.code16
	.section .text.entry, "ax"
	.globl _start
_start:
	cli
	mov	%cs, %ax
	mov	%ax, %ds
	lgdtl	gdt_desc - _start
	mov	%cr0, %eax
	or	$1, %eax
	mov	%eax, %cr0
	ljmpl	$0x08, $prot32

	.code32
	.globl pvh_entry
pvh_entry:
prot32:
	/* Flat data first: the real-mode DS limit would fault the lgdt. */
	mov	$0x18, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	%ax, %fs
	mov	%ax, %gs
	lgdt	gdt_desc
	mov	$1, %edi
	lock xadd %edi, cpu_counter
	cmp	$MAX_CPUS, %edi
	jae	park
	/* PAE, page tables, EFER.LME, then paging turns long mode on */
	mov	%cr4, %eax
	or	$0x20, %eax
	mov	%eax, %cr4
	mov	$pml4, %eax
	mov	%eax, %cr3
	mov	$0xc0000080, %ecx
	rdmsr
	or	$0x100, %eax
	wrmsr
	mov	%cr0, %eax
	or	$0x80000001, %eax
	mov	%eax, %cr0
	ljmp	$0x10, $long64
park:
	hlt
	jmp	park

	.code64
long64:
	mov	%edi, %eax
	add	$1, %eax
	imul	$STACK_SIZE, %eax
	lea	stacks(%rip), %rsp
	add	%rax, %rsp
	xor	%ebp, %ebp
	call	guest_start
1:	cli
	hlt
	jmp	1b

	/* In the entry section: real mode addresses it as an offset. */
	.p2align 3
gdt:
	.quad	0
	.quad	0x00cf9a000000ffff	/* 0x08 32-bit code */
	.quad	0x00af9a000000ffff	/* 0x10 64-bit code */
	.quad	0x00cf92000000ffff	/* 0x18 data */
gdt_end:
gdt_desc:
	.word	gdt_end - gdt - 1
	.long	gdt

	.data
	.globl cpu_counter
cpu_counter:
	.long	0

	/* Identity map of 4 GiB in 2 MiB pages; 3-4 GiB (APICs) uncached. */
	.p2align 12
pml4:
	.quad	pdpt + 0x3
	.fill	511, 8, 0
pdpt:
	.quad	pd + 0x0003
	.quad	pd + 0x1003
	.quad	pd + 0x2003
	.quad	pd + 0x3003
	.fill	508, 8, 0
pd:
	.set	i, 0
	.rept	2048
	.quad	(i << 21) | 0x83 | (((i >> 9) == 3) & 0x18)
	.set	i, i + 1
	.endr

	.bss
	.p2align 12
stacks:
	.fill	STACK_SIZE * MAX_CPUS, 1, 0

	/* PVH entry note, so the linked ELF boots through lkvm's PVH path. */
	.section .note.pvh, "a", @note
	.p2align 2
	.long	4
	.long	4
	.long	18		/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz	"Xen"
	.long	pvh_entry
