/*
 * net_hdr.c - the parts of virtio-net (virtio 1.2, section 5.1) that need
 * no device: checking a guest's transmit header, making a backend's
 * receive header honest for the guest, and placing a received frame
 * into receive chains.  Everything here treats its input as hostile.
 */
#include <string.h>

#include "lkvm/util.h"
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

static enum net_tx_error net_tx_check_gso(const struct virtio_net_hdr *h,
					  uint64_t frame_len, uint64_t acked)
{
	unsigned int type = h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
	bool ok;

	if (h->gso_type == VIRTIO_NET_HDR_GSO_NONE)
		return NET_TX_OK;
	if ((h->gso_type & VIRTIO_NET_HDR_GSO_ECN) &&
	    !has(acked, VIRTIO_NET_F_HOST_ECN))
		return NET_TX_GSO;
	switch (type) {
	case VIRTIO_NET_HDR_GSO_TCPV4:
		ok = has(acked, VIRTIO_NET_F_HOST_TSO4);
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		ok = has(acked, VIRTIO_NET_F_HOST_TSO6);
		break;
	case VIRTIO_NET_HDR_GSO_UDP:
		ok = has(acked, VIRTIO_NET_F_HOST_UFO);
		break;
	default:
		ok = false;
	}
	/*
	 * A segmented frame carries a partial checksum (the spec requires
	 * NEEDS_CSUM with GSO), and each segment must be smaller than the
	 * frame it is cut from.
	 */
	if (!ok || !(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) ||
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
	unsigned int type = h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
	bool ok;

	h->num_buffers = num_buffers;
	/* Without GUEST_CSUM the spec wants flags zero: full checksums. */
	if (!has(acked, VIRTIO_NET_F_GUEST_CSUM)) {
		if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
			return false;
		h->flags = 0;
	}
	h->flags &= VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID;
	if (h->gso_type == VIRTIO_NET_HDR_GSO_NONE)
		return true;
	switch (type) {
	case VIRTIO_NET_HDR_GSO_TCPV4:
		ok = has(acked, VIRTIO_NET_F_GUEST_TSO4);
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		ok = has(acked, VIRTIO_NET_F_GUEST_TSO6);
		break;
	case VIRTIO_NET_HDR_GSO_UDP:
		ok = has(acked, VIRTIO_NET_F_GUEST_UFO);
		break;
	default:
		ok = false;
	}
	if ((h->gso_type & VIRTIO_NET_HDR_GSO_ECN) &&
	    !has(acked, VIRTIO_NET_F_GUEST_ECN))
		ok = false;
	return ok;
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

size_t iov_to_buf(const struct iovec *iov, unsigned int n, size_t skip,
		  void *buf, size_t len)
{
	size_t done = 0;
	unsigned int i;

	for (i = 0; i < n && done < len; i++) {
		size_t k;

		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		k = MIN(iov[i].iov_len - skip, len - done);
		memcpy((uint8_t *)buf + done, (uint8_t *)iov[i].iov_base + skip,
		       k);
		done += k;
		skip = 0;
	}
	return done;
}

size_t buf_to_iov(const struct iovec *iov, unsigned int n, size_t skip,
		  const void *buf, size_t len)
{
	size_t done = 0;
	unsigned int i;

	for (i = 0; i < n && done < len; i++) {
		size_t k;

		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		k = MIN(iov[i].iov_len - skip, len - done);
		memcpy((uint8_t *)iov[i].iov_base + skip,
		       (const uint8_t *)buf + done, k);
		done += k;
		skip = 0;
	}
	return done;
}
