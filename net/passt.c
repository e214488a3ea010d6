/*
 * passt.c - the user-mode network backend (-n mode=user): lkvm starts
 * passt (https://passt.top, Debian package passt) on one end of a Unix
 * stream socket pair and exchanges Ethernet frames with it, each behind
 * a 4-byte big-endian length (net/stream.c).  lkvm has no TCP/IP stack
 * of its own; passt maps the guest's connections to host sockets, needs
 * no privileges, answers DHCP, and forwards host ports (hostfwd).
 *
 * The guest sees 10.0.2.15/24 with gateway 10.0.2.2 and DNS 10.0.2.3
 * (QEMU's user-mode addresses); passt maps the gateway address to the
 * host's loopback and forwards DNS to the host's resolver.
 *
 * passt ends with lkvm: PR_SET_PDEATHSIG kills it if lkvm dies, even by
 * SIGKILL (the signal follows the thread that started it: the one that
 * called lkvm_create), and close() stops and reaps it.  Its messages
 * come through a pipe (nb->log_fd) for the device to log.
 *
 * Threads: open and close run on the creating thread; recv, send and
 * flush on the queue pair's thread, which alone touches struct passt's
 * buffers.  One queue pair: passt serves one connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "lkvm/lib/util.h"
#include "lkvm/net/net.h"
#include "lkvm/net/stream.h"

#define PASST_GUEST_ADDR	"10.0.2.15"
#define PASST_GATEWAY		"10.0.2.2"
#define PASST_DNS		"10.0.2.3"
#define PASST_RBUF		(64 * 1024)
/* Gathered frames: two of the largest, or a batch of ~85 full-MTU ones. */
#define PASST_WBUF		(2 * (STREAM_HDR + PASST_MAX_FRAME))
#define PASST_ETH_HLEN		14
#define PASST_VLAN_HLEN		4
#define PASST_MAX_FRAME		(65520 + PASST_ETH_HLEN + PASST_VLAN_HLEN)
#define PASST_MAX_ARGS		(24 + 2 * NET_MAX_FWD)

struct passt {
	pid_t pid;
	struct stream_rx rx;
	uint64_t told;			/* of rx.dropped, reported */
	uint8_t *rbuf;			/* bytes read from passt, not yet framed */
	size_t rlen, roff;
	uint8_t *frame;			/* the frame being assembled */
	/* Frames gathered for passt, [woff, wlen) not yet written. */
	uint8_t *wbuf;
	size_t wlen, woff;
};

/* The program to run: spec's passt=, or passt on $PATH. */
static int passt_find(const char *want, char *out, size_t len)
{
	const char *path = getenv("PATH");
	const char *p, *end;

	if (want) {
		snprintf(out, len, "%s", want);
		return access(out, X_OK) ? -errno : 0;
	}
	for (p = path ? path : "/usr/bin:/bin"; *p; p = *end ? end + 1 : end) {
		end = strchr(p, ':');
		if (!end)
			end = p + strlen(p);
		snprintf(out, len, "%.*s/passt", (int)(end - p), p);
		if (end > p && access(out, X_OK) == 0)
			return 0;
	}
	return -ENOENT;
}

bool net_passt_available(void)
{
	char prog[4096];

	return passt_find(NULL, prog, sizeof(prog)) == 0;
}

/*
 * A host port a forward would listen on, already taken: passt would
 * only say so in its log and go on without it.  Checked here so the
 * user hears it at once.
 */
static int passt_port_free(const struct net_fwd *f)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(f->host_port) };
	int fd = socket(AF_INET, (f->udp ? SOCK_DGRAM : SOCK_STREAM) |
			SOCK_CLOEXEC, 0), ret = 0;

	if (fd < 0)
		return -errno;
	if (f->addr[0])
		inet_pton(AF_INET, f->addr, &sa.sin_addr);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
	    errno == EADDRINUSE)
		ret = -EADDRINUSE;
	close(fd);
	return ret;
}

static void passt_args(const struct net_spec *spec, const char *prog,
		       char *mtu, char fwd[][48], const char **argv)
{
	unsigned int n = 0, i;

	argv[n++] = prog;
	argv[n++] = "--fd";
	argv[n++] = "3";
	argv[n++] = "--foreground";
	argv[n++] = "--quiet";
	/*
	 * Its messages go to stderr, our pipe (--log-file would be opened
	 * inside passt's own sandbox, where the pipe is out of reach).
	 * Without a syslog socket passt also says it could not send them
	 * there; those lines come through too.
	 */
	argv[n++] = "--address";
	argv[n++] = PASST_GUEST_ADDR;
	argv[n++] = "--netmask";
	argv[n++] = "24";
	argv[n++] = "--gateway";
	argv[n++] = PASST_GATEWAY;
	argv[n++] = "--dns";
	argv[n++] = PASST_DNS;
	argv[n++] = "--dns-forward";
	argv[n++] = PASST_DNS;
	/*
	 * As root, passt drops to nobody, which it looks up by name: given
	 * by number it needs no /etc/passwd (minimal systems, initramfs).
	 */
	if (geteuid() == 0) {
		argv[n++] = "--runas";
		argv[n++] = "65534:65534";
	}
	argv[n++] = "--mtu";
	snprintf(mtu, 12, "%u", spec->mtu ? spec->mtu : 1500);
	argv[n++] = mtu;
	for (i = 0; i < spec->nfwd; i++) {
		const struct net_fwd *f = &spec->fwd[i];

		argv[n++] = f->udp ? "-u" : "-t";
		snprintf(fwd[i], 48, "%s%s%u:%u", f->addr, f->addr[0] ? "/" : "",
			 f->host_port, f->guest_port);
		argv[n++] = fwd[i];
	}
	argv[n] = NULL;
}

/*
 * The child, between fork and exec: only async-signal-safe calls.  It
 * dies with its parent, keeps the socket as fd 3 and the log pipe as
 * stderr, and reports a failed exec on the status pipe.
 */
static void __attribute__((noreturn))
passt_child(const char *prog, char *const argv[], int sock, int logw,
	    int status, pid_t parent)
{
	int e;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(127);
	if (dup2(sock, 3) < 0 || dup2(logw, 2) < 0)
		goto fail;
	if (logw != 2)
		close(logw);
	if (sock != 3)
		close(sock);
	execv(prog, argv);
fail:
	e = errno;
	if (write(status, &e, sizeof(e)) < 0)
		_exit(127);
	_exit(127);
}

static void passt_close(struct net_backend *nb)
{
	struct passt *ps = nb->priv;
	int status;

	if (nb->fds[0] >= 0)
		close(nb->fds[0]);
	nb->fds[0] = -1;
	if (nb->log_fd >= 0)
		close(nb->log_fd);
	nb->log_fd = -1;
	if (!ps)
		return;
	if (ps->pid > 0) {
		/* Its socket is closed: it ends by itself, or by SIGKILL. */
		kill(ps->pid, SIGTERM);
		for (int i = 0; i < 100; i++) {
			if (waitpid(ps->pid, &status, WNOHANG) == ps->pid)
				goto reaped;
			nanosleep(&(struct timespec){ 0, 2000000 }, NULL);
		}
		kill(ps->pid, SIGKILL);
		waitpid(ps->pid, &status, 0);
	}
reaped:
	free(ps->rbuf);
	free(ps->frame);
	free(ps->wbuf);
	free(ps);
	nb->priv = NULL;
}

static int passt_open(struct net_backend *nb, char *err, size_t errlen)
{
	const char *argv[PASST_MAX_ARGS];
	char prog[4096], mtu[12], fwd[NET_MAX_FWD][48];
	int sv[2] = { -1, -1 }, logp[2] = { -1, -1 }, st[2] = { -1, -1 };
	struct net_spec *spec = &nb->spec;
	struct passt *ps;
	unsigned int i;
	pid_t parent = getpid();
	int ret, e;

	if (passt_find(spec->passt, prog, sizeof(prog)))
		return input_errf(err, errlen, -ENOENT,
				  spec->passt ?
				  "network: mode=user: cannot run passt=%s" :
				  "network: mode=user needs passt: install the 'passt' package (apt-get install passt)%s",
				  spec->passt ? spec->passt : "");
	for (i = 0; i < spec->nfwd; i++)
		if (passt_port_free(&spec->fwd[i]) == -EADDRINUSE)
			return input_errf(err, errlen, -EADDRINUSE,
					  "network: hostfwd: host %s port %u is in use",
					  spec->fwd[i].udp ? "UDP" : "TCP",
					  spec->fwd[i].host_port);
	ps = calloc(1, sizeof(*ps));
	if (!ps)
		return errf(err, errlen, -ENOMEM, "out of memory");
	nb->priv = ps;
	nb->mtu = spec->mtu ? spec->mtu : 1500;
	nb->hdr_len = NET_VNET_HDR_LEN;	/* made up here: passt has none */
	nb->offloads = 0;		/* passt takes plain frames only */
	stream_rx_init(&ps->rx, nb->mtu + PASST_ETH_HLEN + PASST_VLAN_HLEN);
	ps->rbuf = malloc(PASST_RBUF);
	ps->frame = malloc(ps->rx.max_frame);
	ps->wbuf = malloc(PASST_WBUF);
	if (!ps->rbuf || !ps->frame || !ps->wbuf)
		return errf(err, errlen, -ENOMEM, "out of memory");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
	    pipe2(logp, O_CLOEXEC) < 0 || pipe2(st, O_CLOEXEC) < 0) {
		ret = errf(err, errlen, -errno, "network: passt: %s",
			   strerror(errno));
		goto out;
	}
	/* passt must never block on a full log pipe. */
	fcntl(logp[1], F_SETFL, O_NONBLOCK);
	passt_args(spec, prog, mtu, fwd, argv);
	ps->pid = fork();
	if (ps->pid < 0) {
		ret = errf(err, errlen, -errno, "network: cannot start passt: %s",
			   strerror(errno));
		goto out;
	}
	if (!ps->pid)
		passt_child(prog, (char *const *)argv, sv[1], logp[1], st[1],
			    parent);
	close(st[1]);
	st[1] = -1;
	/* The exec went through when the status pipe closes empty. */
	if (read(st[0], &e, sizeof(e)) == sizeof(e)) {
		ret = errf(err, errlen, -e, "network: cannot run %s: %s", prog,
			   strerror(e));
		goto out;
	}
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(logp[0], F_SETFL, O_NONBLOCK);
	nb->fds[0] = sv[0];
	nb->log_fd = logp[0];
	sv[0] = logp[0] = -1;
	snprintf(nb->ifname, sizeof(nb->ifname), "passt");
	ret = 0;
out:
	/* What nb took is -1 here: the rest is closed. */
	for (i = 0; i < 2; i++) {
		if (sv[i] >= 0)
			close(sv[i]);
		if (logp[i] >= 0)
			close(logp[i]);
		if (st[i] >= 0)
			close(st[i]);
	}
	return ret;
}

/* A frame into iov after a zeroed virtio-net header: its length with it. */
static ssize_t passt_deliver(const struct iovec *iov, unsigned int n,
			     const uint8_t *frame, uint32_t len)
{
	static const uint8_t zero[NET_VNET_HDR_LEN];

	buf_to_iov(iov, n, 0, zero, sizeof(zero));
	buf_to_iov(iov, n, sizeof(zero), frame, len);
	return sizeof(zero) + len;
}

/*
 * The next frame passt sent, into iov after a zeroed virtio-net header
 * (no offloads: nothing to say): its length with the header.
 */
static ssize_t passt_recv(struct net_backend *nb, unsigned int q,
			  const struct iovec *iov, unsigned int n)
{
	struct passt *ps = nb->priv;
	uint32_t done;
	ssize_t r;

	(void)q;
	for (;;) {
		/*
		 * Each frame skipped for its length is told once, after any
		 * good frame the same feed completed.
		 */
		if (ps->rx.dropped != ps->told) {
			ps->told++;
			return -EBADMSG;
		}
		while (ps->roff < ps->rlen) {
			/* A whole frame in the buffer: one copy, straight in. */
			done = stream_rx_whole(&ps->rx, ps->rbuf + ps->roff,
					       ps->rlen - ps->roff);
			if (done) {
				const uint8_t *f = ps->rbuf + ps->roff + STREAM_HDR;

				ps->roff += STREAM_HDR + done;
				return passt_deliver(iov, n, f, done);
			}
			ps->roff += stream_rx_feed(&ps->rx, ps->rbuf + ps->roff,
						   ps->rlen - ps->roff,
						   ps->frame, &done);
			if (!done && ps->rx.dropped != ps->told)
				break;
			if (!done)
				continue;
			return passt_deliver(iov, n, ps->frame, done);
		}
		if (ps->rx.dropped != ps->told)
			continue;		/* a drop to tell first */
		ps->roff = ps->rlen = 0;
		r = read(nb->fds[0], ps->rbuf, PASST_RBUF);
		if (r == 0)
			return -EPIPE;		/* passt ended */
		if (r < 0)
			return -errno;
		ps->rlen = r;
	}
}

/*
 * Writes what is gathered: 1 if some still waits (passt's socket is
 * full), 0 if all went, -errno if passt is gone.
 */
static int passt_flush(struct net_backend *nb, unsigned int q)
{
	struct passt *ps = nb->priv;
	ssize_t r;

	(void)q;
	while (ps->woff < ps->wlen) {
		r = send(nb->fds[0], ps->wbuf + ps->woff, ps->wlen - ps->woff,
			 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r < 0)
			return errno == EAGAIN ? 1 : -errno;
		ps->woff += r;
	}
	ps->woff = ps->wlen = 0;
	return 0;
}

/*
 * A frame to passt: its virtio-net header goes (passt takes none), its
 * length goes first.  Frames are gathered and written together when the
 * device's batch ends (flush) or the buffer fills: one system call per
 * batch, not one per frame, which is what passt's side costs too.  The
 * copy lets the chain go back at once.
 */
static int passt_send(struct net_backend *nb, unsigned int q,
		      const struct iovec *iov, unsigned int n)
{
	struct passt *ps = nb->priv;
	size_t len = iov_total(iov, n), room;
	int ret;

	if (len < NET_VNET_HDR_LEN + PASST_ETH_HLEN ||
	    len > NET_VNET_HDR_LEN + PASST_MAX_FRAME)
		return -EINVAL;
	len -= NET_VNET_HDR_LEN;
	room = PASST_WBUF - (ps->wlen - ps->woff);
	if (room < STREAM_HDR + len) {
		ret = passt_flush(nb, q);
		if (ret < 0)
			return ret;
		room = PASST_WBUF - (ps->wlen - ps->woff);
		if (room < STREAM_HDR + len)
			return -EAGAIN;
	}
	/* Keep what waits at the front, the room after it. */
	if (ps->woff && PASST_WBUF - ps->wlen < STREAM_HDR + len) {
		memmove(ps->wbuf, ps->wbuf + ps->woff, ps->wlen - ps->woff);
		ps->wlen -= ps->woff;
		ps->woff = 0;
	}
	ps->wlen += stream_put(ps->wbuf + ps->wlen, iov, n, NET_VNET_HDR_LEN, len);
	return 0;
}

/* passt takes and gives plain frames: no offloads to turn on. */
static int passt_set_offload(struct net_backend *nb, unsigned int off)
{
	(void)nb;
	return off ? -EOPNOTSUPP : 0;
}

/* One queue pair, always on. */
static int passt_set_queue_enabled(struct net_backend *nb, unsigned int q,
				   bool on)
{
	(void)nb;
	(void)q;
	(void)on;
	return 0;
}

int net_passt_pid(const struct net_backend *nb)
{
	const struct passt *ps = nb->priv;

	return nb->ops == &net_passt_ops && ps ? ps->pid : -1;
}

const struct net_ops net_passt_ops = {
	.name = "passt",
	.open = passt_open,
	.set_offload = passt_set_offload,
	.set_queue_enabled = passt_set_queue_enabled,
	.recv = passt_recv,
	.send = passt_send,
	.flush = passt_flush,
	.close = passt_close,
};
