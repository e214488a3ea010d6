/*
 * fs.c - virtio-fs (virtio 1.2, section 5.11): the virtqueue transport
 * of lkvm's FUSE server (fs/fuse_server.h), with the passthrough
 * filesystem (fs/passthrough.c) behind it.  `--fs DIR,tag=TAG[,ro]
 * [,queues=N][,cache=auto|always|never][,cpus=LIST]`.
 *
 * A request is one chain: the readable part holds the FUSE header, the
 * opcode's fixed body and its variable part (names, a WRITE's data); the
 * writable part takes the reply's header, then its payload (a READ's
 * data, straight from the host file).  Only the header and fixed body
 * are copied; the variable parts are handed to the filesystem as iovecs
 * into guest memory, so data moves once, between the file and the
 * guest.
 *
 * Threads: each request queue (1..N) has its own I/O thread and its own
 * io_uring engine: a kick wakes it, its drain hands every chain to the
 * filesystem, data I/O completes on the same thread, and after each
 * round of completions one interrupt says so (the batch hook).
 * Requests that may block (lookups, directory listings, renames, ...)
 * go to the queue's own helper threads (fs/fuse_pool.c), so a slow one
 * does not hold up the reads behind it; their replies are written by
 * the helper and finished on the queue's thread.
 * Everything in struct vfs_queue belongs to its thread.  The hiprio
 * queue (0: FORGET, BATCH_FORGET, INTERRUPT, which get no reply) runs on
 * the low-rate thread.  The filesystem's tables are the only state the
 * queues share (fs_table.h: lock-free lookups by id).  Reset runs with
 * the threads paused and bumps each queue's generation, so that I/O
 * still in the kernel completes into nothing.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lkvm/fs/fuse_msg.h"
#include "lkvm/fs/fuse_pool.h"
#include "lkvm/fs/fuse_server.h"
#include "lkvm/fs/passthrough.h"
#include "lkvm/lib/aio.h"
#include "lkvm/lib/iothread.h"
#include "lkvm/lib/util.h"
#include "lkvm/log.h"
#include "lkvm/machine.h"
#include "lkvm/seccomp.h"
#include "lkvm/virtio/device.h"
#include "lkvm/virtio/fs.h"
#include "lkvm/vm.h"

#define VIRTIO_ID_FS		26
#define FS_QUEUE_SIZE		128
/* A largest READ or WRITE: max_pages pages, the headers, some slack. */
#define FS_MAX_IOV		(FS_MAX_WRITE / 4096 + 8)
#define FS_MAX_QUEUES		16
#define FS_TAG_MAX		36
/*
 * A chain may not be longer than the queue (virtio 1.2, 2.7.5.3.1, even
 * through an indirect table), and older guests (Linux before 6.11) do
 * not cap their requests to that themselves: max_pages leaves room for
 * the headers.
 */
#define FS_MAX_WRITE		((FS_QUEUE_SIZE - 8) * 4096u)
#define FS_HDR_MAX		(sizeof(struct fuse_in_header) + 128)

struct fs_config {
	char tag[FS_TAG_MAX];
	uint32_t num_request_queues;
} __attribute__((packed));

struct vfs_queue;

/* A chain being served: the request the filesystem sees, and its iovecs. */
struct vfs_slot {
	struct fuse_req r;
	struct vfs_queue *vq;
	struct vfs_slot *next;
	uint32_t gen;
	struct vq_elem elem;
	struct iovec iov[FS_MAX_IOV];
	struct iovec in[FS_MAX_IOV];
	struct iovec out[FS_MAX_IOV];
	uint8_t hdr[FS_HDR_MAX] __attribute__((aligned(8)));
	uint32_t reply_len;		/* what vfs_send wrote */
	int reply_err;
};

struct vfs_queue {
	struct fuse_queue fq;		/* index and engine, for the fs */
	struct virtio_fs *fs;
	struct virtio_queue *q;
	struct iothread *thread;
	struct vfs_slot *slots, *free;
	uint8_t *priv;
	unsigned int inflight;
	bool starved;
	uint32_t gen;
	uint64_t requests, errors;	/* read racily by lkvm stat */
};

struct virtio_fs {
	struct virtio_device dev;
	struct pfs *pfs;
	struct fs_config config;
	unsigned int nreq;		/* request queues */
	struct vfs_queue *vq;		/* [0] hiprio, then the request queues */
	cpu_set_t cpus;
	bool pin;
};

static struct virtio_fs *to_fs(struct virtio_device *d)
{
	return container_of(d, struct virtio_fs, dev);
}

static void slot_free(struct vfs_queue *vq, struct vfs_slot *s)
{
	s->next = vq->free;
	vq->free = s;
	OWNER_ADD(vq->inflight, -1);
}

/* ---- replies ---- */

/*
 * The reply into the chain's writable part (guest memory; any thread).
 * A reset in between would move the rings under a helper, so a reset
 * first drains the pool (vfs_queue_reset).
 */
static void vfs_send(struct fuse_req *r, int err, const struct iovec *iov,
		     unsigned int n, size_t len)
{
	struct vfs_slot *s = container_of(r, struct vfs_slot, r);
	struct fuse_out_header oh = { .error = err, .unique = r->unique };
	const struct iovec *w = s->iov + s->elem.nout;
	size_t plen = err ? 0 : iov ? iov_total(iov, n) : len;
	unsigned int i;
	size_t at;

	if (plen > r->out_len) {	/* the guest's buffer is too small */
		oh.error = -EIO;
		plen = 0;
	}
	oh.len = sizeof(oh) + plen;
	buf_to_iov(w, s->elem.nin, 0, &oh, sizeof(oh));
	for (i = 0, at = sizeof(oh); iov && plen && i < n; i++) {
		buf_to_iov(w, s->elem.nin, at, iov[i].iov_base, iov[i].iov_len);
		at += iov[i].iov_len;
	}
	s->reply_len = oh.len;
	s->reply_err = oh.error;
}

/* On the queue's thread: the chain goes back (empty if not replied). */
static void vfs_finish(struct fuse_req *r, bool replied)
{
	struct vfs_slot *s = container_of(r, struct vfs_slot, r);
	struct vfs_queue *vq = s->vq;

	if (s->gen == vq->gen) {
		if (replied && s->reply_err) {
			vq->errors++;
			virtio_queue_count_error(vq->q);
		}
		virtio_queue_complete(vq->q, &s->elem, replied ? s->reply_len : 0);
	}
	slot_free(vq, s);
}

static void vfs_reply(struct fuse_req *r, int err, const struct iovec *iov,
		      unsigned int n, size_t len)
{
	vfs_send(r, err, iov, n, len);
	vfs_finish(r, true);
}

/* No reply: the chain goes back as it came. */
static void vfs_drop(struct fuse_req *r)
{
	vfs_finish(r, false);
}

static const struct fuse_transport_ops vfs_transport = {
	.reply = vfs_reply,
	.drop = vfs_drop,
	.send = vfs_send,
	.finish = vfs_finish,
};

/* ---- requests ---- */

/* INIT: the version and what the filesystem does. */
static void vfs_init(struct virtio_fs *fs, struct fuse_req *r)
{
	struct fuse_init_out out;

	if (fuse_init_answer(r->m.body, FS_MAX_WRITE, FS_QUEUE_SIZE,
			     &pfs_fuse_ops, fs->pfs, &out))
		fuse_reply_err(r, -EPROTO);
	else
		fuse_reply(r, 0, &out, sizeof(out));
}

/*
 * Reads a chain into a request: the header and fixed body copied, the
 * rest as iovecs.  Returns 0 to go on, 1 if it was answered here (a
 * malformed request with an address to answer to), -1 if it could only
 * be handed back.
 */
static int vfs_parse(struct vfs_slot *s)
{
	struct fuse_req *r = &s->r;
	struct fuse_in_header *h = (void *)s->hdr;
	size_t fixed, hl = sizeof(*h);
	struct vq_elem *e = &s->elem;

	if (e->out_bytes < hl ||
	    iov_to_buf(s->iov, e->nout, 0, h, hl) != hl)
		return -1;
	r->unique = h->unique;
	r->opcode = h->opcode;
	r->m.h = h;
	r->m.body = s->hdr + hl;
	/* Where the reply goes: its header, then the payload. */
	r->n_out = e->in_bytes > sizeof(struct fuse_out_header) ?
		   iov_slice(s->out, FS_MAX_IOV, s->iov + e->nout, e->nin,
			     sizeof(struct fuse_out_header), SIZE_MAX) : 0;
	r->out = s->out;
	r->out_len = e->in_bytes > sizeof(struct fuse_out_header) ?
		     e->in_bytes - sizeof(struct fuse_out_header) : 0;
	if (e->in_bytes < sizeof(struct fuse_out_header) &&
	    r->opcode != FUSE_FORGET && r->opcode != FUSE_BATCH_FORGET &&
	    r->opcode != FUSE_INTERRUPT)
		return -1;	/* no room even for an error */
	fixed = fuse_msg_fixed_size(h->opcode);
	if (h->len != e->out_bytes || e->out_bytes - hl < fixed ||
	    fixed > FS_HDR_MAX - hl) {
		fuse_reply_err(r, -EINVAL);
		return 1;
	}
	iov_to_buf(s->iov, e->nout, hl, s->hdr + hl, fixed);
	r->m.body_len = fixed;
	r->n_in = iov_slice(s->in, FS_MAX_IOV, s->iov, e->nout, hl + fixed,
			    SIZE_MAX);
	r->in = s->in;
	r->in_len = e->out_bytes - hl - fixed;
	if (iov_total(r->in, r->n_in) != r->in_len) {
		fuse_reply_err(r, -EINVAL);	/* more pieces than we take */
		return 1;
	}
	return 0;
}

static void vfs_start(struct vfs_queue *vq, struct vfs_slot *s)
{
	struct virtio_fs *fs = vq->fs;
	struct fuse_req *r = &s->r;
	int ret;

	s->gen = vq->gen;
	ret = vfs_parse(s);
	if (ret < 0) {
		vq->errors++;
		virtio_queue_count_error(vq->q);
		virtio_queue_complete(vq->q, &s->elem, 0);
		slot_free(vq, s);
		return;
	}
	if (ret)
		return;
	vq->requests++;
	/* hiprio: what the spec puts there, and nothing that does I/O. */
	if (!vq->fq.aio && r->opcode != FUSE_FORGET &&
	    r->opcode != FUSE_BATCH_FORGET && r->opcode != FUSE_INTERRUPT) {
		fuse_reply_err(r, -EINVAL);
		return;
	}
	if (r->opcode == FUSE_INIT)
		vfs_init(fs, r);
	else
		pfs_fuse_ops.request(fs->pfs, r);
}

static void vfs_drain(struct virtio_device *d, struct virtio_queue *q)
{
	struct vfs_queue *vq = &to_fs(d)->vq[q->index];

	for (;;) {
		struct vfs_slot *s = vq->free;
		int ret;

		if (!s) {
			vq->starved = true;	/* every slot is in flight */
			return;
		}
		s->elem.iov = s->iov;
		s->elem.max_iov = FS_MAX_IOV;
		ret = virtio_queue_take(q, &s->elem);
		if (ret <= 0)
			return;
		vq->free = s->next;
		OWNER_ADD(vq->inflight, 1);
		vfs_start(vq, s);
	}
}

/* Busy-poll step: new requests without waiting for the kick (as blk). */
static bool vfs_poll(void *opaque)
{
	struct vfs_queue *vq = opaque;

	return !vq->starved && virtio_queue_poll(vq->q);
}

/* After each round of completions: one interrupt, then more work. */
static void vfs_batch_done(void *opaque)
{
	struct vfs_queue *vq = opaque;

	virtio_queue_publish(vq->q);
	if (vq->starved && vq->free) {
		vq->starved = false;
		virtio_queue_service(vq->q);
	}
}

static void vfs_queue_reset(struct virtio_device *d, struct virtio_queue *q)
{
	struct vfs_queue *vq = &to_fs(d)->vq[q->index];

	/* Helpers write replies into guest memory: none may be left. */
	if (vq->fq.pool)
		fuse_pool_drain(vq->fq.pool);
	vq->gen++;
	vq->starved = false;
}

static unsigned int vfs_inflight(struct virtio_device *d,
				 struct virtio_queue *q)
{
	return OWNER_READ(to_fs(d)->vq[q->index].inflight);
}

static void vfs_queue_stats(struct virtio_device *d, struct virtio_queue *q,
			    struct lkvm_queue_stats *st)
{
	struct vfs_queue *vq = &to_fs(d)->vq[q->index];

	st->reads = OWNER_READ(vq->requests);
}

static void vfs_config_read(struct virtio_device *d, uint32_t off, void *data,
			    unsigned int len)
{
	memcpy(data, (uint8_t *)&to_fs(d)->config + off, len);
}

/* cpus=: the request queues' threads, pinned once they run. */
static int vfs_dev_start(struct virtio_device *d)
{
	struct virtio_fs *fs = to_fs(d);
	unsigned int i;
	int ret;

	for (i = 0; fs->pin && i < fs->nreq; i++) {
		ret = pthread_setaffinity_np(d->threads[i].thread,
					     sizeof(fs->cpus), &fs->cpus);
		if (ret)
			return -ret;
	}
	return 0;
}

static void vfs_free(struct virtio_device *d)
{
	struct virtio_fs *fs = to_fs(d);
	unsigned int i;

	for (i = 0; fs->vq && i <= fs->nreq; i++) {
		fuse_pool_free(fs->vq[i].fq.pool);
		if (fs->vq[i].fq.aio)
			aio_free(fs->vq[i].fq.aio);
		free(fs->vq[i].slots);
		free(fs->vq[i].priv);
	}
	free(fs->vq);
	pfs_close(fs->pfs);
	free(fs);
}

static const struct virtio_device_ops virtio_fs_ops = {
	.name = "fs",
	.device_id = VIRTIO_ID_FS,
	.nqueues = 2,
	.queue_max = FS_QUEUE_SIZE,
	.config_size = sizeof(struct fs_config),
	.pci_class = 0x018000,		/* mass storage, other */
	.host_files = true,
	.config_read = vfs_config_read,
	.drain = vfs_drain,
	.queue_reset = vfs_queue_reset,
	.inflight = vfs_inflight,
	.queue_stats = vfs_queue_stats,
	.start = vfs_dev_start,
	.free = vfs_free,
};

/* A request queue's helpers filter themselves as its thread does. */
static int vfs_helper_filter(const char *name)
{
	return seccomp_enter(SECCOMP_FS, name);
}

static int vfs_queue_init(struct virtio_fs *fs, unsigned int i,
			  struct iothread *t, bool io)
{
	struct vfs_queue *vq = &fs->vq[i];
	size_t priv = ALIGN_UP(pfs_fuse_ops.req_priv, 64);
	unsigned int n = io ? FS_QUEUE_SIZE : 1, k;
	int ret = 0;

	vq->fs = fs;
	vq->q = &fs->dev.queues[i];
	vq->thread = t;
	vq->fq.index = i;
	vq->slots = calloc(n, sizeof(*vq->slots));
	vq->priv = calloc(n, priv);
	if (!vq->slots || !vq->priv)
		return -ENOMEM;
	for (k = 0; k < n; k++) {
		struct vfs_slot *s = &vq->slots[k];

		s->vq = vq;
		s->r.q = &vq->fq;
		s->r.t = &vfs_transport;
		s->r.priv = vq->priv + k * priv;
		s->next = vq->free;
		vq->free = s;
	}
	if (io) {
		struct fuse_pool_opts po = {
			.threads = pfs_fuse_ops.pool_threads,
			.name = t->name,
			.owner = t,
			.thread_start = fs->dev.vm->cfg.seccomp ? vfs_helper_filter :
								  NULL,
			.flush = vfs_batch_done,
			.flush_opaque = vq,
		};

		ret = aio_create(&vq->fq.aio, t, FS_QUEUE_SIZE, true);
		if (!ret)
			ret = aio_add_batch_hook(vq->fq.aio, vfs_batch_done, vq);
		/* The adaptive poll window, as virtio-blk's queues have it. */
		if (!ret)
			ret = aio_poll_on(vq->fq.aio, t);
		if (!ret)
			ret = iothread_add_poller(t, vfs_poll, vq);
		if (!ret && po.threads)
			ret = fuse_pool_create(&vq->fq.pool, &po);
	}
	if (!ret)
		ret = virtio_queue_attach(&fs->dev, i, t);
	return ret;
}

/* ---- options and creation ---- */

struct fs_spec {
	char dir[4096];
	char tag[FS_TAG_MAX + 1];
	bool ro;
	unsigned int queues;
	enum pfs_cache cache;
	cpu_set_t cpus;
	bool pin;
};

/* "0-3,6": the CPUs named, all below CPU_SETSIZE. */
static int parse_cpus(const char *s, cpu_set_t *set)
{
	char *end;

	CPU_ZERO(set);
	while (*s) {
		unsigned long a = strtoul(s, &end, 10), b = a;

		if (end == s)
			return -EINVAL;
		if (*end == '-') {
			s = end + 1;
			b = strtoul(s, &end, 10);
			if (end == s || b < a)
				return -EINVAL;
		}
		if (b >= CPU_SETSIZE)
			return -EINVAL;
		for (; a <= b; a++)
			CPU_SET(a, set);
		s = end;
		if (*s == '+')		/* a list inside a comma-split spec */
			s++;
		else if (*s)
			return -EINVAL;
	}
	return CPU_COUNT(set) ? 0 : -EINVAL;
}

/* DIR,tag=TAG[,ro][,queues=N][,cache=MODE][,cpus=LIST] */
static int fs_spec_parse(const char *opts, struct fs_spec *sp, char *err,
			 size_t errlen)
{
	char buf[4200], *save = NULL, *tok;
	int ret = 0;

	memset(sp, 0, sizeof(*sp));
	sp->queues = 1;
	if (strlen(opts) >= sizeof(buf))
		return input_errf(err, errlen, -EINVAL, "fs: specification too long");
	strcpy(buf, opts);
	tok = strtok_r(buf, ",", &save);
	if (!tok || strchr(tok, '='))
		return input_errf(err, errlen, -EINVAL,
				  "fs: want DIR,tag=TAG[,ro][,queues=N][,cache=auto|always|never][,cpus=LIST]");
	snprintf(sp->dir, sizeof(sp->dir), "%s", tok);
	while (!ret && (tok = strtok_r(NULL, ",", &save))) {
		char *v = strchr(tok, '=');
		uint64_t n;

		if (v)
			*v++ = 0;
		if (!strcmp(tok, "tag") && v) {
			if (!*v || strlen(v) > FS_TAG_MAX)
				ret = input_errf(err, errlen, -EINVAL,
						 "fs: tag=%s: want 1 to %d bytes",
						 v, FS_TAG_MAX);
			else
				snprintf(sp->tag, sizeof(sp->tag), "%s", v);
		} else if (!strcmp(tok, "ro") && !v) {
			sp->ro = true;
		} else if (!strcmp(tok, "queues") && v) {
			if (parse_uint(v, 1, FS_MAX_QUEUES, &n))
				ret = input_errf(err, errlen, -EINVAL,
						 "fs: queues=%s: want 1 to %d",
						 v, FS_MAX_QUEUES);
			sp->queues = n;
		} else if (!strcmp(tok, "cache") && v) {
			if (!strcmp(v, "auto"))
				sp->cache = PFS_CACHE_AUTO;
			else if (!strcmp(v, "always"))
				sp->cache = PFS_CACHE_ALWAYS;
			else if (!strcmp(v, "never"))
				sp->cache = PFS_CACHE_NEVER;
			else
				ret = input_errf(err, errlen, -EINVAL,
						 "fs: cache=%s: want auto, always or never", v);
		} else if (!strcmp(tok, "cpus") && v) {
			sp->pin = true;
			if (parse_cpus(v, &sp->cpus))
				ret = input_errf(err, errlen, -EINVAL,
						 "fs: cpus=%s: want a list such as 0-3+6", v);
		} else {
			ret = input_errf(err, errlen, -EINVAL,
					 "fs: unknown option '%s'", tok);
		}
	}
	if (!ret && !sp->tag[0])
		ret = input_errf(err, errlen, -EINVAL, "fs: %s: tag=TAG is required",
				 sp->dir);
	return ret;
}

static int fs_check(const char *options, char *err, size_t errlen)
{
	struct fs_spec sp;

	return fs_spec_parse(options, &sp, err, errlen);
}

int virtio_fs_create(struct lkvm *vm, const char *opts, struct iothread *hiprio,
		     unsigned int index, struct virtio_device **dp, char *err,
		     size_t errlen)
{
	struct virtio_fs *fs = calloc(1, sizeof(*fs));
	struct pfs_opts po = { 0 };
	struct fs_spec sp;
	char name[16];
	unsigned int i;
	int ret;

	*dp = NULL;
	if (!fs)
		return errf(err, errlen, -ENOMEM, "out of memory");
	ret = fs_spec_parse(opts, &sp, err, errlen);
	if (ret) {
		free(fs);
		return ret;
	}
	po.dir = sp.dir;
	po.ro = sp.ro;
	po.cache = sp.cache;
	ret = pfs_open(&fs->pfs, &po, err, errlen);
	if (ret) {
		free(fs);
		return err_input(ret);
	}
	fs->nreq = sp.queues;
	fs->cpus = sp.cpus;
	fs->pin = sp.pin;
	memcpy(fs->config.tag, sp.tag, strlen(sp.tag));
	fs->config.num_request_queues = fs->nreq;
	snprintf(name, sizeof(name), "fs%u", index);
	ret = virtio_device_init(&fs->dev, vm, &virtio_fs_ops, name,
				 1 + fs->nreq);
	if (!ret) {
		fs->vq = calloc(1 + fs->nreq, sizeof(*fs->vq));
		if (!fs->vq)
			ret = -ENOMEM;
	}
	if (!ret)
		ret = virtio_device_threads(&fs->dev, fs->nreq);
	if (!ret)
		ret = vfs_queue_init(fs, 0, hiprio, false);
	for (i = 0; !ret && i < fs->nreq; i++)
		ret = vfs_queue_init(fs, 1 + i, &fs->dev.threads[i], true);
	*dp = &fs->dev;
	if (ret)
		errf(err, errlen, ret, "virtio-fs %s: %s", sp.tag, strerror(-ret));
	return ret;
}

static int fs_create_one(struct machine *m, const char *opts,
			 unsigned int index, char *err, size_t errlen)
{
	struct virtio_device *d = NULL;
	struct iothread *lo;
	int ret;

	lo = machine_lowrate(m, err, errlen);
	if (!lo)
		return -ENOMEM;
	ret = virtio_fs_create(m->vm, opts, lo, index, &d, err, errlen);
	if (ret && !d)
		return ret;
	return virtio_device_finish(d, ret, "virtio-fs", err, errlen);
}

static int fs_create_all(struct machine *m, char *err, size_t errlen)
{
	const char *opts;
	unsigned int i;
	int ret;

	for (i = 0; (opts = machine_device_spec(m->cfg, "fs", i)); i++) {
		ret = fs_create_one(m, opts, i, err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

const struct device_type virtio_fs_type = {
	.name = "fs",
	.help = "share a host directory: DIR,tag=TAG[,ro][,queues=N][,cache=auto|always|never][,cpus=LIST] (mount -t virtiofs TAG)",
	.arg = DEVICE_ARG_REQUIRED,
	.check = fs_check,
	.create = fs_create_all,
};
