/*
 * pci.c - virtio-pci modern (virtio 1.2, section 4.1).
 *
 * BAR0 (memory, 16 KiB) holds the four structures the capabilities point
 * at, each on its own page:
 *   0x0000 common configuration    0x2000 device-specific configuration
 *   0x1000 ISR status              0x3000 notifications, 4 bytes a queue
 * BAR1 holds the MSI-X table and PBA (vmm/msix.c), one vector per queue
 * plus one for configuration changes.
 *
 * Notifies: every queue has its own 16-bit notify address, registered
 * with KVM_IOEVENTFD (no datamatch needed) while BAR0 is mapped, and
 * re-registered when the guest moves the BAR; the kick eventfd wakes the
 * queue's thread in the kernel.  A notify that exits anyway (another
 * access size, no ioeventfd) is counted and kicks by hand.
 *
 * Threads: register accesses come from vCPU threads, serialised by the
 * device's ctl_lock (config-space accesses also hold the PCI bus lock,
 * taken first); signal_* from I/O
 * threads read the vector numbers (16-bit, written with the owner
 * paused or by the guest while it has no use for the old value) and the
 * MSI-X enable bit without locks.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "lkvm/irqline.h"
#include "lkvm/log.h"
#include "lkvm/msix.h"
#include "lkvm/pci.h"
#include "lkvm/lib/util.h"
#include "lkvm/virtio/device.h"
#include "lkvm/virtio/pci.h"
#include "lkvm/vm.h"

#define VIRTIO_PCI_VENDOR	0x1af4
#define VIRTIO_PCI_DEVICE_BASE	0x1040
#define VIRTIO_PCI_SUBSYS_ID	0x0040	/* >= 0x40: modern only */

#define VPCI_BAR_SIZE		0x4000
#define VPCI_COMMON		0x0000
#define VPCI_COMMON_SIZE	0x40
#define VPCI_ISR		0x1000
#define VPCI_DEVICE		0x2000
#define VPCI_NOTIFY		0x3000
#define VPCI_NOTIFY_MULT	4
#define VPCI_MAX_QUEUES		((VPCI_BAR_SIZE - VPCI_NOTIFY) / VPCI_NOTIFY_MULT)
#define VPCI_MSIX_BAR		1

/* virtio_pci_cap.cfg_type */
#define VPCI_CAP_COMMON		1
#define VPCI_CAP_NOTIFY		2
#define VPCI_CAP_ISR		3
#define VPCI_CAP_DEVICE		4
#define VPCI_CAP_PCI_CFG	5
#define VPCI_CAP_LEN		16
#define VPCI_CAP_LEN_EXT	20	/* notify and pci_cfg carry one more word */

/* Common configuration fields (offset in the structure). */
#define CC_DFSELECT		0x00
#define CC_DF			0x04
#define CC_GFSELECT		0x08
#define CC_GF			0x0c
#define CC_MSIX_CONFIG		0x10
#define CC_NUM_QUEUES		0x12
#define CC_STATUS		0x14
#define CC_CFG_GENERATION	0x15
#define CC_Q_SELECT		0x16
#define CC_Q_SIZE		0x18
#define CC_Q_MSIX		0x1a
#define CC_Q_ENABLE		0x1c
#define CC_Q_NOFF		0x1e
#define CC_Q_DESC		0x20
#define CC_Q_DRIVER		0x28
#define CC_Q_DEVICE		0x30
#define CC_Q_NOTIF_DATA		0x38

#define VIRTIO_MSI_NO_VECTOR	0xffff

struct virtio_pci {
	struct pci_dev pci;
	struct virtio_device *d;
	struct msix msix;
	struct irq_line intx;
	uint16_t config_vector;
	uint16_t *queue_vector;
	unsigned int cfg_cap;		/* VIRTIO_PCI_CAP_PCI_CFG offset */
	uint64_t notify_base;		/* guest address, while mapped */
	bool ioeventfd;			/* registered at notify_base */
};

static uint16_t vpci_vector(const uint16_t *v)
{
	return __atomic_load_n(v, __ATOMIC_RELAXED);
}

static void vpci_set_vector(struct virtio_pci *p, uint16_t *v, uint16_t val)
{
	__atomic_store_n(v, val < p->msix.n ? val : VIRTIO_MSI_NO_VECTOR,
			 __ATOMIC_RELAXED);
}

static void vpci_intx(struct virtio_pci *p, unsigned int bit)
{
	atomic_fetch_or(&p->d->isr, bit);
	if (pci_dev_intx_enabled(&p->pci))
		irq_line_raise(&p->intx);
}

static void vpci_signal_queue(struct virtio_device *d, struct virtio_queue *q)
{
	struct virtio_pci *p = d->tr_priv;

	if (msix_enabled(&p->msix))
		msix_notify(&p->msix, vpci_vector(&p->queue_vector[q->index]));
	else
		vpci_intx(p, VIRTIO_ISR_QUEUE);
}

static void vpci_signal_config(struct virtio_device *d)
{
	struct virtio_pci *p = d->tr_priv;

	if (msix_enabled(&p->msix)) {
		atomic_fetch_or(&d->isr, VIRTIO_ISR_CONFIG);
		msix_notify(&p->msix, vpci_vector(&p->config_vector));
	} else {
		vpci_intx(p, VIRTIO_ISR_CONFIG);
	}
}

/* The common structure as the driver would read it now. */
static void vpci_common_image(struct virtio_pci *p, uint8_t *b)
{
	struct virtio_device *d = p->d;
	struct virtio_queue *q = virtio_selected_queue(d);
	uint32_t w;
	uint16_t h;

	memset(b, 0, VPCI_COMMON_SIZE);
	memcpy(b + CC_DFSELECT, &d->dev_feat_sel, 4);
	w = virtio_features_word(d, d->dev_feat_sel);
	memcpy(b + CC_DF, &w, 4);
	memcpy(b + CC_GFSELECT, &d->drv_feat_sel, 4);
	w = d->drv_feat_sel < 2 ? d->acked >> (32 * d->drv_feat_sel) : 0;
	memcpy(b + CC_GF, &w, 4);
	h = vpci_vector(&p->config_vector);
	memcpy(b + CC_MSIX_CONFIG, &h, 2);
	h = d->nqueues;
	memcpy(b + CC_NUM_QUEUES, &h, 2);
	b[CC_STATUS] = atomic_load(&d->status);
	b[CC_CFG_GENERATION] = d->config_gen;
	h = d->queue_sel;
	memcpy(b + CC_Q_SELECT, &h, 2);
	if (!q)
		return;		/* queue_size 0: no such queue */
	memcpy(b + CC_Q_SIZE, &q->num, 2);
	h = vpci_vector(&p->queue_vector[q->index]);
	memcpy(b + CC_Q_MSIX, &h, 2);
	h = q->ready;
	memcpy(b + CC_Q_ENABLE, &h, 2);
	h = q->index;
	memcpy(b + CC_Q_NOFF, &h, 2);
	memcpy(b + CC_Q_NOTIF_DATA, &h, 2);
	memcpy(b + CC_Q_DESC, &q->desc, 8);
	memcpy(b + CC_Q_DRIVER, &q->driver, 8);
	memcpy(b + CC_Q_DEVICE, &q->device, 8);
}

static void vpci_reset_vectors(struct virtio_pci *p)
{
	unsigned int i;

	vpci_set_vector(p, &p->config_vector, VIRTIO_MSI_NO_VECTOR);
	for (i = 0; i < p->d->nqueues; i++)
		vpci_set_vector(p, &p->queue_vector[i], VIRTIO_MSI_NO_VECTOR);
}

/* One field of the common structure takes value v (from the image). */
static void vpci_common_field(struct virtio_pci *p, unsigned int field,
			      const uint8_t *b)
{
	struct virtio_device *d = p->d;
	struct virtio_queue *q = virtio_selected_queue(d);
	uint32_t w;
	uint16_t h;

	memcpy(&w, b + field, 4);
	memcpy(&h, b + field, 2);
	switch (field) {
	case CC_DFSELECT:
		d->dev_feat_sel = w;
		return;
	case CC_GFSELECT:
		d->drv_feat_sel = w;
		return;
	case CC_GF:
		virtio_set_features_word(d, d->drv_feat_sel, w);
		return;
	case CC_MSIX_CONFIG:
		vpci_set_vector(p, &p->config_vector, h);
		return;
	case CC_STATUS:
		virtio_set_status(d, b[CC_STATUS]);
		if (!b[CC_STATUS]) {
			vpci_reset_vectors(p);
			irq_line_update(&p->intx);
		}
		return;
	case CC_Q_SELECT:
		d->queue_sel = h;
		return;
	}
	if (!q)
		return;
	if (field == CC_Q_ENABLE) {
		/* Only 1 may be written; disabling is done by reset. */
		if ((h & 1) && !q->ready)
			virtio_queue_set_ready(d, q, true);
		return;
	}
	if (q->ready)
		return;		/* a live queue's registers are fixed */
	switch (field) {
	case CC_Q_SIZE:
		/* Above the maximum: enabling will fail. */
		q->num = h <= d->ops->queue_max ? h : 0;
		break;
	case CC_Q_MSIX:
		vpci_set_vector(p, &p->queue_vector[q->index], h);
		break;
	case CC_Q_DESC:
		memcpy(&q->desc, b + field, 8);
		break;
	case CC_Q_DRIVER:
		memcpy(&q->driver, b + field, 8);
		break;
	case CC_Q_DEVICE:
		memcpy(&q->device, b + field, 8);
		break;
	}
}

/*
 * Writes may be of any width the driver picks (64-bit fields usually
 * arrive as two halves): merge the write into the current image and
 * apply every writable field it touched.
 */
static void vpci_common_write(struct virtio_pci *p, uint64_t off,
			      const void *data, unsigned int len)
{
	static const struct { uint8_t off, len; } fields[] = {
		{ CC_DFSELECT, 4 }, { CC_GFSELECT, 4 }, { CC_GF, 4 },
		{ CC_MSIX_CONFIG, 2 }, { CC_STATUS, 1 }, { CC_Q_SELECT, 2 },
		{ CC_Q_SIZE, 2 }, { CC_Q_MSIX, 2 }, { CC_Q_DESC, 8 },
		{ CC_Q_DRIVER, 8 }, { CC_Q_DEVICE, 8 }, { CC_Q_ENABLE, 2 },
	};
	uint8_t b[VPCI_COMMON_SIZE];
	unsigned int i;

	if (!range_within(off, len, 0, VPCI_COMMON_SIZE))
		return;
	vpci_common_image(p, b);
	memcpy(b + off, data, len);
	for (i = 0; i < ARRAY_SIZE(fields); i++)
		if (range_overlaps(off, len, fields[i].off, fields[i].len))
			vpci_common_field(p, fields[i].off, b);
}

static void vpci_kick(struct virtio_pci *p, uint64_t off)
{
	struct virtio_device *d = p->d;
	uint64_t qi = off / VPCI_NOTIFY_MULT, one = 1;

	atomic_fetch_add(&d->vm->exits.notify, 1);
	if (qi < d->nqueues &&
	    write(d->queues[qi].kick_fd, &one, sizeof(one)) < 0) {
		/* saturated: a kick is pending anyway */
	}
}

static void vpci_bar_read(void *opaque, uint64_t off, void *data,
			  unsigned int len)
{
	struct virtio_pci *p = opaque;
	struct virtio_device *d = p->d;
	uint8_t b[VPCI_COMMON_SIZE];

	memset(data, 0, len);
	if (off >= VPCI_NOTIFY)
		return;
	virtio_device_lock(d);
	if (off < VPCI_ISR) {
		if (range_within(off, len, 0, VPCI_COMMON_SIZE)) {
			vpci_common_image(p, b);
			memcpy(data, b + off, len);
		}
	} else if (off < VPCI_DEVICE) {
		/* Reading the ISR clears it and deasserts INTx. */
		if (off == VPCI_ISR) {
			*(uint8_t *)data = atomic_exchange(&d->isr, 0);
			irq_line_update(&p->intx);
		}
	} else if (off < VPCI_NOTIFY) {
		off -= VPCI_DEVICE;
		if (d->ops->config_read &&
		    range_within(off, len, 0, d->ops->config_size))
			d->ops->config_read(d, off, data, len);
	}
	virtio_device_unlock(d);
}

static void vpci_bar_write(void *opaque, uint64_t off, const void *data,
			   unsigned int len)
{
	struct virtio_pci *p = opaque;
	struct virtio_device *d = p->d;

	if (off >= VPCI_NOTIFY) {
		vpci_kick(p, off - VPCI_NOTIFY);	/* no lock: only a kick */
		return;
	}
	virtio_device_lock(d);
	if (off < VPCI_ISR) {
		vpci_common_write(p, off, data, len);
	} else if (off >= VPCI_DEVICE) {
		off -= VPCI_DEVICE;
		if (d->ops->config_write &&
		    range_within(off, len, 0, d->ops->config_size))
			d->ops->config_write(d, off, data, len);
	}
	virtio_device_unlock(d);
}

static const struct io_ops vpci_bar_ops = {
	.read = vpci_bar_read,
	.write = vpci_bar_write,
};

static int vpci_ioeventfd(struct virtio_pci *p, unsigned int qi, bool assign)
{
	struct kvm_ioeventfd io = {
		.addr = p->notify_base + qi * VPCI_NOTIFY_MULT,
		.len = 2,
		.fd = p->d->queues[qi].kick_fd,
		.flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
	};

	return ioctl(p->d->vm->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

static void vpci_ioeventfds(struct virtio_pci *p, bool assign)
{
	unsigned int i, n = p->d->nqueues;

	if (!assign) {
		for (i = 0; p->ioeventfd && i < n; i++)
			vpci_ioeventfd(p, i, false);
		p->ioeventfd = false;
		return;
	}
	if (kvm_check_extension(p->d->vm, KVM_CAP_IOEVENTFD) <= 0)
		return;
	for (i = 0; i < n; i++) {
		if (vpci_ioeventfd(p, i, true)) {
			while (i--)
				vpci_ioeventfd(p, i, false);
			vm_warn(p->d->vm, "%s: no ioeventfd; notifies exit",
				p->d->vdev.name);
			return;
		}
	}
	p->ioeventfd = true;
}

static void vpci_bar_map(struct pci_dev *dev, unsigned int n, uint64_t addr,
			 bool mapped)
{
	struct virtio_pci *p = (struct virtio_pci *)dev;

	if (n != 0)
		return;
	vpci_ioeventfds(p, false);
	if (mapped) {
		p->notify_base = addr + VPCI_NOTIFY;
		vpci_ioeventfds(p, true);
	}
}

/*
 * VIRTIO_PCI_CAP_PCI_CFG: a window in config space onto BAR0, for
 * drivers that cannot map it.  bar/offset/length are plain storage; the
 * data word performs the access.
 */
static bool vpci_cfg_window(struct virtio_pci *p, uint64_t *off,
			    unsigned int *len)
{
	const uint8_t *c = p->pci.cfg + p->cfg_cap;
	uint32_t o, l;

	memcpy(&o, c + 8, 4);
	memcpy(&l, c + 12, 4);
	if (c[4] != 0 || (l != 1 && l != 2 && l != 4) ||
	    !range_within(o, l, 0, VPCI_BAR_SIZE))
		return false;
	*off = o;
	*len = l;
	return true;
}

static void vpci_cfg_read(struct pci_dev *dev, unsigned int off, void *data,
			  unsigned int len)
{
	struct virtio_pci *p = (struct virtio_pci *)dev;
	uint8_t v[4] = { 0 };
	unsigned int wlen;
	uint64_t woff;

	if (off != p->cfg_cap + 16 || !vpci_cfg_window(p, &woff, &wlen))
		return;
	vpci_bar_read(p, woff, v, wlen);
	memcpy(data, v, MIN(len, 4u));
}

static void vpci_cfg_write(struct pci_dev *dev, unsigned int off,
			   const void *data, unsigned int len)
{
	struct virtio_pci *p = (struct virtio_pci *)dev;
	unsigned int i, wlen;
	uint64_t woff;

	if (msix_cfg_write(&p->msix, off, data, len))
		return;
	if (!range_overlaps(off, len, p->cfg_cap, VPCI_CAP_LEN_EXT))
		return;
	if (off == p->cfg_cap + 16) {
		if (vpci_cfg_window(p, &woff, &wlen) && len >= wlen)
			vpci_bar_write(p, woff, data, wlen);
		return;
	}
	/* bar (byte 4), offset and length (bytes 8-15) are writable. */
	for (i = 0; i < len; i++) {
		unsigned int o = off + i - p->cfg_cap;

		if (o == 4 || (o >= 8 && o < 16))
			dev->cfg[off + i] = ((const uint8_t *)data)[i];
	}
}

static int vpci_add_cap(struct virtio_pci *p, unsigned int type,
			uint32_t offset, uint32_t length, uint32_t extra,
			unsigned int caplen)
{
	uint8_t cap[VPCI_CAP_LEN_EXT] = { PCI_CAP_ID_VENDOR, 0, caplen, type };

	memcpy(cap + 8, &offset, 4);
	memcpy(cap + 12, &length, 4);
	memcpy(cap + 16, &extra, 4);
	return pci_dev_add_cap(&p->pci, cap, caplen);
}

static void vpci_free(struct virtio_device *d)
{
	struct virtio_pci *p = d->tr_priv;

	if (!p)
		return;
	/* Unmapping BAR0 takes the ioeventfds down through bar_map. */
	pci_unregister(&d->vm->pci, &p->pci);
	vpci_ioeventfds(p, false);
	msix_free(&p->msix);
	irq_line_free(&p->intx);
	free(p->queue_vector);
	free(p);
	d->tr_priv = NULL;
}

static void vpci_start(struct virtio_device *d)
{
	struct virtio_pci *p = d->tr_priv;

	if (irq_line_init(&p->intx, d->vm, p->intx.gsi, &d->isr,
			  d->queues[0].thread))
		vm_warn(d->vm, "%s: no irqfd; INTx through KVM_IRQ_LINE",
			d->vdev.name);
}

static const struct virtio_transport_ops vpci_transport = {
	.name = "pci",
	.signal_queue = vpci_signal_queue,
	.signal_config = vpci_signal_config,
	.start = vpci_start,
	.free = vpci_free,
};

int virtio_pci_register(struct virtio_device *d, unsigned int intx_gsi)
{
	unsigned int nq = d->nqueues;
	struct virtio_pci *p;
	int ret;

	if (!nq || nq > VPCI_MAX_QUEUES || nq + 1 > MSIX_MAX_VECTORS)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->queue_vector = calloc(nq, sizeof(*p->queue_vector));
	if (!p->queue_vector) {
		free(p);
		return -ENOMEM;
	}
	p->d = d;
	d->tr = &vpci_transport;
	d->tr_priv = p;
	p->intx.irq_fd = p->intx.resample_fd = -1;

	pci_dev_init(&p->pci, VIRTIO_PCI_VENDOR,
		     VIRTIO_PCI_DEVICE_BASE + d->ops->device_id,
		     d->ops->pci_class, VIRTIO_PCI_VENDOR,
		     VIRTIO_PCI_SUBSYS_ID);
	p->pci.cfg[0x08] = 1;	/* revision 1: a modern device */
	p->pci.cfg_write = vpci_cfg_write;
	p->pci.cfg_read = vpci_cfg_read;
	p->pci.bar_map = vpci_bar_map;
	pci_dev_set_bar(&p->pci, 0, VPCI_BAR_SIZE, false, &vpci_bar_ops, p);
	pci_dev_set_intx(&p->pci, 1, intx_gsi);

	if (vpci_add_cap(p, VPCI_CAP_COMMON, VPCI_COMMON, VPCI_COMMON_SIZE, 0,
			 VPCI_CAP_LEN) < 0 ||
	    vpci_add_cap(p, VPCI_CAP_NOTIFY, VPCI_NOTIFY,
			 nq * VPCI_NOTIFY_MULT, VPCI_NOTIFY_MULT,
			 VPCI_CAP_LEN_EXT) < 0 ||
	    vpci_add_cap(p, VPCI_CAP_ISR, VPCI_ISR, 1, 0, VPCI_CAP_LEN) < 0 ||
	    (d->ops->config_size &&
	     vpci_add_cap(p, VPCI_CAP_DEVICE, VPCI_DEVICE,
			  d->ops->config_size, 0, VPCI_CAP_LEN) < 0))
		return -ENOSPC;
	ret = vpci_add_cap(p, VPCI_CAP_PCI_CFG, 0, 0, 0, VPCI_CAP_LEN_EXT);
	if (ret < 0)
		return ret;
	p->cfg_cap = ret;
	ret = msix_init(&p->msix, d->vm, &p->pci, nq + 1, VPCI_MSIX_BAR);
	if (ret)
		return ret;
	vpci_reset_vectors(p);
	p->intx.vm = d->vm;
	p->intx.gsi = intx_gsi;
	p->intx.pending = &d->isr;
	return pci_register(&d->vm->pci, &p->pci);
}
