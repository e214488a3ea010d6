/*
 * net_rx.c - virtio-net receive, on the queue pair's thread.
 *
 * A frame is read only once the guest has given a chain.  A chain that
 * can hold any frame the backend may give is read into directly;
 * otherwise the frame is read into the pair's own buffer and copied
 * into as many (mergeable) chains as it needs.  The guest is
 * interrupted once per batch.  With no receive buffers the thread stops
 * watching the fd until the guest kicks the receive queue; frames wait
 * in the tap's own queue meanwhile.
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

/*
 * Takes one more receive chain.  A chain with device-readable parts is
 * a driver bug: it goes back empty and is not used.
 */
static bool net_rx_take(struct net_pair *p)
{
	struct net_chain *c;

	while (p->nheld < NET_QUEUE_SIZE) {
		c = &p->held[p->nheld];
		c->elem.iov = c->iov;
		c->elem.max_iov = NET_MAX_IOV;
		if (virtio_queue_take(p->rxq, &c->elem) <= 0)
			return false;
		if (c->elem.nout || !c->elem.in_bytes ||
		    c->elem.in_bytes > UINT32_MAX) {
			virtio_queue_complete(p->rxq, &c->elem, 0);
			net_rx_dropped(p);
			net_warn_once(p->net, "receive chain with readable buffers");
			continue;
		}
		p->caps[p->nheld] = c->elem.in_bytes;
		p->held_bytes += c->elem.in_bytes;
		p->nheld++;
		return true;
	}
	return false;
}

/* Pushes the first k held chains (lens[] written) and forgets them. */
static void net_rx_release(struct net_pair *p, unsigned int k)
{
	unsigned int i;

	for (i = 0; i < k; i++) {
		virtio_queue_complete(p->rxq, &p->held[i].elem, p->lens[i]);
		p->held_bytes -= p->caps[i];
	}
	p->nheld -= k;
	if (p->nheld) {
		memmove(p->held, p->held + k, p->nheld * sizeof(*p->held));
		memmove(p->caps, p->caps + k, p->nheld * sizeof(*p->caps));
		/* Moved chains' iovecs must point at their own arrays. */
		for (i = 0; i < p->nheld; i++)
			p->held[i].elem.iov = p->held[i].iov;
	}
	p->rx_frames++;
}

/*
 * Gives the frame in the receive buffer to the first k held chains:
 * copies it in, sets num_buffers = k, and pushes them.
 */
static void net_rx_complete(struct net_pair *p, unsigned int k)
{
	struct virtio_net_hdr h;
	uint64_t off = 0;
	unsigned int i;

	memcpy(&h, p->frame, sizeof(h));
	if (!net_rx_fix_hdr(&h, p->net->dev.acked, k)) {
		net_rx_dropped(p);	/* chains stay held for the next frame */
		return;
	}
	memcpy(p->frame, &h, sizeof(h));
	for (i = 0; i < k; i++) {
		struct vq_elem *e = &p->held[i].elem;

		buf_to_iov(e->iov, e->nin, 0, p->frame + off, p->lens[i]);
		off += p->lens[i];
	}
	net_rx_release(p, k);
}

/*
 * Places the frame waiting in the receive buffer (frame_len bytes).
 * Returns false while it waits for more chains.
 */
static bool net_rx_place_frame(struct net_pair *p, bool mrg)
{
	unsigned int k;

	if (!mrg) {
		/* One chain per frame; a frame bigger than it is dropped. */
		if (!p->nheld && !net_rx_take(p))
			return false;
		k = net_rx_place(p->caps, 1, p->frame_len, false, p->lens);
	} else {
		while (p->held_bytes < p->frame_len) {
			if (net_rx_take(p))
				continue;
			if (p->nheld < p->rxq->vq.size)
				return false;
			/* The whole ring cannot hold it: drop, or wait forever. */
			break;
		}
		k = net_rx_place(p->caps, p->nheld, p->frame_len, true, p->lens);
	}
	if (k)
		net_rx_complete(p, k);
	else
		net_rx_dropped(p);
	p->frame_len = 0;
	return true;
}

/*
 * A read from the backend failed: EAGAIN is "no frame", EBADMSG one
 * frame dropped; else it broke.
 */
static int net_rx_read_failed(struct net_pair *p, int err)
{
	if (err == -EBADMSG) {
		/* The backend skipped a frame of a bad length: go on. */
		net_rx_dropped(p);
		net_warn_once(p->net, "the backend sent a frame too long or too short");
		return 1;
	}
	if (err != -EAGAIN && err != -EINTR) {
		/* The interface went away or broke: stop reading it. */
		vm_warn(p->net->dev.vm, "%s: receive: %s; queue %u stops receiving",
			p->net->dev.vdev.name, strerror(-err), p->index);
		net_backend_dead(p);
	}
	return 0;
}

/*
 * A first chain of one buffer that holds the largest frame the backend
 * can give (the MTU, or 64 KiB with receive offloads) is read into
 * directly: no copy.
 */
static int net_rx_direct(struct net_pair *p)
{
	struct iovec *iov = &p->held[0].iov[0];
	struct virtio_net_hdr h;
	ssize_t n;

	n = net_backend_recv(p, iov, 1);
	if (n < 0)
		return net_rx_read_failed(p, n);
	/* tun returns a frame's whole length even when it did not fit. */
	memcpy(&h, iov->iov_base, sizeof(h));
	if ((size_t)n < NET_HDR_LEN + NET_ETH_HLEN || (size_t)n > iov->iov_len ||
	    !net_rx_fix_hdr(&h, p->net->dev.acked, 1)) {
		net_rx_dropped(p);	/* the chain stays for the next frame */
		return 1;
	}
	memcpy(iov->iov_base, &h, sizeof(h));
	p->lens[0] = n;
	net_rx_release(p, 1);
	return 1;
}

/*
 * One frame from the backend: 1 taken, 0 none waiting, -1 no buffers.
 * Unless the first chain can take any frame, the frame is read whole
 * into a buffer of our own and copied into the guest's chains: one
 * contiguous read is cheaper for a tap than a scattered one, and the
 * size is known before chains are chosen.
 */
static int net_rx_one(struct net_pair *p, bool mrg)
{
	ssize_t n;

	if (!p->frame_len) {
		/* Read only when the guest has given a buffer to read into. */
		if (!p->nheld && !net_rx_take(p))
			return -1;
		if (p->held[0].elem.nin == 1 && p->caps[0] >= p->net->rx_max)
			return net_rx_direct(p);
		n = net_backend_recv(p, &(struct iovec){ p->frame,
							  NET_FRAME_MAX }, 1);
		if (n < 0)
			return net_rx_read_failed(p, n);
		if ((size_t)n < NET_HDR_LEN + NET_ETH_HLEN) {
			net_rx_dropped(p);
			return 1;
		}
		p->frame_len = n;
	}
	return net_rx_place_frame(p, mrg) ? 1 : -1;
}

/*
 * Reads frames into the guest's receive chains until the backend has
 * none, the guest has no buffers, or the budget is spent.  Returns the
 * number of frames read.
 */
unsigned int net_rx(struct net_pair *p)
{
	bool mrg = net_acked(p, VIRTIO_NET_F_MRG_RXBUF);
	unsigned int frames = 0;
	int r;

	if (!p->rxq->vq.size || !p->enabled || p->fd_dead)
		return 0;
	while (frames < NET_RX_BUDGET) {
		r = net_rx_one(p, mrg);
		if (r > 0) {
			frames++;
			continue;
		}
		if (r == 0)
			break;
		/*
		 * No buffers: hear the guest's next receive kick and stop
		 * watching the fd until then, unless buffers came while we
		 * looked.
		 */
		if (vq_notify_on(&p->rxq->vq))
			continue;
		net_watch(p, false);
		break;
	}
	return frames;
}

void net_rx_ready(void *opaque, uint32_t events)
{
	struct net_pair *p = opaque;

	if (events & (EPOLLERR | EPOLLHUP)) {
		if (!p->fd_dead)
			vm_warn(p->net->dev.vm, "%s: queue %u: backend hung up; link down",
				p->net->dev.vdev.name, p->index);
		net_backend_dead(p);
		return;
	}
	/* Room in the backend again: the held transmit frame goes on. */
	if ((events & EPOLLOUT) && p->tx_blocked) {
		if (net_backend_flush(p))
			return;		/* still more to write, or it broke */
		p->tx_blocked = false;
		net_watch(p, p->watching);
		virtio_queue_service(p->txq);
	}
	if (!(events & EPOLLIN))
		return;
	p->rx_streaming = net_rx(p) > 0;
	virtio_queue_publish(p->rxq);
}
