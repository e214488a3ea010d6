/*
 * irqline.h - a level-triggered interrupt line that a device drives from
 * its I/O thread: an irqfd with a resample fd when KVM has them, else
 * KVM_IRQ_LINE.  The line's state is the device's `pending` word (an ISR):
 * after the guest's EOI KVM lowers the line and signals the resample fd,
 * and the line is raised again if the word is still non-zero.
 *
 * A line no other device shares can do without the resample fd: the
 * device raises it with KVM_IRQ_LINE, and the vCPU thread that clears
 * the pending word (the guest's InterruptACK, after it read the status)
 * lowers it there and then.  That saves the I/O thread a wake-up per
 * interrupt (the resample after every EOI), which under nested
 * virtualisation costs more than the ioctl.  A shared line keeps the
 * resample fd: only it knows every sharer's state.
 *
 * Threads: irq_line_raise() from any thread; the resample fd is served by
 * the I/O thread given to irq_line_init(); irq_line_update() from the vCPU
 * thread that cleared the pending word (needed only without irqfd).
 */
#ifndef LKVM_IRQLINE_H
#define LKVM_IRQLINE_H

#include <stdatomic.h>
#include <stdbool.h>

struct lkvm;
struct iothread;

struct irq_line {
	struct lkvm *vm;
	unsigned int gsi;
	atomic_uint *pending;
	int irq_fd;		/* irqfd, or -1: KVM_IRQ_LINE instead */
	int resample_fd;
	struct iothread *thread;
};

int irq_line_init(struct irq_line *l, struct lkvm *vm, unsigned int gsi,
		  atomic_uint *pending, struct iothread *t);
/* The same for a line only this device drives: no irqfd at all. */
void irq_line_init_exclusive(struct irq_line *l, struct lkvm *vm,
			     unsigned int gsi, atomic_uint *pending);
void irq_line_raise(struct irq_line *l);
/* After the pending word changed on a vCPU: lower the line if it is 0. */
void irq_line_update(struct irq_line *l);
void irq_line_free(struct irq_line *l);

#endif
