/*
 * fs.h - virtio-fs (virtio/fs.c): a host directory shared with the
 * guest through lkvm's passthrough FUSE server.
 */
#ifndef LKVM_VIRTIO_FS_H
#define LKVM_VIRTIO_FS_H

struct iothread;
struct lkvm;
struct virtio_device;

/*
 * A virtio-fs device from a --fs specification (DIR,tag=TAG[,...]),
 * its hiprio queue served by the given thread, its request queues by
 * threads of its own.  On error *dp may hold a device to free (as
 * virtio_device_finish does).  The VM's device table uses it; so does
 * the benchmark's simulated driver.
 */
int virtio_fs_create(struct lkvm *vm, const char *opts, struct iothread *hiprio,
		     unsigned int index, struct virtio_device **dp, char *err,
		     size_t errlen);

#endif
