/*
 * ctlsock.c - the control socket: its path rules, the server (accept,
 * peer check, line framing, bounded buffers) and the client calls.  See
 * ctlsock.h for the protocol and the threads.
 *
 * Every client is untrusted bytes, even one of our own uid: requests
 * are bounded (CTL_LINE_MAX), replies too (CTL_REPLY_MAX), a client
 * that stops reading only holds its own reply, and the server reads
 * nothing more from it until that reply is gone.  At most
 * CTL_MAX_CLIENTS are served at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lkvm/lib/ctlsock.h"
#include "lkvm/lib/unixsock.h"
#include "lkvm/lib/util.h"

#define CTL_CALL_TIMEOUT_MS	30000

struct ctl_client {
	int fd;
	char in[CTL_LINE_MAX];
	size_t in_len;
	struct ctl_reply out;
	size_t out_off;
	bool closing;			/* close once out is written */
};

struct ctl_server {
	int ep;
	int listen_fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	const struct ctl_ops *ops;
	void *opaque;
	struct ctl_client clients[CTL_MAX_CLIENTS];
};

/* --- requests and replies --- */

int ctl_parse_request(const char *line, size_t len, struct ctl_request *req,
		      const char **why)
{
	size_t i;
	char *p;

	memset(req, 0, sizeof(*req));
	if (len >= sizeof(req->buf)) {
		*why = "request too long";
		return -EMSGSIZE;
	}
	for (i = 0; i < len; i++) {
		if ((unsigned char)line[i] < 0x20 ||
		    (unsigned char)line[i] > 0x7e) {
			*why = "request is not printable ASCII";
			return -EINVAL;
		}
	}
	memcpy(req->buf, line, len);
	req->buf[len] = '\0';
	for (p = req->buf; *p;) {
		while (*p == ' ')
			*p++ = '\0';
		if (!*p)
			break;
		if (req->argc == CTL_MAX_ARGS) {
			*why = "too many words";
			return -EINVAL;
		}
		req->argv[req->argc++] = p;
		while (*p && *p != ' ')
			p++;
	}
	if (!req->argc) {
		*why = "empty request";
		return -EINVAL;
	}
	return 0;
}

static void reply_append(struct ctl_reply *r, const char *s, size_t n)
{
	if (r->overflow)
		return;
	if (r->len + n + 1 > CTL_REPLY_MAX) {
		r->overflow = true;
		return;
	}
	if (r->len + n + 1 > r->cap) {
		size_t cap = MAX(r->cap * 2, MAX(r->len + n + 1, (size_t)1024));
		char *b = realloc(r->buf, cap);

		if (!b) {
			r->overflow = true;
			return;
		}
		r->buf = b;
		r->cap = cap;
	}
	memcpy(r->buf + r->len, s, n);
	r->len += n;
	r->buf[r->len] = '\0';
}

void ctl_reply_printf(struct ctl_reply *r, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	reply_append(r, line, MIN((size_t)n, sizeof(line) - 1));
}

void ctl_reply_text(struct ctl_reply *r, const char *s)
{
	while (*s) {
		size_t n = strcspn(s, "\n"), i;
		char line[256];

		n = MIN(n, sizeof(line) - 1);
		for (i = 0; i < n; i++)
			line[i] = (unsigned char)s[i] < 0x20 ||
				  (unsigned char)s[i] > 0x7e ? '?' : s[i];
		line[n] = '\0';
		ctl_reply_printf(r, "text %s\n", line);
		s += n;
		while (*s && *s != '\n')	/* the rest of a long line */
			s++;
		if (*s == '\n')
			s++;
	}
}

/* --- paths --- */

bool ctl_name_valid(const char *name)
{
	size_t i, n = strlen(name);

	if (!n || n > CTL_NAME_MAX || name[0] == '.')
		return false;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-' || c == '+'))
			return false;
	}
	return true;
}

int ctl_default_dir(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR"), *home = getenv("HOME");
	int n;

	if (xdg && xdg[0] == '/')
		n = snprintf(buf, len, "%s/lkvm", xdg);
	else if (home && home[0] == '/')
		n = snprintf(buf, len, "%s/.lkvm", home);
	else
		return -ENOENT;
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : n;
}

int ctl_connect(const char *path)
{
	return unix_connect(path, 0);
}

/* --- the server --- */

static int mkdir_private(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (stat(dir, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int ctl_server_open(const char *dir, const char *name,
		    const struct ctl_ops *ops, void *opaque,
		    struct ctl_server **out, char *err, size_t errlen)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct ctl_server *s;
	unsigned int i;
	int ret, n;

	*out = NULL;
	if (!ctl_name_valid(name))
		return errf(err, errlen, -EINVAL,
			    "'%s' cannot name a control socket (1 to %d of A-Z a-z 0-9 . _ + -)",
			    name, CTL_NAME_MAX);
	s = calloc(1, sizeof(*s));
	if (!s)
		return errf(err, errlen, -ENOMEM, "out of memory");
	s->ep = s->listen_fd = -1;
	for (i = 0; i < CTL_MAX_CLIENTS; i++)
		s->clients[i].fd = -1;
	s->ops = ops;
	s->opaque = opaque;
	n = snprintf(s->path, sizeof(s->path), "%s/%s.sock", dir, name);
	if (n < 0 || (size_t)n >= sizeof(s->path)) {
		ret = errf(err, errlen, -ENAMETOOLONG,
			   "control socket path %s/%s.sock is too long", dir,
			   name);
		goto fail;
	}
	ret = mkdir_private(dir);
	if (ret) {
		errf(err, errlen, ret, "cannot make %s: %s", dir,
		     strerror(-ret));
		goto fail;
	}
	s->listen_fd = unix_listen(s->path, 16);
	if (s->listen_fd == -EADDRINUSE) {
		ret = errf(err, errlen, -EADDRINUSE,
			   "a VM named '%s' is already running (%s)", name,
			   s->path);
		goto fail;
	}
	if (s->listen_fd < 0) {
		ret = errf(err, errlen, s->listen_fd, "cannot listen on %s: %s",
			   s->path, strerror(-s->listen_fd));
		goto fail;
	}
	s->ep = epoll_create1(EPOLL_CLOEXEC);
	ev.data.u64 = CTL_MAX_CLIENTS;	/* the listener */
	if (s->ep < 0 || epoll_ctl(s->ep, EPOLL_CTL_ADD, s->listen_fd, &ev)) {
		ret = errf(err, errlen, -errno, "epoll: %s", strerror(errno));
		unlink(s->path);
		goto fail;
	}
	*out = s;
	return 0;
fail:
	s->path[0] = '\0';
	ctl_server_close(s);
	return ret;
}

int ctl_server_fd(const struct ctl_server *s)
{
	return s->ep;
}

const char *ctl_server_path(const struct ctl_server *s)
{
	return s->path;
}

static void client_drop(struct ctl_server *s, struct ctl_client *c)
{
	epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->out.buf);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* Watch for input, or only for room to write while a reply waits. */
static void client_watch(struct ctl_server *s, struct ctl_client *c)
{
	struct epoll_event ev = {
		.events = c->out_off < c->out.len ? EPOLLOUT : EPOLLIN,
		.data.u64 = (uint64_t)(c - s->clients),
	};

	epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Writes what it can; false if the client is gone. */
static bool client_flush(struct ctl_server *s, struct ctl_client *c)
{
	while (c->out_off < c->out.len) {
		ssize_t n = send(c->fd, c->out.buf + c->out_off,
				 c->out.len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0)
			return false;
		c->out_off += n;
	}
	if (c->out_off == c->out.len) {
		c->out.len = c->out_off = 0;
		if (c->closing)
			return false;
	}
	client_watch(s, c);
	return true;
}

static void client_error(struct ctl_client *c, int err, const char *msg)
{
	ctl_reply_printf(&c->out, "error %d %s\n", -err, msg);
}

static void client_request(struct ctl_server *s, struct ctl_client *c,
			   const char *line, size_t len)
{
	struct ctl_request req;
	struct ctl_reply rep = { 0 };
	const char *why;
	char msg[256];
	int ret = ctl_parse_request(line, len, &req, &why);

	if (ret) {
		client_error(c, ret, why);
		return;
	}
	msg[0] = '\0';
	ret = s->ops->request(s->opaque, &req, &rep, msg, sizeof(msg));
	if (!ret && rep.overflow)
		ret = errf(msg, sizeof(msg), -ENOBUFS, "reply too large");
	if (ret) {
		client_error(c, ret, msg[0] ? msg : strerror(-ret));
	} else {
		if (rep.len)
			reply_append(&c->out, rep.buf, rep.len);
		ctl_reply_printf(&c->out, "ok\n");
	}
	free(rep.buf);
}

/* Readable: take whole lines, answer them; false if the client is gone. */
static bool client_read(struct ctl_server *s, struct ctl_client *c)
{
	ssize_t n;
	char *nl;

	n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len,
		 MSG_DONTWAIT);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN;
	if (n == 0)
		return false;	/* a request cut short is dropped */
	c->in_len += n;
	while ((nl = memchr(c->in, '\n', c->in_len))) {
		size_t len = nl - c->in;

		client_request(s, c, c->in, len);
		memmove(c->in, nl + 1, c->in_len - len - 1);
		c->in_len -= len + 1;
		if (c->out.overflow) {
			c->out.overflow = false;
			c->out.len = c->out_off = 0;
			client_error(c, -ENOBUFS, "replies not read");
			c->closing = true;
			break;
		}
	}
	if (c->in_len == sizeof(c->in)) {
		client_error(c, -EMSGSIZE, "request too long");
		c->closing = true;
	}
	return client_flush(s, c);
}

/* Answers a connection it will not serve, and closes it. */
static void refuse(int fd, int err, const char *why)
{
	char line[128];
	int n = snprintf(line, sizeof(line), "error %d %s\n", -err, why);

	if (send(fd, line, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		/* it goes away unanswered */
	}
	close(fd);
}

static void server_accept(struct ctl_server *s)
{
	for (;;) {
		struct epoll_event ev = { .events = EPOLLIN };
		struct ucred cred;
		socklen_t clen = sizeof(cred);
		struct ctl_client *c = NULL;
		unsigned int i;
		int fd;

		fd = accept4(s->listen_fd, NULL, NULL,
			     SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 ||
		    (cred.uid != geteuid() && cred.uid != 0)) {
			refuse(fd, -EACCES, "not this VM's user");
			continue;
		}
		for (i = 0; i < CTL_MAX_CLIENTS && !c; i++)
			if (s->clients[i].fd < 0)
				c = &s->clients[i];
		if (!c) {
			refuse(fd, -EBUSY, "too many control connections");
			continue;
		}
		ev.data.u64 = (uint64_t)(c - s->clients);
		if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			continue;
		}
		c->fd = fd;
	}
}

void ctl_server_serve(struct ctl_server *s)
{
	struct epoll_event evs[CTL_MAX_CLIENTS + 1];
	int i, n = epoll_wait(s->ep, evs, ARRAY_SIZE(evs), 0);

	for (i = 0; i < n; i++) {
		struct ctl_client *c;
		bool alive;

		if (evs[i].data.u64 >= CTL_MAX_CLIENTS) {
			server_accept(s);
			continue;
		}
		c = &s->clients[evs[i].data.u64];
		if (c->fd < 0)
			continue;
		if (c->out_off < c->out.len)
			alive = client_flush(s, c);
		else if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			alive = client_read(s, c);
		else
			alive = true;
		if (!alive)
			client_drop(s, c);
	}
}

void ctl_server_close(struct ctl_server *s)
{
	unsigned int i;

	if (!s)
		return;
	for (i = 0; i < CTL_MAX_CLIENTS; i++)
		if (s->clients[i].fd >= 0)
			client_drop(s, &s->clients[i]);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->path[0])
		unlink(s->path);
	if (s->ep >= 0)
		close(s->ep);
	free(s);
}

/* --- the client --- */

static int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ECONNRESET;
		buf += n;
		len -= n;
	}
	return 0;
}

/* The final line: 1 and *ret for "ok" / "error", 0 for a record. */
static int reply_end(char *line, int *ret, char *err, size_t errlen)
{
	char *end;
	long e;

	if (!strcmp(line, "ok")) {
		*ret = 0;
		return 1;
	}
	if (strncmp(line, "error ", 6))
		return 0;
	e = strtol(line + 6, &end, 10);
	if (end == line + 6 || e <= 0 || e > 4095) {
		*ret = errf(err, errlen, -EPROTO, "bad error reply: %.80s",
			    line);
		return 1;
	}
	*ret = errf(err, errlen, (int)-e, "%s", *end == ' ' ? end + 1 : end);
	return 1;
}

int ctl_call(int fd, const char *request,
	     void (*on_record)(void *opaque, char *line), void *opaque,
	     char *err, size_t errlen)
{
	char buf[4096];
	size_t have = 0;
	int ret;

	if (err && errlen)
		err[0] = '\0';
	ret = send_all(fd, request, strlen(request));
	if (!ret)
		ret = send_all(fd, "\n", 1);
	/*
	 * A server that refuses us (another uid, too many clients) says
	 * why and hangs up, maybe before our request went out: read on.
	 */
	if (ret && ret != -EPIPE && ret != -ECONNRESET)
		return errf(err, errlen, ret, "cannot send: %s", strerror(-ret));
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char *nl;
		ssize_t n;

		while ((nl = memchr(buf, '\n', have))) {
			size_t len = nl - buf;

			*nl = '\0';
			if (reply_end(buf, &ret, err, errlen))
				return ret;
			if (on_record)
				on_record(opaque, buf);
			memmove(buf, nl + 1, have - len - 1);
			have -= len + 1;
		}
		if (have == sizeof(buf))
			return errf(err, errlen, -EPROTO,
				    "reply line too long");
		ret = poll(&p, 1, CTL_CALL_TIMEOUT_MS);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret == 0)
			return errf(err, errlen, -ETIMEDOUT,
				    "no reply within %d s",
				    CTL_CALL_TIMEOUT_MS / 1000);
		n = recv(fd, buf + have, sizeof(buf) - have, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return errf(err, errlen, -ECONNRESET,
				    "the VM closed the connection");
		have += n;
	}
}

int ctl_parse_record(char *line, struct ctl_record *rec)
{
	char *p = line;

	memset(rec, 0, sizeof(*rec));
	while (*p == ' ')
		p++;
	if (!*p || strchr(p, '=') == p)
		return -EINVAL;
	rec->type = p;
	while (*p && *p != ' ')
		p++;
	if (memchr(rec->type, '=', p - rec->type))
		return -EINVAL;
	while (*p) {
		char *k, *eq;

		*p++ = '\0';
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		k = p;
		while (*p && *p != ' ')
			p++;
		eq = memchr(k, '=', p - k);
		if (!eq || eq == k)
			return -EINVAL;
		if (rec->n == CTL_RECORD_MAX_FIELDS)
			return -E2BIG;
		*eq = '\0';
		rec->key[rec->n] = k;
		rec->val[rec->n++] = eq + 1;
	}
	return 0;
}

const char *ctl_record_get(const struct ctl_record *rec, const char *key)
{
	unsigned int i;

	for (i = 0; i < rec->n; i++)
		if (!strcmp(rec->key[i], key))
			return rec->val[i];
	return NULL;
}
