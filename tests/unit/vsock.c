/*
 * Tests of the virtio-vsock connection engine (virtio/vsock_conn.c,
 * virtio/vsock_uds.c), driven the way the device drives it: guest
 * packets in through vsock_tx, receive buffers filled by vsock_rx, host
 * socket events through vsock_host_events, all on this one thread.  The
 * host side is real Unix sockets in a private directory.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lkvm/lib/unixsock.h"
#include "lkvm/lib/util.h"
#include "lkvm/virtio/vsock.h"
#include "test.h"

#define CID 3
#define RXBUF (VSOCK_HDR_LEN + 4096)

static char dir[64], path[128];

struct pkt {
	struct vsock_hdr h;
	uint8_t data[65536];
	uint32_t len;		/* bytes vsock_rx wrote, 0: none */
};

/* A guest packet, its header and payload split over two iovecs. */
static void gsend(struct vsock *vs, uint32_t gport, uint32_t hport,
		  uint16_t op, uint32_t flags, const void *data, uint32_t len,
		  uint32_t buf_alloc, uint32_t fwd_cnt)
{
	struct vsock_hdr h = {
		.src_cid = htole64(CID), .dst_cid = htole64(VSOCK_HOST_CID),
		.src_port = htole32(gport), .dst_port = htole32(hport),
		.len = htole32(len), .type = htole16(VSOCK_TYPE_STREAM),
		.op = htole16(op), .flags = htole32(flags),
		.buf_alloc = htole32(buf_alloc), .fwd_cnt = htole32(fwd_cnt),
	};
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)data, len } };

	vsock_tx(vs, iov, len ? 2 : 1);
}

/* The next packet for the guest, into a buffer of room payload bytes. */
static bool grecv(struct vsock *vs, struct pkt *p, size_t room)
{
	static uint8_t buf[VSOCK_HDR_LEN + 65536];
	struct iovec iov[2] = { { buf, 20 }, { buf + 20, VSOCK_HDR_LEN - 20 + room } };

	p->len = vsock_rx(vs, iov, 2);
	if (!p->len)
		return false;
	memcpy(&p->h, buf, sizeof(p->h));
	vsock_hdr_from_le(&p->h);
	memcpy(p->data, buf + VSOCK_HDR_LEN, p->len - VSOCK_HDR_LEN);
	return true;
}

/* Host events until the engine has something for the guest, or 1 s. */
static bool settle(struct vsock *vs)
{
	for (int i = 0; i < 100; i++) {
		struct pollfd p = { .fd = vs->epfd, .events = POLLIN };

		vsock_host_events(vs);
		if (vsock_rx_pending(vs))
			return true;
		poll(&p, 1, 10);
	}
	return false;
}

static int host_listen(uint32_t port)
{
	char p[160];

	snprintf(p, sizeof(p), "%s_%u", path, port);
	return unix_listen(p, 128);
}

static int accept_wait(int lfd)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };

	poll(&p, 1, 1000);
	return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

static ssize_t read_wait(int fd, void *buf, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	poll(&p, 1, 1000);
	return recv(fd, buf, len, MSG_DONTWAIT);
}

static void test_guest_connects(void)
{
	struct vsock vs;
	char err[256], buf[64];
	struct pkt p;
	int lfd, hfd;

	CHECK_EQ(vsock_init(&vs, CID, path, -1, err, sizeof(err)), 0);
	lfd = host_listen(5000);
	CHECK(lfd >= 0);
	gsend(&vs, 40000, 5000, VSOCK_OP_REQUEST, 0, NULL, 0, 65536, 0);
	CHECK(grecv(&vs, &p, 4096));
	CHECK_EQ(p.h.op, VSOCK_OP_RESPONSE);
	CHECK_EQ(p.h.src_port, 5000);
	CHECK_EQ(p.h.dst_port, 40000);
	CHECK_EQ(p.h.dst_cid, CID);
	CHECK_EQ(p.h.buf_alloc, VSOCK_BUF_ALLOC);
	CHECK(!grecv(&vs, &p, 4096));
	hfd = accept_wait(lfd);
	CHECK(hfd >= 0);
	/* Guest to host. */
	gsend(&vs, 40000, 5000, VSOCK_OP_RW, 0, "hello host\n", 11, 65536, 0);
	CHECK_EQ(read_wait(hfd, buf, sizeof(buf)), 11);
	CHECK(!memcmp(buf, "hello host\n", 11));
	/* Host to guest: straight into the receive buffer. */
	CHECK_EQ(send(hfd, "hi guest", 8, 0), 8);
	CHECK(settle(&vs));
	CHECK(grecv(&vs, &p, 4096));
	CHECK_EQ(p.h.op, VSOCK_OP_RW);
	CHECK_EQ(p.h.len, 8);
	CHECK(!memcmp(p.data, "hi guest", 8));
	CHECK_EQ(p.h.fwd_cnt, 11);	/* what the host socket took */
	/* The host closes: SHUTDOWN with both flags. */
	close(hfd);
	CHECK(settle(&vs));
	CHECK(grecv(&vs, &p, 4096));
	CHECK_EQ(p.h.op, VSOCK_OP_SHUTDOWN);
	CHECK_EQ(p.h.flags, VSOCK_SHUTDOWN_SEND | VSOCK_SHUTDOWN_RCV);
	gsend(&vs, 40000, 5000, VSOCK_OP_RST, 0, NULL, 0, 65536, 0);
	CHECK_EQ(vs.nconns, 0);
	/* Nobody at PATH_5001: refused with a reset. */
	gsend(&vs, 40001, 5001, VSOCK_OP_REQUEST, 0, NULL, 0, 65536, 0);
	CHECK(grecv(&vs, &p, 4096));
	CHECK_EQ(p.h.op, VSOCK_OP_RST);
	CHECK_EQ(p.h.dst_port, 40001);
	CHECK_EQ(vs.cnt.refused, 1);
	CHECK_EQ(vs.nconns, 0);
	close(lfd);
	vsock_fini(&vs);
}

/* A host client through PATH: CONNECT, OK, data, the guest's close. */
static void test_host_connects(void)
{
	struct vsock vs;
	char err[256], buf[64];
	struct pkt p;
	uint32_t local;
	int fd;

	CHECK_EQ(vsock_init(&vs, CID, path, -1, err, sizeof(err)), 0);
	CHECK_EQ(access(path, F_OK), 0);
	{
		struct stat st;

		CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	}
	fd = unix_connect(path, 0);
	CHECK(fd >= 0);
	/* The line and the first data in one write: the data is kept. */
	CHECK_EQ(send(fd, "CONNECT 1234\nearly", 18, 0), 18);
	CHECK(settle(&vs));
	CHECK(grecv(&vs, &p, 4096));
	CHECK_EQ(p.h.op, VSOCK_OP_REQUEST);
	CHECK_EQ(p.h.dst_port, 1234);
	local = p.h.src_port;
	CHECK(local >= VSOCK_LOCAL_PORT_BASE);
	gsend(&vs, 1234, local, VSOCK_OP_RESPONSE, 0, NULL, 0, 65536, 0);
	CHECK_EQ(read_wait(fd, buf, sizeof(buf)), snprintf(NULL, 0, "OK %u\n", local));
	CHECK(!strncmp(buf, "OK ", 3));
	CHECK(settle(&vs));
	CHECK(grecv(&vs, &p, 4096));
	CHECK_EQ(p.h.op, VSOCK_OP_RW);
	CHECK_EQ(p.h.len, 5);
	CHECK(!memcmp(p.data, "early", 5));
	/* The guest shuts down both ways: a reset answers, the host sees EOF. */
	gsend(&vs, 1234, local, VSOCK_OP_SHUTDOWN,
	      VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND, NULL, 0, 65536, 5);
	CHECK(grecv(&vs, &p, 4096));
	CHECK_EQ(p.h.op, VSOCK_OP_RST);
	CHECK_EQ(read_wait(fd, buf, sizeof(buf)), 0);
	close(fd);
	CHECK_EQ(vs.nconns, 0);

	/* The guest refuses: the client's socket closes. */
	fd = unix_connect(path, 0);
	CHECK_EQ(send(fd, "CONNECT 9\n", 10, 0), 10);
	CHECK(settle(&vs));
	CHECK(grecv(&vs, &p, 4096));
	CHECK_EQ(p.h.op, VSOCK_OP_REQUEST);
	gsend(&vs, 9, p.h.src_port, VSOCK_OP_RST, 0, NULL, 0, 0, 0);
	CHECK_EQ(read_wait(fd, buf, sizeof(buf)), 0);
	close(fd);

	/* Bad lines: closed, and nothing reaches the guest. */
	{
		static const char *const bad[] = {
			"CONNECT\n", "CONNECT x\n", "CONNECT 4294967296\n",
			"connect 5\n", "CONNECT 5 6\n",
			"CONNECT 1111111111111111111111111111111",
		};

		for (unsigned int i = 0; i < ARRAY_SIZE(bad); i++) {
			ssize_t r;

			fd = unix_connect(path, 0);
			send(fd, bad[i], strlen(bad[i]), 0);
			settle(&vs);
			CHECK(!vsock_rx_pending(&vs));
			/* EOF, or a reset where the line was left unread. */
			r = read_wait(fd, buf, sizeof(buf));
			CHECK(r == 0 || (r < 0 && errno == ECONNRESET));
			close(fd);
		}
	}
	CHECK_EQ(vs.nconns, 0);
	vsock_fini(&vs);
	CHECK(access(path, F_OK) < 0);	/* removed at the end */
}

/* Packets no connection should accept: dropped or reset, counted. */
static void test_bad_packets(void)
{
	struct vsock vs;
	char err[256];
	struct pkt p;
	struct vsock_hdr h;
	struct iovec iov = { &h, 10 };
	int lfd, hfd;

	CHECK_EQ(vsock_init(&vs, CID, path, -1, err, sizeof(err)), 0);
	vsock_tx(&vs, &iov, 1);			/* shorter than a header */
	CHECK_EQ(vs.cnt.bad_packets, 1);
	memset(&h, 0, sizeof(h));
	h.src_cid = htole64(7);			/* not the guest's CID */
	h.dst_cid = htole64(2);
	h.op = htole16(VSOCK_OP_REQUEST);
	h.type = htole16(VSOCK_TYPE_STREAM);
	iov.iov_len = sizeof(h);
	vsock_tx(&vs, &iov, 1);
	CHECK_EQ(vs.cnt.bad_packets, 2);
	CHECK(!vsock_rx_pending(&vs));
	/* A length past the buffer; an unknown op; a seqpacket. */
	h.src_cid = htole64(CID);
	h.len = htole32(100);
	h.op = htole16(VSOCK_OP_RW);
	vsock_tx(&vs, &iov, 1);
	CHECK_EQ(vs.cnt.bad_packets, 3);
	CHECK(grecv(&vs, &p, 4096) && p.h.op == VSOCK_OP_RST);
	h.len = 0;
	h.op = htole16(99);
	vsock_tx(&vs, &iov, 1);
	CHECK(grecv(&vs, &p, 4096) && p.h.op == VSOCK_OP_RST);
	h.op = htole16(VSOCK_OP_REQUEST);
	h.type = htole16(2);
	vsock_tx(&vs, &iov, 1);
	CHECK(grecv(&vs, &p, 4096) && p.h.op == VSOCK_OP_RST);
	CHECK_EQ(vs.nconns, 0);
	/* Data for a connection that does not exist: reset. */
	gsend(&vs, 1, 2, VSOCK_OP_RW, 0, "x", 1, 0, 0);
	CHECK(grecv(&vs, &p, 4096) && p.h.op == VSOCK_OP_RST);
	/* Past its credit: the connection is reset, the host socket closed. */
	lfd = host_listen(77);
	gsend(&vs, 500, 77, VSOCK_OP_REQUEST, 0, NULL, 0, 65536, 0);
	CHECK(grecv(&vs, &p, 4096) && p.h.op == VSOCK_OP_RESPONSE);
	hfd = accept_wait(lfd);
	{
		static uint8_t big[65536];
		uint64_t bad = vs.cnt.bad_packets;
		struct vconn *c = vsock_conn_find(&vs, 77, 500);
		uint32_t most = 0;
		int i;

		/*
		 * The host reads nothing: past what its socket holds, lkvm
		 * keeps up to its credit, and a guest that sends more is
		 * reset.
		 */
		for (i = 0; i < 256 && vs.nconns; i++) {
			most = MAX(most, c->buf_len);
			gsend(&vs, 500, 77, VSOCK_OP_RW, 0, big, sizeof(big),
			      65536, 0);
		}
		CHECK_EQ(vs.nconns, 0);
		CHECK(most <= VSOCK_BUF_ALLOC);
		CHECK(most > VSOCK_BUF_ALLOC - sizeof(big));
		CHECK_EQ(vs.cnt.bad_packets, bad + 1);
	}
	while (grecv(&vs, &p, 4096) && p.h.op != VSOCK_OP_RST)
		;
	CHECK_EQ(p.h.op, VSOCK_OP_RST);
	close(hfd);
	close(lfd);
	vsock_fini(&vs);
}

/*
 * Credit both ways: a guest with a small buffer gets no more than it
 * has room for; a slow host reader holds the guest's bytes in lkvm (at
 * most its credit) and they all arrive, in order.
 */
static void test_credit(void)
{
	static uint8_t out[VSOCK_BUF_ALLOC], in[VSOCK_BUF_ALLOC];
	struct vsock vs;
	char err[256];
	struct pkt p;
	uint32_t got = 0, fwd = 0, i, sent = 0;
	int lfd, hfd;
	bool asked = false, updated = false;

	CHECK_EQ(vsock_init(&vs, CID, path, -1, err, sizeof(err)), 0);
	lfd = host_listen(80);
	gsend(&vs, 600, 80, VSOCK_OP_REQUEST, 0, NULL, 0, 1000, 0);
	CHECK(grecv(&vs, &p, 4096) && p.h.op == VSOCK_OP_RESPONSE);
	hfd = accept_wait(lfd);
	CHECK_EQ(send(hfd, out, 5000, 0), 5000);
	CHECK(settle(&vs));
	while (grecv(&vs, &p, 4096)) {
		if (p.h.op == VSOCK_OP_RW)
			got += p.h.len;
		asked |= p.h.op == VSOCK_OP_CREDIT_REQUEST;
	}
	CHECK_EQ(got, 1000);
	CHECK(asked);
	gsend(&vs, 600, 80, VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0, 1000, 1000);
	while (grecv(&vs, &p, 4096))
		if (p.h.op == VSOCK_OP_RW)
			got += p.h.len;
	CHECK_EQ(got, 2000);

	/* Guest to host with a host that reads nothing for a while. */
	for (i = 0; i < sizeof(out); i++)
		out[i] = i * 7 + (i >> 9);
	for (i = 0; i < 4; i++) {
		gsend(&vs, 600, 80, VSOCK_OP_RW, 0, out + sent, 65536, 1000,
		      1000);
		sent += 65536;
	}
	CHECK_EQ(vs.nconns, 1);
	got = 0;
	for (i = 0; i < 200 && got < sent; i++) {
		ssize_t r;

		r = read_wait(hfd, in + got, sent - got);
		if (r > 0)
			got += r;
		vsock_host_events(&vs);
		while (grecv(&vs, &p, 4096)) {
			fwd = p.h.fwd_cnt;
			updated |= p.h.op == VSOCK_OP_CREDIT_UPDATE;
		}
	}
	CHECK_EQ(got, sent);
	CHECK(!memcmp(in, out, sent));
	CHECK(updated);
	CHECK_EQ(fwd, sent);
	close(hfd);
	close(lfd);
	vsock_fini(&vs);
}

/* 100 connections at once, each with its own bytes. */
static void test_many(void)
{
	enum { N = 100 };
	struct vsock vs;
	char err[256], buf[32];
	struct pkt p;
	int lfd, hfd[N], i, ok = 0;

	CHECK_EQ(vsock_init(&vs, CID, path, -1, err, sizeof(err)), 0);
	lfd = host_listen(90);
	for (i = 0; i < N; i++) {
		gsend(&vs, 1000 + i, 90, VSOCK_OP_REQUEST, 0, NULL, 0, 65536, 0);
		hfd[i] = accept_wait(lfd);
	}
	CHECK_EQ(vs.nconns, N);
	for (i = 0; i < N; i++) {
		char m[16];

		snprintf(m, sizeof(m), "conn %03d", i);
		gsend(&vs, 1000 + i, 90, VSOCK_OP_RW, 0, m, 8, 65536, 0);
	}
	for (i = 0; i < N; i++) {
		char m[16];

		snprintf(m, sizeof(m), "conn %03d", i);
		ok += read_wait(hfd[i], buf, sizeof(buf)) == 8 &&
		      !memcmp(buf, m, 8);
		close(hfd[i]);
	}
	CHECK_EQ(ok, N);
	for (i = 0; i < 50; i++) {
		settle(&vs);
		while (grecv(&vs, &p, 4096))
			if (p.h.op == VSOCK_OP_SHUTDOWN)
				gsend(&vs, p.h.dst_port, 90, VSOCK_OP_RST, 0,
				      NULL, 0, 65536, 0);
		if (!vs.nconns)
			break;
	}
	CHECK_EQ(vs.nconns, 0);
	close(lfd);
	vsock_fini(&vs);
}

/* Runs host events for ms (timers fire in there). */
static void spin(struct vsock *vs, int ms)
{
	uint64_t end = now_ns() + (uint64_t)ms * 1000000;

	while (now_ns() < end) {
		struct pollfd p = { .fd = vs->epfd, .events = POLLIN };

		poll(&p, 1, 10);
		vsock_host_events(vs);
	}
}

/* A guest that answers nothing: requests and closes time out. */
static void test_timeouts(void)
{
	struct vsock vs;
	char err[256], buf[64];
	struct pkt p;
	int fd, lfd, hfd;
	uint32_t local;

	CHECK_EQ(vsock_init(&vs, CID, path, -1, err, sizeof(err)), 0);
	vs.connect_timeout_ms = vs.close_timeout_ms = 100;
	fd = unix_connect(path, 0);
	CHECK_EQ(send(fd, "CONNECT 44\n", 11, 0), 11);
	CHECK(settle(&vs) && grecv(&vs, &p, 4096) && p.h.op == VSOCK_OP_REQUEST);
	local = p.h.src_port;
	spin(&vs, 600);
	CHECK_EQ(read_wait(fd, buf, sizeof(buf)), 0);
	CHECK(grecv(&vs, &p, 4096) && p.h.op == VSOCK_OP_RST &&
	      p.h.src_port == local);
	CHECK_EQ(vs.nconns, 0);
	CHECK(!vs.timer_armed);		/* nothing left to time */
	close(fd);

	lfd = host_listen(45);
	gsend(&vs, 46, 45, VSOCK_OP_REQUEST, 0, NULL, 0, 65536, 0);
	CHECK(grecv(&vs, &p, 4096) && p.h.op == VSOCK_OP_RESPONSE);
	hfd = accept_wait(lfd);
	close(hfd);
	CHECK(settle(&vs) && grecv(&vs, &p, 4096) &&
	      p.h.op == VSOCK_OP_SHUTDOWN && p.h.flags == 3);
	CHECK_EQ(vs.nconns, 1);
	spin(&vs, 600);
	CHECK(grecv(&vs, &p, 4096) && p.h.op == VSOCK_OP_RST);
	CHECK_EQ(vs.nconns, 0);
	close(lfd);
	vsock_fini(&vs);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/lkvm-vsock-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/v.sock", dir);
	test_guest_connects();
	test_host_connects();
	test_bad_packets();
	test_credit();
	test_many();
	test_timeouts();
	rmdir(dir);
	return test_done();
}
