/*
 * smp - starts every application processor named in the MP table with
 * INIT and SIPI (vector 0x10: they enter the image at 0x10000 like the
 * boot CPU); each prints its APIC ID.  Exits 0 when all have reported, 1
 * if some never came up.
 */
#include "runtime/guest.h"

static volatile unsigned int online = 1;

#define ICR_LOW		0x300
#define ICR_HIGH	0x310
#define ICR_ALL_BUT_SELF (3u << 18)
#define ICR_INIT	(5u << 8)
#define ICR_STARTUP	(6u << 8)
#define ICR_ASSERT	(1u << 14)
#define ICR_BUSY	(1u << 12)

static void send_ipi(uint32_t low)
{
	lapic_write(ICR_HIGH, 0);
	lapic_write(ICR_LOW, low);
	while (lapic_read(ICR_LOW) & ICR_BUSY)
		cpu_relax();
}

void ap_main(unsigned int cpu)
{
	gprintf("smp: cpu %u online, APIC ID %u\n", cpu, lapic_id());
	__atomic_add_fetch(&online, 1, __ATOMIC_SEQ_CST);
}

void main(void)
{
	unsigned int cpus = mp_cpu_count();
	unsigned long spins;

	gprintf("smp: MP table lists %u CPU(s); boot CPU APIC ID %u\n", cpus,
		lapic_id());
	lapic_write(0xf0, 0x1ff);	/* software-enable the local APIC */
	if (cpus > 1) {
		send_ipi(ICR_ALL_BUT_SELF | ICR_INIT | ICR_ASSERT);
		send_ipi(ICR_ALL_BUT_SELF | ICR_STARTUP | 0x10);
	}
	/* About 10 s at this machine's guest speed, then give up. */
	for (spins = 0; online < cpus && spins < 20000000; spins++)
		cpu_relax();
	gprintf("smp: %u of %u CPUs online\n", online, cpus);
	guest_exit(online == cpus ? 0 : 1);
}
