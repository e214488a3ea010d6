/*
 * net_hdr.c - the parts of virtio-net (virtio 1.2, section 5.1) that need
 * no device: checking a guest's transmit header, making a backend's
 * receive header honest for the guest, and placing a received frame
 * into receive chains.  Everything here treats its input as hostile.
 */
#include <string.h>

#include "lkvm/lib/util.h"
#include "lkvm/virtio/net.h"

static const char *const net_tx_error_names[NET_TX_NR] = {
	[NET_TX_OK] = "ok",
	[NET_TX_CHAIN] = "transmit chain with writable buffers",
	[NET_TX_SHORT] = "shorter than a header and Ethernet header",
	[NET_TX_TOO_BIG] = "larger than the MTU",
	[NET_TX_FLAGS] = "bad header flags",
	[NET_TX_CSUM] = "bad checksum offload request",
	[NET_TX_GSO] = "bad segmentation offload request",
};

const char *net_tx_error_name(enum net_tx_error e)
{
	return e < NET_TX_NR ? net_tx_error_names[e] : "?";
}

static bool has(uint64_t acked, unsigned int bit)
{
	return acked & (1ULL << bit);
}

/*
 * Each direction's four segmentation features sit in one order, TSO4,
 * TSO6, ECN, UFO, from tso4 on: is gso_type (not NONE) negotiated?
 */
_Static_assert(VIRTIO_NET_F_HOST_TSO4 - VIRTIO_NET_F_GUEST_TSO4 == 4 &&
	       VIRTIO_NET_F_HOST_TSO6 - VIRTIO_NET_F_GUEST_TSO6 == 4 &&
	       VIRTIO_NET_F_HOST_ECN - VIRTIO_NET_F_GUEST_ECN == 4 &&
	       VIRTIO_NET_F_HOST_UFO - VIRTIO_NET_F_GUEST_UFO == 4 &&
	       VIRTIO_NET_F_GUEST_TSO6 == VIRTIO_NET_F_GUEST_TSO4 + 1 &&
	       VIRTIO_NET_F_GUEST_ECN == VIRTIO_NET_F_GUEST_TSO4 + 2 &&
	       VIRTIO_NET_F_GUEST_UFO == VIRTIO_NET_F_GUEST_TSO4 + 3,
	       "segmentation feature bits in the spec's order");

static bool gso_negotiated(uint8_t gso_type, uint64_t acked,
			   unsigned int tso4)
{
	unsigned int off;

	switch (gso_type & ~VIRTIO_NET_HDR_GSO_ECN) {
	case VIRTIO_NET_HDR_GSO_TCPV4:
		off = 0;
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		off = 1;
		break;
	case VIRTIO_NET_HDR_GSO_UDP:
		off = 3;
		break;
	default:
		return false;
	}
	if ((gso_type & VIRTIO_NET_HDR_GSO_ECN) && !has(acked, tso4 + 2))
		return false;
	return has(acked, tso4 + off);
}

static enum net_tx_error net_tx_check_gso(const struct virtio_net_hdr *h,
					  uint64_t frame_len, uint64_t acked)
{
	if (h->gso_type == VIRTIO_NET_HDR_GSO_NONE)
		return NET_TX_OK;
	/*
	 * A segmented frame carries a partial checksum (the spec requires
	 * NEEDS_CSUM with GSO), and each segment must be smaller than the
	 * frame it is cut from.
	 */
	if (!gso_negotiated(h->gso_type, acked, VIRTIO_NET_F_HOST_TSO4) ||
	    !(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) ||
	    !h->gso_size || h->gso_size >= frame_len || h->hdr_len > frame_len)
		return NET_TX_GSO;
	return NET_TX_OK;
}

enum net_tx_error net_tx_check(const struct virtio_net_hdr *h,
			       uint64_t frame_len, uint64_t acked,
			       unsigned int mtu)
{
	uint64_t max = (uint64_t)MAX(mtu, 68u) + NET_ETH_HLEN + NET_VLAN_HLEN;

	if (frame_len < NET_ETH_HLEN)
		return NET_TX_SHORT;
	if (h->gso_type != VIRTIO_NET_HDR_GSO_NONE)
		max = NET_GSO_MAX + NET_ETH_HLEN + NET_VLAN_HLEN;
	if (frame_len > max)
		return NET_TX_TOO_BIG;
	/* DATA_VALID and the rest are for the device to set, not the driver. */
	if (h->flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM)
		return NET_TX_FLAGS;
	if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		uint64_t end = (uint64_t)h->csum_start + h->csum_offset + 2;

		if (!has(acked, VIRTIO_NET_F_CSUM) || end > frame_len)
			return NET_TX_CSUM;
	}
	return net_tx_check_gso(h, frame_len, acked);
}

bool net_rx_fix_hdr(struct virtio_net_hdr *h, uint64_t acked,
		    uint16_t num_buffers)
{
	h->num_buffers = num_buffers;
	/* Without GUEST_CSUM the spec wants flags zero: full checksums. */
	if (!has(acked, VIRTIO_NET_F_GUEST_CSUM)) {
		if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
			return false;
		h->flags = 0;
	}
	h->flags &= VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID;
	return h->gso_type == VIRTIO_NET_HDR_GSO_NONE ||
	       gso_negotiated(h->gso_type, acked, VIRTIO_NET_F_GUEST_TSO4);
}

unsigned int net_rx_place(const uint32_t *cap, unsigned int n, uint64_t len,
			  bool mergeable, uint32_t *lens)
{
	uint64_t left = len;
	unsigned int i;

	if (!mergeable)
		n = MIN(n, 1u);
	for (i = 0; i < n; i++) {
		/* The header goes whole into the first chain. */
		if (i == 0 && cap[0] < NET_HDR_LEN)
			return 0;
		lens[i] = MIN(left, (uint64_t)cap[i]);
		left -= lens[i];
		if (!left)
			return i + 1;
		if (!lens[i])
			return 0;	/* an empty chain mid-frame: never */
	}
	return 0;
}
