/*
 * Fuzz target for virtio-vsock's packet handler (virtio/vsock_conn.c):
 * the input is a script of guest packets (any header, any payload),
 * receive buffers of any size, host-side events and host peers that
 * accept, write, read and close.  A host listener serves port 5, so
 * guest REQUESTs to it make real connections.  Whatever the script, the
 * engine must not crash, must never hand the guest a packet longer than
 * its buffer or one that is not its to send, and must keep its
 * connection count and buffers within their bounds.
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lkvm/lib/unixsock.h"
#include "lkvm/lib/util.h"
#include "lkvm/virtio/vsock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CID	3
#define MAX_PEERS 16

static char dir[64], path[128];
static int listener = -1, device_listener = -1;
#define MAX_OPS 96	/* per input: a short script runs fast */

static void cleanup(void)
{
	char p[160];

	if (listener >= 0)
		close(listener);
	if (device_listener >= 0)
		close(device_listener);
	snprintf(p, sizeof(p), "%s_5", path);
	unlink(p);
	unlink(path);
	rmdir(dir);
}

static bool setup(void)
{
	char p[160];

	snprintf(dir, sizeof(dir), "/tmp/lkvm-fuzz-vsock-%d", (int)getpid());
	if (mkdir(dir, 0700) && errno != EEXIST)
		return false;
	snprintf(path, sizeof(path), "%s/v.sock", dir);
	snprintf(p, sizeof(p), "%s_5", path);
	listener = unix_listen(p, 256);
	/* PATH's listener is made once; each input's device serves a dup. */
	device_listener = unix_listen(path, 256);
	atexit(cleanup);
	return listener >= 0 && device_listener >= 0;
}

/* A packet the engine wrote for the guest: it must be well formed. */
static void check_pkt(const uint8_t *buf, uint32_t len, size_t room)
{
	struct vsock_hdr h;

	if (len > room || len < VSOCK_HDR_LEN)
		abort();
	memcpy(&h, buf, sizeof(h));
	if (le64toh(h.src_cid) != VSOCK_HOST_CID ||
	    le64toh(h.dst_cid) != CID || le16toh(h.type) != VSOCK_TYPE_STREAM ||
	    le32toh(h.len) != len - VSOCK_HDR_LEN ||
	    le16toh(h.op) < VSOCK_OP_REQUEST ||
	    le16toh(h.op) > VSOCK_OP_CREDIT_REQUEST ||
	    le32toh(h.len) > VSOCK_MAX_PAYLOAD)
		abort();
}

/*
 * nb receive buffers of room bytes each, every one split over three
 * iovecs at odd places; filled by vsock_rx_many and checked.
 */
static void check_rx(struct vsock *vs, size_t room, unsigned int nb)
{
	static uint8_t buf[4][VSOCK_HDR_LEN + 70000];
	struct iovec iov[4][3];
	struct vsock_pkt b[4];
	uint32_t lens[4];
	unsigned int i, n;

	for (i = 0; i < nb; i++) {
		size_t a = MIN(room, (size_t)7), c = MIN(room - a, (size_t)30);

		iov[i][0] = (struct iovec){ buf[i], a };
		iov[i][1] = (struct iovec){ buf[i] + a, c };
		iov[i][2] = (struct iovec){ buf[i] + a + c, room - a - c };
		b[i] = (struct vsock_pkt){ iov[i], 3 };
	}
	n = vsock_rx_many(vs, b, nb, lens);
	if (n > nb)
		abort();
	for (i = 0; i < n; i++)
		check_pkt(buf[i], lens[i], room);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t payload[VSOCK_BUF_ALLOC + 1];
	int peers[MAX_PEERS], npeers = 0, i;
	struct vsock vs;
	char err[256];
	size_t pos = 0;

	if (listener < 0 && !setup())
		abort();
	if (vsock_init(&vs, CID, path, dup(device_listener), err, sizeof(err)))
		abort();
	for (int ops = 0; pos < size && ops < MAX_OPS; ops++) {
		uint8_t op = data[pos++];
		struct vsock_hdr h;
		struct iovec iov[2];
		size_t take;

		switch (op % 6) {
		case 0:		/* a guest packet, the header as given */
		case 1:		/* ... with sane addresses and small ports */
			memset(&h, 0, sizeof(h));
			take = MIN(sizeof(h), size - pos);
			memcpy(&h, data + pos, take);
			pos += take;
			if (op % 6 == 1) {
				h.src_cid = htole64(CID);
				h.dst_cid = htole64(VSOCK_HOST_CID);
				h.type = htole16(VSOCK_TYPE_STREAM);
				h.src_port = htole32(le32toh(h.src_port) % 4);
				h.dst_port = htole32(le32toh(h.dst_port) % 2 ?
						     5 : VSOCK_LOCAL_PORT_BASE);
				h.op = htole16(le16toh(h.op) % 9);
			}
			/* Payload: what the header says, or a little off. */
			take = le32toh(h.len) % (sizeof(payload) + 1);
			if (op & 0x80)
				take = (take + op) % sizeof(payload);
			memset(payload, op, MIN(take, (size_t)4096));
			iov[0] = (struct iovec){ &h, sizeof(h) };
			iov[1] = (struct iovec){ payload, take };
			vsock_tx(&vs, iov, take ? 2 : 1);
			break;
		case 2:		/* a receive buffer of some size */
			check_rx(&vs, op & 0x80 ? VSOCK_HDR_LEN + 65536 :
				      (size_t)(op >> 3) * 3,
				 1 + (op >> 5) % 4);
			break;
		case 3:		/* host events */
			vsock_host_events(&vs);
			break;
		case 4:		/* a host peer answers at PATH_5 */
			if (npeers < MAX_PEERS) {
				int fd = accept4(listener, NULL, NULL,
						 SOCK_NONBLOCK | SOCK_CLOEXEC);

				if (fd >= 0)
					peers[npeers++] = fd;
			}
			break;
		case 5:		/* a peer writes, reads or closes */
			if (!npeers)
				break;
			i = (op >> 3) % npeers;
			if (op & 0x80) {
				close(peers[i]);
				peers[i] = peers[--npeers];
			} else if (op & 0x40) {
				char b[4096];

				while (recv(peers[i], b, sizeof(b), MSG_DONTWAIT) > 0)
					;
			} else {
				send(peers[i], payload, (op >> 3) * 100 + 1,
				     MSG_DONTWAIT | MSG_NOSIGNAL);
			}
			break;
		}
		if (vs.nconns > VSOCK_MAX_CONNS)
			abort();
		for (struct vconn *c = vs.all; c; c = c->anext)
			if (c->buf_len > VSOCK_BUF_ALLOC ||
			    c->buf_off + c->buf_len > c->buf_cap)
				abort();
	}
	vsock_fini(&vs);
	for (i = 0; i < npeers; i++)
		close(peers[i]);
	/* Connections the guest opened and nobody accepted: drop them. */
	for (;;) {
		int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK);

		if (fd < 0)
			break;
		close(fd);
	}
	return 0;
}

#ifndef LKVM_LIBFUZZER
#include "replay.h"

int main(int argc, char **argv)
{
	return replay_main(argc, argv, "vsock packet scripts", 4096, true);
}
#endif
