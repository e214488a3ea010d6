/*
 * seccomp.h - per-thread system call filters (vmm/seccomp.c), on when
 * lkvm_config.seccomp is set (the lkvm program's default).
 */
#ifndef LKVM_SECCOMP_H
#define LKVM_SECCOMP_H

enum seccomp_kind {
	SECCOMP_VCPU,
	SECCOMP_IO,		/* queue threads and the low-rate thread */
	SECCOMP_IO_SOCKETS,	/* ... that also open host Unix sockets */
	SECCOMP_FS,		/* ... that also open, make and remove files */
};

/* Filters the calling thread for good; name is what a report says. */
int seccomp_enter(enum seccomp_kind kind, const char *name);
/* The SIGSYS handler that reports a violation (process-wide). */
int seccomp_install_handler(void);

/*
 * Test hook: LKVM_TEST_FAULT=seccomp:NAME makes the thread called NAME
 * make a forbidden call (getcwd) right after its filter is on.
 */
#define SECCOMP_FAULT_ENV "LKVM_TEST_FAULT"
void seccomp_test_violation(const char *name);

#endif
