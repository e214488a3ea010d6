/*
 * Tests virtio-net: the pure parts (transmit header checks, receive
 * header fixing, buffer placement, iovec copies), then the device
 * itself with its queue threads, driven by the simulated driver
 * (netsim.h) over a socketpair that stands in for a tap: transmit
 * frames and malformed ones, receive with whole and mergeable buffers,
 * frames larger than the buffers, no buffers at all, readable chains,
 * multiqueue through the control queue, offloads passed to the backend.
 */
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "netsim.h"
#include "test.h"

#define F(bit) (1ULL << (bit))

static struct virtio_net_hdr hdr(uint8_t flags, uint8_t gso, uint16_t gso_size,
				 uint16_t start, uint16_t off)
{
	return (struct virtio_net_hdr){ .flags = flags, .gso_type = gso,
					.gso_size = gso_size,
					.csum_start = start,
					.csum_offset = off };
}

static void test_tx_check(void)
{
	uint64_t all = F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_HOST_TSO4) |
		       F(VIRTIO_NET_F_HOST_TSO6) | F(VIRTIO_NET_F_HOST_ECN);
	struct virtio_net_hdr h;
	uint64_t seed = 7;
	unsigned int i;

	h = hdr(0, 0, 0, 0, 0);
	CHECK_EQ(net_tx_check(&h, 60, 0, 1500), NET_TX_OK);
	CHECK_EQ(net_tx_check(&h, 14, 0, 1500), NET_TX_OK);
	CHECK_EQ(net_tx_check(&h, 13, 0, 1500), NET_TX_SHORT);
	CHECK_EQ(net_tx_check(&h, 1518, 0, 1500), NET_TX_OK);
	CHECK_EQ(net_tx_check(&h, 1519, 0, 1500), NET_TX_TOO_BIG);
	CHECK_EQ(net_tx_check(&h, 9018, 0, 9000), NET_TX_OK);
	h = hdr(2, 0, 0, 0, 0);		/* DATA_VALID: receive only */
	CHECK_EQ(net_tx_check(&h, 60, all, 1500), NET_TX_FLAGS);
	h = hdr(0x80, 0, 0, 0, 0);
	CHECK_EQ(net_tx_check(&h, 60, all, 1500), NET_TX_FLAGS);
	h = hdr(1, 0, 0, 34, 16);
	CHECK_EQ(net_tx_check(&h, 60, all, 1500), NET_TX_OK);
	CHECK_EQ(net_tx_check(&h, 60, 0, 1500), NET_TX_CSUM);
	CHECK_EQ(net_tx_check(&h, 51, all, 1500), NET_TX_CSUM);
	CHECK_EQ(net_tx_check(&h, 52, all, 1500), NET_TX_OK);
	h = hdr(1, 0, 0, 65535, 65535);	/* no 16-bit wrap */
	CHECK_EQ(net_tx_check(&h, 1500, all, 1500), NET_TX_CSUM);
	h = hdr(1, VIRTIO_NET_HDR_GSO_TCPV4, 1448, 34, 16);
	CHECK_EQ(net_tx_check(&h, 30000, all, 1500), NET_TX_OK);
	CHECK_EQ(net_tx_check(&h, 65535 + 18, all, 1500), NET_TX_OK);
	CHECK_EQ(net_tx_check(&h, 65535 + 19, all, 1500), NET_TX_TOO_BIG);
	CHECK_EQ(net_tx_check(&h, 30000, F(VIRTIO_NET_F_CSUM), 1500),
		 NET_TX_GSO);
	CHECK_EQ(net_tx_check(&h, 1448, all, 1500), NET_TX_GSO);
	h = hdr(1, VIRTIO_NET_HDR_GSO_TCPV4, 0, 34, 16);
	CHECK_EQ(net_tx_check(&h, 3000, all, 1500), NET_TX_GSO);
	h = hdr(0, VIRTIO_NET_HDR_GSO_TCPV4, 1448, 0, 0);
	CHECK_EQ(net_tx_check(&h, 3000, all, 1500), NET_TX_GSO);
	h = hdr(1, VIRTIO_NET_HDR_GSO_TCPV6 | VIRTIO_NET_HDR_GSO_ECN, 1400, 54,
		16);
	CHECK_EQ(net_tx_check(&h, 3000, all, 1500), NET_TX_OK);
	CHECK_EQ(net_tx_check(&h, 3000, all & ~F(VIRTIO_NET_F_HOST_ECN), 1500),
		 NET_TX_GSO);
	h = hdr(1, VIRTIO_NET_HDR_GSO_UDP, 1400, 34, 6);
	CHECK_EQ(net_tx_check(&h, 3000, all, 1500), NET_TX_GSO);
	CHECK_EQ(net_tx_check(&h, 3000, all | F(VIRTIO_NET_F_HOST_UFO), 1500),
		 NET_TX_OK);
	h = hdr(1, 2, 1400, 34, 6);	/* no such type */
	CHECK_EQ(net_tx_check(&h, 3000, all, 1500), NET_TX_GSO);
	h = hdr(1, VIRTIO_NET_HDR_GSO_TCPV4, 1448, 34, 16);
	h.hdr_len = 3001;
	CHECK_EQ(net_tx_check(&h, 3000, all, 1500), NET_TX_GSO);

	/* Random headers: whatever passes keeps the promises. */
	for (i = 0; i < 200000; i++) {
		uint64_t len = test_rand(&seed) % 70000;
		enum net_tx_error e;
		bool ok = true;

		h = hdr(test_rand(&seed) % 4, test_rand(&seed) % 6 |
			(test_rand(&seed) % 8 == 0 ? 0x80 : 0),
			test_rand(&seed), test_rand(&seed) % 2000,
			test_rand(&seed) % 64);
		h.hdr_len = test_rand(&seed) % 4000;
		e = net_tx_check(&h, len, test_rand(&seed) % 2 ? all : 0,
				 1500);
		if (e != NET_TX_OK)
			continue;
		ok &= len >= 14 && !(h.flags & ~1);
		if (h.flags & 1)
			ok &= (uint64_t)h.csum_start + h.csum_offset + 2 <= len;
		if (h.gso_type)
			ok &= (h.flags & 1) && h.gso_size && h.gso_size < len &&
			      h.hdr_len <= len;
		else
			ok &= len <= 1518;
		if (!ok) {
			CHECK(ok);
			break;
		}
	}
	CHECK(i == 200000);
	CHECK(strcmp(net_tx_error_name(NET_TX_NR), "?") == 0);
}

static void test_rx_fix(void)
{
	uint64_t csum = F(VIRTIO_NET_F_GUEST_CSUM);
	struct virtio_net_hdr h;

	h = hdr(VIRTIO_NET_HDR_F_DATA_VALID, 0, 0, 0, 0);
	CHECK(net_rx_fix_hdr(&h, 0, 1));
	CHECK_EQ(h.flags, 0);
	CHECK_EQ(h.num_buffers, 1);
	h = hdr(VIRTIO_NET_HDR_F_DATA_VALID, 0, 0, 0, 0);
	CHECK(net_rx_fix_hdr(&h, csum, 3));
	CHECK_EQ(h.flags, VIRTIO_NET_HDR_F_DATA_VALID);
	CHECK_EQ(h.num_buffers, 3);
	h = hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 34, 16);
	CHECK(!net_rx_fix_hdr(&h, 0, 1));
	CHECK(net_rx_fix_hdr(&h, csum, 1));
	h = hdr(0x7, 0, 0, 0, 0);
	CHECK(net_rx_fix_hdr(&h, csum, 1));
	CHECK_EQ(h.flags, 3);
	h = hdr(1, VIRTIO_NET_HDR_GSO_TCPV4, 1448, 34, 16);
	CHECK(!net_rx_fix_hdr(&h, csum, 1));
	CHECK(net_rx_fix_hdr(&h, csum | F(VIRTIO_NET_F_GUEST_TSO4), 1));
	h = hdr(1, VIRTIO_NET_HDR_GSO_TCPV6 | VIRTIO_NET_HDR_GSO_ECN, 1448, 54, 16);
	CHECK(!net_rx_fix_hdr(&h, csum | F(VIRTIO_NET_F_GUEST_TSO6), 1));
	CHECK(net_rx_fix_hdr(&h, csum | F(VIRTIO_NET_F_GUEST_TSO6) |
			     F(VIRTIO_NET_F_GUEST_ECN), 1));
	h = hdr(1, VIRTIO_NET_HDR_GSO_UDP, 1448, 34, 6);
	CHECK(!net_rx_fix_hdr(&h, csum, 1));
	CHECK(net_rx_fix_hdr(&h, csum | F(VIRTIO_NET_F_GUEST_UFO), 1));
	h = hdr(1, 9, 1448, 34, 6);
	CHECK(!net_rx_fix_hdr(&h, ~0ULL, 1));
}

static void test_place(void)
{
	uint32_t cap[8] = { 512, 512, 512, 512, 100, 0, 512, 512 }, lens[8];
	uint64_t seed = 99;
	unsigned int i, k;

	CHECK_EQ(net_rx_place(cap, 4, 100, true, lens), 1);
	CHECK_EQ(lens[0], 100);
	CHECK_EQ(net_rx_place(cap, 4, 1412, true, lens), 3);
	CHECK(lens[0] == 512 && lens[1] == 512 && lens[2] == 388);
	CHECK_EQ(net_rx_place(cap, 4, 2048, true, lens), 4);
	CHECK_EQ(net_rx_place(cap, 4, 2049, true, lens), 0);
	CHECK_EQ(net_rx_place(cap, 4, 1412, false, lens), 0);
	CHECK_EQ(net_rx_place(cap, 4, 512, false, lens), 1);
	CHECK_EQ(net_rx_place(cap, 0, 10, true, lens), 0);
	CHECK_EQ(net_rx_place(cap, 6, 2148, true, lens), 5);
	CHECK_EQ(lens[4], 100);
	CHECK_EQ(net_rx_place(cap, 8, 2148 + 10, true, lens), 0); /* empty */
	cap[0] = 11;			/* the header must fit in the first */
	CHECK_EQ(net_rx_place(cap, 4, 11, true, lens), 0);
	for (i = 0; i < 100000; i++) {
		uint32_t c[8];
		uint64_t len = test_rand(&seed) % 5000, sum = 0, got = 0, have = 0;
		unsigned int n = test_rand(&seed) % 9, j;
		bool mrg = test_rand(&seed) % 2;

		for (j = 0; j < n; j++) {
			c[j] = 12 + test_rand(&seed) % 1600;
			have += c[j];
		}
		k = net_rx_place(c, n, len, mrg, lens);
		bool fits = n && c[0] >= 12 && (mrg ? have >= len : c[0] >= len);
		bool ok = fits ? k > 0 : k == 0;

		for (j = 0; ok && j < k; j++) {
			got += lens[j];
			ok &= lens[j] <= c[j] && (j + 1 == k || lens[j] == c[j]);
		}
		for (j = 0; k && j + 1 < k; j++)
			sum += c[j];
		if (k)
			ok &= got == len && (k == 1 || sum < len) && (mrg || k == 1);
		if (!ok) {
			CHECK(!"placement");
			break;
		}
	}
	CHECK(i == 100000);
}

static void test_iov(void)
{
	uint8_t a[5], b[7], c[3], out[20], in[15];
	struct iovec iov[3] = { { a, 5 }, { b, 7 }, { c, 3 } };
	unsigned int i;

	for (i = 0; i < sizeof(in); i++)
		in[i] = i + 1;
	CHECK_EQ(buf_to_iov(iov, 3, 0, in, 15), 15);
	CHECK(a[4] == 5 && b[0] == 6 && c[2] == 15);
	CHECK_EQ(iov_to_buf(iov, 3, 4, out, 20), 11);
	CHECK(out[0] == 5 && out[10] == 15);
	CHECK_EQ(iov_to_buf(iov, 3, 15, out, 20), 0);
	CHECK_EQ(buf_to_iov(iov, 3, 11, in, 3), 3);
	CHECK(b[6] == 1 && c[0] == 2 && c[1] == 3);
}

/* --- the device over a socketpair --- */

static unsigned int sp_offload;
static bool sp_enabled[2] = { true, true };

static int sp_set_offload(struct net_backend *nb, unsigned int off)
{
	(void)nb;
	sp_offload = off;
	return 0;
}

static int sp_set_queue(struct net_backend *nb, unsigned int q, bool on)
{
	(void)nb;
	sp_enabled[q] = on;
	return 0;
}

static void sp_close(struct net_backend *nb)
{
	unsigned int i;

	for (i = 0; i < nb->nqueues; i++)
		close(nb->fds[i]);
}

static const struct net_ops sp_ops = {
	.name = "socketpair",
	.set_offload = sp_set_offload,
	.set_queue_enabled = sp_set_queue,
	.recv = net_fd_recv,
	.send = net_fd_send,
	.close = sp_close,
};

static int peer[2];

static struct net_backend *sp_backend(unsigned int nq)
{
	struct net_backend *nb = calloc(1, sizeof(*nb));
	unsigned int i;

	nb->ops = &sp_ops;
	nb->nqueues = nq;
	nb->hdr_len = NET_HDR_LEN;
	nb->offloads = NET_OFF_CSUM | NET_OFF_TSO4 | NET_OFF_TSO6 |
		       NET_OFF_TSO_ECN | NET_OFF_UFO;
	nb->mtu = 1500;
	nb->fd_frames = true;
	for (i = 0; i < nq; i++) {
		int sv[2];

		socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv);
		fcntl(sv[0], F_SETFL, O_NONBLOCK);
		nb->fds[i] = sv[0];
		peer[i] = sv[1];
	}
	return nb;
}

static struct nsim sim;

static bool dev_up(unsigned int nq, uint64_t features)
{
	int ret = nsim_setup(&sim, sp_backend(nq), features);

	if (ret)
		fprintf(stderr, "nsim_setup: %s\n", strerror(-ret));
	return ret == 0;
}

static void dev_down(unsigned int nq)
{
	unsigned int i;

	nsim_teardown(&sim);
	for (i = 0; i < nq; i++)
		close(peer[i]);
}

/* Bytes waiting at the peer after a short wait, or -1. */
static ssize_t peer_recv(unsigned int q, void *buf, size_t len, int ms)
{
	struct pollfd pfd = { .fd = peer[q], .events = POLLIN };

	if (poll(&pfd, 1, ms) <= 0)
		return -1;
	return recv(peer[q], buf, len, MSG_DONTWAIT);
}

static void fill(uint8_t *p, size_t n, unsigned int seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7 + seed + (i >> 8));
}

static void test_dev_tx(void)
{
	static uint8_t frame[12 + 5000], got[12 + 5000];
	struct virtio_net_hdr h = hdr(0, 0, 0, 0, 0);
	uint32_t id, len;
	ssize_t n;
	unsigned int i;
	struct {
		struct virtio_net_hdr h;
		uint32_t len;
		uint16_t flags;
	} bad[] = {
		{ hdr(2, 0, 0, 0, 0), 60, 0 },
		{ hdr(0, 0, 0, 0, 0), 10, 0 },		/* shorter than a header */
		{ hdr(0, 0, 0, 0, 0), 12 + 13, 0 },
		{ hdr(0, 0, 0, 0, 0), 12 + 1519, 0 },
		{ hdr(1, 0, 0, 100, 0), 12 + 60, 0 },
		{ hdr(1, 1, 4000, 34, 16), 12 + 3000, 0 },
		{ hdr(1, 3, 1400, 34, 6), 12 + 3000, 0 },	/* no HOST_UFO */
		{ hdr(0, 0, 0, 0, 0), 12 + 60, VRING_DESC_F_WRITE },
	};

	CHECK(dev_up(1, F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_HOST_TSO4) |
		       F(VIRTIO_F_EVENT_IDX)));
	/* A plain frame goes out as header + frame, untouched. */
	memcpy(frame, &h, 12);
	fill(frame + 12, 60, 1);
	memcpy(nsim_buf(&sim, 1, 0), frame, 72);
	nsim_add(&sim, 1, 0, 72, 0);
	nsim_kick(&sim, 1);
	CHECK(nsim_wait(&sim, 1, &id, &len, 2000));
	CHECK(id == 0 && len == 0);
	n = peer_recv(0, got, sizeof(got), 2000);
	CHECK_EQ(n, 72);
	CHECK(memcmp(got, frame, 72) == 0);
	/* A TSO frame with a partial checksum, split over two descriptors. */
	h = hdr(1, VIRTIO_NET_HDR_GSO_TCPV4, 1448, 34, 16);
	h.hdr_len = 54;
	memcpy(frame, &h, 12);
	fill(frame + 12, 4000, 2);
	memcpy(nsim_buf(&sim, 1, 1), frame, 2000);
	memcpy(nsim_buf(&sim, 1, 2), frame + 2000, 2012);
	sim.q[1].desc[1] = (struct nsim_desc){ nsim_buf_gpa(&sim, 1, 1), 2000,
					       VRING_DESC_F_NEXT, 2 };
	sim.q[1].desc[2] = (struct nsim_desc){ nsim_buf_gpa(&sim, 1, 2), 2012,
					       0, 0 };
	sim.q[1].avail[2 + sim.q[1].avail_idx++ % NSIM_QSIZE] = 1;
	nsim_kick(&sim, 1);
	CHECK(nsim_wait(&sim, 1, &id, &len, 2000));
	n = peer_recv(0, got, sizeof(got), 2000);
	CHECK_EQ(n, 4012);
	CHECK(memcmp(got, frame, 4012) == 0);
	/* Frames in more pieces than io_uring takes: copied, or by writev. */
	for (i = 0; i < 2; i++) {
		unsigned int flen = i ? 5000 : 1000, per = flen / 10, k;

		/* (past the MTU only as a TSO frame) */
		h = i ? hdr(1, VIRTIO_NET_HDR_GSO_TCPV4, 1448, 34, 16) :
			hdr(0, 0, 0, 0, 0);
		memcpy(frame, &h, 12);
		fill(frame + 12, flen - 12, 8 + i);
		for (k = 0; k < 10; k++) {
			memcpy(nsim_buf(&sim, 1, 30 + k), frame + k * per, per);
			sim.q[1].desc[30 + k] = (struct nsim_desc){
				nsim_buf_gpa(&sim, 1, 30 + k), per,
				k < 9 ? VRING_DESC_F_NEXT : 0, 31 + k };
		}
		sim.q[1].avail[2 + sim.q[1].avail_idx++ % NSIM_QSIZE] = 30;
		nsim_kick(&sim, 1);
		CHECK(nsim_wait(&sim, 1, &id, &len, 2000));
		CHECK_EQ(id, 30);
		n = peer_recv(0, got, sizeof(got), 2000);
		CHECK_EQ(n, i ? 5000 : 1000);
		CHECK(memcmp(got, frame, i ? 5000 : 1000) == 0);
	}
	/* Malformed chains: all come back, nothing reaches the backend. */
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		uint8_t *b = nsim_buf(&sim, 1, 3 + i);

		memset(b, 0, bad[i].len);
		memcpy(b, &bad[i].h, MIN(12u, bad[i].len));
		nsim_add(&sim, 1, 3 + i, bad[i].len, bad[i].flags);
	}
	nsim_kick(&sim, 1);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		CHECK(nsim_wait(&sim, 1, &id, &len, 2000));
		CHECK_EQ(id, 3 + i);
		CHECK_EQ(len, 0);
	}
	CHECK_EQ(peer_recv(0, got, sizeof(got), 100), -1);
	/* And the queue still works. */
	h = hdr(0, 0, 0, 0, 0);
	memcpy(nsim_buf(&sim, 1, 20), &h, 12);
	nsim_add(&sim, 1, 20, 12 + 100, 0);
	nsim_kick(&sim, 1);
	CHECK(nsim_wait(&sim, 1, &id, &len, 2000));
	CHECK_EQ(peer_recv(0, got, sizeof(got), 2000), 112);
	dev_down(1);
}

/* Sends a frame of n bytes after the header with content seed. */
static void peer_send(unsigned int q, struct virtio_net_hdr h, size_t n,
		      unsigned int seed)
{
	static uint8_t buf[12 + 70000];

	memcpy(buf, &h, 12);
	fill(buf + 12, n, seed);
	CHECK_EQ(send(peer[q], buf, 12 + n, 0), (ssize_t)(12 + n));
}

/* Receives one frame (all its buffers) into out; returns its length. */
static long rx_frame(unsigned int qi, uint8_t *out, unsigned int *bufs,
		     uint16_t *flags)
{
	struct virtio_net_hdr h;
	uint32_t id, len;
	unsigned int i;
	long total;

	if (!nsim_wait(&sim, qi, &id, &len, 2000) || len < 12)
		return -1;
	memcpy(&h, nsim_buf(&sim, qi, id), 12);
	*bufs = h.num_buffers;
	*flags = h.flags;
	total = len - 12;
	memcpy(out, nsim_buf(&sim, qi, id) + 12, total);
	for (i = 1; i < h.num_buffers; i++) {
		if (!nsim_wait(&sim, qi, &id, &len, 2000))
			return -1;
		memcpy(out + total, nsim_buf(&sim, qi, id), len);
		total += len;
	}
	return total;
}

static bool same(const uint8_t *p, size_t n, unsigned int seed)
{
	static uint8_t want[70000];

	fill(want, n, seed);
	return memcmp(p, want, n) == 0;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void test_dev_rx_whole(void)
{
	static uint8_t out[70000];
	unsigned int bufs, i;
	uint16_t flags;
	uint32_t id, len;

	CHECK(dev_up(1, F(VIRTIO_F_EVENT_IDX)));
	for (i = 0; i < 4; i++)
		nsim_add(&sim, 0, i, 12 + 1514, VRING_DESC_F_WRITE);
	nsim_kick(&sim, 0);
	peer_send(0, hdr(VIRTIO_NET_HDR_F_DATA_VALID, 0, 0, 0, 0), 100, 3);
	CHECK_EQ(rx_frame(0, out, &bufs, &flags), 100);
	CHECK(same(out, 100, 3));
	CHECK_EQ(bufs, 1);
	CHECK_EQ(flags, 0);		/* no GUEST_CSUM: DATA_VALID cleared */
	/* Larger than a buffer: dropped; the next frame takes that buffer. */
	peer_send(0, hdr(0, 0, 0, 0, 0), 2000, 4);
	peer_send(0, hdr(0, 0, 0, 0, 0), 60, 5);
	CHECK(nsim_wait(&sim, 0, &id, &len, 2000));
	CHECK_EQ(id, 1);
	CHECK_EQ(len, 72);
	CHECK(same(nsim_buf(&sim, 0, 1) + 12, 60, 5));
	/* A segmented frame the guest did not ask for: dropped. */
	peer_send(0, hdr(1, VIRTIO_NET_HDR_GSO_TCPV4, 1448, 34, 16), 1000, 6);
	peer_send(0, hdr(0, 0, 0, 0, 0), 61, 7);
	CHECK(nsim_wait(&sim, 0, &id, &len, 2000));
	CHECK(id == 2 && len == 73);
	dev_down(1);
}

static void test_dev_rx_mergeable(void)
{
	static uint8_t out[70000];
	unsigned int bufs, slot = 0;
	uint16_t flags;
	uint32_t id, len;
	double t0;

	CHECK(dev_up(1, F(VIRTIO_NET_F_MRG_RXBUF) | F(VIRTIO_F_EVENT_IDX) |
		       F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_GUEST_TSO4)));
	CHECK_EQ(sp_offload, NET_OFF_CSUM | NET_OFF_TSO4);
	/* No buffers yet: frames wait in the backend, and nothing spins. */
	peer_send(0, hdr(0, 0, 0, 0, 0), 1400, 10);
	peer_send(0, hdr(VIRTIO_NET_HDR_F_DATA_VALID, 0, 0, 0, 0), 9000, 11);
	peer_send(0, hdr(0, 0, 0, 0, 0), 60, 12);
	usleep(20000);
	t0 = cpu_seconds();
	usleep(200000);
	CHECK(cpu_seconds() - t0 < 0.05);
	CHECK(!nsim_used(&sim, 0, &id, &len));
	/* Two buffers: not enough for the first frame, which then waits. */
	for (; slot < 2; slot++)
		nsim_add(&sim, 0, slot, 512, VRING_DESC_F_WRITE);
	nsim_kick(&sim, 0);
	usleep(50000);
	CHECK(!nsim_used(&sim, 0, &id, &len));
	for (; slot < 40; slot++)
		nsim_add(&sim, 0, slot, 512, VRING_DESC_F_WRITE);
	nsim_kick(&sim, 0);
	CHECK_EQ(rx_frame(0, out, &bufs, &flags), 1400);
	CHECK(same(out, 1400, 10));
	CHECK_EQ(bufs, 3);
	CHECK_EQ(rx_frame(0, out, &bufs, &flags), 9000);
	CHECK(same(out, 9000, 11));
	CHECK_EQ(bufs, (12 + 9000 + 511) / 512);
	CHECK_EQ(flags, VIRTIO_NET_HDR_F_DATA_VALID);
	CHECK_EQ(rx_frame(0, out, &bufs, &flags), 60);
	CHECK(same(out, 60, 12));
	CHECK_EQ(bufs, 1);
	/* A 64 KiB TSO frame through the overflow area. */
	for (; slot < 256; slot++)
		nsim_add(&sim, 0, slot, 512, VRING_DESC_F_WRITE);
	nsim_kick(&sim, 0);
	peer_send(0, hdr(1, VIRTIO_NET_HDR_GSO_TCPV4, 1448, 34, 16), 65000, 13);
	CHECK_EQ(rx_frame(0, out, &bufs, &flags), 65000);
	CHECK(same(out, 65000, 13));
	dev_down(1);
}

static void test_dev_rx_hostile(void)
{
	static uint8_t out[70000];
	unsigned int bufs, i;
	uint16_t flags;
	uint32_t id, len;

	CHECK(dev_up(1, F(VIRTIO_NET_F_MRG_RXBUF)));
	/* A readable chain comes back empty and is not written. */
	memset(nsim_buf(&sim, 0, 0), 0xaa, 64);
	nsim_add(&sim, 0, 0, 64, 0);
	/* Then tiny buffers: the whole ring cannot hold a 20000-byte frame. */
	for (i = 1; i < NSIM_QSIZE; i++)
		nsim_add(&sim, 0, i, 64, VRING_DESC_F_WRITE);
	nsim_kick(&sim, 0);
	peer_send(0, hdr(0, 0, 0, 0, 0), 20000, 20);
	peer_send(0, hdr(0, 0, 0, 0, 0), 100, 21);
	CHECK(nsim_wait(&sim, 0, &id, &len, 2000));
	CHECK(id == 0 && len == 0);
	CHECK(nsim_buf(&sim, 0, 0)[10] == 0xaa);
	/* The frame waits while the guest may still add buffers... */
	usleep(50000);
	CHECK(!nsim_used(&sim, 0, &id, &len));
	/* ...and is dropped once the device holds the whole ring. */
	nsim_add(&sim, 0, 0, 64, VRING_DESC_F_WRITE);
	nsim_kick(&sim, 0);
	CHECK_EQ(rx_frame(0, out, &bufs, &flags), 100);
	CHECK(same(out, 100, 21));
	CHECK_EQ(bufs, 2);
	/* Runt frames from the backend are dropped too. */
	CHECK_EQ(send(peer[0], out, 5, 0), 5);
	peer_send(0, hdr(0, 0, 0, 0, 0), 40, 22);
	CHECK_EQ(rx_frame(0, out, &bufs, &flags), 40);
	CHECK(same(out, 40, 22));
	dev_down(1);
}

/* Sends a control command; returns the device's ack (or 0xee). */
static uint8_t ctrl(uint8_t cls, uint8_t cmd, uint16_t arg)
{
	uint8_t *b = nsim_buf(&sim, 4, 0);
	uint32_t id, len;

	b[0] = cls;
	b[1] = cmd;
	b[2] = arg;
	b[3] = arg >> 8;
	b[4096] = 0xee;
	sim.q[4].desc[0] = (struct nsim_desc){ nsim_buf_gpa(&sim, 4, 0), 4,
					       VRING_DESC_F_NEXT, 1 };
	sim.q[4].desc[1] = (struct nsim_desc){ nsim_buf_gpa(&sim, 4, 0) + 4096,
					       1, VRING_DESC_F_WRITE, 0 };
	sim.q[4].avail[2 + sim.q[4].avail_idx++ % NSIM_QSIZE] = 0;
	nsim_kick(&sim, 4);
	if (!nsim_wait(&sim, 4, &id, &len, 2000))
		return 0xee;
	return b[4096];
}

static void test_dev_mq(void)
{
	static uint8_t out[2000];
	unsigned int bufs, i;
	uint16_t flags;

	CHECK(dev_up(2, F(VIRTIO_NET_F_MQ) | F(VIRTIO_NET_F_CTRL_VQ)));
	CHECK(!sp_enabled[1]);		/* one pair until the driver asks */
	CHECK_EQ(ctrl(VIRTIO_NET_CTRL_MQ, 0, 3), VIRTIO_NET_ERR);
	CHECK_EQ(ctrl(VIRTIO_NET_CTRL_MQ, 0, 0), VIRTIO_NET_ERR);
	CHECK_EQ(ctrl(1, 0, 1), VIRTIO_NET_ERR);
	CHECK(!sp_enabled[1]);
	CHECK_EQ(ctrl(VIRTIO_NET_CTRL_MQ, 0, 2), VIRTIO_NET_OK);
	CHECK(sp_enabled[1]);
	for (i = 0; i < 8; i++) {
		nsim_add(&sim, 0, i, 1526, VRING_DESC_F_WRITE);
		nsim_add(&sim, 2, i, 1526, VRING_DESC_F_WRITE);
	}
	nsim_kick(&sim, 0);
	nsim_kick(&sim, 2);
	peer_send(0, hdr(0, 0, 0, 0, 0), 100, 30);
	peer_send(1, hdr(0, 0, 0, 0, 0), 200, 31);
	CHECK_EQ(rx_frame(2, out, &bufs, &flags), 200);
	CHECK(same(out, 200, 31));
	CHECK_EQ(rx_frame(0, out, &bufs, &flags), 100);
	CHECK(same(out, 100, 30));
	CHECK_EQ(ctrl(VIRTIO_NET_CTRL_MQ, 0, 1), VIRTIO_NET_OK);
	CHECK(!sp_enabled[1]);
	CHECK_EQ(ctrl(VIRTIO_NET_CTRL_MQ, 0, 2), VIRTIO_NET_OK);
	virtio_set_status(sim.dev, 0);	/* reset: back to one pair */
	CHECK(!sp_enabled[1]);
	CHECK_EQ(sp_offload, 0);
	dev_down(2);
}

/*
 * A careless or hostile driver at random: transmit chains of 1-4
 * descriptors with random lengths, flags and header bytes, receive
 * chains of random sizes (some readable), and random frames from the
 * backend, runts and giants included.  Every chain must come back,
 * with a length within what it offered, and the device must stay
 * usable (no NEEDS_RESET: the rings themselves are well-formed).
 */
static void test_dev_random(void)
{
	static const uint64_t feats[] = {
		0,
		F(VIRTIO_NET_F_MRG_RXBUF) | F(VIRTIO_F_EVENT_IDX),
		F(VIRTIO_NET_F_MRG_RXBUF) | F(VIRTIO_NET_F_CSUM) |
			F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_GUEST_CSUM) |
			F(VIRTIO_NET_F_GUEST_TSO4),
	};
	static uint8_t junk[12 + 70000];
	uint32_t cap[NSIM_QSIZE];
	uint64_t seed = 4242;
	unsigned int f, i, bad = 0, sent, back;

	for (f = 0; f < ARRAY_SIZE(feats); f++) {
		uint32_t id, len;
		unsigned int rx_out = 0;

		CHECK(dev_up(1, feats[f]));
		for (i = 0; i < 300; i++) {
			unsigned int nd = 1 + test_rand(&seed) % 4, k;
			unsigned int base = (i * 4) % (NSIM_QSIZE - 4);
			/* Writable parts only after readable ones: a chain
			 * the other way round breaks the ring (NEEDS_RESET). */
			unsigned int w = test_rand(&seed) % 8 == 0 ?
					 test_rand(&seed) % nd : nd;

			for (k = 0; k < nd; k++) {
				uint32_t dl = test_rand(&seed) % 2000;
				uint16_t fl = (k + 1 < nd ? VRING_DESC_F_NEXT : 0) |
					      (k >= w ? VRING_DESC_F_WRITE : 0);
				uint8_t *b = nsim_buf(&sim, 1, base + k);
				unsigned int j;

				for (j = 0; j < 16; j++)
					b[j] = test_rand(&seed);
				if (test_rand(&seed) % 2)
					memset(b, 0, 12);	/* a plain header */
				sim.q[1].desc[base + k] = (struct nsim_desc){
					nsim_buf_gpa(&sim, 1, base + k), dl, fl,
					base + k + 1 };
			}
			sim.q[1].avail[2 + sim.q[1].avail_idx++ % NSIM_QSIZE] =
				base;
			nsim_kick(&sim, 1);
			if (!nsim_wait(&sim, 1, &id, &len, 5000) || id != base ||
			    len)
				bad++;
			while (peer_recv(0, junk, sizeof(junk), 0) > 0)
				;
		}
		/* Receive: random chains, random frames. */
		for (i = 0; i < NSIM_QSIZE; i++) {
			cap[i] = 1 + test_rand(&seed) % 3000;
			nsim_add(&sim, 0, i, cap[i], test_rand(&seed) % 32 ?
				 VRING_DESC_F_WRITE : 0);
			rx_out++;
		}
		nsim_kick(&sim, 0);
		for (sent = 0; sent < 200; sent++) {
			size_t n = test_rand(&seed) % 4 == 0 ?
				   test_rand(&seed) % 20000 :
				   test_rand(&seed) % 1600;
			unsigned int j;

			for (j = 0; j < 12 && j < n; j++)
				junk[j] = test_rand(&seed) % 3 ? 0 : test_rand(&seed);
			if (send(peer[0], junk, n, MSG_DONTWAIT) < 0)
				break;
			/* Take back what came and give the buffers again. */
			while (nsim_used(&sim, 0, &id, &len)) {
				if (id >= NSIM_QSIZE || len > cap[id])
					bad++;
				else
					nsim_add(&sim, 0, id, cap[id],
						 VRING_DESC_F_WRITE);
			}
			nsim_kick(&sim, 0);
		}
		usleep(50000);
		back = 0;
		while (nsim_used(&sim, 0, &id, &len)) {
			if (id >= NSIM_QSIZE || len > cap[id])
				bad++;
			back++;
		}
		CHECK(!(atomic_load(&sim.dev->status) & VIRTIO_STATUS_NEEDS_RESET));
		dev_down(1);
	}
	CHECK_EQ(bad, 0);
	CHECK(back <= NSIM_QSIZE);
}

int main(void)
{
	test_tx_check();
	test_rx_fix();
	test_place();
	test_iov();
	test_dev_tx();
	test_dev_rx_whole();
	test_dev_rx_mergeable();
	test_dev_rx_hostile();
	test_dev_mq();
	test_dev_random();
	return test_done();
}
