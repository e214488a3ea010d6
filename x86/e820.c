/*
 * e820.c - the guest's physical memory map: RAM below the EBDA, the
 * reserved legacy area up to 1 MiB (MP table, "BIOS"), then every RAM
 * slot.  Pure; used by the bzImage and PVH loaders and by unit tests.
 */
#include "lkvm/lib/util.h"
#include "lkvm/x86/e820.h"
#include "lkvm/x86/layout.h"

static unsigned int e820_add(struct boot_e820_entry *e, unsigned int n,
			     unsigned int max, uint64_t addr, uint64_t size,
			     uint32_t type)
{
	if (n < max && size) {
		e[n].addr = addr;
		e[n].size = size;
		e[n].type = type;
		n++;
	}
	return n;
}

unsigned int e820_build(const struct guest_memory *m,
			struct boot_e820_entry *e, unsigned int max)
{
	unsigned int i, n = 0;

	for (i = 0; i < m->nslots; i++) {
		uint64_t start = m->slots[i].gpa;
		uint64_t end = start + m->slots[i].size;

		if (start < X86_HIGH_MEM) {
			/* The slot at 0 also covers the legacy area. */
			n = e820_add(e, n, max, start,
				     MIN(end, X86_EBDA_START) - start,
				     E820_TYPE_RAM);
			n = e820_add(e, n, max, X86_EBDA_START,
				     X86_HIGH_MEM - X86_EBDA_START,
				     E820_TYPE_RESERVED);
			start = X86_HIGH_MEM;
		}
		if (end > start)
			n = e820_add(e, n, max, start, end - start,
				     E820_TYPE_RAM);
	}
	return n;
}
