/*
 * aml.c - the AML writer (see aml.h), from the ACPI 6.x specification's
 * grammar (20.2) and resource descriptors (6.4).  No thread concerns:
 * it writes into its own buffer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lkvm/lib/aml.h"

#define AML_ZERO	0x00
#define AML_ONE		0x01
#define AML_NAME	0x08
#define AML_BYTE	0x0a
#define AML_WORD	0x0b
#define AML_DWORD	0x0c
#define AML_STRING	0x0d
#define AML_QWORD	0x0e
#define AML_SCOPE	0x10
#define AML_BUFFER	0x11
#define AML_PACKAGE	0x12
#define AML_DUAL_NAME	0x2e
#define AML_MULTI_NAME	0x2f
#define AML_EXT		0x5b
#define AML_DEVICE	0x82		/* after AML_EXT */
#define AML_ROOT	0x5c
#define AML_ONES	0xff
#define AML_PKG_RESERVE	4		/* the longest PkgLength */

void aml_init(struct aml *a)
{
	memset(a, 0, sizeof(*a));
}

void aml_free(struct aml *a)
{
	free(a->buf);
	aml_init(a);
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
	if (a->err)
		return;
	if (a->len + n > a->cap) {
		size_t cap = a->cap ? a->cap : 256;
		uint8_t *b;

		while (cap < a->len + n)
			cap *= 2;
		b = realloc(a->buf, cap);
		if (!b) {
			a->err = -ENOMEM;
			return;
		}
		a->buf = b;
		a->cap = cap;
	}
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

void aml_byte(struct aml *a, uint8_t v)
{
	aml_bytes(a, &v, 1);
}

static void aml_le(struct aml *a, uint64_t v, unsigned int n)
{
	uint8_t b[8];
	unsigned int i;

	for (i = 0; i < n; i++)
		b[i] = v >> (8 * i);
	aml_bytes(a, b, n);
}

/* A NameSeg: 1-4 of A-Z 0-9 _ (not a digit first), padded with '_'. */
static void aml_seg(struct aml *a, const char *s, size_t n)
{
	char seg[4] = { '_', '_', '_', '_' };
	size_t i;

	if (!n || n > 4 || (s[0] >= '0' && s[0] <= '9')) {
		a->err = -EINVAL;
		return;
	}
	for (i = 0; i < n; i++) {
		if (!((s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_')) {
			a->err = -EINVAL;
			return;
		}
		seg[i] = s[i];
	}
	aml_bytes(a, seg, 4);
}

void aml_name_string(struct aml *a, const char *name)
{
	const char *p = name, *dot;
	unsigned int nseg = 1;

	if (*p == '\\') {
		aml_byte(a, AML_ROOT);
		p++;
	}
	for (dot = p; (dot = strchr(dot, '.')); dot++)
		nseg++;
	if (nseg == 2) {
		aml_byte(a, AML_DUAL_NAME);
	} else if (nseg > 2) {
		aml_byte(a, AML_MULTI_NAME);
		aml_byte(a, nseg);
	}
	while (nseg--) {
		size_t n = strcspn(p, ".");

		aml_seg(a, p, n);
		p += n + (p[n] == '.');
	}
}

void aml_name(struct aml *a, const char *name)
{
	aml_byte(a, AML_NAME);
	aml_name_string(a, name);
}

void aml_integer(struct aml *a, uint64_t v)
{
	if (v == 0) {
		aml_byte(a, AML_ZERO);
	} else if (v == 1) {
		aml_byte(a, AML_ONE);
	} else if (v <= 0xff) {
		aml_byte(a, AML_BYTE);
		aml_le(a, v, 1);
	} else if (v <= 0xffff) {
		aml_byte(a, AML_WORD);
		aml_le(a, v, 2);
	} else if (v <= 0xffffffff) {
		aml_byte(a, AML_DWORD);
		aml_le(a, v, 4);
	} else {
		aml_byte(a, AML_QWORD);
		aml_le(a, v, 8);
	}
}

void aml_string(struct aml *a, const char *s)
{
	size_t i, n = strlen(s);

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] > 0x7f)
			a->err = -EINVAL;
	aml_byte(a, AML_STRING);
	aml_bytes(a, s, n + 1);
}

/* "PNP0A03": three letters (5 bits each), four hex digits, big-endian. */
void aml_eisaid(struct aml *a, const char *id)
{
	uint32_t v = 0;
	unsigned int i;

	if (strlen(id) != 7) {
		a->err = -EINVAL;
		return;
	}
	for (i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z')
			a->err = -EINVAL;
		v = v << 5 | ((id[i] - 'A' + 1) & 0x1f);
	}
	for (i = 3; i < 7; i++) {
		char c = id[i];
		unsigned int d = c >= '0' && c <= '9' ? (unsigned int)(c - '0') :
				 c >= 'A' && c <= 'F' ? (unsigned int)(c - 'A' + 10) : 16;

		if (d > 15)
			a->err = -EINVAL;
		v = v << 4 | (d & 0xf);
	}
	/* Stored as the bytes of the big-endian value. */
	aml_byte(a, AML_DWORD);
	aml_byte(a, v >> 24);
	aml_byte(a, v >> 16);
	aml_byte(a, v >> 8);
	aml_byte(a, v);
}

/* Room for the longest PkgLength; aml_end() squeezes it to fit. */
static size_t aml_pkg_begin(struct aml *a)
{
	static const uint8_t room[AML_PKG_RESERVE];
	size_t mark = a->len;

	aml_bytes(a, room, sizeof(room));
	return mark;
}

void aml_end(struct aml *a, size_t mark)
{
	size_t body, total, n;
	uint8_t enc[AML_PKG_RESERVE];

	if (a->err)
		return;
	body = a->len - mark - AML_PKG_RESERVE;
	/* PkgLength counts its own bytes and what follows it. */
	for (n = 1; n <= AML_PKG_RESERVE; n++) {
		total = body + n;
		if (n == 1 ? total < 0x40 : total < (1ULL << (4 + 8 * (n - 1))))
			break;
	}
	if (n > AML_PKG_RESERVE) {
		a->err = -E2BIG;
		return;
	}
	if (n == 1) {
		enc[0] = total;
	} else {
		size_t i;

		enc[0] = (n - 1) << 6 | (total & 0xf);
		for (i = 1; i < n; i++)
			enc[i] = total >> (4 + 8 * (i - 1));
	}
	memmove(a->buf + mark + n, a->buf + mark + AML_PKG_RESERVE, body);
	memcpy(a->buf + mark, enc, n);
	a->len = mark + n + body;
}

size_t aml_scope_begin(struct aml *a, const char *name)
{
	size_t mark;

	aml_byte(a, AML_SCOPE);
	mark = aml_pkg_begin(a);
	aml_name_string(a, name);
	return mark;
}

size_t aml_device_begin(struct aml *a, const char *name)
{
	size_t mark;

	aml_byte(a, AML_EXT);
	aml_byte(a, AML_DEVICE);
	mark = aml_pkg_begin(a);
	aml_name_string(a, name);
	return mark;
}

size_t aml_package_begin(struct aml *a, unsigned int n)
{
	size_t mark;

	aml_byte(a, AML_PACKAGE);
	mark = aml_pkg_begin(a);
	if (n > 0xff)
		a->err = -E2BIG;
	aml_byte(a, n);
	return mark;
}

void aml_buffer(struct aml *a, const void *p, size_t n)
{
	size_t mark;

	aml_byte(a, AML_BUFFER);
	mark = aml_pkg_begin(a);
	aml_integer(a, n);
	aml_bytes(a, p, n);
	aml_end(a, mark);
}

/* --- resource descriptors (ACPI 6.4) --- */

/* I/O port, 16-bit decode, fixed at base. */
void aml_res_io(struct aml *r, uint16_t base, uint8_t len)
{
	aml_byte(r, 0x47);
	aml_byte(r, 1);			/* decodes 16 bits */
	aml_le(r, base, 2);		/* minimum */
	aml_le(r, base, 2);		/* maximum */
	aml_byte(r, 1);			/* alignment */
	aml_byte(r, len);
}

/* IRQ descriptor without flags byte: ISA, edge, active high. */
void aml_res_irq_isa(struct aml *r, unsigned int irq)
{
	aml_byte(r, 0x22);
	aml_le(r, irq < 16 ? 1u << irq : 0, 2);
	if (irq >= 16)
		r->err = -EINVAL;
}

void aml_res_memory32_fixed(struct aml *r, uint32_t base, uint32_t len)
{
	aml_byte(r, 0x86);
	aml_le(r, 9, 2);
	aml_byte(r, 1);			/* read-write */
	aml_le(r, base, 4);
	aml_le(r, len, 4);
}

void aml_res_interrupt(struct aml *r, uint32_t gsi, int shared)
{
	aml_byte(r, 0x89);
	aml_le(r, 6, 2);
	/* Consumer (bit 0), level (bit 1 clear), active high, sharing. */
	aml_byte(r, 0x01 | (shared ? 0x08 : 0));
	aml_byte(r, 1);
	aml_le(r, gsi, 4);
}

/* Word address space: type 0 memory, 1 I/O, 2 bus number. */
static void aml_res_word(struct aml *r, uint8_t type, uint8_t tflags,
			 uint16_t min, uint16_t max)
{
	aml_byte(r, 0x88);
	aml_le(r, 13, 2);
	aml_byte(r, type);
	aml_byte(r, 0x0c);		/* min and max fixed, producer */
	aml_byte(r, tflags);
	aml_le(r, 0, 2);		/* granularity */
	aml_le(r, min, 2);
	aml_le(r, max, 2);
	aml_le(r, 0, 2);		/* translation */
	aml_le(r, (uint32_t)max - min + 1, 2);
}

void aml_res_word_bus(struct aml *r, uint16_t min, uint16_t max)
{
	aml_res_word(r, 2, 0, min, max);
}

void aml_res_word_io(struct aml *r, uint16_t min, uint16_t max)
{
	aml_res_word(r, 1, 3, min, max);	/* ISA and non-ISA ranges */
}

void aml_res_dword_memory(struct aml *r, uint32_t min, uint32_t max)
{
	aml_byte(r, 0x87);
	aml_le(r, 23, 2);
	aml_byte(r, 0);			/* memory */
	aml_byte(r, 0x0c);
	aml_byte(r, 0x03);		/* read-write, non-cacheable */
	aml_le(r, 0, 4);
	aml_le(r, min, 4);
	aml_le(r, max, 4);
	aml_le(r, 0, 4);
	aml_le(r, max - min + 1, 4);
}

void aml_resource_template(struct aml *a, const struct aml *r)
{
	/* End tag; a zero checksum means "not checked" (6.4.2.9). */
	static const uint8_t end[2] = { 0x79, 0 };
	struct aml t;

	if (r->err) {
		a->err = r->err;
		return;
	}
	aml_init(&t);
	aml_bytes(&t, r->buf, r->len);
	aml_bytes(&t, end, sizeof(end));
	if (t.err)
		a->err = t.err;
	else
		aml_buffer(a, t.buf, t.len);
	aml_free(&t);
}
