/*
 * irqroute.h - the VM's KVM GSI routing table, for MSI.  KVM_SET_GSI_ROUTING
 * replaces the whole table, so the irqchip pins the arch wires by default
 * are always written back first (arch_ops.irq_routes_base), followed by
 * one MSI entry per routed GSI.  MSI GSIs are handed out from
 * arch_ops.msi_gsi_base up.
 *
 * Threads: called from vCPU threads (a guest programming or masking an
 * MSI-X vector) and at set-up; one mutex in struct irq_routes serialises
 * the table and the ioctl.  Never on a data path.
 */
#ifndef LKVM_IRQROUTE_H
#define LKVM_IRQROUTE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct lkvm;
struct kvm_irq_routing_entry;

struct irq_routes {
	bool ready;
	pthread_mutex_t lock;
	struct kvm_irq_routing_entry *msi;	/* by gsi - msi_gsi_base */
	uint8_t *state;				/* 0 free, 1 held, 2 routed */
	unsigned int n;
	unsigned int max;			/* KVM's limit of routes */
};

void irq_routes_init(struct lkvm *vm);
void irq_routes_free(struct lkvm *vm);
/* A GSI for MSI, not yet routed; -ENOTSUP without KVM routing. */
int irq_route_alloc(struct lkvm *vm);
/* Routes gsi to this MSI message (devid: requester ID, where the arch
 * needs one) and pushes the table to KVM. */
int irq_route_set_msi(struct lkvm *vm, int gsi, uint64_t addr,
		      uint32_t data, uint32_t devid);
/* Removes the route (keeping the GSI held) or, with release, frees it. */
int irq_route_clear(struct lkvm *vm, int gsi, bool release);

#endif
