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
