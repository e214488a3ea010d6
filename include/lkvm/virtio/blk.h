/*
 * blk.h - virtio-blk: request parsing (pure, so it can be tested and
 * fuzzed on its own) and the device, one I/O thread and one I/O engine
 * per queue.
 */
#ifndef LKVM_VIRTIO_BLK_H
#define LKVM_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "lkvm/disk/disk.h"
#include "lkvm/virtio/virtqueue.h"

#define VIRTIO_BLK_T_IN			0
#define VIRTIO_BLK_T_OUT		1
#define VIRTIO_BLK_T_FLUSH		4
#define VIRTIO_BLK_T_GET_ID		8
#define VIRTIO_BLK_T_DISCARD		11
#define VIRTIO_BLK_T_WRITE_ZEROES	13

#define VIRTIO_BLK_S_OK			0
#define VIRTIO_BLK_S_IOERR		1
#define VIRTIO_BLK_S_UNSUPP		2

#define BLK_SECTOR			512
#define BLK_SEG_MAX			126	/* data segments per request */
#define BLK_MAX_IOV			(BLK_SEG_MAX + 2)
#define BLK_QUEUE_SIZE			256
#define BLK_ID_BYTES			20

/* A request as parsed from a chain (whose iovecs it trims in place). */
struct blk_parsed {
	uint32_t type;
	uint64_t sector;
	struct iovec *data;	/* the data buffers, within the chain */
	unsigned int ndata;
	uint64_t len;		/* data bytes (discard/zeroes: range bytes) */
	bool unmap;		/* write zeroes may deallocate */
	uint8_t *status;	/* the status byte, in guest memory */
	uint8_t early;		/* status to answer without I/O, or 0xff */
};

struct blk_limits {
	uint64_t sectors;	/* capacity */
	bool ro;
};

/*
 * Checks a chain popped from a request queue.  Returns -EINVAL when the
 * chain has nowhere to put a status (it can only be returned unused);
 * otherwise 0 with p->early = 0xff for a request to perform, or the
 * status (IOERR, UNSUPP) to answer at once.
 */
int blk_parse(struct vq_elem *e, const struct blk_limits *lim,
	      struct blk_parsed *p);

struct lkvm;
struct virtio_device;

/*
 * Creates the device for an open disk with nqueues queues, each on its
 * own I/O thread (not started).  The device owns the disk afterwards.
 */
int virtio_blk_create(struct lkvm *vm, struct disk *disk, unsigned int index,
		      unsigned int nqueues, bool want_uring,
		      struct virtio_device **dp);

#endif
