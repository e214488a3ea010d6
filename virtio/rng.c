/*
 * rng.c - virtio-rng (device id 4): one queue whose device-writable
 * buffers are filled from the host's getrandom().  Runs on the VM's
 * shared low-rate I/O thread; has no state of its own.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include "lkvm/virtio/device.h"
#include "lkvm/virtio/devices.h"

static void rng_drain(struct virtio_device *d, struct virtio_queue *q)
{
	struct vq_elem *e;

	(void)d;
	while ((e = virtio_queue_pop(q))) {
		uint64_t done = 0;
		unsigned int i;

		for (i = e->nout; i < e->nout + e->nin; i++) {
			ssize_t n = getrandom(e->iov[i].iov_base,
					      e->iov[i].iov_len, GRND_NONBLOCK);

			if (n <= 0)
				break;
			done += n;
			if ((size_t)n < e->iov[i].iov_len)
				break;
		}
		virtio_queue_push(q, e, done);
	}
}

const struct virtio_device_ops virtio_rng_ops = {
	.name = "rng",
	.device_id = VIRTIO_ID_RNG,
	.nqueues = 1,
	.queue_max = 256,
	.pci_class = 0xff0000,	/* unclassified */
	.drain = rng_drain,
};
