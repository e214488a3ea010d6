/*
 * emufail - runs xgetbv, which this machine's paravirtual KVM cannot
 * emulate: lkvm must report the failure with registers and the failing
 * instruction bytes (0f 01 d0) and exit 1.  On hardware KVM xgetbv works,
 * and the guest exits 3 instead, which the test accepts as a skip.
 */
#include "runtime/guest.h"

void main(void)
{
	uint32_t lo, hi;

	gprintf("emufail: executing xgetbv\n");
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	gprintf("emufail: xgetbv worked (0x%x)\n", lo);
	guest_exit(3);
}
