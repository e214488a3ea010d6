/* Tests vmm/memory.c: layout validation and gpa->host translation bounds. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lkvm/memory.h"
#include "lkvm/lib/util.h"
#include "test.h"

static void test_layout_errors(void)
{
	struct guest_memory m;
	struct mem_region bad_align[] = { { 0, 4097 } };
	struct mem_region overlap[] = { { 0, 8192 }, { 4096, 4096 } };
	struct mem_region unsorted[] = { { 8192, 4096 }, { 0, 4096 } };
	struct mem_region wrap[] = { { UINT64_MAX - 4095, 8192 } };
	struct mem_region empty[] = { { 0, 0 } };

	CHECK_EQ(guest_memory_init(&m, bad_align, 1, NULL), -EINVAL);
	CHECK_EQ(guest_memory_init(&m, overlap, 2, NULL), -EINVAL);
	CHECK_EQ(guest_memory_init(&m, unsorted, 2, NULL), -EINVAL);
	CHECK_EQ(guest_memory_init(&m, wrap, 1, NULL), -EINVAL);
	CHECK_EQ(guest_memory_init(&m, empty, 1, NULL), -EINVAL);
	CHECK_EQ(guest_memory_init(&m, empty, 0, NULL), -EINVAL);
	CHECK_EQ(guest_memory_init(&m, empty, GUEST_MEM_MAX_SLOTS + 1, NULL),
		 -EINVAL);
}

static void test_translation(void)
{
	struct mem_region r[] = { { 0, 16 * MiB }, { 4 * GiB, 8 * MiB } };
	struct guest_memory m;
	uint8_t buf[16] = { 1, 2, 3 };
	uint8_t *p, *q;

	CHECK_EQ(guest_memory_init(&m, r, 2, NULL), 0);
	CHECK_EQ(guest_memory_size(&m), 24 * MiB);
	p = guest_ptr(&m, 0, 16 * MiB);
	CHECK(p != NULL);
	CHECK(guest_ptr(&m, 0, 16 * MiB + 1) == NULL);
	CHECK(guest_ptr(&m, 16 * MiB - 1, 1) == p + 16 * MiB - 1);
	CHECK(guest_ptr(&m, 16 * MiB - 1, 2) == NULL);
	CHECK(guest_ptr(&m, 16 * MiB, 0) != NULL);	/* end of slot */
	CHECK(guest_ptr(&m, 16 * MiB, 1) == NULL);	/* the hole */
	CHECK(guest_ptr(&m, 3 * GiB, 1) == NULL);
	q = guest_ptr(&m, 4 * GiB, 8 * MiB);
	CHECK(q != NULL);
	CHECK(q == p + 16 * MiB);	/* one mapping, back to back */
	CHECK(guest_ptr(&m, 4 * GiB - 1, 2) == NULL);	/* spans hole */
	CHECK(guest_ptr(&m, 4 * GiB + 8 * MiB, 1) == NULL);
	CHECK(guest_ptr(&m, UINT64_MAX, 2) == NULL);
	CHECK(guest_ptr(&m, 1, UINT64_MAX) == NULL);
	CHECK(guest_ptr(&m, UINT64_MAX - 1, 1) == NULL);

	CHECK_EQ(guest_write(&m, 4 * GiB + 100, buf, 3), 0);
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(guest_read(&m, 4 * GiB + 100, buf, 3), 0);
	CHECK(buf[0] == 1 && buf[1] == 2 && buf[2] == 3);
	CHECK_EQ(guest_write(&m, 16 * MiB - 2, buf, 3), -EFAULT);
	CHECK_EQ(guest_read(&m, 5 * GiB, buf, 1), -EFAULT);
	/* Fresh memory reads as zero. */
	CHECK(p[12345] == 0);
	guest_memory_free(&m);
	CHECK(guest_ptr(&m, 0, 1) == NULL);
}

/* Every slot starts where KVM can use huge stage-2 pages. */
static void test_alignment(void)
{
	struct mem_region r[] = {
		{ 0, 3 * MiB }, { 4 * GiB + 2 * MiB, 6 * MiB },
	};
	struct mem_region big[] = { { 2 * GiB, 1 * GiB } };
	struct guest_memory m;

	CHECK_EQ(guest_memory_init(&m, r, 2, NULL), 0);
	CHECK_EQ((uintptr_t)m.slots[0].hva % (2 * MiB), 0);
	/* The second slot's host offset matches its guest offset. */
	CHECK_EQ((uintptr_t)m.slots[1].hva % (2 * MiB), 0);
	CHECK_EQ(guest_memory_size(&m), 9 * MiB);
	CHECK(m.map_size >= 10 * MiB);
	CHECK(strcmp(guest_memory_backing_name(&m), "anon") == 0);
	guest_memory_free(&m);

	CHECK_EQ(guest_memory_init(&m, big, 1, NULL), 0);
	CHECK_EQ((uintptr_t)m.slots[0].hva % GiB, 0);
	guest_memory_free(&m);
}

/* Transparent huge pages on madvise (or always) on this host. */
static bool thp_enabled(void)
{
	char buf[128] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");

	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		fclose(f);
	}
	return strstr(buf, "[always]") || strstr(buf, "[madvise]");
}

/* Touched memory reads back, and a discard gives zeroes, both backings. */
static void test_backings(void)
{
	struct mem_region r[] = { { 0, 8 * MiB } };
	struct guest_mem_opts memfd = { .backing = LKVM_RAM_MEMFD };
	struct guest_mem_opts bad = { .backing = LKVM_RAM_HUGETLBFS,
				      .hugetlbfs = "/proc" };
	struct guest_mem_opts none = { .backing = LKVM_RAM_HUGETLBFS };
	const struct guest_mem_opts *o[] = { NULL, &memfd };
	struct guest_memory_usage use;
	struct guest_memory m;
	unsigned int i;

	for (i = 0; i < 2; i++) {
		uint8_t *p;

		CHECK_EQ(guest_memory_init(&m, r, 1, o[i]), 0);
		p = guest_ptr(&m, 0, 8 * MiB);
		CHECK(p != NULL);
		memset(p, 0xa5, 8 * MiB);
		CHECK(p[4 * MiB] == 0xa5);
		guest_memory_discard(&m, p + 4 * MiB, 4096);
		if (getenv("LKVM_QEMU_USER")) {
			/* qemu-user takes madvise as a hint and drops it. */
			test_skip("discard and huge pages: qemu-user emulates no madvise");
		} else {
			CHECK(p[4 * MiB] == 0 && p[4 * MiB + 4096] == 0xa5);
			if (i == 0 && thp_enabled())
				CHECK(guest_memory_usage(&m, &use) == 0 &&
				      use.huge_bytes >= 2 * MiB);
		}
		CHECK(guest_memory_usage(&m, &use) == 0 &&
		      use.rss_bytes >= use.huge_bytes);
		CHECK(m.backing == (i ? LKVM_RAM_MEMFD : LKVM_RAM_ANON));
		guest_memory_free(&m);
	}
	/* Not a hugetlbfs mount, and no mount at all: refused. */
	CHECK_EQ(guest_memory_init(&m, r, 1, &bad), -ENOTSUP);
	CHECK_EQ(guest_memory_init(&m, r, 1, &none), -EINVAL);
}

int main(void)
{
	test_layout_errors();
	test_translation();
	test_alignment();
	test_backings();
	return test_done();
}
