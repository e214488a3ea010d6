/*
 * msix.c - MSI-X for PCI devices (see msix.h).  The table layout and the
 * capability follow the PCI Local Bus specification: 16-byte entries of
 * address low/high, data and vector control (bit 0 masks), a PBA of one
 * bit per vector, Message Control bit 15 enable and bit 14 function mask.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "lkvm/arch.h"
#include "lkvm/irqroute.h"
#include "lkvm/log.h"
#include "lkvm/msix.h"
#include "lkvm/pci.h"
#include "lkvm/lib/util.h"
#include "lkvm/vm.h"

#define MSIX_CTRL_ENABLE	0x8000
#define MSIX_CTRL_FMASK		0x4000
#define MSIX_VEC_MASKED		1

static uint16_t msix_ctrl(const struct msix *m)
{
	return m->pci->cfg[m->cap + 2] | m->pci->cfg[m->cap + 3] << 8;
}

static bool msix_vector_open(const struct msix *m,
			     const struct msix_vector *v)
{
	uint16_t ctrl = msix_ctrl(m);

	return (ctrl & MSIX_CTRL_ENABLE) && !(ctrl & MSIX_CTRL_FMASK) &&
	       !(v->ctrl & MSIX_VEC_MASKED) && (v->addr_lo || v->addr_hi);
}

/* Bus 0, function 0: the requester ID is the slot's devfn. */
static uint32_t msix_devid(const struct msix *m)
{
	return m->pci->slot << 3;
}

static uint64_t msix_addr(const struct msix_vector *v)
{
	return (uint64_t)v->addr_hi << 32 | v->addr_lo;
}

static void msix_send(struct msix *m, struct msix_vector *v)
{
	struct kvm_msi msi = {
		.address_lo = v->addr_lo,
		.address_hi = v->addr_hi,
		.data = v->data,
	};

	if (arch_ops.msi_needs_devid) {
		msi.flags = KVM_MSI_VALID_DEVID;
		msi.devid = msix_devid(m);
	}
	ioctl(m->vm->vm_fd, KVM_SIGNAL_MSI, &msi);
}

static int msix_irqfd(struct msix *m, struct msix_vector *v, bool assign)
{
	struct kvm_irqfd irq = {
		.fd = v->fd,
		.gsi = v->gsi,
		.flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};

	return ioctl(m->vm->vm_fd, KVM_IRQFD, &irq) < 0 ? -errno : 0;
}

/* Brings vector i's delivery in line with the table and masks; locked. */
static void msix_sync(struct msix *m, unsigned int i)
{
	struct msix_vector *v = &m->v[i];
	bool open = msix_vector_open(m, v);

	if (!m->irqfd) {
		if (open && v->pending) {
			v->pending = false;
			msix_send(m, v);
		}
		return;
	}
	if (open && (v->stale || !v->live)) {
		if (irq_route_set_msi(m->vm, v->gsi, msix_addr(v), v->data,
				      msix_devid(m))) {
			vm_warn_limited(m->vm, &m->warn_route,
					"pci %02x.0: cannot route MSI-X vector %u",
					m->pci->slot, i);
			return;
		}
		v->stale = false;
	}
	if (open && !v->live) {
		/* KVM delivers at once what the eventfd counted meanwhile. */
		v->live = msix_irqfd(m, v, true) == 0;
	} else if (!open && v->live) {
		msix_irqfd(m, v, false);
		v->live = false;
	}
}

static void msix_sync_all(struct msix *m)
{
	unsigned int i;

	atomic_store(&m->enabled, !!(msix_ctrl(m) & MSIX_CTRL_ENABLE));
	for (i = 0; i < m->n; i++)
		msix_sync(m, i);
}

void msix_notify(struct msix *m, unsigned int vec)
{
	struct msix_vector *v;
	uint64_t one = 1;

	if (vec >= m->n)
		return;
	v = &m->v[vec];
	if (m->irqfd) {
		if (write(v->fd, &one, sizeof(one)) < 0) {
			/* saturated: an interrupt is pending anyway */
		}
		return;
	}
	pthread_mutex_lock(&m->lock);
	if (msix_vector_open(m, v))
		msix_send(m, v);
	else
		v->pending = true;
	pthread_mutex_unlock(&m->lock);
}

static bool msix_pending(struct msix *m, struct msix_vector *v)
{
	struct pollfd p = { .fd = v->fd, .events = POLLIN };

	if (!m->irqfd)
		return v->pending;
	return !v->live && poll(&p, 1, 0) == 1;
}

static uint32_t msix_read32(struct msix *m, uint64_t off)
{
	uint32_t r = 0;
	unsigned int i;

	if (off < m->n * 16ULL) {
		struct msix_vector *v = &m->v[off / 16];
		const uint32_t w[4] = { v->addr_lo, v->addr_hi, v->data,
					v->ctrl };

		return w[(off % 16) / 4];
	}
	if (off >= MSIX_PBA_OFFSET && off < MSIX_PBA_OFFSET + 16) {
		unsigned int first = (off - MSIX_PBA_OFFSET) * 8;

		for (i = first; i < first + 32 && i < m->n; i++)
			if (msix_pending(m, &m->v[i]))
				r |= 1u << (i - first);
	}
	return r;
}

static void msix_write32(struct msix *m, uint64_t off, uint32_t val)
{
	struct msix_vector *v;

	if (off >= m->n * 16ULL)
		return;		/* the PBA is read-only */
	v = &m->v[off / 16];
	switch (off % 16) {
	case 0:
		v->stale |= v->addr_lo != val;
		v->addr_lo = val;
		break;
	case 4:
		v->stale |= v->addr_hi != val;
		v->addr_hi = val;
		break;
	case 8:
		v->stale |= v->data != val;
		v->data = val;
		break;
	default:
		v->ctrl = val & MSIX_VEC_MASKED;
		break;
	}
	msix_sync(m, off / 16);
}

static void msix_bar_read(void *opaque, uint64_t off, void *data,
			  unsigned int len)
{
	struct msix *m = opaque;
	uint32_t w[2];

	memset(data, 0, len);
	if ((len != 4 && len != 8) || off % len)
		return;
	pthread_mutex_lock(&m->lock);
	w[0] = msix_read32(m, off);
	if (len == 8)
		w[1] = msix_read32(m, off + 4);
	pthread_mutex_unlock(&m->lock);
	memcpy(data, w, len);
}

static void msix_bar_write(void *opaque, uint64_t off, const void *data,
			   unsigned int len)
{
	struct msix *m = opaque;
	uint32_t w[2];

	if ((len != 4 && len != 8) || off % len)
		return;
	memcpy(w, data, len);
	pthread_mutex_lock(&m->lock);
	msix_write32(m, off, w[0]);
	if (len == 8)
		msix_write32(m, off + 4, w[1]);
	pthread_mutex_unlock(&m->lock);
}

static const struct io_ops msix_bar_ops = {
	.read = msix_bar_read,
	.write = msix_bar_write,
};

bool msix_cfg_write(struct msix *m, unsigned int off, const void *data,
		    unsigned int len)
{
	unsigned int i;

	if (!range_overlaps(off, len, m->cap, MSIX_CAP_SIZE))
		return false;
	pthread_mutex_lock(&m->lock);
	/* Only Message Control's upper byte has writable bits. */
	for (i = 0; i < len; i++)
		if (off + i == m->cap + 3)
			m->pci->cfg[m->cap + 3] =
				(m->pci->cfg[m->cap + 3] & 0x3f) |
				(((const uint8_t *)data)[i] & 0xc0);
	msix_sync_all(m);
	pthread_mutex_unlock(&m->lock);
	return true;
}

static void msix_release(struct msix *m)
{
	unsigned int i;

	for (i = 0; m->v && i < m->n; i++) {
		struct msix_vector *v = &m->v[i];

		if (v->live)
			msix_irqfd(m, v, false);
		if (v->gsi >= 0)
			irq_route_clear(m->vm, v->gsi, true);
		if (v->fd >= 0)
			close(v->fd);
		v->fd = v->gsi = -1;
		v->live = false;
	}
}

int msix_init(struct msix *m, struct lkvm *vm, struct pci_dev *pci,
	      unsigned int nvec, unsigned int bar)
{
	uint8_t cap[MSIX_CAP_SIZE] = { PCI_CAP_ID_MSIX };
	unsigned int i;
	int off;

	memset(m, 0, sizeof(*m));
	if (!nvec || nvec > MSIX_MAX_VECTORS || bar > 5)
		return -EINVAL;
	m->vm = vm;
	m->pci = pci;
	m->n = nvec;
	pthread_mutex_init(&m->lock, NULL);
	m->v = calloc(nvec, sizeof(*m->v));
	if (!m->v)
		return -ENOMEM;
	m->irqfd = kvm_check_extension(vm, KVM_CAP_IRQFD) > 0;
	for (i = 0; i < nvec; i++) {
		struct msix_vector *v = &m->v[i];

		v->ctrl = MSIX_VEC_MASKED;	/* the reset state */
		v->fd = v->gsi = -1;
		if (!m->irqfd)
			continue;
		v->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		v->gsi = irq_route_alloc(vm);
		if (v->fd < 0 || v->gsi < 0)
			m->irqfd = false;
	}
	if (!m->irqfd)
		msix_release(m);	/* all vectors by KVM_SIGNAL_MSI */

	cap[2] = nvec - 1;
	cap[3] = (nvec - 1) >> 8;
	cap[4] = bar;				/* table at offset 0 */
	cap[8] = MSIX_PBA_OFFSET | bar;
	cap[9] = MSIX_PBA_OFFSET >> 8;
	off = pci_dev_add_cap(pci, cap, sizeof(cap));
	if (off < 0)
		return off;
	m->cap = off;
	pci_dev_set_bar(pci, bar, MSIX_BAR_SIZE, false, &msix_bar_ops, m);
	return 0;
}

void msix_free(struct msix *m)
{
	if (!m->vm)
		return;
	msix_release(m);
	free(m->v);
	m->v = NULL;
	pthread_mutex_destroy(&m->lock);
	m->vm = NULL;
}
