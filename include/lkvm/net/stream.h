/*
 * stream.h - Ethernet frames on a byte stream, each behind a 4-byte
 * big-endian length (the framing of passt and of QEMU's stream netdev).
 *
 * The receive side is a small state machine fed whatever a read()
 * returned: a frame may arrive split anywhere, several may arrive at
 * once.  It never buffers more than one frame: frames land in the
 * caller's buffer, and one that is too long or too short for Ethernet is
 * skipped byte by byte as it streams past, counted, never stored.  The
 * transmit side puts a frame behind its length into a buffer that
 * gathers many (the backend writes them together).
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

/*
 * The fast path: between frames, if in[0..n) starts with a whole frame
 * of a good length, its length (the frame is at in + STREAM_HDR; the
 * caller takes it and STREAM_HDR + len bytes), else 0 (use feed).
 */
uint32_t stream_rx_whole(const struct stream_rx *s, const uint8_t *in, size_t n);

/*
 * Writes a frame behind its length into out: len bytes of iov after
 * skip (which must hold them).  Returns the bytes written to out.
 */
size_t stream_put(uint8_t *out, const struct iovec *iov, unsigned int n,
		  size_t skip, uint32_t len);

#endif
