/*
 * console.c - virtio-console (device id 3) with one port and no
 * multiport control queue: queue 0 receives (host to guest), queue 1
 * transmits.  Linux names it hvc0.
 *
 * Input arrives on the control-loop thread (the console sink) into a
 * small byte ring under rx_lock; the sink then kicks queue 0, whose I/O
 * thread moves the bytes into the guest's receive buffers.  Output is
 * written to the host console from queue 1's thread.  Input that arrives
 * before the driver is ready waits in the ring, across device resets: it
 * is the host's data, not device state.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lkvm/console.h"
#include "lkvm/lib/util.h"
#include "lkvm/machine.h"
#include "lkvm/virtio/device.h"
#include "lkvm/vm.h"

#define VCON_RX_SIZE 4096

struct vcon {
	struct virtio_device dev;
	pthread_mutex_t rx_lock;
	uint8_t rx[VCON_RX_SIZE];
	unsigned int rx_head, rx_count;
};

static void vcon_rx_drain(struct vcon *c, struct virtio_queue *q)
{
	struct vq_elem *e;
	bool was_full;

	pthread_mutex_lock(&c->rx_lock);
	was_full = c->rx_count == VCON_RX_SIZE;
	while (c->rx_count && (e = virtio_queue_pop(q))) {
		uint64_t done = 0;
		unsigned int i;

		for (i = e->nout; i < e->nout + e->nin && c->rx_count; i++) {
			uint8_t *p = e->iov[i].iov_base;
			size_t n = 0;

			while (n < e->iov[i].iov_len && c->rx_count) {
				p[n++] = c->rx[c->rx_head];
				c->rx_head = (c->rx_head + 1) % VCON_RX_SIZE;
				c->rx_count--;
			}
			done += n;
		}
		virtio_queue_complete(q, e, done);
	}
	pthread_mutex_unlock(&c->rx_lock);
	if (was_full && c->rx_count < VCON_RX_SIZE)
		console_space_available(&c->dev.vm->console);
}

static void vcon_drain(struct virtio_device *d, struct virtio_queue *q)
{
	struct vcon *c = container_of(d, struct vcon, dev);
	struct vq_elem *e;

	if (q->index == 0) {
		vcon_rx_drain(c, q);
		return;
	}
	while ((e = virtio_queue_pop(q))) {
		unsigned int i;

		for (i = 0; i < e->nout; i++)
			console_write(&d->vm->console, e->iov[i].iov_base,
				      e->iov[i].iov_len);
		virtio_queue_complete(q, e, 0);
	}
}

static void vcon_config_read(struct virtio_device *d, uint32_t off,
			     void *data, unsigned int len)
{
	/* cols, rows, max_nr_ports, emerg_wr: 80x25, one port. */
	uint8_t cfg[12] = { 80, 0, 25, 0, 1, 0, 0, 0, 0, 0, 0, 0 };

	(void)d;
	memcpy(data, cfg + off, len);
}

static void vcon_free(struct virtio_device *d)
{
	struct vcon *c = container_of(d, struct vcon, dev);

	pthread_mutex_destroy(&c->rx_lock);
	free(c);
}

static size_t vcon_sink_space(void *opaque)
{
	struct vcon *c = opaque;
	size_t space;

	pthread_mutex_lock(&c->rx_lock);
	space = VCON_RX_SIZE - c->rx_count;
	pthread_mutex_unlock(&c->rx_lock);
	return space;
}

static void vcon_sink_push(void *opaque, const uint8_t *buf, size_t len)
{
	struct vcon *c = opaque;
	uint64_t one = 1;
	size_t i;

	pthread_mutex_lock(&c->rx_lock);
	for (i = 0; i < len && c->rx_count < VCON_RX_SIZE; i++)
		c->rx[(c->rx_head + c->rx_count++) % VCON_RX_SIZE] = buf[i];
	pthread_mutex_unlock(&c->rx_lock);
	/* Wake the receive queue's thread as if the guest had kicked. */
	if (write(c->dev.queues[0].kick_fd, &one, sizeof(one)) < 0) {
		/* saturated: the thread is being woken anyway */
	}
}

/* The hvc console driver takes Ctrl-O, then a key, as SysRq. */
static int vcon_sink_sysrq(void *opaque, uint8_t key)
{
	const uint8_t seq[2] = { 0x0f, key };

	if (vcon_sink_space(opaque) < sizeof(seq))
		return -EAGAIN;
	vcon_sink_push(opaque, seq, sizeof(seq));
	return 0;
}

static const struct console_sink_ops vcon_sink = {
	.space = vcon_sink_space,
	.push = vcon_sink_push,
	.sysrq = vcon_sink_sysrq,
};

static const struct virtio_device_ops virtio_console_ops = {
	.name = "console",
	.device_id = VIRTIO_ID_CONSOLE,
	.nqueues = 2,
	.queue_max = 256,
	.pci_class = 0x078000,	/* other communication */
	.config_size = 12,
	.config_read = vcon_config_read,
	.drain = vcon_drain,
	.free = vcon_free,
};

/* With --console virtio the guest's console input comes here. */
static int vcon_create(struct machine *m, char *err, size_t errlen)
{
	struct iothread *lowrate;
	struct vcon *c;
	unsigned int i;
	int ret;

	if (!m->cfg->console_virtio)
		return 0;
	lowrate = machine_lowrate(m, err, errlen);
	if (!lowrate)
		return -ENOMEM;
	c = calloc(1, sizeof(*c));
	if (!c)
		return errf(err, errlen, -ENOMEM, "out of memory");
	pthread_mutex_init(&c->rx_lock, NULL);
	ret = virtio_device_init(&c->dev, m->vm, &virtio_console_ops,
				 "console0", 0);
	for (i = 0; !ret && i < c->dev.nqueues; i++)
		ret = virtio_queue_attach(&c->dev, i, lowrate);
	if (!ret)
		console_set_sink(&m->vm->console, &vcon_sink, c);
	return virtio_device_finish(&c->dev, ret, "virtio-console", err,
				    errlen);
}

/* --console virtio: lkvm_config.console_virtio. */
const struct device_type virtio_console_type = {
	.name = "console",
	.create = vcon_create,
};
