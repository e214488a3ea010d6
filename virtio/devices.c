/*
 * devices.c - the VM's virtio devices: created from the configuration on
 * the chosen transport, with their queues on I/O threads.  Low-rate
 * devices (rng, console) share one thread.
 *
 * On virtio-mmio each device takes the next slot the arch provides, and
 * Linux guests learn about the slots from "virtio_mmio.device=" entries
 * added to the kernel command line (vm->cmdline_extra).  On virtio-pci
 * each device is a PCI function; its INTx line takes the same level GSIs
 * the mmio slots would (shared round-robin past the last one).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "lkvm/arch.h"
#include "lkvm/lib/iothread.h"
#include "lkvm/log.h"
#include "lkvm/lib/util.h"
#include "lkvm/disk/disk.h"
#include "lkvm/virtio/blk.h"
#include "lkvm/virtio/device.h"
#include "lkvm/virtio/devices.h"
#include "lkvm/virtio/mmio.h"
#include "lkvm/virtio/net.h"
#include "lkvm/virtio/pci.h"
#include "lkvm/vm.h"

static int cmdline_append(struct lkvm *vm, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int cmdline_append(struct lkvm *vm, const char *fmt, ...)
{
	size_t old = vm->cmdline_extra ? strlen(vm->cmdline_extra) : 0;
	char add[128], *s;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(add, sizeof(add), fmt, ap);
	va_end(ap);
	s = realloc(vm->cmdline_extra, old + n + 1);
	if (!s)
		return -ENOMEM;
	memcpy(s + old, add, n + 1);
	vm->cmdline_extra = s;
	return 0;
}

bool virtio_use_pci(const struct lkvm *vm)
{
	switch (vm->cfg.virtio_transport) {
	case LKVM_VIRTIO_PCI:
		return true;
	case LKVM_VIRTIO_MMIO:
		return false;
	default:
		return arch_ops.virtio_pci_default;
	}
}

static int virtio_attach_mmio(struct lkvm *vm, struct virtio_device *d,
			      unsigned int slot, unsigned int gsi)
{
	uint64_t base = arch_ops.virtio_mmio_base + slot * VIRTIO_MMIO_SIZE;
	int ret;

	ret = virtio_mmio_register(d, base, gsi);
	if (!ret && arch_ops.virtio_mmio_cmdline)
		ret = cmdline_append(vm, " virtio_mmio.device=%u@0x%llx:%u",
				     VIRTIO_MMIO_SIZE, (unsigned long long)base,
				     gsi);
	return ret;
}

/* Puts a device whose queues have threads on the VM's transport. */
static int virtio_register(struct lkvm *vm, struct virtio_device *d)
{
	unsigned int slot = vm->virtio_slots++;
	unsigned int gsi = arch_ops.virtio_gsi + slot % arch_ops.virtio_gsis;

	if (virtio_use_pci(vm))
		return virtio_pci_register(d, gsi);
	if (slot >= arch_ops.virtio_mmio_slots)
		return -ENOSPC;
	return virtio_attach_mmio(vm, d, slot, gsi);
}

static void virtio_list_add(struct lkvm *vm, struct virtio_device *d)
{
	d->next = vm->virtio_devs;
	vm->virtio_devs = d;
}

static int virtio_add_lowrate(struct lkvm *vm,
			      const struct virtio_device_ops *ops,
			      bool guest_console, char *err, size_t errlen)
{
	struct virtio_device *d;
	unsigned int i;
	char name[16];
	int ret;

	d = calloc(1, sizeof(*d));
	if (!d)
		return errf(err, errlen, -ENOMEM, "out of memory");
	snprintf(name, sizeof(name), "%s%u", ops->name, vm->virtio_slots);
	ret = virtio_device_init(d, vm, ops, NULL, name, 0);
	if (!ret && ops == &virtio_console_ops) {
		d->priv = virtio_console_priv(d, guest_console);
		if (!d->priv)
			ret = -ENOMEM;
	}
	for (i = 0; !ret && i < d->nqueues; i++)
		ret = virtio_queue_attach(d, i, vm->lowrate);
	virtio_list_add(vm, d);
	if (!ret)
		ret = virtio_register(vm, d);
	if (ret)
		return errf(err, errlen, ret, "cannot create virtio-%s: %s",
			    ops->name, ret == -ENOSPC ? "no free virtio slot" :
			    strerror(-ret));
	return 0;
}

/* Queues per disk unless the spec says: one per vCPU, up to the cores. */
static unsigned int virtio_blk_default_queues(const struct lkvm *vm)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned int n = vm->cfg.cpus;

	if (cores > 0 && n > (unsigned long)cores)
		n = cores;
	return n ? n : 1;
}

static int virtio_add_disk(struct lkvm *vm, unsigned int index, char *err,
			   size_t errlen)
{
	struct virtio_device *d = NULL;
	struct disk_spec spec;
	struct disk *disk;
	unsigned int nq;
	int ret;

	ret = disk_spec_parse(vm->cfg.disks[index], &spec, err, errlen);
	if (ret)
		return ret;
	ret = disk_open(&disk, &spec, err, errlen);
	nq = spec.queues ? spec.queues : virtio_blk_default_queues(vm);
	disk_spec_free(&spec);
	if (ret)
		return ret;
	ret = virtio_blk_create(vm, disk, index, nq, !disk->spec.aio_sync, &d);
	if (d)
		virtio_list_add(vm, d);
	if (!ret)
		ret = virtio_register(vm, d);
	if (ret)
		return errf(err, errlen, ret, "cannot create virtio-blk for %s: %s",
			    vm->cfg.disks[index], ret == -ENOSPC ?
			    "no free virtio slot" : strerror(-ret));
	return 0;
}

/* A locally administered address no other lkvm is likely to pick. */
static void virtio_net_random_mac(uint8_t *mac)
{
	uint8_t r[3] = { 0x12, 0x34, 0x56 };

	if (getrandom(r, sizeof(r), 0) != sizeof(r)) {
		/* keep the fixed fallback */
	}
	mac[0] = 0x02;
	mac[1] = 0x6c;		/* 'l' */
	mac[2] = 0x6b;		/* 'k' */
	memcpy(mac + 3, r, 3);
}

static int virtio_add_net(struct lkvm *vm, unsigned int index,
			  unsigned int slot, char *err, size_t errlen)
{
	struct virtio_device *d = NULL;
	struct net_backend *nb;
	struct net_spec spec;
	uint8_t mac[NET_MAC_LEN];
	unsigned int nq;
	int ret;

	ret = net_spec_parse(vm->cfg.nets[index], &spec, err, errlen);
	if (ret)
		return ret;
	if (spec.mode == NET_MODE_NONE) {
		net_spec_free(&spec);
		return 0;
	}
	if (spec.mac_set)
		memcpy(mac, spec.mac, sizeof(mac));
	else
		virtio_net_random_mac(mac);
	nq = spec.queues ? spec.queues : 1;
	ret = net_open(&nb, &spec, nq, err, errlen);
	if (ret)
		return ret;
	ret = virtio_net_create(vm, nb, slot, mac, vm->lowrate, &d);
	if (d)
		virtio_list_add(vm, d);
	if (!ret)
		ret = virtio_register(vm, d);
	if (ret)
		return errf(err, errlen, ret, "cannot create virtio-net on %s: %s",
			    nb->ifname, ret == -ENOSPC ?
			    "no free virtio slot" : strerror(-ret));
	vm_info(vm, "net%u: tap %s%s, guest MAC %02x:%02x:%02x:%02x:%02x:%02x, %u queue pair(s), MTU %u, receive offloads%s%s%s%s%s",
		slot, nb->ifname, nb->created ? " (created)" : "", mac[0],
		mac[1], mac[2], mac[3], mac[4], mac[5], nq, nb->mtu,
		nb->offloads & NET_OFF_CSUM ? " csum" : " none",
		nb->offloads & NET_OFF_TSO4 ? " tso4" : "",
		nb->offloads & NET_OFF_TSO6 ? " tso6" : "",
		nb->offloads & NET_OFF_TSO_ECN ? " ecn" : "",
		nb->offloads & NET_OFF_UFO ? " ufo" : "");
	return 0;
}

/* The shared low-rate thread died: its devices will not be served again. */
static void virtio_lowrate_died(void *opaque, struct iothread *t, int err)
{
	struct lkvm *vm = opaque;

	vm_err(vm, "I/O thread %s failed: %s", t->name, strerror(-err));
	vm_request_exit(vm, LKVM_EXIT_ERROR, 1, "I/O thread %s failed: %s",
			t->name, strerror(-err));
}

int virtio_devices_create(struct lkvm *vm, char *err, size_t errlen)
{
	unsigned int i;
	int ret;

	for (i = 0; i < vm->cfg.ndisks; i++) {
		ret = virtio_add_disk(vm, i, err, errlen);
		if (ret)
			return ret;
	}
	if (!vm->cfg.rng && !vm->cfg.console_virtio && !vm->cfg.nnets)
		return 0;
	/* Low-rate queues share it: rng, console, network control. */
	vm->lowrate = calloc(1, sizeof(*vm->lowrate));
	if (!vm->lowrate)
		return errf(err, errlen, -ENOMEM, "out of memory");
	ret = iothread_init(vm->lowrate, "virtio-lo");
	if (ret) {
		free(vm->lowrate);
		vm->lowrate = NULL;
		return errf(err, errlen, ret, "cannot create I/O thread");
	}
	iothread_on_death(vm->lowrate, virtio_lowrate_died, vm);
	for (i = 0; i < vm->cfg.nnets; i++) {
		ret = virtio_add_net(vm, i, i, err, errlen);
		if (ret)
			return ret;
	}
	if (vm->cfg.console_virtio) {
		ret = virtio_add_lowrate(vm, &virtio_console_ops, true, err,
					 errlen);
		if (ret)
			return ret;
	}
	if (vm->cfg.rng)
		return virtio_add_lowrate(vm, &virtio_rng_ops, false, err,
					  errlen);
	return 0;
}

int virtio_devices_start(struct lkvm *vm)
{
	struct virtio_device *d;
	int ret;

	for (d = vm->virtio_devs; d; d = d->next) {
		if (d->tr && d->tr->start && !d->tr_started) {
			d->tr->start(d);
			d->tr_started = true;
		}
		if (d->ops->start) {
			ret = d->ops->start(d);
			if (ret)
				return ret;
		}
	}
	return vm->lowrate ? iothread_start(vm->lowrate) : 0;
}

void virtio_devices_stop(struct lkvm *vm)
{
	struct virtio_device *d;

	for (d = vm->virtio_devs; d; d = d->next)
		if (d->ops->stop)
			d->ops->stop(d);
	if (vm->lowrate)
		iothread_stop(vm->lowrate);
}

void virtio_devices_free(struct lkvm *vm)
{
	struct virtio_device *d;

	virtio_devices_stop(vm);
	while ((d = vm->virtio_devs)) {
		vm->virtio_devs = d->next;
		bool self = d->self_freeing;

		virtio_device_free(d);
		if (!self)
			free(d);
	}
	if (vm->lowrate) {
		iothread_free(vm->lowrate);
		free(vm->lowrate);
		vm->lowrate = NULL;
	}
	free(vm->cmdline_extra);
	vm->cmdline_extra = NULL;
}
