/*
 * net.h - the network backend interface.  virtio-net knows its backend
 * only through struct net_ops; each kind is one file in net/ (tap.c now)
 * and one line in net.c's list.
 *
 * A backend gives one non-blocking fd per queue pair, which the pair's
 * thread watches, and moves frames on it with recv and send.  Each frame
 * starts with a virtio_net_hdr of hdr_len bytes (the layout virtio 1.x
 * uses, little-endian), so the device can pass guest headers through
 * unchanged after checking them.  Where each read or write of the fd is
 * one frame (fd_frames: a tap), the device may also queue frame writes
 * on its io_uring.  recv, send and the fds belong to the queue threads;
 * set_offload and set_queue_enabled are ioctls the kernel serialises and
 * may run on any thread.
 */
#ifndef LKVM_NET_NET_H
#define LKVM_NET_NET_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define NET_MAX_QUEUES		16	/* queue pairs */
#define NET_VNET_HDR_LEN	12	/* virtio 1.x's net header */
#define NET_MAC_LEN		6

/* Offloads the backend may hand us (receive side), as TUN_F_* bits. */
#define NET_OFF_CSUM		0x01
#define NET_OFF_TSO4		0x02
#define NET_OFF_TSO6		0x04
#define NET_OFF_TSO_ECN		0x08
#define NET_OFF_UFO		0x10

enum net_mode {
	NET_MODE_NONE,
	NET_MODE_TAP,
	NET_MODE_USER,			/* passt, a user-mode network */
};

#define NET_MAX_FWD		16

/* hostfwd=tcp|udp:[HOSTADDR]:HOSTPORT-:GUESTPORT (mode=user) */
struct net_fwd {
	bool udp;
	char addr[16];			/* dotted IPv4, "" for any */
	uint16_t host_port, guest_port;
};

/* One -n option. */
struct net_spec {
	enum net_mode mode;
	char tapif[IFNAMSIZ];		/* "": let the kernel name it */
	uint8_t mac[NET_MAC_LEN];
	bool mac_set;
	char *script;			/* NULL: none */
	unsigned int queues;		/* queue pairs; 0: the default */
	bool has_fd;			/* fd=N: a tap the embedder opened */
	int fd;
	/* mode=user */
	char *passt;			/* passt=PATH; NULL: passt on $PATH */
	unsigned int mtu;		/* 0: 1500 */
	struct net_fwd fwd[NET_MAX_FWD];
	unsigned int nfwd;
};

struct net_backend;

struct net_ops {
	const char *name;
	/* nb->spec and nb->nqueues are set; open the fds and fill the rest. */
	int (*open)(struct net_backend *nb, char *err, size_t errlen);
	/* Which NET_OFF_* frames the backend may give us from now on. */
	int (*set_offload)(struct net_backend *nb, unsigned int off);
	/* Stops (or restarts) the backend steering frames to queue pair q. */
	int (*set_queue_enabled)(struct net_backend *nb, unsigned int q,
				 bool on);
	/*
	 * One frame of pair q into iov (header first): its length (it may
	 * be longer than iov, which then holds its start), -EAGAIN if none
	 * is waiting, -EBADMSG if the backend dropped one malformed frame
	 * (count it and call again), or another -errno if it broke.
	 */
	ssize_t (*recv)(struct net_backend *nb, unsigned int q,
			const struct iovec *iov, unsigned int n);
	/*
	 * One frame (header first) out of pair q: 0 (sent, or gathered
	 * for flush), -EAGAIN if the backend cannot take it now (wait for
	 * the fd to be writable; a tap drops instead, as a wire would), or
	 * another -errno: dropped.
	 */
	int (*send)(struct net_backend *nb, unsigned int q,
		    const struct iovec *iov, unsigned int n);
	/*
	 * Optional, at the end of each transmit batch and when the fd is
	 * writable again: writes what send gathered (a stream): 1 if some
	 * still waits (watch for EPOLLOUT, call again), 0 if none, -errno
	 * if the backend broke.
	 */
	int (*flush)(struct net_backend *nb, unsigned int q);
	void (*close)(struct net_backend *nb);
};

struct net_backend {
	const struct net_ops *ops;
	struct net_spec spec;
	unsigned int nqueues;
	int fds[NET_MAX_QUEUES];
	unsigned int hdr_len;		/* vnet header bytes on each frame */
	unsigned int offloads;		/* NET_OFF_* the backend can do */
	unsigned int mtu;
	char ifname[IFNAMSIZ];
	bool created;			/* we made the interface */
	bool fd_frames;			/* one frame per read/write of fds[] */
	int log_fd;			/* the backend's messages, or -1 */
	void *priv;			/* the backend's own state */
};

extern const struct net_ops net_tap_ops;
extern const struct net_ops net_passt_ops;

/* Is passt on $PATH (mode=user can run)? */
bool net_passt_available(void);
/* mode=user: the passt process's pid (for tests and messages). */
int net_passt_pid(const struct net_backend *nb);

/* recv and send for fds that carry one frame per read or write. */
ssize_t net_fd_recv(struct net_backend *nb, unsigned int q,
		    const struct iovec *iov, unsigned int n);
int net_fd_send(struct net_backend *nb, unsigned int q,
		const struct iovec *iov, unsigned int n);

/*
 * Parses "mode=tap,tapif=NAME,...", "mode=user,hostfwd=...", or
 * "mode=none"; spec->script and spec->passt malloc'd.
 */
int net_spec_parse(const char *s, struct net_spec *spec, char *err,
		   size_t errlen);
void net_spec_free(struct net_spec *spec);
/* Opens the backend for spec (which it takes over) with nqueues pairs. */
int net_open(struct net_backend **nbp, struct net_spec *spec,
	     unsigned int nqueues, char *err, size_t errlen);
void net_close(struct net_backend *nb);

#endif
