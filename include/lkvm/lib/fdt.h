/*
 * fdt.h - a small flattened-device-tree writer (the format of the
 * Devicetree Specification, chapter 5), enough to describe a VM: nodes,
 * properties, a deduplicated strings block, no reserve entries beyond
 * the terminator.  Errors (out of memory, unbalanced nodes) stick and
 * are reported by fdt_finish().
 */
#ifndef LKVM_FDT_H
#define LKVM_FDT_H

#include <stddef.h>
#include <stdint.h>

struct fdt {
	uint8_t *structs;	/* the structure block being built */
	size_t slen, scap;
	char *strings;		/* property names */
	size_t tlen, tcap;
	int depth;
	int err;
};

void fdt_init(struct fdt *f);
void fdt_begin_node(struct fdt *f, const char *name);
void fdt_end_node(struct fdt *f);
void fdt_prop(struct fdt *f, const char *name, const void *val, size_t len);
void fdt_prop_u32(struct fdt *f, const char *name, uint32_t v);
void fdt_prop_u64(struct fdt *f, const char *name, uint64_t v);
/* A list of 32-bit cells, host order in, big-endian out. */
void fdt_prop_cells(struct fdt *f, const char *name, const uint32_t *cells,
		    size_t n);
void fdt_prop_string(struct fdt *f, const char *name, const char *s);
void fdt_prop_empty(struct fdt *f, const char *name);
/*
 * Lays out the blob (header, reserve map, structs, strings) in a new
 * buffer: returns its size, or a negative errno; frees the builder.
 */
long fdt_finish(struct fdt *f, uint8_t **blob);

#endif
