/*
 * blkro - a read-only virtio-blk disk: the device offers VIRTIO_BLK_F_RO,
 * reads return the host's pattern (seed 1) over the first 64 KiB, and
 * writes, write-zeroes and discards fail with IOERR.  The host checks the
 * image file is unchanged.
 */
#include "runtime/vblk.h"

static uint8_t buf[4096] __attribute__((aligned(4096)));

static void fail(const char *what, unsigned int v)
{
	gprintf("blkro: FAIL %s (%u)\n", what, v);
	guest_exit(1);
}

void main(void)
{
	struct { uint64_t sector; uint32_t num, flags; } seg = { 0, 8, 0 };
	struct vblk b;
	unsigned int i, j, bad = 0;
	uint8_t st;

	if (!vblk_open(&b, 1))
		fail("no usable virtio-blk", vdev_status(&b.d));
	if (!(b.d.features & 1ULL << VBLK_F_RO))
		fail("VIRTIO_BLK_F_RO not offered", 0);
	for (i = 0; i < 16; i++) {
		if ((st = vblk_do(&b, 0, VBLK_T_IN, 8 * i, buf, 4096)) != 0)
			fail("read", st);
		for (j = 0; j < 4096; j++)
			bad += buf[j] != vblk_pattern(4096 * i + j, 1);
	}
	if (bad)
		fail("pattern mismatches", bad);
	memset(buf, 0xab, sizeof(buf));
	if ((st = vblk_do(&b, 0, VBLK_T_OUT, 0, buf, 4096)) != 1)
		fail("write not refused", st);
	if ((st = vblk_do(&b, 0, VBLK_T_WRITE_ZEROES, 0, &seg,
			  sizeof(seg))) != 1)
		fail("write zeroes not refused", st);
	if ((st = vblk_do(&b, 0, VBLK_T_DISCARD, 0, &seg, sizeof(seg))) != 1)
		fail("discard not refused", st);
	gprintf("blkro: RO offered, 64 KiB read match, write/zeroes/discard -> IOERR\n");
	guest_exit(0);
}
