/*
 * lkvm.h - the embedding API of lkvm, a lightweight KVM virtual machine
 * monitor.  This is the only public header: the lkvm command line tool is
 * built on exactly this interface.
 *
 * Life of a VM:
 *	struct lkvm_config cfg;
 *	lkvm_config_init(&cfg);
 *	cfg.kernel = "bzImage"; cfg.mem_mib = 256; ...
 *	struct lkvm *vm;
 *	int err = lkvm_create(&cfg, &vm, errbuf, sizeof(errbuf));
 *	struct lkvm_result res;
 *	err = lkvm_run(vm, &res);	(blocks until the guest ends)
 *	lkvm_destroy(vm);
 *
 * The library keeps no mutable global state: two VMs may live in one
 * process.  It never exits the process and never prints except through
 * cfg.log.  Errors are negative errno values plus a message.
 *
 * Process-wide effects: lkvm_run() installs a handler for cfg.kick_signal
 * (default SIGRTMIN) that does nothing; it is used to kick vCPU threads out
 * of KVM_RUN.  Pick another signal if the embedder uses that one.  With
 * cfg.seccomp it also installs a SIGSYS handler.
 */
#ifndef LKVM_H
#define LKVM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LKVM_VERSION "0.1.0"

struct lkvm;

enum lkvm_log_level {
	LKVM_LOG_ERROR,
	LKVM_LOG_WARN,
	LKVM_LOG_INFO,
	LKVM_LOG_DEBUG,
};

typedef void (*lkvm_log_fn)(void *opaque, enum lkvm_log_level level,
			    const char *msg);

enum lkvm_virtio_transport {
	LKVM_VIRTIO_DEFAULT,	/* the arch's choice: pci on x86 */
	LKVM_VIRTIO_MMIO,
	LKVM_VIRTIO_PCI,
};

enum lkvm_irqchip {
	LKVM_IRQCHIP_AUTO,	/* arm64: GICv3 with ITS, else GICv3, else v2 */
	LKVM_IRQCHIP_GICV2,
	LKVM_IRQCHIP_GICV3,	/* no ITS: no MSI, virtio-pci uses INTx */
	LKVM_IRQCHIP_GICV3_ITS,
};

/* What backs guest RAM (each slot is mapped 2 MiB or 1 GiB aligned). */
enum lkvm_ram_backing {
	LKVM_RAM_ANON,		/* anonymous memory, transparent huge pages */
	LKVM_RAM_MEMFD,		/* a memfd: hugetlb where the host has free
				 * huge pages, else shmem */
	LKVM_RAM_HUGETLBFS,	/* a file on the hugetlbfs mount cfg.hugetlbfs */
};

#define LKVM_HALT_POLL_MAX_US	1000000

struct lkvm_config {
	const char *name;	/* for thread names and messages */
	const char *kernel;	/* bzImage, flat binary or PVH ELF */
	const char *initrd;	/* optional */
	const char *cmdline;	/* optional kernel command line */
	uint64_t mem_mib;	/* guest RAM in MiB */
	unsigned int cpus;
	const char **disks;	/* -d specifications, ndisks of them */
	unsigned int ndisks;
	const char **nets;	/* -n specifications, nnets of them */
	unsigned int nnets;
	/* More devices, "TYPE" or "TYPE,OPTIONS" each (lkvm_device_type). */
	const char **devices;
	unsigned int ndevices;

	int console_in;		/* fd read for guest console input, or -1 */
	int console_out;	/* fd the guest console is written to, or -1 */
	int console_log;	/* fd that also receives console output, or -1 */
	int console_escape;	/* Ctrl-A x on console_in stops the VM */
	/* Optional: console output is also handed to this (any lkvm
	 * thread, one call at a time, never after lkvm_run returns). */
	void (*console_cb)(void *opaque, const void *buf, size_t len);
	void *console_cb_opaque;

	int rng;		/* add a virtio-rng device */
	int console_virtio;	/* guest console on virtio-console (hvc0) */
	enum lkvm_virtio_transport virtio_transport;
	int no_fastpath;	/* test aid: act as if KVM had no ioeventfd
				 * or irqfd (notifies exit, interrupts by ioctl) */

	enum lkvm_ram_backing ram_backing;
	const char *hugetlbfs;	/* LKVM_RAM_HUGETLBFS: the mount */
	/*
	 * KVM halt polling, microseconds up to LKVM_HALT_POLL_MAX_US; -1:
	 * what the devices ask for.
	 */
	int halt_poll_us;
	/*
	 * arm64 vCPU features, each on by default where the host KVM has
	 * it: SVE (the host's largest vector length), pointer
	 * authentication, PMUv3, paravirtual steal time.
	 */
	int no_sve, no_ptrauth, no_pmu, no_pvtime;

	const char *dump_dtb;	/* arm64: also write the device tree here */
	/*
	 * x86: ACPI tables (hardware-reduced: the guest powers off through
	 * the sleep registers) unless no_acpi; with dump_acpi, each table
	 * is also written to dump_acpi/SIGNATURE.dat.
	 */
	int no_acpi;
	const char *dump_acpi;
	/*
	 * For a Linux kernel (not a flat binary) lkvm puts defaults before
	 * cmdline: the console, root=/dev/vda rw (a writable first disk and
	 * no root= given), panic=-1, and reboot=k on x86 without ACPI.
	 * nodefaults (kvmtool's --nodefaults) leaves cmdline alone.
	 */
	int nodefaults;
	enum lkvm_irqchip irqchip;	/* arm64 only */
	uint64_t timeout_ms;	/* 0: none */
	int kick_signal;	/* 0: SIGRTMIN */
	/*
	 * Per-thread seccomp filters on lkvm's vCPU and I/O threads (not on
	 * the thread calling lkvm_run).  A forbidden call ends the process
	 * with SIGSYS after a report on stderr; lkvm_run() installs the
	 * SIGSYS handler.  The log and console callbacks then run filtered.
	 */
	int seccomp;

	/*
	 * The control socket (lkvm list/stop/pause/stat/debug): on unless
	 * 0.  It is control_dir/NAME.sock; control_dir NULL means
	 * $XDG_RUNTIME_DIR/lkvm, or ~/.lkvm without that variable.  NAME
	 * is cfg.name, by default guest-PID (guest-PID-2, ... for more
	 * VMs of one process).
	 */
	int control;
	const char *control_dir;

	lkvm_log_fn log;	/* NULL: messages are dropped */
	void *log_opaque;
	enum lkvm_log_level log_level;
};

enum lkvm_exit_reason {
	LKVM_EXIT_POWEROFF,	/* guest powered off */
	LKVM_EXIT_RESET,	/* guest asked for a reset (ends the run) */
	LKVM_EXIT_DEBUG,	/* guest wrote status to the debug-exit port */
	LKVM_EXIT_PANIC,	/* guest reported a panic (pvpanic) */
	LKVM_EXIT_TIMEOUT,	/* cfg.timeout_ms elapsed */
	LKVM_EXIT_STOPPED,	/* lkvm_stop() or console escape */
	LKVM_EXIT_ERROR,	/* VMM or guest error, see message */
};

struct lkvm_result {
	enum lkvm_exit_reason reason;
	int status;		/* LKVM_EXIT_DEBUG: the value written */
	char message[2048];	/* LKVM_EXIT_ERROR: what happened */
};

/* Exit-reason counters, read with lkvm_stats(). */
struct lkvm_stats {
	uint64_t exits_io;
	uint64_t exits_mmio;
	uint64_t exits_intr;	/* KVM_RUN interrupted (signal, kick) */
	uint64_t exits_other;
	uint64_t exits_notify;	/* virtio queue notifies that exited */
	uint64_t pio_unhandled;	/* accesses to ports nobody claimed */
	uint64_t mmio_unhandled;
	uint64_t ram_bytes;
	uint64_t ram_huge_bytes;	/* of which huge-page backed now */
	const char *ram_backing;	/* "anon", "memfd", "memfd-hugetlb", ... */
	uint64_t ram_rss_bytes;		/* guest RAM touched (resident) */
	uint64_t uptime_ms;		/* since lkvm_run began */
	uint64_t paused_ms;		/* of which paused */
	int paused;
};

/*
 * An I/O thread's figures (lkvm_thread_stats).  Polling: the window the
 * thread spins for work before it sleeps (adaptive unless fixed), how
 * often a spin found work and how often the thread slept instead.
 */
struct lkvm_thread_stats {
	char name[16];
	int tid;			/* 0 if not running */
	uint64_t cpu_ns;		/* CPU time so far (schedstat) */
	uint64_t sleeps;		/* times it went to sleep */
	uint64_t poll_hits;		/* spins that found work */
	uint64_t poll_misses;		/* spins that ended in sleep */
	uint64_t poll_ns;		/* window now */
	uint64_t poll_max_ns;		/* its cap (fixed: the window) */
	int poll_adaptive;
};

/* Fills st for the i-th I/O thread; -ENOENT past the last. */
int lkvm_thread_stats(struct lkvm *vm, unsigned int i,
		      struct lkvm_thread_stats *st);

/*
 * One queue of one device (lkvm_queue_stats), as the device counts it:
 * requests taken from the guest and given back, the I/O they asked for
 * (a disk: reads and writes; other devices: bytes from and to the
 * guest), interrupts and kicks, and the owner thread's figures.
 * latency_ns is the sum over completed requests of the time from the
 * drain that took each to the publication of its completion: divide a
 * difference of it by a difference of completed for an average.
 */
struct lkvm_queue_stats {
	char device[16];		/* "blk0", "net0", ... */
	char kind[16];			/* "virtio-blk", ... */
	unsigned int queue;
	char thread[16];		/* the owner I/O thread, or "" */
	uint64_t requests, completed, inflight;
	uint64_t reads, writes, flushes, discards;
	uint64_t read_bytes, write_bytes;
	uint64_t errors, irqs, notifies, batches;
	uint64_t latency_ns;
	uint64_t thread_cpu_ns;
	uint64_t poll_ns;		/* the thread's poll window now */
	int poll_adaptive;
};

/* Fills st for the i-th queue of all devices; -ENOENT past the last. */
int lkvm_queue_stats(struct lkvm *vm, unsigned int i,
		     struct lkvm_queue_stats *st);

void lkvm_config_init(struct lkvm_config *cfg);

/*
 * lkvm_create() and lkvm_run() return 0 or a negative value, with a
 * message.  Its kind says whose fault it was: the configuration's (a
 * usage error; the CLI exits 2) or the VM's or host's (exit 1), whatever
 * the errno behind it, which lkvm_error_errno() gives.
 */
enum lkvm_error_kind {
	LKVM_ERROR_NONE,
	LKVM_ERROR_CONFIG,
	LKVM_ERROR_HOST,
};

enum lkvm_error_kind lkvm_error_kind(int ret);
int lkvm_error_errno(int ret);

/* A device type lkvm_config.devices may name; the CLI's --NAME option. */
enum lkvm_device_arg {
	LKVM_DEVICE_ARG_NONE,
	LKVM_DEVICE_ARG_OPTIONAL,
	LKVM_DEVICE_ARG_REQUIRED,
};

struct lkvm_device_type_info {
	const char *name;
	const char *help;	/* one line */
	enum lkvm_device_arg arg;
};

/* Fills info for the i-th such type; -ENOENT past the last. */
int lkvm_device_type(unsigned int i, struct lkvm_device_type_info *info);

/* Returns 0, or an error (see lkvm_error_kind) with a message in err. */
int lkvm_create(const struct lkvm_config *cfg, struct lkvm **vmp,
		char *err, size_t errlen);

/*
 * Runs the guest until it ends; fills res.  Returns 0 when the run
 * happened (whatever the guest did), a negative errno if it could not
 * start (message in res->message).
 */
int lkvm_run(struct lkvm *vm, struct lkvm_result *res);

/* Asks a running VM to stop.  Async-signal-safe, callable from any thread. */
void lkvm_stop(struct lkvm *vm);

void lkvm_stats(struct lkvm *vm, struct lkvm_stats *st);

/*
 * Control of a running VM, from any thread but its vCPU and I/O threads
 * (the control socket calls these from the thread running lkvm_run).
 * Each returns 0 or a negative errno: -ESRCH when the VM is not running.
 *
 * lkvm_pause() stops every vCPU, lets the requests in flight complete
 * and be published to the guest, then parks every I/O thread between
 * requests; nothing is lost.  Time paused does not count against
 * cfg.timeout_ms.  -EALREADY if paused (or, for resume, if not).
 */
int lkvm_pause(struct lkvm *vm);
int lkvm_resume(struct lkvm *vm);
/* Every vCPU's registers (x86: and the code bytes at RIP), as text. */
int lkvm_dump_vcpus(struct lkvm *vm, char *buf, size_t len);
/* An NMI to one vCPU (x86; -ENOTSUP elsewhere). */
int lkvm_inject_nmi(struct lkvm *vm, unsigned int cpu);
/*
 * Magic SysRq key on the guest console: a serial break, then the key
 * (virtio-console: Ctrl-O, then the key, which hvc takes as SysRq).
 */
int lkvm_sysrq(struct lkvm *vm, char key);
/* The VM's name and its control socket's path ("" if none). */
const char *lkvm_name(struct lkvm *vm);
const char *lkvm_control_path(struct lkvm *vm);
/*
 * Where control sockets live: $XDG_RUNTIME_DIR/lkvm, else ~/.lkvm.
 * Returns the length written, or -ENAMETOOLONG / -ENOENT.
 */
int lkvm_control_dir(char *buf, size_t len);
/* The devices by name, comma-separated (for lkvm list). */
int lkvm_device_names(struct lkvm *vm, char *buf, size_t len);

/*
 * The balloon (a "balloon" device): sizes in 4 KiB pages.  The guest's
 * figures are those of its last report (updates counts them; 0 before
 * the first); each lkvm_balloon_stats() call also asks for a fresh one.
 * Both return -ENODEV when the VM has no balloon.
 */
struct lkvm_balloon_stats {
	uint64_t target_pages;		/* what the host asks the guest for */
	uint64_t actual_pages;		/* what the guest says it has given */
	uint64_t inflated_pages;	/* released to the host so far */
	uint64_t deflated_pages;
	uint64_t reported_bytes;	/* free page reporting released */
	uint64_t bad_pfns;		/* pages named outside guest RAM */
	uint64_t updates;		/* statistics reports received */
	uint64_t swap_in, swap_out;	/* the guest's statistics, bytes */
	uint64_t major_faults, minor_faults;
	uint64_t free_memory, total_memory, available_memory, disk_caches;
	uint64_t hugetlb_allocations, hugetlb_failures;
};

int lkvm_balloon_set(struct lkvm *vm, uint64_t pages);
int lkvm_balloon_stats(struct lkvm *vm, struct lkvm_balloon_stats *st);

/*
 * virtio-vsock (the "vsock" device, --vsock CID[,uds=PATH][,fd=N]).
 * Host programs reach guest port P by connecting to PATH and writing
 * "CONNECT P\n" (answer: "OK LOCALPORT\n", or the socket closes); guest
 * connections to host port P reach PATH_P.  fd=N serves an embedder's
 * listening Unix socket instead of making PATH.
 *
 * lkvm_vsock_path: the listening path lkvm made, or NULL.
 * lkvm_vsock_connect: a stream to guest port `port` for the calling
 * process, once the guest accepted it: an fd, or -ENODEV (no device),
 * -ECONNREFUSED, -ETIMEDOUT (after timeout_ms; < 0: 5 s).
 */
const char *lkvm_vsock_path(struct lkvm *vm);
int lkvm_vsock_connect(struct lkvm *vm, uint32_t port, int timeout_ms);

void lkvm_destroy(struct lkvm *vm);

const char *lkvm_exit_reason_name(enum lkvm_exit_reason r);

#ifdef __cplusplus
}
#endif
#endif
