/*
 * Fuzz target for qcow2 header and table parsing (disk/qcow2.c).  The
 * input is an image file: it is opened through lkvm's disk layer, and if
 * accepted, read from start to end (at most 256 KiB) and written a
 * little, which walks the L1/L2/refcount tables and inflates compressed
 * clusters and reads subcluster bitmaps; a dirty image (lazy refcounts)
 * is repaired at open, which walks every table and the snapshots.  Nothing may crash, hang or
 * grow the image past what the writes allocate.  Built with libFuzzer by `make fuzz`; without it,
 * main() replays mutations of a small valid v3 image that it builds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lkvm/lib/aio.h"
#include "lkvm/disk/disk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int pending;

static void done(struct disk_req *r, int err)
{
	(void)r;
	(void)err;
	pending = 0;
}

static void io(struct disk *d, struct aio *a, enum disk_req_type t,
	       uint8_t *buf, uint64_t off, uint64_t len)
{
	struct iovec v = { buf, len };
	struct disk_req r = { .type = t, .iov = &v, .niov = 1, .off = off,
			      .len = len, .done = done };

	pending = 1;
	disk_submit(d, a, &r);
	while (pending)
		a->ops->poll(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct aio *a;
	static uint8_t buf[65536];
	struct disk_spec spec = { .format = "qcow2" };
	char path[64], err[256];
	struct disk *d;
	struct stat st;
	uint64_t off, end;
	int fd = memfd_create("qcow2-fuzz", 0);

	if (fd < 0 || (!a && aio_sync_create(&a)))
		abort();
	if (write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	spec.path = path;
	if (disk_open(&d, &spec, err, sizeof(err)) == 0) {
		end = d->size < 262144 ? d->size : 262144;
		for (off = 0; off + 512 <= end; off += sizeof(buf) / 2)
			io(d, a, DISK_READ, buf, off,
			   end - off < sizeof(buf) ? (end - off) & ~511ULL :
			   sizeof(buf));
		if (d->size >= 4096) {
			memset(buf, 0xa5, 4096);
			io(d, a, DISK_WRITE, buf, 512, 1024);
			io(d, a, DISK_WRITE, buf, d->size - 4096, 4096);
			io(d, a, DISK_WRITE_ZEROES, NULL, 0, 4096);
			io(d, a, DISK_READ, buf, 0, 4096);
		}
		disk_close(d);
		/* Writes may add a few clusters of 2 MiB at most, no more. */
		if (fstat(fd, &st) || st.st_size > (off_t)size + (64 << 20))
			abort();
	}
	close(fd);
	return 0;
}

#ifndef LKVM_LIBFUZZER
static void be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static void be64(uint8_t *p, uint64_t v)
{
	be32(p, v >> 32);
	be32(p + 4, v);
}

/*
 * A valid v3 image, 512-byte clusters, 64 KiB disk: header at 0, L1 at
 * 512, refcount table at 1024, refcount block at 1536, one L2 at 2048,
 * one data cluster at 2560 (guest offset 0) and one compressed cluster
 * at 3072 (a stored deflate block, spilling into the cluster at 3584).
 */
static size_t seed(uint8_t *img)
{
	memset(img, 0, 4096);
	be32(img, 0x514649fb);
	be32(img + 4, 3);
	be32(img + 20, 9);		/* cluster_bits */
	be64(img + 24, 65536);		/* size */
	be32(img + 36, 2);		/* l1_size */
	be64(img + 40, 512);
	be64(img + 48, 1024);
	be32(img + 56, 1);		/* refcount table clusters */
	be32(img + 96, 4);		/* refcount_order */
	be32(img + 100, 104);		/* header length */
	be64(img + 512, 2048 | 1ULL << 63);
	be64(img + 1024, 1536);
	for (int i = 0; i < 8; i++)	/* clusters 0-7 in use */
		img[1536 + 2 * i + 1] = 1;
	be64(img + 2048, 2560 | 1ULL << 63);
	/* guest cluster 1: compressed, 2 sectors at 3072 (stored deflate) */
	be64(img + 2056, (1ULL << 62) | (1ULL << 61) | 3072);
	img[3072] = 0x01;		/* final stored block of 512 bytes */
	img[3073] = 0x00;
	img[3074] = 0x02;
	img[3075] = 0xff;
	img[3076] = 0xfd;
	memset(img + 2560, 0x5a, 512);
	memset(img + 3077, 0x33, 512);
	return 4096;
}

/*
 * A valid v3 image with extended L2 entries, 16 KiB clusters (32
 * subclusters of 512 bytes), 256 KiB disk: header at 0, L1 at 16K,
 * refcount table at 32K, refcount block at 48K, L2 at 64K, one data
 * cluster at 80K for guest cluster 0 with subclusters 0-3 allocated,
 * 4-7 reading as zero, the rest unallocated (no backing file: zeroes);
 * guest cluster 1 unallocated with every subcluster zero.
 */
static size_t seed_ext(uint8_t *img)
{
	const uint64_t k = 16384;

	memset(img, 0, 6 * k);
	be32(img, 0x514649fb);
	be32(img + 4, 3);
	be32(img + 20, 14);		/* cluster_bits */
	be64(img + 24, 262144);		/* size */
	be32(img + 36, 1);		/* l1_size */
	be64(img + 40, k);
	be64(img + 48, 2 * k);
	be32(img + 56, 1);
	be64(img + 72, 1ULL << 4);	/* incompatible: extended L2 */
	be32(img + 96, 4);
	be32(img + 100, 104);
	be64(img + k, 4 * k | 1ULL << 63);
	be64(img + 2 * k, 3 * k);
	for (int i = 0; i < 6; i++)	/* clusters 0-5 in use */
		img[3 * k + 2 * i + 1] = 1;
	be64(img + 4 * k, 5 * k | 1ULL << 63);
	be64(img + 4 * k + 8, 0xf0ULL << 32 | 0x0f);
	be64(img + 4 * k + 24, 0xffffffffULL << 32);
	memset(img + 5 * k, 0x5a, 2048);
	return 6 * k;
}

/*
 * seed()'s image left dirty by a writer with lazy refcounts, with one
 * snapshot (table at 4096, sharing the L1 table): a writable open
 * rebuilds the refcounts, which parses the snapshot table and walks
 * every table.
 */
static size_t seed_dirty(uint8_t *img)
{
	seed(img);
	memset(img + 4096, 0, 512);
	be64(img + 72, 1);		/* incompatible: dirty */
	be64(img + 80, 1);		/* compatible: lazy refcounts */
	be32(img + 60, 1);		/* one snapshot */
	be64(img + 64, 4096);
	be64(img + 4096, 512);		/* its L1 table, 2 entries */
	be32(img + 4104, 2);
	img[4109] = 1;			/* id "1", name "s" */
	img[4111] = 1;
	img[4135] = 16;			/* extra data: v3's 16 bytes */
	img[4152] = '1';
	img[4153] = 's';
	return 4608;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

int main(int argc, char **argv)
{
	static uint8_t img[8192], ext[6 * 16384], dirty[8192];
	uint64_t s = 0x2545f4914f6cdd1dULL;
	long runs = argc > 1 ? atol(argv[1]) : 20000, n;
	size_t len = seed(img), elen = seed_ext(ext), dlen = seed_dirty(dirty);

	LLVMFuzzerTestOneInput(img, len);	/* the valid ones, as they are */
	LLVMFuzzerTestOneInput(ext, elen);
	LLVMFuzzerTestOneInput(dirty, dlen);
	/* Mutations of the dirty one: header, L2 table, snapshot entry. */
	for (n = 0; n < runs / 4; n++) {
		static uint8_t m[8192];
		static const size_t at[] = { 0, 2048, 4096 };
		int k, flips;

		memcpy(m, dirty, dlen);
		flips = 1 + xorshift(&s) % 4;
		for (k = 0; k < flips; k++) {
			xorshift(&s);
			m[at[s % 3] + (s >> 16) % (s % 3 == 1 ? 32 : 72)] = s >> 40;
		}
		m[79] |= 1;	/* it stays dirty: the repair runs */
		LLVMFuzzerTestOneInput(m, dlen);
	}
	/* Mutations of the extended one: its header, L1, L2 and bitmaps. */
	for (n = 0; n < runs / 4; n++) {
		static uint8_t m[6 * 16384];
		static const size_t at[] = { 0, 16384, 65536 };
		int k, flips;

		memcpy(m, ext, elen);
		flips = 1 + xorshift(&s) % 4;
		for (k = 0; k < flips; k++) {
			xorshift(&s);
			m[at[s % 3] + (s >> 16) % (s % 3 ? 64 : 112)] = s >> 40;
		}
		LLVMFuzzerTestOneInput(m, elen);
	}
	for (n = 0; n < runs; n++) {
		static uint8_t m[8192];
		int k, flips;

		memcpy(m, img, len);
		flips = 1 + xorshift(&s) % 6;
		for (k = 0; k < flips; k++) {
			xorshift(&s);
			/* Mostly the metadata: header and tables. */
			m[(s >> 16) % (s & 1 ? 112 : len)] = s >> 40;
		}
		LLVMFuzzerTestOneInput(m, (s >> 8) % 8 ? len : (s >> 20) % len);
	}
	printf("PASS qcow2 images: three valid ones (one with extended L2 "
	       "entries, one dirty with a snapshot) and %ld mutations of them\n"
	       "1 passed, 0 failed\n", runs + 2 * (runs / 4));
	return 0;
}
#endif
