/*
 * Fuzz target for virtio-net header handling (virtio/net_hdr.c): the
 * guest's transmit header checked against a frame length, features and
 * MTU; a backend's receive header fixed for what the guest negotiated;
 * and receive placement over random chain sizes.  Whatever passes must
 * keep the promises the device relies on.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lkvm/virtio/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtio_net_hdr h;
	uint64_t acked, len;
	uint32_t cap[8], lens[8];
	unsigned int n, k, i;
	uint64_t have = 0, got = 0;

	if (size < sizeof(h) + 8 + 4 + 1)
		return 0;
	memcpy(&h, data, sizeof(h));
	memcpy(&acked, data + sizeof(h), 8);
	len = (data[sizeof(h) + 8] | data[sizeof(h) + 9] << 8 |
	       (uint32_t)data[sizeof(h) + 10] << 16) % 70000;
	if (net_tx_check(&h, len, acked, 1500) == NET_TX_OK) {
		if (len < NET_ETH_HLEN)
			abort();
		if ((h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
		    (uint64_t)h.csum_start + h.csum_offset + 2 > len)
			abort();
	}
	memcpy(&h, data, sizeof(h));
	(void)net_rx_fix_hdr(&h, acked, data[sizeof(h) + 11]);
	n = data[sizeof(h) + 12] % 9;
	for (i = 0; i < n; i++) {
		size_t o = sizeof(h) + 13 + 2 * i;

		cap[i] = o + 1 < size ? (data[o] | data[o + 1] << 8) % 5000 : 12;
		have += cap[i];
	}
	k = net_rx_place(cap, n, len, acked & 1, lens);
	if (k > n)
		abort();
	for (i = 0; i < k; i++) {
		if (lens[i] > cap[i])
			abort();
		got += lens[i];
	}
	if (k && got != len)
		abort();
	(void)have;
	return 0;
}

#ifndef LKVM_LIBFUZZER
#include "replay.h"

int main(int argc, char **argv)
{
	return replay_main(argc, argv, "virtio-net headers", 64, false);
}
#endif
