/*
 * vblk.h - virtio-blk for test guests, on top of virtio.h: requests are
 * three-descriptor chains (header, data, status), posted in batches and
 * waited for by polling the used ring, one queue per caller.
 */
#ifndef GUEST_VBLK_H
#define GUEST_VBLK_H

#include "runtime/virtio.h"

#define VBLK_T_IN		0
#define VBLK_T_OUT		1
#define VBLK_T_FLUSH		4
#define VBLK_T_GET_ID		8
#define VBLK_T_DISCARD		11
#define VBLK_T_WRITE_ZEROES	13

#define VBLK_F_RO		5
#define VBLK_F_FLUSH		9
#define VBLK_F_MQ		12
#define VBLK_F_DISCARD		13
#define VBLK_F_WRITE_ZEROES	14

#define VBLK_QSIZE		64
#define VBLK_SLOTS		(VBLK_QSIZE / 3)

struct vblk_hdr {
	uint32_t type;
	uint32_t ioprio;
	uint64_t sector;
};

struct vblk_queue {
	struct vq vq;
	struct vblk_hdr hdr[VBLK_SLOTS];
	volatile uint8_t status[VBLK_SLOTS];
	unsigned int posted;
};

struct vblk {
	struct vdev d;
	uint64_t sectors;
	unsigned int nq;
	struct vblk_queue q[2];
};

/* Finds and sets up the disk with nq (1 or 2) queues; false on failure. */
bool vblk_open(struct vblk *b, unsigned int nq);
/* Posts request `slot` (< VBLK_SLOTS) on queue qi; vblk_kick sends them. */
void vblk_post(struct vblk *b, unsigned int qi, unsigned int slot,
	       uint32_t type, uint64_t sector, void *buf, uint32_t len);
void vblk_kick(struct vblk *b, unsigned int qi);
/* Waits for every posted request on qi; false if they never came back. */
bool vblk_wait(struct vblk *b, unsigned int qi);
/* One request, start to end: returns its status (0xff: no answer). */
uint8_t vblk_do(struct vblk *b, unsigned int qi, uint32_t type,
		uint64_t sector, void *buf, uint32_t len);
/* The byte lkvm's tests expect at disk offset off for pattern seed. */
static inline uint8_t vblk_pattern(uint64_t off, unsigned int seed)
{
	return (uint8_t)((off >> 9) * 31 + (off & 511) + seed) ^ 0x5a;
}

#endif
