/*
 * memory.c - guest RAM.  One anonymous MAP_NORESERVE mapping holds all
 * regions back to back, so only pages the guest (or a loader) touches use
 * host memory.  Immutable once the VM runs: translation takes no lock.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "lkvm/memory.h"
#include "lkvm/lib/util.h"

int guest_memory_init(struct guest_memory *m, const struct mem_region *r,
		      unsigned int n)
{
	uint64_t total = 0, prev_end = 0;
	unsigned int i;
	void *map;

	memset(m, 0, sizeof(*m));
	if (n == 0 || n > GUEST_MEM_MAX_SLOTS)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (!r[i].size || (r[i].gpa | r[i].size) & 0xfff ||
		    range_overflows(r[i].gpa, r[i].size) ||
		    (i && r[i].gpa < prev_end) ||
		    range_overflows(total, r[i].size))
			return -EINVAL;
		prev_end = r[i].gpa + r[i].size;
		total += r[i].size;
	}
	if (total > SIZE_MAX)
		return -ENOMEM;
	map = mmap(NULL, total, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (map == MAP_FAILED)
		return -ENOMEM;
	/* Guest RAM should not end up in a core dump of the VMM. */
	madvise(map, total, MADV_DONTDUMP);
	m->map = map;
	m->map_size = total;
	total = 0;
	for (i = 0; i < n; i++) {
		m->slots[i].gpa = r[i].gpa;
		m->slots[i].size = r[i].size;
		m->slots[i].hva = m->map + total;
		total += r[i].size;
	}
	m->nslots = n;
	return 0;
}

int guest_memory_register(struct guest_memory *m, int vm_fd)
{
	unsigned int i;

	for (i = 0; i < m->nslots; i++) {
		struct kvm_userspace_memory_region reg = {
			.slot = i,
			.guest_phys_addr = m->slots[i].gpa,
			.memory_size = m->slots[i].size,
			.userspace_addr = (uintptr_t)m->slots[i].hva,
		};

		if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &reg) < 0)
			return -errno;
	}
	return 0;
}

void guest_memory_free(struct guest_memory *m)
{
	if (m->map)
		munmap(m->map, m->map_size);
	memset(m, 0, sizeof(*m));
}

void *guest_ptr(const struct guest_memory *m, uint64_t gpa, uint64_t len)
{
	unsigned int i;

	for (i = 0; i < m->nslots; i++) {
		const struct mem_slot *s = &m->slots[i];

		if (range_within(gpa, len, s->gpa, s->size))
			return s->hva + (gpa - s->gpa);
	}
	return NULL;
}

int guest_read(const struct guest_memory *m, uint64_t gpa, void *buf,
	       size_t len)
{
	void *p = guest_ptr(m, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(buf, p, len);
	return 0;
}

int guest_write(const struct guest_memory *m, uint64_t gpa, const void *buf,
		size_t len)
{
	void *p = guest_ptr(m, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(p, buf, len);
	return 0;
}

uint64_t guest_memory_size(const struct guest_memory *m)
{
	return m->map_size;
}
