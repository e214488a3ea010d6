/*
 * device.c - the transport-independent part of every virtio device:
 * feature negotiation, the status register and reset, queue set-up, and
 * the per-queue drain loop that batches interrupts (see device.h for the
 * thread rules).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lkvm/arch.h"
#include "lkvm/log.h"
#include "lkvm/seccomp.h"
#include "lkvm/lib/util.h"
#include "lkvm/virtio/device.h"
#include "lkvm/virtio/mmio.h"
#include "lkvm/virtio/pci.h"
#include "lkvm/vm.h"

/* Features every device offers: modern interface, indirect, event idx. */
#define VIRTIO_CORE_FEATURES ((1ULL << VIRTIO_F_VERSION_1) | \
			      (1ULL << VIRTIO_F_INDIRECT_DESC) | \
			      (1ULL << VIRTIO_F_EVENT_IDX))

static int virtio_threads_start(struct virtio_device *d);
static void virtio_threads_stop(struct virtio_device *d);

int virtio_device_init(struct virtio_device *d, struct lkvm *vm,
		       const struct virtio_device_ops *ops, const char *name,
		       unsigned int nqueues)
{
	unsigned int i;

	memset(d, 0, sizeof(*d));
	pthread_mutex_init(&d->ctl_lock, NULL);
	d->vm = vm;
	d->ops = ops;
	snprintf(d->vdev.name, sizeof(d->vdev.name), "%s", name);
	d->features = ops->features | VIRTIO_CORE_FEATURES;
	d->nqueues = nqueues ? nqueues : ops->nqueues;
	d->queues = calloc(d->nqueues, sizeof(*d->queues));
	if (!d->queues)
		return -ENOMEM;
	/* -1 first: a failure half way must not make free() close fd 0. */
	for (i = 0; i < d->nqueues; i++)
		d->queues[i].kick_fd = -1;
	for (i = 0; i < d->nqueues; i++) {
		struct virtio_queue *q = &d->queues[i];

		q->dev = d;
		q->index = i;
		q->num = ops->queue_max;
		q->elem.iov = q->iov;
		q->elem.max_iov = VIRTIO_QUEUE_MAX_IOV;
		q->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (q->kick_fd < 0)
			return -errno;
		q->taken_ns = calloc(ops->queue_max, sizeof(*q->taken_ns));
		if (!q->taken_ns)
			return -ENOMEM;
	}
	return 0;
}

void virtio_device_free(struct virtio_device *d)
{
	unsigned int i;

	/* Threads first: nothing may run a handler on what goes next. */
	virtio_threads_stop(d);
	for (i = 0; i < d->threads_ready; i++)
		iothread_free(&d->threads[i]);
	free(d->threads);
	d->threads = NULL;
	d->threads_ready = 0;
	if (d->tr && d->tr->free)
		d->tr->free(d);
	for (i = 0; d->queues && i < d->nqueues; i++) {
		if (d->queues[i].kick_fd >= 0)
			close(d->queues[i].kick_fd);
		free(d->queues[i].taken_ns);
	}
	free(d->queues);
	d->queues = NULL;
	vm_log_limit_report(d->vm, &d->warn_ring, d->vdev.name);
	pthread_mutex_destroy(&d->ctl_lock);
	d->ops->free(d);
}

/* --- the device as the VM's core sees it --- */

static struct virtio_device *to_virtio(struct vm_device *dev)
{
	return container_of(dev, struct virtio_device, vdev);
}

int virtio_device_start(struct virtio_device *d)
{
	int ret;

	/* Once: interrupt lines need the finished irqchip (arm64 vGIC). */
	if (d->tr && d->tr->start && !d->tr_started) {
		d->tr->start(d);
		d->tr_started = true;
	}
	ret = virtio_threads_start(d);
	if (!ret && d->ops->start)
		ret = d->ops->start(d);
	return ret;
}

void virtio_device_stop(struct virtio_device *d)
{
	if (d->ops->stop)
		d->ops->stop(d);
	virtio_threads_stop(d);
}

static int virtio_vm_start(struct vm_device *dev)
{
	return virtio_device_start(to_virtio(dev));
}

static void virtio_vm_stop(struct vm_device *dev)
{
	virtio_device_stop(to_virtio(dev));
}

static void virtio_pause_all(struct virtio_device *d);
static void virtio_resume_all(struct virtio_device *d);

#define VIRTIO_PAUSE_WAIT_MS	10000	/* for requests in flight */

static unsigned int virtio_inflight(struct virtio_device *d)
{
	unsigned int i, n = 0;

	for (i = 0; d->ops->inflight && i < d->nqueues; i++)
		if (d->queues[i].thread)
			n += d->ops->inflight(d, &d->queues[i]);
	return n;
}

/*
 * A VM pause (its vCPUs are parked, so no new kick comes): the queue
 * threads park between handler calls, and while the backend still holds
 * requests they took (a kick handled just before the park submitted
 * them) they go on for a moment to finish them.  Then anything
 * completed but not yet shown to the guest is published from here (the
 * owners are parked, so the rings are ours).  Requests the threads had
 * not taken yet stay in the avail ring for after the resume.
 */
static void virtio_vm_pause(struct vm_device *dev)
{
	struct virtio_device *d = to_virtio(dev);
	unsigned int i, waited = 0;

	for (;;) {
		virtio_pause_all(d);
		if (!virtio_inflight(d))
			break;
		if (waited++ == VIRTIO_PAUSE_WAIT_MS) {
			vm_warn(d->vm, "%s: pausing with requests still in flight",
				d->vdev.name);
			break;
		}
		virtio_resume_all(d);
		usleep(1000);
	}
	for (i = 0; i < d->nqueues; i++)
		if (d->queues[i].thread)
			virtio_queue_publish(&d->queues[i]);
}

/* Queue qi of the device (lkvm stat); -ENOENT past the last. */
static int virtio_vm_queue_stats(struct vm_device *dev, unsigned int qi,
				 struct lkvm_queue_stats *st)
{
	struct virtio_device *d = to_virtio(dev);
	struct virtio_queue_stats qs;
	struct virtio_queue *q;

	if (qi >= d->nqueues)
		return -ENOENT;
	q = &d->queues[qi];
	virtio_queue_stats_read(q, &qs);
	snprintf(st->kind, sizeof(st->kind), "virtio-%s", d->ops->name);
	st->requests = qs.chains;
	st->completed = qs.completed;
	st->inflight = qs.chains - qs.completed;
	st->read_bytes = qs.bytes_in;
	st->write_bytes = qs.bytes_out;
	st->errors = qs.errors;
	st->irqs = qs.irqs;
	st->notifies = qs.notifies;
	st->batches = qs.batches;
	st->latency_ns = qs.latency_ns;
	if (q->thread) {
		snprintf(st->thread, sizeof(st->thread), "%s", q->thread->name);
		st->thread_cpu_ns = iothread_cpu_ns(q->thread);
		st->poll_ns = OWNER_READ(q->thread->poll_ns);
		st->poll_adaptive = q->thread->poll_policy == IOT_POLL_AUTO;
	}
	if (d->ops->queue_stats)
		d->ops->queue_stats(d, q, st);
	return 0;
}

static void virtio_vm_resume(struct vm_device *dev)
{
	virtio_resume_all(to_virtio(dev));
}

static void virtio_vm_free(struct vm_device *dev)
{
	virtio_device_free(to_virtio(dev));
}

static const struct vm_device_ops virtio_vm_ops = {
	.kind = "virtio",
	.start = virtio_vm_start,
	.stop = virtio_vm_stop,
	.pause = virtio_vm_pause,
	.resume = virtio_vm_resume,
	.queue_stats = virtio_vm_queue_stats,
	.free = virtio_vm_free,
};

bool virtio_use_pci(const struct lkvm *vm)
{
	switch (vm->cfg.virtio_transport) {
	case LKVM_VIRTIO_PCI:
		return true;
	case LKVM_VIRTIO_MMIO:
		return false;
	default:
		return arch_ops.pci_default;
	}
}

int virtio_device_finish(struct virtio_device *d, int ret, const char *what,
			 char *err, size_t errlen)
{
	if (ret) {
		if (d)
			virtio_device_free(d);
		return errf(err, errlen, ret, "cannot create %s: %s", what,
			    strerror(-ret));
	}
	ret = virtio_device_register(d);
	if (ret)
		return errf(err, errlen, ret, "cannot create %s: %s", what,
			    ret == -ENOSPC ? "no free virtio-mmio window" :
			    strerror(-ret));
	return 0;
}

int virtio_device_register(struct virtio_device *d)
{
	struct lkvm *vm = d->vm;
	uint64_t base;

	vm_device_add(vm, &d->vdev, &virtio_vm_ops, NULL);
	if (virtio_use_pci(vm))
		return virtio_pci_register(d, vm_irq_alloc(vm));
	base = vm_mmio_alloc(vm, VIRTIO_MMIO_SIZE);
	if (!base)
		return -ENOSPC;
	return virtio_mmio_register(d, base, vm_irq_alloc(vm));
}

void virtio_device_lock(struct virtio_device *d)
{
	pthread_mutex_lock(&d->ctl_lock);
}

void virtio_device_unlock(struct virtio_device *d)
{
	pthread_mutex_unlock(&d->ctl_lock);
}

/* On the dying thread: no lock of the device may be taken here. */
static void virtio_thread_died(void *opaque, struct iothread *t, int err)
{
	struct virtio_device *d = opaque;

	atomic_fetch_or(&d->status, VIRTIO_STATUS_NEEDS_RESET);
	if (d->tr)
		d->tr->signal_config(d);
	vm_err(d->vm, "%s: I/O thread %s failed: %s", d->vdev.name, t->name,
	       strerror(-err));
	vm_request_exit(d->vm, LKVM_EXIT_ERROR, 1,
			"%s: I/O thread %s failed: %s", d->vdev.name, t->name,
			strerror(-err));
}

/* With cfg.seccomp, an I/O thread filters itself as it starts. */
int virtio_thread_filter(void *opaque, struct iothread *t)
{
	const struct virtio_device *d = opaque;
	int ret = seccomp_enter(d && d->ops->host_sockets ? SECCOMP_IO_SOCKETS :
				d && d->ops->host_files ? SECCOMP_FS : SECCOMP_IO,
				t->name);

	if (!ret)
		seccomp_test_violation(t->name);
	return ret;
}

void virtio_watch_thread(struct virtio_device *d, struct iothread *t)
{
	iothread_on_death(t, virtio_thread_died, d);
	if (d->vm->cfg.seccomp)
		iothread_on_start(t, virtio_thread_filter, d);
}

/* The guest broke a ring: report NEEDS_RESET, log once, stop the queue. */
static void virtio_device_fail(struct virtio_device *d,
			       struct virtio_queue *q)
{
	atomic_fetch_or(&d->status, VIRTIO_STATUS_NEEDS_RESET);
	if (!atomic_exchange(&d->error_logged, true))
		vm_warn(d->vm, "%s: queue %u: %s; device needs reset", d->vdev.name,
			q->index, vq_error_name(q->vq.error));
	if (d->tr)
		d->tr->signal_config(d);
}

int virtio_queue_take(struct virtio_queue *q, struct vq_elem *e)
{
	int r = vq_pop(&q->vq, e);

	if (r > 0) {
		OWNER_ADD(q->stats.chains, 1);
		OWNER_ADD(q->stats.bytes_out, e->out_bytes);
		q->taken_ns[e->head] = q->drain_ns;
	}
	return r;
}

void virtio_queue_unpop(struct virtio_queue *q)
{
	vq_unpop(&q->vq);
	OWNER_ADD(q->stats.chains, -1);
}

struct vq_elem *virtio_queue_pop(struct virtio_queue *q)
{
	return virtio_queue_take(q, &q->elem) > 0 ? &q->elem : NULL;
}

void virtio_queue_complete_head(struct virtio_queue *q, uint16_t head,
				uint32_t len)
{
	vq_push(&q->vq, head, len);
	OWNER_ADD(q->stats.completed, 1);
	OWNER_ADD(q->stats.bytes_in, len);
	q->lat_count++;
	q->lat_sum += q->taken_ns[head];
}

void virtio_queue_complete(struct virtio_queue *q, const struct vq_elem *e,
			   uint32_t len)
{
	/* Never claim more than the chain's writable part. */
	virtio_queue_complete_head(q, e->head,
				   MIN((uint64_t)len, e->in_bytes));
}

void virtio_queue_stats_read(const struct virtio_queue *q,
			     struct virtio_queue_stats *out)
{
	const uint64_t *src = (const uint64_t *)&q->stats;
	uint64_t *dst = (uint64_t *)out;
	unsigned int i;

	for (i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = OWNER_READ(src[i]);
}

void virtio_queue_service(struct virtio_queue *q)
{
	struct virtio_device *d = q->dev;
	uint16_t used_before = q->vq.used_idx;

	if (!q->vq.size || !(atomic_load(&d->status) &
			     VIRTIO_STATUS_DRIVER_OK))
		return;
	q->drain_ns = now_ns();
	/*
	 * Drain until the ring stays empty.  A drain that took nothing
	 * (console input with no data yet) leaves buffers queued on
	 * purpose: stop then, or this would spin.
	 */
	for (;;) {
		uint16_t taken = q->vq.last_avail;

		vq_notify_off(&q->vq);
		d->ops->drain(d, q);
		if (!vq_notify_on(&q->vq) || q->vq.last_avail == taken)
			break;
	}
	OWNER_ADD(q->stats.batches, 1);
	if (q->vq.broken) {
		virtio_device_fail(d, q);
		return;
	}
	if (q->vq.used_idx != used_before)
		virtio_queue_publish(q);
}

bool virtio_queue_poll(struct virtio_queue *q)
{
	uint16_t taken = q->vq.last_avail;

	if (!vq_has_work(&q->vq))
		return false;
	virtio_queue_service(q);
	return q->vq.last_avail != taken;
}

void virtio_queue_publish(struct virtio_queue *q)
{
	if (q->lat_count) {
		OWNER_ADD(q->stats.latency_ns,
			  q->lat_count * now_ns() - q->lat_sum);
		q->lat_count = q->lat_sum = 0;
	}
	if (q->vq.used_idx == q->vq.signalled_used || !q->vq.size)
		return;
	/* Publishes used->idx first, whatever it decides. */
	if (vq_should_notify(&q->vq)) {
		OWNER_ADD(q->stats.irqs, 1);
		q->dev->tr->signal_queue(q->dev, q);
	}
}

static void virtio_queue_kick(void *opaque, uint32_t events)
{
	struct virtio_queue *q = opaque;
	uint64_t v;

	(void)events;
	if (read(q->kick_fd, &v, sizeof(v)) == sizeof(v))
		OWNER_ADD(q->stats.notifies, v);
	virtio_queue_service(q);
}

int virtio_device_threads(struct virtio_device *d, unsigned int n)
{
	char name[32];		/* thread names keep 15 characters */
	int ret;

	d->threads = calloc(n, sizeof(*d->threads));
	if (!d->threads)
		return -ENOMEM;
	for (d->threads_ready = 0; d->threads_ready < n; d->threads_ready++) {
		struct iothread *t = &d->threads[d->threads_ready];

		snprintf(name, sizeof(name), "%s-q%u", d->vdev.name,
			 d->threads_ready);
		ret = iothread_init(t, name);
		if (ret)
			return ret;
		virtio_watch_thread(d, t);
		ret = vm_iothread_register(d->vm, t);
		if (ret)
			return ret;
	}
	return 0;
}

static int virtio_threads_start(struct virtio_device *d)
{
	unsigned int i;
	int ret;

	for (i = 0; i < d->threads_ready; i++) {
		ret = iothread_start(&d->threads[i]);
		if (ret)
			return ret;
	}
	return 0;
}

static void virtio_threads_stop(struct virtio_device *d)
{
	unsigned int i;

	for (i = 0; i < d->threads_ready; i++)
		iothread_stop(&d->threads[i]);
}

int virtio_queue_attach(struct virtio_device *d, unsigned int qi,
			struct iothread *t)
{
	struct virtio_queue *q = &d->queues[qi];

	q->thread = t;
	/* The kick handler always reads the eventfd: a "hot" fd. */
	return iothread_add_hot(t, q->kick_fd, virtio_queue_kick, q);
}

struct virtio_queue *virtio_selected_queue(struct virtio_device *d)
{
	return d->queue_sel < d->nqueues ? &d->queues[d->queue_sel] :
						NULL;
}

uint32_t virtio_features_word(struct virtio_device *d, uint32_t sel)
{
	return sel < 2 ? d->features >> (32 * sel) : 0;
}

void virtio_set_features_word(struct virtio_device *d, uint32_t sel,
			      uint32_t v)
{
	/* Only before FEATURES_OK; the spec makes later writes invalid. */
	if (sel >= 2 || (atomic_load(&d->status) & VIRTIO_STATUS_FEATURES_OK))
		return;
	d->acked &= ~(0xffffffffULL << (32 * sel));
	d->acked |= (uint64_t)v << (32 * sel);
}

static void virtio_pause_all(struct virtio_device *d)
{
	unsigned int i;

	for (i = 0; i < d->nqueues; i++)
		if (d->queues[i].thread)
			iothread_pause(d->queues[i].thread);
}

static void virtio_resume_all(struct virtio_device *d)
{
	unsigned int i;

	for (i = 0; i < d->nqueues; i++)
		if (d->queues[i].thread)
			iothread_resume(d->queues[i].thread);
}

/*
 * Disabling a queue, or resetting its device, drops what the device
 * holds of it first: requests in flight complete into nothing.
 */
static void virtio_queue_drop(struct virtio_device *d, struct virtio_queue *q)
{
	if (d->ops->queue_reset)
		d->ops->queue_reset(d, q);
	vq_reset(&q->vq);
	q->ready = false;
	q->stats.completed = q->stats.chains;	/* in flight: abandoned */
	q->lat_count = q->lat_sum = 0;
}

static void virtio_reset(struct virtio_device *d)
{
	unsigned int i;

	virtio_pause_all(d);
	for (i = 0; i < d->nqueues; i++) {
		struct virtio_queue *q = &d->queues[i];

		virtio_queue_drop(d, q);
		q->num = d->ops->queue_max;
		q->desc = q->driver = q->device = 0;
	}
	if (d->ops->reset)
		d->ops->reset(d);
	d->acked = 0;
	d->dev_feat_sel = d->drv_feat_sel = d->queue_sel = 0;
	atomic_store(&d->isr, 0);
	atomic_store(&d->status, 0);
	/* error_logged stays set: a guest looping on resets cannot flood. */
	virtio_resume_all(d);
}

void virtio_set_status(struct virtio_device *d, uint32_t status)
{
	uint32_t old = atomic_load(&d->status);

	if (status == 0) {
		virtio_reset(d);
		return;
	}
	status &= 0xff;
	if ((status & VIRTIO_STATUS_FEATURES_OK) &&
	    !(old & VIRTIO_STATUS_FEATURES_OK)) {
		/* Refuse what we did not offer, and legacy drivers. */
		if ((d->acked & ~d->features) ||
		    !(d->acked & (1ULL << VIRTIO_F_VERSION_1)))
			status &= ~VIRTIO_STATUS_FEATURES_OK;
	}
	/* NEEDS_RESET is the device's to set, not the driver's. */
	status = (status & ~VIRTIO_STATUS_NEEDS_RESET) |
		 (old & VIRTIO_STATUS_NEEDS_RESET);
	atomic_store(&d->status, status);
	if ((status & VIRTIO_STATUS_DRIVER_OK) &&
	    !(old & VIRTIO_STATUS_DRIVER_OK)) {
		unsigned int i;

		if (d->ops->driver_ok)
			d->ops->driver_ok(d);
		/* Buffers may already be waiting: look once on each queue. */
		for (i = 0; i < d->nqueues; i++) {
			uint64_t one = 1;

			if (d->queues[i].ready &&
			    write(d->queues[i].kick_fd, &one, sizeof(one)) < 0) {
				/* saturated: the thread will look anyway */
			}
		}
	}
}

void virtio_queue_set_ready(struct virtio_device *d, struct virtio_queue *q,
			    bool ready)
{
	int ret = 0;

	/*
	 * virtio 1.2 (2.6.1, 4.2.2.2): a live queue is not enabled again,
	 * and a dead one has nothing to drop.
	 */
	if (ready == q->ready)
		return;
	if (q->thread)
		iothread_pause(q->thread);
	if (!ready) {
		virtio_queue_drop(d, q);
	} else {
		if (!q->num || q->num > d->ops->queue_max)
			ret = -EINVAL;
		else
			ret = vq_setup(&q->vq, &d->vm->mem, q->num, q->desc,
				       q->driver, q->device, d->acked);
		q->ready = ret == 0;
		if (ret) {
			atomic_fetch_or(&d->status, VIRTIO_STATUS_NEEDS_RESET);
			vm_warn_limited(d->vm, &d->warn_ring,
					"%s: queue %u: bad ring (size %u of at most %u at 0x%llx/0x%llx/0x%llx); device needs reset",
					d->vdev.name, q->index, q->num,
					d->ops->queue_max,
					(unsigned long long)q->desc,
					(unsigned long long)q->driver,
					(unsigned long long)q->device);
		}
	}
	if (q->thread)
		iothread_resume(q->thread);
}
