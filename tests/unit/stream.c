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

	/* Transmit: frames put behind their lengths read back whole. */
	{
		uint8_t frame[100], out[2 * (STREAM_HDR + 100)], got[MAXF];
		struct iovec f[2] = { { frame, 40 }, { frame + 40, 60 } };
		size_t w;
		uint32_t done;

		for (unsigned int i = 0; i < sizeof(frame); i++)
			frame[i] = i;
		w = stream_put(out, f, 2, 0, 100);
		CHECK_EQ(w, 104);
		CHECK(out[0] == 0 && out[3] == 100 && !memcmp(out + 4, frame, 100));
		w += stream_put(out + w, f, 2, 10, 90);
		CHECK_EQ(w, 198);
		stream_rx_init(&s, MAXF);
		CHECK_EQ(stream_rx_feed(&s, out, w, got, &done), 104);
		CHECK(done == 100 && !memcmp(got, frame, 100));
		CHECK_EQ(stream_rx_feed(&s, out + 104, w - 104, got, &done), 94);
		CHECK(done == 90 && !memcmp(got, frame + 10, 90));
	}
	return test_done();
}
