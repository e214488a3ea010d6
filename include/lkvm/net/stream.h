/*
 * stream.h - Ethernet frames on a byte stream, each behind a 4-byte
 * big-endian length (the framing of passt and of QEMU's stream netdev).
 *
 * The receive side is a small state machine fed whatever a read()
 * returned: a frame may arrive split anywhere, several may arrive at
 * once.  It never buffers more than one frame: frames land in the
 * caller's buffer, and one that is too long or too short for Ethernet is
 * skipped byte by byte as it streams past, counted, never stored.  The
 * transmit side keeps track of a frame only partly written.
 *
 * Pure code, no fds: the backend (net/passt.c) does the I/O; the fuzz
 * target tests/fuzz/stream.c feeds it arbitrary bytes.
 */
#ifndef LKVM_NET_STREAM_H
#define LKVM_NET_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define STREAM_HDR		4
#define STREAM_MIN_FRAME	14	/* an Ethernet header */

struct stream_rx {
	uint32_t max_frame;		/* longer ones are dropped */
	uint8_t hdr[STREAM_HDR];
	unsigned int hdr_got;		/* < STREAM_HDR: reading a length */
	uint32_t len;			/* the frame being read */
	uint32_t got;			/* of it so far */
	bool skipping;			/* a bad frame: its bytes are passed over */
	uint64_t dropped;		/* frames dropped for their length */
};

void stream_rx_init(struct stream_rx *s, uint32_t max_frame);
/*
 * Consumes bytes from in[0..n) into frame (max_frame bytes of room):
 * returns how many bytes it took; *done is set to the frame's length when
 * one is complete (then call again with the rest), else 0.
 */
size_t stream_rx_feed(struct stream_rx *s, const uint8_t *in, size_t n,
		      uint8_t *frame, uint32_t *done);

struct stream_tx {
	uint8_t hdr[STREAM_HDR];
	uint32_t len;			/* frame length, 0: idle */
	uint32_t sent;			/* of STREAM_HDR + len */
};

/* Starts a frame of len bytes. */
void stream_tx_start(struct stream_tx *t, uint32_t len);
/*
 * The iovec of what is left to write (the rest of the prefix, then the
 * rest of frame[]): its count (at most 2 + n).
 */
unsigned int stream_tx_iov(const struct stream_tx *t, const struct iovec *frame,
			   unsigned int n, struct iovec *out);
/* n bytes were written; true once the frame went whole. */
bool stream_tx_sent(struct stream_tx *t, size_t n);

#endif
