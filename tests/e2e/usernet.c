/*
 * usernet - virtio-net on the user-mode backend (-n mode=user: a real
 * passt) driven by the simulated guest driver (netsim.h), no KVM.  Run
 * by tests/e2e/usernet.sh in a network namespace of its own, as an
 * unprivileged user.  The guest side speaks raw frames:
 *
 *	DHCP: DISCOVER gets an OFFER of 10.0.2.15 with router 10.0.2.2;
 *	ARP: 10.0.2.2 answers;
 *	UDP to 10.0.2.2:PORT reaches a UDP echo server on the host's
 *	127.0.0.1:PORT (passt maps the gateway to the loopback), and the
 *	echo comes back;
 *	hostfwd: a host connect to 127.0.0.1:HOSTPORT arrives at the guest
 *	as a TCP SYN for GUESTPORT;
 *	passt killed: the guest's link goes down (status, config
 *	interrupt), the device stays.
 *
 *   usernet PORT HOSTPORT GUESTPORT
 * Ends with "N passed, N failed".
 *   usernet hold
 * starts the backend, prints passt's pid and waits (for a kill -9).
 *   usernet drops
 * runs the backend on this program as a fake passt (passt=, no network
 * needed), which sends frames too long and too short for Ethernet
 * between good ones, cut at odd places: the good ones arrive whole, the
 * bad ones are dropped and counted.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "lkvm/net/net.h"
#include "lkvm/net/stream.h"
#include "lkvm/virtio/net_dev.h"
#include "netsim.h"
#include "test.h"

#define RXQ 0
#define TXQ 1
static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static struct nsim sim;
static unsigned int tx_slot;

static uint16_t csum(const void *p, size_t n, uint32_t sum)
{
	const uint8_t *b = p;

	for (; n > 1; n -= 2, b += 2)
		sum += b[0] << 8 | b[1];
	if (n)
		sum += b[0] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

/* A frame out: a zero virtio-net header, then the frame. */
static void send_frame(const uint8_t *f, size_t len)
{
	uint8_t *b = nsim_buf(&sim, TXQ, tx_slot);

	memset(b, 0, NET_HDR_LEN);
	memcpy(b + NET_HDR_LEN, f, len);
	nsim_add(&sim, TXQ, tx_slot, NET_HDR_LEN + len, 0);
	nsim_kick(&sim, TXQ);
	tx_slot = (tx_slot + 1) % 64;
}

/* The next received frame whose EtherType is `type` (2 s at most). */
static size_t recv_frame(uint16_t type, uint8_t *out, int ms)
{
	uint64_t end = now_ns() + (uint64_t)ms * 1000000;
	uint32_t id, len;

	while (now_ns() < end) {
		uint8_t *b;

		if (!nsim_wait(&sim, RXQ, &id, &len, 50))
			continue;
		b = nsim_buf(&sim, RXQ, id) + NET_HDR_LEN;
		len -= NET_HDR_LEN;
		nsim_add(&sim, RXQ, id, 2048, VRING_DESC_F_WRITE);
		nsim_kick(&sim, RXQ);
		if (len >= 14 && (b[12] << 8 | b[13]) == type) {
			memcpy(out, b, len);
			return len;
		}
	}
	return 0;
}

static size_t eth(uint8_t *f, const uint8_t *dst, uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, guest_mac, 6);
	f[12] = type >> 8;
	f[13] = type;
	return 14;
}

/* IPv4 + UDP around payload; returns the frame length. */
static size_t udp(uint8_t *f, const uint8_t *dmac, uint32_t src, uint32_t dst,
		  uint16_t sport, uint16_t dport, const void *pl, size_t n)
{
	size_t o = eth(f, dmac, 0x0800);
	uint8_t *ip = f + o, *u = ip + 20;

	memset(ip, 0, 28);
	ip[0] = 0x45;
	ip[2] = (28 + n) >> 8;
	ip[3] = 28 + n;
	ip[8] = 64;
	ip[9] = 17;
	memcpy(ip + 12, &src, 4);
	memcpy(ip + 16, &dst, 4);
	ip[10] = csum(ip, 20, 0) >> 8;
	ip[11] = csum(ip, 20, 0);
	u[0] = sport >> 8;
	u[1] = sport;
	u[2] = dport >> 8;
	u[3] = dport;
	u[4] = (8 + n) >> 8;
	u[5] = 8 + n;
	memcpy(u + 8, pl, n);		/* UDP checksum 0: none */
	return o + 28 + n;
}

static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static bool dhcp_offer(uint32_t *yiaddr, uint32_t *router, uint8_t *gw_mac)
{
	uint8_t d[300] = { 1, 1, 6, 0, 0x12, 0x34, 0x56, 0x78 }, f[600];
	size_t n, i;

	memcpy(d + 28, guest_mac, 6);
	d[236] = 99, d[237] = 130, d[238] = 83, d[239] = 99;	/* cookie */
	d[240] = 53, d[241] = 1, d[242] = 1;			/* DISCOVER */
	d[243] = 55, d[244] = 2, d[245] = 1, d[246] = 3;	/* mask, router */
	d[247] = 255;
	n = udp(f, bcast, 0, 0xffffffff, 68, 67, d, sizeof(d));
	send_frame(f, n);
	while ((n = recv_frame(0x0800, f, 2000))) {
		uint8_t *u = f + 14 + 20, *b = u + 8;

		if (f[14 + 9] != 17 || (u[2] << 8 | u[3]) != 68)
			continue;
		memcpy(yiaddr, b + 16, 4);
		memcpy(gw_mac, f + 6, 6);
		*router = 0;
		for (i = 240; i + 2 < n - 42 && b[i] != 255; i += 2 + b[i + 1])
			if (b[i] == 3 && b[i + 1] >= 4)
				memcpy(router, b + i + 2, 4);
		return b[0] == 2;
	}
	return false;
}

static bool arp_gateway(uint32_t me, uint32_t gw, uint8_t *mac)
{
	uint8_t f[64];
	size_t o = eth(f, bcast, 0x0806);

	memcpy(f + o, "\x00\x01\x08\x00\x06\x04\x00\x01", 8);
	memcpy(f + o + 8, guest_mac, 6);
	memcpy(f + o + 14, &me, 4);
	memset(f + o + 18, 0, 6);
	memcpy(f + o + 24, &gw, 4);
	send_frame(f, o + 28);
	while (recv_frame(0x0806, f, 2000))
		if (f[o + 7] == 2 && !memcmp(f + o + 14, &gw, 4)) {
			memcpy(mac, f + o + 8, 6);
			return true;
		}
	return false;
}

static int echo_fd = -1;

static void *udp_echo(void *arg)
{
	char b[512];
	struct sockaddr_in from;
	socklen_t fl = sizeof(from);
	ssize_t n;

	(void)arg;
	while ((n = recvfrom(echo_fd, b, sizeof(b), 0, (struct sockaddr *)&from,
			     &fl)) > 0) {
		sendto(echo_fd, b, n, 0, (struct sockaddr *)&from, fl);
		fl = sizeof(from);
	}
	return NULL;
}

static int create_user_net(struct net_backend **nb, unsigned int hport,
			   unsigned int gport)
{
	struct net_spec spec;
	char s[128], err[256];
	int ret;

	if (hport)
		snprintf(s, sizeof(s), "mode=user,hostfwd=tcp:127.0.0.1:%u-:%u",
			 hport, gport);
	else
		snprintf(s, sizeof(s), "mode=user");
	ret = net_spec_parse(s, &spec, err, sizeof(err));
	if (!ret)
		ret = net_open(nb, &spec, 1, err, sizeof(err));
	if (ret)
		fprintf(stderr, "usernet: %s\n", err);
	return ret;
}

#define TX_FRAMES	1500

/* Frame i the guest sends: its length, and its bytes after the MACs. */
static size_t tx_len(unsigned int i)
{
	return 60 + i * 37 % 1400;
}

static uint8_t tx_byte(unsigned int i, size_t k)
{
	return (uint8_t)(i * 7 + k);
}

/*
 * The fake passt's other half: it reads nothing for 300 ms (the guest's
 * frames back up into lkvm), then takes TX_FRAMES frames, checks each
 * whole and in order, and writes "ok N" or what went wrong to the file
 * $USERNET_FAKE_OUT.  Then it waits for its peer to close.
 */
static int fake_passt_take(void)
{
	static uint8_t buf[1 << 16];
	struct stream_rx rx;
	const char *path = getenv("USERNET_FAKE_OUT");
	unsigned int got = 0, bad = 0;
	uint8_t frame[2048];
	FILE *f;
	ssize_t r;

	stream_rx_init(&rx, sizeof(frame));
	usleep(300000);
	while (got < TX_FRAMES && (r = read(3, buf, sizeof(buf))) > 0) {
		size_t off = 0;
		uint32_t done;

		while (off < (size_t)r) {
			off += stream_rx_feed(&rx, buf + off, r - off, frame, &done);
			if (!done)
				continue;
			if (done != tx_len(got))
				bad++;
			for (size_t k = 12; k < done && !bad; k++)
				bad += frame[k] != tx_byte(got, k);
			got++;
		}
	}
	f = path ? fopen(path, "w") : NULL;
	if (f) {
		fprintf(f, bad ? "bad %u of %u\n" : "ok %u\n", bad ? bad : got, got);
		fclose(f);
	}
	while (read(3, buf, sizeof(buf)) > 0)
		;
	return 0;
}

/*
 * The fake passt (argv has --fd 3): good frame, a 1600-byte frame (over
 * the 1518 a 1500 MTU allows), an 8-byte one, good frame; written in
 * 7-byte pieces so frames and lengths straddle reads.  Then it takes
 * the guest's frames (fake_passt_take).
 */
static int fake_passt(void)
{
	static uint8_t out[4 * 4 + 3 * 1600];
	size_t n = 0, o;
	uint32_t lens[4] = { 64, 1600, 8, 64 };
	unsigned int i;

	for (i = 0; i < 4; i++) {
		uint32_t be = htonl(lens[i]);

		memcpy(out + n, &be, 4);
		n += 4;
		memset(out + n, 0, lens[i]);
		if (lens[i] >= 14) {
			memcpy(out + n, guest_mac, 6);
			out[n + 12] = 0x88, out[n + 13] = 0xb5;	/* experimental */
			out[n + 14] = i;
		}
		n += lens[i];
	}
	for (o = 0; o < n; o += 7) {
		if (write(3, out + o, MIN((size_t)7, n - o)) < 0)
			return 1;
		usleep(100);
	}
	return fake_passt_take();
}

static int drops(void)
{
	struct net_backend *nb;
	struct net_spec spec;
	char s[4200], self[4096], err[256];
	uint8_t f[2048];
	ssize_t k;
	size_t n;

	k = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (k <= 0)
		return 1;
	self[k] = 0;
	{
		static char out[64];

		snprintf(out, sizeof(out), "/tmp/lkvm-fakepasst.%d", (int)getpid());
		setenv("USERNET_FAKE_OUT", out, 1);
		unlink(out);
	}
	snprintf(s, sizeof(s), "mode=user,passt=%s", self);
	if (net_spec_parse(s, &spec, err, sizeof(err)) ||
	    net_open(&nb, &spec, 1, err, sizeof(err))) {
		fprintf(stderr, "usernet: %s\n", err);
		return 1;
	}
	CHECK_EQ(nsim_setup(&sim, nb, 1ULL << VIRTIO_NET_F_MAC), 0);
	for (unsigned int i = 0; i < 64; i++)
		nsim_add(&sim, RXQ, i, 2048, VRING_DESC_F_WRITE);
	nsim_kick(&sim, RXQ);
	n = recv_frame(0x88b5, f, 3000);
	CHECK(n == 64 && f[14] == 0);
	n = recv_frame(0x88b5, f, 3000);
	CHECK(n == 64 && f[14] == 3);
	{
		struct virtio_net *net = to_net(sim.dev);
		struct virtio_queue_stats st;

		virtio_queue_stats_read(net->pairs[0].rxq, &st);
		CHECK_EQ(net->pairs[0].rx_dropped, 2);
		CHECK_EQ(st.errors, 2);
		printf("fake passt: frames 0 and 3 arrived; dropped %llu (queue errors %llu)\n",
		       (unsigned long long)net->pairs[0].rx_dropped,
		       (unsigned long long)st.errors);
	}
	/*
	 * Transmit while passt reads nothing: frames back up (the ring
	 * waits on EPOLLOUT), then all arrive whole and in order.
	 */
	{
		unsigned int sent = 0, done = 0, inflight = 0;
		uint64_t end = now_ns() + 10000000000ULL;
		uint32_t id, len;
		char res[64] = "";
		bool blocked = false;
		FILE *rf;

		while (done < TX_FRAMES && now_ns() < end) {
			while (sent < TX_FRAMES && inflight < 64) {
				uint8_t *b = nsim_buf(&sim, TXQ, sent % 64);

				memset(b, 0, NET_HDR_LEN);
				for (size_t j = 0; j < tx_len(sent); j++)
					b[NET_HDR_LEN + j] = tx_byte(sent, j);
				nsim_add(&sim, TXQ, sent % 64,
					 NET_HDR_LEN + tx_len(sent), 0);
				sent++;
				inflight++;
			}
			nsim_kick(&sim, TXQ);
			blocked |= __atomic_load_n(&to_net(sim.dev)->pairs[0].tx_blocked,
						   __ATOMIC_RELAXED);
			if (nsim_wait(&sim, TXQ, &id, &len, 100)) {
				done++;
				inflight--;
			}
		}
		CHECK_EQ(done, TX_FRAMES);
		for (int i = 0; i < 100 && !res[0]; i++) {
			rf = fopen(getenv("USERNET_FAKE_OUT"), "r");
			if (rf) {
				if (!fgets(res, sizeof(res), rf))
					res[0] = 0;
				fclose(rf);
			}
			if (!res[0])
				usleep(50000);
		}
		CHECK(!strcmp(res, "ok 1500\n"));
		CHECK(blocked);
		printf("transmit while passt did not read: %s; %u frames completed; passt says %s",
		       blocked ? "the queue waited for room" : "never blocked",
		       done, res[0] ? res : "nothing\n");
	}
	nsim_teardown(&sim);
	return test_done();
}

int main(int argc, char **argv)
{
	unsigned int port, hport, gport, i;
	uint32_t me = 0, router = 0, gw = inet_addr("10.0.2.2");
	struct sockaddr_in sa = { .sin_family = AF_INET };
	uint8_t gw_mac[6], f[2048];
	struct net_backend *nb;
	pthread_t th;
	size_t n;
	int c;

	if (argc >= 3 && !strcmp(argv[1], "--fd"))
		return fake_passt();
	if (argc == 2 && !strcmp(argv[1], "drops"))
		return drops();
	if (argc == 2 && !strcmp(argv[1], "hold")) {
		if (create_user_net(&nb, 0, 0))
			return 1;
		printf("%d\n", (int)net_passt_pid(nb));
		fflush(stdout);
		pause();
	}
	if (argc < 4)
		return 2;
	port = atoi(argv[1]);
	hport = atoi(argv[2]);
	gport = atoi(argv[3]);
	/* The host's UDP echo server, on its loopback. */
	echo_fd = socket(AF_INET, SOCK_DGRAM, 0);
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(echo_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	pthread_create(&th, NULL, udp_echo, NULL);

	if (create_user_net(&nb, hport, gport))
		return test_done() + 1;
	CHECK(nb->log_fd >= 0 && nb->mtu == 1500 && !nb->offloads);
	CHECK_EQ(nsim_setup(&sim, nb, 1ULL << VIRTIO_NET_F_MAC |
			    1ULL << VIRTIO_NET_F_STATUS), 0);
	for (i = 0; i < 64; i++)
		nsim_add(&sim, RXQ, i, 2048, VRING_DESC_F_WRITE);
	nsim_kick(&sim, RXQ);

	CHECK(dhcp_offer(&me, &router, gw_mac));
	CHECK(me == inet_addr("10.0.2.15"));
	CHECK(router == gw);
	printf("DHCP offer: %s", inet_ntoa((struct in_addr){ me }));
	printf(", router %s\n", inet_ntoa((struct in_addr){ router }));
	CHECK(arp_gateway(me, gw, gw_mac));
	n = udp(f, gw_mac, me, gw, 40000, port, "ping through passt", 18);
	send_frame(f, n);
	{
		bool echoed = false;

		while (!echoed && (n = recv_frame(0x0800, f, 3000)))
			echoed = f[23] == 17 && n >= 42 + 18 &&
				 !memcmp(f + 42, "ping through passt", 18);
		CHECK(echoed);
		printf("UDP echo through 10.0.2.2:%u: %s\n", port,
		       echoed ? "back" : "lost");
	}
	/* hostfwd: a host connection shows up as a SYN for the guest. */
	c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	sa.sin_port = htons(hport);
	connect(c, (struct sockaddr *)&sa, sizeof(sa));
	{
		bool syn = false;

		while (!syn && (n = recv_frame(0x0800, f, 3000)))
			syn = f[23] == 6 && (unsigned int)(f[36] << 8 | f[37]) == gport &&
			      (f[47] & 0x02);
		CHECK(syn);
		printf("hostfwd 127.0.0.1:%u -> guest port %u: %s\n", hport,
		       gport, syn ? "SYN arrived" : "nothing");
	}
	close(c);
	/* passt dies: link down, config interrupt, the device stays. */
	{
		struct net_config *cfg = &to_net(sim.dev)->config;
		pid_t pid = net_passt_pid(nb);

		CHECK(cfg->status & VIRTIO_NET_S_LINK_UP);
		kill(pid, SIGKILL);
		for (i = 0; i < 200 && (cfg->status & VIRTIO_NET_S_LINK_UP); i++)
			usleep(10000);
		CHECK(!(cfg->status & VIRTIO_NET_S_LINK_UP));
		printf("passt killed: link %s\n",
		       cfg->status & VIRTIO_NET_S_LINK_UP ? "up" : "down");
	}
	nsim_teardown(&sim);
	shutdown(echo_fd, SHUT_RDWR);
	return test_done();
}
