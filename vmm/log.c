/*
 * log.c - routes library messages to the embedder's hook.  Any thread.
 */
#include <stdarg.h>
#include <stdio.h>

#include "lkvm/log.h"
#include "lkvm/vm.h"

void vm_log(struct lkvm *vm, enum lkvm_log_level level, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	if (!vm || !vm->cfg.log || level > vm->cfg.log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vm->cfg.log(vm->cfg.log_opaque, level, msg);
}

void vm_log_limited(struct lkvm *vm, struct log_limit *l,
		    enum lkvm_log_level level, const char *fmt, ...)
{
	unsigned int n = atomic_fetch_add(&l->count, 1);
	char msg[2048];
	va_list ap;

	if (n >= LOG_LIMIT_BURST)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vm_log(vm, level, "%s%s", msg, n + 1 == LOG_LIMIT_BURST ?
	       " (further messages of this kind are counted, not logged)" :
	       "");
}

void vm_log_limit_report(struct lkvm *vm, struct log_limit *l,
			 const char *what)
{
	unsigned int n = atomic_load(&l->count);

	if (n > LOG_LIMIT_BURST)
		vm_warn(vm, "%s: %u more not logged", what,
			n - LOG_LIMIT_BURST);
}
