/*
 * net.c - virtio-net (virtio 1.2, section 5.1) on per-queue-pair I/O
 * threads.
 *
 * Queue pair i (receive queue 2i, transmit queue 2i+1) has its own
 * thread "netN-qI" and its own backend fd; that thread alone touches
 * both rings and the fd.  It sleeps (in its io_uring, or epoll) on the
 * two kick eventfds and the fd together.
 *
 * Transmit: each chain's header is copied out and checked; the frame's
 * write is queued on the thread's io_uring straight from guest memory,
 * so a batch of frames reaches the tap in one system call, and the
 * chain goes back when its write completes.  Without io_uring (or for a
 * frame in many pieces) a write() does it at once.
 *
 * Receive: a frame is read only once the guest has given a chain.  A
 * chain that can hold any frame the backend may give is read into
 * directly; otherwise the frame is read into the thread's own buffer
 * and copied into as many (mergeable) chains as it needs.  The guest is
 * interrupted once per batch.  With no receive buffers the thread stops
 * watching the fd until the guest kicks the receive queue; frames wait
 * in the tap's own queue meanwhile.
 *
 * The control queue (only VIRTIO_NET_CTRL_MQ) runs on the VM's low-rate
 * thread.  Changing the number of queue pairs pauses the pair threads
 * concerned, so their state never changes under them.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lkvm/lib/aio.h"
#include "lkvm/lib/iothread.h"
#include "lkvm/lib/util.h"
#include "lkvm/log.h"
#include "lkvm/machine.h"
#include "lkvm/virtio/device.h"
#include "lkvm/virtio/net.h"
#include "lkvm/vm.h"

#define NET_POLL_NS		50000	/* spin before sleeping */
#define NET_RX_BUDGET		128	/* frames per round before signalling */
#define NET_FRAME_MAX		(NET_GSO_MAX + NET_ETH_HLEN + NET_VLAN_HLEN + \
				 NET_HDR_LEN)
#define NET_TX_COPY		4096	/* frames up to this are copied out */
#define NET_TX_ASYNC_IOV	8	/* segments of a frame sent by io_uring */

/* struct virtio_net_config up to mtu. */
struct net_config {
	uint8_t mac[NET_MAC_LEN];
	uint16_t status;
	uint16_t max_virtqueue_pairs;
	uint16_t mtu;
} __attribute__((packed));

/*
 * A transmit write on the queue's io_uring.  The chain goes back to the
 * guest when the write completes; gen tells a completion after a reset
 * (which bumped the pair's generation) to return nothing.
 */
struct net_txio {
	struct aio_io io;
	struct net_pair *p;
	struct net_txio *next_free;
	uint32_t gen;
	uint16_t head;
	struct iovec iov[NET_TX_ASYNC_IOV];
};

/* A receive chain taken from the ring and not yet given back. */
struct net_chain {
	struct vq_elem elem;
	struct iovec iov[NET_MAX_IOV];
};

struct net_pair {
	struct virtio_net *net;
	unsigned int index;
	struct virtio_queue *rxq, *txq;
	struct iothread *thread;	/* the device's thread for this pair */
	int fd;
	bool enabled;			/* the guest uses this pair */
	bool watching;			/* fd in the thread's epoll set */
	bool fd_dead;			/* backend fd failed: ignore it */
	bool rx_streaming;		/* frames came on the last look */
	/* Receive: chains held in ring order, and a frame read but not
	 * yet given to the guest (frame_len 0: none). */
	struct net_chain *held;
	unsigned int nheld;
	uint64_t held_bytes;
	uint8_t *frame;
	uint64_t frame_len;
	struct iovec txiov[VIRTIO_QUEUE_MAX_IOV + 1];
	uint8_t txbuf[NET_TX_COPY];
	/* Transmit writes go by io_uring where there is one (aio NULL: not). */
	struct aio *aio;
	struct net_txio *txios, *txio_free;
	uint32_t tx_gen;
	uint32_t caps[NET_QUEUE_SIZE], lens[NET_QUEUE_SIZE];
	/* statistics */
	uint64_t rx_frames, rx_dropped, tx_frames, tx_dropped;
	uint64_t tx_err[NET_TX_NR];
};

struct virtio_net {
	struct virtio_device dev;
	struct net_backend *nb;
	struct net_config config;
	struct net_pair *pairs;
	unsigned int npairs;
	unsigned int active;		/* pairs the guest uses */
	unsigned int ctl_qi;
	uint64_t rx_max;		/* largest frame the backend may give */
	atomic_bool warned;
};

static struct virtio_net *to_net(struct virtio_device *d)
{
	return container_of(d, struct virtio_net, dev);
}

static bool acked(struct net_pair *p, unsigned int bit)
{
	return p->net->dev.acked & (1ULL << bit);
}

static void net_warn_once(struct virtio_net *net, const char *what)
{
	if (!atomic_exchange(&net->warned, true))
		vm_warn(net->dev.vm, "%s: %s (counted; further drops are not logged)",
			net->dev.vdev.name, what);
}

/* A frame lost: the pair's own count and the queue's error count. */
static void net_rx_dropped(struct net_pair *p)
{
	p->rx_dropped++;
	virtio_queue_count_error(p->rxq);
}

static void net_tx_dropped(struct net_pair *p)
{
	p->tx_dropped++;
	virtio_queue_count_error(p->txq);
}

static void net_watch(struct net_pair *p, bool on)
{
	on = on && p->enabled && !p->fd_dead;
	if (on == p->watching)
		return;
	if (iothread_watch(p->thread, p->fd, on ? EPOLLIN : 0) == 0)
		p->watching = on;
}

/* --- receive --- */

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

/* A read from the backend failed: EAGAIN is "no frame"; else it broke. */
static int net_rx_read_failed(struct net_pair *p)
{
	if (errno != EAGAIN && errno != EINTR) {
		/* The interface went away or broke: stop reading it. */
		vm_warn(p->net->dev.vm, "%s: receive: %s; queue %u stops receiving",
			p->net->dev.vdev.name, strerror(errno), p->index);
		p->fd_dead = true;
		net_watch(p, false);
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

	n = read(p->fd, iov->iov_base, iov->iov_len);
	if (n < 0)
		return net_rx_read_failed(p);
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
		n = read(p->fd, p->frame, NET_FRAME_MAX);
		if (n < 0)
			return net_rx_read_failed(p);
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
static unsigned int net_rx(struct net_pair *p)
{
	bool mrg = acked(p, VIRTIO_NET_F_MRG_RXBUF);
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

static void net_rx_ready(void *opaque, uint32_t events)
{
	struct net_pair *p = opaque;

	if (events & (EPOLLERR | EPOLLHUP)) {
		if (!p->fd_dead)
			vm_warn(p->net->dev.vm, "%s: queue %u: backend hung up",
				p->net->dev.vdev.name, p->index);
		p->fd_dead = true;
		net_watch(p, false);
		return;
	}
	p->rx_streaming = net_rx(p) > 0;
	virtio_queue_publish(p->rxq);
}

/* --- transmit --- */

static void net_tx_done(struct aio_io *io, long res)
{
	struct net_txio *t = container_of(io, struct net_txio, io);
	struct net_pair *p = t->p;

	if (res < 0)
		net_tx_dropped(p);	/* a full or downed tap drops, as a wire would */
	else
		p->tx_frames++;
	if (t->gen == p->tx_gen)
		virtio_queue_complete_head(p->txq, t->head, 0);
	t->next_free = p->txio_free;
	p->txio_free = t;
}

/* After each round of completions: one interrupt for them. */
static void net_tx_batch(void *opaque)
{
	struct net_pair *p = opaque;

	virtio_queue_publish(p->txq);
}

/*
 * Queues the frame's write on the io_uring: the writes of a whole batch
 * reach the kernel in one io_uring_enter, which costs this machine a
 * third less CPU per frame than one write() each.  The tap takes them
 * in order, inline.
 */
static bool net_tx_async(struct net_pair *p, struct vq_elem *e)
{
	struct net_txio *t = p->txio_free;

	if (!p->aio || !t || e->nout > NET_TX_ASYNC_IOV || p->fd_dead)
		return false;
	p->txio_free = t->next_free;
	t->head = e->head;
	t->gen = p->tx_gen;
	memcpy(t->iov, e->iov, e->nout * sizeof(*e->iov));
	memset(&t->io, 0, sizeof(t->io));
	t->io.op = AIO_WRITE;
	t->io.fd = p->fd;
	t->io.iov = t->iov;
	t->io.niov = e->nout;
	t->io.off = (uint64_t)-1;	/* a stream: no offset */
	t->io.hint = AIO_ASYNC;
	t->io.done = net_tx_done;
	aio_submit(p->aio, &t->io);
	return true;
}

/* Sends one frame; false if it went to the io_uring (pushed later). */
static bool net_tx_one(struct net_pair *p, struct vq_elem *e)
{
	struct virtio_net_hdr h;
	enum net_tx_error err = e->nin ? NET_TX_CHAIN : NET_TX_SHORT;
	uint64_t total = 0;
	unsigned int i, n = 0;
	size_t skip = NET_HDR_LEN;

	for (i = 0; i < e->nout; i++)
		total += e->iov[i].iov_len;
	/* Writable parts of a transmit chain are the driver's bug: drop. */
	if (!e->nin && total >= NET_HDR_LEN) {
		iov_to_buf(e->iov, e->nout, 0, &h, sizeof(h));
		err = net_tx_check(&h, total - NET_HDR_LEN, p->net->dev.acked,
				   p->net->config.mtu);
	}
	if (err) {
		net_tx_dropped(p);
		p->tx_err[err]++;
		net_warn_once(p->net, "dropped a transmit frame");
		return true;
	}
	h.num_buffers = 0;
	/*
	 * One write per frame, in one piece where possible: a tap write
	 * costs about 11% more with the header in a separate segment.  A
	 * frame in one guest buffer goes straight from guest memory.  The
	 * guest could rewrite its header between our check and the
	 * kernel's read; that only reaches tun's own checks, which every
	 * tap writer faces (a bad header fails the write, counted as a
	 * drop): our checks are for counting, not the host's safety.
	 */
	if (net_tx_async(p, e))
		return false;
	if (e->nout == 1) {
		if (p->fd_dead || write(p->fd, e->iov[0].iov_base, total) < 0)
			net_tx_dropped(p);
		else
			p->tx_frames++;
		return true;
	}
	/* Small frames in several buffers: one contiguous copy. */
	if (total <= NET_TX_COPY) {
		memcpy(p->txbuf, &h, sizeof(h));
		iov_to_buf(e->iov, e->nout, NET_HDR_LEN,
			   p->txbuf + NET_HDR_LEN, total - NET_HDR_LEN);
		if (p->fd_dead || write(p->fd, p->txbuf, total) < 0)
			net_tx_dropped(p);
		else
			p->tx_frames++;
		return true;
	}
	/* The checked copy of the header goes out, not the guest's. */
	p->txiov[n].iov_base = &h;
	p->txiov[n++].iov_len = sizeof(h);
	for (i = 0; i < e->nout; i++) {
		if (skip >= e->iov[i].iov_len) {
			skip -= e->iov[i].iov_len;
			continue;
		}
		p->txiov[n].iov_base = (uint8_t *)e->iov[i].iov_base + skip;
		p->txiov[n++].iov_len = e->iov[i].iov_len - skip;
		skip = 0;
	}
	if (p->fd_dead || writev(p->fd, p->txiov, n) < 0)
		net_tx_dropped(p);	/* a full or downed tap drops, as a wire would */
	else
		p->tx_frames++;
	return true;
}

static void net_tx_drain(struct net_pair *p, struct virtio_queue *q)
{
	struct vq_elem *e;

	while ((e = virtio_queue_pop(q)))
		if (net_tx_one(p, e))
			virtio_queue_complete(q, e, 0);
}

/* --- the control queue --- */

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

static void net_ctrl_drain(struct virtio_device *d, struct virtio_queue *q)
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

/* --- the device --- */

static void net_drain(struct virtio_device *d, struct virtio_queue *q)
{
	struct virtio_net *net = to_net(d);
	struct net_pair *p;

	if (q->index == net->ctl_qi) {
		net_ctrl_drain(d, q);
		return;
	}
	p = &net->pairs[q->index / 2];
	if (q->index & 1) {
		net_tx_drain(p, q);
		return;
	}
	/* The guest added receive buffers: take frames again. */
	net_watch(p, true);
	net_rx(p);
}

/* Busy-poll step: frames to send, or frames to receive, without a wake-up. */
static bool net_poll(void *opaque)
{
	struct net_pair *p = opaque;
	uint16_t taken = p->txq->vq.last_avail;
	bool work = false;

	if (vq_has_work(&p->txq->vq)) {
		virtio_queue_service(p->txq);
		work = p->txq->vq.last_avail != taken;
	}
	/*
	 * The backend is looked at only while frames keep coming: once it
	 * runs dry, epoll says when more arrive, and the spin costs no
	 * read() per round (nor CPU time the sender of those frames needs).
	 */
	if (p->rx_streaming && p->watching) {
		p->rx_streaming = net_rx(p) > 0;
		work |= p->rx_streaming;
		virtio_queue_publish(p->rxq);
	}
	return work;
}

static unsigned int net_offloads(struct virtio_net *net)
{
	uint64_t a = net->dev.acked;
	unsigned int off = 0;

	if (!(a & (1ULL << VIRTIO_NET_F_GUEST_CSUM)))
		return 0;
	off |= NET_OFF_CSUM;
	if (a & (1ULL << VIRTIO_NET_F_GUEST_TSO4))
		off |= NET_OFF_TSO4;
	if (a & (1ULL << VIRTIO_NET_F_GUEST_TSO6))
		off |= NET_OFF_TSO6;
	if ((a & (1ULL << VIRTIO_NET_F_GUEST_ECN)) &&
	    (off & (NET_OFF_TSO4 | NET_OFF_TSO6)))
		off |= NET_OFF_TSO_ECN;
	if (a & (1ULL << VIRTIO_NET_F_GUEST_UFO))
		off |= NET_OFF_UFO;
	return off;
}

static void net_driver_ok(struct virtio_device *d)
{
	struct virtio_net *net = to_net(d);
	unsigned int off = net_offloads(net);
	int ret = net->nb->ops->set_offload(net->nb, off);

	net->rx_max = off & (NET_OFF_TSO4 | NET_OFF_TSO6 | NET_OFF_UFO) ?
		      NET_FRAME_MAX : NET_HDR_LEN + NET_ETH_HLEN +
				      NET_VLAN_HLEN + net->config.mtu;
	if (ret)
		vm_warn(d->vm, "%s: cannot set receive offloads: %s", d->vdev.name,
			strerror(-ret));
}

static void net_reset(struct virtio_device *d)
{
	struct virtio_net *net = to_net(d);
	unsigned int i;

	/* Threads are paused.  Held chains belonged to the old rings. */
	for (i = 0; i < net->npairs; i++) {
		struct net_pair *p = &net->pairs[i];

		p->nheld = 0;
		p->held_bytes = 0;
		p->frame_len = 0;
		p->tx_gen++;		/* writes in flight return nothing */
		if (i && p->enabled &&
		    net->nb->ops->set_queue_enabled(net->nb, i, false) == 0)
			p->enabled = false;
		net_watch(p, false);
	}
	net->active = 1;
	net->rx_max = NET_FRAME_MAX;
	net->nb->ops->set_offload(net->nb, 0);
}

static void net_config_read(struct virtio_device *d, uint32_t off, void *data,
			    unsigned int len)
{
	memcpy(data, (uint8_t *)&to_net(d)->config + off, len);
}

/* At exit, what the guest got wrong, if anything: one line. */
static void net_report(struct virtio_net *net)
{
	uint64_t err[NET_TX_NR] = { 0 }, rxd = 0, txd = 0;
	char why[256] = "";
	size_t len = 0;
	unsigned int i, k;

	for (i = 0; net->pairs && i < net->npairs; i++) {
		rxd += net->pairs[i].rx_dropped;
		for (k = 1; k < NET_TX_NR; k++) {
			err[k] += net->pairs[i].tx_err[k];
			txd += net->pairs[i].tx_err[k];
		}
	}
	if (!rxd && !txd)
		return;
	for (k = 1; k < NET_TX_NR; k++)
		if (err[k] && len < sizeof(why))
			len += snprintf(why + len, sizeof(why) - len, "%s%llu %s",
					len ? ", " : " (", (unsigned long long)err[k],
					net_tx_error_name(k));
	vm_warn(net->dev.vm, "%s: dropped %llu transmit frame(s)%s%s, %llu received frame(s)",
		net->dev.vdev.name, (unsigned long long)txd, why, len ? ")" : "",
		(unsigned long long)rxd);
}

static void net_free(struct virtio_device *d)
{
	struct virtio_net *net = to_net(d);
	unsigned int i;

	net_report(net);

	for (i = 0; net->pairs && i < net->npairs; i++) {
		struct net_pair *p = &net->pairs[i];

		aio_free(p->aio);
		free(p->txios);
		free(p->held);
		free(p->frame);
	}
	free(net->pairs);
	net_close(net->nb);
	free(net);
}

static const struct virtio_device_ops virtio_net_ops = {
	.name = "net",
	.device_id = VIRTIO_ID_NET,
	.nqueues = 3,
	.queue_max = NET_QUEUE_SIZE,
	.config_size = sizeof(struct net_config),
	.pci_class = 0x020000,		/* network, Ethernet */
	.config_read = net_config_read,
	.drain = net_drain,
	.reset = net_reset,
	.driver_ok = net_driver_ok,
	.free = net_free,
};

/* io_uring for transmit writes; without one, write() does them. */
static int net_tx_ring_init(struct net_pair *p)
{
	unsigned int k;
	int ret;

	p->txios = calloc(NET_QUEUE_SIZE, sizeof(*p->txios));
	if (!p->txios)
		return -ENOMEM;
	for (k = 0; k < NET_QUEUE_SIZE; k++) {
		p->txios[k].p = p;
		p->txios[k].next_free = p->txio_free;
		p->txio_free = &p->txios[k];
	}
	if (aio_create_uring(&p->aio, p->thread, NET_QUEUE_SIZE)) {
		p->aio = NULL;
		return 0;
	}
	ret = aio_add_batch_hook(p->aio, net_tx_batch, p);
	if (!ret)
		ret = aio_poll_on(p->aio, p->thread, NET_POLL_NS);
	return ret;
}

static int net_pair_init(struct virtio_net *net, unsigned int i)
{
	struct net_pair *p = &net->pairs[i];
	int ret;

	p->net = net;
	p->index = i;
	p->rxq = &net->dev.queues[2 * i];
	p->txq = &net->dev.queues[2 * i + 1];
	p->fd = net->nb->fds[i];
	p->thread = &net->dev.threads[i];
	p->enabled = i == 0;
	p->held = calloc(NET_QUEUE_SIZE, sizeof(*p->held));
	p->frame = malloc(NET_FRAME_MAX);
	if (!p->held || !p->frame)
		return -ENOMEM;
	ret = virtio_queue_attach(&net->dev, 2 * i, p->thread);
	if (!ret)
		ret = virtio_queue_attach(&net->dev, 2 * i + 1, p->thread);
	/* Watched from the first receive kick on. */
	if (!ret)
		ret = iothread_add(p->thread, p->fd, 0, net_rx_ready, p);
	if (!ret)
		ret = iothread_add_poller(p->thread, net_poll, p, NET_POLL_NS);
	if (!ret)
		ret = net_tx_ring_init(p);
	/* Only pair 0 until the guest asks for more (VQ_PAIRS_SET). */
	if (!ret && i)
		ret = net->nb->ops->set_queue_enabled(net->nb, i, false);
	return ret;
}

int virtio_net_create(struct lkvm *vm, struct net_backend *nb,
		      unsigned int index, const uint8_t *mac,
		      struct iothread *ctl, struct virtio_device **dp)
{
	struct virtio_net *net = calloc(1, sizeof(*net));
	char name[16];
	unsigned int i;
	int ret;

	*dp = NULL;
	if (!net) {
		net_close(nb);
		return -ENOMEM;
	}
	net->nb = nb;
	net->npairs = nb->nqueues;
	net->active = 1;
	net->rx_max = NET_FRAME_MAX;
	net->ctl_qi = 2 * net->npairs;
	snprintf(name, sizeof(name), "net%u", index);
	ret = virtio_device_init(&net->dev, vm, &virtio_net_ops, name,
				 2 * net->npairs + 1);
	*dp = &net->dev;
	net->dev.features |= 1ULL << VIRTIO_NET_F_MAC |
			     1ULL << VIRTIO_NET_F_MTU |
			     1ULL << VIRTIO_NET_F_STATUS |
			     1ULL << VIRTIO_NET_F_CTRL_VQ |
			     1ULL << VIRTIO_NET_F_MRG_RXBUF |
			     1ULL << VIRTIO_NET_F_CSUM |
			     1ULL << VIRTIO_NET_F_HOST_TSO4 |
			     1ULL << VIRTIO_NET_F_HOST_TSO6 |
			     1ULL << VIRTIO_NET_F_HOST_ECN |
			     /* tun takes UDP GSO writes (since Linux 4.14). */
			     1ULL << VIRTIO_NET_F_HOST_UFO;
	if (net->npairs > 1)
		net->dev.features |= 1ULL << VIRTIO_NET_F_MQ;
	if (nb->offloads & NET_OFF_CSUM)
		net->dev.features |= 1ULL << VIRTIO_NET_F_GUEST_CSUM;
	if (nb->offloads & NET_OFF_TSO4)
		net->dev.features |= 1ULL << VIRTIO_NET_F_GUEST_TSO4;
	if (nb->offloads & NET_OFF_TSO6)
		net->dev.features |= 1ULL << VIRTIO_NET_F_GUEST_TSO6;
	if (nb->offloads & NET_OFF_TSO_ECN)
		net->dev.features |= 1ULL << VIRTIO_NET_F_GUEST_ECN;
	if (nb->offloads & NET_OFF_UFO)
		net->dev.features |= 1ULL << VIRTIO_NET_F_GUEST_UFO;
	memcpy(net->config.mac, mac, NET_MAC_LEN);
	net->config.status = VIRTIO_NET_S_LINK_UP;
	net->config.max_virtqueue_pairs = net->npairs;
	net->config.mtu = MIN(nb->mtu, 65535u);
	if (ret)
		return ret;
	net->pairs = calloc(net->npairs, sizeof(*net->pairs));
	if (!net->pairs)
		return -ENOMEM;
	ret = virtio_device_threads(&net->dev, net->npairs);
	for (i = 0; !ret && i < net->npairs; i++)
		ret = net_pair_init(net, i);
	if (!ret)
		ret = virtio_queue_attach(&net->dev, net->ctl_qi, ctl);
	return ret;
}

/* A locally administered address no other lkvm is likely to pick. */
static void net_random_mac(uint8_t *mac)
{
	uint8_t r[3] = { 0x12, 0x34, 0x56 };

	if (getrandom(r, sizeof(r), 0) != sizeof(r)) {
		/* keep the fixed fallback */
	}
	mac[0] = 0x02;
	mac[1] = 0x6c;		/* 'l' */
	mac[2] = 0x6b;		/* 'k' */
	memcpy(mac + 3, r, 3);
}

static int net_create_one(struct machine *m, unsigned int index, char *err,
			  size_t errlen)
{
	struct virtio_device *d = NULL;
	struct net_backend *nb;
	struct iothread *lowrate;
	struct net_spec spec;
	uint8_t mac[NET_MAC_LEN];
	unsigned int nq;
	int ret;

	ret = net_spec_parse(m->cfg->nets[index], &spec, err, errlen);
	if (ret)
		return ret;
	if (spec.mode == NET_MODE_NONE) {
		net_spec_free(&spec);
		return 0;
	}
	if (spec.mac_set)
		memcpy(mac, spec.mac, sizeof(mac));
	else
		net_random_mac(mac);
	nq = spec.queues ? spec.queues : 1;
	lowrate = machine_lowrate(m, err, errlen);
	if (!lowrate) {
		net_spec_free(&spec);
		return -ENOMEM;
	}
	ret = net_open(&nb, &spec, nq, err, errlen);
	if (ret)
		return ret;
	ret = virtio_net_create(m->vm, nb, index, mac, lowrate, &d);
	if (!ret)
		ret = virtio_device_register(d);
	else if (d)
		virtio_device_free(d);
	if (ret)
		return errf(err, errlen, ret, "cannot create virtio-net on %s: %s",
			    nb->ifname, ret == -ENOSPC ?
			    "no free virtio-mmio window" : strerror(-ret));
	vm_info(m->vm, "net%u: tap %s%s, guest MAC %02x:%02x:%02x:%02x:%02x:%02x, %u queue pair(s), MTU %u, receive offloads%s%s%s%s%s",
		index, nb->ifname, nb->created ? " (created)" : "", mac[0],
		mac[1], mac[2], mac[3], mac[4], mac[5], nq, nb->mtu,
		nb->offloads & NET_OFF_CSUM ? " csum" : " none",
		nb->offloads & NET_OFF_TSO4 ? " tso4" : "",
		nb->offloads & NET_OFF_TSO6 ? " tso6" : "",
		nb->offloads & NET_OFF_TSO_ECN ? " ecn" : "",
		nb->offloads & NET_OFF_UFO ? " ufo" : "");
	return 0;
}

static int net_create_all(struct machine *m, char *err, size_t errlen)
{
	unsigned int i;
	int ret;

	for (i = 0; i < m->cfg->nnets; i++) {
		ret = net_create_one(m, i, err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

/* -n SPEC: lkvm_config.nets. */
const struct device_type virtio_net_type = {
	.name = "net",
	.create = net_create_all,
};
