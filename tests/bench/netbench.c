/*
 * netbench - drives lkvm's real virtio-net device code over a real tap
 * the way a guest driver would (tests/unit/netsim.h: rings in a private
 * guest-memory mapping, kicks and interrupts through eventfds, no KVM),
 * beside a baseline that reads or writes the same frames directly on a
 * tap fd.  It runs in a network namespace of its own (root needed).
 *
 *   netbench --dir tx|rx --size BYTES --pairs 1|2 --seconds S
 *            [--baseline]
 *     prints one JSON object: frames per second, Gbit/s of frame
 *     bytes, interrupts and kicks per frame (lkvm only).
 *     tx: the driver sends; frames are counted as the tap accepts them.
 *     rx: a packet socket sends frames out of the tap as fast as it
 *     can; the driver (or the baseline reader) counts what it gets.
 *   netbench --check
 *     1000 distinct frames each way through the device and a real tap,
 *     compared byte for byte; ends with "N passed, N failed".
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "netsim.h"

#define POLL_NS		50000	/* the driver spins like a halt-polling vCPU */
#define RXBUF		2048
#define GEN_BATCH	64

static atomic_bool stop;
static unsigned int frame_size = 1500, npairs = 1;

/* Ethernet + IPv4 + UDP, to a MAC that is not the host's; the UDP
 * source port varies so that a multiqueue tap spreads the frames. */
static void make_frame(uint8_t *f, unsigned int len, unsigned int seq)
{
	static const uint8_t dst[6] = { 0x02, 0x6c, 0x6b, 0, 0, 0x99 };
	static const uint8_t src[6] = { 0x02, 0x6c, 0x6b, 0, 0, 0x01 };
	unsigned int i;

	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x08;
	f[13] = 0x00;
	memset(f + 14, 0, 28);
	f[14] = 0x45;
	f[16] = (len - 14) >> 8;
	f[17] = len - 14;
	f[22] = 64;
	f[23] = 17;
	f[26] = 10;
	f[29] = 2;
	f[30] = 10;
	f[33] = 15;
	f[34] = 0x40 | (seq % 64) >> 8;		/* source port */
	f[35] = seq % 64;
	f[36] = 0x23;
	f[37] = 0x28;
	f[38] = (len - 34) >> 8;
	f[39] = len - 34;
	for (i = 42; i < len; i++)
		f[i] = (uint8_t)(seq * 13 + i);
	if (len >= 46)
		memcpy(f + 42, &seq, 4);
}

/*
 * With one queue pair, the frame source runs on CPU 0 and the thread
 * that moves frames (lkvm's queue thread, or the baseline's reader or
 * writer) on CPU 1, in both modes: on a 2-CPU machine, where the
 * scheduler puts three busy threads otherwise decides the result.  The
 * simulated driver (a guest's vCPU; a few % of a CPU) is left free.
 */
static bool pin_on;

static void pin_tid(pid_t tid, int cpu)
{
	cpu_set_t set;

	if (!pin_on)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(tid, sizeof(set), &set);
}

static void pin_self(int cpu)
{
	pin_tid(gettid(), cpu);
}

/* Nanoseconds thread tid has run (schedstat), or 0. */
static uint64_t thread_ns(pid_t tid)
{
	char path[64];
	unsigned long long ns = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/schedstat", tid);
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%llu", &ns) != 1)
			ns = 0;
		fclose(f);
	}
	return ns;
}

/* The tids of lkvm's threads whose name starts with prefix. */
static unsigned int tids_named(const char *prefix, pid_t *tids, unsigned int max)
{
	char path[300], comm[32];
	struct dirent *de;
	DIR *d = opendir("/proc/self/task");
	unsigned int n = 0;

	while (d && (de = readdir(d)) && n < max) {
		FILE *f;

		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) &&
		    !strncmp(comm, prefix, strlen(prefix)))
			tids[n++] = atoi(de->d_name);
		fclose(f);
	}
	if (d)
		closedir(d);
	return n;
}

static uint64_t threads_ns(const pid_t *tids, unsigned int n)
{
	uint64_t sum = 0;
	unsigned int i;

	for (i = 0; i < n; i++)
		sum += thread_ns(tids[i]);
	return sum;
}

static int if_index(const char *name)
{
	return if_nametoindex(name);
}

/* Frames the interface took in from its tap fds (its "rx" count). */
static uint64_t if_rx_packets(const char *name)
{
	char line[512], want[IFNAMSIZ + 2];
	unsigned long long v = 0;
	FILE *f = fopen("/proc/net/dev", "r");

	if (!f)
		return 0;
	snprintf(want, sizeof(want), "%s:", name);
	while (fgets(line, sizeof(line), f)) {
		char *p = line;

		while (*p == ' ')
			p++;
		if (!strncmp(p, want, strlen(want))) {
			sscanf(p + strlen(want), "%*u %llu", &v);
			break;
		}
	}
	fclose(f);
	return v;
}

static struct net_backend *open_tap(const char *name, unsigned int nq)
{
	struct net_spec spec = { .mode = NET_MODE_TAP };
	struct net_backend *nb;
	char err[256];

	snprintf(spec.tapif, sizeof(spec.tapif), "%s", name);
	if (net_open(&nb, &spec, nq, err, sizeof(err))) {
		fprintf(stderr, "netbench: %s\n", err);
		return NULL;
	}
	return nb;
}

/* A packet socket sending out of ifname (what reaches the tap's readers). */
static int packet_socket(const char *ifname)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET,
				   .sll_protocol = htons(ETH_P_ALL) };
	int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	int one = 1;

	if (s < 0)
		return -1;
	sll.sll_ifindex = if_index(ifname);
	setsockopt(s, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
	if (bind(s, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		close(s);
		return -1;
	}
	return s;
}

struct gen {
	int sock;
	pthread_t thread;
	uint64_t sent;
};

static void *gen_main(void *arg)
{
	struct gen *g = arg;
	static uint8_t frames[GEN_BATCH][2048];
	struct mmsghdr msgs[GEN_BATCH];
	struct iovec iov[GEN_BATCH];
	unsigned int i;

	pin_self(0);
	for (i = 0; i < GEN_BATCH; i++) {
		make_frame(frames[i], frame_size, i);
		iov[i] = (struct iovec){ frames[i], frame_size };
		msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i],
							 .msg_iovlen = 1 } };
	}
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		int n = sendmmsg(g->sock, msgs, GEN_BATCH, 0);

		if (n > 0)
			g->sent += n;
		else
			sched_yield();
	}
	return NULL;
}

/* --- the simulated driver --- */

struct drv {
	struct nsim *s;
	unsigned int pair;
	pthread_t thread;
	uint64_t frames, irqs, errors;
};

static uint64_t drv_sleep(struct nsim *s, unsigned int qi)
{
	struct pollfd pfd = { .fd = s->q[qi].irq_fd, .events = POLLIN };
	uint64_t v = 0;

	if (poll(&pfd, 1, 50) > 0 && read(pfd.fd, &v, sizeof(v)) == sizeof(v))
		return 1;
	return 0;
}

/*
 * Transmit like Linux's virtio-net: keep the ring full, and when it is,
 * ask for an interrupt once three quarters of what is in flight has been
 * sent (virtqueue_enable_cb_delayed) and sleep until then.
 */
static void *drv_tx(void *arg)
{
	struct drv *d = arg;
	struct nsim *s = d->s;
	struct nsim_q *q;
	unsigned int qi = 2 * d->pair + 1, i, nfree = 0;
	uint16_t free_slots[NSIM_QSIZE];
	uint32_t id, len;

	q = &s->q[qi];
	for (i = 0; i < NSIM_QSIZE; i++) {
		memset(nsim_buf(s, qi, i), 0, NET_HDR_LEN);
		make_frame(nsim_buf(s, qi, i) + NET_HDR_LEN, frame_size, i);
		free_slots[nfree++] = i;
	}
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		bool got = false;

		while (nfree)
			nsim_add(s, qi, free_slots[--nfree],
				 NET_HDR_LEN + frame_size, 0);
		nsim_kick(s, qi);
		while (nsim_used(s, qi, &id, &len)) {
			free_slots[nfree++] = id;
			d->frames++;
			got = true;
		}
		if (got)
			continue;
		__atomic_store_n(&q->avail[2 + NSIM_QSIZE],
				 (uint16_t)(q->last_used + NSIM_QSIZE * 3 / 4),
				 __ATOMIC_RELEASE);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (__atomic_load_n(&q->used[1], __ATOMIC_ACQUIRE) !=
		    q->last_used)
			continue;
		d->irqs += drv_sleep(s, qi);
	}
	return NULL;
}

static void *drv_rx(void *arg)
{
	struct drv *d = arg;
	struct nsim *s = d->s;
	unsigned int qi = 2 * d->pair, i;
	uint32_t id, len;

	for (i = 0; i < NSIM_QSIZE; i++)
		nsim_add(s, qi, i, RXBUF, VRING_DESC_F_WRITE);
	nsim_kick(s, qi);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		unsigned int n = 0;

		while (nsim_used(s, qi, &id, &len)) {
			if (id >= NSIM_QSIZE || len != NET_HDR_LEN + frame_size)
				d->errors++;
			else
				nsim_add(s, qi, id, RXBUF, VRING_DESC_F_WRITE);
			n++;
		}
		if (n) {
			d->frames += n;
			nsim_kick(s, qi);
			continue;
		}
		/* Like NAPI: interrupts back on, look once more, then sleep. */
		nsim_want_irq(s, qi);
		if (__atomic_load_n(&s->q[qi].used[1], __ATOMIC_ACQUIRE) !=
		    s->q[qi].last_used)
			n = 1;
		if (!n)
			d->irqs += drv_sleep(s, qi);
	}
	return NULL;
}

static uint64_t features(void)
{
	return 1ULL << VIRTIO_F_EVENT_IDX | 1ULL << VIRTIO_NET_F_MRG_RXBUF |
	       1ULL << VIRTIO_NET_F_CSUM | 1ULL << VIRTIO_NET_F_GUEST_CSUM |
	       (npairs > 1 ? 1ULL << VIRTIO_NET_F_MQ |
			     1ULL << VIRTIO_NET_F_CTRL_VQ : 0);
}

/* VQ_PAIRS_SET through the control queue (queue 2 * pairs). */
static bool set_pairs(struct nsim *s, unsigned int n)
{
	unsigned int qi = 2 * npairs;
	uint8_t *b = nsim_buf(s, qi, 0);
	uint32_t id, len;

	b[0] = VIRTIO_NET_CTRL_MQ;
	b[1] = VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET;
	b[2] = n;
	b[3] = 0;
	b[4] = 0xff;
	s->q[qi].desc[0] = (struct nsim_desc){ nsim_buf_gpa(s, qi, 0), 4,
					       VRING_DESC_F_NEXT, 1 };
	s->q[qi].desc[1] = (struct nsim_desc){ nsim_buf_gpa(s, qi, 0) + 4, 1,
					       VRING_DESC_F_WRITE, 0 };
	s->q[qi].avail[2 + s->q[qi].avail_idx++ % NSIM_QSIZE] = 0;
	nsim_kick(s, qi);
	return nsim_wait(s, qi, &id, &len, 2000) && b[4] == VIRTIO_NET_OK;
}

/*
 * cpu_ns: time the threads that move frames ran (lkvm's queue threads,
 * or the baseline's readers/writers): per frame, a figure the machine's
 * noise moves less than frames per second.
 */
static void print_result(const char *who, double secs, uint64_t frames,
			 uint64_t irqs, uint64_t kicks, uint64_t errors,
			 uint64_t cpu_ns)
{
	double pps = frames / secs;

	printf("{\"who\": \"%s\", \"pps\": %.0f, \"gbps\": %.3f, "
	       "\"irqs_per_frame\": %.4f, \"kicks_per_frame\": %.4f, "
	       "\"cpu_us_per_frame\": %.3f, "
	       "\"frames\": %llu, \"errors\": %llu}\n", who, pps,
	       pps * frame_size * 8 / 1e9, frames ? (double)irqs / frames : 0,
	       frames ? (double)kicks / frames : 0,
	       frames ? cpu_ns / 1e3 / frames : 0,
	       (unsigned long long)frames, (unsigned long long)errors);
}

static int run_lkvm(bool tx, double seconds)
{
	static struct nsim s;
	struct drv d[2];
	struct gen g[2];
	struct net_backend *nb = open_tap("nbdev", npairs);
	uint64_t t0, t1, frames = 0, irqs = 0, kicks = 0, errors = 0, rx0 = 0;
	uint64_t c0, c1;
	pid_t tids[4];
	unsigned int i, ntids;

	if (!nb)
		return 1;
	if (nsim_setup_slots(&s, nb, features(), RXBUF)) {
		fprintf(stderr, "netbench: device set-up failed\n");
		return 1;
	}
	if (npairs > 1 && !set_pairs(&s, npairs)) {
		fprintf(stderr, "netbench: VQ_PAIRS_SET failed\n");
		return 1;
	}
	/* The queue threads (one when pinning: one pair). */
	ntids = tids_named("net0-q", tids, 4);
	for (i = 0; i < ntids; i++)
		pin_tid(tids[i], 1);
	atomic_store(&stop, false);
	for (i = 0; i < npairs; i++) {
		d[i] = (struct drv){ .s = &s, .pair = i };
		pthread_create(&d[i].thread, NULL, tx ? drv_tx : drv_rx, &d[i]);
	}
	usleep(100000);		/* rings primed before the clock starts */
	if (!tx) {
		for (i = 0; i < npairs; i++) {
			g[i] = (struct gen){ .sock = packet_socket("nbdev") };
			pthread_create(&g[i].thread, NULL, gen_main, &g[i]);
		}
	}
	for (i = 0; i < npairs; i++)
		d[i].frames = d[i].irqs = 0;
	for (i = 0; i < s.nq; i++)
		s.q[i].kicks = 0;
	rx0 = if_rx_packets("nbdev");
	c0 = threads_ns(tids, ntids);
	t0 = now_ns();
	usleep(seconds * 1e6);
	t1 = now_ns();
	c1 = threads_ns(tids, ntids);
	for (i = 0; i < npairs; i++) {
		frames += tx ? 0 : d[i].frames;
		irqs += d[i].irqs;
		kicks += s.q[tx ? 2 * i + 1 : 2 * i].kicks;
		errors += d[i].errors;
	}
	if (tx) {
		uint64_t done = 0;

		for (i = 0; i < npairs; i++)
			done += d[i].frames;
		frames = if_rx_packets("nbdev") - rx0;
		if (getenv("NETBENCH_DEBUG"))
			fprintf(stderr, "driver completed %llu, tap took %llu\n",
				(unsigned long long)done, (unsigned long long)frames);
	}
	atomic_store(&stop, true);
	for (i = 0; i < npairs; i++) {
		pthread_join(d[i].thread, NULL);
		if (!tx) {
			pthread_join(g[i].thread, NULL);
			close(g[i].sock);
		}
	}
	print_result("lkvm", (t1 - t0) / 1e9, frames, irqs, kicks, errors,
		     c1 - c0);
	nsim_teardown(&s);
	return errors ? 1 : 0;
}

struct direct {
	int fd;
	bool tx;
	pid_t tid;
	pthread_t thread;
	uint64_t frames;
};

/*
 * The baseline moves frames between a tap fd and 256 distinct buffers
 * laid out exactly as the simulated driver's (a fresh anonymous mapping,
 * 64 KiB in, RXBUF apart), one read or write each.  The layout matters:
 * copying into 4 KiB-aligned buffers costs this machine ~20% more than
 * into malloc's (16 bytes off), so both sides get the same addresses.
 */
static void *direct_main(void *arg)
{
	struct direct *x = arg;
	struct pollfd pfd = { .fd = x->fd, .events = POLLIN };
	uint8_t *map = mmap(NULL, NSIM_SPAN, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uint8_t *bufs = map + 65536;
	unsigned int i = 0;

	x->tid = gettid();
	pin_self(1);
	for (i = 0; i < NSIM_QSIZE; i++) {
		memset(bufs + i * RXBUF, 0, NET_HDR_LEN);
		make_frame(bufs + i * RXBUF + NET_HDR_LEN, frame_size, i);
	}
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		uint8_t *b = bufs + (i++ % NSIM_QSIZE) * RXBUF;
		ssize_t n;

		if (x->tx) {
			n = write(x->fd, b, NET_HDR_LEN + frame_size);
			if (n < 0)
				sched_yield();
			continue;
		}
		n = read(x->fd, b, RXBUF);
		if (n > 0)
			x->frames++;
		else
			poll(&pfd, 1, 50);
	}
	munmap(map, NSIM_SPAN);
	return NULL;
}

static int run_baseline(bool tx, double seconds)
{
	struct net_backend *nb = open_tap("nbbase", npairs);
	struct direct x[2];
	struct gen g[2];
	uint64_t t0, t1, frames = 0, rx0, c0, c1;
	pid_t tids[2];
	unsigned int i;

	if (!nb)
		return 1;
	atomic_store(&stop, false);
	for (i = 0; i < npairs; i++) {
		x[i] = (struct direct){ .fd = nb->fds[i], .tx = tx };
		pthread_create(&x[i].thread, NULL, direct_main, &x[i]);
	}
	usleep(100000);
	if (!tx) {
		for (i = 0; i < npairs; i++) {
			g[i] = (struct gen){ .sock = packet_socket("nbbase") };
			pthread_create(&g[i].thread, NULL, gen_main, &g[i]);
		}
	}
	for (i = 0; i < npairs; i++) {
		x[i].frames = 0;
		tids[i] = x[i].tid;
	}
	rx0 = if_rx_packets("nbbase");
	c0 = threads_ns(tids, npairs);
	t0 = now_ns();
	usleep(seconds * 1e6);
	t1 = now_ns();
	c1 = threads_ns(tids, npairs);
	for (i = 0; i < npairs; i++)
		frames += x[i].frames;
	if (tx)
		frames = if_rx_packets("nbbase") - rx0;
	atomic_store(&stop, true);
	for (i = 0; i < npairs; i++) {
		pthread_join(x[i].thread, NULL);
		if (!tx) {
			pthread_join(g[i].thread, NULL);
			close(g[i].sock);
		}
	}
	print_result("tap", (t1 - t0) / 1e9, frames, 0, 0, 0, c1 - c0);
	net_close(nb);
	return 0;
}

/* --check: content through the device and a real tap, both ways. */
static int run_check(void)
{
	static struct nsim s;
	static uint8_t want[2048], got[2048];
	struct net_backend *nb = open_tap("nbchk", 1);
	unsigned int passed = 0, failed = 0, i, ok, sizes[] = { 60, 1500 };
	uint32_t id, len;
	int ps;

	if (!nb || nsim_setup(&s, nb, features())) {
		fprintf(stderr, "netbench: set-up failed\n");
		return 1;
	}
	ps = packet_socket("nbchk");
	for (unsigned int k = 0; k < 2; k++) {
		frame_size = sizes[k];
		/* Out: the device writes, the packet socket sees. */
		for (i = 0, ok = 0; i < 1000; i++) {
			struct pollfd pfd = { .fd = ps, .events = POLLIN };
			ssize_t n = 0;

			memset(nsim_buf(&s, 1, i % 64), 0, NET_HDR_LEN);
			make_frame(nsim_buf(&s, 1, i % 64) + NET_HDR_LEN,
				   frame_size, i);
			make_frame(want, frame_size, i);
			nsim_add(&s, 1, i % 64, NET_HDR_LEN + frame_size, 0);
			nsim_kick(&s, 1);
			if (!nsim_wait(&s, 1, &id, &len, 2000))
				break;
			while (poll(&pfd, 1, 1000) > 0) {
				struct sockaddr_ll from;
				socklen_t fl = sizeof(from);

				n = recvfrom(ps, got, sizeof(got), 0,
					     (struct sockaddr *)&from, &fl);
				if (from.sll_pkttype != PACKET_OUTGOING)
					break;
			}
			ok += n == (ssize_t)frame_size &&
			      !memcmp(got, want, frame_size);
		}
		printf("%s %u-byte frames out through the device: %u of 1000 arrived intact\n",
		       ok == 1000 ? "PASS" : "FAIL", frame_size, ok);
		ok == 1000 ? passed++ : failed++;
		/* In: the packet socket sends, the device delivers. */
		for (i = 0; i < 64; i++)
			nsim_add(&s, 0, i, RXBUF, VRING_DESC_F_WRITE);
		nsim_kick(&s, 0);
		for (i = 0, ok = 0; i < 1000; i++) {
			struct virtio_net_hdr h;

			make_frame(want, frame_size, i);
			if (send(ps, want, frame_size, 0) != (ssize_t)frame_size ||
			    !nsim_wait(&s, 0, &id, &len, 2000) || id >= 64) {
				fprintf(stderr, "netbench: frame %u did not come in (%s)\n", i, strerror(errno));
				break;
			}
			memcpy(&h, nsim_buf(&s, 0, id), sizeof(h));
			ok += len == NET_HDR_LEN + frame_size &&
			      h.num_buffers == 1 &&
			      !memcmp(nsim_buf(&s, 0, id) + NET_HDR_LEN, want,
				      frame_size);
			nsim_add(&s, 0, id, RXBUF, VRING_DESC_F_WRITE);
			nsim_kick(&s, 0);
		}
		printf("%s %u-byte frames in through the device: %u of 1000 arrived intact\n",
		       ok == 1000 ? "PASS" : "FAIL", frame_size, ok);
		ok == 1000 ? passed++ : failed++;
		/* Leave the receive ring empty for the next round. */
		while (nsim_used(&s, 0, &id, &len))
			;
		nsim_teardown(&s);
		if (k == 0) {
			nb = open_tap("nbchk", 1);
			if (!nb || nsim_setup(&s, nb, features()))
				return 1;
			close(ps);
			ps = packet_socket("nbchk");
		}
	}
	close(ps);
	printf("%u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}

static void sysctl_set(const char *path, const char *v)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (write(fd, v, strlen(v)) < 0) {
			/* no IPv6 here: nothing to quiet */
		}
		close(fd);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "size", required_argument, NULL, 'z' },
		{ "pairs", required_argument, NULL, 'p' },
		{ "seconds", required_argument, NULL, 's' },
		{ "baseline", no_argument, NULL, 'b' },
		{ "check", no_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	bool tx = true, baseline = false, check = false;
	double seconds = 1;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': tx = strcmp(optarg, "rx") != 0; break;
		case 'z': frame_size = atoi(optarg); break;
		case 'p': npairs = atoi(optarg); break;
		case 's': seconds = atof(optarg); break;
		case 'b': baseline = true; break;
		case 'c': check = true; break;
		default: return 2;
		}
	}
	if (frame_size < 60 || frame_size > 1514 || npairs < 1 || npairs > 2 ||
	    seconds <= 0) {
		fprintf(stderr, "netbench: size 60-1514, pairs 1-2\n");
		return 2;
	}
	pin_on = npairs == 1 && sysconf(_SC_NPROCESSORS_ONLN) >= 2 &&
		 !getenv("NETBENCH_NOPIN");
	/* A namespace of our own: the taps vanish with the process. */
	if (unshare(CLONE_NEWNET) < 0) {
		perror("netbench: unshare(CLONE_NEWNET) (needs root)");
		return 77;
	}
	/* No IPv6 chatter (router and neighbour solicitations) on the taps. */
	sysctl_set("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
	sysctl_set("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
	if (check)
		return run_check();
	return baseline ? run_baseline(tx, seconds) : run_lkvm(tx, seconds);
}
