/*
 * triple - loads an empty IDT and touches unmapped memory: the page fault
 * cannot be delivered, nor the double fault, so the CPU shuts down (a
 * triple fault).  lkvm must report it with registers and exit 1.
 */
#include "runtime/guest.h"

void main(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) empty = { 0, 0 };

	gprintf("triple: faulting with no IDT\n");
	__asm__ volatile("lidt %0" : : "m"(empty));
	/* 64 GiB is beyond the guest's 4 GiB identity map. */
	(void)*(volatile uint32_t *)0x1000000000UL;
	guest_exit(2);
}
