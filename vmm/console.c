/*
 * console.c - host side of the guest console (see console.h).
 * Output: any vCPU thread or the virtio-console thread, under out_lock.
 * Input: the control loop only.
 *
 * A console reader that goes away (a closed pipe, a full disk) costs the
 * VM nothing: that sink is dropped with one warning and the guest runs
 * on.  SIGPIPE must not kill an embedder's process: lkvm's own threads
 * block it (vcpu.c, iothread.c), so a write to a closed pipe fails with
 * EPIPE and leaves the signal pending on the thread, where it is taken
 * back here.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "lkvm/console.h"
#include "lkvm/log.h"
#include "lkvm/lib/util.h"
#include "lkvm/vm.h"

#define CONSOLE_ESCAPE_CHAR 0x01	/* Ctrl-A, as kvmtool and QEMU */

int console_init(struct console *c, struct lkvm *vm, int in, int out,
		 int log, bool escape)
{
	memset(c, 0, sizeof(*c));
	c->vm = vm;
	c->in = in;
	c->out = out;
	c->log = log;
	c->escape = escape;
	c->space_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->space_fd < 0)
		return -errno;
	pthread_mutex_init(&c->out_lock, NULL);
	return 0;
}

void console_free(struct console *c)
{
	if (c->space_fd >= 0)
		close(c->space_fd);
	c->space_fd = -1;
	pthread_mutex_destroy(&c->out_lock);
}

void console_set_sink(struct console *c, const struct console_sink_ops *ops,
		      void *opaque)
{
	c->sink = ops;
	c->sink_opaque = opaque;
}

/* The SIGPIPE a write to a closed pipe left pending on this thread. */
static void take_sigpipe(void)
{
	struct timespec zero = { 0, 0 };
	sigset_t set, pending;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE))
		sigtimedwait(&set, NULL, &zero);
}

/* 0, or the errno that ended output to fd. */
static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			/* A non-blocking reader that lags: drop, not spin. */
			return 0;
		}
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;

			if (e == EPIPE)
				take_sigpipe();
			return e;
		}
		p += n;
		len -= n;
	}
	return 0;
}

static void console_sink_failed(struct console *c, bool *dead,
				const char *what, int fd, int e)
{
	*dead = true;
	vm_warn(c->vm, "console %s (fd %d) failed: %s; output there stopped, the guest runs on",
		what, fd, strerror(e));
}

void console_write(struct console *c, const void *buf, size_t len)
{
	int e;

	pthread_mutex_lock(&c->out_lock);
	if (c->cb)
		c->cb(c->cb_opaque, buf, len);
	if (c->out >= 0 && !c->out_dead) {
		e = write_all(c->out, buf, len);
		if (e)
			console_sink_failed(c, &c->out_dead, "output", c->out, e);
	}
	if (c->log >= 0 && !c->log_dead) {
		e = write_all(c->log, buf, len);
		if (e)
			console_sink_failed(c, &c->log_dead, "log", c->log, e);
	}
	pthread_mutex_unlock(&c->out_lock);
}

void console_space_available(struct console *c)
{
	uint64_t one = 1;

	if (write(c->space_fd, &one, sizeof(one)) < 0) {
		/* counter saturated: the loop is awake anyway */
	}
}

/* Strips the Ctrl-A escape sequences; returns the bytes left for the guest. */
static size_t console_filter(struct console *c, const uint8_t *in, size_t n,
			     uint8_t *out)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		uint8_t ch = in[i];

		if (c->esc_pending) {
			c->esc_pending = false;
			if (ch == 'x' || ch == 'X') {
				vm_request_exit(c->vm, LKVM_EXIT_STOPPED, 0,
						"console escape");
				return o;
			}
			if (ch != CONSOLE_ESCAPE_CHAR)
				out[o++] = CONSOLE_ESCAPE_CHAR;
			out[o++] = ch;
		} else if (c->escape && ch == CONSOLE_ESCAPE_CHAR) {
			c->esc_pending = true;
		} else {
			out[o++] = ch;
		}
	}
	return o;
}

int console_sysrq(struct console *c, uint8_t key)
{
	if (!c->sink || !c->sink->sysrq)
		return -ENOTSUP;
	return c->sink->sysrq(c->sink_opaque, key);
}

bool console_input(struct console *c)
{
	uint8_t buf[256], out[sizeof(buf) * 2];
	size_t space, n;
	ssize_t got;

	if (!c->sink || c->in < 0)
		return false;
	space = c->sink->space(c->sink_opaque);
	if (space == 0)
		return false;
	got = read(c->in, buf, MIN(space, sizeof(buf)));
	if (got < 0)
		return errno == EINTR || errno == EAGAIN;
	if (got == 0) {
		c->in_eof = true;
		return false;
	}
	n = console_filter(c, buf, got, out);
	if (n)
		c->sink->push(c->sink_opaque, out, n);
	return true;
}
