/*
 * virtqueue.h - the split virtqueue (virtio 1.2, section 2.7) seen from the
 * device side.  Everything in the ring is written by an untrusted guest:
 * each index, address, length and flag is checked before use, and a
 * structural violation marks the queue broken (the device then reports
 * DEVICE_NEEDS_RESET) instead of being trusted.
 *
 * Threads: a queue is touched only by the thread that owns it (its I/O
 * thread), except vq_setup()/vq_reset(), which the transport calls while
 * that thread is paused.
 */
#ifndef LKVM_VIRTIO_VIRTQUEUE_H
#define LKVM_VIRTIO_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "lkvm/memory.h"

#define VQ_MAX_SIZE		1024

#define VRING_DESC_F_NEXT	1
#define VRING_DESC_F_WRITE	2
#define VRING_DESC_F_INDIRECT	4
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY	1

#define VIRTIO_F_INDIRECT_DESC	28
#define VIRTIO_F_EVENT_IDX	29
#define VIRTIO_F_VERSION_1	32

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
} __attribute__((packed));

struct vring_used_elem {
	uint32_t id;
	uint32_t len;
} __attribute__((packed));

enum vq_error {
	VQ_OK = 0,
	VQ_ERR_AVAIL_IDX,	/* avail->idx moved by more than the size */
	VQ_ERR_HEAD,		/* head index out of range */
	VQ_ERR_NEXT,		/* next index out of range */
	VQ_ERR_LOOP,		/* chain longer than the table: a loop */
	VQ_ERR_ADDR,		/* buffer outside guest RAM */
	VQ_ERR_ORDER,		/* readable buffer after a writable one */
	VQ_ERR_INDIRECT,	/* bad indirect table (size, nesting, flags) */
	VQ_ERR_TOO_BIG,		/* more segments or bytes than allowed */
	VQ_ERR_NR
};

struct virtqueue {
	const struct guest_memory *mem;
	uint16_t size;			/* 0: not set up */
	bool event_idx;
	bool indirect;
	bool broken;
	enum vq_error error;
	struct vring_desc *desc;
	uint16_t *avail;		/* flags, idx, ring[size], used_event */
	uint16_t *used;			/* flags, idx, ring, avail_event */
	uint16_t last_avail;		/* next avail entry to take */
	uint16_t avail_seen;		/* avail->idx when last read */
	uint16_t used_idx;		/* our copy of used->idx */
	uint16_t used_published;	/* used->idx as the guest sees it */
	uint16_t signalled_used;	/* used_idx when we last notified */
};

/* One request: the chain's buffers as host iovecs, readable ones first. */
struct vq_elem {
	uint16_t head;
	unsigned int nout;		/* device-readable iovecs */
	unsigned int nin;		/* device-writable iovecs, after nout */
	uint64_t in_bytes;		/* the writable part's size */
	uint64_t out_bytes;		/* the readable part's size */
	struct iovec *iov;
	unsigned int max_iov;
};

/*
 * Maps the rings at the guest addresses given.  Returns 0, or -EINVAL
 * for a bad size or alignment, -EFAULT if a ring is not in guest RAM.
 */
int vq_setup(struct virtqueue *vq, const struct guest_memory *mem,
	     uint16_t size, uint64_t desc, uint64_t avail, uint64_t used,
	     uint64_t features);
void vq_reset(struct virtqueue *vq);

/*
 * Takes the next available chain.  Returns 1 with e filled, 0 if the
 * ring is empty, -EPROTO if the guest broke the ring (vq->error says
 * how; the queue stays broken until reset).
 */
int vq_pop(struct virtqueue *vq, struct vq_elem *e);
/*
 * Returns a chain to the guest with len bytes written into it.  The
 * guest sees used->idx move every few pushes and at vq_publish_used()
 * (which vq_should_notify() does first): fewer stores to a cache line
 * the driver polls.
 */
/* The chain vq_pop gave last goes back (it will be read again). */
void vq_unpop(struct virtqueue *vq);
void vq_push(struct virtqueue *vq, uint16_t head, uint32_t len);
void vq_publish_used(struct virtqueue *vq);
/* After a batch of pushes: must the guest be interrupted? */
bool vq_should_notify(struct virtqueue *vq);
/*
 * Notification suppression around a drain: vq_notify_off() before,
 * vq_notify_on() after; the latter returns true if more work arrived
 * meanwhile (so the caller drains again instead of sleeping).
 */
void vq_notify_off(struct virtqueue *vq);
bool vq_notify_on(struct virtqueue *vq);
bool vq_has_work(struct virtqueue *vq);

const char *vq_error_name(enum vq_error e);

#endif
