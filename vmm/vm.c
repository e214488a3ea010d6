/*
 * vm.c - the VM object's core: configuration checks, KVM VM creation,
 * guest memory, the arch's platform set-up, and teardown.  Devices are
 * machine/'s business (lkvm_create lives there); the core only holds
 * them on its list (device.c).  vm_core_create() and lkvm_destroy() run
 * on the embedder's thread while no vCPU thread exists.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "lkvm/arch.h"
#include "lkvm/device.h"
#include "lkvm/log.h"
#include "lkvm/lib/util.h"
#include "lkvm/vcpu.h"
#include "lkvm/vm.h"

#define KVM_API_EXPECTED 12
#define MIN_MEM_MIB 2

void lkvm_config_init(struct lkvm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mem_mib = 256;
	cfg->control = 1;
	cfg->cpus = 1;
	cfg->console_in = -1;
	cfg->console_out = -1;
	cfg->console_log = -1;
	cfg->log_level = LKVM_LOG_WARN;
	cfg->halt_poll_us = -1;
}

enum lkvm_error_kind lkvm_error_kind(int ret)
{
	if (ret >= 0)
		return LKVM_ERROR_NONE;
	return err_is_input(ret) ? LKVM_ERROR_CONFIG : LKVM_ERROR_HOST;
}

int lkvm_error_errno(int ret)
{
	return err_errno(ret);
}

const char *lkvm_exit_reason_name(enum lkvm_exit_reason r)
{
	static const char *const names[] = {
		[LKVM_EXIT_POWEROFF] = "poweroff",
		[LKVM_EXIT_RESET] = "reset",
		[LKVM_EXIT_DEBUG] = "debug-exit",
		[LKVM_EXIT_PANIC] = "panic",
		[LKVM_EXIT_TIMEOUT] = "timeout",
		[LKVM_EXIT_STOPPED] = "stopped",
		[LKVM_EXIT_ERROR] = "error",
	};

	if ((unsigned int)r < ARRAY_SIZE(names) && names[r])
		return names[r];
	return "unknown";
}

void vm_request_exit(struct lkvm *vm, enum lkvm_exit_reason reason,
		     int status, const char *fmt, ...)
{
	uint64_t one = 1;
	va_list ap;

	if (atomic_exchange(&vm->result_claimed, true))
		return;
	vm->result.reason = reason;
	vm->result.status = status;
	va_start(ap, fmt);
	vsnprintf(vm->result.message, sizeof(vm->result.message), fmt, ap);
	va_end(ap);
	/* Whoever sees result_set sees the whole result. */
	atomic_store(&vm->result_set, true);
	atomic_store(&vm->stopping, true);
	if (write(vm->stop_fd, &one, sizeof(one)) < 0) {
		/* the control loop also polls 'stopping' */
	}
}

void lkvm_stop(struct lkvm *vm)
{
	uint64_t one = 1;

	/* Only write(): this must be async-signal-safe. */
	if (write(vm->stop_fd, &one, sizeof(one)) < 0) {
		/* saturated counter: a wake-up is already pending */
	}
}

int vm_irq_line(struct lkvm *vm, unsigned int gsi, int level)
{
	struct kvm_irq_level irq = {
		.irq = arch_ops.irq_line_id ? arch_ops.irq_line_id(gsi) : gsi,
		.level = level,
	};

	return ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0 ? -errno : 0;
}

int kvm_check_extension(struct lkvm *vm, long cap)
{
	int ret;

	if (vm->cfg.no_fastpath &&
	    (cap == KVM_CAP_IOEVENTFD || cap == KVM_CAP_IRQFD ||
	     cap == KVM_CAP_IRQFD_RESAMPLE))
		return 0;
	ret = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, cap);

	return ret < 0 ? 0 : ret;
}

void lkvm_stats(struct lkvm *vm, struct lkvm_stats *st)
{
	struct guest_memory_usage use;

	memset(st, 0, sizeof(*st));
	st->exits_io = atomic_load(&vm->exits.io);
	st->exits_mmio = atomic_load(&vm->exits.mmio);
	st->exits_intr = atomic_load(&vm->exits.intr);
	st->exits_other = atomic_load(&vm->exits.other);
	st->exits_notify = atomic_load(&vm->exits.notify);
	st->pio_unhandled = __atomic_load_n(&vm->pio.unhandled,
					    __ATOMIC_RELAXED);
	st->mmio_unhandled = __atomic_load_n(&vm->mmio.unhandled,
					     __ATOMIC_RELAXED);
	st->ram_bytes = guest_memory_size(&vm->mem);
	guest_memory_usage(&vm->mem, &use);
	st->ram_huge_bytes = use.huge_bytes;
	st->ram_rss_bytes = use.rss_bytes;
	st->ram_backing = guest_memory_backing_name(&vm->mem);
	if (vm->run_start_ns) {
		st->uptime_ms = (now_ns() - vm->run_start_ns) / 1000000;
		st->paused_ms = vm_paused_ns(vm) / 1000000;
	}
	st->paused = vm->paused;
}

static char *strdup_or_null(const char *s, bool *fail)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*fail = true;
	return d;
}

/* A copy of a list of n strings (NULL if none). */
static char **strdup_list(const char *const *list, unsigned int n, bool *fail)
{
	char **d;
	unsigned int i;

	if (!n)
		return NULL;
	d = calloc(n, sizeof(*d));
	if (!d) {
		*fail = true;
		return NULL;
	}
	for (i = 0; i < n; i++)
		d[i] = strdup_or_null(list[i], fail);
	return d;
}

static void free_list(char **list, unsigned int n)
{
	unsigned int i;

	for (i = 0; list && i < n; i++)
		free(list[i]);
	free(list);
}

/* Own copies of every string, so the caller's config may go away. */
static int vm_copy_config(struct lkvm *vm, const struct lkvm_config *cfg)
{
	bool fail = false;

	vm->cfg = *cfg;
	if (cfg->name) {
		vm->cfg.name = strdup_or_null(cfg->name, &fail);
	} else {
		char name[32];

		/* kvmtool's default, which lkvm list shows. */
		snprintf(name, sizeof(name), "guest-%d", (int)getpid());
		vm->cfg.name = strdup_or_null(name, &fail);
	}
	vm->cfg.control_dir = strdup_or_null(cfg->control_dir, &fail);
	vm->cfg.kernel = strdup_or_null(cfg->kernel, &fail);
	vm->cfg.initrd = strdup_or_null(cfg->initrd, &fail);
	vm->cfg.cmdline = strdup_or_null(cfg->cmdline, &fail);
	vm->cfg.dump_dtb = strdup_or_null(cfg->dump_dtb, &fail);
	vm->cfg.dump_acpi = strdup_or_null(cfg->dump_acpi, &fail);
	vm->cfg.hugetlbfs = strdup_or_null(cfg->hugetlbfs, &fail);
	vm->cfg_lists[0] = strdup_list(cfg->disks, cfg->ndisks, &fail);
	vm->cfg.disks = (const char **)vm->cfg_lists[0];
	vm->cfg_lists[1] = strdup_list(cfg->nets, cfg->nnets, &fail);
	vm->cfg.nets = (const char **)vm->cfg_lists[1];
	vm->cfg_lists[2] = strdup_list(cfg->devices, cfg->ndevices, &fail);
	vm->cfg.devices = (const char **)vm->cfg_lists[2];
	return fail ? -ENOMEM : 0;
}

/* A console descriptor the embedder hands over: none (-1) or open. */
static int vm_check_fd(int fd, const char *what, char *err, size_t errlen)
{
	if (fd >= 0 && fcntl(fd, F_GETFD) < 0)
		return input_errf(err, errlen, -EBADF,
				  "%s %d is not an open file descriptor",
				  what, fd);
	return 0;
}

static int vm_check_config(const struct lkvm_config *cfg, char *err,
			   size_t errlen)
{
	struct sysinfo si;
	uint64_t host_mib;
	int ret;

	if (!cfg->kernel)
		return input_errf(err, errlen, -EINVAL, "no kernel given");
	if (cfg->mem_mib < MIN_MEM_MIB)
		return input_errf(err, errlen, -EINVAL,
				  "memory size %llu MiB is below the minimum of %u MiB",
				  (unsigned long long)cfg->mem_mib, MIN_MEM_MIB);
	if (sysinfo(&si) == 0) {
		host_mib = (uint64_t)si.totalram * si.mem_unit / MiB;
		if (cfg->mem_mib > host_mib)
			return input_errf(err, errlen, -E2BIG,
					  "memory size %llu MiB is more than the host's %llu MiB",
					  (unsigned long long)cfg->mem_mib,
					  (unsigned long long)host_mib);
	}
	if (cfg->cpus < 1 || cfg->cpus > arch_ops.max_cpus)
		return input_errf(err, errlen, -EINVAL,
				  "%u CPUs requested; %s supports 1 to %u",
				  cfg->cpus, arch_ops.name, arch_ops.max_cpus);
	if (cfg->ram_backing == LKVM_RAM_HUGETLBFS && !cfg->hugetlbfs)
		return input_errf(err, errlen, -EINVAL,
				  "hugetlbfs backing needs the mount's path");
	if (cfg->halt_poll_us > LKVM_HALT_POLL_MAX_US)
		return input_errf(err, errlen, -EINVAL,
				  "halt polling of %d us is more than 1 s",
				  cfg->halt_poll_us);
	if (cfg->dump_dtb && !arch_ops.device_tree)
		return input_errf(err, errlen, -EINVAL,
				  "--dump-dtb applies to arm64 only (%s has no device tree)",
				  arch_ops.name);
	if (cfg->dump_acpi && (!arch_ops.acpi || cfg->no_acpi))
		return input_errf(err, errlen, -EINVAL,
				  "--dump-acpi needs ACPI tables (x86, without --no-acpi)");
	ret = vm_check_fd(cfg->console_out, "console_out", err, errlen);
	if (!ret)
		ret = vm_check_fd(cfg->console_log, "console_log", err, errlen);
	if (!ret)
		ret = vm_check_fd(cfg->console_in, "console_in", err, errlen);
	if (ret)
		return ret;
	if (cfg->kick_signal &&
	    (cfg->kick_signal < SIGRTMIN || cfg->kick_signal > SIGRTMAX))
		return input_errf(err, errlen, -EINVAL,
				  "kick_signal %d is not a real-time signal (%d to %d)",
				  cfg->kick_signal, SIGRTMIN, SIGRTMAX);
	if (cfg->irqchip != LKVM_IRQCHIP_AUTO && !arch_ops.irqchip_choice)
		return input_errf(err, errlen, -EINVAL,
				  "--irqchip applies to arm64 only");
	if (cfg->irqchip > LKVM_IRQCHIP_GICV3_ITS)
		return input_errf(err, errlen, -EINVAL, "unknown irqchip %d",
				  (int)cfg->irqchip);
	if (cfg->virtio_transport > LKVM_VIRTIO_PCI)
		return input_errf(err, errlen, -EINVAL, "unknown virtio transport %d",
				  (int)cfg->virtio_transport);
	return 0;
}

static int vm_open_kvm(struct lkvm *vm, char *err, size_t errlen)
{
	int ret, max;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return errf(err, errlen, -errno, "cannot open /dev/kvm: %s",
			    strerror(errno));
	ret = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (ret != KVM_API_EXPECTED)
		return errf(err, errlen, -ENOTSUP,
			    "/dev/kvm speaks API version %d, lkvm needs %d",
			    ret, KVM_API_EXPECTED);
	do {
		vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	} while (vm->vm_fd < 0 && errno == EINTR);
	if (vm->vm_fd < 0)
		return errf(err, errlen, -errno, "KVM_CREATE_VM failed: %s",
			    strerror(errno));
	max = kvm_check_extension(vm, KVM_CAP_MAX_VCPUS);
	if (!max)
		max = kvm_check_extension(vm, KVM_CAP_NR_VCPUS);
	if (max && vm->cfg.cpus > (unsigned int)max)
		return errf(err, errlen, -EINVAL,
			    "%u CPUs requested; KVM here allows at most %d",
			    vm->cfg.cpus, max);
	return 0;
}

/*
 * Halt polling makes an idle vCPU spin after each wake-up; a VMM for
 * many small guests would rather give the CPU back.  Devices that gain
 * from a short window (a disk: waking a sleeping thread costs more than
 * a cached read) ask for it with vm_want_halt_poll(); the rest get none.
 */
void vm_apply_halt_poll(struct lkvm *vm)
{
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_HALT_POLL,
		.args = { vm->cfg.halt_poll_us >= 0 ?
			  (uint64_t)vm->cfg.halt_poll_us * 1000 :
			  vm->halt_poll_ns },
	};

	if (kvm_check_extension(vm, KVM_CAP_HALT_POLL))
		ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap);
}

static int vm_init_memory(struct lkvm *vm, char *err, size_t errlen)
{
	struct mem_region r[GUEST_MEM_MAX_SLOTS];
	struct guest_mem_opts o = {
		.backing = vm->cfg.ram_backing,
		.hugetlbfs = vm->cfg.hugetlbfs,
	};
	unsigned int n;
	int ret;

	n = arch_ops.mem_layout(vm->cfg.mem_mib * MiB, r, ARRAY_SIZE(r));
	ret = guest_memory_init(&vm->mem, r, n, &o);
	if (ret && o.backing == LKVM_RAM_HUGETLBFS)
		return input_errf(err, errlen, ret,
				  "cannot back %llu MiB of guest memory with hugetlbfs '%s': %s (it must be a hugetlbfs mount with enough free huge pages, and the size a multiple of its page size)",
				  (unsigned long long)vm->cfg.mem_mib,
				  vm->cfg.hugetlbfs, strerror(-ret));
	if (ret)
		return errf(err, errlen, ret,
			    "cannot map %llu MiB of guest memory: %s",
			    (unsigned long long)vm->cfg.mem_mib,
			    strerror(-ret));
	ret = guest_memory_register(&vm->mem, vm->vm_fd);
	if (ret)
		return errf(err, errlen, ret,
			    "KVM refused the guest memory: %s", strerror(-ret));
	return 0;
}

int vm_core_create(const struct lkvm_config *cfg, struct lkvm **vmp,
		   char *err, size_t errlen)
{
	struct lkvm *vm;
	int ret;

	*vmp = NULL;
	if (err && errlen)
		err[0] = '\0';
	ret = vm_check_config(cfg, err, errlen);
	if (ret)
		return ret;
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return errf(err, errlen, -ENOMEM, "out of memory");
	*vmp = vm;
	vm->kvm_fd = vm->vm_fd = vm->stop_fd = vm->ctl_wake_fd = -1;
	pthread_mutex_init(&vm->ctl_op_lock, NULL);
	pthread_mutex_init(&vm->park_lock, NULL);
	pthread_cond_init(&vm->park_cond, NULL);
	vm->console.space_fd = -1;
	io_bus_init(&vm->pio);
	io_bus_init(&vm->mmio);
	ret = console_init(&vm->console, vm, cfg->console_in, cfg->console_out,
			   cfg->console_log, cfg->console_escape);
	if (ret)
		return errf(err, errlen, ret, "cannot set up the console");
	vm->console.cb = cfg->console_cb;
	vm->console.cb_opaque = cfg->console_cb_opaque;
	ret = vm_copy_config(vm, cfg);
	if (ret)
		return errf(err, errlen, ret, "out of memory");
	vm->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vm->ctl_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_fd < 0 || vm->ctl_wake_fd < 0)
		return errf(err, errlen, -errno, "eventfd: %s", strerror(errno));
	ret = vm_open_kvm(vm, err, errlen);
	if (ret)
		return ret;
	irq_routes_init(vm);
	ret = vm_init_memory(vm, err, errlen);
	if (ret)
		return ret;
	ret = arch_ops.vm_init(vm, err, errlen);
	if (ret)
		return ret;
	return vm_control_open(vm, !cfg->name, err, errlen);
}

void lkvm_destroy(struct lkvm *vm)
{
	if (!vm)
		return;
	vm_control_close(vm);
	vcpus_destroy(vm);
	vm_devices_free(vm);
	if (vm->pci.vm)
		pci_bus_free(&vm->pci);
	irq_routes_free(vm);
	arch_ops.vm_free(vm);
	io_bus_free(&vm->pio);
	io_bus_free(&vm->mmio);
	guest_memory_free(&vm->mem);
	console_free(&vm->console);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->stop_fd >= 0)
		close(vm->stop_fd);
	if (vm->ctl_wake_fd >= 0)
		close(vm->ctl_wake_fd);
	pthread_mutex_destroy(&vm->ctl_op_lock);
	pthread_mutex_destroy(&vm->park_lock);
	pthread_cond_destroy(&vm->park_cond);
	free_list(vm->cfg_lists[0], vm->cfg.ndisks);
	free_list(vm->cfg_lists[1], vm->cfg.nnets);
	free_list(vm->cfg_lists[2], vm->cfg.ndevices);
	free((char *)vm->cfg.name);
	free((char *)vm->cfg.control_dir);
	free(vm->cmdline_defaults);
	free((char *)vm->cfg.dump_dtb);
	free((char *)vm->cfg.dump_acpi);
	free((char *)vm->cfg.hugetlbfs);
	free((char *)vm->cfg.kernel);
	free((char *)vm->cfg.initrd);
	free((char *)vm->cfg.cmdline);
	free(vm);
}
