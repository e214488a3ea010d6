/*
 * vectors.S - interrupt and exception entry stubs for vectors 0-63.
 * Each stub is 16 bytes: it pushes a zero error code where the CPU does
 * not push one, then the vector, and jumps to the common path that saves
 * the registers and calls guest_trap(frame).
 */
	.text
	.p2align 4
	.globl trap_stubs
trap_stubs:
	.set	v, 0
	.rept	64
	.p2align 4
	/* Error code pushed by the CPU for 8, 10-14, 17, 21, 29, 30. */
	.if (v == 8) || (v >= 10 && v <= 14) || (v == 17) || (v == 21) || (v == 29) || (v == 30)
	.else
	pushq	$0
	.endif
	pushq	$v
	jmp	trap_common
	.set	v, v + 1
	.endr

trap_common:
	push	%rax
	push	%rcx
	push	%rdx
	push	%rsi
	push	%rdi
	push	%r8
	push	%r9
	push	%r10
	push	%r11
	mov	%rsp, %rdi
	call	guest_trap
	pop	%r11
	pop	%r10
	pop	%r9
	pop	%r8
	pop	%rdi
	pop	%rsi
	pop	%rdx
	pop	%rcx
	pop	%rax
	add	$16, %rsp
	iretq
