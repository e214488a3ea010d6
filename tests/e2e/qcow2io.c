/*
 * qcow2io - drives lkvm's disk layer (any format it opens, qcow2 above
 * all) from the host, for the qcow2 tests, with qemu-img as the oracle:
 *   qcow2io dump IMAGE OUT       every guest-visible byte into OUT (raw)
 *   qcow2io write IMAGE MIRROR SEED N
 *       N random writes, write-zeroes and discards through lkvm's code,
 *       the same bytes written to the raw MIRROR (discarded ranges are
 *       read back from IMAGE into MIRROR: their content is undefined),
 *       then a flush.  Prints progress lines for the kill -9 test.
 *   qcow2io poke IMAGE OFF LEN   one write of LEN bytes (0xa5) at OFF
 *   qcow2io copy IMAGE RAW       RAW's bytes written to IMAGE, 1 MiB at a time
 *   qcow2io reuse IMAGE RAW SEED
 *       4 rounds: discard a random half of the disk's 1 MiB pieces, then
 *       write new bytes to them (also into RAW), then flush
 *   qcow2io hold SPEC SECONDS    opens SPEC (and so locks it), waits
 *   qcow2io verify SPEC SEED N
 *       opens SPEC (a -d specification: "FILE,cache=none" for O_DIRECT),
 *       then N random reads and writes of 512-byte granularity at any
 *       offset, from buffers at any address, checked against a copy of
 *       the whole disk kept in memory.
 * QCOW2IO_AIO=io_uring runs the requests on an io_uring engine, as queue
 * threads do, instead of the synchronous one.
 * Exits 0 on success; errors say what failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lkvm/lib/aio.h"
#include "lkvm/disk/disk.h"
#include "diskio.h"

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* See "verify" above. */
static int verify(struct disk *d, uint64_t seed, unsigned long n)
{
	uint64_t size = d->size, off, len;
	uint8_t *mirror = malloc(size), *mem = aligned_alloc(4096, (1 << 20) + 8192);
	unsigned long i;
	int ret;

	if (!mirror || !mem || size < (1 << 20))
		return 1;
	ret = diskio(d, DISK_READ, mirror, 0, size, false);
	for (i = 0; !ret && i < n; i++) {
		/*
		 * Any 512-byte multiple at any 512-byte offset, any buffer
		 * (QCOW2IO_ALIGN=1: 4 KiB-aligned buffers, which O_DIRECT
		 * takes without a bounce).
		 */
		uint8_t *buf = mem + (getenv("QCOW2IO_ALIGN") ?
				      rnd(&seed) % 2 * 4096 : rnd(&seed) % 8192);
		bool write = rnd(&seed) & 1;
		uint64_t j;

		len = (rnd(&seed) % 64 + 1) * 512;
		off = rnd(&seed) % ((size - len) / 512 + 1) * 512;
		if (write) {
			for (j = 0; j < len; j++)
				buf[j] = (uint8_t)(rnd(&seed) >> 11);
			ret = diskio(d, DISK_WRITE, buf, off, len, false);
			memcpy(mirror + off, buf, len);
		} else {
			ret = diskio(d, DISK_READ, buf, off, len, false);
			if (!ret && memcmp(buf, mirror + off, len)) {
				fprintf(stderr, "qcow2io: read at %llu+%llu differs\n",
					(unsigned long long)off,
					(unsigned long long)len);
				return 1;
			}
		}
	}
	if (ret) {
		fprintf(stderr, "qcow2io: op %lu: %s\n", i, strerror(-ret));
		return 1;
	}
	/* Everything, once more, in one read. */
	ret = diskio(d, DISK_READ, mem, 0, 1 << 20, false);
	if (ret || memcmp(mem, mirror, 1 << 20))
		return 1;
	printf("verified %lu operations on %s (block size %u, direct I/O alignment %u)\n",
	       n, d->spec.path, d->block_size, d->dio_align);
	disk_close(d);
	return 0;
}

int main(int argc, char **argv)
{
	struct disk_spec spec = { 0 };
	struct disk *d;
	char err[512];
	int ret;

	if (argc < 4) {
		fprintf(stderr, "usage: qcow2io dump IMAGE OUT | write IMAGE MIRROR SEED N | verify SPEC SEED N\n");
		return 2;
	}
	/* IMAGE is a -d specification: "FILE", "FILE,ro", ... */
	if (disk_spec_parse(argv[2], &spec, err, sizeof(err))) {
		fprintf(stderr, "qcow2io: %s\n", err);
		return 2;
	}
	if (!strcmp(argv[1], "dump"))
		spec.ro = true;
	if (disk_open(&d, &spec, err, sizeof(err))) {
		fprintf(stderr, "qcow2io: %s\n", err);
		return 1;
	}
	/* QCOW2IO_AIO=io_uring: the engine queue threads have (polled here). */
	if (getenv("QCOW2IO_AIO") && !strcmp(getenv("QCOW2IO_AIO"), "io_uring") ?
	    aio_uring_create(&engine, 64) : aio_sync_create(&engine))
		return 1;
	if (!strcmp(argv[1], "dump")) {
		int fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
		static uint8_t buf[1 << 20];
		uint64_t off;

		for (off = 0; fd >= 0 && off < d->size; off += sizeof(buf)) {
			uint64_t n = d->size - off < sizeof(buf) ?
				     d->size - off : sizeof(buf);

			ret = diskio(d, DISK_READ, buf, off, n, false);
			if (ret) {
				fprintf(stderr, "qcow2io: read at %llu: %s\n",
					(unsigned long long)off, strerror(-ret));
				return 1;
			}
			if (pwrite(fd, buf, n, off) != (ssize_t)n)
				return 1;
		}
		printf("dumped %llu bytes (%s)\n", (unsigned long long)d->size,
		       d->ops->name);
		return fd < 0;
	}
	if (!strcmp(argv[1], "poke") && argc == 5) {
		uint64_t off = strtoull(argv[3], NULL, 0);
		uint64_t len = strtoull(argv[4], NULL, 0);
		uint8_t *buf = malloc(len ? len : 1);

		if (!buf)
			return 1;
		memset(buf, 0xa5, len);
		ret = diskio(d, DISK_WRITE, buf, off, len, false);
		if (ret)
			fprintf(stderr, "qcow2io: write at %llu: %s\n",
				(unsigned long long)off, strerror(-ret));
		disk_close(d);		/* writes the metadata back */
		return ret != 0;
	}
	if (!strcmp(argv[1], "copy") && argc == 4) {
		int fd = open(argv[3], O_RDONLY);
		static uint8_t buf[1 << 20];
		uint64_t off;

		for (off = 0, ret = fd < 0; !ret && off < d->size; off += sizeof(buf))
			ret = pread(fd, buf, sizeof(buf), off) != sizeof(buf) ? -EIO :
			      diskio(d, DISK_WRITE, buf, off, sizeof(buf), false);
		if (!ret)
			ret = diskio(d, DISK_FLUSH, NULL, 0, 0, false);
		if (ret)
			fprintf(stderr, "qcow2io: copy: %s\n", strerror(-ret));
		disk_close(d);
		return ret != 0;
	}
	if (!strcmp(argv[1], "reuse") && argc == 5) {
		int fd = open(argv[3], O_RDWR);
		uint64_t seed = strtoull(argv[4], NULL, 0) | 1, off, n = d->size >> 20;
		static uint8_t buf[1 << 20];
		unsigned int round, j;

		for (round = 0, ret = fd < 0; !ret && round < 4; round++) {
			uint64_t pick = rnd(&seed);

			for (off = 0; !ret && off < n; off++)
				if ((pick >> (off % 64)) & 1)
					ret = diskio(d, DISK_DISCARD, NULL, off << 20,
						 1 << 20, false);
			for (off = 0; !ret && off < n; off++) {
				if (!((pick >> (off % 64)) & 1))
					continue;
				for (j = 0; j < sizeof(buf); j += 8)
					*(uint64_t *)(buf + j) = rnd(&seed);
				ret = diskio(d, DISK_WRITE, buf, off << 20, sizeof(buf),
					 false);
				if (!ret && pwrite(fd, buf, sizeof(buf), off << 20) !=
					    sizeof(buf))
					ret = -EIO;
			}
		}
		if (!ret)
			ret = diskio(d, DISK_FLUSH, NULL, 0, 0, false);
		if (ret)
			fprintf(stderr, "qcow2io: reuse: %s\n", strerror(-ret));
		disk_close(d);
		return ret != 0;
	}
	if (!strcmp(argv[1], "hold")) {
		printf("holding %s\n", spec.path);
		fflush(stdout);
		sleep(atoi(argv[3]));
		disk_close(d);
		return 0;
	}
	if (!strcmp(argv[1], "verify") && argc == 5)
		return verify(d, strtoull(argv[3], NULL, 0) | 1,
			      strtoul(argv[4], NULL, 0));
	if (!strcmp(argv[1], "write") && argc == 6) {
		int mfd = open(argv[3], O_RDWR);
		uint64_t seed = strtoull(argv[4], NULL, 0) | 1;
		unsigned long n = strtoul(argv[5], NULL, 0), i;
		uint8_t *buf = malloc(1 << 20);

		if (mfd < 0 || !buf)
			return 1;
		for (i = 0; i < n; i++) {
			uint64_t len = (rnd(&seed) % 256 + 1) * 512;
			uint64_t off = (rnd(&seed) % (d->size / 512)) * 512;
			unsigned int kind = rnd(&seed) % 10, j;

			if (off + len > d->size)
				len = d->size - off;
			if (kind < 7) {
				for (j = 0; j < len; j++)
					buf[j] = (uint8_t)(seed >> (j % 56)) + j;
				ret = diskio(d, DISK_WRITE, buf, off, len, false);
				if (!ret && pwrite(mfd, buf, len, off) != (ssize_t)len)
					ret = -EIO;
			} else if (kind < 9) {
				ret = diskio(d, DISK_WRITE_ZEROES, NULL, off, len,
					 kind == 8);
				memset(buf, 0, len);
				if (!ret && pwrite(mfd, buf, len, off) != (ssize_t)len)
					ret = -EIO;
			} else {
				ret = diskio(d, DISK_DISCARD, NULL, off, len, false);
				/* Discarded bytes are whatever the image says. */
				if (!ret)
					ret = diskio(d, DISK_READ, buf, off, len, false);
				if (!ret && pwrite(mfd, buf, len, off) != (ssize_t)len)
					ret = -EIO;
			}
			if (ret) {
				fprintf(stderr, "qcow2io: op %lu (%u at %llu+%llu): %s\n",
					i, kind, (unsigned long long)off,
					(unsigned long long)len, strerror(-ret));
				return 1;
			}
			if (i % 64 == 0) {
				printf("op %lu\n", i);
				fflush(stdout);
			}
		}
		ret = diskio(d, DISK_FLUSH, NULL, 0, 0, false);
		printf("%lu operations, flushed (%s)\n", n, ret ? "failed" : "ok");
		disk_close(d);
		return ret != 0;
	}
	return 2;
}
