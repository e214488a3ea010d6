/*
 * vsock_conn.c - the virtio-vsock connection engine: the guest's packets
 * in (vsock_tx), packets for the guest out (vsock_rx), each connection's
 * state and its credit in both directions (virtio 1.2, 5.10.6).  All of
 * it runs on the device's I/O thread (vsock.h).
 *
 * Credit.  Guest to host: lkvm offers VSOCK_BUF_ALLOC bytes a
 * connection; what the host socket does not take at once waits in the
 * connection's buffer, so the guest's credit bounds that buffer, and a
 * guest that overruns it is reset.  fwd_cnt counts what the host socket
 * took; the guest hears of it in every packet, and in a CREDIT_UPDATE
 * once it believes less than half is free.  Host to guest: a host
 * socket is read only as far as the guest's credit and the receive
 * buffer at hand allow, straight into guest memory, so nothing is held
 * in lkvm for a guest that does not read: the host writer blocks.
 *
 * Connections are freed only once no entry point of the engine is
 * running (depth 0): a connection reset while an epoll batch still
 * names it is marked dead and skipped.
 */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "lkvm/lib/util.h"
#include "lkvm/virtio/device.h"
#include "lkvm/virtio/vsock.h"

#define VSOCK_BUF_MIN		(16 * 1024)

static unsigned int conn_bucket(uint32_t local, uint32_t peer)
{
	return (local * 2654435761u ^ peer * 40503u) % VSOCK_HASH;
}

struct vconn *vsock_conn_find(struct vsock *vs, uint32_t local,
			      uint32_t peer)
{
	struct vconn *c;

	for (c = vs->hash[conn_bucket(local, peer)]; c; c = c->hnext)
		if (c->local_port == local && c->peer_port == peer)
			return c;
	return NULL;
}

void vsock_conn_hash(struct vsock *vs, struct vconn *c)
{
	unsigned int b = conn_bucket(c->local_port, c->peer_port);

	c->hnext = vs->hash[b];
	vs->hash[b] = c;
	c->hashed = true;
}

static void conn_unhash(struct vsock *vs, struct vconn *c)
{
	struct vconn **pp = &vs->hash[conn_bucket(c->local_port, c->peer_port)];

	for (; *pp; pp = &(*pp)->hnext)
		if (*pp == c) {
			*pp = c->hnext;
			break;
		}
	c->hashed = false;
}

void vsock_work(struct vsock *vs, struct vconn *c)
{
	if (c->on_work || c->dead)
		return;
	c->wprev = vs->work_tail;
	c->wnext = NULL;
	if (vs->work_tail)
		vs->work_tail->wnext = c;
	else
		vs->work_head = c;
	vs->work_tail = c;
	c->on_work = true;
}

static void work_remove(struct vsock *vs, struct vconn *c)
{
	if (!c->on_work)
		return;
	if (c->wprev)
		c->wprev->wnext = c->wnext;
	else
		vs->work_head = c->wnext;
	if (c->wnext)
		c->wnext->wprev = c->wprev;
	else
		vs->work_tail = c->wprev;
	c->on_work = false;
}

struct vconn *vsock_conn_new(struct vsock *vs, int fd)
{
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
	};
	struct vconn *c;

	if (vs->nconns >= VSOCK_MAX_CONNS)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->fd = fd;
	ev.data.ptr = c;
	if (epoll_ctl(vs->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		free(c);
		return NULL;
	}
	vs->nconns++;
	c->anext = vs->all;
	if (vs->all)
		vs->all->aprev = c;
	vs->all = c;
	return c;
}

void vsock_conn_kill(struct vsock *vs, struct vconn *c)
{
	if (c->dead)
		return;
	if (c->hashed)
		conn_unhash(vs, c);
	work_remove(vs, c);
	c->dead = true;
	epoll_ctl(vs->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	vs->nconns--;
	if (c->aprev)
		c->aprev->anext = c->anext;
	else
		vs->all = c->anext;
	if (c->anext)
		c->anext->aprev = c->aprev;
	c->dnext = vs->dead;
	vs->dead = c;
	if (!vs->depth) {	/* not inside the engine: free it now */
		vsock_enter(vs);
		vsock_leave(vs);
	}
}

/* The sweep runs twice a deadline's length at most after it passed. */
void vsock_set_deadline(struct vsock *vs, struct vconn *c, unsigned int ms)
{
	struct itimerspec t = { .it_interval.tv_nsec = 250000000,
				.it_value.tv_nsec = 250000000 };

	c->deadline_ns = now_ns() + (uint64_t)ms * 1000000;
	if (!vs->timer_armed && timerfd_settime(vs->timer_fd, 0, &t, NULL) == 0)
		vs->timer_armed = true;
}

/* Resets what is past its deadline; disarms the timer once none is left. */
static void vsock_sweep(struct vsock *vs)
{
	static const struct itimerspec off;
	struct vconn *c, *next;
	uint64_t now = now_ns(), v;
	bool more = false;

	if (read(vs->timer_fd, &v, sizeof(v)) < 0) {
		/* nothing expired: a sweep costs little anyway */
	}
	for (c = vs->all; c; c = next) {
		next = c->anext;
		if (!c->deadline_ns)
			continue;
		if (c->deadline_ns <= now)
			vsock_reset_conn(vs, c);
		else
			more = true;
	}
	if (!more && timerfd_settime(vs->timer_fd, 0, &off, NULL) == 0)
		vs->timer_armed = false;
}

void vsock_enter(struct vsock *vs)
{
	vs->depth++;
}

void vsock_leave(struct vsock *vs)
{
	struct vconn *c;

	if (--vs->depth)
		return;
	while ((c = vs->dead)) {
		vs->dead = c->dnext;
		free(c->buf);
		free(c);
	}
}

void vsock_owe_rst(struct vsock *vs, uint32_t local, uint32_t peer)
{
	unsigned int i;

	if (vs->rst_n == VSOCK_RST_QUEUE) {
		OWNER_ADD(vs->cnt.resets_dropped, 1);
		return;
	}
	i = (vs->rst_head + vs->rst_n++) % VSOCK_RST_QUEUE;
	vs->rsts[i].local_port = local;
	vs->rsts[i].peer_port = peer;
}

void vsock_reset_conn(struct vsock *vs, struct vconn *c)
{
	if (c->dead)
		return;
	if (c->state != VC_HOST_LINE)
		vsock_owe_rst(vs, c->local_port, c->peer_port);
	vsock_conn_kill(vs, c);
}

static void owe(struct vsock *vs, struct vconn *c, unsigned int what)
{
	c->owed |= what;
	vsock_work(vs, c);
}

/* The room the guest believes it has, from our last packet. */
static uint32_t told_free(const struct vconn *c)
{
	return VSOCK_BUF_ALLOC - (c->rx_cnt - c->fwd_told);
}

/* The guest's credit for host-to-guest bytes. */
static uint32_t peer_credit(const struct vconn *c)
{
	uint32_t used = c->tx_cnt - c->peer_fwd_cnt;

	return used >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - used;
}

static void forwarded(struct vsock *vs, struct vconn *c, uint32_t n)
{
	c->fwd_cnt += n;
	if (n && told_free(c) < VSOCK_BUF_ALLOC / 2)
		owe(vs, c, VC_OWE_CREDIT);
}

/* As much of iov as the host socket takes now: bytes, or -errno. */
static ssize_t host_send(int fd, const struct iovec *iov, unsigned int n)
{
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = n };
	ssize_t r;

	do
		r = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EAGAIN ? 0 : -errno;
	return r;
}

/* The guest closed both ways and all its data went: a reset closes. */
static void conn_maybe_closed(struct vsock *vs, struct vconn *c)
{
	if (c->buf_len || c->dead)
		return;
	if (c->guest_no_send && c->guest_no_rcv) {
		vsock_reset_conn(vs, c);
		return;
	}
	if (c->guest_no_send)
		shutdown(c->fd, SHUT_WR);
}

void vsock_flush_host(struct vsock *vs, struct vconn *c)
{
	while (c->buf_len && !c->dead) {
		struct iovec v = { c->buf + c->buf_off, c->buf_len };
		ssize_t r = host_send(c->fd, &v, 1);

		if (r < 0) {
			vsock_reset_conn(vs, c);
			return;
		}
		if (!r)
			return;		/* the next EPOLLOUT edge */
		c->buf_off += r;
		c->buf_len -= r;
		forwarded(vs, c, r);
	}
	c->buf_off = 0;
	if (c->buf_cap > 4 * VSOCK_BUF_MIN) {	/* idle: give it back */
		free(c->buf);
		c->buf = NULL;
		c->buf_cap = 0;
	}
	conn_maybe_closed(vs, c);
}

/* Keeps n more bytes from iov (from skip on) for the host socket. */
static bool buf_append(struct vconn *c, const struct iovec *iov,
		       unsigned int n, size_t skip, uint32_t len)
{
	uint32_t need = c->buf_len + len;

	if (c->buf_off + need > c->buf_cap && c->buf_off) {
		memmove(c->buf, c->buf + c->buf_off, c->buf_len);
		c->buf_off = 0;
	}
	if (need > c->buf_cap) {
		uint32_t cap = MAX(MAX(need, 2 * c->buf_cap), VSOCK_BUF_MIN);
		uint8_t *b = realloc(c->buf, MIN(cap, VSOCK_BUF_ALLOC));

		if (!b)
			return false;
		c->buf = b;
		c->buf_cap = MIN(cap, VSOCK_BUF_ALLOC);
	}
	iov_to_buf(iov, n, skip, c->buf + c->buf_off + c->buf_len, len);
	c->buf_len += len;
	return true;
}

/* An RW packet's len bytes of payload, after the header in iov. */
static void conn_rw(struct vsock *vs, struct vconn *c,
		    const struct iovec *iov, unsigned int n, uint32_t len)
{
	struct iovec part[VIRTIO_QUEUE_MAX_IOV];
	uint32_t sent = 0;

	if (c->state != VC_ESTABLISHED || c->guest_no_send ||
	    len > VSOCK_BUF_ALLOC - (c->rx_cnt - c->fwd_cnt)) {
		/* Data before the handshake, after SHUTDOWN, or past its credit. */
		OWNER_ADD(vs->cnt.bad_packets, 1);
		vsock_reset_conn(vs, c);
		return;
	}
	c->rx_cnt += len;
	if (!c->buf_len) {
		unsigned int k = iov_slice(part, ARRAY_SIZE(part), iov, n,
					   VSOCK_HDR_LEN, len);
		ssize_t r = host_send(c->fd, part, k);

		if (r < 0) {
			vsock_reset_conn(vs, c);
			return;
		}
		sent = r;
		forwarded(vs, c, sent);
	}
	if (sent < len &&
	    !buf_append(c, iov, n, VSOCK_HDR_LEN + sent, len - sent))
		vsock_reset_conn(vs, c);
}

/* A guest REQUEST for host port h->dst_port: dial PATH_port. */
static void conn_dial(struct vsock *vs, const struct vsock_hdr *h)
{
	struct vconn *c;
	int fd;

	fd = vs->uds && vs->nconns < VSOCK_MAX_CONNS ?
	     vsock_uds_dial(vs, h->dst_port) : -ECONNREFUSED;
	c = fd >= 0 ? vsock_conn_new(vs, fd) : NULL;
	if (!c) {
		if (fd >= 0)
			close(fd);
		OWNER_ADD(vs->cnt.refused, 1);
		vsock_owe_rst(vs, h->dst_port, h->src_port);
		return;
	}
	c->local_port = h->dst_port;
	c->peer_port = h->src_port;
	c->state = VC_ESTABLISHED;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	vsock_conn_hash(vs, c);
	OWNER_ADD(vs->cnt.conns, 1);
	owe(vs, c, VC_OWE_RESPONSE);
}

/* The guest accepted a host client's connection: tell the client. */
static void conn_accepted(struct vsock *vs, struct vconn *c)
{
	char line[24];
	int n = snprintf(line, sizeof(line), "OK %u\n", c->local_port);

	/* A fresh socket's buffer is empty: all of it goes, or it is gone. */
	if (send(c->fd, line, n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
		vsock_reset_conn(vs, c);
		return;
	}
	c->state = VC_ESTABLISHED;
	c->deadline_ns = 0;
	OWNER_ADD(vs->cnt.conns, 1);
}

static void conn_shutdown(struct vsock *vs, struct vconn *c, uint32_t flags)
{
	if (flags & VSOCK_SHUTDOWN_RCV)
		c->guest_no_rcv = true;
	if (flags & VSOCK_SHUTDOWN_SEND)
		c->guest_no_send = true;
	conn_maybe_closed(vs, c);
}

void vsock_hdr_from_le(struct vsock_hdr *h)
{
	h->src_cid = le64toh(h->src_cid);
	h->dst_cid = le64toh(h->dst_cid);
	h->src_port = le32toh(h->src_port);
	h->dst_port = le32toh(h->dst_port);
	h->len = le32toh(h->len);
	h->type = le16toh(h->type);
	h->op = le16toh(h->op);
	h->flags = le32toh(h->flags);
	h->buf_alloc = le32toh(h->buf_alloc);
	h->fwd_cnt = le32toh(h->fwd_cnt);
}

static size_t pkt_bytes(const struct vsock_pkt *p)
{
	return iov_total(p->iov, p->n);
}

/* A guest packet's header, in host order, and the packet's length. */
static bool read_hdr(const struct vsock_pkt *p, struct vsock_hdr *h,
		     size_t *total)
{
	*total = pkt_bytes(p);
	if (iov_to_buf(p->iov, p->n, 0, h, sizeof(*h)) < sizeof(*h))
		return false;
	vsock_hdr_from_le(h);
	return true;
}

static void vsock_tx_one(struct vsock *vs, const struct iovec *iov,
			 unsigned int n)
{
	const struct vsock_pkt p = { iov, n };
	struct vsock_hdr h;
	struct vconn *c;
	size_t total;

	if (!read_hdr(&p, &h, &total)) {
		OWNER_ADD(vs->cnt.bad_packets, 1);
		return;
	}
	/* Misaddressed: no answer, it would go nowhere. */
	if (h.src_cid != vs->guest_cid || h.dst_cid != VSOCK_HOST_CID) {
		OWNER_ADD(vs->cnt.bad_packets, 1);
		return;
	}
	c = vsock_conn_find(vs, h.dst_port, h.src_port);
	if (h.len > total - sizeof(h) || h.type != VSOCK_TYPE_STREAM ||
	    (h.len && h.op != VSOCK_OP_RW)) {
		OWNER_ADD(vs->cnt.bad_packets, 1);
		if (c)
			vsock_reset_conn(vs, c);
		else if (h.op != VSOCK_OP_RST)
			vsock_owe_rst(vs, h.dst_port, h.src_port);
		return;
	}
	if (!c && h.op == VSOCK_OP_REQUEST) {
		conn_dial(vs, &h);
		return;
	}
	if (!c) {
		/* A packet of a connection that is gone: reset, not kept. */
		if (h.op != VSOCK_OP_RST)
			vsock_owe_rst(vs, h.dst_port, h.src_port);
		return;
	}
	c->peer_buf_alloc = h.buf_alloc;
	c->peer_fwd_cnt = h.fwd_cnt;
	switch (h.op) {
	case VSOCK_OP_RESPONSE:
		if (c->state == VC_CONNECTING && !(c->owed & VC_OWE_REQUEST))
			conn_accepted(vs, c);
		else
			goto bad;
		break;
	case VSOCK_OP_RST:
		vsock_conn_kill(vs, c);
		return;
	case VSOCK_OP_SHUTDOWN:
		conn_shutdown(vs, c, h.flags);
		break;
	case VSOCK_OP_RW:
		conn_rw(vs, c, iov, n, h.len);
		break;
	case VSOCK_OP_CREDIT_UPDATE:
		c->credit_asked = false;
		break;
	case VSOCK_OP_CREDIT_REQUEST:
		owe(vs, c, VC_OWE_CREDIT);
		break;
	default:		/* REQUEST on a live connection, unknown ops */
		goto bad;
	}
	if (!c->dead && c->readable && c->state == VC_ESTABLISHED)
		vsock_work(vs, c);
	return;
bad:
	OWNER_ADD(vs->cnt.bad_packets, 1);
	vsock_reset_conn(vs, c);
}

void vsock_tx(struct vsock *vs, const struct iovec *iov, unsigned int n)
{
	vsock_enter(vs);
	vsock_tx_one(vs, iov, n);
	vsock_leave(vs);
}

/*
 * p is an RW packet that the fast path may take: for an established
 * connection with nothing buffered, within its credit; its connection
 * and payload length, or NULL.
 */
static struct vconn *rw_fast(struct vsock *vs, const struct vsock_pkt *p,
			     uint32_t *len)
{
	struct vsock_hdr h;
	struct vconn *c;
	size_t total;

	if (!read_hdr(p, &h, &total))
		return NULL;
	if (h.src_cid != vs->guest_cid || h.dst_cid != VSOCK_HOST_CID ||
	    h.type != VSOCK_TYPE_STREAM || h.op != VSOCK_OP_RW || !h.len ||
	    h.len > total - sizeof(h))
		return NULL;
	c = vsock_conn_find(vs, h.dst_port, h.src_port);
	if (!c || c->state != VC_ESTABLISHED || c->guest_no_send ||
	    c->buf_len || h.len > VSOCK_BUF_ALLOC - (c->rx_cnt - c->fwd_cnt))
		return NULL;
	c->peer_buf_alloc = h.buf_alloc;
	c->peer_fwd_cnt = h.fwd_cnt;
	*len = h.len;
	return c;
}

/*
 * Packets in order.  A run of data packets for one connection goes to
 * its host socket in one sendmsg (a Linux guest sends at most 64 KiB a
 * packet): what the socket does not take is kept, packet by packet.
 */
void vsock_tx_many(struct vsock *vs, const struct vsock_pkt *p,
		   unsigned int n)
{
	struct iovec part[VSOCK_GATHER_IOV];
	uint32_t lens[VSOCK_TX_BATCH];
	unsigned int i = 0, j, k;

	vsock_enter(vs);
	while (i < n) {
		struct vconn *c = rw_fast(vs, &p[i], &lens[i]), *d;
		uint32_t total = 0, sent;
		ssize_t r;

		if (!c) {
			vsock_tx_one(vs, p[i].iov, p[i].n);
			i++;
			continue;
		}
		k = 0;
		for (j = i; j < n && j - i < VSOCK_TX_BATCH; j++) {
			if (j > i && ((d = rw_fast(vs, &p[j], &lens[j])) != c ||
				      total + lens[j] > VSOCK_BUF_ALLOC -
				      (c->rx_cnt - c->fwd_cnt)))
				break;
			if (k + p[j].n > ARRAY_SIZE(part))
				break;
			k += iov_slice(part + k, ARRAY_SIZE(part) - k, p[j].iov,
				       p[j].n, VSOCK_HDR_LEN, lens[j]);
			total += lens[j];
		}
		c->rx_cnt += total;
		r = host_send(c->fd, part, k);
		if (r < 0) {
			vsock_reset_conn(vs, c);
			i = j;
			continue;
		}
		sent = r;
		forwarded(vs, c, sent);
		/* The rest waits in the buffer, in order. */
		for (; i < j; i++) {
			uint32_t skip = MIN(sent, lens[i]);

			sent -= skip;
			if (skip < lens[i] && !c->dead &&
			    !buf_append(c, p[i].iov, p[i].n, VSOCK_HDR_LEN + skip,
					lens[i] - skip))
				vsock_reset_conn(vs, c);
		}
	}
	vsock_leave(vs);
}

/* Writes a header for the guest into the buffer's first bytes. */
static void put_hdr(struct vsock *vs, const struct iovec *iov, unsigned int n,
		    uint32_t local, uint32_t peer, uint16_t op, uint32_t len,
		    uint32_t flags, struct vconn *c)
{
	struct vsock_hdr h = {
		.src_cid = htole64(VSOCK_HOST_CID),
		.dst_cid = htole64(vs->guest_cid),
		.src_port = htole32(local),
		.dst_port = htole32(peer),
		.len = htole32(len),
		.type = htole16(VSOCK_TYPE_STREAM),
		.op = htole16(op),
		.flags = htole32(flags),
	};

	if (c) {
		h.buf_alloc = htole32(VSOCK_BUF_ALLOC);
		h.fwd_cnt = htole32(c->fwd_cnt);
		c->fwd_told = c->fwd_cnt;
		c->owed &= ~VC_OWE_CREDIT;	/* this one tells it */
	}
	buf_to_iov(iov, n, 0, &h, sizeof(h));
}

/* A control packet c owes, into the buffer. */
static uint32_t rx_control(struct vsock *vs, struct vconn *c,
			   const struct iovec *iov, unsigned int n)
{
	static const struct {
		unsigned int bit;
		uint16_t op;
	} order[] = {
		{ VC_OWE_REQUEST, VSOCK_OP_REQUEST },
		{ VC_OWE_RESPONSE, VSOCK_OP_RESPONSE },
		{ VC_OWE_CREDIT, VSOCK_OP_CREDIT_UPDATE },
		{ VC_OWE_CREDIT_REQ, VSOCK_OP_CREDIT_REQUEST },
		{ VC_OWE_SHUTDOWN, VSOCK_OP_SHUTDOWN },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(order); i++) {
		if (!(c->owed & order[i].bit))
			continue;
		c->owed &= ~order[i].bit;
		put_hdr(vs, iov, n, c->local_port, c->peer_port, order[i].op,
			0, order[i].op == VSOCK_OP_SHUTDOWN ? c->shut_flags : 0,
			c);
		return VSOCK_HDR_LEN;
	}
	return 0;
}

static bool conn_can_send(const struct vconn *c)
{
	return c->state == VC_ESTABLISHED && c->readable && !c->host_eof &&
	       !c->guest_no_rcv;
}

/*
 * Host data for c, read with one recvmsg straight into the receive
 * buffers after their headers, one packet per buffer: how many buffers
 * it filled (lens[] set), or 0 (nothing now; c may owe a packet).
 */
static unsigned int rx_data(struct vsock *vs, struct vconn *c,
			    const struct vsock_pkt *b, unsigned int nb,
			    uint32_t *lens)
{
	struct iovec part[VSOCK_GATHER_IOV];
	uint32_t caps[VSOCK_RX_BATCH], credit = peer_credit(c), total = 0;
	struct msghdr m = { .msg_iov = part };
	unsigned int i, used = 0, k = 0;
	ssize_t r;

	if (!credit) {
		if (!c->credit_asked) {
			c->credit_asked = true;
			owe(vs, c, VC_OWE_CREDIT_REQ);
		}
		return 0;
	}
	for (i = 0; i < nb && i < VSOCK_RX_BATCH && total < credit; i++) {
		size_t room = pkt_bytes(&b[i]) - VSOCK_HDR_LEN;
		uint32_t cap = MIN(MIN(room, (size_t)VSOCK_MAX_PAYLOAD),
				   (size_t)(credit - total));

		if (!cap || k + b[i].n > ARRAY_SIZE(part))
			break;
		k += iov_slice(part + k, ARRAY_SIZE(part) - k, b[i].iov, b[i].n,
			       VSOCK_HDR_LEN, cap);
		caps[i] = cap;
		total += cap;
		used = i + 1;
	}
	if (!used)		/* buffers with room for a header only */
		return 0;
	m.msg_iovlen = k;
	do
		r = recvmsg(c->fd, &m, MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	if (r > 0) {
		uint32_t left = r;

		c->tx_cnt += r;
		for (i = 0; i < used && left; i++) {
			uint32_t len = MIN(caps[i], left);

			put_hdr(vs, b[i].iov, b[i].n, c->local_port,
				c->peer_port, VSOCK_OP_RW, len, 0, c);
			lens[i] = VSOCK_HDR_LEN + len;
			left -= len;
		}
		/* Round robin: the others go first next time. */
		work_remove(vs, c);
		vsock_work(vs, c);
		return i;
	}
	c->readable = false;
	if (r == 0) {
		struct pollfd p = { .fd = c->fd };

		/* Closed, or only shut for writing?  (Once per connection.) */
		if (poll(&p, 1, 0) == 1 && (p.revents & POLLHUP))
			c->host_hup = true;
		c->host_eof = true;
		c->shut_flags = VSOCK_SHUTDOWN_SEND |
				(c->host_hup ? VSOCK_SHUTDOWN_RCV : 0);
		owe(vs, c, VC_OWE_SHUTDOWN);
		/* Both ways closed: the guest's RST ends it, or time does. */
		if (c->host_hup)
			vsock_set_deadline(vs, c, vs->close_timeout_ms);
	} else if (errno != EAGAIN) {
		vsock_reset_conn(vs, c);
	}
	return 0;
}

bool vsock_rx_pending(const struct vsock *vs)
{
	return vs->rst_n || vs->work_head;
}

/* The next packets for the guest into b[]: how many buffers filled. */
static unsigned int vsock_rx_some(struct vsock *vs, const struct vsock_pkt *b,
				  unsigned int nb, uint32_t *lens)
{
	struct vconn *c;
	unsigned int got;

	if (vs->rst_n) {
		unsigned int i = vs->rst_head;

		vs->rst_head = (i + 1) % VSOCK_RST_QUEUE;
		vs->rst_n--;
		put_hdr(vs, b[0].iov, b[0].n, vs->rsts[i].local_port,
			vs->rsts[i].peer_port, VSOCK_OP_RST, 0, 0, NULL);
		OWNER_ADD(vs->cnt.resets_sent, 1);
		lens[0] = VSOCK_HDR_LEN;
		return 1;
	}
	while ((c = vs->work_head)) {
		if (c->owed) {
			lens[0] = rx_control(vs, c, b[0].iov, b[0].n);
			if (lens[0])
				return 1;
		}
		if (conn_can_send(c)) {
			got = rx_data(vs, c, b, nb, lens);
			if (got)
				return got;
			if (!c->dead && !c->owed && conn_can_send(c) &&
			    peer_credit(c))
				return 0;	/* data waits for bigger buffers */
		}
		if (!c->dead && !c->owed && !conn_can_send(c))
			work_remove(vs, c);
		else if (!c->dead && !c->owed && !peer_credit(c))
			work_remove(vs, c);	/* back on CREDIT_UPDATE */
	}
	return 0;
}

unsigned int vsock_rx_many(struct vsock *vs, const struct vsock_pkt *b,
			   unsigned int nb, uint32_t *lens)
{
	unsigned int done = 0, i;

	for (i = 0; i < nb; i++)
		if (pkt_bytes(&b[i]) < VSOCK_HDR_LEN)
			nb = i;		/* the caller's check: no header room */
	vsock_enter(vs);
	while (done < nb) {
		unsigned int got = vsock_rx_some(vs, b + done, nb - done,
						 lens + done);

		if (!got)
			break;
		done += got;
	}
	vsock_leave(vs);
	return done;
}

uint32_t vsock_rx(struct vsock *vs, const struct iovec *iov, unsigned int n)
{
	struct vsock_pkt b = { iov, n };
	uint32_t len = 0;

	return vsock_rx_many(vs, &b, 1, &len) ? len : 0;
}

void vsock_host_events(struct vsock *vs)
{
	struct epoll_event ev[64];
	int i, n;

	n = epoll_wait(vs->epfd, ev, ARRAY_SIZE(ev), 0);
	vsock_enter(vs);
	for (i = 0; i < n; i++) {
		uint32_t e = ev[i].events;
		struct vconn *c = ev[i].data.ptr;

		if (ev[i].data.ptr == &vs->listen_fd) {
			vsock_uds_accept(vs);
			continue;
		}
		if (ev[i].data.ptr == &vs->hand_efd) {
			vsock_uds_adopt_handoffs(vs);
			continue;
		}
		if (ev[i].data.ptr == &vs->timer_fd) {
			vsock_sweep(vs);
			continue;
		}
		if (c->dead)
			continue;
		if (e & (EPOLLHUP | EPOLLERR))
			c->host_hup = true;
		switch (c->state) {
		case VC_HOST_LINE:
			vsock_uds_line(vs, c);
			break;
		case VC_CONNECTING:
			/* The client left before the guest answered. */
			if (e & (EPOLLHUP | EPOLLERR))
				vsock_reset_conn(vs, c);
			else if (e & (EPOLLIN | EPOLLRDHUP))
				c->readable = true;
			break;
		case VC_ESTABLISHED:
			if (c->buf_len)
				vsock_flush_host(vs, c);
			if (!c->dead &&
			    (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
				c->readable = true;
				if (conn_can_send(c))
					vsock_work(vs, c);
			}
			break;
		}
	}
	vsock_leave(vs);
}

void vsock_reset(struct vsock *vs)
{
	struct vconn *c, *next;

	vsock_enter(vs);
	/* Host clients still on their CONNECT line stay. */
	for (c = vs->all; c; c = next) {
		next = c->anext;
		if (c->state != VC_HOST_LINE)
			vsock_conn_kill(vs, c);
	}
	vs->rst_n = 0;
	vsock_leave(vs);
}
