/*
 * console.h - the host side of the guest console: where output goes
 * (console_out and the --log copy) and where input comes from.  The
 * control loop reads console_in and hands bytes to one sink (the UART or,
 * later, virtio-console) as far as the sink has room; when it is full the
 * loop stops reading until the sink signals space_fd.
 */
#ifndef LKVM_CONSOLE_H
#define LKVM_CONSOLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lkvm;

struct console_sink_ops {
	size_t (*space)(void *opaque);
	void (*push)(void *opaque, const uint8_t *buf, size_t len);
	/* Optional: a magic SysRq key, as the sink's line carries one. */
	int (*sysrq)(void *opaque, uint8_t key);
};

struct console {
	struct lkvm *vm;
	int in, out, log;
	bool escape;		/* Ctrl-A x stops the VM */
	bool esc_pending;	/* control loop only */
	bool in_eof;		/* control loop only */
	int space_fd;		/* eventfd: sink has room again */
	const struct console_sink_ops *sink;
	void *sink_opaque;
	pthread_mutex_t out_lock;	/* keeps lines from vCPUs whole */
	bool out_dead, log_dead;	/* a write failed: stopped (out_lock) */
	/* Output through the embedder's callback too (cfg.console_cb). */
	void (*cb)(void *opaque, const void *buf, size_t len);
	void *cb_opaque;
};

int console_init(struct console *c, struct lkvm *vm, int in, int out,
		 int log, bool escape);
void console_free(struct console *c);
void console_set_sink(struct console *c, const struct console_sink_ops *ops,
		      void *opaque);
void console_write(struct console *c, const void *buf, size_t len);
/* The sink calls this when it went from full to having room. */
void console_space_available(struct console *c);
/* A magic SysRq key to the sink; -ENOTSUP if it cannot carry one. */
int console_sysrq(struct console *c, uint8_t key);
/* Control loop: stdin readable.  Returns false when input should pause. */
bool console_input(struct console *c);

#endif
