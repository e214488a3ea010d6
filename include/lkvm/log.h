/*
 * log.h - the library prints nothing itself: messages go to the
 * embedder's log hook (struct lkvm_config.log), filtered by level.
 */
#ifndef LKVM_LOG_H
#define LKVM_LOG_H

#include "lkvm.h"

struct lkvm;

void vm_log(struct lkvm *vm, enum lkvm_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define vm_err(vm, ...) vm_log(vm, LKVM_LOG_ERROR, __VA_ARGS__)
#define vm_warn(vm, ...) vm_log(vm, LKVM_LOG_WARN, __VA_ARGS__)
#define vm_info(vm, ...) vm_log(vm, LKVM_LOG_INFO, __VA_ARGS__)
#define vm_dbg(vm, ...) vm_log(vm, LKVM_LOG_DEBUG, __VA_ARGS__)

#endif
