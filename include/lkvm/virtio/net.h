/*
 * net.h - virtio-net: header checks and receive-buffer placement (pure,
 * so they can be tested on their own) and the device, one I/O thread per
 * queue pair.
 */
#ifndef LKVM_VIRTIO_NET_H
#define LKVM_VIRTIO_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "lkvm/net/net.h"

#define VIRTIO_NET_F_CSUM		0
#define VIRTIO_NET_F_GUEST_CSUM		1
#define VIRTIO_NET_F_MTU		3
#define VIRTIO_NET_F_MAC		5
#define VIRTIO_NET_F_GUEST_TSO4		7
#define VIRTIO_NET_F_GUEST_TSO6		8
#define VIRTIO_NET_F_GUEST_ECN		9
#define VIRTIO_NET_F_GUEST_UFO		10
#define VIRTIO_NET_F_HOST_TSO4		11
#define VIRTIO_NET_F_HOST_TSO6		12
#define VIRTIO_NET_F_HOST_ECN		13
#define VIRTIO_NET_F_HOST_UFO		14
#define VIRTIO_NET_F_MRG_RXBUF		15
#define VIRTIO_NET_F_STATUS		16
#define VIRTIO_NET_F_CTRL_VQ		17
#define VIRTIO_NET_F_MQ			22

#define VIRTIO_NET_HDR_F_NEEDS_CSUM	1
#define VIRTIO_NET_HDR_F_DATA_VALID	2

#define VIRTIO_NET_HDR_GSO_NONE		0
#define VIRTIO_NET_HDR_GSO_TCPV4	1
#define VIRTIO_NET_HDR_GSO_UDP		3
#define VIRTIO_NET_HDR_GSO_TCPV6	4
#define VIRTIO_NET_HDR_GSO_ECN		0x80

#define VIRTIO_NET_S_LINK_UP		1

#define VIRTIO_NET_CTRL_MQ		4
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET	0
#define VIRTIO_NET_OK			0
#define VIRTIO_NET_ERR			1

#define NET_ETH_HLEN		14
#define NET_VLAN_HLEN		4
#define NET_GSO_MAX		65535	/* IP datagram of a GSO frame */
#define NET_QUEUE_SIZE		256
#define NET_MAX_IOV		64	/* descriptors per chain */

/* The header in front of every frame (virtio 1.x: always 12 bytes). */
struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
} __attribute__((packed));

#define NET_HDR_LEN	sizeof(struct virtio_net_hdr)

/* Why a transmitted frame was dropped. */
enum net_tx_error {
	NET_TX_OK = 0,
	NET_TX_CHAIN,		/* writable buffers in a transmit chain */
	NET_TX_SHORT,		/* chain shorter than header + Ethernet */
	NET_TX_TOO_BIG,		/* longer than the MTU allows (or 64 KiB) */
	NET_TX_FLAGS,		/* unknown or receive-only flags */
	NET_TX_CSUM,		/* checksum offload not negotiated, or out
				 * of the frame */
	NET_TX_GSO,		/* segmentation not negotiated, unknown
				 * type, or sizes that do not fit */
	NET_TX_NR
};

const char *net_tx_error_name(enum net_tx_error e);

/*
 * Checks a guest's transmit header for a frame of frame_len bytes (after
 * the header) against the negotiated features and the MTU.
 */
enum net_tx_error net_tx_check(const struct virtio_net_hdr *h,
			       uint64_t frame_len, uint64_t acked,
			       unsigned int mtu);

/*
 * Makes a header the backend wrote fit what the guest negotiated and
 * sets num_buffers.  Returns false if the frame must be dropped (an
 * offload the guest did not ask for).
 */
bool net_rx_fix_hdr(struct virtio_net_hdr *h, uint64_t acked,
		    uint16_t num_buffers);

/*
 * Receive placement: a frame of len bytes (header included) goes into
 * the chains whose writable sizes are cap[0..n), in order.  Returns how
 * many chains it takes and each one's length in lens, or 0 if the n
 * chains cannot hold it.  Without mergeable buffers only one chain may
 * be used.
 */
unsigned int net_rx_place(const uint32_t *cap, unsigned int n, uint64_t len,
			  bool mergeable, uint32_t *lens);


struct iothread;
struct lkvm;
struct virtio_device;

/*
 * A virtio-net device on backend nb (which it takes over) with nb's
 * queue pairs, each on its own thread "netI-qJ", and the control queue
 * on the VM's low-rate thread ctl.
 */
int virtio_net_create(struct lkvm *vm, struct net_backend *nb,
		      unsigned int index, const uint8_t *mac,
		      struct iothread *ctl, struct virtio_device **dp);

#endif
