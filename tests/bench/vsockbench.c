/*
 * vsockbench - drives lkvm's real virtio-vsock device (its I/O thread
 * and host Unix sockets) the way a guest driver would (netsim.h: rings
 * in a private guest-memory mapping, kicks and interrupts through
 * eventfds, no KVM), beside a baseline that moves the same bytes over a
 * Unix socket pair on the host.
 *
 *   vsockbench --test tx|rx|conn --seconds S [--baseline]
 *     prints one JSON object.
 *     tx: the guest writes 64 KiB packets to a host reader (PATH_7);
 *     rx: a host writer's 64 KiB writes reach the guest in 4 KiB
 *         receive buffers (what Linux posts) and are acknowledged
 *         with credit updates;
 *     conn: connections set up and reset (REQUEST, RESPONSE, RST) to a
 *         host listener that accepts and closes; the baseline is
 *         connect, accept and close on a Unix socket.
 */
#include <endian.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "lkvm/lib/unixsock.h"
#include "lkvm/virtio/vsock.h"
#include "netsim.h"

#define RXQ 0
#define TXQ 1
#define CHUNK 65536
#define PKT (VSOCK_HDR_LEN + CHUNK)
#define SLOTS_PER_PKT ((PKT + NSIM_SLOT - 1) / NSIM_SLOT)
#define TX_INFLIGHT 32
#define RX_BUFS 128
#define RX_BUF (VSOCK_HDR_LEN + 4096)
#define GPORT 40000
#define HPORT 7

static atomic_bool stop;
static atomic_ullong host_bytes;
static char dir[64], path[128];
static double seconds = 2;

static double now_s(void)
{
	return now_ns() / 1e9;
}

static int create_vsock(struct lkvm *vm, struct iothread *ctl, void *opaque,
			struct virtio_device **out)
{
	char err[256];
	int ret;

	(void)ctl;
	(void)opaque;
	ret = virtio_vsock_create(vm, 3, path, -1, out, err, sizeof(err));
	if (ret)
		fprintf(stderr, "vsockbench: %s\n", err);
	return ret;
}

/* A guest packet at slot (one descriptor spanning slots as needed). */
static void guest_pkt(struct nsim *s, unsigned int slot, uint16_t op,
		      uint32_t len, uint32_t fwd)
{
	struct vsock_hdr *h = (struct vsock_hdr *)nsim_buf(s, TXQ, slot);

	*h = (struct vsock_hdr){
		.src_cid = htole64(3), .dst_cid = htole64(2),
		.src_port = htole32(GPORT), .dst_port = htole32(HPORT),
		.len = htole32(len), .type = htole16(VSOCK_TYPE_STREAM),
		.op = htole16(op), .buf_alloc = htole32(VSOCK_BUF_ALLOC),
		.fwd_cnt = htole32(fwd),
	};
	nsim_add(s, TXQ, slot, VSOCK_HDR_LEN + len, 0);
}

/* Receive buffers: the driver keeps them all posted. */
static void post_rx(struct nsim *s, unsigned int slot)
{
	nsim_add(s, RXQ, slot, RX_BUF, VRING_DESC_F_WRITE);
}

struct rxpkt {
	uint16_t op;
	uint32_t len, fwd, buf_alloc;
};

/* The next packet for the guest (its buffer re-posted); false if none. */
static bool guest_rx(struct nsim *s, struct rxpkt *p, int wait_ms)
{
	uint32_t id, len;
	struct vsock_hdr *h;

	if (!(wait_ms ? nsim_wait(s, RXQ, &id, &len, wait_ms) :
			nsim_used(s, RXQ, &id, &len)))
		return false;
	h = (struct vsock_hdr *)nsim_buf(s, RXQ, id);
	p->op = le16toh(h->op);
	p->len = le32toh(h->len);
	p->fwd = le32toh(h->fwd_cnt);
	p->buf_alloc = le32toh(h->buf_alloc);
	post_rx(s, id);
	nsim_kick(s, RXQ);
	return true;
}

static void *reader_main(void *arg)
{
	int l = *(int *)arg, fd;
	static char buf[1 << 20];
	ssize_t r;

	fd = accept(l, NULL, NULL);
	while (fd >= 0 && (r = read(fd, buf, sizeof(buf))) > 0)
		atomic_fetch_add(&host_bytes, r);
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void *writer_main(void *arg)
{
	int l = *(int *)arg, fd;
	static char buf[CHUNK];
	ssize_t r;

	fd = accept(l, NULL, NULL);
	while (fd >= 0 && !atomic_load(&stop) &&
	       (r = write(fd, buf, sizeof(buf))) > 0)
		atomic_fetch_add(&host_bytes, r);
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void *acceptor_main(void *arg)
{
	int l = *(int *)arg, fd;

	while (!atomic_load(&stop) && (fd = accept(l, NULL, NULL)) >= 0)
		close(fd);
	return NULL;
}

static int guest_connect(struct nsim *s)
{
	struct rxpkt p;

	guest_pkt(s, 0, VSOCK_OP_REQUEST, 0, 0);
	nsim_kick(s, TXQ);
	while (guest_rx(s, &p, 2000))
		if (p.op == VSOCK_OP_RESPONSE)
			return 0;
		else if (p.op == VSOCK_OP_RST)
			return -1;
	return -1;
}

static void reap_tx(struct nsim *s, unsigned int *inflight)
{
	uint32_t id, len;

	while (nsim_used(s, TXQ, &id, &len))
		if (*inflight)		/* the REQUEST's is not counted */
			(*inflight)--;
}

static int run_tx(struct nsim *s, double *mbps)
{
	uint64_t sent = 0, fwd = 0, alloc = VSOCK_BUF_ALLOC, waits = 0;
	unsigned int inflight = 0, next = 0;
	struct rxpkt p;
	double t0, t1;

	if (guest_connect(s))
		return -1;
	t0 = now_s();
	while (now_s() - t0 < seconds) {
		reap_tx(s, &inflight);
		while (guest_rx(s, &p, 0)) {
			fwd = p.fwd;
			alloc = p.buf_alloc;
		}
		/* fwd_cnt is 32 bits on the wire: compare modulo 2^32. */
		if (inflight < TX_INFLIGHT &&
		    (uint32_t)(sent - fwd) + CHUNK <= alloc) {
			guest_pkt(s, (next++ % TX_INFLIGHT) * SLOTS_PER_PKT,
				  VSOCK_OP_RW, CHUNK, 0);
			nsim_kick(s, TXQ);
			sent += CHUNK;
			inflight++;
			continue;
		}
		nsim_want_irq(s, RXQ);
		{
			struct pollfd pf[2] = {
				{ .fd = s->q[RXQ].irq_fd, .events = POLLIN },
				{ .fd = s->q[TXQ].irq_fd, .events = POLLIN },
			};
			uint64_t v;

			nsim_want_irq(s, TXQ);
			waits++;
			if (poll(pf, 2, 10) > 0) {
				if (read(pf[0].fd, &v, 8) < 0 || read(pf[1].fd, &v, 8) < 0) {
					/* one of them had nothing */
				}
			}
		}
	}
	while (atomic_load(&host_bytes) < sent && now_s() - t0 < seconds + 5)
		usleep(1000);
	t1 = now_s();
	if (getenv("VSOCKBENCH_DEBUG"))
		fprintf(stderr, "%llu packets, %llu waits, %.3f s\n",
			(unsigned long long)sent / CHUNK,
			(unsigned long long)waits, t1 - t0);
	*mbps = atomic_load(&host_bytes) / (t1 - t0) / 1e6;
	return atomic_load(&host_bytes) == sent ? 0 : -1;
}

static int run_rx(struct nsim *s, double *mbps)
{
	uint64_t got = 0, told = 0;
	struct rxpkt p;
	double t0;
	unsigned int n = 0;

	if (guest_connect(s))
		return -1;
	t0 = now_s();
	while (now_s() - t0 < seconds) {
		uint32_t id, len;

		if (!guest_rx(s, &p, 10))
			continue;
		if (p.op == VSOCK_OP_RW)
			got += p.len;
		/* Linux tells its credit when less than 64 KiB is left free. */
		if (got - told >= VSOCK_BUF_ALLOC - CHUNK) {
			while (nsim_used(s, TXQ, &id, &len))
				;
			guest_pkt(s, (n++ % 64) * 1, VSOCK_OP_CREDIT_UPDATE, 0,
				  (uint32_t)got);
			nsim_kick(s, TXQ);
			told = got;
		}
	}
	*mbps = got / (now_s() - t0) / 1e6;
	atomic_store(&stop, true);
	return got ? 0 : -1;
}

static int run_conn(struct nsim *s, double *rate)
{
	unsigned int n = 0, refused = 0;
	struct rxpkt p;
	double t0 = now_s();

	while (now_s() - t0 < seconds) {
		uint32_t id, len;

		while (nsim_used(s, TXQ, &id, &len))
			;
		/* A full backlog refuses (RST): count it and go on. */
		if (guest_connect(s)) {
			if (++refused > 1000)
				return -1;
			continue;
		}
		guest_pkt(s, 1, VSOCK_OP_RST, 0, 0);
		nsim_kick(s, TXQ);
		n++;
		while (guest_rx(s, &p, 0))
			;
	}
	*rate = n / (now_s() - t0);
	atomic_store(&stop, true);
	return 0;
}

/* --- the baseline: a Unix socket pair / a Unix listener --- */

static void *pair_reader(void *arg)
{
	int fd = *(int *)arg;
	static char buf[1 << 20];
	ssize_t r;

	while ((r = read(fd, buf, sizeof(buf))) > 0)
		atomic_fetch_add(&host_bytes, r);
	return NULL;
}

static int baseline(const char *test, double *v)
{
	static char buf[CHUNK];
	double t0 = now_s();
	pthread_t th;
	int sv[2];

	if (!strcmp(test, "conn")) {
		char p[160];
		unsigned int n = 0;
		int l;

		snprintf(p, sizeof(p), "%s_b", path);
		l = unix_listen(p, 128);
		if (l < 0)
			return -1;
		fcntl(l, F_SETFL, 0);
		pthread_create(&th, NULL, acceptor_main, &l);
		while (now_s() - t0 < seconds) {
			int fd = unix_connect(p, 0);

			if (fd < 0)
				return -1;
			close(fd);
			n++;
		}
		*v = n / (now_s() - t0);
		atomic_store(&stop, true);
		shutdown(l, SHUT_RDWR);
		pthread_join(th, NULL);
		close(l);
		unlink(p);
		return 0;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return -1;
	pthread_create(&th, NULL, pair_reader, &sv[1]);
	while (now_s() - t0 < seconds)
		if (write(sv[0], buf, sizeof(buf)) != sizeof(buf))
			return -1;
	close(sv[0]);
	pthread_join(th, NULL);
	*v = atomic_load(&host_bytes) / (now_s() - t0) / 1e6;
	close(sv[1]);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "test", required_argument, NULL, 't' },
		{ "seconds", required_argument, NULL, 's' },
		{ "baseline", no_argument, NULL, 'b' },
		{ 0 },
	};
	const char *test = "tx";
	bool base = false;
	struct nsim s;
	pthread_t th;
	double v = 0;
	char hp[160];
	int c, l, ret;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 't')
			test = optarg;
		else if (c == 's')
			seconds = atof(optarg);
		else if (c == 'b')
			base = true;
		else
			return 2;
	}
	snprintf(dir, sizeof(dir), "/tmp/lkvm-vsockbench-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/v.sock", dir);
	if (base) {
		ret = baseline(test, &v);
		rmdir(dir);
		if (ret)
			return 1;
		printf("{\"who\": \"unix socket pair\", \"test\": \"%s\", \"%s\": %.1f}\n",
		       test, strcmp(test, "conn") ? "mbps" : "conns_per_s", v);
		return 0;
	}
	snprintf(hp, sizeof(hp), "%s_%u", path, HPORT);
	l = unix_listen(hp, 128);
	if (l < 0)
		return 1;
	fcntl(l, F_SETFL, 0);
	pthread_create(&th, NULL, !strcmp(test, "tx") ? reader_main :
			      !strcmp(test, "rx") ? writer_main : acceptor_main,
		       &l);
	ret = nsim_setup_device(&s, 3, 1ULL << VIRTIO_F_EVENT_IDX, 0,
				create_vsock, NULL);
	if (!ret) {
		for (unsigned int i = 0; i < RX_BUFS; i++)
			post_rx(&s, i);
		nsim_kick(&s, RXQ);
		ret = !strcmp(test, "tx") ? run_tx(&s, &v) :
		      !strcmp(test, "rx") ? run_rx(&s, &v) : run_conn(&s, &v);
	}
	if (!strcmp(test, "tx")) {
		guest_pkt(&s, 0, VSOCK_OP_RST, 0, 0);
		nsim_kick(&s, TXQ);
	}
	atomic_store(&stop, true);
	nsim_teardown(&s);
	shutdown(l, SHUT_RDWR);
	pthread_join(th, NULL);
	close(l);
	unlink(hp);
	rmdir(dir);
	if (ret) {
		fprintf(stderr, "vsockbench: %s failed\n", test);
		return 1;
	}
	printf("{\"who\": \"lkvm\", \"test\": \"%s\", \"%s\": %.1f}\n", test,
	       strcmp(test, "conn") ? "mbps" : "conns_per_s", v);
	return 0;
}
