/*
 * Fuzz target for what a user types: "lkvm run" argument vectors (the
 * input split at NUL bytes) through the command-line parser, and the
 * input as a -d and a -n specification through the disk and network
 * spec parsers.  Anything may be refused; nothing may crash or leak.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lkvm/cli/cli.h"
#include "lkvm/disk/disk.h"
#include "lkvm/net/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), *argv[65], err[256];
	struct disk_spec ds;
	struct net_spec ns;
	struct cli_run r;
	int argc = 1;
	size_t i;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (!disk_spec_parse(s, &ds, err, sizeof(err)))
		disk_spec_free(&ds);
	if (!net_spec_parse(s, &ns, err, sizeof(err)))
		net_spec_free(&ns);
	argv[0] = "run";
	argv[argc++] = s;
	for (i = 0; i < size && argc < 64; i++)
		if (!s[i])
			argv[argc++] = s + i + 1;
	argv[argc] = NULL;
	cli_parse_run(argc, argv, &r, err, sizeof(err));
	cli_run_free(&r);
	free(s);
	return 0;
}

#ifndef LKVM_LIBFUZZER
#include "replay.h"

int main(int argc, char **argv)
{
	return replay_main(argc, argv, "command lines and specs", 256, false);
}
#endif
