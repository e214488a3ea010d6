/*
 * Fuzz target for the FDT writer (lib/fdt.c): the input is a program of
 * node, property and end operations with names and values taken from
 * it.  Whatever the names (empty, huge, repeated) and depths, the blob
 * that comes out must be a well-formed flattened device tree: a valid
 * header, every token and offset inside its block, nodes balanced.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lkvm/lib/fdt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
}

/* The blob must parse: header fields consistent, tokens balanced. */
static void check_blob(const uint8_t *b, long n)
{
	uint32_t off_struct, size_struct, off_strings, size_strings, p, depth = 0;

	if (n < 40 || be32(b) != 0xd00dfeed || be32(b + 4) != (uint32_t)n)
		abort();
	off_struct = be32(b + 8);
	off_strings = be32(b + 12);
	size_strings = be32(b + 32);
	size_struct = be32(b + 36);
	if ((uint64_t)off_struct + size_struct > (uint64_t)n ||
	    (uint64_t)off_strings + size_strings > (uint64_t)n)
		abort();
	for (p = off_struct; p + 4 <= off_struct + size_struct;) {
		uint32_t tok = be32(b + p), len, name;

		p += 4;
		switch (tok) {
		case 1:		/* BEGIN_NODE: a NUL-terminated name, padded */
			while (p < off_struct + size_struct && b[p])
				p++;
			p = (p + 4) & ~3u;
			depth++;
			break;
		case 2:		/* END_NODE */
			if (!depth--)
				abort();
			break;
		case 3:		/* PROP: len, nameoff, value */
			len = be32(b + p);
			name = be32(b + p + 4);
			if (name >= size_strings ||
			    (uint64_t)p + 8 + len > off_struct + size_struct)
				abort();
			p += 8 + ((len + 3) & ~3u);
			break;
		case 4:		/* NOP */
			break;
		case 9:		/* END */
			if (depth)
				abort();
			return;
		default:
			abort();
		}
	}
	abort();		/* no END token */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fdt f;
	uint8_t *blob = NULL;
	char name[300];
	unsigned int depth = 0;
	size_t i = 0;
	long n;

	fdt_init(&f);
	fdt_begin_node(&f, "");
	while (i + 2 <= size) {
		unsigned int op = data[i] % 4, len = data[i + 1];

		i += 2;
		if (len > size - i)
			len = size - i;
		memcpy(name, data + i, len > 255 ? 255 : len);
		name[len > 255 ? 255 : len] = '\0';
		i += len;
		if (op == 0 && depth < 64) {
			fdt_begin_node(&f, name);
			depth++;
		} else if (op == 1 && depth) {
			fdt_end_node(&f);
			depth--;
		} else if (op == 2) {
			fdt_prop(&f, name[0] ? name : "p", data + i - len, len);
		} else {
			fdt_prop_string(&f, name[0] ? name : "s", name);
		}
	}
	while (depth--)
		fdt_end_node(&f);
	fdt_end_node(&f);
	n = fdt_finish(&f, &blob);
	if (n >= 0)
		check_blob(blob, n);
	free(blob);
	return 0;
}

#ifndef LKVM_LIBFUZZER
#include "replay.h"

int main(int argc, char **argv)
{
	return replay_main(argc, argv, "device-tree programs", 2048, false);
}
#endif
