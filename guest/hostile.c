/*
 * hostile - feeds virtio-rng one malformed descriptor chain after
 * another: each must make the device report DEVICE_NEEDS_RESET (and
 * never complete it), the VMM must stay up, and after a reset the device
 * must work again.  Exits 0 when every case behaved.
 */
#include "runtime/virtio.h"

#define QS 8

static uint8_t buf[512];
static struct vdesc table[4] __attribute__((aligned(16)));

static struct vdev d;
static struct vq q;

static void setup(void)
{
	if (!vdev_init(&d, 1ULL << VIRTIO_F_INDIRECT_DESC) ||
	    !vq_init(&d, &q, 0, QS)) {
		gprintf("hostile: set-up failed\n");
		guest_exit(1);
	}
	vdev_driver_ok(&d);
}

static struct vdesc D(uint64_t addr, uint32_t len, uint16_t flags,
		      uint16_t next)
{
	return (struct vdesc){ addr, len, flags, next };
}

/* Waits for NEEDS_RESET; true if it came and nothing was completed. */
static bool expect_reset(void)
{
	unsigned long spins;
	uint32_t id, len;

	for (spins = 0; spins < 200000; spins++) {
		if (vdev_status(&d) & VSTATUS_NEEDS_RESET)
			return !vq_get_used(&q, &id, &len);
		cpu_relax();
	}
	return false;
}

static bool good_request(void)
{
	unsigned long spins;
	uint32_t id, len;

	q.desc[0] = D((uintptr_t)buf, sizeof(buf), VRING_DESC_F_WRITE, 0);
	vq_publish(&q, 0);
	vq_kick(&d, &q);
	for (spins = 0; spins < 200000; spins++) {
		if (vq_get_used(&q, &id, &len))
			return id == 0 && len == sizeof(buf);
		cpu_relax();
	}
	return false;
}

void main(void)
{
	unsigned int c, passed = 0, cases = 10;
	uintptr_t b = (uintptr_t)buf;

	if (!vdev_find(4, &d)) {
		gprintf("hostile: no virtio-rng device\n");
		guest_exit(1);
	}
	for (c = 0; c < cases; c++) {
		setup();
		switch (c) {
		case 0:	/* loop */
			q.desc[0] = D(b, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
			q.desc[1] = D(b, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);
			vq_publish(&q, 0);
			break;
		case 1:	/* next out of range */
			q.desc[0] = D(b, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 200);
			vq_publish(&q, 0);
			break;
		case 2:	/* head out of range */
			vq_publish(&q, 77);
			break;
		case 3:	/* buffer outside guest RAM */
			q.desc[0] = D(0x3000000000ULL, 8, VRING_DESC_F_WRITE, 0);
			vq_publish(&q, 0);
			break;
		case 4:	/* length running off the end of the address space */
			q.desc[0] = D(0xfffffffffffff000ULL, 0x2000,
				      VRING_DESC_F_WRITE, 0);
			vq_publish(&q, 0);
			break;
		case 5:	/* readable after writable */
			q.desc[0] = D(b, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
			q.desc[1] = D(b, 8, 0, 0);
			vq_publish(&q, 0);
			break;
		case 6:	/* nested indirect */
			table[0] = D((uintptr_t)table, 32, VRING_DESC_F_INDIRECT, 0);
			q.desc[0] = D((uintptr_t)table, 32, VRING_DESC_F_INDIRECT, 0);
			vq_publish(&q, 0);
			break;
		case 7:	/* indirect table length not a multiple of 16 */
			q.desc[0] = D((uintptr_t)table, 20, VRING_DESC_F_INDIRECT, 0);
			vq_publish(&q, 0);
			break;
		case 8:	/* avail->idx jumps by more than the queue size */
			q.desc[0] = D(b, 8, VRING_DESC_F_WRITE, 0);
			q.avail[2] = 0;
			q.avail[1] = QS + 5;
			break;
		case 9:	/* indirect loop */
			table[0] = D(b, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
			table[1] = D(b, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);
			q.desc[0] = D((uintptr_t)table, 32, VRING_DESC_F_INDIRECT, 0);
			vq_publish(&q, 0);
			break;
		}
		vq_kick(&d, &q);
		if (expect_reset())
			passed++;
		else
			gprintf("hostile: case %u was not rejected\n", c);
	}
	setup();
	if (!good_request()) {
		gprintf("hostile: device did not recover after reset\n");
		guest_exit(1);
	}
	gprintf("hostile: %u of %u malformed chains rejected with NEEDS_RESET; device works after reset\n",
		passed, cases);
	guest_exit(passed == cases ? 0 : 1);
}
