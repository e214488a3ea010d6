/*
 * vsockpeer - both ends of the vsock tests, as a static program: on the
 * host through lkvm's Unix-socket mapping, in a Linux guest through
 * AF_VSOCK.  Addresses:
 *
 *	unix:PATH:PORT	connect to PATH, "CONNECT PORT", wait for "OK"
 *	unixl:PATH	listen on the Unix socket PATH (PATH_PORT for guests)
 *	vsock:CID:PORT	AF_VSOCK connect
 *	vsockl:PORT	AF_VSOCK listen
 *	tcp:IPV4:PORT	TCP connect (the user-mode network's hostfwd tests)
 *	tcpl:PORT	TCP listen on every IPv4 address
 *
 * Commands (data on stdin/stdout, so the test compares sha256 sums):
 *	echo LADDR		serve: echo every connection, many at once
 *	sink LADDR N		accept N connections, one after another,
 *				each's bytes to stdout
 *	send ADDR		stdin to one connection, then shut it
 *	xfer ADDR		stdin out, the echo back to stdout
 *	many ADDR N BYTES	N connections at once, each echoing its own
 *				BYTES, checked byte for byte
 *	churn ADDR N		N connections one after another, 100 bytes each
 *	stall ADDR BYTES MS	send BYTES, reading no echo for MS first
 *	cid			print this guest's CID (/dev/vsock)
 * Ends with "vsockpeer: ..." on stderr; exit 0 if all held.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>

#define MAXC 512

static void die(const char *what)
{
	fprintf(stderr, "vsockpeer: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int unix_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -1;
	strcpy(sa->sun_path, path);
	return 0;
}

/* Reads the "OK PORT\n" line, byte by byte (what follows is the stream's). */
static int read_ok(int fd)
{
	char line[32];
	size_t n = 0;

	while (n < sizeof(line) - 1) {
		if (read(fd, line + n, 1) != 1)
			return -1;
		if (line[n++] == '\n')
			return strncmp(line, "OK ", 3) ? -1 : 0;
	}
	return -1;
}

static int dial(const char *addr)
{
	char buf[256], *port;
	int fd;

	snprintf(buf, sizeof(buf), "%s", addr);
	port = strrchr(buf, ':');
	if (!port)
		return -1;
	*port++ = '\0';
	if (!strncmp(buf, "unix:", 5)) {
		struct sockaddr_un sa;
		char req[32];
		int n;

		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || unix_addr(buf + 5, &sa) ||
		    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			return -1;
		n = snprintf(req, sizeof(req), "CONNECT %s\n", port);
		if (write(fd, req, n) != n || read_ok(fd))
			return -1;
		return fd;
	}
	if (!strncmp(buf, "tcp:", 4)) {
		struct sockaddr_in si = { .sin_family = AF_INET };

		si.sin_port = htons(atoi(port));
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || inet_pton(AF_INET, buf + 4, &si.sin_addr) != 1 ||
		    connect(fd, (struct sockaddr *)&si, sizeof(si)) < 0)
			return -1;
		return fd;
	}
	if (!strncmp(buf, "vsock:", 6)) {
		struct sockaddr_vm sv = { .svm_family = AF_VSOCK };

		sv.svm_cid = atoi(buf + 6);
		sv.svm_port = atoi(port);
		fd = socket(AF_VSOCK, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sv, sizeof(sv)) < 0)
			return -1;
		return fd;
	}
	return -1;
}

static int listen_on(const char *addr)
{
	int fd;

	if (!strncmp(addr, "unixl:", 6)) {
		struct sockaddr_un sa;

		unlink(addr + 6);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || unix_addr(addr + 6, &sa) ||
		    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			die("bind");
	} else if (!strncmp(addr, "tcpl:", 5)) {
		struct sockaddr_in si = { .sin_family = AF_INET };
		int one = 1;

		si.sin_port = htons(atoi(addr + 5));
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd >= 0)
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (fd < 0 || bind(fd, (struct sockaddr *)&si, sizeof(si)) < 0)
			die("bind");
	} else if (!strncmp(addr, "vsockl:", 7)) {
		struct sockaddr_vm sv = { .svm_family = AF_VSOCK,
					  .svm_cid = VMADDR_CID_ANY };

		sv.svm_port = atoi(addr + 7);
		fd = socket(AF_VSOCK, SOCK_STREAM, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sv, sizeof(sv)) < 0)
			die("bind");
	} else {
		errno = EINVAL;
		die(addr);
	}
	if (listen(fd, 256) < 0)
		die("listen");
	return fd;
}

static void write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("write");
		c += w;
		n -= w;
	}
}

/* Echo server: a poll loop over the listener and every connection. */
static __attribute__((noreturn)) void cmd_echo(const char *laddr)
{
	struct pollfd p[MAXC + 1];
	int n = 1, i;
	char buf[65536];

	p[0] = (struct pollfd){ .fd = listen_on(laddr), .events = POLLIN };
	fprintf(stderr, "vsockpeer: echoing on %s\n", laddr);
	for (;;) {
		if (poll(p, n, -1) < 0 && errno != EINTR)
			die("poll");
		if ((p[0].revents & POLLIN) && n <= MAXC) {
			int fd = accept(p[0].fd, NULL, NULL);

			if (fd >= 0)
				p[n++] = (struct pollfd){ .fd = fd, .events = POLLIN };
		}
		for (i = 1; i < n; i++) {
			ssize_t r;

			if (!p[i].revents)
				continue;
			r = read(p[i].fd, buf, sizeof(buf));
			if (r > 0) {
				write_all(p[i].fd, buf, r);	/* blocking: backpressure */
				continue;
			}
			close(p[i].fd);
			p[i--] = p[--n];
		}
	}
}

static int cmd_sink(const char *laddr, int count)
{
	int l = listen_on(laddr), i;
	char buf[65536];
	uint64_t total = 0;

	for (i = 0; i < count; i++) {
		int fd = accept(l, NULL, NULL);
		ssize_t r;

		if (fd < 0)
			die("accept");
		while ((r = read(fd, buf, sizeof(buf))) > 0) {
			write_all(1, buf, r);
			total += r;
		}
		close(fd);
	}
	fprintf(stderr, "vsockpeer: sink: %d connections, %llu bytes\n", count,
		(unsigned long long)total);
	return 0;
}

static int cmd_send(const char *addr)
{
	int fd = dial(addr);
	char buf[65536];
	uint64_t total = 0;
	ssize_t r;

	if (fd < 0)
		die("connect");
	while ((r = read(0, buf, sizeof(buf))) > 0) {
		write_all(fd, buf, r);
		total += r;
	}
	shutdown(fd, SHUT_WR);
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
	fprintf(stderr, "vsockpeer: send: %llu bytes\n",
		(unsigned long long)total);
	return 0;
}

/* stdin out, echo back to stdout, both at once (poll). */
static int cmd_xfer(const char *addr)
{
	int fd = dial(addr);
	char in[65536], out[65536];
	size_t ilen = 0, ioff = 0;
	bool in_eof = false, shut = false;
	uint64_t sent = 0, got = 0;

	if (fd < 0)
		die("connect");
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (!ilen && !in_eof) {
			r = read(0, in, sizeof(in));
			if (r <= 0)
				in_eof = true;
			else
				ilen = r, ioff = 0;
		}
		if (in_eof && !ilen && !shut) {
			shutdown(fd, SHUT_WR);
			shut = true;
		}
		if (ilen)
			p.events |= POLLOUT;
		if (poll(&p, 1, 10000) <= 0)
			die("poll (no progress for 10 s)");
		if (p.revents & POLLOUT) {
			r = send(fd, in + ioff, ilen, MSG_DONTWAIT);
			if (r > 0)
				ioff += r, ilen -= r, sent += r;
		}
		if (p.revents & (POLLIN | POLLHUP)) {
			r = read(fd, out, sizeof(out));
			if (r <= 0)
				break;
			write_all(1, out, r);
			got += r;
		}
	}
	close(fd);
	fprintf(stderr, "vsockpeer: xfer: %llu bytes out, %llu back\n",
		(unsigned long long)sent, (unsigned long long)got);
	return sent == got ? 0 : 1;
}

static uint8_t pattern(unsigned int conn, uint64_t i)
{
	return (uint8_t)(i * 131 + conn * 7 + (i >> 8));
}

/* N connections at once, each sending its own bytes and checking them. */
static int cmd_many(const char *addr, int n, uint64_t bytes)
{
	static struct { int fd; uint64_t sent, got; bool shut, bad; } c[MAXC];
	struct pollfd p[MAXC];
	int i, done = 0, ok = 0;
	uint8_t buf[16384];

	if (n > MAXC)
		n = MAXC;
	for (i = 0; i < n; i++) {
		c[i].fd = dial(addr);
		if (c[i].fd < 0)
			die("connect");
	}
	while (done < n) {
		for (i = 0; i < n; i++) {
			p[i] = (struct pollfd){ .fd = c[i].fd };
			if (c[i].fd < 0)
				continue;
			p[i].events = POLLIN | (c[i].sent < bytes ? POLLOUT : 0);
		}
		if (poll(p, n, 10000) <= 0)
			die("poll (no progress for 10 s)");
		for (i = 0; i < n; i++) {
			ssize_t r;
			uint64_t k;

			if (p[i].revents & POLLOUT) {
				size_t len = bytes - c[i].sent < sizeof(buf) ?
					     bytes - c[i].sent : sizeof(buf);

				for (k = 0; k < len; k++)
					buf[k] = pattern(i, c[i].sent + k);
				r = send(c[i].fd, buf, len, MSG_DONTWAIT);
				if (r > 0)
					c[i].sent += r;
			}
			if (c[i].sent == bytes && !c[i].shut) {
				shutdown(c[i].fd, SHUT_WR);
				c[i].shut = true;
			}
			if (!(p[i].revents & (POLLIN | POLLHUP)))
				continue;
			r = read(c[i].fd, buf, sizeof(buf));
			for (k = 0; r > 0 && k < (uint64_t)r; k++)
				c[i].bad |= buf[k] != pattern(i, c[i].got + k);
			if (r > 0) {
				c[i].got += r;
				continue;
			}
			close(c[i].fd);
			c[i].fd = -1;
			ok += !c[i].bad && c[i].got == bytes;
			done++;
		}
	}
	fprintf(stderr, "vsockpeer: many: %d of %d connections echoed %llu bytes intact\n",
		ok, n, (unsigned long long)bytes);
	return ok == n ? 0 : 1;
}

static int cmd_churn(const char *addr, int n)
{
	int i, ok = 0;
	char msg[100], back[100];

	for (i = 0; i < n; i++) {
		int fd = dial(addr);
		size_t got = 0;
		ssize_t r;

		if (fd < 0)
			continue;
		memset(msg, 'a' + i % 26, sizeof(msg));
		write_all(fd, msg, sizeof(msg));
		shutdown(fd, SHUT_WR);
		while (got < sizeof(back) &&
		       (r = read(fd, back + got, sizeof(back) - got)) > 0)
			got += r;
		ok += got == sizeof(msg) && !memcmp(msg, back, got);
		close(fd);
	}
	fprintf(stderr, "vsockpeer: churn: %d of %d connections opened, echoed and closed\n",
		ok, n);
	return ok == n ? 0 : 1;
}

/* A reader that stalls: nothing is read for ms while bytes go out. */
static int cmd_stall(const char *addr, uint64_t bytes, int ms)
{
	int fd = dial(addr);
	uint8_t buf[16384];
	uint64_t sent = 0, got = 0, k;
	bool bad = false;
	struct timespec t0, t;

	if (fd < 0)
		die("connect");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (got < bytes) {
		struct pollfd p = { .fd = fd, .events = 0 };
		long el;

		clock_gettime(CLOCK_MONOTONIC, &t);
		el = (t.tv_sec - t0.tv_sec) * 1000 +
		     (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (sent < bytes)
			p.events |= POLLOUT;
		if (el >= ms)
			p.events |= POLLIN;
		if (poll(&p, 1, el >= ms ? 10000 : ms - el) < 0)
			die("poll");
		if (p.revents & POLLOUT) {
			size_t len = bytes - sent < sizeof(buf) ? bytes - sent :
								   sizeof(buf);
			ssize_t r;

			for (k = 0; k < len; k++)
				buf[k] = pattern(1, sent + k);
			r = send(fd, buf, len, MSG_DONTWAIT);
			if (r > 0)
				sent += r;
		}
		if (p.revents & (POLLIN | POLLHUP)) {
			ssize_t r = read(fd, buf, sizeof(buf));

			if (r <= 0)
				break;
			for (k = 0; k < (uint64_t)r; k++)
				bad |= buf[k] != pattern(1, got + k);
			got += r;
		}
		if (!p.revents && el >= ms && !(p.events & POLLOUT))
			break;
	}
	close(fd);
	fprintf(stderr, "vsockpeer: stall: %llu bytes sent, %llu echoed back %s after a %d ms stall\n",
		(unsigned long long)sent, (unsigned long long)got,
		bad ? "CORRUPT" : "intact", ms);
	return !bad && got == bytes ? 0 : 1;
}

static int cmd_cid(void)
{
	unsigned int cid;
	int fd = open("/dev/vsock", O_RDONLY);

	if (fd < 0 || ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid) < 0)
		die("/dev/vsock");
	printf("%u\n", cid);
	return 0;
}

int main(int argc, char **argv)
{
	const char *c = argc > 2 ? argv[1] : "";

	signal(SIGPIPE, SIG_IGN);
	if (argc == 2 && !strcmp(argv[1], "cid"))
		return cmd_cid();
	if (!strcmp(c, "echo"))
		cmd_echo(argv[2]);
	if (!strcmp(c, "sink") && argc > 3)
		return cmd_sink(argv[2], atoi(argv[3]));
	if (!strcmp(c, "send"))
		return cmd_send(argv[2]);
	if (!strcmp(c, "xfer"))
		return cmd_xfer(argv[2]);
	if (!strcmp(c, "many") && argc > 4)
		return cmd_many(argv[2], atoi(argv[3]), strtoull(argv[4], 0, 0));
	if (!strcmp(c, "churn") && argc > 3)
		return cmd_churn(argv[2], atoi(argv[3]));
	if (!strcmp(c, "stall") && argc > 4)
		return cmd_stall(argv[2], strtoull(argv[3], 0, 0), atoi(argv[4]));
	fprintf(stderr, "usage: vsockpeer echo|sink|send|xfer|many|churn|stall ...\n");
	return 2;
}
