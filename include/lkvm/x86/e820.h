/*
 * e820.h - the x86 physical memory map given to guests (boot_params and
 * PVH start info), derived from guest RAM and the fixed layout.
 */
#ifndef LKVM_X86_E820_H
#define LKVM_X86_E820_H

#include <asm/bootparam.h>

#include "lkvm/memory.h"

#define E820_TYPE_RAM		1
#define E820_TYPE_RESERVED	2

/* Returns the number of entries written, at most max. */
unsigned int e820_build(const struct guest_memory *m,
			struct boot_e820_entry *e, unsigned int max);

#endif
