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

static int test_passed, test_failed;

#define CHECK(cond)							\
	do {								\
		if (cond) {						\
			test_passed++;					\
		} else {						\
			test_failed++;					\
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__,	\
				__LINE__, #cond);			\
		}							\
	} while (0)

#define CHECK_EQ(a, b)							\
	do {								\
		long long _a = (long long)(a), _b = (long long)(b);	\
		if (_a == _b) {						\
			test_passed++;					\
		} else {						\
			test_failed++;					\
			fprintf(stderr, "FAIL %s:%d: %s == %s (%lld != %lld)\n", \
				__FILE__, __LINE__, #a, #b, _a, _b);	\
		}							\
	} while (0)

static inline int test_done(void)
{
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
