/* exitcode - exits through the debug-exit port with a fixed status, 42. */
#include "runtime/guest.h"

void main(void)
{
	gprintf("exitcode: leaving with status 42\n");
	guest_exit(42);
}
