/*
 * msix.h - an MSI-X capability, table and PBA for a PCI device, with each
 * vector delivered through its own irqfd on a KVM MSI route.
 *
 * A vector is "live" while MSI-X is enabled, the function and the vector
 * are unmasked and the guest has given it an address: its eventfd is then
 * an irqfd on a GSI routed to the vector's message.  Masking or disabling
 * detaches the irqfd, so a notify while masked stays counted in the
 * eventfd; that count is the vector's PBA bit, and KVM delivers it when
 * the irqfd is attached again on unmask.  Reprogramming a live vector
 * re-routes its GSI.  Without irqfd or routing, vectors are sent with
 * KVM_SIGNAL_MSI and pending bits are kept here.
 *
 * Threads: msix_notify() from any I/O thread, lock-free on the irqfd
 * path.  Table, PBA and capability accesses come from vCPU threads and
 * take m->lock (capability writes also hold the PCI bus lock, taken first).
 */
#ifndef LKVM_MSIX_H
#define LKVM_MSIX_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "lkvm/bus.h"
#include "lkvm/log.h"

#define MSIX_MAX_VECTORS	128	/* table and PBA fit one 4 KiB BAR */
#define MSIX_BAR_SIZE		0x1000
#define MSIX_PBA_OFFSET		0x800
#define MSIX_CAP_SIZE		12

struct lkvm;
struct pci_dev;

struct msix_vector {
	uint32_t addr_lo, addr_hi, data, ctrl;	/* the table entry */
	int fd;			/* irqfd eventfd, or -1 */
	int gsi;		/* MSI route, or -1 */
	bool live;		/* irqfd attached */
	bool stale;		/* route behind the table entry */
	bool pending;		/* PBA bit without irqfd */
};

struct msix {
	struct lkvm *vm;
	struct pci_dev *pci;
	unsigned int cap;	/* capability offset in config space */
	unsigned int n;
	struct msix_vector *v;
	pthread_mutex_t lock;
	atomic_bool enabled;	/* MSI-X Enable, whatever the masks */
	bool irqfd;
	struct log_limit warn_route;
};

/* Adds the capability and claims BAR `bar`; call before pci_register. */
int msix_init(struct msix *m, struct lkvm *vm, struct pci_dev *pci,
	      unsigned int nvec, unsigned int bar);
void msix_free(struct msix *m);
/* From the device's cfg_write hook: true if the access was the cap's. */
bool msix_cfg_write(struct msix *m, unsigned int off, const void *data,
		    unsigned int len);
/* Interrupts through vector vec (ignored if out of range). */
void msix_notify(struct msix *m, unsigned int vec);

static inline bool msix_enabled(struct msix *m)
{
	return atomic_load_explicit(&m->enabled, memory_order_relaxed);
}

#endif
