/*
 * util.c - number and size parsing, error formatting, whole-buffer I/O
 * and whole-file reading.  Pure functions; any thread.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lkvm/lib/util.h"

int errf(char *buf, size_t len, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (buf && len)
		vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return err;
}

int input_errf(char *buf, size_t len, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (buf && len)
		vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return err_input(err);
}

/* Digits only: strtoull would also take signs, spaces and hex. */
static int parse_digits(const char **sp, uint64_t *out)
{
	const char *s = *sp;
	uint64_t v = 0;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned int d = *s - '0';

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*sp = s;
	*out = v;
	return 0;
}

int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v;
	int ret;

	if (!s)
		return -EINVAL;
	ret = parse_digits(&s, &v);
	if (ret)
		return ret;
	if (*s)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int parse_mem_size(const char *s, uint64_t *bytes)
{
	uint64_t v, scale = MiB;
	int ret;

	if (!s)
		return -EINVAL;
	ret = parse_digits(&s, &v);
	if (ret)
		return ret;
	switch (toupper((unsigned char)*s)) {
	case '\0':
		break;
	case 'K':
		scale = KiB;
		break;
	case 'M':
		scale = MiB;
		break;
	case 'G':
		scale = GiB;
		break;
	case 'T':
		scale = 1024 * GiB;
		break;
	default:
		return -EINVAL;
	}
	if (*s) {
		s++;
		if (!strcasecmp(s, "ib") || !strcasecmp(s, "b"))
			s += strlen(s);
		if (*s)
			return -EINVAL;
	}
	if (v == 0)
		return -EINVAL;
	if (v > UINT64_MAX / scale)
		return -ERANGE;
	v *= scale;
	if (v % MiB)
		return -EINVAL;
	*bytes = v;
	return 0;
}

ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + done, len - done,
				  off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;		/* the end of the file */
		done += n;
	}
	return done;
}

int pread_exact(int fd, void *buf, size_t len, uint64_t off)
{
	ssize_t n = pread_full(fd, buf, len, off);

	return n < 0 ? (int)n : (size_t)n < len ? -EIO : 0;
}

int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const uint8_t *)buf + done, len - done,
				   off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += n;
	}
	return 0;
}

int read_file(const char *path, size_t max, uint8_t **data, size_t *size)
{
	struct stat st;
	uint8_t *buf;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		ret = -EFBIG;
		goto out;
	}
	buf = malloc(st.st_size ? st.st_size : 1);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	ret = pread_exact(fd, buf, st.st_size, 0);
	if (ret) {
		free(buf);
		goto out;
	}
	*data = buf;
	*size = st.st_size;
out:
	close(fd);
	return ret;
}

/* Both directions of the copy: one walk over the list. */
static size_t iov_copy(const struct iovec *iov, unsigned int n, size_t skip,
		       uint8_t *buf, size_t len, bool to_iov)
{
	size_t done = 0;
	unsigned int i;

	for (i = 0; i < n && done < len; i++) {
		uint8_t *base = iov[i].iov_base;
		size_t k;

		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		k = MIN(iov[i].iov_len - skip, len - done);
		if (to_iov)
			memcpy(base + skip, buf + done, k);
		else
			memcpy(buf + done, base + skip, k);
		done += k;
		skip = 0;
	}
	return done;
}

size_t iov_to_buf(const struct iovec *iov, unsigned int n, size_t skip,
		  void *buf, size_t len)
{
	return iov_copy(iov, n, skip, buf, len, false);
}

size_t buf_to_iov(const struct iovec *iov, unsigned int n, size_t skip,
		  const void *buf, size_t len)
{
	/* Only read through buf: iov_copy writes to it only from iovs. */
	return iov_copy(iov, n, skip, (uint8_t *)buf, len, true);
}

uint64_t iov_total(const struct iovec *iov, unsigned int n)
{
	uint64_t t = 0;

	while (n--)
		t += iov++->iov_len;
	return t;
}

unsigned int iov_slice(struct iovec *dst, unsigned int max,
		       const struct iovec *iov, unsigned int n, size_t skip,
		       size_t len)
{
	unsigned int i, k = 0;

	for (i = 0; i < n && k < max && len; i++) {
		size_t l = iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		l = MIN(l - skip, len);
		dst[k].iov_base = (uint8_t *)iov[i].iov_base + skip;
		dst[k++].iov_len = l;
		len -= l;
		skip = 0;
	}
	return k;
}
