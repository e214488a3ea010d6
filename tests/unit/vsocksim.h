/*
 * vsocksim.h - a simulated virtio-vsock guest driver on netsim.h (rings
 * in a private guest-memory mapping, no KVM): the real device and its
 * I/O thread, with packets the driver builds and reads itself.  For the
 * device test (tests/unit/vsockdev.c) and vsockbench.
 */
#ifndef LKVM_TESTS_VSOCKSIM_H
#define LKVM_TESTS_VSOCKSIM_H

#include <endian.h>

#include "lkvm/virtio/vsock.h"
#include "netsim.h"

#define VSIM_RXQ	0
#define VSIM_TXQ	1
#define VSIM_RX_BUF	(VSOCK_HDR_LEN + 4096)	/* what Linux posts */
#define VSIM_RX_BUFS	128
#define VSIM_CID	3

struct vsim_opts {
	const char *path;		/* the device's uds PATH */
};

static inline int vsim_create(struct lkvm *vm, struct iothread *ctl,
			      void *opaque, struct virtio_device **out)
{
	const struct vsim_opts *o = opaque;
	char err[256];
	int ret;

	(void)ctl;
	ret = virtio_vsock_create(vm, VSIM_CID, o->path, -1, out, err,
				  sizeof(err));
	if (ret)
		fprintf(stderr, "vsocksim: %s\n", err);
	return ret;
}

/* The device on PATH, EVENT_IDX negotiated, receive buffers posted. */
static inline int vsim_setup(struct nsim *s, const char *path)
{
	struct vsim_opts o = { path };
	unsigned int i;
	int ret = nsim_setup_device(s, 3, 1ULL << VIRTIO_F_EVENT_IDX, 0,
				    vsim_create, &o);

	if (ret)
		return ret;
	for (i = 0; i < VSIM_RX_BUFS; i++)
		nsim_add(s, VSIM_RXQ, i, VSIM_RX_BUF, VRING_DESC_F_WRITE);
	nsim_kick(s, VSIM_RXQ);
	return 0;
}

/*
 * A guest packet in transmit slot `slot` (one descriptor spanning slots
 * as the payload needs); data (may be NULL) is copied after the header.
 */
static inline void vsim_send(struct nsim *s, unsigned int slot,
			     uint32_t gport, uint32_t hport, uint16_t op,
			     uint32_t flags, const void *data, uint32_t len,
			     uint32_t fwd)
{
	uint8_t *b = nsim_buf(s, VSIM_TXQ, slot);
	struct vsock_hdr *h = (struct vsock_hdr *)b;

	*h = (struct vsock_hdr){
		.src_cid = htole64(VSIM_CID), .dst_cid = htole64(2),
		.src_port = htole32(gport), .dst_port = htole32(hport),
		.len = htole32(len), .type = htole16(VSOCK_TYPE_STREAM),
		.op = htole16(op), .flags = htole32(flags),
		.buf_alloc = htole32(VSOCK_BUF_ALLOC), .fwd_cnt = htole32(fwd),
	};
	if (data)
		memcpy(b + VSOCK_HDR_LEN, data, len);
	nsim_add(s, VSIM_TXQ, slot, VSOCK_HDR_LEN + len, 0);
	nsim_kick(s, VSIM_TXQ);
}

struct vsim_pkt {
	uint16_t op;
	uint32_t src_port, dst_port, len, flags, fwd, buf_alloc;
	const uint8_t *data;		/* valid until the next vsim_recv */
};

/* The next packet for the guest (its buffer re-posted); false if none. */
static inline bool vsim_recv(struct nsim *s, struct vsim_pkt *p, int wait_ms)
{
	uint32_t id, len;
	struct vsock_hdr h;
	static uint8_t copy[VSIM_RX_BUF];

	if (!(wait_ms ? nsim_wait(s, VSIM_RXQ, &id, &len, wait_ms) :
			nsim_used(s, VSIM_RXQ, &id, &len)))
		return false;
	memcpy(copy, nsim_buf(s, VSIM_RXQ, id), MIN((size_t)len, sizeof(copy)));
	memcpy(&h, copy, sizeof(h));
	vsock_hdr_from_le(&h);
	p->op = h.op;
	p->src_port = h.src_port;
	p->dst_port = h.dst_port;
	p->len = h.len;
	p->flags = h.flags;
	p->fwd = h.fwd_cnt;
	p->buf_alloc = h.buf_alloc;
	p->data = copy + VSOCK_HDR_LEN;
	nsim_add(s, VSIM_RXQ, id, VSIM_RX_BUF, VRING_DESC_F_WRITE);
	nsim_kick(s, VSIM_RXQ);
	return true;
}

/* Transmit completions, taken; how many. */
static inline unsigned int vsim_reap(struct nsim *s)
{
	uint32_t id, len;
	unsigned int n = 0;

	while (nsim_used(s, VSIM_TXQ, &id, &len))
		n++;
	return n;
}

#endif
