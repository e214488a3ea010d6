/* Tests vmm/util.c: size and number parsing, range checks. */
#include <errno.h>

#include "lkvm/lib/util.h"
#include "test.h"

static void test_mem_size(void)
{
	uint64_t v = 0;

	CHECK_EQ(parse_mem_size("512", &v), 0);
	CHECK_EQ(v, 512 * MiB);
	CHECK_EQ(parse_mem_size("512M", &v), 0);
	CHECK_EQ(v, 512 * MiB);
	CHECK_EQ(parse_mem_size("2G", &v), 0);
	CHECK_EQ(v, 2 * GiB);
	CHECK_EQ(parse_mem_size("2g", &v), 0);
	CHECK_EQ(v, 2 * GiB);
	CHECK_EQ(parse_mem_size("1GiB", &v), 0);
	CHECK_EQ(v, GiB);
	CHECK_EQ(parse_mem_size("2048K", &v), 0);
	CHECK_EQ(v, 2 * MiB);
	CHECK_EQ(parse_mem_size("1T", &v), 0);
	CHECK_EQ(v, 1024 * GiB);
	CHECK_EQ(parse_mem_size("", &v), -EINVAL);
	CHECK_EQ(parse_mem_size("0", &v), -EINVAL);
	CHECK_EQ(parse_mem_size("-1", &v), -EINVAL);
	CHECK_EQ(parse_mem_size(" 5", &v), -EINVAL);
	CHECK_EQ(parse_mem_size("5 ", &v), -EINVAL);
	CHECK_EQ(parse_mem_size("1.5G", &v), -EINVAL);
	CHECK_EQ(parse_mem_size("0x100", &v), -EINVAL);
	CHECK_EQ(parse_mem_size("12X", &v), -EINVAL);
	CHECK_EQ(parse_mem_size("12MM", &v), -EINVAL);
	CHECK_EQ(parse_mem_size("100K", &v), -EINVAL);	/* not whole MiB */
	CHECK_EQ(parse_mem_size("99999999999999999999", &v), -ERANGE);
	CHECK_EQ(parse_mem_size("18446744073709551615", &v), -ERANGE);
	CHECK_EQ(parse_mem_size("17179869184T", &v), -ERANGE);
	CHECK_EQ(parse_mem_size(NULL, &v), -EINVAL);
}

static void test_uint(void)
{
	uint64_t v = 0;

	CHECK_EQ(parse_uint("7", 1, 10, &v), 0);
	CHECK_EQ(v, 7);
	CHECK_EQ(parse_uint("0", 1, 10, &v), -ERANGE);
	CHECK_EQ(parse_uint("11", 1, 10, &v), -ERANGE);
	CHECK_EQ(parse_uint("+3", 1, 10, &v), -EINVAL);
	CHECK_EQ(parse_uint("3a", 1, 10, &v), -EINVAL);
	CHECK_EQ(parse_uint("", 0, 10, &v), -EINVAL);
	CHECK_EQ(parse_uint("18446744073709551616", 0, UINT64_MAX, &v),
		 -ERANGE);
	CHECK_EQ(parse_uint("18446744073709551615", 0, UINT64_MAX, &v), 0);
	CHECK(v == UINT64_MAX);
}

static void test_ranges(void)
{
	CHECK(range_within(0, 10, 0, 10));
	CHECK(range_within(10, 0, 0, 10));
	CHECK(!range_within(10, 1, 0, 10));
	CHECK(!range_within(5, 6, 0, 10));
	CHECK(!range_within(UINT64_MAX, 2, 0, UINT64_MAX));
	CHECK(!range_within(0, 1, 1, 10));
	CHECK(range_within(0x1000, 0x1000, 0x1000, 0x1000));
	CHECK(!range_within(0x1fff, 2, 0x1000, 0x1000));
	CHECK(range_overflows(UINT64_MAX, 1));
	CHECK(!range_overflows(UINT64_MAX, 0));
}

static void test_iov_total(void)
{
	char a[3], b[5];
	struct iovec v[3] = { { a, 3 }, { b, 5 }, { b, 0 } };

	CHECK_EQ(iov_total(v, 0), 0);
	CHECK_EQ(iov_total(v, 1), 3);
	CHECK_EQ(iov_total(v, 3), 8);
}

int main(void)
{
	test_mem_size();
	test_uint();
	test_ranges();
	test_iov_total();
	return test_done();
}
