/*
 * util.h - small helpers shared by every layer: sizes, number parsing,
 * error messages.  Nothing here keeps state.
 */
#ifndef LKVM_UTIL_H
#define LKVM_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define container_of(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))
#define ALIGN_DOWN(x, a) ((x) & ~((uint64_t)(a) - 1))
#define ALIGN_UP(x, a) ALIGN_DOWN((x) + (a) - 1, (a))

/*
 * A counter only its owner thread writes and any thread reads: a plain
 * add, stored and loaded whole, so a reader sees it at most a step old,
 * never torn.
 */
#define OWNER_ADD(var, n) \
	__atomic_store_n(&(var), (var) + (n), __ATOMIC_RELAXED)
#define OWNER_READ(var) __atomic_load_n(&(var), __ATOMIC_RELAXED)

#define KiB (1024ULL)
#define MiB (1024ULL * KiB)
#define GiB (1024ULL * MiB)

/*
 * Parses a memory size for -m: a plain number is MiB; suffixes K, M, G, T
 * (optionally followed by "iB" or "B") scale it.  Returns 0 and the size in
 * bytes, or -EINVAL (bad syntax, zero, not a whole number of MiB) or
 * -ERANGE (overflow).
 */
int parse_mem_size(const char *s, uint64_t *bytes);

/* Parses a decimal unsigned integer in [min, max]; -EINVAL or -ERANGE. */
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Formats into buf (always terminated) and returns err, for "return errf(...)". */
int errf(char *buf, size_t len, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * An error the caller's input caused (a bad configuration, a file named
 * that is not what it must be), as opposed to a failure of the host: a
 * negative errno moved below ERR_INPUT.  input_errf() is errf() for
 * those, err_input() re-tags an error a parser of input returned, and
 * err_errno() gives the errno back.  The library's callers see the kind
 * through lkvm_error_kind().
 */
#define ERR_INPUT (-0x10000)
int input_errf(char *buf, size_t len, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static inline int err_input(int err)
{
	return err < 0 && err > ERR_INPUT ? err + ERR_INPUT : err;
}

static inline bool err_is_input(int err)
{
	return err <= ERR_INPUT;
}

static inline int err_errno(int err)
{
	return err <= ERR_INPUT ? err - ERR_INPUT : err;
}

/*
 * Copies up to len bytes between a buffer and an iovec list, starting
 * skip bytes into the list; returns the bytes copied.
 */
size_t iov_to_buf(const struct iovec *iov, unsigned int n, size_t skip,
		  void *buf, size_t len);
size_t buf_to_iov(const struct iovec *iov, unsigned int n, size_t skip,
		  const void *buf, size_t len);
/* The bytes an iovec list holds. */
uint64_t iov_total(const struct iovec *iov, unsigned int n);
/*
 * The part of an iovec list from skip bytes on, at most len bytes long,
 * into dst (at most max entries); returns dst's entry count.
 */
unsigned int iov_slice(struct iovec *dst, unsigned int max,
		       const struct iovec *iov, unsigned int n, size_t skip,
		       size_t len);

/*
 * Whole-buffer positioned I/O, EINTR and short transfers retried.
 * pread_full() returns the bytes read (fewer than len only where the
 * file ends) or -errno; pread_exact() 0, -errno, or -EIO where the file
 * ends first; pwrite_full() 0, -errno, or -EIO for a write that makes
 * no progress.
 */
ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off);
int pread_exact(int fd, void *buf, size_t len, uint64_t off);
int pwrite_full(int fd, const void *buf, size_t len, uint64_t off);

/* Reads a whole file up to max bytes into a malloc'd buffer. */
int read_file(const char *path, size_t max, uint8_t **data, size_t *size);

static inline bool range_overflows(uint64_t base, uint64_t len)
{
	return base + len < base;
}

/* True if [base, base+len) lies inside [lo, lo+size). */
static inline bool range_within(uint64_t base, uint64_t len, uint64_t lo,
				uint64_t size)
{
	return !range_overflows(base, len) && base >= lo &&
	       base - lo <= size && len <= size - (base - lo);
}

/* True if [a, a+alen) and [b, b+blen) share a byte (no overflow). */
static inline bool range_overlaps(uint64_t a, uint64_t alen, uint64_t b,
				  uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

/* A spin-wait hint to the CPU. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__)
	__asm__ volatile("pause" ::: "memory");
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#else
	__asm__ volatile("" ::: "memory");
#endif
}

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

#endif
