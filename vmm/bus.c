/*
 * bus.c - PIO/MMIO range dispatch (see bus.h for the locking rules).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lkvm/bus.h"
#include "lkvm/lib/util.h"

void io_bus_init(struct io_bus *bus)
{
	memset(bus, 0, sizeof(*bus));
	pthread_rwlock_init(&bus->lock, NULL);
}

void io_bus_free(struct io_bus *bus)
{
	free(bus->ranges);
	pthread_rwlock_destroy(&bus->lock);
	bus->ranges = NULL;
	bus->n = bus->cap = 0;
}

/* Index of the first range whose end lies above addr. */
static unsigned int io_bus_search(const struct io_bus *bus, uint64_t addr)
{
	unsigned int lo = 0, hi = bus->n;

	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;
		const struct io_range *r = &bus->ranges[mid];

		if (r->base + r->len <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int io_bus_register(struct io_bus *bus, uint64_t base, uint64_t len,
		    const struct io_ops *ops, void *opaque)
{
	unsigned int i;
	int ret = 0;

	if (!len || range_overflows(base, len) || !ops)
		return -EINVAL;
	pthread_rwlock_wrlock(&bus->lock);
	i = io_bus_search(bus, base);
	if (i < bus->n && bus->ranges[i].base < base + len) {
		ret = -EEXIST;
		goto out;
	}
	if (bus->n == bus->cap) {
		unsigned int cap = bus->cap ? bus->cap * 2 : 16;
		struct io_range *r = realloc(bus->ranges, cap * sizeof(*r));

		if (!r) {
			ret = -ENOMEM;
			goto out;
		}
		bus->ranges = r;
		bus->cap = cap;
	}
	memmove(&bus->ranges[i + 1], &bus->ranges[i],
		(bus->n - i) * sizeof(*bus->ranges));
	bus->ranges[i] = (struct io_range){ base, len, ops, opaque };
	bus->n++;
out:
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

int io_bus_unregister(struct io_bus *bus, uint64_t base)
{
	unsigned int i;
	int ret = -ENOENT;

	pthread_rwlock_wrlock(&bus->lock);
	i = io_bus_search(bus, base);
	if (i < bus->n && bus->ranges[i].base == base) {
		memmove(&bus->ranges[i], &bus->ranges[i + 1],
			(bus->n - i - 1) * sizeof(*bus->ranges));
		bus->n--;
		ret = 0;
	}
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

/*
 * The handler runs without the lock held: a PCI config write may move a
 * BAR on this very bus.  Devices outlive the running VM, so a copy of
 * the range stays valid.
 */
bool io_bus_access(struct io_bus *bus, uint64_t addr, void *data,
		   unsigned int len, bool is_write)
{
	struct io_range r;
	bool found = false;
	unsigned int i;

	pthread_rwlock_rdlock(&bus->lock);
	i = io_bus_search(bus, addr);
	if (i < bus->n && range_within(addr, len, bus->ranges[i].base,
				       bus->ranges[i].len)) {
		r = bus->ranges[i];
		found = true;
	}
	pthread_rwlock_unlock(&bus->lock);
	if (!found) {
		if (!is_write)
			memset(data, 0xff, len);
		__atomic_fetch_add(&bus->unhandled, 1, __ATOMIC_RELAXED);
		return false;
	}
	if (is_write) {
		if (r.ops->write)
			r.ops->write(r.opaque, addr - r.base, data, len);
	} else if (r.ops->read) {
		r.ops->read(r.opaque, addr - r.base, data, len);
	} else {
		memset(data, 0xff, len);
	}
	return true;
}
