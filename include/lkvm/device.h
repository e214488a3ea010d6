/*
 * device.h - the VM's devices as the core sees them.  The core knows no
 * particular device: each is a named object on the VM's list with
 * lifecycle hooks, started before the first vCPU runs, paused and
 * resumed on request, stopped when the run ends and freed with the VM
 * (stop and free in the reverse order of creation, so a device made
 * later, which may use an earlier one's thread, goes first).
 *
 * Devices also publish the platform resources they occupy: an MMIO
 * window, an interrupt line, a kernel command-line fragment.  Each arch
 * turns that list into device-tree nodes (arm64) or command-line text
 * (x86, which has no device tree), so arch code needs no device header.
 * The MMIO window and the level-triggered lines that devices share come
 * from the arch's pools (arch_ops.dev_mmio_*, dev_gsi*) through
 * vm_mmio_alloc() and vm_irq_alloc().
 *
 * Threads: the list, the resources and the pools are built by the
 * thread creating the VM and read-only once it runs.  The hooks run on
 * the thread calling lkvm_run/lkvm_destroy (start, stop, free) or the
 * control thread (pause, resume), never on a vCPU.
 */
#ifndef LKVM_DEVICE_H
#define LKVM_DEVICE_H

#include <stdbool.h>
#include <stdint.h>

struct lkvm;
struct lkvm_queue_stats;
struct vm_device;

struct vm_device_ops {
	const char *kind;		/* "virtio-blk", "uart8250", ... */
	/* Optional.  Before the VM first runs; threads start here. */
	int (*start)(struct vm_device *dev);
	/* Optional.  The run ended: threads stop (may be called twice). */
	void (*stop)(struct vm_device *dev);
	/* Optional.  Quiesce the device's threads, and let them go on. */
	void (*pause)(struct vm_device *dev);
	void (*resume)(struct vm_device *dev);
	/*
	 * Optional.  The figures of the device's queue qi, from any
	 * thread (lkvm stat); -ENOENT past its last queue.  The core fills
	 * device; the rest is the device's.
	 */
	int (*queue_stats)(struct vm_device *dev, unsigned int qi,
			   struct lkvm_queue_stats *st);
	/* Frees the device, including the memory holding *dev. */
	void (*free)(struct vm_device *dev);
};

struct vm_device {
	const struct vm_device_ops *ops;
	struct lkvm *vm;
	char name[16];
	bool started;
	struct vm_device *prev, *next;
};

/*
 * Puts dev at the end of vm's list under name (NULL: dev->name is set).  From then on the VM owns
 * it: lkvm_destroy() calls ops->free, also when creation fails later.
 */
void vm_device_add(struct lkvm *vm, struct vm_device *dev,
		   const struct vm_device_ops *ops, const char *name);
struct vm_device *vm_device_find(struct lkvm *vm, const char *name);

int vm_devices_start(struct lkvm *vm);
void vm_devices_stop(struct lkvm *vm);
void vm_devices_pause(struct lkvm *vm);
void vm_devices_resume(struct lkvm *vm);
void vm_devices_free(struct lkvm *vm);

/* A platform resource a device occupies (see above). */
struct vm_resource {
	char owner[16];
	uint64_t base, size;		/* MMIO window; size 0: none */
	int irq;			/* level-triggered GSI; -1: none */
	/* For a device tree: node "<dt_name>@<base>" if dt_compatible. */
	const char *dt_name;
	const char *dt_compatible;
	bool dt_dma_coherent;
	/* For a kernel that learns of the device on its command line. */
	char cmdline[96];
	struct vm_resource *next;
};

int vm_resource_add(struct lkvm *vm, const struct vm_resource *r);
/* Calls fn for each resource, in the order they were added. */
void vm_resources_each(struct lkvm *vm,
		       void (*fn)(void *opaque, const struct vm_resource *r),
		       void *opaque);
/*
 * The command-line fragments of every resource, each after a space;
 * NULL if there are none (or no memory).  The caller frees it.
 */
char *vm_resources_cmdline(struct lkvm *vm);

/* size bytes of the arch's device window, in order; 0 when it is full. */
uint64_t vm_mmio_alloc(struct lkvm *vm, uint64_t size);
/* The next of the arch's shared level-triggered lines, round-robin. */
unsigned int vm_irq_alloc(struct lkvm *vm);
/* Whether any line vm_irq_alloc() gave went to more than one device. */
bool vm_irq_shared(struct lkvm *vm);
/* A device asks for halt polling (the VM takes the largest ask). */
void vm_want_halt_poll(struct lkvm *vm, uint64_t ns);
/* A device's I/O thread, listed in lkvm_thread_stats until devices go. */
struct iothread;
int vm_iothread_register(struct lkvm *vm, struct iothread *t);

#endif
