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
#include "vsocksim.h"

#define CHUNK 65536
#define PKT (VSOCK_HDR_LEN + CHUNK)
#define SLOTS_PER_PKT ((PKT + NSIM_SLOT - 1) / NSIM_SLOT)
#define TX_INFLIGHT 32
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
	struct vsim_pkt p;

	vsim_send(s, 0, GPORT, HPORT, VSOCK_OP_REQUEST, 0, NULL, 0, 0);
	while (vsim_recv(s, &p, 2000))
		if (p.op == VSOCK_OP_RESPONSE)
			return 0;
		else if (p.op == VSOCK_OP_RST)
			return -1;
	return -1;
}

static void reap_tx(struct nsim *s, unsigned int *inflight)
{
	unsigned int n = vsim_reap(s);

	/* The REQUEST's completion is not counted in flight. */
	*inflight = n > *inflight ? 0 : *inflight - n;
}

static int run_tx(struct nsim *s, double *mbps)
{
	uint64_t sent = 0, fwd = 0, alloc = VSOCK_BUF_ALLOC, waits = 0;
	unsigned int inflight = 0, next = 0;
	struct vsim_pkt p;
	double t0, t1;

	if (guest_connect(s))
		return -1;
	t0 = now_s();
	while (now_s() - t0 < seconds) {
		reap_tx(s, &inflight);
		while (vsim_recv(s, &p, 0)) {
			fwd = p.fwd;
			alloc = p.buf_alloc;
		}
		/* fwd_cnt is 32 bits on the wire: compare modulo 2^32. */
		if (inflight < TX_INFLIGHT &&
		    (uint32_t)(sent - fwd) + CHUNK <= alloc) {
			vsim_send(s, (next++ % TX_INFLIGHT) * SLOTS_PER_PKT,
				  GPORT, HPORT, VSOCK_OP_RW, 0, NULL, CHUNK, 0);
			sent += CHUNK;
			inflight++;
			continue;
		}
		nsim_want_irq(s, VSIM_RXQ);
		{
			struct pollfd pf[2] = {
				{ .fd = s->q[VSIM_RXQ].irq_fd, .events = POLLIN },
				{ .fd = s->q[VSIM_TXQ].irq_fd, .events = POLLIN },
			};
			uint64_t v;

			nsim_want_irq(s, VSIM_TXQ);
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
	struct vsim_pkt p;
	double t0;
	unsigned int n = 0;

	if (guest_connect(s))
		return -1;
	t0 = now_s();
	while (now_s() - t0 < seconds) {
		if (!vsim_recv(s, &p, 10))
			continue;
		if (p.op == VSOCK_OP_RW)
			got += p.len;
		/* Linux tells its credit when less than 64 KiB is left free. */
		if (got - told >= VSOCK_BUF_ALLOC - CHUNK) {
			vsim_reap(s);
			vsim_send(s, n++ % 64, GPORT, HPORT,
				  VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0, got);
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
	struct vsim_pkt p;
	double t0 = now_s();

	while (now_s() - t0 < seconds) {
		vsim_reap(s);
		/* A full backlog refuses (RST): count it and go on. */
		if (guest_connect(s)) {
			if (++refused > 1000)
				return -1;
			continue;
		}
		vsim_send(s, 1, GPORT, HPORT, VSOCK_OP_RST, 0, NULL, 0, 0);
		n++;
		while (vsim_recv(s, &p, 0))
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
	ret = vsim_setup(&s, path);
	if (!ret) {
		ret = !strcmp(test, "tx") ? run_tx(&s, &v) :
		      !strcmp(test, "rx") ? run_rx(&s, &v) : run_conn(&s, &v);
	}
	if (!strcmp(test, "tx"))
		vsim_send(&s, 0, GPORT, HPORT, VSOCK_OP_RST, 0, NULL, 0, 0);
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
