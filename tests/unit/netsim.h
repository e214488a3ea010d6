/*
 * netsim.h - a simulated virtio-net driver for tests and the benchmark:
 * rings and buffers live in a private guest-memory mapping, the real
 * device code (virtio/net.c, its queue threads included) runs against
 * them, kicks go to the queues' eventfds and interrupts come back on one
 * eventfd per queue.  No KVM.  The backend is anything with fds: a tap,
 * or a socketpair standing in for one.
 */
#ifndef LKVM_TESTS_NETSIM_H
#define LKVM_TESTS_NETSIM_H

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lkvm/lib/iothread.h"
#include "lkvm/memory.h"
#include "lkvm/seccomp.h"
#include "lkvm/lib/util.h"
#include "lkvm/virtio/device.h"
#include "lkvm/virtio/net.h"
#include "lkvm/vm.h"

#define NSIM_QSIZE	256
#define NSIM_SLOT	16384		/* buffer bytes per descriptor slot */
#define NSIM_SPAN	(NSIM_QSIZE * NSIM_SLOT + 65536)
#define NSIM_MAXQ	(2 * 2 + 1)	/* two pairs and the control queue */

struct nsim_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct nsim_q {
	struct virtio_queue *vq;
	uint64_t gpa;			/* start of this queue's area */
	uint8_t *hva;
	struct nsim_desc *desc;
	volatile uint16_t *avail;	/* flags, idx, ring, used_event */
	volatile uint16_t *used;	/* flags, idx, ring, avail_event */
	uint16_t avail_idx, kicked_idx, last_used;
	int irq_fd;
	uint64_t kicks, irqs;
};

struct nsim {
	struct lkvm vm;
	struct iothread ctl;
	bool ctl_ready;
	struct virtio_device *dev;
	unsigned int nq;
	struct nsim_q q[NSIM_MAXQ];
	bool event_idx;
	unsigned int slot;		/* buffer bytes per slot (NSIM_SLOT) */
};

static void nsim_signal_queue(struct virtio_device *d, struct virtio_queue *q)
{
	struct nsim *s = d->tr_priv;
	uint64_t one = 1;

	if (write(s->q[q->index].irq_fd, &one, sizeof(one)) < 0) {
		/* saturated: a wake-up is pending anyway */
	}
}

static void nsim_signal_config(struct virtio_device *d)
{
	(void)d;
}

static const struct virtio_transport_ops nsim_transport = {
	.name = "netsim",
	.signal_queue = nsim_signal_queue,
	.signal_config = nsim_signal_config,
};

static inline uint8_t *nsim_buf(struct nsim *s, unsigned int qi,
				unsigned int slot)
{
	return s->q[qi].hva + 65536 + (size_t)slot * s->slot;
}

static inline uint64_t nsim_buf_gpa(struct nsim *s, unsigned int qi,
				    unsigned int slot)
{
	return s->q[qi].gpa + 65536 + (uint64_t)slot * s->slot;
}

/*
 * Creates a device with create(vm, ctl thread, opaque, &dev) and drives
 * it to DRIVER_OK with the driver's features; each of its nq queues gets
 * NSIM_QSIZE entries, and each descriptor slot slot_bytes of buffer (0:
 * NSIM_SLOT; a driver packing its buffers tightly, as Linux does with
 * page fragments, touches less memory).  Slots of a queue are
 * contiguous: a descriptor may span several.  Returns 0 or -errno.
 */
typedef int (*nsim_create_fn)(struct lkvm *vm, struct iothread *ctl,
			      void *opaque, struct virtio_device **out);

static inline int nsim_setup_device(struct nsim *s, unsigned int nq,
				    uint64_t features, unsigned int slot_bytes,
				    nsim_create_fn create, void *opaque)
{
	struct mem_region r = { 0, (uint64_t)NSIM_SPAN * NSIM_MAXQ };
	struct virtio_device *d = NULL;
	unsigned int i;
	int ret;

	memset(s, 0, sizeof(*s));
	s->slot = slot_bytes && slot_bytes <= NSIM_SLOT ? slot_bytes : NSIM_SLOT;
	for (i = 0; i < NSIM_MAXQ; i++)
		s->q[i].irq_fd = -1;
	if (nq > NSIM_MAXQ)
		return -EINVAL;
	ret = guest_memory_init(&s->vm.mem, &r, 1, NULL);
	if (ret)
		return ret;
	/* VDRV_SECCOMP=1: the device threads run under their filters. */
	if (getenv("VDRV_SECCOMP") && !strcmp(getenv("VDRV_SECCOMP"), "1")) {
		s->vm.cfg.seccomp = 1;
		seccomp_install_handler();
	}
	ret = iothread_init(&s->ctl, "netsim-ctl");
	if (ret)
		return ret;
	s->ctl_ready = true;
	s->nq = nq;
	ret = create(&s->vm, &s->ctl, opaque, &d);
	s->dev = d;
	if (ret)
		return ret;
	d->tr = &nsim_transport;
	d->tr_priv = s;
	features |= 1ULL << VIRTIO_F_VERSION_1;
	s->event_idx = features & (1ULL << VIRTIO_F_EVENT_IDX);
	virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	virtio_set_features_word(d, 0, features);
	virtio_set_features_word(d, 1, features >> 32);
	virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			  VIRTIO_STATUS_FEATURES_OK);
	if (!(atomic_load(&d->status) & VIRTIO_STATUS_FEATURES_OK))
		return -EPROTO;
	for (i = 0; i < s->nq; i++) {
		struct nsim_q *q = &s->q[i];

		q->gpa = (uint64_t)i * NSIM_SPAN;
		q->hva = guest_ptr(&s->vm.mem, q->gpa, NSIM_SPAN);
		q->desc = (struct nsim_desc *)q->hva;
		q->avail = (volatile uint16_t *)(q->hva + 16384);
		q->used = (volatile uint16_t *)(q->hva + 32768);
		q->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		d->queue_sel = i;
		q->vq = virtio_selected_queue(d);
		q->vq->num = NSIM_QSIZE;
		q->vq->desc = q->gpa;
		q->vq->driver = q->gpa + 16384;
		q->vq->device = q->gpa + 32768;
		virtio_queue_set_ready(d, q->vq, true);
		if (!q->vq->ready || q->irq_fd < 0)
			return -EINVAL;
	}
	virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			  VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	ret = virtio_device_start(d);
	if (!ret)
		ret = iothread_start(&s->ctl);
	return ret;
}

static inline int nsim_create_net(struct lkvm *vm, struct iothread *ctl,
				  void *opaque, struct virtio_device **out)
{
	static const uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 1 };

	return virtio_net_create(vm, opaque, 0, mac, ctl, out);
}

/* A virtio-net device on nb (its queue pairs and the control queue). */
static inline int nsim_setup_slots(struct nsim *s, struct net_backend *nb,
				   uint64_t features, unsigned int slot_bytes)
{
	return nsim_setup_device(s, 2 * nb->nqueues + 1, features, slot_bytes,
				 nsim_create_net, nb);
}

static inline int nsim_setup(struct nsim *s, struct net_backend *nb,
			     uint64_t features)
{
	return nsim_setup_slots(s, nb, features, 0);
}

static inline void nsim_teardown(struct nsim *s)
{
	unsigned int i;

	if (s->dev) {
		virtio_device_stop(s->dev);
		if (s->ctl_ready)
			iothread_stop(&s->ctl);
		virtio_device_free(s->dev);
	}
	if (s->ctl_ready)
		iothread_free(&s->ctl);
	for (i = 0; i < NSIM_MAXQ; i++)
		if (s->q[i].irq_fd >= 0)
			close(s->q[i].irq_fd);
	free(s->vm.iothreads);	/* vm_devices_free's part, done by hand */
	s->vm.iothreads = NULL;
	s->vm.niothreads = 0;
	guest_memory_free(&s->vm.mem);
}

/* Puts descriptor `slot` (a whole chain by itself) on the avail ring. */
static inline void nsim_add(struct nsim *s, unsigned int qi, unsigned int slot,
			    uint32_t len, uint16_t flags)
{
	struct nsim_q *q = &s->q[qi];

	q->desc[slot] = (struct nsim_desc){ nsim_buf_gpa(s, qi, slot), len,
					    flags, 0 };
	q->avail[2 + q->avail_idx % NSIM_QSIZE] = slot;
	q->avail_idx++;
}

/* Publishes what was added; kicks if the device wants to hear of it. */
static inline void nsim_kick(struct nsim *s, unsigned int qi)
{
	struct nsim_q *q = &s->q[qi];
	uint16_t old = q->kicked_idx, now = q->avail_idx, event;
	uint64_t one = 1;
	bool kick = true;

	__atomic_store_n(&q->avail[1], now, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	q->kicked_idx = now;
	if (s->event_idx) {
		event = __atomic_load_n(&q->used[2 + 4 * NSIM_QSIZE],
					__ATOMIC_ACQUIRE);
		kick = (uint16_t)(now - event - 1) < (uint16_t)(now - old);
	} else {
		kick = !(__atomic_load_n(&q->used[0], __ATOMIC_ACQUIRE) & 1);
	}
	if (kick) {
		q->kicks++;
		if (write(q->vq->kick_fd, &one, sizeof(one)) < 0) {
			/* saturated: the device looks anyway */
		}
	}
}

/* Takes one used entry; false if none. */
static inline bool nsim_used(struct nsim *s, unsigned int qi, uint32_t *id,
			     uint32_t *len)
{
	struct nsim_q *q = &s->q[qi];
	volatile uint32_t *e;

	if (__atomic_load_n(&q->used[1], __ATOMIC_ACQUIRE) == q->last_used)
		return false;
	e = (volatile uint32_t *)&q->used[2] + 2 * (q->last_used % NSIM_QSIZE);
	*id = e[0];
	*len = e[1];
	q->last_used++;
	return true;
}

/* Asks for an interrupt at the next used entry (EVENT_IDX). */
static inline void nsim_want_irq(struct nsim *s, unsigned int qi)
{
	struct nsim_q *q = &s->q[qi];

	__atomic_store_n(&q->avail[2 + NSIM_QSIZE], q->last_used,
			 __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* Waits up to ms for a used entry. */
static inline bool nsim_wait(struct nsim *s, unsigned int qi, uint32_t *id,
			     uint32_t *len, int ms)
{
	struct nsim_q *q = &s->q[qi];
	uint64_t end = now_ns() + (uint64_t)ms * 1000000;
	struct pollfd pfd = { .fd = q->irq_fd, .events = POLLIN };
	uint64_t v;

	for (;;) {
		nsim_want_irq(s, qi);
		if (nsim_used(s, qi, id, len))
			return true;
		if (now_ns() >= end)
			return false;
		if (poll(&pfd, 1, 10) > 0 &&
		    read(q->irq_fd, &v, sizeof(v)) == sizeof(v))
			q->irqs++;
	}
}

#endif
