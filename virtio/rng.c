/*
 * rng.c - virtio-rng (device id 4): one queue whose device-writable
 * buffers are filled from the host's getrandom().  Runs on the VM's
 * shared low-rate I/O thread; has no state beyond the device core's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "lkvm/lib/util.h"
#include "lkvm/machine.h"
#include "lkvm/virtio/device.h"

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
		virtio_queue_complete(q, e, done);
	}
}

static void rng_free(struct virtio_device *d)
{
	free(d);
}

static const struct virtio_device_ops virtio_rng_ops = {
	.name = "rng",
	.device_id = VIRTIO_ID_RNG,
	.nqueues = 1,
	.queue_max = 256,
	.pci_class = 0xff0000,	/* unclassified */
	.drain = rng_drain,
	.free = rng_free,
};

static int rng_create(struct machine *m, char *err, size_t errlen)
{
	struct virtio_device *d;
	struct iothread *lowrate;
	int ret;

	if (!m->cfg->rng && !machine_device_spec(m->cfg, "rng", 0))
		return 0;
	lowrate = machine_lowrate(m, err, errlen);
	if (!lowrate)
		return -ENOMEM;
	d = calloc(1, sizeof(*d));
	if (!d)
		return errf(err, errlen, -ENOMEM, "out of memory");
	ret = virtio_device_init(d, m->vm, &virtio_rng_ops, "rng0", 0);
	if (!ret)
		ret = virtio_queue_attach(d, 0, lowrate);
	return virtio_device_finish(d, ret, "virtio-rng", err, errlen);
}

/* --rng: lkvm_config.rng (or "rng" in lkvm_config.devices). */
const struct device_type virtio_rng_type = {
	.name = "rng",
	.create = rng_create,
};
