/* Tests vmm/bus.c: registration rules, dispatch, unclaimed accesses. */
#include <errno.h>

#include "lkvm/bus.h"
#include "test.h"

struct dev {
	uint64_t last_off;
	uint32_t last_val;
	int reads, writes;
};

static void dev_read(void *opaque, uint64_t off, void *data, unsigned int len)
{
	struct dev *d = opaque;

	d->reads++;
	d->last_off = off;
	memset(data, 0x5a, len);
}

static void dev_write(void *opaque, uint64_t off, const void *data,
		      unsigned int len)
{
	struct dev *d = opaque;

	d->writes++;
	d->last_off = off;
	d->last_val = 0;
	memcpy(&d->last_val, data, len > 4 ? 4 : len);
}

static const struct io_ops ops = { .read = dev_read, .write = dev_write };
static const struct io_ops write_only = { .write = dev_write };

int main(void)
{
	struct io_bus bus;
	struct dev a = { 0 }, b = { 0 }, c = { 0 };
	uint32_t v;
	uint8_t byte;
	unsigned int i;

	io_bus_init(&bus);
	CHECK_EQ(io_bus_register(&bus, 0x100, 0x10, &ops, &a), 0);
	CHECK_EQ(io_bus_register(&bus, 0x200, 0x10, &ops, &b), 0);
	CHECK_EQ(io_bus_register(&bus, 0x10f, 1, &ops, &c), -EEXIST);
	CHECK_EQ(io_bus_register(&bus, 0xf0, 0x11, &ops, &c), -EEXIST);
	CHECK_EQ(io_bus_register(&bus, 0x1f8, 0x100, &ops, &c), -EEXIST);
	CHECK_EQ(io_bus_register(&bus, 0x300, 0, &ops, &c), -EINVAL);
	CHECK_EQ(io_bus_register(&bus, UINT64_MAX, 2, &ops, &c), -EINVAL);
	CHECK_EQ(io_bus_register(&bus, 0x110, 0xf0, &write_only, &c), 0);

	v = 0xdeadbeef;
	CHECK(io_bus_access(&bus, 0x104, &v, 4, true));
	CHECK_EQ(a.writes, 1);
	CHECK_EQ(a.last_off, 4);
	CHECK_EQ(a.last_val, 0xdeadbeef);
	CHECK(io_bus_access(&bus, 0x20c, &v, 4, false));
	CHECK_EQ(v, 0x5a5a5a5a);
	CHECK_EQ(b.last_off, 0xc);
	/* Straddling the end of a range is not claimed by it. */
	CHECK(!io_bus_access(&bus, 0x20e, &v, 4, false));
	CHECK_EQ(v, 0xffffffff);
	/* Unclaimed: reads are all-ones, writes dropped, both counted. */
	CHECK(!io_bus_access(&bus, 0x50, &byte, 1, false));
	CHECK_EQ(byte, 0xff);
	CHECK(!io_bus_access(&bus, 0x50, &byte, 1, true));
	CHECK_EQ(bus.unhandled, 3);
	/* A range without a read handler reads as all-ones. */
	CHECK(io_bus_access(&bus, 0x150, &byte, 1, false));
	CHECK_EQ(byte, 0xff);

	CHECK_EQ(io_bus_unregister(&bus, 0x100), 0);
	CHECK_EQ(io_bus_unregister(&bus, 0x100), -ENOENT);
	CHECK(!io_bus_access(&bus, 0x104, &v, 4, true));
	CHECK_EQ(a.writes, 1);

	/* Many ranges stay sorted and findable. */
	test_case_begin("100 ranges registered out of order stay sorted and findable");
	for (i = 0; i < 100; i++)
		CHECK_EQ(io_bus_register(&bus, 0x10000 + (99 - i) * 8, 8, &ops,
					 &c), 0);
	for (i = 0; i < 100; i++) {
		c.reads = 0;
		CHECK(io_bus_access(&bus, 0x10000 + i * 8 + 7, &byte, 1,
				    false));
		CHECK_EQ(c.last_off, 7);
	}
	test_case_end();
	io_bus_free(&bus);
	return test_done();
}
