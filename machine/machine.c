/*
 * machine.c - a VM from its configuration (see machine.h): the core
 * (vm_core_create), then every device type in the table's order, then
 * the kernel and the vCPUs.  Also the low-rate thread that devices with
 * little traffic share, run as a device of its own.
 *
 * The table's order is the guest-visible order: on virtio-mmio the n-th
 * device gets the n-th window and line; on PCI the n-th slot.
 *
 * Threads: the embedder's thread calling lkvm_create().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lkvm/arch.h"
#include "lkvm/device.h"
#include "lkvm/disk/disk.h"
#include "lkvm/lib/iothread.h"
#include "lkvm/lib/util.h"
#include "lkvm/log.h"
#include "lkvm/machine.h"
#include "lkvm/net/net.h"
#include "lkvm/vcpu.h"
#include "lkvm/virtio/device.h"
#include "lkvm/vm.h"

extern const struct device_type virtio_blk_type;
extern const struct device_type virtio_net_type;
extern const struct device_type virtio_console_type;
extern const struct device_type virtio_rng_type;
extern const struct device_type virtio_balloon_type;
extern const struct device_type virtio_vsock_type;
extern const struct device_type virtio_fs_type;

static const struct device_type *const device_types[] = {
	&virtio_blk_type,
	&virtio_net_type,
	&virtio_console_type,
	&virtio_rng_type,
	&virtio_balloon_type,
	&virtio_vsock_type,
	&virtio_fs_type,
};

/* --- the shared low-rate thread --- */

struct lowrate {
	struct vm_device dev;
	struct iothread thread;
};

static struct lowrate *to_lowrate(struct vm_device *dev)
{
	return container_of(dev, struct lowrate, dev);
}

static int lowrate_start(struct vm_device *dev)
{
	return iothread_start(&to_lowrate(dev)->thread);
}

static void lowrate_stop(struct vm_device *dev)
{
	iothread_stop(&to_lowrate(dev)->thread);
}

static void lowrate_free(struct vm_device *dev)
{
	struct lowrate *l = to_lowrate(dev);

	iothread_free(&l->thread);
	free(l);
}

static const struct vm_device_ops lowrate_ops = {
	.kind = "iothread",
	.start = lowrate_start,
	.stop = lowrate_stop,
	.free = lowrate_free,
};

/* The thread died: the devices on it will never be served again. */
static void lowrate_died(void *opaque, struct iothread *t, int err)
{
	struct lkvm *vm = opaque;

	vm_err(vm, "I/O thread %s failed: %s", t->name, strerror(-err));
	vm_request_exit(vm, LKVM_EXIT_ERROR, 1, "I/O thread %s failed: %s",
			t->name, strerror(-err));
}

struct iothread *machine_lowrate(struct machine *m, char *err, size_t errlen)
{
	struct lowrate *l;
	int ret;

	if (m->lowrate)
		return m->lowrate;
	l = calloc(1, sizeof(*l));
	if (!l) {
		errf(err, errlen, -ENOMEM, "out of memory");
		return NULL;
	}
	ret = iothread_init(&l->thread, "virtio-lo");
	if (!ret && vm_iothread_register(m->vm, &l->thread)) {
		iothread_free(&l->thread);
		ret = -ENOMEM;
	}
	if (ret) {
		free(l);
		errf(err, errlen, ret, "cannot create an I/O thread: %s",
		     strerror(-ret));
		return NULL;
	}
	iothread_on_death(&l->thread, lowrate_died, m->vm);
	if (m->vm->cfg.seccomp)
		iothread_on_start(&l->thread, virtio_thread_filter, NULL);
	/*
	 * Added before the devices that use it: stopped and freed after
	 * them (the list runs backwards for those).
	 */
	vm_device_add(m->vm, &l->dev, &lowrate_ops, "virtio-lo");
	m->lowrate = &l->thread;
	return m->lowrate;
}

/* --- device specs in lkvm_config.devices --- */

/* spec names type `name`: its options ("" if none), else NULL. */
static const char *spec_options(const char *spec, const char *name)
{
	size_t n = strlen(name);

	if (strncmp(spec, name, n))
		return NULL;
	if (spec[n] == '\0')
		return spec + n;
	return spec[n] == ',' ? spec + n + 1 : NULL;
}

const char *machine_device_spec(const struct lkvm_config *cfg,
				const char *name, unsigned int i)
{
	unsigned int k;

	for (k = 0; cfg->devices && k < cfg->ndevices; k++) {
		const char *o = cfg->devices[k] ?
				spec_options(cfg->devices[k], name) : NULL;

		if (o && i-- == 0)
			return o;
	}
	return NULL;
}

/* Every spec must name a known type and pass its check. */
static int machine_check_specs(const struct lkvm_config *cfg, char *err,
			       size_t errlen)
{
	unsigned int k, t;
	int ret;

	for (k = 0; cfg->devices && k < cfg->ndevices; k++) {
		const char *spec = cfg->devices[k], *o = NULL;

		if (!spec)
			return input_errf(err, errlen, -EINVAL,
					  "device %u: no specification", k);
		for (t = 0; t < ARRAY_SIZE(device_types) && !o; t++)
			o = spec_options(spec, device_types[t]->name);
		if (!o)
			return input_errf(err, errlen, -EINVAL,
					  "unknown device '%s'", spec);
		t--;
		if (*o && device_types[t]->arg == DEVICE_ARG_NONE)
			return input_errf(err, errlen, -EINVAL,
					  "device %s takes no options ('%s')",
					  device_types[t]->name, spec);
		if (device_types[t]->check) {
			ret = device_types[t]->check(o, err, errlen);
			if (ret)
				return ret == -ENOMEM ? ret : err_input(ret);
		}
	}
	return 0;
}

int lkvm_device_type(unsigned int i, struct lkvm_device_type_info *info)
{
	unsigned int t;

	/* Only the types with an option of the same name are listed. */
	for (t = 0; t < ARRAY_SIZE(device_types); t++) {
		if (!device_types[t]->help || i-- != 0)
			continue;
		info->name = device_types[t]->name;
		info->help = device_types[t]->help;
		info->arg = (enum lkvm_device_arg)device_types[t]->arg;
		return 0;
	}
	return -ENOENT;
}

int machine_create_devices(struct lkvm *vm, char *err, size_t errlen)
{
	struct machine m = { .vm = vm, .cfg = &vm->cfg };
	unsigned int t;
	int ret = 0;

	for (t = 0; !ret && t < ARRAY_SIZE(device_types); t++)
		ret = device_types[t]->create(&m, err, errlen);
	return ret;
}

/* The default words before the user's command line (cfg.nodefaults). */
static int machine_cmdline_defaults(struct lkvm *vm, char *err, size_t errlen)
{
	struct cmdline_defaults_in in = {
		.virtio_console = vm->cfg.console_virtio,
		.serial_args = arch_ops.serial_console_args ?
			       arch_ops.serial_console_args : "",
		.reboot_k = arch_ops.acpi && vm->cfg.no_acpi,
		.user = vm->cfg.cmdline ? vm->cfg.cmdline : "",
	};
	char buf[256];

	if (vm->cfg.nodefaults)
		return 0;
	if (vm->cfg.ndisks) {
		struct disk_spec ds;

		/* Parsed before (machine_check_config): it cannot fail. */
		if (!disk_spec_parse(vm->cfg.disks[0], &ds, err, errlen)) {
			in.root_disk_rw = !ds.ro;
			disk_spec_free(&ds);
		}
	}
	if (cmdline_defaults(&in, buf, sizeof(buf)) < 0)
		return errf(err, errlen, -E2BIG, "default command line too long");
	vm->cmdline_defaults = strdup(buf);
	return vm->cmdline_defaults ? 0 :
	       errf(err, errlen, -ENOMEM, "out of memory");
}

/*
 * What can be checked of the devices before KVM is opened: specs parse,
 * and the disks named exist and are files or block devices.  A usage
 * error then says so on any machine, with or without /dev/kvm.
 */
static int machine_check_config(const struct lkvm_config *cfg, char *err,
				size_t errlen)
{
	struct disk_spec ds;
	struct net_spec ns;
	struct stat st;
	unsigned int i;
	int ret;

	for (i = 0; i < cfg->ndisks; i++) {
		if (!cfg->disks || !cfg->disks[i])
			return input_errf(err, errlen, -EINVAL,
					  "disk %u: no specification", i);
		ret = disk_spec_parse(cfg->disks[i], &ds, err, errlen);
		if (ret)
			return ret;
		if (ds.has_fd ? fstat(ds.fd, &st) < 0 : stat(ds.path, &st) < 0)
			ret = input_errf(err, errlen, -errno, "disk %s: %s",
					 ds.path, strerror(errno));
		else if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
			ret = input_errf(err, errlen, -EINVAL,
					 "disk %s: not a regular file or block device",
					 ds.path);
		disk_spec_free(&ds);
		if (ret)
			return ret;
	}
	for (i = 0; i < cfg->nnets; i++) {
		if (!cfg->nets || !cfg->nets[i])
			return input_errf(err, errlen, -EINVAL,
					  "network %u: no specification", i);
		ret = net_spec_parse(cfg->nets[i], &ns, err, errlen);
		if (ret)
			return ret;
		net_spec_free(&ns);
	}
	return machine_check_specs(cfg, err, errlen);
}

/* A Linux kernel rather than a flat test binary, as the arch's loader sees it. */
static bool kernel_is_linux(const char *path)
{
	uint8_t head[1024];
	int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	ssize_t n = fd >= 0 ? pread(fd, head, sizeof(head), 0) : -1;

	if (fd >= 0)
		close(fd);
	return n > 0 && arch_ops.kernel_is_linux(head, n);
}

int lkvm_create(const struct lkvm_config *cfg, struct lkvm **vmp, char *err,
		size_t errlen)
{
	struct lkvm *vm = NULL;
	int ret;

	if (err && errlen)
		err[0] = '\0';
	ret = machine_check_config(cfg, err, errlen);
	if (!ret)
		ret = vm_core_create(cfg, &vm, err, errlen);
	if (!ret)
		vm->default_user_net = !cfg->nnets && !cfg->nodefaults &&
				       kernel_is_linux(cfg->kernel) &&
				       net_passt_available();
	if (!ret)
		ret = machine_create_devices(vm, err, errlen);
	if (!ret)
		ret = machine_cmdline_defaults(vm, err, errlen);
	if (!ret)
		ret = arch_ops.load_kernel(vm, err, errlen);
	if (!ret)
		ret = vcpus_create(vm, err, errlen);
	if (!ret && arch_ops.vcpus_ready)
		ret = arch_ops.vcpus_ready(vm, err, errlen);
	if (ret) {
		lkvm_destroy(vm);
		return ret;
	}
	*vmp = vm;
	return 0;
}
