/*
 * blk - writes a pattern over the first 128 KiB of a virtio-blk disk in
 * batches of 16 requests of 4 KiB, flushes, reads it all back and
 * compares; then checks GET_ID, an out-of-range read (IOERR), an unknown
 * request type (UNSUPP), and write-zeroes and discard over sectors
 * 64-127 (which must read back as zeroes).  The host then checks the
 * image: pattern (seed 0) everywhere except the zeroed range.
 */
#include "runtime/vblk.h"

#define CHUNK	4096
#define TOTAL	(128 * 1024)
#define BATCH	16

static uint8_t buf[BATCH][CHUNK] __attribute__((aligned(4096)));

static void fail(const char *what, unsigned int v)
{
	gprintf("blk: FAIL %s (%u)\n", what, v);
	guest_exit(1);
}

static void run_batch(struct vblk *b, uint32_t type, uint64_t first)
{
	unsigned int i;

	for (i = 0; i < BATCH; i++)
		vblk_post(b, 0, i, type, (first + i * CHUNK) / 512, buf[i],
			  CHUNK);
	vblk_kick(b, 0);
	if (!vblk_wait(b, 0))
		fail("requests never completed", type);
	for (i = 0; i < BATCH; i++)
		if (b->q[0].status[i] != 0)
			fail("request status", b->q[0].status[i]);
}

void main(void)
{
	static char id[21];
	struct vblk b;
	uint64_t off;
	unsigned int i, j, bad = 0;
	uint8_t st;

	if (!vblk_open(&b, 1))
		fail("no usable virtio-blk", vdev_status(&b.d));
	gprintf("blk: %u sectors on %s\n", (unsigned int)b.sectors,
		b.d.pci ? "virtio-pci" : "virtio-mmio");
	if (b.sectors * 512 < TOTAL)
		fail("disk too small", (unsigned int)b.sectors);

	for (off = 0; off < TOTAL; off += BATCH * CHUNK) {
		for (i = 0; i < BATCH; i++)
			for (j = 0; j < CHUNK; j++)
				buf[i][j] = vblk_pattern(off + i * CHUNK + j, 0);
		run_batch(&b, VBLK_T_OUT, off);
	}
	if ((st = vblk_do(&b, 0, VBLK_T_FLUSH, 0, 0, 0)) != 0)
		fail("flush", st);
	for (off = 0; off < TOTAL; off += BATCH * CHUNK) {
		memset(buf, 0, sizeof(buf));
		run_batch(&b, VBLK_T_IN, off);
		for (i = 0; i < BATCH; i++)
			for (j = 0; j < CHUNK; j++)
				bad += buf[i][j] !=
				       vblk_pattern(off + i * CHUNK + j, 0);
	}
	if (bad)
		fail("read-back mismatches", bad);
	gprintf("blk: wrote, flushed and read back %u KiB: match\n",
		TOTAL / 1024);

	if ((st = vblk_do(&b, 0, VBLK_T_GET_ID, 0, id, 20)) != 0)
		fail("get id", st);
	gprintf("blk: serial '%s'\n", id);
	st = vblk_do(&b, 0, VBLK_T_IN, b.sectors - 1, buf[0], 1024);
	if (st != 1)
		fail("read past the end not IOERR", st);
	st = vblk_do(&b, 0, 99, 0, buf[0], 512);
	if (st != 2)
		fail("unknown type not UNSUPP", st);
	gprintf("blk: read past the end -> IOERR, unknown type -> UNSUPP\n");

	/* Write zeroes over sectors 64-95, discard 96-127. */
	{
		struct { uint64_t sector; uint32_t num, flags; } seg;

		seg = (typeof(seg)){ 64, 32, 0 };
		if ((st = vblk_do(&b, 0, VBLK_T_WRITE_ZEROES, 0, &seg,
				  sizeof(seg))) != 0)
			fail("write zeroes", st);
		seg = (typeof(seg)){ 96, 32, 0 };
		if ((st = vblk_do(&b, 0, VBLK_T_DISCARD, 0, &seg,
				  sizeof(seg))) != 0)
			fail("discard", st);
	}
	memset(buf[0], 0xee, CHUNK);
	for (i = 0; i < 8; i++) {
		if ((st = vblk_do(&b, 0, VBLK_T_IN, 64 + 8 * i, buf[0],
				  CHUNK)) != 0)
			fail("read zeroed range", st);
		for (j = 0; j < CHUNK; j++)
			bad += buf[0][j] != 0;
	}
	if (bad)
		fail("zeroed range not zero", bad);
	if ((st = vblk_do(&b, 0, VBLK_T_FLUSH, 0, 0, 0)) != 0)
		fail("flush", st);
	gprintf("blk: write zeroes and discard read back as zeroes\n");
	guest_exit(0);
}
