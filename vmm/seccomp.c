/*
 * seccomp.c - per-thread system call filters (seccomp.h), written as raw
 * BPF.  Each lkvm thread installs the filter of its kind when it starts:
 *   vCPU threads: KVM_RUN and the few KVM and tap ioctls their device
 *     handlers make, eventfd and console writes, epoll_ctl (device
 *     resets change what an I/O thread watches), futexes, signals, the
 *     memory calls of malloc;
 *   I/O threads (queue threads and the low-rate thread): their rings
 *     (io_uring_enter, epoll), file I/O (p{read,write}v, fdatasync,
 *     fallocate), eventfd writes, madvise (the balloon), getrandom,
 *     and the same ioctls; virtio-vsock's also sockets, virtio-fs's
 *     also the *at() calls of a passthrough filesystem.
 * Everything else traps: SIGSYS, whose handler says which thread made
 * which call and then lets SIGSYS end the process.  The thread that
 * calls lkvm_run() is the embedder's and is never filtered.
 *
 * io_uring: operations submitted through a ring are not system calls and
 * the filter never sees them.  Each ring is restricted instead, before
 * it is enabled (lib/aio_uring.c: IORING_REGISTER_RESTRICTIONS), to the
 * operations lkvm submits.
 *
 * Threads: seccomp_enter() on the thread being filtered; the SIGSYS
 * handler on whichever thread trapped (async-signal-safe).
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lkvm/lib/util.h"
#include "lkvm/seccomp.h"

#if defined(__x86_64__)
#define SECCOMP_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SECCOMP_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

/*
 * What every lkvm thread does: memory, futexes, signals, time, exit, and
 * epoll_ctl (a vCPU resetting virtio-net stops its pair's thread from
 * watching the tap).
 */
static const int common_calls[] = {
	__NR_epoll_ctl,
	__NR_read, __NR_write, __NR_close, __NR_futex, __NR_madvise,
	__NR_mmap, __NR_munmap, __NR_mprotect, __NR_mremap, __NR_brk,
	__NR_rt_sigreturn, __NR_rt_sigprocmask, __NR_rt_sigtimedwait,
	__NR_rt_sigaction, __NR_sigaltstack, __NR_getpid, __NR_gettid,
	__NR_tgkill, __NR_exit, __NR_exit_group, __NR_clock_gettime,
	__NR_gettimeofday, __NR_clock_nanosleep, __NR_nanosleep,
	__NR_sched_yield, __NR_getrandom, __NR_ppoll, __NR_fstat,
	__NR_newfstatat, __NR_restart_syscall, __NR_writev, __NR_lseek,
	__NR_rt_sigpending,
	/* glibc's malloc asks it when a thread needs a new arena. */
	__NR_sched_getaffinity,
#ifdef __NR_poll
	__NR_poll,
#endif
#ifdef __NR_rseq
	__NR_rseq,
#endif
#ifdef __SANITIZE_ADDRESS__
	/* lkvm-san: what ASan's report needs (maps, symbolizer). */
	__NR_openat, __NR_readlinkat, __NR_getdents64, __NR_prlimit64,
	__NR_sched_getaffinity, __NR_fstatfs, __NR_statx,
#endif
};

/* The I/O threads' own. */
static const int io_calls[] = {
	__NR_epoll_pwait, __NR_io_uring_enter,
	__NR_io_uring_register, __NR_pread64, __NR_pwrite64, __NR_preadv,
	__NR_pwritev, __NR_preadv2, __NR_pwritev2, __NR_readv,
	__NR_fdatasync, __NR_fsync, __NR_fallocate, __NR_sendmsg,
	__NR_recvmsg, __NR_sendto, __NR_recvfrom,
#ifdef __NR_epoll_wait
	__NR_epoll_wait,
#endif
};

/* I/O threads that dial and accept host sockets (virtio-vsock). */
static const int socket_calls[] = {
	__NR_socket, __NR_connect, __NR_accept4, __NR_shutdown,
	__NR_timerfd_settime,
};

/*
 * virtio-fs queue threads: a passthrough filesystem's calls, every one
 * relative to a descriptor the share handed out (fs/passthrough.c).
 */
static const int fs_calls[] = {
	__NR_openat, __NR_openat2, __NR_mkdirat, __NR_mknodat,
	__NR_symlinkat, __NR_linkat, __NR_unlinkat, __NR_renameat2,
	__NR_readlinkat, __NR_fchownat, __NR_fchmodat, __NR_utimensat,
	__NR_getdents64, __NR_truncate, __NR_ftruncate, __NR_statfs,
	__NR_fstatfs, __NR_getxattr, __NR_setxattr, __NR_listxattr,
	__NR_removexattr, __NR_faccessat, __NR_faccessat2,
	__NR_copy_file_range, __NR_syncfs, __NR_statx, __NR_fcntl,
};

/* ioctls made after the VM starts, by a vCPU or an I/O thread. */
static const unsigned long run_ioctls[] = {
	KVM_IOEVENTFD, KVM_IRQFD, KVM_SET_GSI_ROUTING, KVM_SIGNAL_MSI,
	KVM_IRQ_LINE, KVM_CHECK_EXTENSION, KVM_GET_MP_STATE,
	TUNSETOFFLOAD, TUNSETQUEUE, TUNGETIFF,
#if defined(__x86_64__)
	KVM_GET_REGS, KVM_GET_SREGS, KVM_TRANSLATE, KVM_GET_LAPIC,
	KVM_GET_VCPU_EVENTS,
#elif defined(__aarch64__)
	KVM_GET_ONE_REG,
#endif
};

#define MAX_FILTER 256

struct bpf {
	struct sock_filter f[MAX_FILTER];
	unsigned int n;
};

static void emit(struct bpf *b, unsigned short code, unsigned char jt,
		 unsigned char jf, unsigned int k)
{
	if (b->n < MAX_FILTER)
		b->f[b->n++] = (struct sock_filter){ code, jt, jf, k };
}

/* if (A == k) return ALLOW; */
static void allow_if(struct bpf *b, unsigned int k)
{
	emit(b, BPF_JMP | BPF_JEQ | BPF_K, 0, 1, k);
	emit(b, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
}

static void build(struct bpf *b, enum seccomp_kind kind)
{
	unsigned int i;

	b->n = 0;
	/* Another architecture's calls (or x32's) are not ours. */
	emit(b, BPF_LD | BPF_W | BPF_ABS, 0, 0,
	     offsetof(struct seccomp_data, arch));
	emit(b, BPF_JMP | BPF_JEQ | BPF_K, 1, 0, SECCOMP_AUDIT_ARCH);
	emit(b, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_KILL_PROCESS);
	emit(b, BPF_LD | BPF_W | BPF_ABS, 0, 0,
	     offsetof(struct seccomp_data, nr));
	for (i = 0; i < ARRAY_SIZE(common_calls); i++)
		allow_if(b, common_calls[i]);
	for (i = 0; kind != SECCOMP_VCPU && i < ARRAY_SIZE(io_calls); i++)
		allow_if(b, io_calls[i]);
	for (i = 0; kind == SECCOMP_IO_SOCKETS &&
		    i < ARRAY_SIZE(socket_calls); i++)
		allow_if(b, socket_calls[i]);
	for (i = 0; kind == SECCOMP_FS && i < ARRAY_SIZE(fs_calls); i++)
		allow_if(b, fs_calls[i]);
	/* ioctl: by request (the low 32 bits of the second argument). */
	emit(b, BPF_JMP | BPF_JEQ | BPF_K, 1, 0, __NR_ioctl);
	emit(b, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_TRAP);
	emit(b, BPF_LD | BPF_W | BPF_ABS, 0, 0,
	     offsetof(struct seccomp_data, args[1]));
	if (kind == SECCOMP_VCPU)
		allow_if(b, KVM_RUN);
	for (i = 0; i < ARRAY_SIZE(run_ioctls); i++)
		allow_if(b, (unsigned int)run_ioctls[i]);
	emit(b, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_TRAP);
}

/* The trapping thread's name, for the report (set before the filter). */
static __thread char thread_name[16];

/* Async-signal-safe: digits by hand, write(2) only. */
static size_t put_str(char *buf, size_t at, const char *s)
{
	while (*s && at < 255)
		buf[at++] = *s++;
	return at;
}

static size_t put_num(char *buf, size_t at, long v)
{
	char d[24];
	int n = 0;

	if (v < 0) {
		buf[at++] = '-';
		v = -v;
	}
	do {
		d[n++] = '0' + v % 10;
		v /= 10;
	} while (v && n < 23);
	while (n && at < 255)
		buf[at++] = d[--n];
	return at;
}

static const char *syscall_name(long nr)
{
	switch (nr) {
#define NAME(x) case __NR_##x: return #x;
	NAME(openat) NAME(socket) NAME(connect) NAME(execve) NAME(clone)
	NAME(getcwd) NAME(ioctl) NAME(mkdirat) NAME(unlinkat) NAME(kill)
	NAME(ptrace) NAME(prctl) NAME(bind) NAME(listen) NAME(accept4)
	NAME(uname) NAME(getppid) NAME(setuid) NAME(mount) NAME(chdir)
	NAME(epoll_ctl) NAME(epoll_pwait) NAME(epoll_create1) NAME(eventfd2)
	NAME(io_uring_setup) NAME(io_uring_enter) NAME(io_uring_register)
	NAME(pread64) NAME(pwrite64) NAME(preadv) NAME(pwritev)
	NAME(preadv2) NAME(pwritev2) NAME(fdatasync) NAME(fsync)
	NAME(fallocate) NAME(madvise) NAME(mmap) NAME(munmap) NAME(mprotect)
	NAME(sendmsg) NAME(recvmsg) NAME(sendto) NAME(recvfrom) NAME(dup3)
	NAME(fcntl) NAME(statx) NAME(timerfd_create) NAME(clone3)
	NAME(sched_setaffinity) NAME(setns) NAME(unshare) NAME(pipe2)
#ifdef __NR_open
	NAME(open)
#endif
#ifdef __NR_fork
	NAME(fork)
#endif
#undef NAME
	default:
		return "";
	}
}

static void sigsys_handler(int sig, siginfo_t *si, void *uc)
{
	struct sigaction dfl;
	char buf[256];
	size_t n = 0;

	(void)uc;
	n = put_str(buf, n, "lkvm: seccomp: thread '");
	n = put_str(buf, n, thread_name[0] ? thread_name : "?");
	n = put_str(buf, n, "' made a forbidden system call, number ");
	n = put_num(buf, n, si->si_syscall);
	if (*syscall_name(si->si_syscall)) {
		n = put_str(buf, n, " (");
		n = put_str(buf, n, syscall_name(si->si_syscall));
		n = put_str(buf, n, ")");
	}
	n = put_str(buf, n, "; ending the process (--sandbox=off to run without filters)\n");
	if (write(STDERR_FILENO, buf, n) < 0) {
		/* nowhere to say it */
	}
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigaction(sig, &dfl, NULL);
	raise(sig);
}

int seccomp_install_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sigsys_handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGSYS, &sa, NULL) < 0 ? -errno : 0;
}

int seccomp_enter(enum seccomp_kind kind, const char *name)
{
	struct bpf b;
	struct sock_fprog prog;
	sigset_t set;

	strncpy(thread_name, name, sizeof(thread_name) - 1);
	/* SIGSYS must reach the handler even where signals are blocked. */
	sigemptyset(&set);
	sigaddset(&set, SIGSYS);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	build(&b, kind);
	if (b.n >= MAX_FILTER)
		return -E2BIG;
	prog.len = b.n;
	prog.filter = b.f;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		return -errno;
	return 0;
}

/* Test hook (see seccomp.h). */
void seccomp_test_violation(const char *name)
{
	const char *f = getenv(SECCOMP_FAULT_ENV);
	static const char key[] = "seccomp:";
	char buf[64];

	if (f && !strncmp(f, key, sizeof(key) - 1) &&
	    !strcmp(f + sizeof(key) - 1, name))
		syscall(__NR_getcwd, buf, sizeof(buf));
}
