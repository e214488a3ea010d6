/*
 * vblk.c - the test guests' virtio-blk requests (see vblk.h).
 */
#include "runtime/vblk.h"

bool vblk_open(struct vblk *b, unsigned int nq)
{
	uint64_t want = 1ULL << VBLK_F_FLUSH | 1ULL << VBLK_F_DISCARD |
			1ULL << VBLK_F_WRITE_ZEROES | 1ULL << VBLK_F_RO;
	unsigned int i;

	memset(b, 0, sizeof(*b));
	if (nq > 1)
		want |= 1ULL << VBLK_F_MQ;
	if (!vdev_find(2, &b->d) || !vdev_init(&b->d, want))
		return false;
	b->sectors = vdev_cfg_read32(&b->d, 0) |
		     (uint64_t)vdev_cfg_read32(&b->d, 4) << 32;
	if (nq > 1 && (!(b->d.features & 1ULL << VBLK_F_MQ) ||
		       (vdev_cfg_read32(&b->d, 32) >> 16) < nq))
		return false;
	b->nq = nq;
	for (i = 0; i < nq; i++)
		if (!vq_init(&b->d, &b->q[i].vq, i, VBLK_QSIZE))
			return false;
	vdev_driver_ok(&b->d);
	return true;
}

void vblk_post(struct vblk *b, unsigned int qi, unsigned int slot,
	       uint32_t type, uint64_t sector, void *buf, uint32_t len)
{
	struct vblk_queue *q = &b->q[qi];
	struct vdesc *desc = q->vq.desc + 3 * slot;
	uint16_t first = 3 * slot;
	bool in = type == VBLK_T_IN || type == VBLK_T_GET_ID;

	q->hdr[slot] = (struct vblk_hdr){ type, 0, sector };
	q->status[slot] = 0xff;
	desc[0] = (struct vdesc){ (uintptr_t)&q->hdr[slot], sizeof(q->hdr[0]),
				  VRING_DESC_F_NEXT, first + 1 };
	if (len) {
		desc[1] = (struct vdesc){ (uintptr_t)buf, len,
					  VRING_DESC_F_NEXT |
					  (in ? VRING_DESC_F_WRITE : 0),
					  first + 2 };
		desc[2] = (struct vdesc){ (uintptr_t)&q->status[slot], 1,
					  VRING_DESC_F_WRITE, 0 };
	} else {
		desc[0].next = first + 2;
		desc[2] = (struct vdesc){ (uintptr_t)&q->status[slot], 1,
					  VRING_DESC_F_WRITE, 0 };
	}
	vq_publish(&q->vq, first);
	q->posted++;
}

void vblk_kick(struct vblk *b, unsigned int qi)
{
	vq_kick(&b->d, &b->q[qi].vq);
}

bool vblk_wait(struct vblk *b, unsigned int qi)
{
	struct vblk_queue *q = &b->q[qi];
	unsigned long spins;
	uint32_t id, len;

	for (spins = 0; q->posted && spins < 200000000; spins++) {
		if (vq_get_used(&q->vq, &id, &len))
			q->posted--;
		else
			cpu_relax();
	}
	return !q->posted;
}

uint8_t vblk_do(struct vblk *b, unsigned int qi, uint32_t type,
		uint64_t sector, void *buf, uint32_t len)
{
	vblk_post(b, qi, 0, type, sector, buf, len);
	vblk_kick(b, qi);
	if (!vblk_wait(b, qi))
		return 0xff;
	return b->q[qi].status[0];
}
