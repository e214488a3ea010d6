/*
 * bus.h - port I/O and MMIO dispatch.  A device registers a range with an
 * io_ops table; a vCPU thread's exit handler looks the address up and
 * calls the device.  Accesses nobody claims are counted; reads of them
 * return all-ones, writes are dropped.
 *
 * Ranges are registered at set-up and, rarely, when a guest moves a PCI
 * BAR (from a vCPU thread): a read-write lock protects the table; lookups
 * take it shared.
 */
#ifndef LKVM_BUS_H
#define LKVM_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct io_ops {
	/* off is relative to the registered base; len is 1, 2, 4 or 8. */
	void (*read)(void *opaque, uint64_t off, void *data, unsigned int len);
	void (*write)(void *opaque, uint64_t off, const void *data,
		      unsigned int len);
};

struct io_range {
	uint64_t base;
	uint64_t len;
	const struct io_ops *ops;
	void *opaque;
};

struct io_bus {
	pthread_rwlock_t lock;
	struct io_range *ranges;	/* sorted by base */
	unsigned int n, cap;
	uint64_t unhandled;		/* atomic */
};

void io_bus_init(struct io_bus *bus);
void io_bus_free(struct io_bus *bus);
/* -EEXIST if the range overlaps another, -EINVAL if empty or wrapping. */
int io_bus_register(struct io_bus *bus, uint64_t base, uint64_t len,
		    const struct io_ops *ops, void *opaque);
int io_bus_unregister(struct io_bus *bus, uint64_t base);
/*
 * Dispatches one access that must lie entirely inside one range.
 * Returns false (and counts it) when no range claims it.
 */
bool io_bus_access(struct io_bus *bus, uint64_t addr, void *data,
		   unsigned int len, bool is_write);

#endif
