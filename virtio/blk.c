/*
 * blk.c - virtio-blk (virtio 1.2, section 5.2) on per-queue I/O threads.
 *
 * Each queue has its own thread ("blk0-q0", ...) and its own I/O engine
 * (io_uring where the kernel has it).  A guest kick wakes that thread
 * only; its drain pops every available chain, parses it and submits it to
 * the disk without waiting; the engine sends the whole batch to the
 * kernel when the thread next sleeps, and after each round of
 * completions the batch hook writes nothing more than the used entries
 * already pushed and interrupts the guest once.
 *
 * Threads: everything in struct blk_queue belongs to its thread; the
 * config space is read-only after creation; the disk is shared by all
 * queues and only read (fd, size, spec).  Reset runs with every queue
 * thread paused: it bumps each queue's generation so that requests still
 * in the kernel complete into nothing rather than into the new rings.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lkvm/lib/iothread.h"
#include "lkvm/lib/util.h"
#include "lkvm/log.h"
#include "lkvm/machine.h"
#include "lkvm/virtio/blk.h"
#include "lkvm/virtio/device.h"
#include "lkvm/seccomp.h"
#include "lkvm/vm.h"

#define VIRTIO_BLK_F_SIZE_MAX		1
#define VIRTIO_BLK_F_SEG_MAX		2
#define VIRTIO_BLK_F_RO			5
#define VIRTIO_BLK_F_BLK_SIZE		6
#define VIRTIO_BLK_F_FLUSH		9
#define VIRTIO_BLK_F_TOPOLOGY		10
#define VIRTIO_BLK_F_MQ			12
#define VIRTIO_BLK_F_DISCARD		13
#define VIRTIO_BLK_F_WRITE_ZEROES	14

#define BLK_SIZE_MAX			(1u << 20)	/* bytes per segment */
#define BLK_MAX_RANGE_SECTORS		(1u << 22)	/* 2 GiB per discard */
#define BLK_POLL_NS			50000	/* spin before sleeping */

/* struct virtio_blk_config, up to write_zeroes_may_unmap. */
struct blk_config {
	uint64_t capacity;
	uint32_t size_max;
	uint32_t seg_max;
	uint16_t cylinders;
	uint8_t heads;
	uint8_t sectors;
	uint32_t blk_size;
	uint8_t physical_block_exp;
	uint8_t alignment_offset;
	uint16_t min_io_size;
	uint32_t opt_io_size;
	uint8_t writeback;
	uint8_t unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
} __attribute__((packed));

struct blk_queue;

struct blk_req {
	struct disk_req dr;
	struct blk_queue *bq;
	struct blk_req *next_free;
	uint32_t gen;
	uint32_t in_len;		/* bytes the device writes */
	uint8_t *status;
	struct vq_elem elem;
	struct iovec iov[BLK_MAX_IOV];
};

struct blk_queue {
	struct virtio_blk *blk;
	struct virtio_queue *q;
	struct iothread *thread;	/* the device's thread for this queue */
	struct aio *aio;
	struct blk_req *reqs, *free;
	unsigned int inflight;
	bool starved;			/* chains left waiting for a free req */
	uint32_t gen;
	/* Counted at submission; read racily by lkvm stat. */
	uint64_t reads, writes, flushes, discards;
	uint64_t read_bytes, write_bytes;
	uint64_t io_errors;		/* the host's I/O failed */
	uint64_t guest_errors;		/* bad or unsupported requests */
};

struct virtio_blk {
	struct virtio_device dev;
	struct disk *disk;
	struct blk_limits lim;
	struct blk_config config;
	struct blk_queue *bq;
	unsigned int nqueues;
	struct log_limit warn_io;	/* host I/O errors, from any queue */
};

static struct virtio_blk *to_blk(struct virtio_device *d)
{
	return container_of(d, struct virtio_blk, dev);
}

static void blk_finish(struct blk_queue *bq, struct blk_req *r, uint8_t status)
{
	if (r->gen == bq->gen) {
		*r->status = status;
		if (status != VIRTIO_BLK_S_OK)
			virtio_queue_count_error(bq->q);
		virtio_queue_complete(bq->q, &r->elem, r->in_len);
	}
	r->next_free = bq->free;
	bq->free = r;
	OWNER_ADD(bq->inflight, -1);
}

static void blk_req_done(struct disk_req *dr, int err)
{
	struct blk_req *r = container_of(dr, struct blk_req, dr);

	if (err) {
		struct virtio_blk *blk = r->bq->blk;

		r->in_len = 1;		/* only the status is meaningful */
		r->bq->io_errors++;
		vm_warn_limited(blk->dev.vm, &blk->warn_io,
				"%s: I/O error at byte %llu: %s", blk->dev.vdev.name,
				(unsigned long long)dr->off, strerror(-err));
	}
	blk_finish(r->bq, r, err ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK);
}

static void blk_get_id(struct virtio_blk *blk, struct blk_req *r,
		       const struct blk_parsed *p)
{
	char id[BLK_ID_BYTES] = { 0 };
	uint64_t left = MIN(p->len, (uint64_t)BLK_ID_BYTES);
	const char *src = id;
	unsigned int i;

	memcpy(id, blk->disk->spec.serial,
	       strnlen(blk->disk->spec.serial, BLK_ID_BYTES));
	r->in_len = left + 1;
	for (i = 0; i < p->ndata && left; i++) {
		size_t k = MIN(left, (uint64_t)p->data[i].iov_len);

		memcpy(p->data[i].iov_base, src, k);
		src += k;
		left -= k;
	}
}

static void blk_start(struct blk_queue *bq, struct blk_req *r)
{
	struct virtio_blk *blk = bq->blk;
	struct disk_req *dr = &r->dr;
	struct blk_parsed p;

	r->gen = bq->gen;
	if (blk_parse(&r->elem, &blk->lim, &p)) {
		/* No status byte to write: hand the chain back empty. */
		bq->guest_errors++;
		virtio_queue_count_error(bq->q);
		virtio_queue_complete(bq->q, &r->elem, 0);
		r->next_free = bq->free;
		bq->free = r;
		OWNER_ADD(bq->inflight, -1);
		return;
	}
	r->status = p.status;
	r->in_len = 1;
	if (p.early != 0xff) {
		if (p.early != VIRTIO_BLK_S_OK)
			bq->guest_errors++;
		blk_finish(bq, r, p.early);
		return;
	}
	memset(dr, 0, sizeof(*dr));
	dr->iov = p.data;
	dr->niov = p.ndata;
	dr->off = p.sector * BLK_SECTOR;
	dr->len = p.len;
	dr->unmap = p.unmap;
	dr->done = blk_req_done;
	switch (p.type) {
	case VIRTIO_BLK_T_IN:
		dr->type = DISK_READ;
		r->in_len = p.len + 1;
		OWNER_ADD(bq->reads, 1);
		OWNER_ADD(bq->read_bytes, p.len);
		break;
	case VIRTIO_BLK_T_OUT:
		dr->type = DISK_WRITE;
		OWNER_ADD(bq->writes, 1);
		OWNER_ADD(bq->write_bytes, p.len);
		break;
	case VIRTIO_BLK_T_FLUSH:
		dr->type = DISK_FLUSH;
		OWNER_ADD(bq->flushes, 1);
		break;
	case VIRTIO_BLK_T_GET_ID:
		blk_get_id(blk, r, &p);
		blk_finish(bq, r, VIRTIO_BLK_S_OK);
		return;
	case VIRTIO_BLK_T_DISCARD:
		dr->type = DISK_DISCARD;
		OWNER_ADD(bq->discards, 1);
		break;
	case VIRTIO_BLK_T_WRITE_ZEROES:
		dr->type = DISK_WRITE_ZEROES;
		break;
	}
	disk_submit(blk->disk, bq->aio, dr);
}

static void blk_drain(struct virtio_device *d, struct virtio_queue *q)
{
	struct blk_queue *bq = &to_blk(d)->bq[q->index];

	for (;;) {
		struct blk_req *r = bq->free;
		int ret;

		if (!r) {
			/* Every request struct is in flight: wait for one. */
			bq->starved = true;
			return;
		}
		r->elem.iov = r->iov;
		r->elem.max_iov = BLK_MAX_IOV;
		ret = virtio_queue_take(q, &r->elem);
		if (ret <= 0)
			return;
		bq->free = r->next_free;
		OWNER_ADD(bq->inflight, 1);
		blk_start(bq, r);
	}
}

/* Busy-poll step: new requests without waiting for the kick. */
static bool blk_poll(void *opaque)
{
	struct blk_queue *bq = opaque;

	return !bq->starved && virtio_queue_poll(bq->q);
}

/* After each round of completions: one interrupt, then more work. */
static void blk_batch_done(void *opaque)
{
	struct blk_queue *bq = opaque;

	virtio_queue_publish(bq->q);
	if (bq->starved && bq->free) {
		bq->starved = false;
		virtio_queue_service(bq->q);
	}
}

/* Queue q disabled or its device reset: its requests in flight are void. */
static void blk_queue_reset(struct virtio_device *d, struct virtio_queue *q)
{
	struct blk_queue *bq = &to_blk(d)->bq[q->index];

	bq->gen++;
	bq->starved = false;
}

static unsigned int blk_inflight(struct virtio_device *d,
				 struct virtio_queue *q)
{
	return OWNER_READ(to_blk(d)->bq[q->index].inflight);
}

static void blk_queue_stats(struct virtio_device *d, struct virtio_queue *q,
			    struct lkvm_queue_stats *st)
{
	struct blk_queue *bq = &to_blk(d)->bq[q->index];

	st->reads = OWNER_READ(bq->reads);
	st->writes = OWNER_READ(bq->writes);
	st->flushes = OWNER_READ(bq->flushes);
	st->discards = OWNER_READ(bq->discards);
	st->read_bytes = OWNER_READ(bq->read_bytes);
	st->write_bytes = OWNER_READ(bq->write_bytes);
}

static void blk_config_read(struct virtio_device *d, uint32_t off, void *data,
			    unsigned int len)
{
	memcpy(data, (uint8_t *)&to_blk(d)->config + off, len);
}

static void blk_free(struct virtio_device *d)
{
	struct virtio_blk *blk = to_blk(d);
	unsigned int i;

	/* The core has stopped and freed the queue threads. */
	for (i = 0; blk->bq && i < blk->nqueues; i++) {
		struct blk_queue *bq = &blk->bq[i];

		aio_free(bq->aio);
		free(bq->reqs);
	}
	free(blk->bq);
	vm_log_limit_report(blk->dev.vm, &blk->warn_io, blk->dev.vdev.name);
	disk_close(blk->disk);
	free(blk);
}

static const struct virtio_device_ops virtio_blk_ops = {
	.name = "blk",
	.device_id = VIRTIO_ID_BLOCK,
	.nqueues = 1,
	.queue_max = BLK_QUEUE_SIZE,
	.config_size = sizeof(struct blk_config),
	.pci_class = 0x018000,		/* mass storage, other */
	.config_read = blk_config_read,
	.drain = blk_drain,
	.queue_reset = blk_queue_reset,
	.inflight = blk_inflight,
	.queue_stats = blk_queue_stats,
	.free = blk_free,
};

static void blk_fill_config(struct virtio_blk *blk)
{
	struct blk_config *c = &blk->config;
	struct disk *disk = blk->disk;
	unsigned int bs = disk->block_size;

	c->capacity = disk->size / BLK_SECTOR;
	c->size_max = BLK_SIZE_MAX;
	c->seg_max = BLK_SEG_MAX;
	c->blk_size = bs;
	c->physical_block_exp = 0;
	c->min_io_size = bs / BLK_SECTOR;
	c->opt_io_size = 0;
	c->num_queues = blk->nqueues;
	c->max_discard_sectors = BLK_MAX_RANGE_SECTORS;
	c->max_discard_seg = 1;
	c->discard_sector_alignment = bs / BLK_SECTOR;
	c->max_write_zeroes_sectors = BLK_MAX_RANGE_SECTORS;
	c->max_write_zeroes_seg = 1;
	c->write_zeroes_may_unmap = 1;
}

static int blk_queue_init(struct virtio_blk *blk, unsigned int i,
			  bool want_uring)
{
	struct blk_queue *bq = &blk->bq[i];
	unsigned int k;
	int ret;

	bq->blk = blk;
	bq->q = &blk->dev.queues[i];
	bq->thread = &blk->dev.threads[i];
	bq->reqs = calloc(BLK_QUEUE_SIZE, sizeof(*bq->reqs));
	if (!bq->reqs)
		return -ENOMEM;
	for (k = 0; k < BLK_QUEUE_SIZE; k++) {
		bq->reqs[k].bq = bq;
		bq->reqs[k].next_free = k + 1 < BLK_QUEUE_SIZE ?
					&bq->reqs[k + 1] : NULL;
	}
	bq->free = &bq->reqs[0];
	ret = aio_create(&bq->aio, bq->thread, BLK_QUEUE_SIZE, want_uring);
	if (!ret)
		ret = aio_add_batch_hook(bq->aio, blk_batch_done, bq);
	if (!ret)
		ret = aio_poll_on(bq->aio, bq->thread);
	if (!ret)
		ret = iothread_add_poller(bq->thread, blk_poll, bq);
	iothread_set_poll(bq->thread, blk->disk->spec.poll);
	if (!ret)
		ret = virtio_queue_attach(&blk->dev, i, bq->thread);
	return ret;
}

int virtio_blk_create(struct lkvm *vm, struct disk *disk, unsigned int index,
		      unsigned int nqueues, bool want_uring,
		      struct virtio_device **dp)
{
	struct virtio_blk *blk = calloc(1, sizeof(*blk));
	char name[16];
	unsigned int i;
	int ret;

	if (!blk) {
		disk_close(disk);
		return -ENOMEM;
	}
	blk->disk = disk;
	blk->nqueues = nqueues ? nqueues : 1;
	blk->lim.sectors = disk->size / BLK_SECTOR;
	blk->lim.ro = disk->spec.ro;
	snprintf(name, sizeof(name), "blk%u", index);
	ret = virtio_device_init(&blk->dev, vm, &virtio_blk_ops, name,
				 blk->nqueues);
	blk->dev.features |= 1ULL << VIRTIO_BLK_F_SIZE_MAX |
			     1ULL << VIRTIO_BLK_F_SEG_MAX |
			     1ULL << VIRTIO_BLK_F_BLK_SIZE |
			     1ULL << VIRTIO_BLK_F_FLUSH |
			     1ULL << VIRTIO_BLK_F_TOPOLOGY |
			     1ULL << VIRTIO_BLK_F_MQ |
			     (disk->spec.ro ? 1ULL << VIRTIO_BLK_F_RO :
			      1ULL << VIRTIO_BLK_F_DISCARD |
			      1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
	blk_fill_config(blk);
	if (!ret) {
		blk->bq = calloc(blk->nqueues, sizeof(*blk->bq));
		if (!blk->bq)
			ret = -ENOMEM;
	}
	if (!ret)
		ret = virtio_device_threads(&blk->dev, blk->nqueues);
	for (i = 0; !ret && i < blk->nqueues; i++)
		ret = blk_queue_init(blk, i, want_uring);
	*dp = &blk->dev;
	return ret;
}

/* Queues per disk unless the spec says: one per vCPU, up to the cores. */
static unsigned int blk_default_queues(const struct lkvm *vm)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned int n = vm->cfg.cpus;

	if (cores > 0 && n > (unsigned long)cores)
		n = cores;
	return n ? n : 1;
}

/* A disk backend's helper thread (qcow2's write-back) filters itself. */
static int blk_helper_filter(const char *name)
{
	return seccomp_enter(SECCOMP_IO, name);
}

static int blk_create_one(struct machine *m, unsigned int index, char *err,
			  size_t errlen)
{
	struct lkvm *vm = m->vm;
	struct virtio_device *d = NULL;
	struct disk_spec spec;
	struct disk *disk;
	unsigned int nq;
	char what[160];
	int ret;

	ret = disk_spec_parse(m->cfg->disks[index], &spec, err, errlen);
	if (ret)
		return ret;
	if (vm->cfg.seccomp)
		spec.thread_start = blk_helper_filter;
	ret = disk_open(&disk, &spec, err, errlen);
	nq = spec.queues ? spec.queues : blk_default_queues(vm);
	disk_spec_free(&spec);
	if (ret)
		return ret;
	snprintf(what, sizeof(what), "virtio-blk for %s", m->cfg->disks[index]);
	ret = virtio_blk_create(vm, disk, index, nq, !disk->spec.aio_sync, &d);
	ret = virtio_device_finish(d, ret, what, err, errlen);
	if (ret)
		return ret;
	/*
	 * A short halt-polling window for the vCPUs, the same as the
	 * queues' own: waking a sleeping thread costs more than a cached
	 * read.
	 */
	vm_want_halt_poll(vm, BLK_POLL_NS);
	return 0;
}

static int blk_create_all(struct machine *m, char *err, size_t errlen)
{
	unsigned int i;
	int ret;

	for (i = 0; i < m->cfg->ndisks; i++) {
		ret = blk_create_one(m, i, err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

/* -d FILE[,options]: lkvm_config.disks. */
const struct device_type virtio_blk_type = {
	.name = "blk",
	.create = blk_create_all,
};
