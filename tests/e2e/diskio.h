/*
 * diskio.h - one request at a time through lkvm's disk layer, for the
 * host-side disk test programs (qcow2io, qcow2crash): submit, then poll
 * the engine until the request completes.  Single-threaded.
 */
#ifndef LKVM_TESTS_DISKIO_H
#define LKVM_TESTS_DISKIO_H

#include "lkvm/disk/disk.h"
#include "lkvm/lib/aio.h"

static struct aio *engine;
static int last_err;

static void diskio_done(struct disk_req *r, int err)
{
	(void)r;
	last_err = err;
}

/* One request of `type` on buf (NULL: none); 0 or -errno. */
static int diskio(struct disk *d, enum disk_req_type type, void *buf,
		  uint64_t off, uint64_t len, bool unmap)
{
	struct iovec v = { buf, len };
	struct disk_req r = { .type = type, .iov = &v, .niov = buf ? 1 : 0,
			      .off = off, .len = len, .unmap = unmap,
			      .done = diskio_done };

	last_err = 1;
	disk_submit(d, engine, &r);
	while (last_err == 1)
		engine->ops->poll(engine);	/* runs queued completions */
	return last_err;
}

#endif
