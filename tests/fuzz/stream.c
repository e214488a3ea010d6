/*
 * Fuzz target for net/stream.c, the framing of frames that passt (a
 * separate process) sends: the input is the byte stream, cut into reads
 * at places the input also picks.  Every frame handed out must fit the
 * buffer and the Ethernet bounds, each read must be used up, and the
 * fast path (stream_rx_whole) must hand out exactly what feed does.
 */
#include <stdlib.h>
#include <string.h>

#include "lkvm/lib/util.h"
#include "lkvm/net/stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t frame[1600];
	struct stream_rx s;
	size_t off = 1;

	if (!size)
		return 0;
	stream_rx_init(&s, data[0] * 6 + STREAM_MIN_FRAME);
	while (off < size) {
		size_t chunk = MIN(size - off, (size_t)(data[off] % 97 + 1));
		size_t used = 0;

		while (used < chunk) {
			uint32_t done, whole;
			size_t k;

			/* A whole frame the fast path takes, feed must agree. */
			whole = stream_rx_whole(&s, data + off + used, chunk - used);
			k = stream_rx_feed(&s, data + off + used, chunk - used,
					   frame, &done);
			if (whole && (done != whole || k != STREAM_HDR + whole ||
				      memcmp(frame, data + off + used + STREAM_HDR,
					     whole)))
				abort();

			if (!k && !done)
				abort();	/* no progress: a caller would spin */
			if (done && (done > s.max_frame || done < STREAM_MIN_FRAME))
				abort();
			used += k;
		}
		if (used != chunk)
			abort();
		off += chunk;
	}
	return 0;
}

#ifndef LKVM_LIBFUZZER
#include "replay.h"

int main(int argc, char **argv)
{
	return replay_main(argc, argv, "length-prefixed frame streams", 8192,
			   false);
}
#endif
