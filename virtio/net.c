/*
 * net.c - virtio-net (virtio 1.2, section 5.1) on per-queue-pair I/O
 * threads.
 *
 * Queue pair i (receive queue 2i, transmit queue 2i+1) has its own
 * thread "netN-qI" and its own backend fd; that thread alone touches
 * both rings and the fd.  It sleeps (in its io_uring, or epoll) on the
 * two kick eventfds and the fd together.
 *
 * This file is the device: features, configuration, reset, the pairs'
 * set-up and the device type (-n).  Receive is net_rx.c, transmit
 * net_tx.c, the control queue (on the VM's low-rate thread) net_ctrl.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <unistd.h>

#include "lkvm/lib/iothread.h"
#include "lkvm/lib/util.h"
#include "lkvm/log.h"
#include "lkvm/machine.h"
#include "lkvm/virtio/net_dev.h"
#include "lkvm/vm.h"

void net_warn_once(struct virtio_net *net, const char *what)
{
	if (!atomic_exchange(&net->warned, true))
		vm_warn(net->dev.vm, "%s: %s (counted; further drops are not logged)",
			net->dev.vdev.name, what);
}

/* A frame lost: the pair's own count and the queue's error count. */
void net_rx_dropped(struct net_pair *p)
{
	p->rx_dropped++;
	virtio_queue_count_error(p->rxq);
}

void net_tx_dropped(struct net_pair *p)
{
	p->tx_dropped++;
	virtio_queue_count_error(p->txq);
}

/* The fd's events: frames to read, and room to write while blocked. */
static void net_watch_update(struct net_pair *p)
{
	uint32_t ev = (p->watching ? EPOLLIN : 0) |
		      (p->tx_blocked && !p->fd_dead ? EPOLLOUT : 0);

	if (ev != p->watch_events && iothread_watch(p->thread, p->fd, ev) == 0)
		p->watch_events = ev;
}

void net_watch(struct net_pair *p, bool on)
{
	p->watching = on && p->enabled && !p->fd_dead;
	net_watch_update(p);
}

ssize_t net_backend_recv(struct net_pair *p, const struct iovec *iov,
			 unsigned int n)
{
	struct net_backend *nb = p->net->nb;

	return nb->ops->recv(nb, p->index, iov, n);
}

int net_backend_send(struct net_pair *p, const struct iovec *iov,
		     unsigned int n)
{
	struct net_backend *nb = p->net->nb;
	int ret = nb->ops->send(nb, p->index, iov, n);

	if (ret == -EAGAIN) {
		/* Hold the frame; the fd's EPOLLOUT brings it back. */
		p->tx_blocked = true;
		net_watch_update(p);
	}
	return ret;
}

/*
 * The end of a transmit batch, or room again (EPOLLOUT): a backend that
 * gathers frames (a stream) writes them now; what it cannot write yet
 * waits for EPOLLOUT.  Returns the flush op's answer (0: all written).
 */
int net_backend_flush(struct net_pair *p)
{
	struct net_backend *nb = p->net->nb;
	int ret;

	if (!nb->ops->flush || p->fd_dead)
		return 0;
	ret = nb->ops->flush(nb, p->index);
	if (ret > 0 && !p->tx_blocked) {
		p->tx_blocked = true;
		net_watch_update(p);
	} else if (ret < 0) {
		vm_warn(p->net->dev.vm, "%s: transmit: %s; link down",
			p->net->dev.vdev.name, strerror(-ret));
		net_backend_dead(p);
	}
	return ret;
}

/*
 * The backend broke (a tap gone, the user-mode network process dead):
 * this pair stops, and the guest sees its link go down.
 */
void net_backend_dead(struct net_pair *p)
{
	struct virtio_net *net = p->net;

	p->fd_dead = true;
	p->tx_blocked = false;
	net_watch(p, false);
	if (__atomic_exchange_n(&net->config.status, 0, __ATOMIC_RELAXED) &
	    VIRTIO_NET_S_LINK_UP && net->dev.tr)
		net->dev.tr->signal_config(&net->dev);
}

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
	bool work = virtio_queue_poll(p->txq);

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
	/* The ring first: the kicks are then watched by it (aio.h). */
	ret = net_tx_ring_init(p);
	if (!ret)
		ret = virtio_queue_attach(&net->dev, 2 * i, p->thread);
	if (!ret)
		ret = virtio_queue_attach(&net->dev, 2 * i + 1, p->thread);
	/* Watched from the first receive kick on. */
	if (!ret)
		ret = iothread_add(p->thread, p->fd, 0, net_rx_ready, p);
	if (!ret)
		ret = iothread_add_poller(p->thread, net_poll, p);
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
	net->lowrate = ctl;
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

/* The backend's messages (passt's stderr), a line each, on the low-rate thread. */
static void net_backend_log(void *opaque, uint32_t events)
{
	struct virtio_net *net = opaque;
	char buf[1024], *line, *nl;
	ssize_t r;

	(void)events;
	r = read(net->nb->log_fd, buf, sizeof(buf) - 1);
	if (r <= 0) {
		if (r == 0 || errno != EAGAIN)	/* it closed: it ended */
			iothread_watch(net->lowrate, net->nb->log_fd, 0);
		return;
	}
	buf[r] = '\0';
	for (line = buf; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (*line)
			vm_warn(net->dev.vm, "%s: %s: %s", net->dev.vdev.name,
				net->nb->ops->name, line);
		if (!nl)
			break;
	}
}

static int net_create_one(struct machine *m, unsigned int index, char *err,
			  size_t errlen)
{
	struct virtio_device *d = NULL;
	struct net_backend *nb;
	struct iothread *lowrate;
	struct net_spec spec;
	uint8_t mac[NET_MAC_LEN];
	char what[64];
	unsigned int nq;
	int ret;

	ret = net_spec_parse(m->cfg->nnets ? m->cfg->nets[index] : "mode=user",
			     &spec, err, errlen);
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
	/* Named now: a failed creation frees nb with the device. */
	snprintf(what, sizeof(what), "virtio-net on %s", nb->ifname);
	ret = virtio_net_create(m->vm, nb, index, mac, lowrate, &d);
	if (!ret && nb->log_fd >= 0)
		ret = iothread_add(lowrate, nb->log_fd, EPOLLIN, net_backend_log,
				   to_net(d));
	ret = virtio_device_finish(d, ret, what, err, errlen);
	if (ret)
		return ret;
	vm_info(m->vm, "net%u: %s %s%s, guest MAC %02x:%02x:%02x:%02x:%02x:%02x, %u queue pair(s), MTU %u, receive offloads%s%s%s%s%s",
		index, nb->ops->name, nb->ifname, nb->created ? " (created)" : "", mac[0],
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
	return m->cfg->nnets || !m->vm->default_user_net ? 0 :
	       net_create_one(m, 0, err, errlen);
}

/* -n SPEC: lkvm_config.nets. */
const struct device_type virtio_net_type = {
	.name = "net",
	.create = net_create_all,
};
