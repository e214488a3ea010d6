/*
 * usernetbench - the user-mode network (-n mode=user) through a real
 * passt: lkvm's virtio-net device and passt backend driven by the
 * simulated guest driver (tests/unit/netsim.h, no KVM), beside a
 * baseline that drives passt's own socket directly with the same frames.
 * Both start passt the same way (net_open: same arguments, same socket
 * pair); the baseline then reads and writes the length-prefixed frames
 * itself.  passt wants an external interface with a default route: run
 * it in a network namespace that has one (tests/bench/usernet.py makes
 * it).
 *
 *   usernetbench --test udp-tx|udp-rx|tcp-rx --size BYTES --seconds S
 *                [--baseline]
 *     prints one JSON object: frames/s, MB/s of payload, the CPU time
 *     per frame of the thread that moves frames (lkvm's queue thread, or
 *     the baseline's) and of passt.
 *     udp-tx: the guest sends UDP to 10.0.2.2:PORT, which passt maps to
 *     the host's loopback; a sink there counts what arrives.
 *     udp-rx: a host source sends to 127.0.0.1:HPORT, forwarded by
 *     passt (-u) to the guest; the guest counts frames.
 *     tcp-rx: a host program connects to 127.0.0.1:HPORT (-t) and
 *     writes as fast as it can; a minimal TCP receiver on the guest side
 *     (SYN-ACK, one cumulative ACK per batch, an 8 MiB window) takes the
 *     stream.  Same receiver code for both.
 *
 * USERNETBENCH_PIN=MASK pins, for experiments: 1 the frame mover to CPU
 * 1, 2 passt to CPU 0, 4 the host-side thread to CPU 0.  On a 2-CPU
 * machine lkvm's pipeline has one thread more than the baseline's (the
 * simulated guest's vCPU), and where the scheduler puts it decides much
 * of the frames per second; the CPU time per frame of the mover does
 * not depend on it.
 * USERNETBENCH_DEBUG=1 prints the TCP receiver's out-of-order count.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "lkvm/net/stream.h"
#include "netsim.h"

#define RXQ		0
#define TXQ		1
#define RXBUF		2048
#define SINK_PORT	47001
#define HPORT		47002
#define GPORT		5001
#define BATCH		64

enum test { UDP_TX, UDP_RX, TCP_RX };

static enum test test = UDP_TX;
static unsigned int frame_size = 1500;
static atomic_bool stop;
static atomic_uint_fast64_t host_count;		/* datagrams the sink took */

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static uint8_t gw_mac[6];
static uint32_t guest_ip, gw_ip;

/* --- frames --- */

static uint32_t sum16(const void *p, size_t n, uint32_t sum)
{
	const uint8_t *b = p;

	for (; n > 1; n -= 2, b += 2)
		sum += b[0] << 8 | b[1];
	if (n)
		sum += b[0] << 8;
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
}

/* Ethernet + IPv4 header (proto, total payload after IP); returns 34. */
static size_t ipv4(uint8_t *f, const uint8_t *dmac, uint32_t dst, uint8_t proto,
		   size_t l4)
{
	uint8_t *ip = f + 14;

	memcpy(f, dmac, 6);
	memcpy(f + 6, guest_mac, 6);
	put16(f + 12, 0x0800);
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put16(ip + 2, 20 + l4);
	ip[8] = 64;
	ip[9] = proto;
	memcpy(ip + 12, &guest_ip, 4);
	memcpy(ip + 16, &dst, 4);
	put16(ip + 10, fold(sum16(ip, 20, 0)));
	return 34;
}

/* A UDP frame of `len` bytes to the gateway's port (UDP checksum 0). */
static void udp_frame(uint8_t *f, size_t len, unsigned int seq)
{
	size_t o = ipv4(f, gw_mac, gw_ip, 17, len - 34);
	uint8_t *u = f + o;

	put16(u, 40000);
	put16(u + 2, SINK_PORT);
	put16(u + 4, len - 34);
	put16(u + 6, 0);
	for (size_t i = 42; i < len; i++)
		f[i] = (uint8_t)(seq + i);
}

/* --- the guest's minimal TCP receiver --- */

struct tcp_rx {
	bool open;
	uint8_t peer_mac[6];
	uint32_t peer_ip;
	uint16_t peer_port;
	uint32_t rcv_nxt, acked, snd_nxt;
	bool need_ack;
	uint64_t bytes, empty, gaps;
};

static struct tcp_rx tcp;

/* A TCP segment from us to the peer: flags, options; frame length. */
static size_t tcp_frame(uint8_t *f, uint8_t flags, bool syn_opts)
{
	size_t hl = syn_opts ? 28 : 20, o = ipv4(f, tcp.peer_mac, tcp.peer_ip, 6, hl);
	uint8_t *t = f + o, pseudo[12];
	uint32_t sum;

	memset(t, 0, hl);
	put16(t, GPORT);
	put16(t + 2, tcp.peer_port);
	put32(t + 4, tcp.snd_nxt);
	put32(t + 8, tcp.rcv_nxt);
	t[12] = hl / 4 << 4;
	t[13] = flags;
	put16(t + 14, 0xffff);		/* << 7: 8 MiB */
	if (syn_opts) {
		t[20] = 2, t[21] = 4;	/* MSS 1460 */
		put16(t + 22, 1460);
		t[24] = 1;		/* NOP, window scale 7 */
		t[25] = 3, t[26] = 3, t[27] = 7;
	}
	memcpy(pseudo, &guest_ip, 4);
	memcpy(pseudo + 4, &tcp.peer_ip, 4);
	pseudo[8] = 0;
	pseudo[9] = 6;
	put16(pseudo + 10, hl);
	sum = sum16(pseudo, 12, 0);
	put16(t + 16, fold(sum16(t, hl, sum)));
	return o + hl;
}

/*
 * One frame from passt.  Returns the length of a reply built in out (a
 * SYN-ACK), else 0; data only moves rcv_nxt, acknowledged per batch.
 */
static size_t tcp_input(const uint8_t *f, size_t len, uint8_t *out)
{
	const uint8_t *ip = f + 14, *t;
	size_t ihl, doff, tot, pl;
	uint32_t seq;

	if (len < 54 || f[12] != 0x08 || f[13] != 0 || ip[9] != 6)
		return 0;
	ihl = (ip[0] & 15) * 4;
	tot = ip[2] << 8 | ip[3];
	if (ihl < 20 || tot > len - 14 || tot < ihl + 20)
		return 0;
	t = ip + ihl;
	doff = (t[12] >> 4) * 4;
	if ((t[2] << 8 | t[3]) != GPORT || doff < 20 || ihl + doff > tot)
		return 0;
	seq = get32(t + 4);
	if (t[13] & 0x02) {			/* SYN: accept it */
		memcpy(tcp.peer_mac, f + 6, 6);
		memcpy(&tcp.peer_ip, ip + 12, 4);
		tcp.peer_port = t[0] << 8 | t[1];
		tcp.rcv_nxt = tcp.acked = seq + 1;
		tcp.snd_nxt = 1000;
		tcp.open = true;
		len = tcp_frame(out, 0x12, true);
		tcp.snd_nxt++;
		return len;
	}
	pl = tot - ihl - doff;
	if (!pl)
		tcp.empty++;
	if (!tcp.open || !pl)
		return 0;
	if (seq == tcp.rcv_nxt) {
		tcp.rcv_nxt += pl;
		tcp.bytes += pl;
	} else {
		tcp.need_ack = true;		/* a gap or a repeat: say where we are */
		if (getenv("USERNETBENCH_DEBUG") && tcp.gaps < 12)
			fprintf(stderr, "gap: seq %u rcv_nxt %u len %zu flags %x\n",
				seq - tcp.acked, tcp.rcv_nxt - tcp.acked, pl, t[13]);
		tcp.gaps++;
	}
	return 0;
}

/* The ACK a batch ends with, if one is due: its length, else 0. */
static size_t tcp_ack(uint8_t *out)
{
	if (!tcp.open || (tcp.rcv_nxt == tcp.acked && !tcp.need_ack))
		return 0;
	tcp.acked = tcp.rcv_nxt;
	tcp.need_ack = false;
	return tcp_frame(out, 0x10, false);
}

static int pin_mode;		/* USERNETBENCH_PIN: see main() */

static void pin_tid(pid_t tid, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(tid, sizeof(set), &set);
}

/* --- host side: the UDP sink, the UDP source, the TCP writer --- */

static int udp_socket(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), big = 4 << 20;

	setsockopt(s, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &(struct timeval){ 0, 50000 },
		   sizeof(struct timeval));
	if (port && bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(s);
		return -1;
	}
	return s;
}

static void *sink_main(void *arg)
{
	if (pin_mode & 4)
		pin_tid(gettid(), 0);
	static uint8_t bufs[BATCH][2048];
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	int s = (int)(intptr_t)arg;

	for (int i = 0; i < BATCH; i++) {
		iov[i] = (struct iovec){ bufs[i], sizeof(bufs[i]) };
		m[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i],
						      .msg_iovlen = 1 } };
	}
	while (!atomic_load(&stop)) {
		/* recvmmsg's own timeout is only looked at between datagrams. */
		int n = recvmmsg(s, m, BATCH, MSG_WAITFORONE, NULL);

		if (n > 0)
			atomic_fetch_add(&host_count, n);
	}
	return NULL;
}

/*
 * The UDP source keeps at most WINDOW datagrams on their way to the
 * guest (a closed loop, as a flow-controlled sender would): blasting
 * instead overruns passt's socket, and the run measures how the
 * scheduler shares out a CPU among dropped datagrams, not the path.
 * Datagrams lost anyway are written off after a 2 ms stall.
 */
#define WINDOW		256

static atomic_uint_fast64_t rx_frames;

static void *source_main(void *arg)
{
	static uint8_t buf[2048];
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(HPORT),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct mmsghdr m[BATCH];
	struct iovec iov = { buf, frame_size - 42 };
	int s = (int)(intptr_t)arg;
	uint64_t sent = 0, lost = 0, seen = 0, since = now_ns();

	if (pin_mode & 4)
		pin_tid(gettid(), 0);
	for (int i = 0; i < BATCH; i++)
		m[i] = (struct mmsghdr){ .msg_hdr = { .msg_name = &sa,
						      .msg_namelen = sizeof(sa),
						      .msg_iov = &iov,
						      .msg_iovlen = 1 } };
	while (!atomic_load(&stop)) {
		uint64_t got = atomic_load(&rx_frames), room;
		int n;

		if (got != seen) {
			seen = got;
			since = now_ns();
		}
		room = WINDOW - MIN((uint64_t)WINDOW, sent - lost - got);
		if (room < BATCH) {
			if (now_ns() - since > 2000000) {
				lost = sent - got;
				since = now_ns();
			}
			nanosleep(&(struct timespec){ 0, 20000 }, NULL);
			continue;
		}
		n = sendmmsg(s, m, BATCH, 0);
		if (n > 0)
			sent += n;
	}
	return NULL;
}

static void *writer_main(void *arg)
{
	static uint8_t buf[65536];
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(HPORT),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	(void)arg;
	if (pin_mode & 4)
		pin_tid(gettid(), 0);
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("usernetbench: connect");
		close(s);
		return NULL;
	}
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO,
		   &(struct timeval){ 0, 100000 }, sizeof(struct timeval));
	while (!atomic_load(&stop))
		if (write(s, buf, sizeof(buf)) < 0 && errno != EAGAIN)
			break;
	close(s);
	return NULL;
}

/* --- measuring --- */


static uint64_t schedstat_ns(const char *path)
{
	unsigned long long ns = 0;
	FILE *f = fopen(path, "r");

	if (f) {
		if (fscanf(f, "%llu", &ns) != 1)
			ns = 0;
		fclose(f);
	}
	return ns;
}

static uint64_t tid_ns(pid_t tid)
{
	char p[64];

	snprintf(p, sizeof(p), "/proc/self/task/%d/schedstat", (int)tid);
	return schedstat_ns(p);
}

static uint64_t pid_ns(pid_t pid)
{
	char p[64];

	snprintf(p, sizeof(p), "/proc/%d/schedstat", (int)pid);
	return schedstat_ns(p);
}

/* The tid of our thread called name (lkvm's queue thread). */
static pid_t tid_named(const char *name)
{
	char path[64], comm[32];

	for (pid_t t = getpid(); t < getpid() + 4096; t++) {
		FILE *f;

		snprintf(path, sizeof(path), "/proc/self/task/%d/comm", (int)t);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && !strncmp(comm, name, strlen(name))) {
			fclose(f);
			return t;
		}
		fclose(f);
	}
	return 0;
}

/* --- the two guest sides: a transport each --- */

struct side {
	bool lkvm;
	struct net_backend *nb;
	/* lkvm */
	struct nsim *s;
	uint16_t tx_free[NSIM_QSIZE];
	unsigned int ntx_free;
	/* baseline */
	int fd;
	struct stream_rx srx;
	uint8_t *rbuf, *frame;
	size_t rlen, roff;
	uint64_t irqs;
};

static void side_tx_reclaim(struct side *sd)
{
	uint32_t id, len;

	while (nsim_used(sd->s, TXQ, &id, &len))
		if (id < NSIM_QSIZE)
			sd->tx_free[sd->ntx_free++] = id;
}

/* One frame out (the slow path: set-up, ACKs). */
static void side_send(struct side *sd, const uint8_t *f, size_t len)
{
	if (sd->lkvm) {
		uint16_t slot;

		side_tx_reclaim(sd);
		if (!sd->ntx_free)
			return;		/* ring full: a later ACK covers it */
		slot = sd->tx_free[--sd->ntx_free];
		memset(nsim_buf(sd->s, TXQ, slot), 0, NET_HDR_LEN);
		memcpy(nsim_buf(sd->s, TXQ, slot) + NET_HDR_LEN, f, len);
		nsim_add(sd->s, TXQ, slot, NET_HDR_LEN + len, 0);
		nsim_kick(sd->s, TXQ);
		return;
	}
	{
		uint8_t b[STREAM_HDR + 2048];
		size_t off = 0;

		put32(b, len);
		memcpy(b + STREAM_HDR, f, len);
		while (off < STREAM_HDR + len) {
			ssize_t n = write(sd->fd, b + off, STREAM_HDR + len - off);

			if (n > 0)
				off += n;
			else if (errno == EAGAIN)
				poll(&(struct pollfd){ sd->fd, POLLOUT, 0 }, 1, 10);
			else
				return;
		}
	}
}

/*
 * Calls fn for each frame that arrives (Ethernet first), in batches;
 * after each batch, end(). Waits at most ms for the first.
 */
static unsigned int side_recv(struct side *sd, int ms,
			      void (*fn)(struct side *, const uint8_t *, size_t),
			      void (*end)(struct side *))
{
	unsigned int n = 0;

	if (sd->lkvm) {
		struct nsim *s = sd->s;
		uint32_t id, len;

		while (nsim_used(s, RXQ, &id, &len)) {
			if (id < NSIM_QSIZE && len > NET_HDR_LEN)
				fn(sd, nsim_buf(s, RXQ, id) + NET_HDR_LEN,
				   len - NET_HDR_LEN);
			nsim_add(s, RXQ, id % NSIM_QSIZE, RXBUF, VRING_DESC_F_WRITE);
			n++;
		}
		if (n) {
			nsim_kick(s, RXQ);
			if (end)
				end(sd);
			return n;
		}
		/* Like NAPI: interrupts back on, look once more, then sleep. */
		nsim_want_irq(s, RXQ);
		if (__atomic_load_n(&s->q[RXQ].used[1], __ATOMIC_ACQUIRE) ==
		    s->q[RXQ].last_used) {
			struct pollfd p = { s->q[RXQ].irq_fd, POLLIN, 0 };
			uint64_t v;

			if (poll(&p, 1, ms) > 0 &&
			    read(p.fd, &v, sizeof(v)) == sizeof(v))
				sd->irqs++;
		}
		return 0;
	}
	for (;;) {
		uint32_t done;
		ssize_t r;

		while (sd->roff < sd->rlen) {
			sd->roff += stream_rx_feed(&sd->srx, sd->rbuf + sd->roff,
						   sd->rlen - sd->roff, sd->frame,
						   &done);
			if (done) {
				fn(sd, sd->frame, done);
				n++;
			}
		}
		if (n && end)
			end(sd);
		if (n)
			return n;
		sd->roff = sd->rlen = 0;
		r = read(sd->fd, sd->rbuf, 65536);
		if (r > 0) {
			sd->rlen = r;
			continue;
		}
		if (r < 0 && errno == EAGAIN &&
		    poll(&(struct pollfd){ sd->fd, POLLIN, 0 }, 1, ms) > 0)
			continue;
		return 0;
	}
}

static bool arp_found;

static void arp_reply(struct side *sd, const uint8_t *f, size_t len)
{
	(void)sd;
	if (len >= 42 && f[12] == 0x08 && f[13] == 0x06 && f[21] == 2 &&
	    !memcmp(f + 28, &gw_ip, 4)) {
		memcpy(gw_mac, f + 22, 6);
		arp_found = true;
	}
}

/* Asks for the gateway's MAC (and so tells passt ours). */
static bool arp_gateway(struct side *sd)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	uint8_t f[42];

	memcpy(f, bcast, 6);
	memcpy(f + 6, guest_mac, 6);
	put16(f + 12, 0x0806);
	memcpy(f + 14, "\x00\x01\x08\x00\x06\x04\x00\x01", 8);
	memcpy(f + 22, guest_mac, 6);
	memcpy(f + 28, &guest_ip, 4);
	memset(f + 32, 0, 6);
	memcpy(f + 38, &gw_ip, 4);
	for (int i = 0; i < 20 && !arp_found; i++) {
		side_send(sd, f, sizeof(f));
		for (int k = 0; k < 10 && !arp_found; k++)
			side_recv(sd, 10, arp_reply, NULL);
	}
	return arp_found;
}


static void count_frame(struct side *sd, const uint8_t *f, size_t len)
{
	(void)sd;
	(void)f;
	(void)len;
	atomic_fetch_add_explicit(&rx_frames, 1, memory_order_relaxed);
}

static void tcp_frame_in(struct side *sd, const uint8_t *f, size_t len)
{
	uint8_t out[80];
	size_t n = tcp_input(f, len, out);

	atomic_fetch_add_explicit(&rx_frames, 1, memory_order_relaxed);
	if (n)
		side_send(sd, out, n);
}

static void tcp_batch_end(struct side *sd)
{
	uint8_t out[80];
	size_t n = tcp_ack(out);

	if (n)
		side_send(sd, out, n);
}

/* udp-tx, lkvm: keep the transmit ring full of frames, like Linux. */
static void lkvm_udp_tx(struct side *sd)
{
	struct nsim *s = sd->s;
	uint32_t id, len;
	unsigned int i;

	for (i = 0; i < NSIM_QSIZE; i++)
		udp_frame(nsim_buf(s, TXQ, i) + NET_HDR_LEN, frame_size, i);
	side_tx_reclaim(sd);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		bool got = false;

		while (sd->ntx_free)
			nsim_add(s, TXQ, sd->tx_free[--sd->ntx_free],
				 NET_HDR_LEN + frame_size, 0);
		nsim_kick(s, TXQ);
		while (nsim_used(s, TXQ, &id, &len)) {
			sd->tx_free[sd->ntx_free++] = id % NSIM_QSIZE;
			got = true;
		}
		if (got)
			continue;
		/* Interrupt when three quarters of the ring went. */
		__atomic_store_n(&s->q[TXQ].avail[2 + NSIM_QSIZE],
				 (uint16_t)(s->q[TXQ].last_used + NSIM_QSIZE * 3 / 4),
				 __ATOMIC_RELEASE);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (__atomic_load_n(&s->q[TXQ].used[1], __ATOMIC_ACQUIRE) !=
		    s->q[TXQ].last_used)
			continue;
		{
			struct pollfd p = { s->q[TXQ].irq_fd, POLLIN, 0 };
			uint64_t v;

			if (poll(&p, 1, 50) > 0 &&
			    read(p.fd, &v, sizeof(v)) == sizeof(v))
				sd->irqs++;
		}
	}
}

/* udp-tx, baseline: the same frames, prefixed, written in batches. */
static void base_udp_tx(struct side *sd)
{
	size_t per = STREAM_HDR + frame_size, total = BATCH * per, off = 0;
	uint8_t *b = malloc(total);

	for (unsigned int i = 0; i < BATCH; i++) {
		put32(b + i * per, frame_size);
		udp_frame(b + i * per + STREAM_HDR, frame_size, i);
	}
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		ssize_t n = write(sd->fd, b + off, total - off);

		if (n > 0)
			off = (off + n) % total;
		else if (errno == EAGAIN)
			poll(&(struct pollfd){ sd->fd, POLLOUT, 0 }, 1, 50);
		else
			break;
	}
	free(b);
}

struct mover {
	struct side *sd;
	pid_t tid;
	pthread_t thread;
};

/*
 * The guest side's thread: for the baseline it moves frames itself, as
 * lkvm's queue thread does; for lkvm it is the simulated driver (the
 * vCPU).  Both run the same receiver; transmit differs by transport.
 */
static void *guest_main(void *arg)
{
	struct mover *m = arg;

	m->tid = gettid();
	if (test == UDP_TX) {
		(m->sd->lkvm ? lkvm_udp_tx : base_udp_tx)(m->sd);
		return NULL;
	}
	while (!atomic_load_explicit(&stop, memory_order_relaxed))
		side_recv(m->sd, 50, test == TCP_RX ? tcp_frame_in : count_frame,
			  test == TCP_RX ? tcp_batch_end : NULL);
	return NULL;
}

static struct net_backend *open_passt(void)
{
	struct net_backend *nb;
	struct net_spec spec;
	char s[160], err[256];

	snprintf(s, sizeof(s), "mode=user,hostfwd=%s:127.0.0.1:%u-:%u",
		 test == TCP_RX ? "tcp" : "udp", HPORT, GPORT);
	if (net_spec_parse(s, &spec, err, sizeof(err)) ||
	    net_open(&nb, &spec, 1, err, sizeof(err))) {
		fprintf(stderr, "usernetbench: %s\n", err);
		return NULL;
	}
	return nb;
}

static int run(bool baseline, double seconds)
{
	static struct nsim s;
	static struct side sd;
	struct mover m = { .sd = &sd };
	pthread_t host;
	int hs = -1;
	uint64_t t0, t1, c0, c1, p0, p1, f0, f1, b0 = 0, b1 = 0, k0, k1, i0, i1;
	pid_t passt, mover_tid;
	double secs, frames;

	sd.nb = open_passt();
	if (!sd.nb)
		return 1;
	passt = net_passt_pid(sd.nb);
	sd.lkvm = !baseline;
	if (sd.lkvm) {
		if (nsim_setup_slots(&s, sd.nb, 1ULL << VIRTIO_NET_F_MAC |
				     1ULL << VIRTIO_F_EVENT_IDX, RXBUF)) {
			fprintf(stderr, "usernetbench: device set-up failed\n");
			return 1;
		}
		sd.s = &s;
		for (unsigned int i = 0; i < NSIM_QSIZE; i++) {
			nsim_add(&s, RXQ, i, RXBUF, VRING_DESC_F_WRITE);
			sd.tx_free[sd.ntx_free++] = i;
		}
		nsim_kick(&s, RXQ);
	} else {
		sd.fd = sd.nb->fds[0];
		stream_rx_init(&sd.srx, 1500 + 18);
		sd.rbuf = malloc(65536);
		sd.frame = malloc(2048);
	}
	if (!arp_gateway(&sd)) {
		fprintf(stderr, "usernetbench: no ARP reply from passt\n");
		return 1;
	}
	atomic_store(&stop, false);
	if (test == UDP_TX) {
		hs = udp_socket(SINK_PORT);
		pthread_create(&host, NULL, sink_main, (void *)(intptr_t)hs);
	} else if (test == UDP_RX) {
		hs = udp_socket(0);
		pthread_create(&host, NULL, source_main, (void *)(intptr_t)hs);
	} else {
		pthread_create(&host, NULL, writer_main, NULL);
	}
	pthread_create(&m.thread, NULL, guest_main, &m);
	usleep(200000);			/* flowing before the clock starts */
	mover_tid = sd.lkvm ? tid_named("net0-q0") : m.tid;
	if (pin_mode & 1)
		pin_tid(mover_tid, 1);
	if (pin_mode & 2)
		pin_tid(passt, 0);
	f0 = test == UDP_TX ? atomic_load(&host_count) : atomic_load(&rx_frames);
	b0 = tcp.bytes;
	k0 = sd.lkvm ? s.q[RXQ].kicks + s.q[TXQ].kicks : 0;
	i0 = sd.irqs;
	c0 = tid_ns(mover_tid);
	p0 = pid_ns(passt);
	t0 = now_ns();
	usleep(seconds * 1e6);
	t1 = now_ns();
	c1 = tid_ns(mover_tid);
	k1 = sd.lkvm ? s.q[RXQ].kicks + s.q[TXQ].kicks : 0;
	i1 = sd.irqs;
	p1 = pid_ns(passt);
	f1 = test == UDP_TX ? atomic_load(&host_count) : atomic_load(&rx_frames);
	b1 = tcp.bytes;
	atomic_store(&stop, true);
	pthread_join(m.thread, NULL);
	pthread_join(host, NULL);
	secs = (t1 - t0) / 1e9;
	frames = f1 - f0;
	printf("{\"who\": \"%s\", \"test\": \"%s\", \"size\": %u, \"fps\": %.0f, "
	       "\"mbps\": %.1f, \"mover_us_per_frame\": %.3f, "
	       "\"passt_us_per_frame\": %.3f, \"kicks_per_frame\": %.4f, "
	       "\"irqs_per_frame\": %.4f, \"frames\": %.0f}\n",
	       sd.lkvm ? "lkvm" : "direct",
	       test == UDP_TX ? "udp-tx" : test == UDP_RX ? "udp-rx" : "tcp-rx",
	       frame_size, frames / secs,
	       (test == TCP_RX ? (b1 - b0) : frames * (frame_size - 42)) / secs / 1e6,
	       frames ? (c1 - c0) / 1e3 / frames : 0,
	       frames ? (p1 - p0) / 1e3 / frames : 0,
	       frames ? (k1 - k0) / frames : 0, frames ? (i1 - i0) / frames : 0,
	       frames);
	if (getenv("USERNETBENCH_DEBUG"))
		fprintf(stderr, "tcp: empty %llu gaps %llu dropped %llu\n",
			(unsigned long long)tcp.empty, (unsigned long long)tcp.gaps,
			(unsigned long long)sd.srx.dropped);
	if (sd.lkvm)
		nsim_teardown(&s);
	else
		net_close(sd.nb);
	if (hs >= 0)
		close(hs);
	return frames > 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "test", required_argument, NULL, 't' },
		{ "size", required_argument, NULL, 'z' },
		{ "seconds", required_argument, NULL, 's' },
		{ "baseline", no_argument, NULL, 'b' },
		{ NULL, 0, NULL, 0 },
	};
	bool baseline = false;
	double seconds = 1;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			test = !strcmp(optarg, "udp-rx") ? UDP_RX :
			       !strcmp(optarg, "tcp-rx") ? TCP_RX : UDP_TX;
			break;
		case 'z': frame_size = atoi(optarg); break;
		case 's': seconds = atof(optarg); break;
		case 'b': baseline = true; break;
		default: return 2;
		}
	}
	if (frame_size < 60 || frame_size > 1514 || seconds <= 0) {
		fprintf(stderr, "usernetbench: size 60-1514\n");
		return 2;
	}
	if (getenv("USERNETBENCH_PIN"))
		pin_mode = atoi(getenv("USERNETBENCH_PIN"));
	inet_pton(AF_INET, "10.0.2.15", &guest_ip);
	inet_pton(AF_INET, "10.0.2.2", &gw_ip);
	return run(baseline, seconds);
}
