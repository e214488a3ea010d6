/*
 * unixsock.h - Unix stream sockets by path: connect, and listen on a
 * path made 0600 that replaces a socket whose server is gone.  Used by
 * the control socket and by virtio-vsock's host mapping.
 */
#ifndef LKVM_UNIXSOCK_H
#define LKVM_UNIXSOCK_H

/* A connected socket (flags: SOCK_NONBLOCK or 0), or -errno. */
int unix_connect(const char *path, int flags);
/*
 * A non-blocking listening socket on path, 0600, or -errno: -EADDRINUSE
 * if a live server holds path, -ENAMETOOLONG if it does not fit.  What
 * is at path is replaced only if it is a socket nobody listens on.
 */
int unix_listen(const char *path, int backlog);

#endif
