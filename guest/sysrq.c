/*
 * sysrq - waits on the UART for a magic SysRq as Linux's 8250 driver
 * sees one: a received byte with the break bit (LSR.BI) set, then the
 * key.  Prints what it got and exits with the key as its status.
 */
#include "runtime/guest.h"

#define LSR_DR	0x01
#define LSR_BI	0x10

static uint8_t wait_lsr(void)
{
	uint8_t lsr;

	while (!((lsr = inb(COM1 + 5)) & LSR_DR))
		cpu_relax();
	return lsr;
}

void main(void)
{
	uint8_t lsr, brk, key;

	gprintf("sysrq: ready\n");
	for (;;) {
		lsr = wait_lsr();
		brk = inb(COM1);
		if (lsr & LSR_BI)
			break;
		gprintf("sysrq: plain byte %x before the break\n", brk);
	}
	lsr = wait_lsr();
	key = inb(COM1);
	gprintf("sysrq: break (byte %x), then key '%c'%s\n", brk, key,
		lsr & LSR_BI ? " also with BI (wrong)" : "");
	guest_exit(key);
}
