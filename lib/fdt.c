/*
 * fdt.c - the flattened device tree writer (see fdt.h).  Layout, from
 * the Devicetree Specification: a 40-byte big-endian header, the memory
 * reservation block (here only its terminating zero entry), the
 * structure block (BEGIN_NODE name / PROP len nameoff value / END_NODE,
 * each 4-byte aligned, then END) and the strings block.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lkvm/lib/fdt.h"

#define FDT_MAGIC		0xd00dfeed
#define FDT_VERSION		17
#define FDT_LAST_COMP_VERSION	16
#define FDT_BEGIN_NODE		1
#define FDT_END_NODE		2
#define FDT_PROP		3
#define FDT_END			9
#define FDT_HEADER_SIZE		40
#define FDT_RSVMAP_SIZE		16	/* one zero entry */

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static void *grow(void *buf, size_t *cap, size_t need, int *err)
{
	size_t n = *cap ? *cap : 256;
	void *p;

	if (need <= *cap)
		return buf;
	while (n < need)
		n *= 2;
	p = realloc(buf, n);
	if (!p) {
		*err = -ENOMEM;
		return NULL;
	}
	*cap = n;
	return p;
}

/* Appends len bytes (and zero padding to 4) to the structure block. */
static void emit(struct fdt *f, const void *data, size_t len)
{
	size_t padded = (len + 3) & ~(size_t)3;
	uint8_t *p;

	if (f->err)
		return;
	p = grow(f->structs, &f->scap, f->slen + padded, &f->err);
	if (!p)
		return;
	f->structs = p;
	if (len)
		memcpy(p + f->slen, data, len);
	memset(p + f->slen + len, 0, padded - len);
	f->slen += padded;
}

static void emit_u32(struct fdt *f, uint32_t v)
{
	uint8_t b[4];

	put_be32(b, v);
	emit(f, b, 4);
}

/* Offset of name in the strings block, adding it once. */
static uint32_t string_off(struct fdt *f, const char *name)
{
	size_t n = strlen(name) + 1, off = 0;
	char *p;

	while (off < f->tlen) {
		if (!strcmp(f->strings + off, name))
			return off;
		off += strlen(f->strings + off) + 1;
	}
	p = grow(f->strings, &f->tcap, f->tlen + n, &f->err);
	if (!p)
		return 0;
	f->strings = p;
	memcpy(p + f->tlen, name, n);
	f->tlen += n;
	return off;
}

void fdt_init(struct fdt *f)
{
	memset(f, 0, sizeof(*f));
}

void fdt_begin_node(struct fdt *f, const char *name)
{
	emit_u32(f, FDT_BEGIN_NODE);
	emit(f, name, strlen(name) + 1);
	f->depth++;
}

void fdt_end_node(struct fdt *f)
{
	if (f->depth-- <= 0 && !f->err)
		f->err = -EINVAL;
	emit_u32(f, FDT_END_NODE);
}

void fdt_prop(struct fdt *f, const char *name, const void *val, size_t len)
{
	uint32_t off = string_off(f, name);

	if (!f->depth && !f->err)
		f->err = -EINVAL;	/* properties live in nodes */
	emit_u32(f, FDT_PROP);
	emit_u32(f, len);
	emit_u32(f, off);
	emit(f, val, len);
}

void fdt_prop_cells(struct fdt *f, const char *name, const uint32_t *cells,
		    size_t n)
{
	uint8_t *b = malloc(n * 4 + 1);
	size_t i;

	if (!b) {
		f->err = -ENOMEM;
		return;
	}
	for (i = 0; i < n; i++)
		put_be32(b + 4 * i, cells[i]);
	fdt_prop(f, name, b, n * 4);
	free(b);
}

void fdt_prop_u32(struct fdt *f, const char *name, uint32_t v)
{
	fdt_prop_cells(f, name, &v, 1);
}

void fdt_prop_u64(struct fdt *f, const char *name, uint64_t v)
{
	uint32_t c[2] = { v >> 32, (uint32_t)v };

	fdt_prop_cells(f, name, c, 2);
}

void fdt_prop_string(struct fdt *f, const char *name, const char *s)
{
	fdt_prop(f, name, s, strlen(s) + 1);
}

void fdt_prop_empty(struct fdt *f, const char *name)
{
	fdt_prop(f, name, NULL, 0);
}

long fdt_finish(struct fdt *f, uint8_t **blob)
{
	size_t off_struct, off_strings, total;
	uint8_t *b;
	long ret;

	emit_u32(f, FDT_END);
	if (!f->err && f->depth)
		f->err = -EINVAL;
	ret = f->err;
	if (ret)
		goto out;
	off_struct = FDT_HEADER_SIZE + FDT_RSVMAP_SIZE;
	off_strings = off_struct + f->slen;
	total = off_strings + f->tlen;
	b = calloc(1, total);
	if (!b) {
		ret = -ENOMEM;
		goto out;
	}
	put_be32(b + 0, FDT_MAGIC);
	put_be32(b + 4, total);
	put_be32(b + 8, off_struct);
	put_be32(b + 12, off_strings);
	put_be32(b + 16, FDT_HEADER_SIZE);	/* reserve map */
	put_be32(b + 20, FDT_VERSION);
	put_be32(b + 24, FDT_LAST_COMP_VERSION);
	put_be32(b + 28, 0);			/* boot CPU */
	put_be32(b + 32, f->tlen);
	put_be32(b + 36, f->slen);
	/* A tree without properties has no strings block to copy (NULL). */
	if (f->slen)
		memcpy(b + off_struct, f->structs, f->slen);
	if (f->tlen)
		memcpy(b + off_strings, f->strings, f->tlen);
	*blob = b;
	ret = total;
out:
	free(f->structs);
	free(f->strings);
	memset(f, 0, sizeof(*f));
	return ret;
}
