/*
 * irqroute.c - the GSI routing table (see irqroute.h).
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "lkvm/arch.h"
#include "lkvm/irqroute.h"
#include "lkvm/vm.h"

/* Slots past this are not worth a bigger ioctl buffer. */
#define IRQ_ROUTES_BASE_MAX	128

void irq_routes_init(struct lkvm *vm)
{
	struct irq_routes *r = &vm->routes;
	int max = kvm_check_extension(vm, KVM_CAP_IRQ_ROUTING);

	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	r->max = max > 0 ? (unsigned int)max : 0;
	r->ready = true;
}

void irq_routes_free(struct lkvm *vm)
{
	struct irq_routes *r = &vm->routes;

	if (!r->ready)
		return;
	free(r->msi);
	free(r->state);
	pthread_mutex_destroy(&r->lock);
	r->ready = false;
}

/* Called with the lock held. */
static int irq_routes_commit(struct lkvm *vm)
{
	struct irq_routes *r = &vm->routes;
	struct kvm_irq_routing *t;
	unsigned int i, n;
	int ret = 0;

	t = calloc(1, sizeof(*t) + (IRQ_ROUTES_BASE_MAX + r->n) *
				   sizeof(t->entries[0]));
	if (!t)
		return -ENOMEM;
	n = arch_ops.irq_routes_base ?
		arch_ops.irq_routes_base(t->entries, IRQ_ROUTES_BASE_MAX) : 0;
	for (i = 0; i < r->n; i++)
		if (r->state[i] == 2)
			t->entries[n++] = r->msi[i];
	t->nr = n;
	if (ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, t) < 0)
		ret = -errno;
	free(t);
	return ret;
}

int irq_route_alloc(struct lkvm *vm)
{
	struct irq_routes *r = &vm->routes;
	unsigned int i, limit;
	int ret;

	if (!r->max || !arch_ops.irq_routes_base)
		return -ENOTSUP;
	limit = r->max > arch_ops.msi_gsi_base + IRQ_ROUTES_BASE_MAX ?
		r->max - arch_ops.msi_gsi_base - IRQ_ROUTES_BASE_MAX : 0;
	pthread_mutex_lock(&r->lock);
	for (i = 0; i < r->n && r->state[i]; i++)
		;
	if (i == r->n) {
		struct kvm_irq_routing_entry *m;
		uint8_t *s;
		unsigned int n = r->n ? 2 * r->n : 32;

		if (r->n >= limit) {
			ret = -ENOSPC;
			goto out;
		}
		m = realloc(r->msi, n * sizeof(*m));
		if (m)
			r->msi = m;
		s = m ? realloc(r->state, n) : NULL;
		if (!s) {
			ret = -ENOMEM;
			goto out;
		}
		memset(s + r->n, 0, n - r->n);
		r->state = s;
		r->n = n;
	}
	r->state[i] = 1;
	ret = arch_ops.msi_gsi_base + i;
out:
	pthread_mutex_unlock(&r->lock);
	return ret;
}

static int irq_route_index(struct irq_routes *r, int gsi)
{
	unsigned int i = (unsigned int)gsi - arch_ops.msi_gsi_base;

	return gsi >= (int)arch_ops.msi_gsi_base && i < r->n && r->state[i] ?
	       (int)i : -1;
}

int irq_route_set_msi(struct lkvm *vm, int gsi, uint64_t addr,
		      uint32_t data, uint32_t devid)
{
	struct irq_routes *r = &vm->routes;
	struct kvm_irq_routing_entry *e;
	int i, ret;

	pthread_mutex_lock(&r->lock);
	i = irq_route_index(r, gsi);
	if (i < 0) {
		pthread_mutex_unlock(&r->lock);
		return -EINVAL;
	}
	e = &r->msi[i];
	memset(e, 0, sizeof(*e));
	e->gsi = gsi;
	e->type = KVM_IRQ_ROUTING_MSI;
	e->u.msi.address_lo = addr;
	e->u.msi.address_hi = addr >> 32;
	e->u.msi.data = data;
	if (arch_ops.msi_needs_devid) {
		e->flags = KVM_MSI_VALID_DEVID;
		e->u.msi.devid = devid;
	}
	r->state[i] = 2;
	ret = irq_routes_commit(vm);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int irq_route_clear(struct lkvm *vm, int gsi, bool release)
{
	struct irq_routes *r = &vm->routes;
	int i, ret = 0;

	pthread_mutex_lock(&r->lock);
	i = irq_route_index(r, gsi);
	if (i >= 0) {
		bool was_routed = r->state[i] == 2;

		r->state[i] = release ? 0 : 1;
		if (was_routed)
			ret = irq_routes_commit(vm);
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}
