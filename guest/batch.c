/*
 * batch - posts 64 requests to virtio-rng with EVENT_IDX negotiated,
 * kicks once, and counts the interrupts until all 64 are used: the
 * device drains them as one batch and must interrupt exactly once.
 * Exits 0 when the count is 1.  On virtio-pci it first moves BAR0, so
 * the notify path is checked at an address the guest chose.
 */
#include "runtime/virtio.h"

#define N 64

static uint8_t bufs[N][16];

void main(void)
{
	struct vdev d;
	struct vq q;
	uint32_t id, len;
	unsigned int i, done = 0;
	unsigned long spins;

	if (vdev_find(4, &d) && d.pci) {
		uintptr_t old = d.common;

		vdev_pci_move_bar0(&d, 0xc8000000);
		gprintf("batch: BAR0 moved from 0x%x to 0x%x\n",
			(unsigned int)old, (unsigned int)d.common);
	}
	if (!d.common && !d.base) {
		gprintf("batch: no virtio-rng\n");
		guest_exit(1);
	}
	if (!vdev_init(&d, 1ULL << VIRTIO_F_EVENT_IDX)) {
		gprintf("batch: no usable virtio-rng\n");
		guest_exit(1);
	}
	if (!(d.features & (1ULL << VIRTIO_F_EVENT_IDX))) {
		gprintf("batch: EVENT_IDX not offered\n");
		guest_exit(1);
	}
#ifdef BATCH_INTX
	d.force_intx = true;
#endif
	vdev_irq_enable(&d, 0x39);
	if (!vq_init(&d, &q, 0, N)) {
		gprintf("batch: queue set-up failed\n");
		guest_exit(1);
	}
	vdev_driver_ok(&d);
	/* Interrupt once used->idx passes N - 1, i.e. after the last one. */
	vq_set_used_event(&q, N - 1);
	for (i = 0; i < N; i++) {
		q.desc[i] = (struct vdesc){ (uintptr_t)bufs[i], 16,
					    VRING_DESC_F_WRITE, 0 };
		vq_publish(&q, i);
	}
	vq_kick(&d, &q);
	for (spins = 0; done < N && spins < 1000; spins++) {
		wait_for_irq();
		while (vq_get_used(&q, &id, &len))
			done++;
	}
	/* Give a stray second interrupt time to show up (~1 ms here). */
	for (spins = 0; spins < 2000; spins++)
		cpu_relax();
	irq_enable();
	for (spins = 0; spins < 2000; spins++)
		cpu_relax();
	irq_disable();
	gprintf("batch: %u requests completed, %u interrupt(s)\n", done,
		d.irqs);
	guest_exit(done == N && d.irqs == 1 ? 0 : 1);
}
