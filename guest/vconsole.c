/*
 * vconsole - writes a line through virtio-console's transmit queue, then
 * reads one line from its receive queue and echoes it back upper-cased
 * through the same device.  Exits 0.
 */
#include "runtime/virtio.h"

static char out[128];
static char in[64];

static void send(struct vdev *d, struct vq *tx, const char *s)
{
	uint32_t id, len, n = 0;

	while (s[n] && n < sizeof(out))
		n++;
	memcpy(out, s, n);
	tx->desc[0] = (struct vdesc){ (uintptr_t)out, n, 0, 0 };
	vq_publish(tx, 0);
	vq_kick(d, tx);
	while (!vq_get_used(tx, &id, &len))
		cpu_relax();
}

void main(void)
{
	struct vdev d;
	struct vq rx, tx;
	uint32_t id, len = 0;
	char line[96] = "vconsole: got ";
	unsigned int i, n = 14;

	if (!vdev_find(3, &d) || !vdev_init(&d, 0) || !vq_init(&d, &rx, 0, 8) ||
	    !vq_init(&d, &tx, 1, 8)) {
		gprintf("vconsole: no usable virtio-console\n");
		guest_exit(1);
	}
	vdev_driver_ok(&d);
	send(&d, &tx, "vconsole: hello from virtio-console\n");

	rx.desc[0] = (struct vdesc){ (uintptr_t)in, sizeof(in),
				     VRING_DESC_F_WRITE, 0 };
	vq_publish(&rx, 0);
	vq_kick(&d, &rx);
	while (!vq_get_used(&rx, &id, &len))
		cpu_relax();
	for (i = 0; i < len && in[i] != '\n' && n < sizeof(line) - 2; i++)
		line[n++] = in[i] >= 'a' && in[i] <= 'z' ? in[i] - 32 : in[i];
	line[n++] = '\n';
	line[n] = '\0';
	send(&d, &tx, line);
	guest_exit(0);
}
