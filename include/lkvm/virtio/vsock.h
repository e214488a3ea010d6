/*
 * vsock.h - virtio-vsock (device id 19) with the hybrid host mapping:
 * guest AF_VSOCK stream connections become host Unix-socket connections.
 *
 * The connection engine (virtio/vsock_conn.c, virtio/vsock_uds.c) knows
 * no virtqueue: it takes one guest packet at a time (vsock_tx), fills one
 * receive buffer at a time (vsock_rx) and handles its host sockets'
 * events (vsock_host_events), so tests and the fuzz target drive it
 * directly.  virtio/vsock.c puts it on the device's three queues.
 *
 * Threads: everything in struct vsock belongs to the device's one I/O
 * thread, except the hand-off list (hand_lock), through which other
 * threads (lkvm_vsock_connect) give it host connections.
 */
#ifndef LKVM_VIRTIO_VSOCK_H
#define LKVM_VIRTIO_VSOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#define VIRTIO_ID_VSOCK		19

#define VSOCK_HOST_CID		2
#define VSOCK_HDR_LEN		44
#define VSOCK_TYPE_STREAM	1

enum vsock_op {
	VSOCK_OP_INVALID,
	VSOCK_OP_REQUEST,
	VSOCK_OP_RESPONSE,
	VSOCK_OP_RST,
	VSOCK_OP_SHUTDOWN,
	VSOCK_OP_RW,
	VSOCK_OP_CREDIT_UPDATE,
	VSOCK_OP_CREDIT_REQUEST,
};

#define VSOCK_SHUTDOWN_RCV	1
#define VSOCK_SHUTDOWN_SEND	2

/*
 * The receive buffer lkvm offers each connection (guest to host bytes
 * not yet taken by the host socket): the guest may have this much in
 * flight.  Held only while the host socket is slower than the guest.
 */
#define VSOCK_BUF_ALLOC		(256 * 1024)
#define VSOCK_MAX_PAYLOAD	(64 * 1024)	/* per packet lkvm builds */
#define VSOCK_MAX_CONNS		1024
#define VSOCK_HASH		256
#define VSOCK_RST_QUEUE		256	/* resets owed with no connection */
#define VSOCK_HANDOFF_MAX	64
#define VSOCK_LINE_MAX		32	/* "CONNECT 4294967295\n" fits */
/*
 * A guest that leaves a connection request unanswered, or a close
 * unacknowledged (no RST after lkvm's SHUTDOWN of both directions), is
 * reset after this long (the spec leaves it to the implementation;
 * Linux waits 8 s for a close).
 */
#define VSOCK_CONNECT_TIMEOUT_MS	5000
#define VSOCK_CLOSE_TIMEOUT_MS		8000
/* Local ports of host-initiated connections start here. */
#define VSOCK_LOCAL_PORT_BASE	(1U << 30)

/* The header of every packet, little-endian on the wire. */
struct vsock_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
} __attribute__((packed));

_Static_assert(sizeof(struct vsock_hdr) == VSOCK_HDR_LEN, "vsock header");

/* A header read off the wire, to host byte order (its own inverse). */
void vsock_hdr_from_le(struct vsock_hdr *h);

enum vconn_state {
	VC_HOST_LINE,		/* host client: waiting for "CONNECT P\n" */
	VC_CONNECTING,		/* REQUEST owed or sent, no RESPONSE yet */
	VC_ESTABLISHED,
};

/* Control packets a connection owes the guest (vconn.owed). */
#define VC_OWE_REQUEST		1
#define VC_OWE_RESPONSE		2
#define VC_OWE_CREDIT		4
#define VC_OWE_CREDIT_REQ	8
#define VC_OWE_SHUTDOWN		16

struct vconn {
	struct vconn *hnext;		/* hash chain */
	struct vconn *wprev, *wnext;	/* work list (something for the guest) */
	struct vconn *dnext;		/* dead list, freed after the round */
	struct vconn *aprev, *anext;	/* every live connection */
	uint32_t local_port;		/* the host end's port */
	uint32_t peer_port;		/* the guest end's port */
	int fd;				/* the host Unix socket */
	enum vconn_state state;
	unsigned int owed;		/* VC_OWE_* */
	uint32_t shut_flags;		/* what our SHUTDOWN says */
	bool hashed, on_work, dead;
	bool readable;			/* host data not yet read (edge seen) */
	bool host_eof;			/* the host end sends no more */
	bool host_hup;			/* ... and takes no more */
	bool guest_no_send;		/* the guest's SHUTDOWN: SEND */
	bool guest_no_rcv;		/* the guest's SHUTDOWN: RCV */
	bool credit_asked;		/* CREDIT_REQUEST sent, no update yet */
	/* Guest to host: bytes the host socket has not taken yet. */
	uint8_t *buf;
	uint32_t buf_off, buf_len, buf_cap;
	uint32_t rx_cnt;		/* bytes the guest sent, all told */
	uint32_t fwd_cnt;		/* of those, given to the host socket */
	uint32_t fwd_told;		/* fwd_cnt in our last packet */
	/* Host to guest: the guest's credit. */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	uint32_t tx_cnt;		/* bytes sent to the guest, all told */
	uint64_t deadline_ns;		/* reset then (0: none) */
};

/* What the device counts (lkvm stat shows them as the queues' errors). */
struct vsock_counters {
	uint64_t bad_packets;		/* dropped: malformed or misaddressed */
	uint64_t resets_sent;
	uint64_t resets_dropped;	/* the reset queue was full */
	uint64_t refused;		/* guest connects nobody took */
	uint64_t conns;			/* connections established */
};

struct vsock {
	uint64_t guest_cid;
	char *uds;			/* PATH; guest ports dial PATH_P */
	bool own_listener;		/* created PATH: unlinked at the end */
	int listen_fd;			/* -1: no host-initiated connections */
	int epfd;			/* host sockets, edge-triggered */
	int hand_efd;			/* hand-off list not empty */
	int timer_fd;			/* armed while a deadline is set */
	bool timer_armed;
	unsigned int connect_timeout_ms, close_timeout_ms;	/* tests shorten them */
	pthread_mutex_t hand_lock;
	int hand_fds[VSOCK_HANDOFF_MAX];
	unsigned int hand_n;
	struct vconn *hash[VSOCK_HASH];
	struct vconn *all;
	unsigned int nconns;
	struct vconn *work_head, *work_tail;
	struct vconn *dead;
	unsigned int depth;		/* nesting of engine entry points */
	uint32_t next_port;
	struct {
		uint32_t local_port, peer_port;
	} rsts[VSOCK_RST_QUEUE];
	unsigned int rst_head, rst_n;
	struct vsock_counters cnt;
};

/*
 * Sets vs up for guest CID cid.  uds (may be NULL: no host mapping) is
 * PATH: a listener is made there (0600) unless listen_fd >= 0 is given;
 * guest connections to port P dial PATH_P.
 */
int vsock_init(struct vsock *vs, uint64_t cid, const char *uds,
	       int listen_fd, char *err, size_t errlen);
void vsock_fini(struct vsock *vs);
/* Every connection goes (host sockets closed); the guest starts over. */
void vsock_reset(struct vsock *vs);

/* Up to VSOCK_TX_BATCH packets at once: data for one connection is sent
 * with one sendmsg of up to VSOCK_GATHER_IOV pieces. */
#define VSOCK_TX_BATCH		16
#define VSOCK_GATHER_IOV	1024
struct vsock_pkt {
	const struct iovec *iov;
	unsigned int n;
};
/* One packet from the guest's transmit queue (its readable part). */
void vsock_tx(struct vsock *vs, const struct iovec *iov, unsigned int n);

void vsock_tx_many(struct vsock *vs, const struct vsock_pkt *p,
		   unsigned int n);
/*
 * Fills one receive buffer with the next packet for the guest; returns
 * its length, or 0 if there was nothing (the buffer stays unused).
 */
uint32_t vsock_rx(struct vsock *vs, const struct iovec *iov, unsigned int n);
/*
 * Fills receive buffers b[0..nb) in order, lens[] their lengths: how
 * many it used (the rest stay unused).  Data for one connection spread
 * over several buffers comes in with one recvmsg.
 */
#define VSOCK_RX_BATCH		16
unsigned int vsock_rx_many(struct vsock *vs, const struct vsock_pkt *b,
			   unsigned int nb, uint32_t *lens);
/* Is anything waiting for a receive buffer? */
bool vsock_rx_pending(const struct vsock *vs);
/* Handles what epfd reports (non-blocking). */
void vsock_host_events(struct vsock *vs);
/* Another thread's host socket, to be served like an accepted one. */
int vsock_handoff(struct vsock *vs, int fd);

struct lkvm;
struct virtio_device;
/*
 * The device on vm (its thread made, not started), for the machine and
 * for tests that drive it without KVM; *out is set once it exists, and
 * on failure then still needs virtio_device_finish or _free.
 */
int virtio_vsock_create(struct lkvm *vm, uint64_t cid, const char *uds,
			int listen_fd, struct virtio_device **out, char *err,
			size_t errlen);

/* The engine of a device virtio_vsock_create made. */
struct vsock *vsock_of_device(struct virtio_device *d);
/*
 * From any thread: a stream to guest port `port` through vs's hand-off
 * (the CONNECT protocol on a socket pair), once the guest accepted: an
 * fd, or -ECONNREFUSED, -ETIMEDOUT (after timeout_ms; < 0: 5 s).
 */
int vsock_dial_guest(struct vsock *vs, uint32_t port, int timeout_ms);

/* vsock_conn.c's helpers for vsock_uds.c. */
struct vconn *vsock_conn_new(struct vsock *vs, int fd);
void vsock_conn_kill(struct vsock *vs, struct vconn *c);
void vsock_conn_hash(struct vsock *vs, struct vconn *c);
struct vconn *vsock_conn_find(struct vsock *vs, uint32_t local,
			      uint32_t peer);
void vsock_work(struct vsock *vs, struct vconn *c);
void vsock_owe_rst(struct vsock *vs, uint32_t local, uint32_t peer);
void vsock_reset_conn(struct vsock *vs, struct vconn *c);
void vsock_flush_host(struct vsock *vs, struct vconn *c);
void vsock_set_deadline(struct vsock *vs, struct vconn *c, unsigned int ms);
void vsock_enter(struct vsock *vs);
void vsock_leave(struct vsock *vs);

/* vsock_uds.c: the host side. */
/* Does PATH leave room for "_4294967295" in a socket address? */
bool vsock_uds_path_fits(const char *uds);
int vsock_uds_open(struct vsock *vs, const char *uds, int listen_fd,
		   char *err, size_t errlen);
void vsock_uds_close(struct vsock *vs);
int vsock_uds_dial(const struct vsock *vs, uint32_t port);
void vsock_uds_accept(struct vsock *vs);
void vsock_uds_adopt_handoffs(struct vsock *vs);
/* The "CONNECT P\n" line of a host client; false if c went. */
bool vsock_uds_line(struct vsock *vs, struct vconn *c);

#endif
