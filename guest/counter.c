/*
 * counter - prints "counter: N" about every 50 ms (local APIC timer,
 * asleep in hlt between lines), forever: the guest the control-plane
 * tests pause, resume, dump, interrupt and stop.  An NMI is not handled
 * (no handler for vector 2): it ends the guest with EXIT_TRAP, which is
 * how a test sees that an NMI arrived.
 */
#include "runtime/guest.h"

static volatile unsigned int ticks;

static void on_timer(struct trap_frame *f)
{
	(void)f;
	ticks++;
	lapic_eoi();
}

void main(void)
{
	unsigned int n = 0;

	irq_set_handler(0x20, on_timer);
	lapic_write(0xf0, 0x1ff);		/* enable, spurious vector 0xff */
	lapic_write(0x3e0, 0xb);		/* divide by 1 */
	lapic_write(0x320, 0x20 | 1u << 17);	/* periodic, vector 0x20 */
	lapic_write(0x380, 50000000);
	for (;;) {
		unsigned int t = ticks;

		gprintf("counter: %u\n", ++n);
		while (ticks == t)
			wait_for_irq();
	}
}
