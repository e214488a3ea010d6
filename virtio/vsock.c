/*
 * vsock.c - the virtio-vsock device (virtio 1.2, 5.10): receive,
 * transmit and event queues on one I/O thread of its own ("vsock0-q0"),
 * which also sleeps on the connection engine's host sockets (one epoll
 * fd in its set; see vsock.h for the engine and vsock_uds.c for the
 * host mapping).
 *
 * Threads: the queue thread owns the engine and the held receive chains.
 * vCPU threads read the config (the guest CID, fixed) and reset the
 * device with the thread paused.  lkvm_vsock_connect() runs on the
 * embedder's thread and reaches the engine only through its hand-off.
 */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lkvm/lib/util.h"
#include "lkvm/machine.h"
#include "lkvm/virtio/device.h"
#include "lkvm/virtio/vsock.h"
#include "lkvm/vm.h"

#define VSOCK_QUEUE_SIZE	256
#define VSOCK_RXQ		0
#define VSOCK_TXQ		1
#define VSOCK_EVQ		2

struct virtio_vsock {
	struct virtio_device dev;
	struct vsock vs;
	uint64_t config_cid;		/* le64, the config space */
	/*
	 * Receive chains taken but not filled yet: held[] (slot numbers,
	 * oldest at held_head) and the free slots, stacked at the front of
	 * free_slots[] (the first VSOCK_RX_BATCH - nheld of them).
	 */
	struct vq_elem rx[VSOCK_RX_BATCH];
	struct iovec rx_iov[VSOCK_RX_BATCH][64];
	unsigned int held[VSOCK_RX_BATCH], held_head, nheld;
	unsigned int free_slots[VSOCK_RX_BATCH];
	/* A batch of transmit chains, taken together (vsock_tx_many). */
	struct vq_elem tx[VSOCK_TX_BATCH];
	struct iovec tx_iov[VSOCK_TX_BATCH][64];
};

static struct virtio_vsock *to_vsock(struct virtio_device *d)
{
	return container_of(d, struct virtio_vsock, dev);
}

/* Takes receive chains until VSOCK_RX_BATCH are held (or none left). */
static void vsock_rx_hold(struct virtio_vsock *v, struct virtio_queue *q)
{
	while (v->nheld < VSOCK_RX_BATCH) {
		unsigned int slot = v->free_slots[VSOCK_RX_BATCH - 1 - v->nheld];
		struct vq_elem *e = &v->rx[slot];

		e->iov = v->rx_iov[slot];
		e->max_iov = ARRAY_SIZE(v->rx_iov[slot]);
		if (virtio_queue_take(q, e) <= 0)
			return;		/* the guest's next kick */
		if (e->nout || e->in_bytes < VSOCK_HDR_LEN) {
			virtio_queue_complete(q, e, 0);
			virtio_queue_count_error(q);
			continue;
		}
		v->held[(v->held_head + v->nheld++) % VSOCK_RX_BATCH] = slot;
	}
}

/*
 * Fills receive chains while the engine has packets for the guest; the
 * chains it did not need stay held, in order, for the next round.
 */
static void vsock_rx_drain(struct virtio_vsock *v, struct virtio_queue *q)
{
	struct vsock_pkt b[VSOCK_RX_BATCH];
	uint32_t lens[VSOCK_RX_BATCH];
	unsigned int i, n;

	while (vsock_rx_pending(&v->vs)) {
		vsock_rx_hold(v, q);
		for (i = 0; i < v->nheld; i++) {
			struct vq_elem *e = &v->rx[v->held[(v->held_head + i) %
							    VSOCK_RX_BATCH]];

			b[i] = (struct vsock_pkt){ e->iov, e->nin };
		}
		n = v->nheld ? vsock_rx_many(&v->vs, b, v->nheld, lens) : 0;
		if (!n)
			return;
		for (i = 0; i < n; i++) {
			unsigned int slot = v->held[v->held_head];

			virtio_queue_complete(q, &v->rx[slot], lens[i]);
			v->held_head = (v->held_head + 1) % VSOCK_RX_BATCH;
			v->nheld--;
			v->free_slots[VSOCK_RX_BATCH - 1 - v->nheld] = slot;
		}
	}
}

static void vsock_tx_drain(struct virtio_vsock *v, struct virtio_queue *q)
{
	struct vsock_pkt pkts[VSOCK_TX_BATCH];
	unsigned int n, i;

	do {
		for (n = 0; n < VSOCK_TX_BATCH; n++) {
			struct vq_elem *e = &v->tx[n];

			e->iov = v->tx_iov[n];
			e->max_iov = ARRAY_SIZE(v->tx_iov[n]);
			if (virtio_queue_take(q, e) <= 0)
				break;
			pkts[n] = (struct vsock_pkt){ e->iov, e->nout };
		}
		vsock_tx_many(&v->vs, pkts, n);
		for (i = 0; i < n; i++)
			virtio_queue_complete(q, &v->tx[i], 0);
	} while (n == VSOCK_TX_BATCH);
	/* Responses, resets and credit the packets called for. */
	if (vsock_rx_pending(&v->vs))
		virtio_queue_service(&v->dev.queues[VSOCK_RXQ]);
}

static void vsock_drain(struct virtio_device *d, struct virtio_queue *q)
{
	struct virtio_vsock *v = to_vsock(d);

	if (q->index == VSOCK_RXQ)
		vsock_rx_drain(v, q);
	else if (q->index == VSOCK_TXQ)
		vsock_tx_drain(v, q);
	/* The event queue's buffers wait: lkvm sends no transport events. */
}

/* The engine's epoll fd: host sockets moved. */
static void vsock_host_ready(void *opaque, uint32_t events)
{
	struct virtio_vsock *v = opaque;

	(void)events;
	vsock_host_events(&v->vs);
	if (vsock_rx_pending(&v->vs))
		virtio_queue_service(&v->dev.queues[VSOCK_RXQ]);
}

/*
 * Busy-poll step (the adaptive window before the thread sleeps): the
 * guest's next packets, or receive buffers for what waits, without
 * waiting for a kick.
 */
static bool vsock_poll(void *opaque)
{
	struct virtio_vsock *v = opaque;
	struct virtio_queue *txq = &v->dev.queues[VSOCK_TXQ];
	struct virtio_queue *rxq = &v->dev.queues[VSOCK_RXQ];
	uint16_t tx_taken = txq->vq.last_avail, rx_taken = rxq->vq.last_avail;

	if (txq->vq.size && vq_has_work(&txq->vq))
		virtio_queue_service(txq);
	if (rxq->vq.size && vsock_rx_pending(&v->vs) && vq_has_work(&rxq->vq))
		virtio_queue_service(rxq);
	return txq->vq.last_avail != tx_taken || rxq->vq.last_avail != rx_taken;
}

static void vsock_config_read(struct virtio_device *d, uint32_t off,
			      void *data, unsigned int len)
{
	memcpy(data, (uint8_t *)&to_vsock(d)->config_cid + off, len);
}

/* The held receive chains are void (their ring is going). */
static void vsock_rx_forget(struct virtio_vsock *v)
{
	unsigned int i;

	v->nheld = v->held_head = 0;
	for (i = 0; i < VSOCK_RX_BATCH; i++)
		v->free_slots[i] = i;
}

static void vsock_dev_reset(struct virtio_device *d)
{
	struct virtio_vsock *v = to_vsock(d);

	vsock_rx_forget(v);
	vsock_reset(&v->vs);
}

static void vsock_queue_reset(struct virtio_device *d, struct virtio_queue *q)
{
	if (q->index == VSOCK_RXQ)
		vsock_rx_forget(to_vsock(d));
}

static void vsock_queue_stats(struct virtio_device *d, struct virtio_queue *q,
			      struct lkvm_queue_stats *st)
{
	struct vsock *vs = &to_vsock(d)->vs;

	/* The engine's drops and refusals show on the transmit queue. */
	if (q->index == VSOCK_TXQ)
		st->errors += OWNER_READ(vs->cnt.bad_packets) +
			      OWNER_READ(vs->cnt.resets_dropped);
}

static void vsock_free(struct virtio_device *d)
{
	struct virtio_vsock *v = to_vsock(d);

	vsock_fini(&v->vs);
	free(v);
}

static const struct virtio_device_ops virtio_vsock_ops = {
	.name = "vsock",
	.device_id = VIRTIO_ID_VSOCK,
	.nqueues = 3,
	.queue_max = VSOCK_QUEUE_SIZE,
	.config_size = sizeof(uint64_t),
	.pci_class = 0x078000,		/* communication controller, other */
	.host_sockets = true,
	.config_read = vsock_config_read,
	.drain = vsock_drain,
	.reset = vsock_dev_reset,
	.queue_reset = vsock_queue_reset,
	.queue_stats = vsock_queue_stats,
	.free = vsock_free,
};

struct vsock_opts {
	uint64_t cid;
	const char *uds;
	int listen_fd;
};

/* "CID[,uds=PATH][,fd=N]" (cid=CID too); o->uds points into copy. */
static int vsock_parse(char *copy, struct vsock_opts *o, char *err,
		       size_t errlen)
{
	char *opt, *next, *val, *end;
	bool have_cid = false;
	unsigned long long n;

	o->uds = NULL;
	o->listen_fd = -1;
	for (opt = copy; opt && *opt; opt = next) {
		next = strchr(opt, ',');
		if (next)
			*next++ = '\0';
		val = strchr(opt, '=');
		if (val)
			*val++ = '\0';
		if (!val || !strcmp(opt, "cid")) {
			errno = 0;
			n = strtoull(val ? val : opt, &end, 10);
			if (errno || *end || end == (val ? val : opt) ||
			    n < 3 || n >= UINT32_MAX)
				return input_errf(err, errlen, -EINVAL,
						  "vsock: bad guest CID '%s' (3 to 4294967294)",
						  val ? val : opt);
			o->cid = n;
			have_cid = true;
		} else if (!strcmp(opt, "uds") && *val) {
			o->uds = val;
		} else if (!strcmp(opt, "fd")) {
			errno = 0;
			n = strtoull(val, &end, 10);
			if (errno || *end || end == val || n > INT32_MAX)
				return input_errf(err, errlen, -EINVAL,
						  "vsock: bad fd '%s'", val);
			o->listen_fd = n;
		} else {
			return input_errf(err, errlen, -EINVAL,
					  "vsock: bad option '%s' (CID[,uds=PATH][,fd=N])",
					  opt);
		}
	}
	if (!have_cid)
		return input_errf(err, errlen, -EINVAL,
				  "vsock: a guest CID is needed (--vsock CID[,uds=PATH])");
	if (o->uds) {
		struct stat st;

		if (!vsock_uds_path_fits(o->uds))
			return input_errf(err, errlen, -ENAMETOOLONG,
					  "vsock: uds path %s is too long", o->uds);
		if (lstat(o->uds, &st) == 0 && !S_ISSOCK(st.st_mode))
			return input_errf(err, errlen, -EEXIST,
					  "vsock: %s is in use (not a socket)",
					  o->uds);
	}
	return 0;
}

static int vsock_check(const char *options, char *err, size_t errlen)
{
	char *copy = strdup(options);
	struct vsock_opts o;
	int ret;

	if (!copy)
		return errf(err, errlen, -ENOMEM, "out of memory");
	ret = vsock_parse(copy, &o, err, errlen);
	free(copy);
	return ret;
}

int virtio_vsock_create(struct lkvm *vm, uint64_t cid, const char *uds,
			int listen_fd, struct virtio_device **out, char *err,
			size_t errlen)
{
	struct virtio_vsock *v = calloc(1, sizeof(*v));
	int ret;

	*out = NULL;
	if (!v)
		return errf(err, errlen, -ENOMEM, "out of memory");
	ret = vsock_init(&v->vs, cid, uds, listen_fd, err, errlen);
	if (ret) {
		free(v);
		return ret;
	}
	v->config_cid = htole64(cid);
	vsock_rx_forget(v);
	*out = &v->dev;
	ret = virtio_device_init(&v->dev, vm, &virtio_vsock_ops, "vsock0", 0);
	if (!ret)
		ret = virtio_device_threads(&v->dev, 1);
	for (unsigned int i = 0; !ret && i < v->dev.nqueues; i++)
		ret = virtio_queue_attach(&v->dev, i, &v->dev.threads[0]);
	if (!ret)
		ret = iothread_add(&v->dev.threads[0], v->vs.epfd, EPOLLIN,
				   vsock_host_ready, v);
	if (!ret)
		ret = iothread_add_poller(&v->dev.threads[0], vsock_poll, v);
	if (ret)
		errf(err, errlen, ret, "virtio-vsock: %s", strerror(-ret));
	return ret;
}

static int vsock_create(struct machine *m, char *err, size_t errlen)
{
	const char *options = machine_device_spec(m->cfg, "vsock", 0);
	struct virtio_device *d = NULL;
	struct vsock_opts o;
	char *copy;
	int ret;

	if (!options)
		return 0;
	if (machine_device_spec(m->cfg, "vsock", 1))
		return input_errf(err, errlen, -EINVAL,
				  "only one vsock device");
	copy = strdup(options);
	if (!copy)
		return errf(err, errlen, -ENOMEM, "out of memory");
	ret = vsock_parse(copy, &o, err, errlen);
	if (!ret)
		ret = virtio_vsock_create(m->vm, o.cid, o.uds, o.listen_fd, &d,
					  err, errlen);
	free(copy);
	if (ret && !d)
		return ret;
	return virtio_device_finish(d, ret, "virtio-vsock", err, errlen);
}

/* --vsock CID[,uds=PATH] */
const struct device_type virtio_vsock_type = {
	.name = "vsock",
	.help = "add a virtio-vsock device: guest CID, host Unix socket uds=PATH (CONNECT PORT on PATH reaches guest ports; guests reach PATH_PORT)",
	.arg = DEVICE_ARG_REQUIRED,
	.check = vsock_check,
	.create = vsock_create,
};

/* --- the library's interface --- */

static struct virtio_vsock *vsock_of(struct lkvm *vm)
{
	struct vm_device *dev = vm_device_find(vm, "vsock0");

	return dev ? to_vsock(container_of(dev, struct virtio_device, vdev)) :
		     NULL;
}

const char *lkvm_vsock_path(struct lkvm *vm)
{
	struct virtio_vsock *v = vsock_of(vm);

	return v && v->vs.own_listener ? v->vs.uds : NULL;
}

/* Reads the device's answer line ("OK PORT\n") within the deadline. */
static int vsock_read_answer(int fd, uint64_t deadline)
{
	char line[VSOCK_LINE_MAX];
	size_t n = 0;

	while (n < sizeof(line) - 1) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint64_t now = now_ns();
		ssize_t r;

		if (now >= deadline)
			return -ETIMEDOUT;
		if (poll(&p, 1, (deadline - now) / 1000000 + 1) < 0 &&
		    errno != EINTR)
			return -errno;
		r = recv(fd, line + n, 1, MSG_DONTWAIT);
		if (r == 0)
			return -ECONNREFUSED;
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -errno;
		}
		if (line[n++] == '\n')
			return strncmp(line, "OK ", 3) ? -EPROTO : 0;
	}
	return -EPROTO;
}

int vsock_dial_guest(struct vsock *vs, uint32_t port, int timeout_ms)
{
	char req[VSOCK_LINE_MAX];
	int sv[2], n, ret;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	n = snprintf(req, sizeof(req), "CONNECT %u\n", port);
	if (send(sv[0], req, n, MSG_NOSIGNAL) != n) {
		ret = -errno;
		close(sv[0]);
		close(sv[1]);
		return ret;
	}
	ret = vsock_handoff(vs, sv[1]);
	if (ret) {
		close(sv[0]);
		close(sv[1]);
		return ret;
	}
	ret = vsock_read_answer(sv[0], now_ns() + (uint64_t)(timeout_ms < 0 ?
				5000 : timeout_ms) * 1000000);
	if (ret) {
		close(sv[0]);
		return ret;
	}
	return sv[0];
}

struct vsock *vsock_of_device(struct virtio_device *d)
{
	return &to_vsock(d)->vs;
}

int lkvm_vsock_connect(struct lkvm *vm, uint32_t port, int timeout_ms)
{
	struct virtio_vsock *v = vsock_of(vm);

	return v ? vsock_dial_guest(&v->vs, port, timeout_ms) : -ENODEV;
}
