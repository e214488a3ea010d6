/*
 * memory.c - guest RAM.  One mapping holds all regions, each slot placed
 * at a host address congruent to its guest address modulo 2 MiB (1 GiB
 * for a slot that large): KVM maps guest memory with huge stage-2 pages
 * only where host and guest offsets agree, and an unaligned mapping
 * costs a fault per 4 KiB page.  The mapping is anonymous MAP_NORESERVE
 * (with transparent huge pages) or a memfd or hugetlbfs file, so only
 * pages the guest touches use host memory.  Immutable once the VM runs:
 * translation takes no lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "lkvm/memory.h"
#include "lkvm/lib/util.h"

#define SLOT_ALIGN	(2 * MiB)
#define SLOT_ALIGN_BIG	(1 * GiB)

static uint64_t slot_align(uint64_t size)
{
	return size >= SLOT_ALIGN_BIG ? SLOT_ALIGN_BIG : SLOT_ALIGN;
}

/* A hugetlbfs file, unlinked at once; its page size in *page. */
static int hugetlbfs_open(const char *dir, size_t *page)
{
	struct statfs sf;
	char path[4096];
	int fd;

	if (statfs(dir, &sf) < 0)
		return -errno;
	if (sf.f_type != HUGETLBFS_MAGIC)
		return -ENOTSUP;
	if (snprintf(path, sizeof(path), "%s/lkvm-ram-XXXXXX", dir) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(path);
	*page = sf.f_bsize;
	return fd;
}

/*
 * A memfd, hugetlb if the host has huge pages to give: a shared hugetlb
 * mapping reserves its pages at mmap time, so the trial mapping fails
 * cleanly where they are missing, and plain shmem is used instead.
 */
static int memfd_open(size_t span, size_t *page)
{
	int fd = memfd_create("lkvm-ram", MFD_CLOEXEC | MFD_HUGETLB);

	if (fd >= 0) {
		void *p = MAP_FAILED;

		if (ftruncate(fd, span) == 0)
			p = mmap(NULL, span, PROT_READ | PROT_WRITE,
				 MAP_SHARED, fd, 0);
		if (p != MAP_FAILED) {
			munmap(p, span);
			*page = SLOT_ALIGN;
			return fd;
		}
		close(fd);
	}
	*page = 0;
	fd = memfd_create("lkvm-ram", MFD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Maps span bytes at an address aligned to align; NULL on failure. */
static void *map_aligned(size_t span, size_t align, int fd, int *err)
{
	size_t resv = span + align;
	uint8_t *r, *base;
	void *p;

	r = mmap(NULL, resv, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED) {
		*err = -ENOMEM;
		return NULL;
	}
	base = (uint8_t *)ALIGN_UP((uintptr_t)r, align);
	if (fd < 0)
		p = mmap(base, span, PROT_READ | PROT_WRITE, MAP_FIXED |
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	else
		p = mmap(base, span, PROT_READ | PROT_WRITE,
			 MAP_FIXED | MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		*err = -errno;
		munmap(r, resv);
		return NULL;
	}
	if (base > r)
		munmap(r, base - r);
	if (r + resv > base + span)
		munmap(base + span, r + resv - (base + span));
	return base;
}

int guest_memory_init(struct guest_memory *m, const struct mem_region *r,
		      unsigned int n, const struct guest_mem_opts *o)
{
	enum lkvm_ram_backing backing = o ? o->backing : LKVM_RAM_ANON;
	uint64_t total = 0, prev_end = 0, span = 0, align = SLOT_ALIGN;
	uint64_t off[GUEST_MEM_MAX_SLOTS];
	size_t page = 0;
	unsigned int i;
	int fd = -1, ret = 0;
	void *map;

	memset(m, 0, sizeof(*m));
	if (n == 0 || n > GUEST_MEM_MAX_SLOTS)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		uint64_t a = slot_align(r[i].size);

		if (!r[i].size || (r[i].gpa | r[i].size) & 0xfff ||
		    range_overflows(r[i].gpa, r[i].size) ||
		    (i && r[i].gpa < prev_end) ||
		    range_overflows(total, r[i].size) ||
		    r[i].size > SIZE_MAX / 2)
			return -EINVAL;
		prev_end = r[i].gpa + r[i].size;
		total += r[i].size;
		off[i] = ALIGN_UP(span, a) + (r[i].gpa & (a - 1));
		span = off[i] + r[i].size;
		align = MAX(align, a);
	}
	if (span > SIZE_MAX / 2)
		return -ENOMEM;
	if (backing == LKVM_RAM_HUGETLBFS) {
		if (!o->hugetlbfs)
			return -EINVAL;
		fd = hugetlbfs_open(o->hugetlbfs, &page);
	} else if (backing == LKVM_RAM_MEMFD) {
		fd = memfd_open(span, &page);
	} else {
		backing = LKVM_RAM_ANON;	/* any other value too */
	}
	if (fd < 0 && backing != LKVM_RAM_ANON)
		return fd;
	if (page) {
		/* A hugetlb file holds whole pages only. */
		for (i = 0; i < n; i++)
			if ((off[i] | r[i].size) & (page - 1))
				ret = -EINVAL;
		span = ALIGN_UP(span, page);
	}
	if (!ret && fd >= 0 && ftruncate(fd, span) < 0)
		ret = -errno;
	map = ret ? NULL : map_aligned(span, align, fd, &ret);
	if (fd >= 0)
		close(fd);	/* the mapping keeps the file */
	if (!map)
		return ret;
	/* Guest RAM should not end up in a core dump of the VMM. */
	madvise(map, span, MADV_DONTDUMP);
	if (!page)
		madvise(map, span, MADV_HUGEPAGE);
	m->map = map;
	m->map_size = span;
	m->ram_size = total;
	m->backing = backing;
	m->hugetlb_page = page;
	for (i = 0; i < n; i++) {
		m->slots[i].gpa = r[i].gpa;
		m->slots[i].size = r[i].size;
		m->slots[i].hva = m->map + off[i];
	}
	m->nslots = n;
	return 0;
}

const char *guest_memory_backing_name(const struct guest_memory *m)
{
	switch (m->backing) {
	case LKVM_RAM_MEMFD:
		return m->hugetlb_page ? "memfd-hugetlb" : "memfd";
	case LKVM_RAM_HUGETLBFS:
		return "hugetlbfs";
	default:
		return "anon";
	}
}

void guest_memory_discard(const struct guest_memory *m, void *hva,
			  size_t len)
{
	/*
	 * A private page comes back as zeroes after DONTNEED; a shared one
	 * would stay in the file, so the file's pages are punched out.
	 */
	madvise(hva, len, m->backing != LKVM_RAM_ANON ? MADV_REMOVE :
						       MADV_DONTNEED);
}

/*
 * One pass over /proc/self/smaps, adding up the fields of every VMA
 * inside the mapping: resident pages, and huge pages (THP mapped by PMD,
 * anonymous, shmem or file; hugetlb, which Rss leaves out, counts as
 * both).
 */
int guest_memory_usage(const struct guest_memory *m,
		       struct guest_memory_usage *u)
{
	enum { RSS = 1, HUGE = 2 };
	static const struct {
		const char *key;
		unsigned int into;
	} fields[] = {
		{ "Rss:", RSS },
		{ "AnonHugePages:", HUGE },
		{ "ShmemPmdMapped:", HUGE },
		{ "FilePmdMapped:", HUGE },
		{ "Shared_Hugetlb:", RSS | HUGE },
		{ "Private_Hugetlb:", RSS | HUGE },
	};
	uintptr_t lo = (uintptr_t)m->map, hi = lo + m->map_size;
	unsigned long long rss = 0, huge = 0;
	bool inside = false;
	char line[256];
	FILE *f;

	memset(u, 0, sizeof(*u));
	if (!m->map)
		return 0;
	f = fopen("/proc/self/smaps", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long a, b, v;
		unsigned int i;

		if (sscanf(line, "%llx-%llx ", &a, &b) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			inside = a >= lo && b <= hi;
			continue;
		}
		if (!inside)
			continue;
		for (i = 0; i < ARRAY_SIZE(fields); i++) {
			size_t k = strlen(fields[i].key);

			if (strncmp(line, fields[i].key, k) ||
			    sscanf(line + k, "%llu", &v) != 1)
				continue;
			if (fields[i].into & RSS)
				rss += v;
			if (fields[i].into & HUGE)
				huge += v;
		}
	}
	fclose(f);
	u->rss_bytes = rss * 1024;
	u->huge_bytes = huge * 1024;
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
	return m->ram_size;
}
