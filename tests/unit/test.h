/*
 * test.h - the smallest test harness: CHECK macros that count, and a
 * closing line "N passed, N failed" that make check and CI read.
 */
#ifndef LKVM_TEST_H
#define LKVM_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_passed, test_failed, test_skipped;

/* A check this environment cannot make: counted and shown, not passed. */
static inline void test_skip(const char *why)
{
	printf("SKIP: %s\n", why);
	test_skipped++;
}

/*
 * A named case (test_case_begin .. test_case_end): the CHECKs inside
 * count toward it alone, so a loop over 20000 random inputs is one
 * behaviour that held or did not, not 20000 passes.
 */
static const char *test_case_name;
static int test_case_fails;

static inline void test_count(int ok)
{
	if (test_case_name)
		test_case_fails += !ok;
	else if (ok)
		test_passed++;
	else
		test_failed++;
}

static inline void test_case_begin(const char *name)
{
	test_case_name = name;
	test_case_fails = 0;
}

static inline void test_case_end(void)
{
	if (test_case_fails) {
		test_failed++;
		fprintf(stderr, "FAIL case '%s' (%d checks failed)\n",
			test_case_name, test_case_fails);
	} else {
		test_passed++;
		printf("PASS %s\n", test_case_name);
	}
	test_case_name = NULL;
}

#define CHECK(cond)							\
	do {								\
		int _ok = !!(cond);					\
		test_count(_ok);					\
		if (!_ok)						\
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__,	\
				__LINE__, #cond);			\
	} while (0)

#define CHECK_EQ(a, b)							\
	do {								\
		long long _a = (long long)(a), _b = (long long)(b);	\
		test_count(_a == _b);					\
		if (_a != _b)						\
			fprintf(stderr, "FAIL %s:%d: %s == %s (%lld != %lld)\n", \
				__FILE__, __LINE__, #a, #b, _a, _b);	\
	} while (0)

static inline int test_done(void)
{
	if (test_skipped)
		printf("%d passed, %d failed, %d skipped\n", test_passed,
		       test_failed, test_skipped);
	else
		printf("%d passed, %d failed\n", test_passed, test_failed);
	return test_failed ? 1 : 0;
}

/* Deterministic pseudo-random numbers for mutation tests. */
static inline uint32_t test_rand(uint64_t *s)
{
	*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
	return *s >> 33;
}

#endif
