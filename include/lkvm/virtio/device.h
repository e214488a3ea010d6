/*
 * device.h - a virtio device, written once and carried by any transport.
 *
 * A device fills one virtio_device_ops; a transport (mmio, later pci)
 * fills virtio_transport_ops and turns register accesses into calls on
 * the device core (virtio/device.c).
 *
 * Threads: register accesses come from vCPU threads, any number of them
 * at once; the transport takes the device's ctl_lock around each one, so
 * the control path (status, features, queue set-up and enable, config,
 * vectors) runs one access at a time.  Each queue belongs to one I/O
 * thread, which alone touches its virtqueue and runs the device's drain
 * for it.  Reset and queue set-up pause the owning threads first
 * (iothread_pause), so the rings never change under them.  I/O threads
 * never take ctl_lock (a vCPU holding it may be waiting for them to
 * pause).  status and isr are atomics: an I/O thread may set NEEDS_RESET
 * or an interrupt bit while a vCPU reads them.
 */
#ifndef LKVM_VIRTIO_DEVICE_H
#define LKVM_VIRTIO_DEVICE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "lkvm/device.h"
#include "lkvm/lib/iothread.h"
#include "lkvm/lib/util.h"
#include "lkvm/log.h"
#include "lkvm/virtio/virtqueue.h"

#define VIRTIO_STATUS_ACKNOWLEDGE	1
#define VIRTIO_STATUS_DRIVER		2
#define VIRTIO_STATUS_DRIVER_OK		4
#define VIRTIO_STATUS_FEATURES_OK	8
#define VIRTIO_STATUS_NEEDS_RESET	0x40
#define VIRTIO_STATUS_FAILED		0x80

#define VIRTIO_ISR_QUEUE		1
#define VIRTIO_ISR_CONFIG		2

#define VIRTIO_ID_NET			1
#define VIRTIO_ID_BLOCK			2
#define VIRTIO_ID_CONSOLE		3
#define VIRTIO_ID_RNG			4

#define VIRTIO_QUEUE_MAX_IOV		256

struct lkvm;
struct lkvm_queue_stats;
struct virtio_device;

/*
 * A queue's counters, kept by the data-path calls below on the queue's
 * owner thread (plain stores; readers on other threads use
 * virtio_queue_stats_read and may see a slightly old value).
 */
struct virtio_queue_stats {
	uint64_t notifies;		/* guest kicks */
	uint64_t batches;		/* drain rounds */
	uint64_t chains;		/* chains taken */
	uint64_t completed;		/* chains given back (or abandoned) */
	uint64_t bytes_out;		/* guest-readable bytes taken */
	uint64_t bytes_in;		/* bytes written for the guest */
	uint64_t irqs;			/* interrupts sent */
	uint64_t errors;		/* requests failed or dropped */
	uint64_t latency_ns;		/* summed, drain to publication */
};

struct virtio_queue {
	struct virtio_device *dev;
	unsigned int index;
	/* Registers, written by vCPU threads while the owner is paused. */
	uint16_t num;
	uint64_t desc, driver, device;
	bool ready;
	/* Owned by the I/O thread. */
	struct virtqueue vq;
	struct vq_elem elem;
	struct iovec iov[VIRTIO_QUEUE_MAX_IOV];
	int kick_fd;			/* eventfd; KVM_IOEVENTFD target */
	struct iothread *thread;
	struct virtio_queue_stats stats;
	/*
	 * Latency, at two clock reads a batch: each chain's head notes
	 * when its drain began (taken_ns), completions add that up, and
	 * publication charges them all to its own time.
	 */
	uint64_t *taken_ns;		/* queue_max entries, by head */
	uint64_t drain_ns;		/* when the current drain began */
	uint64_t lat_count, lat_sum;	/* completed, not yet published */
};

struct virtio_device_ops {
	const char *name;
	uint32_t device_id;
	unsigned int nqueues;		/* default; a device may ask more */
	uint16_t queue_max;
	uint64_t features;		/* device-specific feature bits */
	uint32_t config_size;
	uint32_t pci_class;		/* class code on virtio-pci */
	/* Its threads dial and accept host sockets (their seccomp filter). */
	bool host_sockets;
	/* Its threads open, make and remove host files (virtio-fs). */
	bool host_files;
	void (*config_read)(struct virtio_device *d, uint32_t off, void *data,
			    unsigned int len);
	void (*config_write)(struct virtio_device *d, uint32_t off,
			     const void *data, unsigned int len);
	/*
	 * On the queue's thread: take chains with virtio_queue_pop() (or
	 * virtio_queue_take()) and give them back with
	 * virtio_queue_complete(), now or later, until there is nothing
	 * more to do.  The core turns notifications off around it and
	 * publishes and interrupts once afterwards (virtio_queue_publish).
	 */
	void (*drain)(struct virtio_device *d, struct virtio_queue *q);
	/*
	 * Optional, on a vCPU thread: the driver set DRIVER_OK, so the
	 * features are final (a backend can be told what they allow).
	 */
	void (*driver_ok)(struct virtio_device *d);
	/* Device state back to power-on; queue threads are paused. */
	void (*reset)(struct virtio_device *d);
	/*
	 * Optional: queue q is being disabled, or its device reset (its
	 * thread is paused); requests still in flight on it must complete
	 * into nothing, not into the next ring.
	 */
	void (*queue_reset)(struct virtio_device *d, struct virtio_queue *q);
	/* Optional: more than starting the device's threads (the core's). */
	int (*start)(struct virtio_device *d);
	void (*stop)(struct virtio_device *d);
	/*
	 * Optional: requests of queue q the backend still holds (a disk's
	 * I/O in flight).  A VM pause waits for them to finish before it
	 * parks the queue's thread.  Read from another thread: may be
	 * a little stale, never torn.
	 */
	unsigned int (*inflight)(struct virtio_device *d,
				 struct virtio_queue *q);
	/* Optional: the device's own figures for queue q (lkvm stat). */
	void (*queue_stats)(struct virtio_device *d, struct virtio_queue *q,
			    struct lkvm_queue_stats *st);
	/* Frees the device's state and the memory holding d. */
	void (*free)(struct virtio_device *d);
};

struct virtio_transport_ops {
	const char *name;
	/* Interrupt the guest for used buffers on q, or a config change. */
	void (*signal_queue)(struct virtio_device *d, struct virtio_queue *q);
	void (*signal_config)(struct virtio_device *d);
	/*
	 * Before the VM first runs, once the interrupt controller is
	 * complete (an arm64 vGIC takes no irqfd before it is initialised).
	 */
	void (*start)(struct virtio_device *d);
	void (*free)(struct virtio_device *d);
};

struct virtio_device {
	struct vm_device vdev;		/* on the VM's list; vdev.name */
	struct lkvm *vm;
	const struct virtio_device_ops *ops;
	uint64_t features;		/* offered: device bits + core bits */
	uint64_t acked;			/* driver's choice */
	uint32_t dev_feat_sel, drv_feat_sel, queue_sel;
	atomic_uint status;
	atomic_uint isr;
	uint32_t config_gen;
	unsigned int nqueues;
	struct virtio_queue *queues;
	/* The device's own I/O threads (virtio_device_threads). */
	struct iothread *threads;
	unsigned int threads_ready;
	const struct virtio_transport_ops *tr;
	void *tr_priv;
	pthread_mutex_t ctl_lock;	/* the control path, see above */
	atomic_bool error_logged;
	struct log_limit warn_ring;	/* bad ring set-ups */
	bool tr_started;
};

int virtio_device_init(struct virtio_device *d, struct lkvm *vm,
		       const struct virtio_device_ops *ops, const char *name,
		       unsigned int nqueues);
/*
 * Puts d on the VM's device list (which owns it from then on, failure
 * or not) and on the VM's transport: a PCI function, or a virtio-mmio
 * window with its line, published for the arch to announce.
 */
int virtio_device_register(struct virtio_device *d);
/*
 * The end of a device's creation: if ret is 0, d is registered; if not,
 * d (when there is one) is freed.  Any error gets a message naming what.
 */
int virtio_device_finish(struct virtio_device *d, int ret, const char *what,
			 char *err, size_t errlen);
/* Do virtio devices sit on PCI (else on virtio-mmio windows)? */
bool virtio_use_pci(const struct lkvm *vm);
/* Gives queue qi to an I/O thread (which may serve other queues too). */
int virtio_queue_attach(struct virtio_device *d, unsigned int qi,
			struct iothread *t);
/* Its interrupt lines and threads go (the VM's device list does this). */
int virtio_device_start(struct virtio_device *d);
void virtio_device_stop(struct virtio_device *d);
/* Releases the threads, the transport and the queues, then ops->free(d). */
void virtio_device_free(struct virtio_device *d);

/* Transports hold it around every register or config access. */
void virtio_device_lock(struct virtio_device *d);
void virtio_device_unlock(struct virtio_device *d);
/*
 * Owner threads of d's queues report their death here: d needs a reset,
 * and the VM stops with an error (the queue will never be served).
 */
void virtio_watch_thread(struct virtio_device *d, struct iothread *t);
/*
 * iothread_on_start hook: the I/O thread's seccomp filter; opaque is the
 * virtio_device it serves (NULL: a shared thread, no sockets).
 */
int virtio_thread_filter(void *opaque, struct iothread *t);

/* Register-level operations the transports call (vCPU threads). */
void virtio_set_status(struct virtio_device *d, uint32_t status);
uint32_t virtio_features_word(struct virtio_device *d, uint32_t sel);
void virtio_set_features_word(struct virtio_device *d, uint32_t sel,
			      uint32_t v);
void virtio_queue_set_ready(struct virtio_device *d, struct virtio_queue *q,
			    bool ready);
struct virtio_queue *virtio_selected_queue(struct virtio_device *d);

/*
 * The data path, on the queue's owner thread, the same for every device:
 *
 * virtio_queue_take() takes the next chain into e (1; 0 if none; < 0
 * if the guest broke the ring, which the core turns into NEEDS_RESET);
 * virtio_queue_pop() does it into the queue's own element.
 *
 * virtio_queue_complete() gives a chain back with len bytes written
 * (never more than its writable part); the guest sees used->idx move
 * every few completions (vq_push) and at virtio_queue_publish(), which
 * also interrupts it if it asked (EVENT_IDX honoured): once per batch.
 */
int virtio_queue_take(struct virtio_queue *q, struct vq_elem *e);
struct vq_elem *virtio_queue_pop(struct virtio_queue *q);
/*
 * The chain taken last goes back to the ring, to be taken again later
 * (a backend that cannot take it now); only before anything else is
 * taken or completed.
 */
void virtio_queue_unpop(struct virtio_queue *q);
void virtio_queue_complete(struct virtio_queue *q, const struct vq_elem *e,
			   uint32_t len);
/* The same, for a chain of which only the head was kept. */
void virtio_queue_complete_head(struct virtio_queue *q, uint16_t head,
				uint32_t len);
void virtio_queue_publish(struct virtio_queue *q);
/* A request failed or was dropped: counted. */
static inline void virtio_queue_count_error(struct virtio_queue *q)
{
	OWNER_ADD(q->stats.errors, 1);
}
/* Runs a drain now, on the calling (owner) thread: after backend input. */
void virtio_queue_service(struct virtio_queue *q);
/*
 * A busy-poll step, on the owner thread: services q if the guest has
 * added chains; true if the drain took any.
 */
bool virtio_queue_poll(struct virtio_queue *q);
/* A copy of q's counters, from any thread. */
void virtio_queue_stats_read(const struct virtio_queue *q,
			     struct virtio_queue_stats *out);

/*
 * n I/O threads of the device's own, "NAME-q0".. (a queue each, or a
 * group of queues each): the core starts, stops and frees them with the
 * device, and a thread that dies fails the device (virtio_watch_thread).
 */
int virtio_device_threads(struct virtio_device *d, unsigned int n);

#endif
