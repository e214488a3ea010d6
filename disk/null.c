/*
 * null.c - a disk with no storage: reads return whatever the buffers
 * held, writes vanish, everything completes at once on the submitting
 * thread.  It measures the virtio-blk path itself (`make bench`'s null
 * rows) and is never probed for: only disk_null_open() makes one.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lkvm/disk/disk.h"

static void null_submit(struct disk *d, struct aio *a, struct disk_req *r)
{
	(void)d;
	(void)a;
	r->done(r, 0);
}

static int null_open(struct disk *d, char *err, size_t errlen)
{
	(void)d;
	(void)err;
	(void)errlen;
	return 0;
}

const struct disk_ops disk_null_ops = {
	.name = "null",
	.open = null_open,
	.submit = null_submit,
};

int disk_null_open(struct disk **dp, uint64_t size)
{
	struct disk *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->ops = &disk_null_ops;
	d->fd = -1;
	d->size = size;
	d->block_size = 512;
	d->spec.path = strdup("null");
	if (!d->spec.path) {
		free(d);
		return -ENOMEM;
	}
	*dp = d;
	return 0;
}
