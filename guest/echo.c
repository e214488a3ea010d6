/*
 * echo - reads console input from the UART (polling LSR) and prints each
 * line back upper-cased, until a line "quit" (QUIT once upper-cased); exits 0.  Tests that
 * input reaches the guest when stdin is a pipe.
 */
#include "runtime/guest.h"

static char read_char(void)
{
	while (!(inb(COM1 + 5) & 1))
		cpu_relax();
	return inb(COM1);
}

void main(void)
{
	char line[80];
	unsigned int n = 0;

	gprintf("echo: ready\n");
	for (;;) {
		char c = read_char();

		if (c == '\r' || c == '\n') {
			line[n] = '\0';
			if (n == 4 && line[0] == 'Q' && line[1] == 'U' &&
			    line[2] == 'I' && line[3] == 'T')
				guest_exit(0);
			gprintf("echo: %s\n", line);
			n = 0;
			continue;
		}
		if (c >= 'a' && c <= 'z')
			c -= 'a' - 'A';
		if (n < sizeof(line) - 1)
			line[n++] = c;
	}
}
