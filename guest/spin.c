/* spin - never ends on its own (sleeps with interrupts on): for --timeout. */
#include "runtime/guest.h"

void main(void)
{
	gprintf("spin: waiting forever\n");
	for (;;)
		wait_for_irq();
}
