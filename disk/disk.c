/*
 * disk.c - -d option parsing, opening and format probing.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lkvm/disk/disk.h"
#include "lkvm/lib/iothread.h"
#include "lkvm/lib/util.h"

/* Formats that can be recognised, most specific first; raw last. */
static const struct disk_ops *const disk_formats[] = {
	&disk_qcow2_ops,
	&disk_raw_ops,
};

void disk_spec_free(struct disk_spec *spec)
{
	free(spec->path);
	spec->path = NULL;
}

static int disk_opt(struct disk_spec *spec, char *opt, char *err,
		    size_t errlen)
{
	char *val = strchr(opt, '=');
	char *end;

	if (val)
		*val++ = '\0';
	if (!strcmp(opt, "ro") && !val) {
		spec->ro = true;
	} else if (!strcmp(opt, "direct") && !val) {
		spec->cache = DISK_CACHE_NONE;
	} else if (!strcmp(opt, "cache") && val) {
		if (!strcmp(val, "writeback"))
			spec->cache = DISK_CACHE_WRITEBACK;
		else if (!strcmp(val, "none"))
			spec->cache = DISK_CACHE_NONE;
		else if (!strcmp(val, "unsafe"))
			spec->cache = DISK_CACHE_UNSAFE;
		else
			return errf(err, errlen, -EINVAL,
				    "disk: cache=%s: want writeback, none or unsafe",
				    val);
	} else if (!strcmp(opt, "queues") && val) {
		unsigned long n;

		errno = 0;
		n = strtoul(val, &end, 10);
		if (errno || end == val || *end || n < 1 || n > 64)
			return errf(err, errlen, -EINVAL,
				    "disk: queues=%s: want 1 to 64", val);
		spec->queues = n;
	} else if (!strcmp(opt, "serial") && val) {
		if (strlen(val) > DISK_SERIAL_MAX)
			return errf(err, errlen, -EINVAL,
				    "disk: serial '%s' is longer than %d characters",
				    val, DISK_SERIAL_MAX);
		snprintf(spec->serial, sizeof(spec->serial), "%s", val);
	} else if (!strcmp(opt, "aio") && val) {
		if (!strcmp(val, "sync"))
			spec->aio_sync = true;
		else if (!strcmp(val, "io_uring"))
			spec->aio_sync = false;
		else
			return errf(err, errlen, -EINVAL,
				    "disk: aio=%s: want io_uring or sync", val);
	} else if (!strcmp(opt, "poll") && val) {
		if (iothread_poll_parse(val, &spec->poll))
			return errf(err, errlen, -EINVAL,
				    "disk: poll=%s: want auto, off or microseconds",
				    val);
	} else if (!strcmp(opt, "lock") && val) {
		if (strcmp(val, "on") && strcmp(val, "off"))
			return errf(err, errlen, -EINVAL,
				    "disk: lock=%s: want on or off", val);
		spec->no_lock = !strcmp(val, "off");
	} else if (!strcmp(opt, "fd") && val) {
		uint64_t n;

		if (parse_uint(val, 0, INT32_MAX, &n) ||
		    fcntl((int)n, F_GETFD) < 0)
			return errf(err, errlen, -EBADF,
				    "disk: fd=%s: not an open file descriptor",
				    val);
		spec->fd = n;
		spec->has_fd = true;
	} else if (!strcmp(opt, "format") && val) {
		size_t i;

		for (i = 0; i < ARRAY_SIZE(disk_formats); i++)
			if (!strcmp(val, disk_formats[i]->name))
				break;
		if (i == ARRAY_SIZE(disk_formats))
			return errf(err, errlen, -EINVAL,
				    "disk: unknown format '%s'", val);
		snprintf(spec->format, sizeof(spec->format), "%s", val);
	} else {
		return errf(err, errlen, -EINVAL, "disk: unknown option '%s%s%s'",
			    opt, val ? "=" : "", val ? val : "");
	}
	return 0;
}

/*
 * Ends the field at s (at a lone ',', turning each ",," into ',') and
 * returns the next field, or NULL after the last.
 */
static char *spec_field(char *s)
{
	char *w = s;

	for (; *s; s++, w++) {
		if (*s == ',' && s[1] == ',') {
			s++;
		} else if (*s == ',') {
			*w = '\0';
			return s + 1;
		}
		*w = *s;
	}
	*w = '\0';
	return NULL;
}

static int disk_spec_parse_raw(const char *s, struct disk_spec *spec,
			       char *err, size_t errlen)
{
	char *copy = strdup(s), *opt, *next;
	int ret = 0;

	memset(spec, 0, sizeof(*spec));
	if (!copy)
		return errf(err, errlen, -ENOMEM, "out of memory");
	next = spec_field(copy);
	if (!*copy) {
		free(copy);
		return input_errf(err, errlen, -EINVAL, "disk: no image path in '%s'", s);
	}
	while (!ret && next) {
		opt = next;
		next = spec_field(opt);
		ret = disk_opt(spec, opt, err, errlen);
	}
	if (ret) {
		free(copy);
		return ret;
	}
	spec->path = copy;	/* the path is the first field */
	return 0;
}

/* Whatever a spec parser rejects is the configuration's fault. */
int disk_spec_parse(const char *s, struct disk_spec *spec, char *err,
		   size_t errlen)
{
	int ret = disk_spec_parse_raw(s, spec, err, errlen);

	return ret == -ENOMEM ? ret : err_input(ret);
}

int disk_pwrite_zeroes(int fd, uint64_t off, uint64_t len)
{
	static const uint8_t zero[65536];

	while (len) {
		ssize_t n = pwrite(fd, zero, MIN(len, sizeof(zero)), off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		off += n;
		len -= n;
	}
	return 0;
}

int disk_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	ssize_t n = pread_full(fd, buf, len, off);

	if (n < 0)
		return n;
	/* Past the end of the file: zeroes. */
	memset((uint8_t *)buf + n, 0, len - n);
	return 0;
}

/*
 * What O_DIRECT on this file needs.  A block device says (BLKSSZGET,
 * already in block_size); for a file, statx(STATX_DIOALIGN) where the
 * kernel has it (6.1+), else the first size a direct read at offset 0
 * into buf (DISK_DIO_MAX bytes, DISK_DIO_MAX-aligned) accepts.  Every
 * buffer is that aligned, so only the offset and length alignment is
 * learnt here.
 */
static unsigned int disk_dio_align(struct disk *d, void *buf)
{
#ifdef STATX_DIOALIGN
	struct statx stx;

	if (statx(d->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align &&
	    stx.stx_dio_offset_align <= DISK_DIO_MAX)
		return MAX(stx.stx_dio_offset_align, 512u);
#endif
	for (unsigned int a = 512; a <= DISK_DIO_MAX; a *= 2)
		if (pread(d->fd, buf, a, 0) >= 0 || errno != EINVAL)
			return a;
	return DISK_DIO_MAX;
}

/*
 * Reads the first bytes for the format probe into hdr (DISK_DIO_MAX
 * bytes, DISK_DIO_MAX-aligned: a valid read with O_DIRECT too).
 */
static int disk_probe(struct disk *d, uint8_t *hdr, char *err, size_t errlen)
{
	ssize_t n;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(disk_formats); i++) {
		if (d->spec.format[0] &&
		    !strcmp(d->spec.format, disk_formats[i]->name)) {
			d->ops = disk_formats[i];
			return 0;
		}
	}
	n = pread(d->fd, hdr, DISK_DIO_MAX, 0);
	if (n < 0)
		return errf(err, errlen, -errno, "disk %s: cannot read: %s",
			    d->spec.path, strerror(errno));
	for (i = 0; i < ARRAY_SIZE(disk_formats); i++) {
		if (!disk_formats[i]->probe ||
		    disk_formats[i]->probe(hdr, n)) {
			d->ops = disk_formats[i];
			return 0;
		}
	}
	return input_errf(err, errlen, -EINVAL, "disk %s: unknown format",
			  d->spec.path);
}

/*
 * fd=N: the embedder opened it (perhaps where we cannot).  A copy of
 * the descriptor, so closing ours leaves theirs; its mode must allow
 * writing unless ro, and O_DIRECT is added for cache=none.
 */
static int disk_adopt_fd(struct disk *d, const struct disk_spec *spec,
			 int flags, char *err, size_t errlen)
{
	int fl = fcntl(spec->fd, F_GETFL);

	if (fl < 0)
		return input_errf(err, errlen, -EBADF,
				  "disk %s: fd %d is not open", spec->path,
				  spec->fd);
	if (!spec->ro && (fl & O_ACCMODE) == O_RDONLY)
		return input_errf(err, errlen, -EBADF,
				  "disk %s: fd %d is read-only; add ,ro",
				  spec->path, spec->fd);
	d->fd = fcntl(spec->fd, F_DUPFD_CLOEXEC, 3);
	if (d->fd < 0)
		return errf(err, errlen, -errno, "disk %s: %s", spec->path,
			    strerror(errno));
	if ((flags & O_DIRECT) && fcntl(d->fd, F_SETFL, fl | O_DIRECT) < 0)
		return input_errf(err, errlen, -EINVAL,
				  "disk %s: no O_DIRECT on fd %d (cache=none)",
				  spec->path, spec->fd);
	return 0;
}

int disk_open(struct disk **dp, const struct disk_spec *spec, char *err,
	      size_t errlen)
{
	struct disk *d = calloc(1, sizeof(*d));
	int flags = O_CLOEXEC, ret;
	uint8_t *hdr;
	struct stat st;

	if (!d)
		return errf(err, errlen, -ENOMEM, "out of memory");
	d->spec = *spec;
	d->spec.path = strdup(spec->path);
	d->fd = -1;
	d->block_size = 512;
	if (!d->spec.path) {
		ret = errf(err, errlen, -ENOMEM, "out of memory");
		goto fail;
	}
	flags |= spec->ro ? O_RDONLY : O_RDWR;
	if (spec->cache == DISK_CACHE_NONE)
		flags |= O_DIRECT;
	if (spec->has_fd) {
		ret = disk_adopt_fd(d, spec, flags, err, errlen);
		if (ret)
			goto fail;
	} else {
		d->fd = open(spec->path, flags);
	}
	if (d->fd < 0 && errno == EINVAL && (flags & O_DIRECT)) {
		ret = input_errf(err, errlen, -EINVAL,
				 "disk %s: the filesystem does not support O_DIRECT (cache=none)",
				 spec->path);
		goto fail;
	}
	if (d->fd < 0) {
		/* No such file, or a directory: the configuration's fault. */
		ret = errno == ENOENT || errno == ENOTDIR || errno == EISDIR ||
		      errno == ENAMETOOLONG || errno == ELOOP ?
		      input_errf(err, errlen, -errno, "disk %s: %s",
				 spec->path, strerror(errno)) :
		      errf(err, errlen, -errno, "disk %s: %s", spec->path,
			   strerror(errno));
		goto fail;
	}
	if (fstat(d->fd, &st) < 0 || (!S_ISREG(st.st_mode) &&
				      !S_ISBLK(st.st_mode))) {
		ret = input_errf(err, errlen, -EINVAL,
				 "disk %s: not a regular file or block device",
				 spec->path);
		goto fail;
	}
	d->blockdev = S_ISBLK(st.st_mode);
	if (!spec->no_lock) {
		ret = disk_lock(d, err, errlen);
		if (ret)
			goto fail;
	}
	if (d->blockdev) {
		int bs = 0;

		if (ioctl(d->fd, BLKGETSIZE64, &d->size) < 0) {
			ret = errf(err, errlen, -errno, "disk %s: BLKGETSIZE64: %s",
				   spec->path, strerror(errno));
			goto fail;
		}
		if (ioctl(d->fd, BLKSSZGET, &bs) == 0 && bs >= 512 &&
		    bs <= 4096 && !(bs & (bs - 1)))
			d->block_size = bs;
	} else {
		d->size = st.st_size;
	}
	/* One aligned buffer serves both probes below. */
	if (posix_memalign((void **)&hdr, DISK_DIO_MAX, DISK_DIO_MAX)) {
		ret = errf(err, errlen, -ENOMEM, "out of memory");
		goto fail;
	}
	d->dio_align = 1;
	if (flags & O_DIRECT) {
		d->dio_align = d->blockdev ? d->block_size :
					     disk_dio_align(d, hdr);
		d->block_size = MAX(d->block_size, d->dio_align);
	}
	ret = disk_probe(d, hdr, err, errlen);
	free(hdr);
	if (!ret)
		ret = d->ops->open(d, err, errlen);
	if (ret)
		goto fail;
	*dp = d;
	return 0;
fail:
	/* A format's close must cope with a half-done open (priv NULL). */
	disk_close(d);
	return ret;
}

void disk_close(struct disk *d)
{
	if (!d)
		return;
	if (d->ops && d->ops->close)
		d->ops->close(d);
	if (d->fd >= 0)
		close(d->fd);
	free(d->spec.path);
	free(d);
}
