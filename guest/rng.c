/*
 * rng - reads 4 KiB of entropy from virtio-rng (either transport), once in a
 * plain descriptor and once through an indirect table of eight 512-byte
 * buffers, waiting for the interrupt each time (exactly one per
 * request); checks that the bytes are not constant.  Exits 0 on success.
 */
#include "runtime/virtio.h"

static uint8_t buf[4096] __attribute__((aligned(4096)));
static struct vdesc table[8] __attribute__((aligned(16)));

static unsigned int distinct(void)
{
	static uint8_t seen[256];
	unsigned int i, n = 0;

	memset(seen, 0, sizeof(seen));
	for (i = 0; i < sizeof(buf); i++)
		if (!seen[buf[i]]++)
			n++;
	return n;
}

/* Waits for the used entry and for the interrupt that announces it. */
static bool wait_used(struct vdev *d, struct vq *q, uint32_t *len,
		      unsigned int irqs_before)
{
	unsigned long spins;
	bool got = false;
	uint32_t id;

	for (spins = 0; spins < 100000; spins++) {
		if (!got)
			got = vq_get_used(q, &id, len);
		if (got && d->irqs > irqs_before)
			return true;
		wait_for_irq();
	}
	return false;
}

void main(void)
{
	struct vdev d;
	struct vq q;
	uint32_t len = 0;
	unsigned int i, n1, n2;

	if (!vdev_find(4, &d)) {
		gprintf("rng: no virtio-rng device\n");
		guest_exit(1);
	}
	if (!vdev_init(&d, 1ULL << VIRTIO_F_INDIRECT_DESC)) {
		gprintf("rng: set-up failed, status 0x%x\n", vdev_status(&d));
		guest_exit(1);
	}
	vdev_irq_enable(&d, 0x38);
	if (!vq_init(&d, &q, 0, 16)) {
		gprintf("rng: queue set-up failed\n");
		guest_exit(1);
	}
	vdev_driver_ok(&d);

	q.desc[0] = (struct vdesc){ (uintptr_t)buf, sizeof(buf),
				    VRING_DESC_F_WRITE, 0 };
	vq_publish(&q, 0);
	vq_kick(&d, &q);
	if (!wait_used(&d, &q, &len, 0) || len != sizeof(buf)) {
		gprintf("rng: no data (len %u)\n", len);
		guest_exit(1);
	}
	n1 = distinct();

	memset(buf, 0, sizeof(buf));
	for (i = 0; i < 8; i++)
		table[i] = (struct vdesc){ (uintptr_t)buf + 512 * i, 512,
					   VRING_DESC_F_WRITE |
					   (i < 7 ? VRING_DESC_F_NEXT : 0),
					   i + 1 };
	q.desc[1] = (struct vdesc){ (uintptr_t)table, sizeof(table),
				    VRING_DESC_F_INDIRECT, 0 };
	vq_publish(&q, 1);
	vq_kick(&d, &q);
	if (!wait_used(&d, &q, &len, d.irqs) || len != sizeof(buf)) {
		gprintf("rng: no data through indirect (len %u)\n", len);
		guest_exit(1);
	}
	n2 = distinct();
	gprintf("rng: 2 x 4096 bytes, %u and %u distinct byte values, %u interrupts (%s)\n",
		n1, n2, d.irqs, !d.pci ? "virtio-mmio" :
				 d.msix ? "virtio-pci, MSI-X" : "virtio-pci, INTx");
	guest_exit(n1 > 200 && n2 > 200 && d.irqs == 2 ? 0 : 1);
}
