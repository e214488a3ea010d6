/*
 * aml.h - a writer of ACPI Machine Language (ACPI 6.x, chapter 20): the
 * few terms a VMM's DSDT needs.  Names, integers, strings, EISA IDs,
 * packages, buffers, scopes, devices, and resource templates (chapter
 * 6.4 descriptors).  Knows no VM; pure, so it is unit-tested against
 * iasl.
 *
 * Terms nest: a *_begin() returns a mark, aml_end() closes the term
 * there, writing its PkgLength.  Errors (no memory, a bad name) stick in
 * a->err and make every later call a no-op.
 */
#ifndef LKVM_AML_H
#define LKVM_AML_H

#include <stddef.h>
#include <stdint.h>

struct aml {
	uint8_t *buf;
	size_t len, cap;
	int err;
};

void aml_init(struct aml *a);
void aml_free(struct aml *a);
void aml_bytes(struct aml *a, const void *p, size_t n);
void aml_byte(struct aml *a, uint8_t v);

/* A name: "XYZ_" segments joined by '.', optionally after '\' (root). */
void aml_name_string(struct aml *a, const char *name);
/* Name(NAME, ...): the value follows as the next term. */
void aml_name(struct aml *a, const char *name);
void aml_integer(struct aml *a, uint64_t v);
void aml_string(struct aml *a, const char *s);
/* A compressed EISA ID ("PNP0A03") as a DWord integer. */
void aml_eisaid(struct aml *a, const char *id);

size_t aml_scope_begin(struct aml *a, const char *name);
size_t aml_device_begin(struct aml *a, const char *name);
/* Package(n) { ... }: n elements follow. */
size_t aml_package_begin(struct aml *a, unsigned int n);
void aml_end(struct aml *a, size_t mark);
/* Buffer() { bytes } of n bytes. */
void aml_buffer(struct aml *a, const void *p, size_t n);

/*
 * Resource descriptors, written into their own struct aml and given to
 * aml_resource_template(), which adds the end tag and makes the Buffer.
 */
void aml_res_io(struct aml *r, uint16_t base, uint8_t len);
void aml_res_irq_isa(struct aml *r, unsigned int irq);	/* edge, high */
void aml_res_memory32_fixed(struct aml *r, uint32_t base, uint32_t len);
/* Extended Interrupt: level-triggered, active-high, shared or not. */
void aml_res_interrupt(struct aml *r, uint32_t gsi, int shared);
void aml_res_word_bus(struct aml *r, uint16_t min, uint16_t max);
void aml_res_word_io(struct aml *r, uint16_t min, uint16_t max);
void aml_res_dword_memory(struct aml *r, uint32_t min, uint32_t max);
void aml_resource_template(struct aml *a, const struct aml *r);

#endif
