/*
 * device.c - the VM's device list, the platform resources devices
 * publish, and the pools they are placed from (see device.h for the
 * rules and the threads).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lkvm/arch.h"
#include "lkvm/device.h"
#include "lkvm/lib/iothread.h"
#include "lkvm/log.h"
#include "lkvm/lib/util.h"
#include "lkvm/vm.h"

void vm_device_add(struct lkvm *vm, struct vm_device *dev,
		   const struct vm_device_ops *ops, const char *name)
{
	dev->ops = ops;
	dev->vm = vm;
	if (name)
		snprintf(dev->name, sizeof(dev->name), "%s", name);
	dev->started = false;
	dev->next = NULL;
	dev->prev = vm->devices_tail;
	if (vm->devices_tail)
		vm->devices_tail->next = dev;
	else
		vm->devices = dev;
	vm->devices_tail = dev;
}

struct vm_device *vm_device_find(struct lkvm *vm, const char *name)
{
	struct vm_device *d;

	for (d = vm->devices; d; d = d->next)
		if (!strcmp(d->name, name))
			return d;
	return NULL;
}

int vm_devices_start(struct lkvm *vm)
{
	struct vm_device *d;
	int ret;

	for (d = vm->devices; d; d = d->next) {
		if (d->started)
			continue;
		if (d->ops->start) {
			ret = d->ops->start(d);
			if (ret)
				return ret;
		}
		d->started = true;
	}
	return 0;
}

void vm_devices_stop(struct lkvm *vm)
{
	struct vm_device *d;

	for (d = vm->devices_tail; d; d = d->prev) {
		if (d->ops->stop)
			d->ops->stop(d);
		d->started = false;
	}
}

void vm_devices_pause(struct lkvm *vm)
{
	struct vm_device *d;

	for (d = vm->devices; d; d = d->next)
		if (d->started && d->ops->pause)
			d->ops->pause(d);
}

void vm_devices_resume(struct lkvm *vm)
{
	struct vm_device *d;

	for (d = vm->devices_tail; d; d = d->prev)
		if (d->started && d->ops->resume)
			d->ops->resume(d);
}

void vm_devices_free(struct lkvm *vm)
{
	struct vm_device *d, *prev;
	struct vm_resource *r;

	vm_devices_stop(vm);
	for (d = vm->devices_tail; d; d = prev) {
		prev = d->prev;
		d->ops->free(d);
	}
	vm->devices = vm->devices_tail = NULL;
	free(vm->iothreads);
	vm->iothreads = NULL;
	vm->niothreads = 0;
	while ((r = vm->resources)) {
		vm->resources = r->next;
		free(r);
	}
}

int vm_resource_add(struct lkvm *vm, const struct vm_resource *r)
{
	struct vm_resource *n = malloc(sizeof(*n)), **pp;

	if (!n)
		return -ENOMEM;
	*n = *r;
	n->next = NULL;
	for (pp = &vm->resources; *pp; pp = &(*pp)->next)
		;
	*pp = n;
	return 0;
}

void vm_resources_each(struct lkvm *vm,
		       void (*fn)(void *opaque, const struct vm_resource *r),
		       void *opaque)
{
	const struct vm_resource *r;

	for (r = vm->resources; r; r = r->next)
		fn(opaque, r);
}

char *vm_resources_cmdline(struct lkvm *vm)
{
	const struct vm_resource *r;
	size_t len = 0;
	char *s;

	for (r = vm->resources; r; r = r->next)
		if (r->cmdline[0])
			len += 1 + strlen(r->cmdline);
	if (!len)
		return NULL;
	s = malloc(len + 1);
	if (!s)
		return NULL;
	len = 0;
	for (r = vm->resources; r; r = r->next)
		if (r->cmdline[0])
			len += sprintf(s + len, " %s", r->cmdline);
	return s;
}

char *vm_kernel_cmdline(struct lkvm *vm, bool with_devices)
{
	char *extra = with_devices ? vm_resources_cmdline(vm) : NULL, *s;
	const char *user = vm->cfg.cmdline ? vm->cfg.cmdline : "";
	const char *def = vm->cmdline_defaults ? vm->cmdline_defaults : "";

	if (asprintf(&s, "%s%s%s%s", def, *def && *user ? " " : "", user,
		     extra ? extra : "") < 0)
		s = NULL;
	free(extra);
	if (s)
		vm_dbg(vm, "kernel command line: %s", s);
	return s;
}

uint64_t vm_mmio_alloc(struct lkvm *vm, uint64_t size)
{
	uint64_t base = arch_ops.dev_mmio_base + vm->dev_mmio_used;

	size = ALIGN_UP(size, 0x200);
	if (!size || size > arch_ops.dev_mmio_size - vm->dev_mmio_used)
		return 0;
	vm->dev_mmio_used += size;
	return base;
}

unsigned int vm_irq_alloc(struct lkvm *vm)
{
	return arch_ops.dev_gsi + vm->dev_irqs++ % arch_ops.dev_gsis;
}

bool vm_irq_shared(struct lkvm *vm)
{
	return vm->dev_irqs > arch_ops.dev_gsis;
}

void vm_want_halt_poll(struct lkvm *vm, uint64_t ns)
{
	vm->halt_poll_ns = MAX(vm->halt_poll_ns, ns);
}

int vm_iothread_register(struct lkvm *vm, struct iothread *t)
{
	struct iothread **n = realloc(vm->iothreads, (vm->niothreads + 1) *
				      sizeof(*n));

	if (!n)
		return -ENOMEM;
	n[vm->niothreads++] = t;
	vm->iothreads = n;
	return 0;
}

/*
 * The counters are the thread's own, read without a lock: a figure may
 * be one event stale, never torn (64-bit loads).
 */
int lkvm_thread_stats(struct lkvm *vm, unsigned int i,
		      struct lkvm_thread_stats *st)
{
	const struct iothread *t;

	if (i >= vm->niothreads)
		return -ENOENT;
	t = vm->iothreads[i];
	memset(st, 0, sizeof(*st));
	snprintf(st->name, sizeof(st->name), "%s", t->name);
	st->tid = t->started ? t->tid : 0;
	st->cpu_ns = iothread_cpu_ns(t);
	st->sleeps = t->slept;
	st->poll_hits = t->poll_hits;
	st->poll_misses = t->poll_misses;
	st->poll_ns = t->poll_ns;
	st->poll_max_ns = t->poll_max_ns;
	st->poll_adaptive = t->poll_policy == IOT_POLL_AUTO;
	return 0;
}
