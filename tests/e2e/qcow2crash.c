/*
 * qcow2crash - crash tests of lkvm's qcow2 write ordering, with
 * qemu-img check as the oracle for consistency:
 *
 *   qcow2crash run IMAGE SEED N LOG
 *       N random writes (512 B to 32 KiB at any 512-byte offset) through
 *       lkvm's disk layer, a FLUSH after every 16; after each FLUSH
 *       completes it prints "flushed K" (K writes are then durable).
 *       LOG ("-": none) records every write and fdatasync lkvm makes
 *       on the image file, in order, and the flush points: this
 *       program defines pwrite, pwritev and fdatasync, which the disk
 *       layer (a static library) then calls instead of libc's.
 *   qcow2crash cut BASE LOG SEED OUT
 *       a power cut: OUT is BASE with the log replayed up to a random
 *       point; writes before the last fdatasync before that point are
 *       all there, any subset of the writes after it is dropped.
 *       Prints "flushed K" for the last flush the cut kept.
 *   qcow2crash open IMAGE
 *       opens it for writing and closes it: a dirty image is repaired.
 *   qcow2crash check IMAGE SEED K N
 *       every sector the first K writes left, and none of writes K+1..N
 *       touched, reads back as written; the rest are not looked at.
 *
 * The image must start out reading as zeroes (a fresh one).  Exits 0 if
 * all held; errors say what failed.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lkvm/disk/disk.h"
#include "lkvm/lib/aio.h"
#include "lkvm/lib/util.h"
#include "diskio.h"

#define FLUSH_EVERY	16
#define MAX_LEN		(32 * 1024)

enum { REC_WRITE = 1, REC_SYNC, REC_FLUSHED };

struct rec {
	uint32_t type;
	uint32_t len;		/* data bytes that follow (writes) */
	uint64_t off;		/* writes: file offset; flushed: K */
};

static int log_fd = -1;
static struct stat img_st;	/* the image: its writes are logged */

/* Is fd the image?  (Any descriptor of it: open's writes count too.) */
static bool is_img(int fd)
{
	struct stat st;

	return log_fd >= 0 && !syscall(SYS_fstat, fd, &st) &&
	       st.st_ino == img_st.st_ino && st.st_dev == img_st.st_dev;
}

static void log_rec(uint32_t type, uint64_t off, const struct iovec *iov,
		    unsigned int n, size_t len)
{
	struct rec r = { type, (uint32_t)len, off };
	struct iovec v[1 + 64];
	unsigned int i;

	if (log_fd < 0 || n > 64)
		return;
	v[0] = (struct iovec){ &r, sizeof(r) };
	for (i = 0; i < n; i++)
		v[1 + i] = iov[i];
	if (syscall(SYS_writev, log_fd, v, 1 + n) < 0)
		abort();
}

/* The disk layer's file I/O, recorded when it is the image's. */
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	ssize_t r = syscall(SYS_pwrite64, fd, buf, n, off);

	if (r > 0 && is_img(fd))
		log_rec(REC_WRITE, off, &(struct iovec){ (void *)buf, r }, 1, r);
	return r;
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	ssize_t r = syscall(SYS_pwritev, fd, iov, cnt, (long)off,
			    (long)((uint64_t)off >> 32));

	if (r > 0 && is_img(fd)) {
		/* Only what went: a short write logs its first r bytes. */
		struct iovec v[64];
		size_t left = r;
		int i, k = 0;

		for (i = 0; i < cnt && left && k < 64; i++, k++) {
			v[k] = iov[i];
			if (v[k].iov_len > left)
				v[k].iov_len = left;
			left -= v[k].iov_len;
		}
		log_rec(REC_WRITE, off, v, k, r);
	}
	return r;
}

int fdatasync(int fd)
{
	int r = syscall(SYS_fdatasync, fd);

	if (!r && is_img(fd))
		log_rec(REC_SYNC, 0, NULL, 0, 0);
	return r;
}

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Write i of the run with this seed: where, how long, its bytes. */
static void op(uint64_t seed, uint64_t i, uint64_t size, uint64_t *off,
	       uint64_t *len, uint8_t *buf)
{
	uint64_t s = mix(seed ^ mix(i));
	uint64_t j;

	*len = (s % (MAX_LEN / 512) + 1) * 512;
	s = mix(s);
	*off = s % ((size - *len) / 512 + 1) * 512;
	if (buf)
		for (j = 0; j < *len; j++)
			buf[j] = (uint8_t)((s >> (j % 56)) + j + i);
}

static int io(struct disk *d, enum disk_req_type type, void *buf,
	      uint64_t off, uint64_t len)
{
	return diskio(d, type, buf, off, len, false);
}

static int open_disk(const char *path, bool ro, struct disk **d)
{
	struct disk_spec spec = { 0 };
	char err[512];

	if (disk_spec_parse(path, &spec, err, sizeof(err)) ||
	    (spec.ro = ro, disk_open(d, &spec, err, sizeof(err)))) {
		fprintf(stderr, "qcow2crash: %s\n", err);
		return 1;
	}
	return aio_sync_create(&engine) ? 1 : 0;
}

static int run(const char *path, uint64_t seed, uint64_t n, const char *logp)
{
	static uint8_t buf[MAX_LEN];
	struct disk *d;
	uint64_t i, off, len;
	int ret;

	if (strcmp(logp, "-")) {
		log_fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
		if (log_fd < 0)
			return 1;
	}
	if (stat(path, &img_st) || open_disk(path, false, &d))
		return 1;
	for (i = 0; i < n; i++) {
		op(seed, i, d->size, &off, &len, buf);
		ret = io(d, DISK_WRITE, buf, off, len);
		if (!ret && (i + 1) % FLUSH_EVERY == 0) {
			ret = io(d, DISK_FLUSH, NULL, 0, 0);
			if (!ret) {
				log_rec(REC_FLUSHED, i + 1, NULL, 0, 0);
				printf("flushed %llu\n", (unsigned long long)(i + 1));
				fflush(stdout);
			}
		}
		if (ret) {
			fprintf(stderr, "qcow2crash: write %llu: %s\n",
				(unsigned long long)i, strerror(-ret));
			return 1;
		}
	}
	disk_close(d);
	return 0;
}

static int cut(const char *base, const char *logp, uint64_t seed,
	       const char *out)
{
	int lf = open(logp, O_RDONLY), bf = open(base, O_RDONLY), of;
	struct stat st;
	uint8_t *log, *p, *end, *last_sync = NULL, *at;
	uint64_t flushed = 0, nrec = 0, k, kept = 0, dropped = 0;
	ssize_t r;
	static uint8_t copy[1 << 16];

	if (lf < 0 || bf < 0 || fstat(lf, &st))
		return 1;
	of = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (of < 0)
		return 1;
	while ((r = read(bf, copy, sizeof(copy))) > 0)
		if (write(of, copy, r) != r)
			return 1;
	log = malloc(st.st_size + 1);
	if (!log || read(lf, log, st.st_size) != st.st_size)
		return 1;
	end = log + st.st_size;
	for (p = log; p + sizeof(struct rec) <= end; nrec++)
		p += sizeof(struct rec) + ((struct rec *)p)->len;
	/* The cut: after record k of nrec. */
	k = mix(seed) % (nrec + 1);
	for (p = log, at = log; at < end && k; k--)
		at += sizeof(struct rec) + ((struct rec *)at)->len;
	for (p = log; p < at; p += sizeof(struct rec) + ((struct rec *)p)->len)
		if (((struct rec *)p)->type == REC_SYNC)
			last_sync = p;
	/* Before the last sync: all of it.  After: a random subset. */
	for (p = log; p < at; p += sizeof(struct rec) + ((struct rec *)p)->len) {
		struct rec *rc = (struct rec *)p;

		if (rc->type == REC_FLUSHED)
			flushed = rc->off;
		if (rc->type != REC_WRITE)
			continue;
		if (last_sync && p < last_sync) {
			kept++;
		} else if (mix(seed ^ (uint64_t)(p - log)) & 1) {
			kept++;
		} else {
			dropped++;
			continue;
		}
		if (pwrite(of, p + sizeof(*rc), rc->len, rc->off) != rc->len)
			return 1;
	}
	close(of);
	printf("flushed %llu (cut after %llu of %llu records: %llu writes kept, %llu unsynced dropped)\n",
	       (unsigned long long)flushed,
	       (unsigned long long)(mix(seed) % (nrec + 1)),
	       (unsigned long long)nrec, (unsigned long long)kept,
	       (unsigned long long)dropped);
	return 0;
}

static int check(const char *path, uint64_t seed, uint64_t k, uint64_t n)
{
	static uint8_t want[MAX_LEN], got[MAX_LEN];
	struct disk *d;
	uint64_t i, s, off, len, nsec, bad = 0, checked = 0;
	int64_t *owner;
	uint8_t *later, *img;

	if (open_disk(path, true, &d))
		return 1;
	nsec = d->size / 512;
	owner = malloc(nsec * sizeof(*owner));
	later = calloc(nsec, 1);
	if (!owner || !later)
		return 1;
	for (s = 0; s < nsec; s++)
		owner[s] = -1;
	for (i = 0; i < n; i++) {
		op(seed, i, d->size, &off, &len, NULL);
		for (s = off / 512; s < (off + len) / 512; s++) {
			if (i < k)
				owner[s] = i;
			else
				later[s] = 1;
		}
	}
	/* The whole disk, read in 1 MiB requests. */
	img = malloc(d->size);
	if (!img)
		return 1;
	for (off = 0; off < d->size; off += len) {
		len = MIN(d->size - off, (uint64_t)1 << 20);
		if (io(d, DISK_READ, img + off, off, len))
			return 1;
	}
	/* Each write's bytes made once, for the sectors it still owns. */
	for (i = 0; i < k; i++) {
		bool any = false;

		op(seed, i, d->size, &off, &len, NULL);
		for (s = off / 512; s < (off + len) / 512 && !any; s++)
			any = owner[s] == (int64_t)i && !later[s];
		if (!any)
			continue;
		op(seed, i, d->size, &off, &len, want);
		for (s = off / 512; s < (off + len) / 512; s++) {
			if (owner[s] != (int64_t)i || later[s])
				continue;
			checked++;
			if (memcmp(want + (s * 512 - off), img + s * 512, 512) &&
			    bad++ < 5)
				fprintf(stderr, "qcow2crash: sector %llu (write %llu) differs\n",
					(unsigned long long)s, (unsigned long long)i);
		}
	}
	memset(got, 0, 512);
	for (s = 0; s < nsec; s++) {
		if (later[s] || owner[s] >= 0)
			continue;
		checked++;
		if (memcmp(got, img + s * 512, 512) && bad++ < 5)
			fprintf(stderr, "qcow2crash: sector %llu (never written) is not zero\n",
				(unsigned long long)s);
	}
	printf("%llu sectors checked, %llu differ\n",
	       (unsigned long long)checked, (unsigned long long)bad);
	return bad != 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "run"))
		return run(argv[2], strtoull(argv[3], NULL, 0),
			   strtoull(argv[4], NULL, 0), argv[5]);
	if (argc == 6 && !strcmp(argv[1], "cut"))
		return cut(argv[2], argv[3], strtoull(argv[4], NULL, 0), argv[5]);
	if (argc == 3 && !strcmp(argv[1], "open")) {
		struct disk *d;

		if (open_disk(argv[2], false, &d))
			return 1;
		disk_close(d);
		return 0;
	}
	if (argc == 6 && !strcmp(argv[1], "check"))
		return check(argv[2], strtoull(argv[3], NULL, 0),
			     strtoull(argv[4], NULL, 0),
			     strtoull(argv[5], NULL, 0));
	fprintf(stderr, "usage: qcow2crash run IMAGE SEED N LOG | cut BASE LOG SEED OUT | open IMAGE | check IMAGE SEED K N\n");
	return 2;
}
