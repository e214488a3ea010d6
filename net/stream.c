/*
 * stream.c - length-prefixed frames on a byte stream (see stream.h).
 * No state beyond the structs the caller owns; any thread.
 */
#include <string.h>

#include "lkvm/lib/util.h"
#include "lkvm/net/stream.h"

void stream_rx_init(struct stream_rx *s, uint32_t max_frame)
{
	memset(s, 0, sizeof(*s));
	s->max_frame = max_frame;
}

size_t stream_rx_feed(struct stream_rx *s, const uint8_t *in, size_t n,
		      uint8_t *frame, uint32_t *done)
{
	size_t used = 0, k;

	*done = 0;
	while (used < n) {
		if (s->hdr_got < STREAM_HDR) {
			s->hdr[s->hdr_got++] = in[used++];
			if (s->hdr_got < STREAM_HDR)
				continue;
			s->len = (uint32_t)s->hdr[0] << 24 | s->hdr[1] << 16 |
				 s->hdr[2] << 8 | s->hdr[3];
			s->got = 0;
			s->skipping = s->len < STREAM_MIN_FRAME ||
				      s->len > s->max_frame;
			if (s->skipping)
				s->dropped++;
			if (s->len)
				continue;
			s->hdr_got = 0;		/* an empty frame: nothing follows */
			continue;
		}
		k = MIN(n - used, (size_t)(s->len - s->got));
		if (!s->skipping)
			memcpy(frame + s->got, in + used, k);
		s->got += k;
		used += k;
		if (s->got < s->len)
			break;
		s->hdr_got = 0;
		if (!s->skipping) {
			*done = s->len;
			break;
		}
	}
	return used;
}

uint32_t stream_rx_whole(const struct stream_rx *s, const uint8_t *in, size_t n)
{
	uint32_t len;

	if (s->hdr_got || n < STREAM_HDR)
		return 0;
	len = (uint32_t)in[0] << 24 | in[1] << 16 | in[2] << 8 | in[3];
	if (len < STREAM_MIN_FRAME || len > s->max_frame ||
	    n - STREAM_HDR < len)
		return 0;
	return len;
}

size_t stream_put(uint8_t *out, const struct iovec *iov, unsigned int n,
		  size_t skip, uint32_t len)
{
	out[0] = len >> 24;
	out[1] = len >> 16;
	out[2] = len >> 8;
	out[3] = len;
	return STREAM_HDR + iov_to_buf(iov, n, skip, out + STREAM_HDR, len);
}
