/*
 * net - a tiny host on a virtio-net NIC.  It takes the address
 * 10.0.2.15, answers ARP and ICMP echo requests, and checks the IP and
 * ICMP checksums of each request so that a frame damaged on its way in
 * is noticed.  A UDP datagram "quit" to port 9 ends the run: it prints
 * what it did and exits 0 if every frame was sound.
 *
 * It negotiates mergeable receive buffers and posts 512-byte buffers, so
 * a large echo request arrives spread over several (num_buffers > 1).
 * When the device offers two queue pairs it turns them both on through
 * the control queue and serves both, answering on the pair a request
 * came in on.
 *
 * Built as netbasic (NET_BASIC): no mergeable buffers and no
 * multiqueue, one 1526-byte buffer per frame; before serving it sends
 * six malformed transmit chains that the device must drop while it goes
 * on working.
 */
#include "runtime/virtio.h"

#define F_CSUM		0
#define F_MAC		5
#define F_STATUS	16
#define F_CTRL_VQ	17
#define F_MRG_RXBUF	15
#define F_MQ		22

#define QSIZE		64
#define FRAME_MAX	1536
#ifdef NET_BASIC
#define RXBUF		(12 + 1514)
#else
#define RXBUF		512
#endif

struct net_hdr {
	uint8_t flags, gso_type;
	uint16_t hdr_len, gso_size, csum_start, csum_offset, num_buffers;
} __attribute__((packed));

struct pair {
	struct vq rx, tx;
	uint8_t buf[QSIZE][RXBUF] __attribute__((aligned(64)));
	unsigned int frames;
};

static struct vdev dev;
static struct pair pairs[2];
static unsigned int npairs = 1;
static uint8_t mac[6];
static const uint8_t my_ip[4] = { 10, 0, 2, 15 };
static uint8_t frame[FRAME_MAX + 64];
static uint8_t txbuf[12 + FRAME_MAX] __attribute__((aligned(64)));
static unsigned int echoes, arps, bad, merged, max_bufs;
static bool quit;

static void fail(const char *what, unsigned int v)
{
	gprintf("net: FAIL %s (%u)\n", what, v);
	guest_exit(1);
}

static uint16_t get16(const uint8_t *p)
{
	return p[0] << 8 | p[1];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

/* The Internet checksum: 0 when a header carrying its sum is sound. */
static uint16_t csum(const uint8_t *p, unsigned int n)
{
	uint32_t s = 0;
	unsigned int i;

	for (i = 0; i + 1 < n; i += 2)
		s += get16(p + i);
	if (n & 1)
		s += p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return ~s & 0xffff;
}

static void rx_post(struct pair *p, unsigned int slot)
{
	p->rx.desc[slot] = (struct vdesc){ (uintptr_t)p->buf[slot], RXBUF,
					   VRING_DESC_F_WRITE, 0 };
	vq_publish(&p->rx, slot);
}

/* Sends one chain of n descriptors made by the caller; waits for it. */
static void tx_chain(struct pair *p, unsigned int n)
{
	uint32_t id, len;
	unsigned long spins;

	vq_publish(&p->tx, 0);
	vq_kick(&dev, &p->tx);
	for (spins = 0; !vq_get_used(&p->tx, &id, &len); spins++)
		if (spins > 100000000)
			fail("transmit never completed", n);
}

static void tx_frame(struct pair *p, unsigned int len)
{
	memset(txbuf, 0, 12);
	memcpy(txbuf + 12, frame, len);
	p->tx.desc[0] = (struct vdesc){ (uintptr_t)txbuf, 12 + len, 0, 0 };
	tx_chain(p, 1);
}

static void reply_arp(struct pair *p, unsigned int len)
{
	uint8_t *a = frame + 14;

	if (len < 42 || get16(a) != 1 || get16(a + 2) != 0x0800 ||
	    get16(a + 6) != 1 || memcmp(a + 24, my_ip, 4))
		return;
	memcpy(frame, a + 8, 6);		/* to the asker */
	memcpy(frame + 6, mac, 6);
	put16(a + 6, 2);			/* reply */
	memcpy(a + 18, a + 8, 10);		/* target = asker (mac, ip) */
	memcpy(a + 8, mac, 6);
	memcpy(a + 14, my_ip, 4);
	tx_frame(p, 42);
	arps++;
}

static void reply_ip(struct pair *p, unsigned int len)
{
	uint8_t *ip = frame + 14, *l4 = ip + 20, tmp[6];
	unsigned int tot;

	if (len < 34 || ip[0] != 0x45 || memcmp(ip + 16, my_ip, 4))
		return;
	tot = get16(ip + 2);
	if (tot < 28 || 14 + tot > len || csum(ip, 20)) {
		bad++;
		return;
	}
	if (ip[9] == 17 && tot >= 32 && get16(l4 + 2) == 9 &&
	    tot - 28 >= 4 && !memcmp(l4 + 8, "quit", 4)) {
		quit = true;
		return;
	}
	if (ip[9] != 1 || l4[0] != 8)
		return;
	if (csum(l4, tot - 20)) {
		bad++;
		return;
	}
	memcpy(tmp, frame, 6);
	memcpy(frame, frame + 6, 6);
	memcpy(frame + 6, tmp, 6);
	memcpy(tmp, ip + 12, 4);
	memcpy(ip + 12, ip + 16, 4);
	memcpy(ip + 16, tmp, 4);
	ip[8] = 64;
	put16(ip + 10, 0);
	put16(ip + 10, csum(ip, 20));
	l4[0] = 0;				/* echo reply */
	put16(l4 + 2, 0);
	put16(l4 + 2, csum(l4, tot - 20));
	tx_frame(p, 14 + tot);
	echoes++;
}

/* Takes one frame off pair p's receive ring into `frame`; its length. */
static unsigned int rx_frame(struct pair *p, bool *got)
{
	uint32_t id, len;
	unsigned int n, i, total = 0, bufs;
	struct net_hdr h;

	*got = vq_get_used(&p->rx, &id, &len);
	if (!*got)
		return 0;
	if (id >= QSIZE || len < 12 || len > RXBUF)
		fail("bad used entry", id);
	memcpy(&h, p->buf[id], sizeof(h));
	bufs = 1;
#ifndef NET_BASIC
	bufs = h.num_buffers;
#else
	if (h.num_buffers != 1)
		fail("num_buffers without mergeable buffers", h.num_buffers);
#endif
	if (bufs < 1 || bufs > 8)
		fail("num_buffers", bufs);
	n = len - 12;
	memcpy(frame, p->buf[id] + 12, n);
	total = n;
	rx_post(p, id);
	for (i = 1; i < bufs; i++) {
		unsigned long spins = 0;

		while (!vq_get_used(&p->rx, &id, &len))
			if (++spins > 100000000)
				fail("rest of a merged frame never came", i);
		if (id >= QSIZE || len > RXBUF || total + len > FRAME_MAX)
			fail("bad merged buffer", id);
		memcpy(frame + total, p->buf[id], len);
		total += len;
		rx_post(p, id);
	}
	if (bufs > 1)
		merged++;
	if (bufs > max_bufs)
		max_bufs = bufs;
	vq_kick(&dev, &p->rx);
	return total;
}

#ifdef NET_BASIC
/* Chains a careful device must drop: each comes back, nothing is sent. */
static void tx_hostile(struct pair *p)
{
	struct net_hdr *h = (struct net_hdr *)txbuf;
	static uint8_t sink[64];
	unsigned int i;

	memset(txbuf, 0, sizeof(txbuf));
	/* 1: shorter than the header */
	p->tx.desc[0] = (struct vdesc){ (uintptr_t)txbuf, 8, 0, 0 };
	tx_chain(p, 1);
	/* 2: DATA_VALID is the device's flag */
	h->flags = 2;
	p->tx.desc[0] = (struct vdesc){ (uintptr_t)txbuf, 12 + 60, 0, 0 };
	tx_chain(p, 1);
	/* 3: TSO not negotiated, segment larger than the frame */
	h->flags = 1;
	h->gso_type = 1;
	h->gso_size = 2000;
	tx_chain(p, 1);
	/* 4: checksum offload not negotiated, and out of the frame */
	h->gso_type = 0;
	h->gso_size = 0;
	h->csum_start = 5000;
	tx_chain(p, 1);
	/* 5: a frame far over the MTU (3000 bytes from a 1536 buffer, twice) */
	memset(txbuf, 0, 12);
	p->tx.desc[0] = (struct vdesc){ (uintptr_t)txbuf, 1524,
					VRING_DESC_F_NEXT, 1 };
	p->tx.desc[1] = (struct vdesc){ (uintptr_t)txbuf, 1524,
					VRING_DESC_F_NEXT, 2 };
	p->tx.desc[2] = (struct vdesc){ (uintptr_t)txbuf, 1524, 0, 0 };
	tx_chain(p, 3);
	/* 6: a writable buffer in a transmit chain */
	p->tx.desc[0] = (struct vdesc){ (uintptr_t)txbuf, 12 + 60,
					VRING_DESC_F_NEXT, 1 };
	p->tx.desc[1] = (struct vdesc){ (uintptr_t)sink, sizeof(sink),
					VRING_DESC_F_WRITE, 0 };
	tx_chain(p, 2);
	for (i = 0; i < sizeof(sink); i++)
		if (sink[i])
			fail("device wrote into a transmit chain", i);
	gprintf("net: 6 malformed transmit chains sent, all returned\n");
}
#endif

#ifndef NET_BASIC
/* VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET through the control queue. */
static void set_pairs(unsigned int ctlq, unsigned int n)
{
	static struct vq ctl;
	static uint8_t cmd[4];
	static volatile uint8_t ack;
	uint32_t id, len;
	unsigned long spins;

	if (!vq_init(&dev, &ctl, ctlq, 8))
		fail("control queue", ctlq);
	cmd[0] = 4;
	cmd[1] = 0;
	cmd[2] = n;
	cmd[3] = 0;
	ack = 0xff;
	ctl.desc[0] = (struct vdesc){ (uintptr_t)cmd, 2, VRING_DESC_F_NEXT, 1 };
	ctl.desc[1] = (struct vdesc){ (uintptr_t)cmd + 2, 2,
				      VRING_DESC_F_NEXT, 2 };
	ctl.desc[2] = (struct vdesc){ (uintptr_t)&ack, 1, VRING_DESC_F_WRITE,
				      0 };
	vq_publish(&ctl, 0);
	vq_kick(&dev, &ctl);
	for (spins = 0; !vq_get_used(&ctl, &id, &len); spins++)
		if (spins > 100000000)
			fail("control command never answered", n);
	if (ack != 0)
		fail("VQ_PAIRS_SET refused", ack);
}
#endif

void main(void)
{
	uint64_t want = 1ULL << F_MAC | 1ULL << F_STATUS;
	unsigned int i, q, maxp;
	uint32_t w;

#ifndef NET_BASIC
	want |= 1ULL << F_MRG_RXBUF | 1ULL << F_CTRL_VQ | 1ULL << F_MQ;
#endif
	if (!vdev_find(1, &dev) || !vdev_init(&dev, want))
		fail("no usable virtio-net", vdev_status(&dev));
	w = vdev_cfg_read32(&dev, 0);
	memcpy(mac, &w, 4);
	w = vdev_cfg_read32(&dev, 4);
	memcpy(mac + 4, &w, 2);
	if (!((w >> 16) & 1))
		fail("link is down", w >> 16);
	maxp = vdev_cfg_read32(&dev, 8) & 0xffff;
	if ((dev.features & 1ULL << F_MQ) && maxp >= 2)
		npairs = 2;
	for (q = 0; q < npairs; q++) {
		if (!vq_init(&dev, &pairs[q].rx, 2 * q, QSIZE) ||
		    !vq_init(&dev, &pairs[q].tx, 2 * q + 1, QSIZE))
			fail("queue set-up", q);
		for (i = 0; i < QSIZE; i++)
			rx_post(&pairs[q], i);
	}
	vdev_driver_ok(&dev);
#ifndef NET_BASIC
	if (npairs > 1)
		set_pairs(2 * maxp, npairs);
#else
	tx_hostile(&pairs[0]);
#endif
	gprintf("net: %02x:%02x:%02x:%02x:%02x:%02x on %s, %u queue pair(s), %s buffers\n",
		mac[0], mac[1], mac[2], mac[3], mac[4], mac[5],
		dev.pci ? "virtio-pci" : "virtio-mmio", npairs,
		(dev.features & 1ULL << F_MRG_RXBUF) ? "mergeable" : "whole");
	while (!quit) {
		for (q = 0; q < npairs; q++) {
			struct pair *p = &pairs[q];
			unsigned int len;
			bool got;

			len = rx_frame(p, &got);
			if (!got) {
				cpu_relax();
				continue;
			}
			p->frames++;
			if (len < 14)
				continue;
			if (get16(frame + 12) == 0x0806)
				reply_arp(p, len);
			else if (get16(frame + 12) == 0x0800)
				reply_ip(p, len);
		}
	}
	gprintf("net: %u echo replies (%u frames over several buffers, at most %u), %u ARP replies, %u bad frames; frames per queue pair: %u %u\n",
		echoes, merged, max_bufs, arps, bad, pairs[0].frames,
		pairs[1].frames);
	guest_exit(bad ? 1 : 0);
}
