/*
 * net_dev.h - virtio-net's state, shared by its files (virtio/net.c the
 * device, net_rx.c receive, net_tx.c transmit, net_ctrl.c the control
 * queue).  See net.c for the threads: everything in a net_pair belongs
 * to the pair's thread; the control queue runs on the low-rate thread
 * and pauses a pair's thread before touching it.
 */
#ifndef LKVM_VIRTIO_NET_DEV_H
#define LKVM_VIRTIO_NET_DEV_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "lkvm/lib/aio.h"
#include "lkvm/lib/util.h"
#include "lkvm/virtio/device.h"
#include "lkvm/virtio/net.h"

#define NET_RX_BUDGET		128	/* frames per round before signalling */
#define NET_FRAME_MAX		(NET_GSO_MAX + NET_ETH_HLEN + NET_VLAN_HLEN + \
				 NET_HDR_LEN)
#define NET_TX_COPY		4096	/* frames up to this are copied out */
#define NET_TX_ASYNC_IOV	8	/* segments of a frame sent by io_uring */

/* struct virtio_net_config up to mtu. */
struct net_config {
	uint8_t mac[NET_MAC_LEN];
	uint16_t status;
	uint16_t max_virtqueue_pairs;
	uint16_t mtu;
} __attribute__((packed));

/*
 * A transmit write on the queue's io_uring.  The chain goes back to the
 * guest when the write completes; gen tells a completion after a reset
 * (which bumped the pair's generation) to return nothing.
 */
struct net_txio {
	struct aio_io io;
	struct net_pair *p;
	struct net_txio *next_free;
	uint32_t gen;
	uint16_t head;
	struct iovec iov[NET_TX_ASYNC_IOV];
};

/* A receive chain taken from the ring and not yet given back. */
struct net_chain {
	struct vq_elem elem;
	struct iovec iov[NET_MAX_IOV];
};

struct net_pair {
	struct virtio_net *net;
	unsigned int index;
	struct virtio_queue *rxq, *txq;
	struct iothread *thread;	/* the device's thread for this pair */
	int fd;
	bool enabled;			/* the guest uses this pair */
	bool watching;			/* reading the fd (EPOLLIN) */
	bool tx_blocked;		/* the backend took no frame: EPOLLOUT */
	uint32_t watch_events;		/* what the thread's epoll watches */
	bool fd_dead;			/* backend fd failed: ignore it */
	bool rx_streaming;		/* frames came on the last look */
	/* Receive: chains held in ring order, and a frame read but not
	 * yet given to the guest (frame_len 0: none). */
	struct net_chain *held;
	unsigned int nheld;
	uint64_t held_bytes;
	uint8_t *frame;
	uint64_t frame_len;
	struct iovec txiov[VIRTIO_QUEUE_MAX_IOV + 1];
	uint8_t txbuf[NET_TX_COPY];
	/* Transmit writes go by io_uring where there is one (aio NULL: not). */
	struct aio *aio;
	struct net_txio *txios, *txio_free;
	uint32_t tx_gen;
	uint32_t caps[NET_QUEUE_SIZE], lens[NET_QUEUE_SIZE];
	/* statistics */
	uint64_t rx_frames, rx_dropped, tx_frames, tx_dropped;
	uint64_t tx_err[NET_TX_NR];
};

struct virtio_net {
	struct virtio_device dev;
	struct net_backend *nb;
	struct net_config config;
	struct net_pair *pairs;
	unsigned int npairs;
	unsigned int active;		/* pairs the guest uses */
	unsigned int ctl_qi;
	struct iothread *lowrate;	/* the control queue's, and the log's */
	uint64_t rx_max;		/* largest frame the backend may give */
	atomic_bool warned;
};

static inline struct virtio_net *to_net(struct virtio_device *d)
{
	return container_of(d, struct virtio_net, dev);
}

static inline bool net_acked(struct net_pair *p, unsigned int bit)
{
	return p->net->dev.acked & (1ULL << bit);
}

/* net.c: the device */
void net_warn_once(struct virtio_net *net, const char *what);
void net_rx_dropped(struct net_pair *p);
void net_tx_dropped(struct net_pair *p);
/* Watches the pair's backend fd for frames (on its thread or paused). */
void net_watch(struct net_pair *p, bool on);
/* Frame I/O through the backend's ops (on the pair's thread). */
ssize_t net_backend_recv(struct net_pair *p, const struct iovec *iov,
			 unsigned int n);
int net_backend_send(struct net_pair *p, const struct iovec *iov,
		     unsigned int n);
/*
 * A transmit batch ended, or the fd is writable again: frames the
 * backend gathered go out; 0 when all did.
 */
int net_backend_flush(struct net_pair *p);
/* The backend broke: the pair stops, the guest's link goes down. */
void net_backend_dead(struct net_pair *p);

/* net_rx.c: receive, on the pair's thread */
/* Frames into the guest's chains until none, no buffers, or budget. */
unsigned int net_rx(struct net_pair *p);
/* The backend fd is readable (or hung up). */
void net_rx_ready(void *opaque, uint32_t events);

/* net_tx.c: transmit, on the pair's thread */
void net_tx_drain(struct net_pair *p, struct virtio_queue *q);
/* The pair's io_uring for transmit writes, where there is one. */
int net_tx_ring_init(struct net_pair *p);

/* net_ctrl.c: the control queue, on the low-rate thread */
void net_ctrl_drain(struct virtio_device *d, struct virtio_queue *q);

#endif
