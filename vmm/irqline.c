/*
 * irqline.c - level-triggered lines with resample (see irqline.h).
 */
#include <errno.h>
#include <linux/kvm.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "lkvm/lib/iothread.h"
#include "lkvm/irqline.h"
#include "lkvm/vm.h"

static int irq_line_irqfd(struct irq_line *l, bool assign)
{
	struct kvm_irqfd irq = {
		.fd = l->irq_fd,
		.gsi = l->gsi,
		.flags = assign ? KVM_IRQFD_FLAG_RESAMPLE :
				  KVM_IRQFD_FLAG_DEASSIGN,
		.resamplefd = l->resample_fd,
	};

	return ioctl(l->vm->vm_fd, KVM_IRQFD, &irq) < 0 ? -errno : 0;
}

static void irq_line_resample(void *opaque, uint32_t events)
{
	struct irq_line *l = opaque;
	uint64_t v;

	(void)events;
	if (read(l->resample_fd, &v, sizeof(v)) < 0)
		return;
	if (atomic_load(l->pending))
		irq_line_raise(l);
}

void irq_line_raise(struct irq_line *l)
{
	uint64_t one = 1;

	if (l->irq_fd < 0) {
		vm_irq_line(l->vm, l->gsi, 1);
		return;
	}
	if (write(l->irq_fd, &one, sizeof(one)) < 0) {
		/* saturated: the line is being raised anyway */
	}
}

void irq_line_update(struct irq_line *l)
{
	if (l->irq_fd >= 0 || atomic_load(l->pending))
		return;
	vm_irq_line(l->vm, l->gsi, 0);
	/*
	 * A device that set the word and raised the line between our load
	 * and our lowering would be lost: look again once the line is low.
	 */
	if (atomic_load(l->pending))
		vm_irq_line(l->vm, l->gsi, 1);
}

void irq_line_init_exclusive(struct irq_line *l, struct lkvm *vm,
			     unsigned int gsi, atomic_uint *pending)
{
	*l = (struct irq_line){ .vm = vm, .gsi = gsi, .pending = pending,
				.irq_fd = -1, .resample_fd = -1 };
}

int irq_line_init(struct irq_line *l, struct lkvm *vm, unsigned int gsi,
		  atomic_uint *pending, struct iothread *t)
{
	*l = (struct irq_line){ .vm = vm, .gsi = gsi, .pending = pending,
				.irq_fd = -1, .resample_fd = -1 };
	if (kvm_check_extension(vm, KVM_CAP_IRQFD_RESAMPLE) <= 0)
		return 0;
	l->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	l->resample_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->irq_fd >= 0 && l->resample_fd >= 0 && !irq_line_irqfd(l, true)) {
		if (!iothread_add(t, l->resample_fd, EPOLLIN,
				  irq_line_resample, l)) {
			l->thread = t;
			return 0;
		}
		irq_line_irqfd(l, false);
	}
	/* Still a working line, only through exits to the kernel. */
	if (l->irq_fd >= 0)
		close(l->irq_fd);
	if (l->resample_fd >= 0)
		close(l->resample_fd);
	l->irq_fd = l->resample_fd = -1;
	return -ENOTSUP;
}

void irq_line_free(struct irq_line *l)
{
	if (l->irq_fd >= 0) {
		if (l->thread)
			iothread_del(l->thread, l->resample_fd);
		irq_line_irqfd(l, false);
		close(l->irq_fd);
		close(l->resample_fd);
	}
	l->irq_fd = l->resample_fd = -1;
}
