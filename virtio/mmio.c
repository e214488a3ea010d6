/*
 * mmio.c - virtio-mmio version 2 (virtio 1.2, section 4.2).
 *
 * vCPU threads access the registers.  QueueNotify is normally never seen
 * here: KVM_IOEVENTFD with the queue index as datamatch signals the
 * queue's kick eventfd inside the kernel.  A notify that does exit (no
 * ioeventfd support, or an index with no queue) is counted.
 *
 * Interrupts: InterruptStatus bits are set by I/O threads, cleared by the
 * driver's InterruptACK.  The line is a level-triggered GSI (irqline.h)
 * whose resample fd is served by queue 0's I/O thread.
 */
#include <errno.h>
#include <stdio.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "lkvm/irqline.h"
#include "lkvm/log.h"
#include "lkvm/lib/util.h"
#include "lkvm/virtio/device.h"
#include "lkvm/virtio/mmio.h"
#include "lkvm/vm.h"

#define REG_MAGIC		0x000
#define REG_VERSION		0x004
#define REG_DEVICE_ID		0x008
#define REG_VENDOR_ID		0x00c
#define REG_DEVICE_FEATURES	0x010
#define REG_DEVICE_FEATURES_SEL	0x014
#define REG_DRIVER_FEATURES	0x020
#define REG_DRIVER_FEATURES_SEL	0x024
#define REG_QUEUE_SEL		0x030
#define REG_QUEUE_NUM_MAX	0x034
#define REG_QUEUE_NUM		0x038
#define REG_QUEUE_READY		0x044
#define REG_QUEUE_NOTIFY	0x050
#define REG_INTERRUPT_STATUS	0x060
#define REG_INTERRUPT_ACK	0x064
#define REG_STATUS		0x070
#define REG_QUEUE_DESC_LOW	0x080
#define REG_QUEUE_DESC_HIGH	0x084
#define REG_QUEUE_DRIVER_LOW	0x090
#define REG_QUEUE_DRIVER_HIGH	0x094
#define REG_QUEUE_DEVICE_LOW	0x0a0
#define REG_QUEUE_DEVICE_HIGH	0x0a4
#define REG_CONFIG_GENERATION	0x0fc
#define REG_CONFIG		0x100

#define LKVM_VENDOR_ID		0x4d564b4c	/* "LKVM" */

struct virtio_mmio {
	struct virtio_device *d;
	uint64_t base;
	struct irq_line line;
	unsigned int gsi;
	bool ioeventfd;
};

static void mmio_start(struct virtio_device *d)
{
	struct virtio_mmio *m = d->tr_priv;

	/* No resample wake-up per interrupt where the line is ours alone. */
	if (!vm_irq_shared(d->vm) && !d->vm->cfg.no_fastpath) {
		irq_line_init_exclusive(&m->line, d->vm, m->gsi, &d->isr);
		return;
	}
	if (irq_line_init(&m->line, d->vm, m->gsi, &d->isr,
			  d->queues[0].thread))
		vm_warn(d->vm, "%s: no irqfd; interrupts through KVM_IRQ_LINE",
			d->vdev.name);
}

static void mmio_signal_queue(struct virtio_device *d, struct virtio_queue *q)
{
	(void)q;
	struct virtio_mmio *m = d->tr_priv;

	atomic_fetch_or(&d->isr, VIRTIO_ISR_QUEUE);
	irq_line_raise(&m->line);
}

static void mmio_signal_config(struct virtio_device *d)
{
	struct virtio_mmio *m = d->tr_priv;

	atomic_fetch_or(&d->isr, VIRTIO_ISR_CONFIG);
	irq_line_raise(&m->line);
}

static uint32_t mmio_reg_read(struct virtio_mmio *m, uint64_t off)
{
	struct virtio_device *d = m->d;
	struct virtio_queue *q = virtio_selected_queue(d);

	switch (off) {
	case REG_MAGIC:
		return VIRTIO_MMIO_MAGIC;
	case REG_VERSION:
		return 2;
	case REG_DEVICE_ID:
		return d->ops->device_id;
	case REG_VENDOR_ID:
		return LKVM_VENDOR_ID;
	case REG_DEVICE_FEATURES:
		return virtio_features_word(d, d->dev_feat_sel);
	case REG_QUEUE_NUM_MAX:
		return q ? d->ops->queue_max : 0;
	case REG_QUEUE_READY:
		return q ? q->ready : 0;
	case REG_INTERRUPT_STATUS:
		return atomic_load(&d->isr);
	case REG_STATUS:
		return atomic_load(&d->status);
	case REG_CONFIG_GENERATION:
		return d->config_gen;
	default:
		return 0;
	}
}

/* 64-bit ring addresses arrive as two 32-bit register writes. */
static void set_half(uint64_t *addr, bool high, uint32_t v)
{
	if (high)
		*addr = (*addr & 0xffffffffULL) | (uint64_t)v << 32;
	else
		*addr = (*addr & ~0xffffffffULL) | v;
}

/*
 * Queue registers may change only while the queue is not ready; the
 * core ignores QueueReady=1 on a live queue.
 */
static void mmio_queue_write(struct virtio_mmio *m, struct virtio_queue *q,
			     uint64_t off, uint32_t v)
{
	if (!q || (q->ready && off != REG_QUEUE_READY))
		return;
	switch (off) {
	case REG_QUEUE_NUM:
		/* Above QueueNumMax (or 16 bits): enabling will fail. */
		q->num = v <= m->d->ops->queue_max ? v : 0;
		break;
	case REG_QUEUE_READY:
		virtio_queue_set_ready(m->d, q, v & 1);
		break;
	case REG_QUEUE_DESC_LOW:
	case REG_QUEUE_DESC_HIGH:
		set_half(&q->desc, off == REG_QUEUE_DESC_HIGH, v);
		break;
	case REG_QUEUE_DRIVER_LOW:
	case REG_QUEUE_DRIVER_HIGH:
		set_half(&q->driver, off == REG_QUEUE_DRIVER_HIGH, v);
		break;
	case REG_QUEUE_DEVICE_LOW:
	case REG_QUEUE_DEVICE_HIGH:
		set_half(&q->device, off == REG_QUEUE_DEVICE_HIGH, v);
		break;
	}
}

static void mmio_reg_write(struct virtio_mmio *m, uint64_t off, uint32_t v)
{
	struct virtio_device *d = m->d;
	uint64_t one = 1;

	switch (off) {
	case REG_DEVICE_FEATURES_SEL:
		d->dev_feat_sel = v;
		break;
	case REG_DRIVER_FEATURES:
		virtio_set_features_word(d, d->drv_feat_sel, v);
		break;
	case REG_DRIVER_FEATURES_SEL:
		d->drv_feat_sel = v;
		break;
	case REG_QUEUE_SEL:
		d->queue_sel = v;
		break;
	case REG_QUEUE_NOTIFY:
		atomic_fetch_add(&d->vm->exits.notify, 1);
		if (v < d->nqueues &&
		    write(d->queues[v].kick_fd, &one, sizeof(one)) < 0) {
			/* saturated: a kick is pending anyway */
		}
		break;
	case REG_INTERRUPT_ACK:
		atomic_fetch_and(&d->isr, ~v);
		irq_line_update(&m->line);
		break;
	case REG_STATUS:
		virtio_set_status(d, v);
		/* A reset cleared the status word: a line of ours goes low. */
		irq_line_update(&m->line);
		break;
	default:
		mmio_queue_write(m, virtio_selected_queue(d), off, v);
		break;
	}
}

static void mmio_read(void *opaque, uint64_t off, void *data, unsigned int len)
{
	struct virtio_mmio *m = opaque;
	struct virtio_device *d = m->d;
	uint32_t v;

	memset(data, 0, len);
	virtio_device_lock(d);
	if (off >= REG_CONFIG) {
		off -= REG_CONFIG;
		if (d->ops->config_read &&
		    range_within(off, len, 0, d->ops->config_size))
			d->ops->config_read(d, off, data, len);
	} else if (len == 4 && !(off & 3)) {	/* registers are 32-bit */
		v = mmio_reg_read(m, off);
		memcpy(data, &v, 4);
	}
	virtio_device_unlock(d);
}

static void mmio_write(void *opaque, uint64_t off, const void *data,
		       unsigned int len)
{
	struct virtio_mmio *m = opaque;
	struct virtio_device *d = m->d;
	uint32_t v;

	virtio_device_lock(d);
	if (off >= REG_CONFIG) {
		off -= REG_CONFIG;
		if (d->ops->config_write &&
		    range_within(off, len, 0, d->ops->config_size))
			d->ops->config_write(d, off, data, len);
	} else if (len == 4 && !(off & 3)) {
		memcpy(&v, data, 4);
		mmio_reg_write(m, off, v);
	}
	virtio_device_unlock(d);
}

static const struct io_ops mmio_ops = {
	.read = mmio_read,
	.write = mmio_write,
};

static int mmio_ioeventfd(struct virtio_mmio *m, unsigned int qi, bool assign)
{
	struct kvm_ioeventfd io = {
		.datamatch = qi,
		.addr = m->base + REG_QUEUE_NOTIFY,
		.len = 4,
		.fd = m->d->queues[qi].kick_fd,
		.flags = KVM_IOEVENTFD_FLAG_DATAMATCH |
			 (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	return ioctl(m->d->vm->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

static void mmio_free(struct virtio_device *d)
{
	struct virtio_mmio *m = d->tr_priv;
	unsigned int i;

	if (!m)
		return;
	if (m->ioeventfd)
		for (i = 0; i < d->nqueues; i++)
			mmio_ioeventfd(m, i, false);
	irq_line_free(&m->line);
	free(m);
	d->tr_priv = NULL;
}

static const struct virtio_transport_ops mmio_transport = {
	.name = "mmio",
	.signal_queue = mmio_signal_queue,
	.signal_config = mmio_signal_config,
	.start = mmio_start,
	.free = mmio_free,
};

/*
 * What the guest must be told: a device-tree node, or for a kernel with
 * no device tree the virtio_mmio.device= parameter (Linux's
 * drivers/virtio/virtio_mmio.c, "size@base:irq").
 */
static int mmio_publish(struct virtio_device *d, uint64_t base,
			unsigned int gsi)
{
	struct vm_resource r = {
		.base = base,
		.size = VIRTIO_MMIO_SIZE,
		.irq = gsi,
		.dt_name = "virtio_mmio",
		.dt_compatible = "virtio,mmio",
		.dt_dma_coherent = true,
	};

	snprintf(r.owner, sizeof(r.owner), "%s", d->vdev.name);
	snprintf(r.cmdline, sizeof(r.cmdline), "virtio_mmio.device=%u@0x%llx:%u",
		 VIRTIO_MMIO_SIZE, (unsigned long long)base, gsi);
	return vm_resource_add(d->vm, &r);
}

int virtio_mmio_register(struct virtio_device *d, uint64_t base,
			 unsigned int gsi)
{
	struct virtio_mmio *m = calloc(1, sizeof(*m));
	unsigned int i;
	int ret;

	if (!m)
		return -ENOMEM;
	m->d = d;
	m->base = base;
	d->tr = &mmio_transport;
	d->tr_priv = m;

	m->ioeventfd = kvm_check_extension(d->vm, KVM_CAP_IOEVENTFD) > 0;
	for (i = 0; m->ioeventfd && i < d->nqueues; i++) {
		if (mmio_ioeventfd(m, i, true)) {
			/* Notifies exit then, and are kicked by hand. */
			while (i--)
				mmio_ioeventfd(m, i, false);
			m->ioeventfd = false;
		}
	}
	m->gsi = gsi;
	m->line.irq_fd = m->line.resample_fd = -1;
	m->line.vm = d->vm;
	m->line.gsi = gsi;
	m->line.pending = &d->isr;
	ret = io_bus_register(&d->vm->mmio, base, VIRTIO_MMIO_SIZE, &mmio_ops,
			      m);
	if (ret)
		return ret;
	return mmio_publish(d, base, gsi);
}
