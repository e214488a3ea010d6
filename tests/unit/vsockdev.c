/*
 * Tests of the virtio-vsock device as a guest driver sees it
 * (vsocksim.h: the real device, its I/O thread and its host sockets,
 * rings in simulated guest memory): a guest connection to PATH_P, data
 * both ways, a host client through PATH, lkvm_vsock_connect's hand-off,
 * and a device reset that closes every host socket.  With VDRV_SECCOMP=1
 * the device's thread runs under its seccomp filter (make check runs it
 * both ways).
 */
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "lkvm/lib/unixsock.h"
#include "test.h"
#include "vsocksim.h"

static char dir[64], path[128];

static ssize_t read_wait(int fd, void *buf, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	poll(&p, 1, 2000);
	return recv(fd, buf, len, MSG_DONTWAIT);
}

/* The next packet that is not a credit update. */
static bool recv_op(struct nsim *s, struct vsim_pkt *p)
{
	while (vsim_recv(s, p, 2000))
		if (p->op != VSOCK_OP_CREDIT_UPDATE)
			return true;
	return false;
}

struct dial {
	struct vsock *vs;
	int fd;
};

static void *dial_main(void *arg)
{
	struct dial *d = arg;

	d->fd = vsock_dial_guest(d->vs, 77, 3000);
	return NULL;
}

int main(void)
{
	struct nsim s;
	struct vsim_pkt p;
	struct vsock *vs;
	char hp[160], buf[64];
	int l, h, c, api;
	pthread_t th;
	struct dial d;

	snprintf(dir, sizeof(dir), "/tmp/lkvm-vsockdev-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/v.sock", dir);
	snprintf(hp, sizeof(hp), "%s_5000", path);
	l = unix_listen(hp, 16);
	CHECK(l >= 0);
	CHECK_EQ(vsim_setup(&s, path), 0);
	vs = vsock_of_device(s.dev);

	/* The guest dials host port 5000. */
	vsim_send(&s, 0, 1000, 5000, VSOCK_OP_REQUEST, 0, NULL, 0, 0);
	CHECK(recv_op(&s, &p) && p.op == VSOCK_OP_RESPONSE &&
	      p.dst_port == 1000 && p.buf_alloc == VSOCK_BUF_ALLOC);
	{
		struct pollfd pf = { .fd = l, .events = POLLIN };

		poll(&pf, 1, 2000);
	}
	h = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	CHECK(h >= 0);
	vsim_send(&s, 1, 1000, 5000, VSOCK_OP_RW, 0, "ping", 4, 0);
	CHECK_EQ(read_wait(h, buf, sizeof(buf)), 4);
	CHECK(!memcmp(buf, "ping", 4));
	CHECK_EQ(send(h, "pong!", 5, 0), 5);
	CHECK(recv_op(&s, &p) && p.op == VSOCK_OP_RW && p.len == 5 &&
	      !memcmp(p.data, "pong!", 5));
	/* Half-close from the guest: the host reads EOF, can still send. */
	vsim_send(&s, 2, 1000, 5000, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_SEND,
		  NULL, 0, 5);
	CHECK_EQ(read_wait(h, buf, sizeof(buf)), 0);
	CHECK_EQ(send(h, "late", 4, 0), 4);
	CHECK(recv_op(&s, &p) && p.op == VSOCK_OP_RW && p.len == 4);
	close(h);
	CHECK(recv_op(&s, &p) && p.op == VSOCK_OP_SHUTDOWN);
	vsim_send(&s, 3, 1000, 5000, VSOCK_OP_RST, 0, NULL, 0, 9);

	/* A host client through PATH. */
	c = unix_connect(path, 0);
	CHECK(c >= 0);
	CHECK_EQ(send(c, "CONNECT 1234\n", 13, 0), 13);
	CHECK(recv_op(&s, &p) && p.op == VSOCK_OP_REQUEST &&
	      p.dst_port == 1234);
	vsim_send(&s, 4, 1234, p.src_port, VSOCK_OP_RESPONSE, 0, NULL, 0, 0);
	CHECK(read_wait(c, buf, sizeof(buf)) > 3 && !strncmp(buf, "OK ", 3));

	/* lkvm_vsock_connect's core, from another thread. */
	d.vs = vs;
	d.fd = -1;
	pthread_create(&th, NULL, dial_main, &d);
	CHECK(recv_op(&s, &p) && p.op == VSOCK_OP_REQUEST && p.dst_port == 77);
	vsim_send(&s, 5, 77, p.src_port, VSOCK_OP_RESPONSE, 0, NULL, 0, 0);
	pthread_join(th, NULL);
	CHECK(d.fd >= 0);
	CHECK_EQ(send(d.fd, "via api", 7, 0), 7);
	CHECK(recv_op(&s, &p) && p.op == VSOCK_OP_RW && p.len == 7 &&
	      !memcmp(p.data, "via api", 7));
	/* A guest that refuses: the dial says so. */
	api = d.fd;
	d.fd = 0;
	pthread_create(&th, NULL, dial_main, &d);
	CHECK(recv_op(&s, &p) && p.op == VSOCK_OP_REQUEST);
	vsim_send(&s, 6, 77, p.src_port, VSOCK_OP_RST, 0, NULL, 0, 0);
	pthread_join(th, NULL);
	CHECK_EQ(d.fd, -ECONNREFUSED);

	/* A device reset closes every host connection. */
	virtio_set_status(s.dev, 0);
	CHECK_EQ(read_wait(c, buf, sizeof(buf)), 0);
	CHECK_EQ(read_wait(api, buf, sizeof(buf)), 0);
	close(c);
	close(api);
	nsim_teardown(&s);
	CHECK(access(path, F_OK) < 0);
	close(l);
	unlink(hp);
	rmdir(dir);
	return test_done();
}
