/*
 * ctlsock.h - a control socket: a Unix stream socket, created 0600 in a
 * 0700 directory, that takes requests of one line and answers each with
 * lines of records.  It knows no VM; whoever opens it supplies the
 * handler (struct ctl_ops).  The client side (connect, one call, record
 * parsing) is here too, for the lkvm commands.
 *
 * The protocol (doc/lkvm.1 has it for users):
 *	request:  VERB [ARG ...]\n	at most CTL_LINE_MAX - 1 bytes,
 *					printable ASCII, words split by spaces
 *	reply:    RECORD\n ...		zero or more: "TYPE key=value ..."
 *		  ok\n			or: error ERRNO MESSAGE\n
 * A connection may carry any number of requests, one after another.
 *
 * Threads: one thread owns a server and calls ctl_server_serve() when
 * ctl_server_fd() is readable; it never blocks there, whatever a client
 * does.  The handler runs on that thread.
 */
#ifndef LKVM_CTLSOCK_H
#define LKVM_CTLSOCK_H

#include <stdbool.h>
#include <stddef.h>

#define CTL_LINE_MAX		512
#define CTL_MAX_ARGS		8
#define CTL_MAX_CLIENTS		8
#define CTL_REPLY_MAX		(1u << 20)
#define CTL_NAME_MAX		64
#define CTL_RECORD_MAX_FIELDS	48

struct ctl_request {
	unsigned int argc;
	const char *argv[CTL_MAX_ARGS];
	char buf[CTL_LINE_MAX];
};

/*
 * Splits one request line (without its newline) into words.  Returns 0,
 * or -EINVAL / -EMSGSIZE with why set to a reason.
 */
int ctl_parse_request(const char *line, size_t len, struct ctl_request *req,
		      const char **why);

/* A reply under construction; over CTL_REPLY_MAX it stops growing. */
struct ctl_reply {
	char *buf;
	size_t len, cap;
	bool overflow;
};

void ctl_reply_printf(struct ctl_reply *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Appends "text LINE" for each line of s (control bytes become '?'). */
void ctl_reply_text(struct ctl_reply *r, const char *s);

struct ctl_ops {
	/*
	 * Serves one request, appending records to rep.  Returns 0, or a
	 * negative errno with msg set, which the client gets as the error.
	 */
	int (*request)(void *opaque, const struct ctl_request *req,
		       struct ctl_reply *rep, char *msg, size_t msglen);
};

struct ctl_server;

/* Whether name is usable in a socket path: [A-Za-z0-9._+-], 1..64, no leading dot. */
bool ctl_name_valid(const char *name);
/* $XDG_RUNTIME_DIR/lkvm or $HOME/.lkvm; the length, or a negative errno. */
int ctl_default_dir(char *buf, size_t len);
/*
 * Listens on dir/name.sock (dir made 0700 if missing).  A socket left by
 * a process that died is replaced; a live one is -EADDRINUSE.
 */
int ctl_server_open(const char *dir, const char *name,
		    const struct ctl_ops *ops, void *opaque,
		    struct ctl_server **out, char *err, size_t errlen);
/* Readable when ctl_server_serve() has work (an epoll fd). */
int ctl_server_fd(const struct ctl_server *s);
void ctl_server_serve(struct ctl_server *s);
const char *ctl_server_path(const struct ctl_server *s);
/* Closes every connection and removes the socket. */
void ctl_server_close(struct ctl_server *s);

/* Client: a connected fd, or -ECONNREFUSED (stale socket), -ENOENT, ... */
int ctl_connect(const char *path);
/*
 * Sends one request and reads its reply: on_record gets each record
 * line (without newline; it may modify it).  Returns 0 on "ok", the
 * negative errno of an "error" line with its message in err, or -EPROTO
 * / -ECONNRESET / -ETIMEDOUT if the reply is broken or never comes.
 */
int ctl_call(int fd, const char *request,
	     void (*on_record)(void *opaque, char *line), void *opaque,
	     char *err, size_t errlen);

/* A record line split in place: "TYPE k=v k=v ...". */
struct ctl_record {
	const char *type;
	unsigned int n;
	const char *key[CTL_RECORD_MAX_FIELDS];
	const char *val[CTL_RECORD_MAX_FIELDS];
};

/* Returns 0, or -EINVAL for a line that is not a record. */
int ctl_parse_record(char *line, struct ctl_record *rec);
/* The value of key in rec, or NULL. */
const char *ctl_record_get(const struct ctl_record *rec, const char *key);

#endif
