/*
 * vm.h - the VM object.  Everything a VM owns hangs off struct lkvm so
 * that several VMs can live in one process.
 *
 * Threads: the thread calling lkvm_run() runs the control loop (console
 * input, timeout, stop requests); each vCPU has its own thread.  The first
 * thread to call vm_request_exit() decides the result; everyone else's
 * request is ignored.
 */
#ifndef LKVM_VM_H
#define LKVM_VM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "lkvm.h"
#include "lkvm/bus.h"
#include "lkvm/console.h"
#include "lkvm/irqroute.h"
#include "lkvm/memory.h"
#include "lkvm/pci.h"

struct arch_ops;
struct vm_device;
struct vm_resource;

struct vcpu {
	struct lkvm *vm;
	unsigned int id;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	bool started;
	atomic_bool park_req;		/* vcpus_park() asks; the vCPU parks */
};

struct lkvm {
	struct lkvm_config cfg;		/* strings owned (copied) */
	char **cfg_lists[3];		/* copies of cfg's string lists */

	int kvm_fd;
	int vm_fd;
	struct guest_memory mem;
	struct io_bus pio;
	struct io_bus mmio;
	struct pci_bus pci;
	struct irq_routes routes;	/* MSI GSIs */
	struct console console;

	struct vcpu *vcpus;
	unsigned int ncpus;

	void *arch;			/* owned by arch/ */

	int stop_fd;			/* eventfd: control loop wake-up */
	atomic_bool stopping;
	atomic_bool result_claimed;	/* the first vm_request_exit won */
	atomic_bool result_set;		/* ... and has filled result */
	struct lkvm_result result;
	bool running;

	/* Devices and what they occupy: see device.h. */
	struct vm_device *devices, *devices_tail;
	struct vm_resource *resources;
	uint64_t dev_mmio_used;		/* of arch_ops.dev_mmio_size */
	unsigned int dev_irqs;		/* lines handed out */
	uint64_t halt_poll_ns;		/* devices' largest ask */
	/* The devices' I/O threads, for lkvm_thread_stats (not owned). */
	struct iothread **iothreads;
	unsigned int niothreads;

	struct {
		atomic_uint_fast64_t io, mmio, intr, other, notify;
	} exits;

	/*
	 * Pause, resume and the debug requests (vmctl.c).  ctl_op_lock
	 * makes them one at a time.  park_lock guards parking: vCPUs
	 * asked to park (vcpus_park) count themselves in vcpus_parked and
	 * wait on park_cond while parked is set.
	 */
	pthread_mutex_t ctl_op_lock;
	pthread_mutex_t park_lock;
	pthread_cond_t park_cond;
	bool parked;
	unsigned int vcpus_parked;
	bool paused;			/* under ctl_op_lock */
	uint64_t run_start_ns;		/* CLOCK_MONOTONIC at lkvm_run */
	uint64_t paused_ns;		/* total, finished pauses */
	uint64_t paused_since_ns;	/* while paused */
	int ctl_wake_fd;		/* eventfd: the control loop re-arms
					 * its timeout after a resume */
	struct ctl_server *ctl;		/* the control socket, or NULL */
	char *cmdline_defaults;		/* before cfg.cmdline for Linux */
	/*
	 * A Linux kernel, no -n and no nodefaults, and passt installed:
	 * the network is -n mode=user, as kvmtool's default is its own.
	 */
	bool default_user_net;
	char ctl_path[108];
};

/*
 * The command line for a Linux kernel: the defaults, the user's words,
 * then (with_devices) what devices add.  Malloc'd; NULL if no memory.
 */
char *vm_kernel_cmdline(struct lkvm *vm, bool with_devices);
/* Time spent paused so far, the current pause included. */
uint64_t vm_paused_ns(struct lkvm *vm);
/* The run is over: a pause in force is lifted (devices, vCPUs). */
void vm_ctl_end(struct lkvm *vm);
/*
 * The control socket (control.c), if cfg.control: opened by
 * vm_core_create (default_name: the name may get a -N suffix if taken),
 * closed when the run ends and by lkvm_destroy.
 */
int vm_control_open(struct lkvm *vm, bool default_name, char *err,
		    size_t errlen);
void vm_control_close(struct lkvm *vm);
/* One request of the control protocol (the socket's handler). */
struct ctl_request;
struct ctl_reply;
int vm_control_request(struct lkvm *vm, const struct ctl_request *req,
		       struct ctl_reply *rep, char *msg, size_t msglen);

/*
 * Ends the run with this result unless one was already recorded.  Safe
 * from any thread except inside a signal handler.
 */
void vm_request_exit(struct lkvm *vm, enum lkvm_exit_reason reason,
		     int status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Raises or lowers an interrupt line of the in-kernel irqchip. */
int vm_irq_line(struct lkvm *vm, unsigned int gsi, int level);

/* ioctl on the /dev/kvm fd with error translation. */
int kvm_check_extension(struct lkvm *vm, long cap);

/*
 * The VM without its devices: configuration checked and copied, KVM,
 * guest memory, the arch's platform.  On failure *vmp may still hold a
 * half-made VM for lkvm_destroy().
 */
int vm_core_create(const struct lkvm_config *cfg, struct lkvm **vmp,
		   char *err, size_t errlen);
/* Before the first run: the halt polling devices asked for. */
void vm_apply_halt_poll(struct lkvm *vm);

#endif
