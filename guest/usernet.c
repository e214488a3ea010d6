/*
 * usernet - a guest for -n mode=user (passt): on virtio-net it gets a
 * lease by DHCP (DISCOVER, OFFER, REQUEST, ACK), finds the gateway by
 * ARP, and sends a UDP datagram to the gateway address, port 5555,
 * which passt maps to the host's loopback, where the test runs a UDP
 * echo server; the echo must come back.  Prints the lease
 * and the echo and exits 0 if both came.
 */
#include "runtime/virtio.h"

#define F_MAC		5
#define QSIZE		16
#define RXBUF		(12 + 1514)
#define ECHO_PORT	5555
#define TIMEOUT_SPINS	20000

static struct vdev dev;
static struct vq rxq, txq;
static uint8_t mac[6], gw_mac[6];
static uint8_t rxbuf[QSIZE][RXBUF] __attribute__((aligned(64)));
static uint8_t txbuf[12 + 1514] __attribute__((aligned(64)));
static uint8_t my_ip[4], gw_ip[4], server_ip[4];
static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const uint8_t any[4], all[4] = { 255, 255, 255, 255 };

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static uint16_t get16(const uint8_t *p)
{
	return p[0] << 8 | p[1];
}

static uint16_t csum(const uint8_t *p, unsigned int n)
{
	uint32_t s = 0;

	for (; n > 1; n -= 2, p += 2)
		s += get16(p);
	if (n)
		s += p[0] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return ~s;
}

static void rx_post(unsigned int i)
{
	rxq.desc[i] = (struct vdesc){ (uintptr_t)rxbuf[i], RXBUF,
				      VRING_DESC_F_WRITE, 0 };
	vq_publish(&rxq, i);
}

/* The frame in txbuf + 12, len bytes, out (waits for it to go). */
static void tx(unsigned int len)
{
	uint32_t id, l;
	unsigned int spins;

	memset(txbuf, 0, 12);
	txq.desc[0] = (struct vdesc){ (uintptr_t)txbuf, 12 + len, 0, 0 };
	vq_publish(&txq, 0);
	vq_kick(&dev, &txq);
	for (spins = 0; spins < TIMEOUT_SPINS && !vq_get_used(&txq, &id, &l);
	     spins++)
		wait_for_irq();
}

static unsigned int eth(const uint8_t *dst, uint16_t type)
{
	memcpy(txbuf + 12, dst, 6);
	memcpy(txbuf + 18, mac, 6);
	put16(txbuf + 24, type);
	return 14;
}

/* IPv4 and UDP headers around the payload already at +42. */
static unsigned int udp(const uint8_t *dmac, const uint8_t *src,
			const uint8_t *dst, uint16_t sport, uint16_t dport,
			unsigned int n)
{
	uint8_t *ip = txbuf + 12 + eth(dmac, 0x0800), *u = ip + 20;

	memset(ip, 0, 28);
	ip[0] = 0x45;
	put16(ip + 2, 28 + n);
	ip[8] = 64;
	ip[9] = 17;
	memcpy(ip + 12, src, 4);
	memcpy(ip + 16, dst, 4);
	put16(ip + 10, csum(ip, 20));
	put16(u, sport);
	put16(u + 2, dport);
	put16(u + 4, 8 + n);
	return 42 + n;
}

/* The next frame received: its bytes and length (0 if none came). */
static unsigned int rx(const uint8_t **f)
{
	static int last = -1;
	uint32_t id, len;
	unsigned int spins;

	if (last >= 0) {
		rx_post(last);
		vq_kick(&dev, &rxq);
		last = -1;
	}
	for (spins = 0; spins < TIMEOUT_SPINS; spins++) {
		if (vq_get_used(&rxq, &id, &len) && id < QSIZE && len > 12 + 14) {
			last = id;
			*f = rxbuf[id] + 12;
			return len - 12;
		}
		wait_for_irq();
	}
	return 0;
}

/* A DHCP message of type t (1 DISCOVER, 3 REQUEST); the reply's type. */
static int dhcp(uint8_t t)
{
	uint8_t *d = txbuf + 12 + 42;
	const uint8_t *f;
	unsigned int n, i, o;

	memset(d, 0, 300);
	d[0] = 1, d[1] = 1, d[2] = 6;
	d[4] = 0x6c, d[5] = 0x6b, d[6] = 0x76, d[7] = 0x6d;	/* xid */
	memcpy(d + 28, mac, 6);
	d[236] = 99, d[237] = 130, d[238] = 83, d[239] = 99;
	o = 240;
	d[o++] = 53, d[o++] = 1, d[o++] = t;
	if (t == 3) {
		d[o++] = 50, d[o++] = 4;
		memcpy(d + o, my_ip, 4), o += 4;
		d[o++] = 54, d[o++] = 4;
		memcpy(d + o, server_ip, 4), o += 4;
	}
	d[o++] = 55, d[o++] = 2, d[o++] = 1, d[o++] = 3;
	d[o++] = 255;
	tx(udp(bcast, any, all, 68, 67, 300));
	while ((n = rx(&f))) {
		const uint8_t *b = f + 42;
		int type = 0;

		if (n < 42 + 240 || get16(f + 12) != 0x0800 || f[23] != 17 ||
		    get16(f + 36) != 68 || b[0] != 2)
			continue;
		memcpy(my_ip, b + 16, 4);
		for (i = 240; i + 2 < n - 42 && b[i] != 255; i += 2 + b[i + 1]) {
			if (b[i] == 53)
				type = b[i + 2];
			if (b[i] == 3 && b[i + 1] >= 4)
				memcpy(gw_ip, b + i + 2, 4);
			if (b[i] == 54 && b[i + 1] >= 4)
				memcpy(server_ip, b + i + 2, 4);
		}
		return type;
	}
	return -1;
}

static bool arp(void)
{
	uint8_t *a = txbuf + 12 + eth(bcast, 0x0806);
	const uint8_t *f;
	unsigned int n;

	memcpy(a, "\x00\x01\x08\x00\x06\x04\x00\x01", 8);
	memcpy(a + 8, mac, 6);
	memcpy(a + 14, my_ip, 4);
	memset(a + 18, 0, 6);
	memcpy(a + 24, gw_ip, 4);
	tx(42);
	while ((n = rx(&f)))
		if (n >= 42 && get16(f + 12) == 0x0806 && get16(f + 20) == 2 &&
		    !memcmp(f + 28, gw_ip, 4)) {
			memcpy(gw_mac, f + 22, 6);
			return true;
		}
	return false;
}

static bool udp_echo(void)
{
	static const char msg[] = "hello through passt";
	const uint8_t *f;
	unsigned int n;

	memcpy(txbuf + 12 + 42, msg, sizeof(msg) - 1);
	tx(udp(gw_mac, my_ip, gw_ip, 40000, ECHO_PORT, sizeof(msg) - 1));
	while ((n = rx(&f)))
		if (n >= 42 + sizeof(msg) - 1 && get16(f + 12) == 0x0800 &&
		    f[23] == 17 && get16(f + 36) == 40000 &&
		    !memcmp(f + 42, msg, sizeof(msg) - 1))
			return true;
	return false;
}

static void ip_str(const uint8_t *ip, char *s)
{
	unsigned int i, k = 0;

	for (i = 0; i < 4; i++) {
		unsigned int v = ip[i];

		if (v >= 100)
			s[k++] = '0' + v / 100;
		if (v >= 10)
			s[k++] = '0' + v / 10 % 10;
		s[k++] = '0' + v % 10;
		s[k++] = i < 3 ? '.' : 0;
	}
}

void main(void)
{
	char a[16], g[16];
	unsigned int i;
	bool echo;

	if (!vdev_find(1, &dev) || !vdev_init(&dev, 1ULL << F_MAC)) {
		gprintf("usernet: no virtio-net\n");
		guest_exit(1);
	}
	vdev_irq_enable(&dev, 0x38);
	if (!vq_init(&dev, &rxq, 0, QSIZE) || !vq_init(&dev, &txq, 1, QSIZE)) {
		gprintf("usernet: queue set-up failed\n");
		guest_exit(1);
	}
	{
		uint32_t w = vdev_cfg_read32(&dev, 0);

		memcpy(mac, &w, 4);
		w = vdev_cfg_read32(&dev, 4);
		memcpy(mac + 4, &w, 2);
	}
	for (i = 0; i < QSIZE; i++)
		rx_post(i);
	vdev_driver_ok(&dev);
	vq_kick(&dev, &rxq);
	if (dhcp(1) != 2 || dhcp(3) != 5) {
		gprintf("usernet: no DHCP lease\n");
		guest_exit(1);
	}
	ip_str(my_ip, a);
	ip_str(gw_ip, g);
	gprintf("usernet: DHCP lease %s, gateway %s\n", a, g);
	if (!arp()) {
		gprintf("usernet: the gateway does not answer ARP\n");
		guest_exit(1);
	}
	echo = udp_echo();
	gprintf("usernet: UDP echo from %s port %u: %s\n", g, ECHO_PORT,
		echo ? "received" : "none");
	guest_exit(echo ? 0 : 1);
}
