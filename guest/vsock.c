/*
 * vsock - a virtio-vsock guest with a stream stack of its own, for the
 * e2e test of lkvm's hybrid mapping (tests/e2e/vsock.sh):
 *
 *	- first it sends four bad packets (another CID, an unknown op, a
 *	  seqpacket request, data for no connection) and counts the resets
 *	  the device answers the last three with;
 *	- it connects out to host port 5000 (PATH_5000) and sends a line;
 *	- it listens on port 1234 and echoes every byte on every
 *	  connection, many at once, with credit both ways;
 *	- a connection to port 1 makes it print its figures and exit 0.
 *
 * Received bytes wait in the connection's ring (the credit it offers,
 * so they always fit) and receive buffers go straight back to the
 * device, which then always has room for control packets.  An echo is
 * copied out of the ring into a transmit slot's own buffer; the ring's
 * room comes back at once and the echo's header says so (fwd_cnt).
 */
#include "runtime/virtio.h"

#define VSOCK_ID	19
#define RXN		32
#define DATA		4096
#define HDR		44
#define TXN		64		/* packets in flight: 2 descriptors each */
#define NCONN		160
#define BUF_ALLOC	16384		/* each connection's ring */
#define ECHO_PORT	1234
#define QUIT_PORT	1
#define HOST_PORT	5000
#define OUT_PORT	2000

enum { OP_REQUEST = 1, OP_RESPONSE, OP_RST, OP_SHUTDOWN, OP_RW,
       OP_CREDIT_UPDATE, OP_CREDIT_REQUEST };

struct vhdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

struct conn {
	bool used, closing;
	uint32_t lport, pport;
	uint32_t fwd;			/* bytes we consumed */
	uint32_t peer_alloc, peer_fwd, txcnt;
	uint32_t head, len;		/* ring: bytes not echoed yet */
	uint8_t ring[BUF_ALLOC];
};

static uint8_t rxbuf[RXN][HDR + DATA] __attribute__((aligned(64)));
static struct vhdr txhdr[TXN];
static uint8_t txdata[TXN][DATA];
static uint16_t tx_free[TXN];
static unsigned int ntxfree;
static struct conn conns[NCONN];
static uint32_t evbuf[4];

static struct vdev d;
/*
 * Rounds of work found after a sleep the timer ended, with no interrupt
 * from the device in it: an interrupt that never came (or came later
 * than the timer).  Counted and reported instead of sleeping for good.
 */
#define WAKE_MS		200
static unsigned int rescued;
/* Timer wakes that found nothing: both queues are kicked again. */
static unsigned int quiet;
static struct vq rxq, txq, evq;
static uint64_t cid;
static unsigned int resets_seen, served, out_state;
static uint64_t echoed;
static bool quit;

static void rx_post(unsigned int i)
{
	rxq.desc[i] = (struct vdesc){ (uintptr_t)rxbuf[i], sizeof(rxbuf[i]),
				      VRING_DESC_F_WRITE, 0 };
	vq_publish(&rxq, i);
}

/* Sends a packet with len bytes of data (copied from data, if any). */
static bool tx_send(uint32_t lport, uint32_t pport, uint16_t op,
		    uint32_t flags, const struct conn *c, uint32_t len,
		    uint64_t src_cid, uint16_t type)
{
	unsigned int s;
	struct vhdr *h;

	if (!ntxfree)
		return false;
	s = tx_free[--ntxfree];
	h = &txhdr[s];
	*h = (struct vhdr){ src_cid, 2, lport, pport, len, type, op, flags,
			    BUF_ALLOC, c ? c->fwd : 0 };
	txq.desc[2 * s] = (struct vdesc){ (uintptr_t)h, HDR,
					  len ? VRING_DESC_F_NEXT : 0,
					  2 * s + 1 };
	if (len)
		txq.desc[2 * s + 1] = (struct vdesc){ (uintptr_t)txdata[s], len,
						      0, 0 };
	vq_publish(&txq, 2 * s);
	vq_kick(&d, &txq);
	return true;
}

/* The transmit slot tx_send will take next, for data to go in it. */
static uint8_t *tx_next_data(void)
{
	return ntxfree ? txdata[tx_free[ntxfree - 1]] : 0;
}

static bool send_ctl(struct conn *c, uint16_t op, uint32_t flags)
{
	return tx_send(c->lport, c->pport, op, flags, c, 0, cid, 1);
}

static struct conn *conn_find(uint32_t lport, uint32_t pport)
{
	for (unsigned int i = 0; i < NCONN; i++)
		if (conns[i].used && conns[i].lport == lport &&
		    conns[i].pport == pport)
			return &conns[i];
	return 0;
}

static struct conn *conn_new(uint32_t lport, uint32_t pport)
{
	for (unsigned int i = 0; i < NCONN; i++)
		if (!conns[i].used) {
			conns[i] = (struct conn){ .used = true, .lport = lport,
						  .pport = pport };
			return &conns[i];
		}
	return 0;
}

/* Echoes what waits while the host's credit and the ring allow. */
static void conn_flush(struct conn *c)
{
	while (c->len) {
		uint32_t n = c->len < DATA ? c->len : DATA, i;
		uint8_t *out = tx_next_data();

		if (c->peer_alloc - (c->txcnt - c->peer_fwd) < n)
			n = c->peer_alloc - (c->txcnt - c->peer_fwd);
		if (!n || !out)
			return;
		for (i = 0; i < n; i++)
			out[i] = c->ring[(c->head + i) % BUF_ALLOC];
		c->head = (c->head + n) % BUF_ALLOC;
		c->len -= n;
		c->fwd += n;		/* the echo's header tells the host */
		tx_send(c->lport, c->pport, OP_RW, 0, c, n, cid, 1);
		c->txcnt += n;
		echoed += n;
	}
	/* All echoed: close both ways; the device's reset ends it. */
	if (c->closing && send_ctl(c, OP_SHUTDOWN, 3))
		c->closing = false;
}

/* One received packet (its buffer goes back to the device after). */
static void rx_packet(unsigned int i)
{
	struct vhdr *h = (struct vhdr *)rxbuf[i];
	struct conn *c = conn_find(h->dst_port, h->src_port);

	if (h->src_cid != 2 || h->dst_cid != cid)
		return;
	if (h->op == OP_RST && h->dst_port >= 900 && h->dst_port < 910) {
		resets_seen++;
		return;
	}
	if (c) {
		c->peer_alloc = h->buf_alloc;
		c->peer_fwd = h->fwd_cnt;
	}
	switch (h->op) {
	case OP_REQUEST:
		if (c || (h->dst_port != ECHO_PORT && h->dst_port != QUIT_PORT) ||
		    !(c = conn_new(h->dst_port, h->src_port))) {
			tx_send(h->dst_port, h->src_port, OP_RST, 0, 0, 0, cid,
				1);
			break;
		}
		c->peer_alloc = h->buf_alloc;
		c->peer_fwd = h->fwd_cnt;
		send_ctl(c, OP_RESPONSE, 0);
		served++;
		if (h->dst_port == QUIT_PORT)
			quit = true;
		break;
	case OP_RESPONSE:
		if (c && c->lport == OUT_PORT && tx_next_data()) {
			static const char line[] = "hello from the vsock guest\n";

			memcpy(tx_next_data(), line, sizeof(line) - 1);
			out_state = 1;
			tx_send(c->lport, c->pport, OP_RW, 0, c,
				sizeof(line) - 1, cid, 1);
			send_ctl(c, OP_SHUTDOWN, 3);
		}
		break;
	case OP_RST:
		if (c && c->lport == OUT_PORT)
			out_state = out_state ? 2 : 3;
		if (c)
			c->used = false;
		break;
	case OP_SHUTDOWN:
		if (c) {
			c->closing = true;
			conn_flush(c);
		}
		break;
	case OP_RW:
		if (!c || c->lport != ECHO_PORT)
			break;
		/* The credit we gave bounds it: it fits. */
		for (uint32_t k = 0; k < h->len && c->len < BUF_ALLOC; k++)
			c->ring[(c->head + c->len++) % BUF_ALLOC] =
				rxbuf[i][HDR + k];
		conn_flush(c);
		break;
	case OP_CREDIT_REQUEST:
		if (c)
			send_ctl(c, OP_CREDIT_UPDATE, 0);
		break;
	case OP_CREDIT_UPDATE:
		if (c)
			conn_flush(c);
		break;
	}
}

static bool poll_rings(void)
{
	uint32_t id, len;
	bool any = false;

	while (vq_get_used(&txq, &id, &len)) {
		tx_free[ntxfree++] = id / 2;
		any = true;
	}
	while (vq_get_used(&rxq, &id, &len)) {
		if (id < RXN) {
			if (len >= HDR)
				rx_packet(id);
			rx_post(id);
		}
		any = true;
	}
	if (any) {
		for (unsigned int i = 0; i < NCONN; i++)
			if (conns[i].used && (conns[i].len || conns[i].closing))
				conn_flush(&conns[i]);
		vq_kick(&d, &rxq);
	}
	return any;
}

static void bad_packets(void)
{
	/* Another CID: dropped without an answer. */
	tx_send(900, 7, OP_REQUEST, 0, 0, 0, cid + 1, 1);
	/* An unknown op, a seqpacket, data for no connection: resets. */
	tx_send(901, 7, 42, 0, 0, 0, cid, 1);
	tx_send(902, 7, OP_REQUEST, 0, 0, 0, cid, 2);
	tx_send(903, 7, OP_RW, 0, 0, 0, cid, 1);
}

void main(void)
{
	unsigned int i;

	if (!vdev_find(VSOCK_ID, &d)) {
		gprintf("vsock: no virtio-vsock device\n");
		guest_exit(1);
	}
	if (!vdev_init(&d, 0)) {
		gprintf("vsock: set-up failed, status 0x%x\n", vdev_status(&d));
		guest_exit(1);
	}
	vdev_irq_enable(&d, 0x38);
	if (!vq_init(&d, &rxq, 0, 64) || !vq_init(&d, &txq, 1, 2 * TXN) ||
	    !vq_init(&d, &evq, 2, 4)) {
		gprintf("vsock: queue set-up failed\n");
		guest_exit(1);
	}
	cid = vdev_cfg_read32(&d, 0) | (uint64_t)vdev_cfg_read32(&d, 4) << 32;
	for (i = 0; i < 4; i++) {
		evq.desc[i] = (struct vdesc){ (uintptr_t)&evbuf[i], 4,
					      VRING_DESC_F_WRITE, 0 };
		vq_publish(&evq, i);
	}
	for (i = 0; i < TXN; i++)
		tx_free[ntxfree++] = TXN - 1 - i;
	for (i = 0; i < RXN; i++)
		rx_post(i);
	vdev_driver_ok(&d);
	vq_kick(&d, &rxq);
	gprintf("vsock: cid %u, listening on port %u\n", (unsigned int)cid,
		ECHO_PORT);
	bad_packets();
	{
		struct conn *c = conn_new(OUT_PORT, HOST_PORT);

		tx_send(OUT_PORT, HOST_PORT, OP_REQUEST, 0, c, 0, cid, 1);
	}
	while (!quit) {
		unsigned int irqs = d.irqs;

		irq_disable();
		if (!poll_rings() && wait_for_irq_or_timer(WAKE_MS) &&
		    d.irqs == irqs) {
			if (poll_rings()) {
				rescued++;
			} else {
				/* Nothing: kick both again (idempotent). */
				quiet++;
				vq_kick(&d, &txq);
				vq_kick(&d, &rxq);
			}
		}
	}
	for (i = 0; i < 100; i++)	/* the quit connection's RESPONSE */
		poll_rings();
	gprintf("vsock: out %s, %u connections served, %u bytes echoed, %u resets for 3 bad packets\n",
		out_state == 2 || out_state == 1 ? "sent" :
		out_state == 3 ? "refused" : "pending",
		served, (unsigned int)echoed, resets_seen);
	gprintf("vsock: %u rounds of work found by the %u ms timer, not an interrupt; %u idle timer wakes (queues kicked again)\n",
		rescued, WAKE_MS, quiet);
	guest_exit(resets_seen == 3 && out_state != 3 ? 0 : 1);
}
