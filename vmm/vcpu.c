/*
 * vcpu.c - vCPU creation, the per-vCPU KVM_RUN thread and its exit
 * handling, and parking (every vCPU out of KVM_RUN and waiting, for a
 * pause or a register dump).  The kvm_run page of a vCPU is touched only
 * by its own thread, except immediate_exit, which vcpus_stop() and
 * vcpus_park() set before the kick signal.  While parked, a vCPU's fd
 * is free for ioctls from the parking thread.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "lkvm/arch.h"
#include "lkvm/log.h"
#include "lkvm/seccomp.h"
#include "lkvm/lib/util.h"
#include "lkvm/vcpu.h"
#include "lkvm/vm.h"

int vcpus_create(struct lkvm *vm, char *err, size_t errlen)
{
	int mmap_size;
	unsigned int i;
	int ret;

	mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size <= 0)
		return errf(err, errlen, -EIO, "KVM_GET_VCPU_MMAP_SIZE failed");
	vm->vcpus = calloc(vm->cfg.cpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return errf(err, errlen, -ENOMEM, "out of memory");
	for (i = 0; i < vm->cfg.cpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		void *run;

		v->vm = vm;
		v->id = i;
		v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, i);
		if (v->fd < 0)
			return errf(err, errlen, -errno,
				    "cannot create vCPU %u: %s", i,
				    strerror(errno));
		vm->ncpus++;
		run = mmap(NULL, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
			   v->fd, 0);
		if (run == MAP_FAILED)
			return errf(err, errlen, -errno,
				    "cannot map vCPU %u run area: %s", i,
				    strerror(errno));
		v->run = run;
		v->run_size = mmap_size;
		ret = arch_ops.vcpu_init(v, err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

void vcpus_destroy(struct lkvm *vm)
{
	unsigned int i;

	if (!vm->vcpus)
		return;
	for (i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		if (v->run)
			munmap(v->run, v->run_size);
		close(v->fd);
	}
	free(vm->vcpus);
	vm->vcpus = NULL;
	vm->ncpus = 0;
}

void vcpu_fail(struct vcpu *vcpu, const char *what)
{
	char dump[1536];

	dump[0] = '\0';
	arch_ops.vcpu_dump(vcpu, dump, sizeof(dump));
	vm_request_exit(vcpu->vm, LKVM_EXIT_ERROR, 1, "vCPU %u: %s\n%s",
			vcpu->id, what, dump);
}

static void vcpu_handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint64_t size = run->io.size, count = run->io.count;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool out = run->io.direction == KVM_EXIT_IO_OUT;
	uint64_t i;

	atomic_fetch_add_explicit(&v->vm->exits.io, 1, memory_order_relaxed);
	/* The data area is KVM's, but check it rather than trust it. */
	if (!size || size > 4 ||
	    !range_within(run->io.data_offset, size * count, 0, v->run_size))
		return;
	for (i = 0; i < count; i++)
		io_bus_access(&v->vm->pio, run->io.port, data + i * size, size,
			      out);
}

static void vcpu_handle_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;

	atomic_fetch_add_explicit(&v->vm->exits.mmio, 1, memory_order_relaxed);
	if (run->mmio.len == 0 || run->mmio.len > 8)
		return;
	io_bus_access(&v->vm->mmio, run->mmio.phys_addr, run->mmio.data,
		      run->mmio.len, run->mmio.is_write);
}

/* Returns true when this vCPU must stop. */
static bool vcpu_handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	char what[128];

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_handle_io(v);
		return false;
	case KVM_EXIT_MMIO:
		vcpu_handle_mmio(v);
		return false;
	case KVM_EXIT_INTR:
		atomic_fetch_add_explicit(&v->vm->exits.intr, 1,
					  memory_order_relaxed);
		return false;
	case KVM_EXIT_HLT:
		/* Only without an in-kernel irqchip; nothing will wake it. */
		vcpu_fail(v, "guest halted with no way to wake up");
		return true;
	case KVM_EXIT_SHUTDOWN:
		vcpu_fail(v, "guest triple fault (shutdown)");
		return true;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(what, sizeof(what),
			 "KVM could not enter the guest (hardware reason 0x%llx)",
			 (unsigned long long)
			 run->fail_entry.hardware_entry_failure_reason);
		vcpu_fail(v, what);
		return true;
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(what, sizeof(what),
			 "KVM internal error, suberror %u%s",
			 run->internal.suberror,
			 run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ?
			 " (instruction emulation failed)" : "");
		vcpu_fail(v, what);
		return true;
	case KVM_EXIT_SYSTEM_EVENT:
		switch (run->system_event.type) {
		case KVM_SYSTEM_EVENT_SHUTDOWN:
			vm_request_exit(v->vm, LKVM_EXIT_POWEROFF, 0,
					"guest powered off");
			return true;
		case KVM_SYSTEM_EVENT_RESET:
			vm_request_exit(v->vm, LKVM_EXIT_RESET, 0,
					"guest reset");
			return true;
		case KVM_SYSTEM_EVENT_CRASH:
			vm_request_exit(v->vm, LKVM_EXIT_PANIC, 0,
					"guest crashed");
			return true;
		default:
			break;
		}
		break;
	default:
		break;
	}
	atomic_fetch_add_explicit(&v->vm->exits.other, 1, memory_order_relaxed);
	if (arch_ops.vcpu_exit && arch_ops.vcpu_exit(v) == 0)
		return false;
	if (!atomic_load(&v->vm->result_set)) {
		snprintf(what, sizeof(what), "unhandled KVM exit reason %u",
			 run->exit_reason);
		vcpu_fail(v, what);
	}
	return true;
}

/*
 * Asked to park: count in, wait until unparked or stopping.  stopping
 * is read under park_lock, and vcpus_stop() broadcasts under it, so
 * the wake-up cannot fall between the check and the wait.
 */
static void vcpu_park(struct vcpu *v)
{
	struct lkvm *vm = v->vm;

	pthread_mutex_lock(&vm->park_lock);
	atomic_store(&v->park_req, false);
	vm->vcpus_parked++;
	pthread_cond_broadcast(&vm->park_cond);
	while (vm->parked && !atomic_load(&vm->stopping))
		pthread_cond_wait(&vm->park_cond, &vm->park_lock);
	vm->vcpus_parked--;
	pthread_cond_broadcast(&vm->park_cond);
	pthread_mutex_unlock(&vm->park_lock);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct lkvm *vm = v->vm;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, vm->cfg.kick_signal);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	/* A closed console pipe: EPIPE for console.c, not a dead process. */
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (vm->cfg.seccomp) {
		char name[16];
		int ret;

		snprintf(name, sizeof(name), "vcpu%u", v->id);
		ret = seccomp_enter(SECCOMP_VCPU, name);
		if (ret) {
			vm_request_exit(vm, LKVM_EXIT_ERROR, 1,
					"vCPU %u: cannot install its seccomp filter: %s",
					v->id, strerror(-ret));
			return NULL;
		}
		seccomp_test_violation(name);
	}

	while (!atomic_load(&vm->stopping)) {
		if (atomic_load(&v->park_req)) {
			vcpu_park(v);
			continue;
		}
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				v->run->immediate_exit = 0;
				atomic_fetch_add_explicit(&vm->exits.intr, 1,
							  memory_order_relaxed);
				continue;
			}
			vm_request_exit(vm, LKVM_EXIT_ERROR, 1,
					"vCPU %u: KVM_RUN failed: %s", v->id,
					strerror(errno));
			break;
		}
		if (vcpu_handle_exit(v))
			break;
	}
	return NULL;
}

int vcpus_start(struct lkvm *vm, char *err, size_t errlen)
{
	unsigned int i;
	char name[16];
	int ret;

	for (i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		/* A pause that came first (an embedder's) holds it too. */
		pthread_mutex_lock(&vm->park_lock);
		atomic_store(&v->park_req, vm->parked);
		pthread_mutex_unlock(&vm->park_lock);
		ret = pthread_create(&v->thread, NULL, vcpu_thread, v);
		if (ret)
			return errf(err, errlen, -ret,
				    "cannot start vCPU thread: %s",
				    strerror(ret));
		v->started = true;
		snprintf(name, sizeof(name), "vcpu%u", i);
		pthread_setname_np(v->thread, name);
	}
	return 0;
}

/* CLOCK_REALTIME ms from now, for pthread's timed waits. */
static struct timespec deadline_after_ms(unsigned int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

/* Kicks v out of KVM_RUN (or keeps it from entering). */
static void vcpu_kick(struct lkvm *vm, struct vcpu *v)
{
	v->run->immediate_exit = 1;
	pthread_kill(v->thread, vm->cfg.kick_signal);
}

int vcpus_park(struct lkvm *vm, unsigned int timeout_ms)
{
	unsigned int i, want = 0;
	struct timespec ts;
	int ret = 0;

	pthread_mutex_lock(&vm->park_lock);
	vm->parked = true;
	pthread_mutex_unlock(&vm->park_lock);
	for (i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		if (!v->started)
			continue;
		want++;
		atomic_store(&v->park_req, true);
		vcpu_kick(vm, v);
	}
	ts = deadline_after_ms(timeout_ms);
	pthread_mutex_lock(&vm->park_lock);
	while (vm->vcpus_parked < want && !atomic_load(&vm->stopping) &&
	       !ret)
		ret = -pthread_cond_timedwait(&vm->park_cond, &vm->park_lock,
					      &ts);
	if (!ret && atomic_load(&vm->stopping))
		ret = -ESRCH;
	pthread_mutex_unlock(&vm->park_lock);
	if (ret)
		vcpus_unpark(vm);
	return ret;
}

void vcpus_unpark(struct lkvm *vm)
{
	unsigned int i;

	pthread_mutex_lock(&vm->park_lock);
	vm->parked = false;
	for (i = 0; i < vm->ncpus; i++)
		atomic_store(&vm->vcpus[i].park_req, false);
	pthread_cond_broadcast(&vm->park_cond);
	pthread_mutex_unlock(&vm->park_lock);
}

void vcpus_stop(struct lkvm *vm)
{
	unsigned int i;

	atomic_store(&vm->stopping, true);
	/* Parked vCPUs wait on park_cond, not in KVM_RUN. */
	pthread_mutex_lock(&vm->park_lock);
	pthread_cond_broadcast(&vm->park_cond);
	pthread_mutex_unlock(&vm->park_lock);
	for (i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		if (!v->started)
			continue;
		/*
		 * immediate_exit covers a thread about to enter KVM_RUN; the
		 * signal, one already inside.  Repeat in case a signal
		 * arrived just before the thread entered the kernel on a
		 * KVM without immediate_exit.
		 */
		for (;;) {
			struct timespec ts = deadline_after_ms(20);

			vcpu_kick(vm, v);
			if (pthread_timedjoin_np(v->thread, NULL, &ts) == 0)
				break;
		}
		v->started = false;
	}
}
