/*
 * net_ctrl.c - virtio-net's control queue (only VIRTIO_NET_CTRL_MQ), on
 * the VM's low-rate thread.  Changing the number of queue pairs pauses
 * the pair threads concerned, so their state never changes under them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "lkvm/lib/iothread.h"
#include "lkvm/lib/util.h"
#include "lkvm/log.h"
#include "lkvm/virtio/net_dev.h"
#include "lkvm/vm.h"

static uint8_t net_ctrl_mq(struct virtio_net *net, uint16_t pairs)
{
	unsigned int i;

	if (!(net->dev.acked & (1ULL << VIRTIO_NET_F_MQ)) || pairs < 1 ||
	    pairs > net->npairs)
		return VIRTIO_NET_ERR;
	for (i = 1; i < net->npairs; i++) {
		struct net_pair *p = &net->pairs[i];
		bool on = i < pairs;

		if (p->enabled == on)
			continue;
		iothread_pause(p->thread);
		if (net->nb->ops->set_queue_enabled(net->nb, i, on) == 0) {
			p->enabled = on;
			net_watch(p, on);
		}
		iothread_resume(p->thread);
		if (on) {
			uint64_t one = 1;

			/* Buffers may be waiting already: have a look. */
			if (write(p->rxq->kick_fd, &one, sizeof(one)) < 0) {
				/* saturated: a look is due anyway */
			}
		}
	}
	net->active = pairs;
	return VIRTIO_NET_OK;
}

void net_ctrl_drain(struct virtio_device *d, struct virtio_queue *q)
{
	struct virtio_net *net = to_net(d);
	struct vq_elem *e;

	while ((e = virtio_queue_pop(q))) {
		uint8_t cmd[4] = { 0 }, ack = VIRTIO_NET_ERR;
		uint64_t out = 0;
		unsigned int i;

		for (i = 0; i < e->nout; i++)
			out += e->iov[i].iov_len;
		iov_to_buf(e->iov, e->nout, 0, cmd, sizeof(cmd));
		if (out >= 4 && cmd[0] == VIRTIO_NET_CTRL_MQ &&
		    cmd[1] == VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET)
			ack = net_ctrl_mq(net, cmd[2] | cmd[3] << 8);
		if (!e->nin) {
			virtio_queue_complete(q, e, 0);	/* nowhere to answer */
			continue;
		}
		/* The ack is the last byte the device may write. */
		buf_to_iov(e->iov + e->nout, e->nin, e->in_bytes - 1, &ack, 1);
		virtio_queue_complete(q, e, e->in_bytes);
	}
}
