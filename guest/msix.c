/*
 * msix - MSI-X masking and re-programming on virtio-pci, with virtio-rng:
 *   1. vector 0 masked, one request: the data arrives, no interrupt does,
 *      and the vector's PBA bit is set;
 *   2. unmasked: the pending interrupt arrives, once, and the bit clears;
 *   3. re-aimed at another IDT vector while live: the next request's
 *      interrupt arrives there and not at the old one.
 * Exits 0 when all three hold.
 */
#include "runtime/virtio.h"

#define VEC_A 0x3a
#define VEC_B 0x3b

static uint8_t buf[64];
static volatile unsigned int hits[64];

static void count(struct trap_frame *f)
{
	hits[f->vector]++;
	lapic_eoi();
}

static void request(struct vdev *d, struct vq *q, uint16_t head)
{
	q->desc[head] = (struct vdesc){ (uintptr_t)buf, sizeof(buf),
					VRING_DESC_F_WRITE, 0 };
	vq_publish(q, head);
	vq_kick(d, q);
}

/* Spins until the used entry is there (no interrupt needed). */
static bool used(struct vq *q)
{
	unsigned long spins;
	uint32_t id, len;

	for (spins = 0; spins < 10000000; spins++) {
		if (vq_get_used(q, &id, &len))
			return true;
		cpu_relax();
	}
	return false;
}

static bool wait_hits(unsigned int vec, unsigned int n)
{
	unsigned long spins;

	for (spins = 0; spins < 10000000 && hits[vec] < n; spins++)
		cpu_relax();
	return hits[vec] >= n;
}

static void fail(const char *what)
{
	gprintf("msix: %s (hits A %u, B %u)\n", what, hits[VEC_A], hits[VEC_B]);
	guest_exit(1);
}

void main(void)
{
	struct vdev d;
	struct vq q;
	unsigned long spins;

	if (!vdev_find(4, &d) || !d.pci || !d.msix_cap)
		fail("no virtio-rng with MSI-X on PCI");
	if (!vdev_init(&d, 0))
		fail("feature negotiation failed");
	vdev_irq_enable(&d, VEC_A);
	irq_set_handler(VEC_A, count);
	irq_set_handler(VEC_B, count);
	if (!vq_init(&d, &q, 0, 8))
		fail("queue set-up failed");
	vdev_driver_ok(&d);
	irq_enable();

	vdev_msix_mask(&d, true);
	request(&d, &q, 0);
	if (!used(&q))
		fail("masked: no data");
	for (spins = 0; spins < 10000000 && !vdev_msix_pending(&d); spins++)
		cpu_relax();
	if (!vdev_msix_pending(&d))
		fail("masked: PBA bit not set");
	for (spins = 0; spins < 100000; spins++)
		cpu_relax();
	if (hits[VEC_A])
		fail("masked vector interrupted");
	gprintf("msix: masked vector held its interrupt, PBA bit set\n");

	vdev_msix_mask(&d, false);
	if (!wait_hits(VEC_A, 1))
		fail("unmask: pending interrupt not delivered");
	if (vdev_msix_pending(&d))
		fail("unmask: PBA bit still set");
	gprintf("msix: unmasked, pending interrupt delivered once\n");

	vdev_msix_retarget(&d, VEC_B);
	request(&d, &q, 1);
	if (!used(&q) || !wait_hits(VEC_B, 1))
		fail("re-aimed vector: no interrupt");
	if (hits[VEC_A] != 1)
		fail("re-aimed vector: old vector interrupted");
	gprintf("msix: re-programmed vector re-routed (A %u, B %u)\n",
		hits[VEC_A], hits[VEC_B]);
	guest_exit(0);
}
