/*
 * vsock_uds.c - virtio-vsock's host side, the hybrid Unix-socket
 * mapping:
 *
 *	guest to host: a guest connect to (CID 2, port P) dials PATH_P;
 *	host to guest: a client of PATH writes "CONNECT P\n"; once the
 *	guest's port P accepts, lkvm answers "OK LOCALPORT\n" and the
 *	socket carries the stream; on refusal it is closed.
 *
 * The listener, the clients still on their CONNECT line and the hand-off
 * of sockets from other threads (lkvm_vsock_connect).  Runs on the
 * device's I/O thread, except vsock_handoff and vsock_init/fini (set-up
 * and tear-down, the thread not running).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "lkvm/lib/unixsock.h"
#include "lkvm/lib/util.h"
#include "lkvm/virtio/vsock.h"

/* Room for PATH's "_4294967295" in a socket address. */
#define VSOCK_PORT_SUFFIX	11

static int watch(struct vsock *vs, int fd, void *tag)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.ptr = tag };

	return epoll_ctl(vs->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int vsock_init(struct vsock *vs, uint64_t cid, const char *uds,
	       int listen_fd, char *err, size_t errlen)
{
	int ret;

	memset(vs, 0, sizeof(*vs));
	vs->guest_cid = cid;
	vs->listen_fd = vs->hand_efd = vs->timer_fd = -1;
	vs->connect_timeout_ms = VSOCK_CONNECT_TIMEOUT_MS;
	vs->close_timeout_ms = VSOCK_CLOSE_TIMEOUT_MS;
	vs->next_port = VSOCK_LOCAL_PORT_BASE;
	pthread_mutex_init(&vs->hand_lock, NULL);
	vs->epfd = epoll_create1(EPOLL_CLOEXEC);
	vs->hand_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vs->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (vs->epfd < 0 || vs->hand_efd < 0 || vs->timer_fd < 0) {
		ret = errf(err, errlen, -errno, "vsock: %s", strerror(errno));
		goto fail;
	}
	ret = watch(vs, vs->hand_efd, &vs->hand_efd);
	if (!ret)
		ret = watch(vs, vs->timer_fd, &vs->timer_fd);
	if (ret) {
		errf(err, errlen, ret, "vsock: epoll: %s", strerror(-ret));
		goto fail;
	}
	ret = vsock_uds_open(vs, uds, listen_fd, err, errlen);
	if (ret)
		goto fail;
	return 0;
fail:
	vsock_fini(vs);
	return ret;
}

bool vsock_uds_path_fits(const char *uds)
{
	return strlen(uds) + VSOCK_PORT_SUFFIX <
	       sizeof(((struct sockaddr_un *)0)->sun_path);
}

int vsock_uds_open(struct vsock *vs, const char *uds, int listen_fd,
		   char *err, size_t errlen)
{
	int ret;

	if (uds) {
		if (!vsock_uds_path_fits(uds))
			return input_errf(err, errlen, -ENAMETOOLONG,
					  "vsock: uds path %s is too long (at most %zu bytes)",
					  uds,
					  sizeof(((struct sockaddr_un *)0)->sun_path) -
					  VSOCK_PORT_SUFFIX - 1);
		vs->uds = strdup(uds);
		if (!vs->uds)
			return errf(err, errlen, -ENOMEM, "out of memory");
	}
	if (listen_fd >= 0) {
		/* The embedder's: ours to serve, not to unlink. */
		if (fcntl(listen_fd, F_SETFL,
			  fcntl(listen_fd, F_GETFL) | O_NONBLOCK) < 0)
			return errf(err, errlen, -errno,
				    "vsock: listening fd %d: %s", listen_fd,
				    strerror(errno));
		vs->listen_fd = listen_fd;
	} else if (uds) {
		vs->listen_fd = unix_listen(uds, 128);
		if (vs->listen_fd == -EADDRINUSE)
			return input_errf(err, errlen, -EADDRINUSE,
					  "vsock: %s is in use (another lkvm, or not a socket)",
					  uds);
		if (vs->listen_fd < 0)
			return errf(err, errlen, vs->listen_fd,
				    "vsock: cannot listen on %s: %s", uds,
				    strerror(-vs->listen_fd));
		vs->own_listener = true;
	}
	if (vs->listen_fd >= 0) {
		ret = watch(vs, vs->listen_fd, &vs->listen_fd);
		if (ret)
			return errf(err, errlen, ret, "vsock: epoll: %s",
				    strerror(-ret));
	}
	return 0;
}

void vsock_uds_close(struct vsock *vs)
{
	if (vs->listen_fd >= 0) {
		close(vs->listen_fd);
		if (vs->own_listener && vs->uds)
			unlink(vs->uds);
	}
	vs->listen_fd = -1;
	free(vs->uds);
	vs->uds = NULL;
}

void vsock_fini(struct vsock *vs)
{
	unsigned int i;

	vsock_enter(vs);
	while (vs->all)
		vsock_conn_kill(vs, vs->all);
	vsock_leave(vs);
	vsock_uds_close(vs);
	for (i = 0; i < vs->hand_n; i++)
		close(vs->hand_fds[i]);
	vs->hand_n = 0;
	if (vs->hand_efd >= 0)
		close(vs->hand_efd);
	if (vs->timer_fd >= 0)
		close(vs->timer_fd);
	if (vs->epfd >= 0)
		close(vs->epfd);
	vs->hand_efd = vs->epfd = vs->timer_fd = -1;
	pthread_mutex_destroy(&vs->hand_lock);
}

int vsock_uds_dial(const struct vsock *vs, uint32_t port)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];

	snprintf(path, sizeof(path), "%s_%u", vs->uds, port);
	return unix_connect(path, SOCK_NONBLOCK);
}

/* A host client: it has yet to say which guest port it wants. */
static void adopt(struct vsock *vs, int fd)
{
	struct vconn *c = vsock_conn_new(vs, fd);

	if (!c) {
		OWNER_ADD(vs->cnt.refused, 1);
		close(fd);
		return;
	}
	c->state = VC_HOST_LINE;
	/* Its line may be there already: no edge would come for it. */
	vsock_uds_line(vs, c);
}

void vsock_uds_accept(struct vsock *vs)
{
	int fd;

	while ((fd = accept4(vs->listen_fd, NULL, NULL,
			     SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0 ||
	       errno == EINTR || errno == ECONNABORTED)
		if (fd >= 0)
			adopt(vs, fd);
}

int vsock_handoff(struct vsock *vs, int fd)
{
	uint64_t one = 1;
	int ret = 0;

	pthread_mutex_lock(&vs->hand_lock);
	if (vs->hand_n < VSOCK_HANDOFF_MAX)
		vs->hand_fds[vs->hand_n++] = fd;
	else
		ret = -EAGAIN;
	pthread_mutex_unlock(&vs->hand_lock);
	if (!ret && write(vs->hand_efd, &one, sizeof(one)) < 0)
		ret = 0;	/* saturated: the thread is woken anyway */
	return ret;
}

void vsock_uds_adopt_handoffs(struct vsock *vs)
{
	int fds[VSOCK_HANDOFF_MAX];
	unsigned int i, n;
	uint64_t v;

	if (read(vs->hand_efd, &v, sizeof(v)) < 0) {
		/* nothing counted: the list says what there is */
	}
	pthread_mutex_lock(&vs->hand_lock);
	n = vs->hand_n;
	memcpy(fds, vs->hand_fds, n * sizeof(fds[0]));
	vs->hand_n = 0;
	pthread_mutex_unlock(&vs->hand_lock);
	for (i = 0; i < n; i++)
		adopt(vs, fds[i]);
}

/* "CONNECT P" (the newline gone): the port, or -1. */
static int64_t parse_connect(const char *s)
{
	uint64_t v = 0;
	const char *p;

	if (strncmp(s, "CONNECT ", 8))
		return -1;
	for (p = s + 8; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (*p - '0');
		if (v > UINT32_MAX)
			return -1;
	}
	return p == s + 8 || *p ? -1 : (int64_t)v;
}

bool vsock_uds_line(struct vsock *vs, struct vconn *c)
{
	char line[VSOCK_LINE_MAX];
	char *nl;
	ssize_t r;
	int64_t port;

	/* Peek: what follows the line is the stream's, left in place. */
	r = recv(c->fd, line, sizeof(line) - 1, MSG_PEEK | MSG_DONTWAIT);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	if (r <= 0)
		goto drop;
	line[r] = '\0';
	nl = memchr(line, '\n', r);
	if (!nl) {
		if (r < (ssize_t)sizeof(line) - 1)
			return true;	/* the rest is still to come */
		goto drop;		/* too long for a CONNECT line */
	}
	if (recv(c->fd, line, nl - line + 1, MSG_DONTWAIT) != nl - line + 1)
		goto drop;
	*nl = '\0';
	port = parse_connect(line);
	if (port < 0)
		goto drop;
	do {
		if (vs->next_port < VSOCK_LOCAL_PORT_BASE ||
		    vs->next_port == UINT32_MAX)
			vs->next_port = VSOCK_LOCAL_PORT_BASE;
		c->local_port = vs->next_port++;
	} while (vsock_conn_find(vs, c->local_port, port));
	c->peer_port = port;
	c->state = VC_CONNECTING;
	c->peer_buf_alloc = 0;
	vsock_conn_hash(vs, c);
	c->owed |= VC_OWE_REQUEST;
	vsock_work(vs, c);
	vsock_set_deadline(vs, c, vs->connect_timeout_ms);
	return true;
drop:
	vsock_conn_kill(vs, c);
	return false;
}
