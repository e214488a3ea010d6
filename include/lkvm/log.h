/*
 * log.h - the library prints nothing itself: messages go to the
 * embedder's log hook (struct lkvm_config.log), filtered by level.
 */
#ifndef LKVM_LOG_H
#define LKVM_LOG_H

#include <stdatomic.h>

#include "lkvm.h"

struct lkvm;

void vm_log(struct lkvm *vm, enum lkvm_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define vm_err(vm, ...) vm_log(vm, LKVM_LOG_ERROR, __VA_ARGS__)
#define vm_warn(vm, ...) vm_log(vm, LKVM_LOG_WARN, __VA_ARGS__)
#define vm_info(vm, ...) vm_log(vm, LKVM_LOG_INFO, __VA_ARGS__)
#define vm_dbg(vm, ...) vm_log(vm, LKVM_LOG_DEBUG, __VA_ARGS__)

/*
 * A message a guest can trigger at will (a bad ring, a BAR moved onto
 * another) must not let it flood the host's logs: each cause keeps a
 * log_limit, the first LOG_LIMIT_BURST messages are logged, the rest
 * only counted, and the owner reports the count when it goes away.
 */
#define LOG_LIMIT_BURST 3

struct log_limit {
	atomic_uint count;
};

void vm_log_limited(struct lkvm *vm, struct log_limit *l,
		    enum lkvm_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Logs "what: N more not logged" if some were held back. */
void vm_log_limit_report(struct lkvm *vm, struct log_limit *l,
			 const char *what);

#define vm_warn_limited(vm, l, ...) \
	vm_log_limited(vm, l, LKVM_LOG_WARN, __VA_ARGS__)

#endif
