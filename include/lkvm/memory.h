/*
 * memory.h - guest RAM: one anonymous mapping cut into KVM memory slots,
 * and the only way anything in lkvm turns a guest-physical address into a
 * host pointer.  Set up before vCPUs start; read-only afterwards, so any
 * thread may translate without locking.
 */
#ifndef LKVM_MEMORY_H
#define LKVM_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_MEM_MAX_SLOTS 4

struct mem_region {
	uint64_t gpa;
	uint64_t size;
};

struct guest_memory {
	struct mem_slot {
		uint64_t gpa;
		uint64_t size;
		uint8_t *hva;
	} slots[GUEST_MEM_MAX_SLOTS];
	unsigned int nslots;
	uint8_t *map;
	size_t map_size;
};

/* Maps RAM for the given regions (sorted, non-overlapping, page aligned). */
int guest_memory_init(struct guest_memory *m, const struct mem_region *r,
		      unsigned int n);
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

/* Total RAM and the end of the highest slot. */
uint64_t guest_memory_size(const struct guest_memory *m);

#endif
