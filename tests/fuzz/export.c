/*
 * Fuzz target for lkvm export's request handling (fs/fuse_msg.c and the
 * dispatcher of fs/export.c): the input is one FUSE request as the
 * transport would hand it over.  It runs against a 1 MiB raw disk in a
 * memfd, with replies written to /dev/null; a read-only export runs it
 * too and must not touch the disk (its ctime does not move).  If the
 * input's last header byte (padding) is odd, its length field is made
 * to match, so mutations get past the framing check.  Built with
 * libFuzzer by `make fuzz`; without it, main() replays requests of every
 * opcode lkvm knows with random fields.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lkvm/disk/disk.h"
#include "lkvm/fs/export.h"
#include "lkvm/fs/fuse_msg.h"
#include "lkvm/lib/util.h"

#define DISK_SIZE	(1u << 20)
#define REQ_MAX		(80 + (1u << 20) + 64)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct disk *disk_rw, *disk_ro;
static struct fsx *x_rw, *x_ro;
static int mfd = -1, null_fd = -1;
static uint8_t *req;

static struct disk *open_mem(bool ro)
{
	struct disk_spec spec = { .format = "raw", .ro = ro, .no_lock = true };
	char path[64], err[256];
	struct disk *d;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", mfd);
	spec.path = path;
	if (disk_open(&d, &spec, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	return d;
}

static void setup(void)
{
	if (mfd >= 0)
		return;
	mfd = memfd_create("export-fuzz", 0);
	null_fd = open("/dev/null", O_WRONLY);
	req = malloc(REQ_MAX);
	if (mfd < 0 || null_fd < 0 || !req || ftruncate(mfd, DISK_SIZE))
		abort();
	disk_rw = open_mem(false);
	disk_ro = open_mem(true);
	if (fsx_test_open(&x_rw, disk_rw, false, null_fd) ||
	    fsx_test_open(&x_ro, disk_ro, true, null_fd))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuse_in_header *h;
	struct stat before, after;

	setup();	/* req exists from here on */
	h = (struct fuse_in_header *)req;
	if (size > REQ_MAX)
		size = REQ_MAX;
	memcpy(req, data, size);
	if (size >= sizeof(*h) && (req[39] & 1))
		h->len = size;
	fsx_test_request(x_rw, req, size);
	/*
	 * Read-only: whatever it is, the disk is not touched.  Any write,
	 * truncate or fallocate moves the file's ctime (the kernel's, at
	 * nanoseconds), which is cheaper to watch than the bytes.
	 */
	if (fstat(mfd, &before))
		abort();
	memcpy(req, data, size);
	if (size >= sizeof(*h) && (req[39] & 1))
		h->len = size;
	fsx_test_request(x_ro, req, size);
	if (fstat(mfd, &after) || before.st_ctim.tv_sec != after.st_ctim.tv_sec ||
	    before.st_ctim.tv_nsec != after.st_ctim.tv_nsec ||
	    before.st_size != after.st_size) {
		fprintf(stderr, "a read-only export changed the disk\n");
		abort();
	}
	return 0;
}

#ifndef LKVM_LIBFUZZER
static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Offsets and sizes near the edges the handlers check. */
static uint64_t edgy(uint64_t *s)
{
	static const uint64_t at[] = { 0, 1, 511, 512, 4096, DISK_SIZE - 512,
				       DISK_SIZE - 1, DISK_SIZE, DISK_SIZE + 1,
				       1u << 20, (1u << 20) + 1, UINT64_MAX,
				       UINT64_MAX - 511, 1ULL << 63 };
	uint64_t r = xorshift(s);

	return r & 1 ? at[(r >> 8) % (sizeof(at) / sizeof(at[0]))] :
		       (r >> 8) % (2 * DISK_SIZE);
}

int main(int argc, char **argv)
{
	static const uint32_t ops[] = {
		FUSE_READ, FUSE_WRITE, FUSE_FSYNC, FUSE_FALLOCATE, FUSE_GETATTR,
		FUSE_SETATTR, FUSE_OPEN, FUSE_FLUSH, FUSE_RELEASE, FUSE_STATFS,
		FUSE_FORGET, FUSE_BATCH_FORGET, FUSE_INTERRUPT, FUSE_INIT,
		FUSE_LOOKUP, FUSE_GETXATTR, FUSE_LSEEK, FUSE_MKDIR, 9999,
	};
	static uint8_t buf[80 + 140000];
	uint64_t s = 0x9e3779b97f4a7c15ULL;
	long runs = argc > 1 ? atol(argv[1]) : 20000, n;

	/* The ctime check must see a write right after an fstat. */
	{
		struct stat a, b;
		uint8_t z = 0;

		setup();
		if (fstat(mfd, &a) || pwrite(mfd, &z, 1, 0) != 1 || fstat(mfd, &b) ||
		    (a.st_ctim.tv_sec == b.st_ctim.tv_sec &&
		     a.st_ctim.tv_nsec == b.st_ctim.tv_nsec)) {
			printf("FAIL a write to the memfd left its ctime: the read-only check is blind here\n0 passed, 1 failed\n");
			return 1;
		}
	}
	for (n = 0; n < runs; n++) {
		struct fuse_in_header *h = (struct fuse_in_header *)buf;
		uint8_t *b = buf + sizeof(*h);
		uint32_t op = ops[xorshift(&s) % (sizeof(ops) / sizeof(ops[0]))];
		size_t body = fuse_msg_body_size(op), len, k;

		if (body == SIZE_MAX)
			body = 16;
		memset(buf, 0, 80);
		for (k = 0; k < body; k += 8) {
			uint64_t v = xorshift(&s) & 3 ? edgy(&s) : xorshift(&s);

			memcpy(b + k, &v, MIN(8, body - k));
		}
		len = sizeof(*h) + body;
		if (op == FUSE_WRITE) {
			struct fuse_write_in *w = (struct fuse_write_in *)b;
			size_t data = xorshift(&s) % 140000;

			if (xorshift(&s) & 1)
				w->size = data;		/* consistent */
			memset(b + body, (int)n, data);
			len += data;
		}
		if (op == FUSE_FALLOCATE && (xorshift(&s) & 1)) {
			struct fuse_fallocate_in *f = (struct fuse_fallocate_in *)b;
			static const uint32_t modes[] = { 0, 1, 3, 16, 17, 2, 8 };

			f->mode = modes[xorshift(&s) % 7];
		}
		/* Now and then a header that lies about the length. */
		if (xorshift(&s) % 8 == 0)
			len -= xorshift(&s) % (len + 1);
		h->len = xorshift(&s) % 16 ? len : (uint32_t)xorshift(&s);
		h->opcode = op;
		h->unique = n;
		h->nodeid = 1;
		buf[39] = 0;
		LLVMFuzzerTestOneInput(buf, len);
	}
	fsx_test_close(x_rw);
	fsx_test_close(x_ro);
	disk_close(disk_rw);
	disk_close(disk_ro);
	printf("PASS export requests: %ld of every opcode, fields at the edges; "
	       "read-only left the disk alone\n1 passed, 0 failed\n", runs);
	return 0;
}
#endif
