/*
 * Tests of net/stream.c: length-prefixed frames cut at every possible
 * place, several in one read, bad lengths skipped without being stored,
 * and partial writes of a frame resumed where they stopped.
 */
#include "lkvm/lib/util.h"
#include "lkvm/net/stream.h"
#include "test.h"

#define MAXF 1514

static size_t put_frame(uint8_t *out, uint32_t len, uint8_t fill)
{
	out[0] = len >> 24;
	out[1] = len >> 16;
	out[2] = len >> 8;
	out[3] = len;
	memset(out + 4, fill, len);
	return 4 + len;
}

/* Feeds buf in pieces of `piece` bytes; collects frame lengths. */
static unsigned int feed_all(struct stream_rx *s, const uint8_t *buf,
			     size_t n, size_t piece, uint32_t *lens,
			     uint8_t *fills)
{
	static uint8_t frame[MAXF];
	unsigned int got = 0;
	size_t off = 0;

	while (off < n) {
		size_t chunk = MIN(piece, n - off), used = 0;

		while (used < chunk) {
			uint32_t done;

			used += stream_rx_feed(s, buf + off + used, chunk - used,
					       frame, &done);
			if (done) {
				lens[got] = done;
				fills[got++] = frame[done - 1];
			}
		}
		off += chunk;
	}
	return got;
}

int main(void)
{
	static uint8_t buf[8 * (MAXF + 8)];
	uint32_t lens[16];
	uint8_t fills[16];
	struct stream_rx s;
	size_t n = 0, piece;
	bool all = true;

	n += put_frame(buf + n, 60, 1);
	n += put_frame(buf + n, MAXF, 2);
	n += put_frame(buf + n, 3, 3);		/* too short: dropped */
	n += put_frame(buf + n, 2000, 4);	/* too long: dropped */
	n += put_frame(buf + n, 0, 5);		/* empty: dropped */
	n += put_frame(buf + n, 14, 6);
	for (piece = 1; piece <= n; piece = piece < 64 ? piece + 1 : piece * 2) {
		unsigned int got;

		stream_rx_init(&s, MAXF);
		got = feed_all(&s, buf, n, piece, lens, fills);
		all &= got == 3 && lens[0] == 60 && fills[0] == 1 &&
		       lens[1] == MAXF && fills[1] == 2 && lens[2] == 14 &&
		       fills[2] == 6 && s.dropped == 3;
	}
	CHECK(all);
	stream_rx_init(&s, MAXF);
	CHECK_EQ(feed_all(&s, buf, n, n, lens, fills), 3);
	CHECK_EQ(s.dropped, 3);

	/* Transmit: a frame written a byte at a time, then all at once. */
	{
		uint8_t frame[100], out[200];
		struct iovec f[2] = { { frame, 40 }, { frame + 40, 60 } }, v[4];
		struct stream_tx t;
		size_t w = 0;
		unsigned int k, i;
		bool whole = false;

		for (i = 0; i < sizeof(frame); i++)
			frame[i] = i;
		stream_tx_start(&t, sizeof(frame));
		while (!whole) {
			k = stream_tx_iov(&t, f, 2, v);
			CHECK(k >= 1 && k <= 4);
			out[w++] = *(uint8_t *)v[0].iov_base;
			whole = stream_tx_sent(&t, 1);
		}
		CHECK_EQ(w, 104);
		CHECK(out[0] == 0 && out[3] == 100 && !memcmp(out + 4, frame, 100));
		stream_tx_start(&t, sizeof(frame));
		k = stream_tx_iov(&t, f, 2, v);
		CHECK_EQ(k, 3);
		CHECK(stream_tx_sent(&t, 104));
	}
	return test_done();
}
