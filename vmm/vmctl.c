/*
 * vmctl.c - what a running VM can be asked from outside its vCPUs:
 * pause and resume, a register dump, an NMI, a SysRq key, and the
 * per-queue figures lkvm stat shows.
 *
 * Threads: these run on the control loop's thread (the control socket)
 * or an embedder's, one at a time (ctl_op_lock), never on a vCPU or an
 * I/O thread: a pause waits for both kinds.  vCPU registers are read
 * and NMIs injected from here while the vCPUs are parked, when their
 * fds are free.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "lkvm/arch.h"
#include "lkvm/device.h"
#include "lkvm/lib/util.h"
#include "lkvm/log.h"
#include "lkvm/vcpu.h"
#include "lkvm/vm.h"

#define PARK_TIMEOUT_MS	5000

static bool vm_live(struct lkvm *vm)
{
	return vm->running && !atomic_load(&vm->stopping);
}

uint64_t vm_paused_ns(struct lkvm *vm)
{
	uint64_t since = __atomic_load_n(&vm->paused_since_ns,
					 __ATOMIC_RELAXED);

	return __atomic_load_n(&vm->paused_ns, __ATOMIC_RELAXED) +
	       (since ? now_ns() - since : 0);
}

/* The control loop re-arms its timeout with the pause taken off. */
static void vm_ctl_wake(struct lkvm *vm)
{
	uint64_t one = 1;

	if (vm->ctl_wake_fd >= 0 &&
	    write(vm->ctl_wake_fd, &one, sizeof(one)) < 0) {
		/* saturated: a wake-up is pending */
	}
}

int lkvm_pause(struct lkvm *vm)
{
	int ret = 0;

	pthread_mutex_lock(&vm->ctl_op_lock);
	if (!vm_live(vm))
		ret = -ESRCH;
	else if (vm->paused)
		ret = -EALREADY;
	else
		ret = vcpus_park(vm, PARK_TIMEOUT_MS);
	if (!ret) {
		__atomic_store_n(&vm->paused_since_ns, now_ns(),
				 __ATOMIC_RELAXED);
		vm_devices_pause(vm);
		vm->paused = true;
		vm_ctl_wake(vm);
		vm_info(vm, "paused");
	}
	pthread_mutex_unlock(&vm->ctl_op_lock);
	return ret;
}

/* With ctl_op_lock held; also how a run that ends while paused unwinds. */
static void vm_unpause(struct lkvm *vm)
{
	vm_devices_resume(vm);
	__atomic_store_n(&vm->paused_ns, vm_paused_ns(vm), __ATOMIC_RELAXED);
	__atomic_store_n(&vm->paused_since_ns, 0, __ATOMIC_RELAXED);
	vm->paused = false;
	vcpus_unpark(vm);
	vm_ctl_wake(vm);
}

int lkvm_resume(struct lkvm *vm)
{
	int ret = 0;

	pthread_mutex_lock(&vm->ctl_op_lock);
	if (!vm->paused) {
		ret = vm_live(vm) ? -EALREADY : -ESRCH;
	} else {
		vm_unpause(vm);
		vm_info(vm, "resumed");
	}
	pthread_mutex_unlock(&vm->ctl_op_lock);
	return ret;
}

void vm_ctl_end(struct lkvm *vm)
{
	pthread_mutex_lock(&vm->ctl_op_lock);
	if (vm->paused)
		vm_unpause(vm);
	pthread_mutex_unlock(&vm->ctl_op_lock);
}

/*
 * Runs fn on each vCPU (or the one numbered cpu, if >= 0) with every
 * vCPU parked, unless the VM is paused already.
 */
static int vm_with_vcpus_parked(struct lkvm *vm, int cpu,
				int (*fn)(struct vcpu *v, void *opaque),
				void *opaque)
{
	bool park = false;
	unsigned int i;
	int ret = 0;

	pthread_mutex_lock(&vm->ctl_op_lock);
	if (!vm_live(vm)) {
		ret = -ESRCH;
	} else if (cpu >= 0 && (unsigned int)cpu >= vm->ncpus) {
		ret = -EINVAL;
	} else if (!vm->paused) {
		ret = vcpus_park(vm, PARK_TIMEOUT_MS);
		park = !ret;
	}
	for (i = 0; !ret && i < vm->ncpus; i++)
		if (cpu < 0 || (unsigned int)cpu == i)
			ret = fn(&vm->vcpus[i], opaque);
	if (park)
		vcpus_unpark(vm);
	pthread_mutex_unlock(&vm->ctl_op_lock);
	return ret;
}

struct dump_buf {
	char *buf;
	size_t len;
};

static int vcpu_dump_one(struct vcpu *v, void *opaque)
{
	struct dump_buf *d = opaque;
	size_t pos = strlen(d->buf);

	if (pos + 1 < d->len)
		snprintf(d->buf + pos, d->len - pos, "vCPU %u:\n", v->id);
	arch_ops.vcpu_dump(v, d->buf, d->len);
	return 0;
}

int lkvm_dump_vcpus(struct lkvm *vm, char *buf, size_t len)
{
	struct dump_buf d = { buf, len };

	if (!len)
		return -EINVAL;
	buf[0] = '\0';
	return vm_with_vcpus_parked(vm, -1, vcpu_dump_one, &d);
}

static int vcpu_nmi_one(struct vcpu *v, void *opaque)
{
	(void)opaque;
	return arch_ops.vcpu_nmi(v);
}

int lkvm_inject_nmi(struct lkvm *vm, unsigned int cpu)
{
	if (!arch_ops.vcpu_nmi)
		return -ENOTSUP;
	if (cpu > (unsigned int)INT32_MAX)
		return -EINVAL;
	return vm_with_vcpus_parked(vm, (int)cpu, vcpu_nmi_one, NULL);
}

int lkvm_sysrq(struct lkvm *vm, char key)
{
	if (!vm_live(vm))
		return -ESRCH;
	if ((unsigned char)key < 0x20 || (unsigned char)key > 0x7e)
		return -EINVAL;
	return console_sysrq(&vm->console, (uint8_t)key);
}

int lkvm_queue_stats(struct lkvm *vm, unsigned int i,
		     struct lkvm_queue_stats *st)
{
	struct vm_device *d;

	for (d = vm->devices; d; d = d->next) {
		unsigned int qi;

		if (!d->ops->queue_stats)
			continue;
		for (qi = 0;; qi++) {
			memset(st, 0, sizeof(*st));
			if (d->ops->queue_stats(d, qi, st))
				break;
			if (i-- == 0) {
				snprintf(st->device, sizeof(st->device), "%s",
					 d->name);
				st->queue = qi;
				return 0;
			}
		}
	}
	return -ENOENT;
}

int lkvm_device_names(struct lkvm *vm, char *buf, size_t len)
{
	struct vm_device *d;
	size_t pos = 0;

	if (!len)
		return -EINVAL;
	buf[0] = '\0';
	for (d = vm->devices; d; d = d->next) {
		int n = snprintf(buf + pos, len - pos, "%s%s", pos ? "," : "",
				 d->name);

		if (n < 0 || (size_t)n >= len - pos)
			return -ENOSPC;
		pos += n;
	}
	return (int)pos;
}

const char *lkvm_name(struct lkvm *vm)
{
	return vm->cfg.name;
}
