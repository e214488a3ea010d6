/*
 * irq - takes interrupts from the local APIC timer (vector 0x20,
 * periodic) and from the PIT through I/O APIC pin 0 (vector 0x30),
 * sleeping in hlt between them.  Exits 0 after 5 of each.
 */
#include "runtime/guest.h"

#define TICKS 5

static volatile unsigned int lapic_ticks, pit_ticks;

static void on_lapic_timer(struct trap_frame *f)
{
	(void)f;
	lapic_ticks++;
	lapic_eoi();
}

static void on_pit(struct trap_frame *f)
{
	(void)f;
	pit_ticks++;
	lapic_eoi();
}

void main(void)
{
	irq_set_handler(0x20, on_lapic_timer);
	irq_set_handler(0x30, on_pit);
	lapic_write(0xf0, 0x1ff);		/* enable, spurious vector 0xff */

	lapic_write(0x3e0, 0xb);		/* divide by 1 */
	lapic_write(0x320, 0x20 | 1u << 17);	/* periodic, vector 0x20 */
	lapic_write(0x380, 1000000);
	while (lapic_ticks < TICKS)
		wait_for_irq();
	lapic_write(0x320, 1u << 16);		/* masked */
	gprintf("irq: %u local APIC timer interrupts\n", lapic_ticks);

	ioapic_route(0, 0x30, lapic_id());
	outb(0x43, 0x34);			/* channel 0, mode 2 */
	outb(0x40, 11932 & 0xff);		/* ~100 Hz */
	outb(0x40, 11932 >> 8);
	while (pit_ticks < TICKS)
		wait_for_irq();
	gprintf("irq: %u PIT interrupts through I/O APIC pin 0\n", pit_ticks);
}
