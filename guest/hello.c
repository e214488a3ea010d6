/* hello - the demo guest: one line with its CPU count, then exit 0. */
#include "runtime/guest.h"

void main(void)
{
	gprintf("Hello from the lkvm test guest: %u CPU(s), running on APIC ID %u\n",
		mp_cpu_count(), lapic_id());
}
