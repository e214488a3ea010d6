/*
 * virtqueue.c - device side of the split virtqueue (see virtqueue.h).
 *
 * Ordering: the guest publishes ring entries, then avail->idx; we read
 * avail->idx with acquire semantics before reading entries.  We write
 * used entries, then used->idx with release semantics.  Before deciding
 * not to notify, a full barrier orders our used->idx store against the
 * read of the guest's used_event (the classic lost-wake-up race).
 */
#include <errno.h>
#include <string.h>

#include "lkvm/lib/util.h"
#include "lkvm/virtio/virtqueue.h"

#define VQ_MAX_INDIRECT	VQ_MAX_SIZE	/* entries in one indirect table */
#define VQ_MAX_BYTES	(1ULL << 32)	/* a request moves less than 4 GiB */
#define VQ_PUBLISH_EVERY 32		/* pushes between used->idx stores */

static const char *const vq_error_names[VQ_ERR_NR] = {
	[VQ_OK] = "no error",
	[VQ_ERR_AVAIL_IDX] = "avail index moved by more than the queue size",
	[VQ_ERR_HEAD] = "chain head out of range",
	[VQ_ERR_NEXT] = "next descriptor out of range",
	[VQ_ERR_LOOP] = "descriptor chain loops or exceeds the table",
	[VQ_ERR_ADDR] = "buffer outside guest memory",
	[VQ_ERR_ORDER] = "device-readable buffer after a writable one",
	[VQ_ERR_INDIRECT] = "malformed indirect descriptor table",
	[VQ_ERR_TOO_BIG] = "request has too many segments or bytes",
};

const char *vq_error_name(enum vq_error e)
{
	return (unsigned int)e < VQ_ERR_NR ? vq_error_names[e] : "unknown";
}

static uint16_t ring_load(const uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void ring_store(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

int vq_setup(struct virtqueue *vq, const struct guest_memory *mem,
	     uint16_t size, uint64_t desc, uint64_t avail, uint64_t used,
	     uint64_t features)
{
	uint64_t avail_len = 6 + 2ULL * size, used_len = 6 + 8ULL * size;

	vq_reset(vq);
	/* Split rings: a power of two, alignments from the spec (2.7). */
	if (!size || size > VQ_MAX_SIZE || (size & (size - 1)) ||
	    desc & 15 || avail & 1 || used & 3)
		return -EINVAL;
	vq->desc = guest_ptr(mem, desc, 16ULL * size);
	vq->avail = guest_ptr(mem, avail, avail_len);
	vq->used = guest_ptr(mem, used, used_len);
	if (!vq->desc || !vq->avail || !vq->used) {
		vq_reset(vq);
		return -EFAULT;
	}
	vq->mem = mem;
	vq->size = size;
	vq->event_idx = features & (1ULL << VIRTIO_F_EVENT_IDX);
	vq->indirect = features & (1ULL << VIRTIO_F_INDIRECT_DESC);
	/* The device starts with the ring as the guest left it: empty. */
	vq->last_avail = 0;
	vq->avail_seen = 0;
	vq->used_idx = 0;
	vq->used_published = 0;
	/*
	 * The used index starts at 0, so "last signalled at 0" is exact: a
	 * first partial batch before used_event is reached stays quiet.
	 */
	vq->signalled_used = 0;
	return 0;
}

void vq_reset(struct virtqueue *vq)
{
	memset(vq, 0, sizeof(*vq));
}

static int vq_fail(struct virtqueue *vq, enum vq_error err)
{
	vq->broken = true;
	vq->error = err;
	return -EPROTO;
}

/* Adds one buffer to the element; false on a rule violation. */
static enum vq_error vq_add_buf(struct virtqueue *vq, struct vq_elem *e,
				const struct vring_desc *d, uint64_t *total)
{
	uint64_t addr = d->addr;
	uint32_t len = d->len;
	bool write = d->flags & VRING_DESC_F_WRITE;
	void *p;

	if (!write && e->nin)
		return VQ_ERR_ORDER;
	*total += len;
	if (*total > VQ_MAX_BYTES)
		return VQ_ERR_TOO_BIG;
	if (len == 0)
		return VQ_OK;
	p = guest_ptr(vq->mem, addr, len);
	if (!p)
		return VQ_ERR_ADDR;
	if (e->nout + e->nin >= e->max_iov)
		return VQ_ERR_TOO_BIG;
	e->iov[e->nout + e->nin] = (struct iovec){ p, len };
	if (write) {
		e->nin++;
		e->in_bytes += len;
	} else {
		e->nout++;
		e->out_bytes += len;
	}
	return VQ_OK;
}

/* Walks an indirect table; the descriptor pointing at it is d. */
static enum vq_error vq_walk_indirect(struct virtqueue *vq, struct vq_elem *e,
				      const struct vring_desc *d,
				      uint64_t *total)
{
	const struct vring_desc *table;
	unsigned int n, i = 0, seen = 0;
	enum vq_error err;

	if (!vq->indirect || d->flags & VRING_DESC_F_NEXT ||
	    d->len == 0 || d->len % sizeof(*table) ||
	    d->len / sizeof(*table) > VQ_MAX_INDIRECT)
		return VQ_ERR_INDIRECT;
	n = d->len / sizeof(*table);
	table = guest_ptr(vq->mem, d->addr, d->len);
	if (!table)
		return VQ_ERR_ADDR;
	for (;;) {
		struct vring_desc t;

		memcpy(&t, &table[i], sizeof(t));	/* read once */
		if (++seen > n)
			return VQ_ERR_LOOP;
		if (t.flags & VRING_DESC_F_INDIRECT)
			return VQ_ERR_INDIRECT;		/* no nesting */
		err = vq_add_buf(vq, e, &t, total);
		if (err)
			return err;
		if (!(t.flags & VRING_DESC_F_NEXT))
			return VQ_OK;
		if (t.next >= n)
			return VQ_ERR_NEXT;
		i = t.next;
	}
}

int vq_pop(struct virtqueue *vq, struct vq_elem *e)
{
	uint16_t avail_idx, head, i;
	unsigned int seen = 0;
	uint64_t total = 0;
	enum vq_error err;

	if (vq->broken)
		return -EPROTO;
	if (!vq->size)
		return 0;
	/*
	 * avail->idx is read again only when what it said is used up: the
	 * driver keeps writing that line, and each read may miss.
	 */
	if (vq->avail_seen == vq->last_avail) {
		avail_idx = ring_load(&vq->avail[1]);
		if (avail_idx == vq->last_avail)
			return 0;
		if ((uint16_t)(avail_idx - vq->last_avail) > vq->size)
			return vq_fail(vq, VQ_ERR_AVAIL_IDX);
		vq->avail_seen = avail_idx;
	} else {
		/* Entries below avail_seen were published: order the reads. */
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
	}
	head = ring_load(&vq->avail[2 + vq->last_avail % vq->size]);
	if (head >= vq->size)
		return vq_fail(vq, VQ_ERR_HEAD);
	vq->last_avail++;

	e->head = head;
	e->nout = e->nin = 0;
	e->in_bytes = e->out_bytes = 0;
	i = head;
	for (;;) {
		struct vring_desc d;

		memcpy(&d, &vq->desc[i], sizeof(d));	/* read once */
		if (++seen > vq->size)
			return vq_fail(vq, VQ_ERR_LOOP);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			/* An indirect table is the whole chain's rest. */
			err = vq_walk_indirect(vq, e, &d, &total);
			if (err)
				return vq_fail(vq, err);
			return 1;
		}
		err = vq_add_buf(vq, e, &d, &total);
		if (err)
			return vq_fail(vq, err);
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 1;
		if (d.next >= vq->size)
			return vq_fail(vq, VQ_ERR_NEXT);
		i = d.next;
	}
}

void vq_unpop(struct virtqueue *vq)
{
	vq->last_avail--;
}

void vq_push(struct virtqueue *vq, uint16_t head, uint32_t len)
{
	struct vring_used_elem *ring = (void *)&vq->used[2];
	struct vring_used_elem u = { head, len };

	if (!vq->size)
		return;
	memcpy(&ring[vq->used_idx % vq->size], &u, sizeof(u));
	vq->used_idx++;
	if ((uint16_t)(vq->used_idx - vq->used_published) >= VQ_PUBLISH_EVERY)
		vq_publish_used(vq);
}

void vq_publish_used(struct virtqueue *vq)
{
	if (!vq->size || vq->used_published == vq->used_idx)
		return;
	ring_store(&vq->used[1], vq->used_idx);
	vq->used_published = vq->used_idx;
}

bool vq_should_notify(struct virtqueue *vq)
{
	uint16_t old, event, now = vq->used_idx;

	if (!vq->size)
		return false;
	vq_publish_used(vq);
	/* Our used->idx store must be visible before we read used_event. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	old = vq->signalled_used;
	vq->signalled_used = now;
	if (!vq->event_idx)
		return !(ring_load(&vq->avail[0]) & VRING_AVAIL_F_NO_INTERRUPT);
	event = ring_load(&vq->avail[2 + vq->size]);
	/* Notify if used_event lies in (old, now]: spec 2.7.10. */
	return (uint16_t)(now - event - 1) < (uint16_t)(now - old);
}

void vq_notify_off(struct virtqueue *vq)
{
	if (!vq->size || vq->event_idx)
		return;		/* with EVENT_IDX, simply not moving avail_event */
	ring_store(&vq->used[0], VRING_USED_F_NO_NOTIFY);
}

bool vq_notify_on(struct virtqueue *vq)
{
	if (!vq->size)
		return false;
	if (vq->event_idx)
		ring_store(&vq->used[2 + 4 * vq->size], vq->last_avail);
	else
		ring_store(&vq->used[0], 0);
	/* The guest may have added work before it saw notifications on. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return vq_has_work(vq);
}

bool vq_has_work(struct virtqueue *vq)
{
	return vq->size && !vq->broken &&
	       ring_load(&vq->avail[1]) != vq->last_avail;
}
