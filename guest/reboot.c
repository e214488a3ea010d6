/* reboot - asks the keyboard controller for a CPU reset (0xfe to 0x64). */
#include "runtime/guest.h"

void main(void)
{
	gprintf("reboot: resetting through the i8042\n");
	outb(0x64, 0xfe);
	gprintf("reboot: still running after the reset command\n");
	guest_exit(1);
}
