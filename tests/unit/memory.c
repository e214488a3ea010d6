/* Tests vmm/memory.c: layout validation and gpa->host translation bounds. */
#include <errno.h>

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

	CHECK_EQ(guest_memory_init(&m, bad_align, 1), -EINVAL);
	CHECK_EQ(guest_memory_init(&m, overlap, 2), -EINVAL);
	CHECK_EQ(guest_memory_init(&m, unsorted, 2), -EINVAL);
	CHECK_EQ(guest_memory_init(&m, wrap, 1), -EINVAL);
	CHECK_EQ(guest_memory_init(&m, empty, 1), -EINVAL);
	CHECK_EQ(guest_memory_init(&m, empty, 0), -EINVAL);
	CHECK_EQ(guest_memory_init(&m, empty, GUEST_MEM_MAX_SLOTS + 1),
		 -EINVAL);
}

static void test_translation(void)
{
	struct mem_region r[] = { { 0, 16 * MiB }, { 4 * GiB, 8 * MiB } };
	struct guest_memory m;
	uint8_t buf[16] = { 1, 2, 3 };
	uint8_t *p, *q;

	CHECK_EQ(guest_memory_init(&m, r, 2), 0);
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

int main(void)
{
	test_layout_errors();
	test_translation();
	return test_done();
}
