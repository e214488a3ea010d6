/*
 * replay.h - the main() of a fuzz target built without libFuzzer (make
 * check): feeds the target random inputs from a fixed seed, or the
 * files named on the command line (a crash reproducer).  A crash or a
 * sanitizer report ends the process, so reaching the end is the one
 * behaviour this checks: it reports one test, not one per input.
 */
#ifndef LKVM_FUZZ_REPLAY_H
#define LKVM_FUZZ_REPLAY_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t replay_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * runs inputs of up to max bytes; with small, most bytes are below 8
 * (indices and lengths that look valid get further into a parser).
 */
static int replay_main(int argc, char **argv, const char *what, size_t max,
		       bool small)
{
	uint8_t *buf = malloc(max ? max : 1);
	uint64_t s = 88172645463325252ULL;
	long runs = 20000, n;
	size_t j;

	if (!buf)
		return 1;
	if (argc > 1 && argv[1][0] != '/' && argv[1][0] != '.') {
		runs = atol(argv[1]);
	} else if (argc > 1) {
		for (n = 1; n < argc; n++) {
			FILE *f = fopen(argv[n], "rb");
			size_t len = f ? fread(buf, 1, max, f) : 0;

			if (f)
				fclose(f);
			LLVMFuzzerTestOneInput(buf, len);
		}
		printf("PASS %s: %d file(s) replayed\n1 passed, 0 failed\n",
		       what, argc - 1);
		return 0;
	}
	for (n = 0; n < runs; n++) {
		size_t len = replay_next(&s) % (max + 1);

		for (j = 0; j < len; j++) {
			uint64_t r = replay_next(&s);

			buf[j] = small && (r & 3) ? (uint8_t)(r >> 8) % 8 :
						     (uint8_t)(r >> 8);
		}
		LLVMFuzzerTestOneInput(buf, len);
	}
	free(buf);
	printf("PASS %s: %ld random inputs replayed\n1 passed, 0 failed\n",
	       what, runs);
	return 0;
}

#endif
