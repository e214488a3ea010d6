/*
 * cmdline.c - the kernel command line lkvm puts before the user's for a
 * Linux kernel, as kvmtool does: the console, the root disk, panic and
 * reboot behaviour.  The user's words come after and win (Linux takes
 * the last of a repeated parameter).  Pure; unit-tested.
 */
#include <stdio.h>
#include <string.h>

#include "lkvm/machine.h"

/* Whether the user's line sets key (a word starting "key="). */
static bool cmdline_has(const char *line, const char *key)
{
	size_t n = strlen(key);
	const char *p = line;

	while (p && *p) {
		while (*p == ' ')
			p++;
		if (!strncmp(p, key, n))
			return true;
		p = strchr(p, ' ');
	}
	return false;
}

int cmdline_defaults(const struct cmdline_defaults_in *in, char *buf,
		     size_t len)
{
	int n = snprintf(buf, len, "%s%s%s%s",
			 in->virtio_console ? "console=hvc0" : in->serial_args,
			 !cmdline_has(in->user, "root=") && in->root_disk_rw ?
			 " root=/dev/vda rw" : "",
			 cmdline_has(in->user, "panic=") ? "" : " panic=-1",
			 in->reboot_k ? " reboot=k" : "");

	return n < 0 || (size_t)n >= len ? -1 : n;
}
