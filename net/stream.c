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

void stream_tx_start(struct stream_tx *t, uint32_t len)
{
	t->hdr[0] = len >> 24;
	t->hdr[1] = len >> 16;
	t->hdr[2] = len >> 8;
	t->hdr[3] = len;
	t->len = len;
	t->sent = 0;
}

unsigned int stream_tx_iov(const struct stream_tx *t, const struct iovec *frame,
			   unsigned int n, struct iovec *out)
{
	unsigned int k = 0;

	if (t->sent < STREAM_HDR)
		out[k++] = (struct iovec){ (uint8_t *)t->hdr + t->sent,
					   STREAM_HDR - t->sent };
	return k + iov_slice(out + k, n, frame, n,
			     t->sent > STREAM_HDR ? t->sent - STREAM_HDR : 0,
			     t->len);
}

bool stream_tx_sent(struct stream_tx *t, size_t n)
{
	t->sent += n;
	if (t->sent < STREAM_HDR + t->len)
		return false;
	t->len = t->sent = 0;
	return true;
}
