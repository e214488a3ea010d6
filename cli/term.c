/*
 * term.c - raw mode for an interactive console: keys go to the guest
 * unchanged (Ctrl-C included; Ctrl-A x leaves), output is not rewritten
 * (guests send their own carriage returns, as on a real serial line).
 * CLI only; the caller restores the saved state on every exit path.
 */
#include <errno.h>
#include <termios.h>

#include "lkvm/cli/cli.h"

int term_raw(int fd, struct termios *saved)
{
	struct termios t;

	if (tcgetattr(fd, saved) < 0)
		return -errno;
	t = *saved;
	cfmakeraw(&t);
	if (tcsetattr(fd, TCSAFLUSH, &t) < 0)
		return -errno;
	return 0;
}

void term_restore(int fd, const struct termios *saved)
{
	tcsetattr(fd, TCSAFLUSH, saved);
}
