/*
 * memory.h - guest RAM: one mapping cut into KVM memory slots,
 * and the only way anything in lkvm turns a guest-physical address into a
 * host pointer.  Set up before vCPUs start; read-only afterwards, so any
 * thread may translate without locking.
 */
#ifndef LKVM_MEMORY_H
#define LKVM_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lkvm.h"

#define GUEST_MEM_MAX_SLOTS 4

struct mem_region {
	uint64_t gpa;
	uint64_t size;
};

/* What backs guest RAM: the configuration's choice (lkvm.h). */
struct guest_mem_opts {
	enum lkvm_ram_backing backing;
	const char *hugetlbfs;	/* LKVM_RAM_HUGETLBFS: the mount */
};

struct guest_memory {
	struct mem_slot {
		uint64_t gpa;
		uint64_t size;
		uint8_t *hva;
	} slots[GUEST_MEM_MAX_SLOTS];
	unsigned int nslots;
	uint8_t *map;
	size_t map_size;	/* the whole mapping, gaps included */
	uint64_t ram_size;	/* the slots' sizes added up */
	enum lkvm_ram_backing backing;	/* what was obtained */
	size_t hugetlb_page;	/* hugetlb page size, or 0 */
};

/*
 * Maps RAM for the given regions (sorted, non-overlapping, page aligned).
 * Each slot's host address is 2 MiB aligned, 1 GiB aligned for a slot
 * that large, so KVM can map it with huge stage-2 pages.  o NULL: anon.
 */
int guest_memory_init(struct guest_memory *m, const struct mem_region *r,
		      unsigned int n, const struct guest_mem_opts *o);
/* Guest RAM the host holds now: resident, and of that huge pages. */
struct guest_memory_usage {
	uint64_t rss_bytes;
	uint64_t huge_bytes;
};

/* From /proc/self/smaps; 0, or -errno (u zeroed). */
int guest_memory_usage(const struct guest_memory *m,
		       struct guest_memory_usage *u);
/* Gives a page-aligned host range of guest RAM back to the host. */
void guest_memory_discard(const struct guest_memory *m, void *hva,
			  size_t len);
const char *guest_memory_backing_name(const struct guest_memory *m);
/* Registers every slot with the VM (KVM_SET_USER_MEMORY_REGION). */
int guest_memory_register(struct guest_memory *m, int vm_fd);
void guest_memory_free(struct guest_memory *m);

/*
 * Host pointer for [gpa, gpa+len), or NULL unless the whole range lies in
 * one slot.  len 0 is allowed (returns the pointer if gpa is in a slot or
 * at its end).
 */
void *guest_ptr(const struct guest_memory *m, uint64_t gpa, uint64_t len);

/* Copies in or out of guest RAM; -EFAULT if the range is not RAM. */
int guest_read(const struct guest_memory *m, uint64_t gpa, void *buf,
	       size_t len);
int guest_write(const struct guest_memory *m, uint64_t gpa, const void *buf,
		size_t len);

/* Total RAM: the slots' sizes added up. */
uint64_t guest_memory_size(const struct guest_memory *m);

#endif
