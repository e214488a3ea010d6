/*
 * qcow2_cache.c - qcow2 metadata in memory: L2 tables and refcount
 * blocks, changed in the cache and written back in batches, in the order
 * crash safety needs.
 *
 * The rule: a pointer (an L2 entry) reaches the file only after what it
 * points at is safe there, the cluster's refcount and its data.  So a
 * write-back writes the dirty refcount blocks, then (with barriers) one
 * fdatasync, which also makes the new clusters' data durable, then the
 * dirty L2 tables.  A guest FLUSH adds a final fdatasync.  The reverse
 * rule, for freeing: a cluster's refcount drops only once no pointer to
 * it is left on disk; qcow2_meta.c and qcow2_io.c write back (and sync)
 * before they decrement.  Rarer changes, a new refcount block or L2
 * table and their table entries, are written through at once (qcow2_meta.c).
 * Under lazy refcounts (struct qcow2's lazy) refcount blocks are left
 * out of write-backs: they go when they leave the cache and at close,
 * and the dirty bit in the header covers the time between.
 *
 * After kill -9 the file holds whatever write-backs completed: never a
 * pointer to an uncounted cluster; clusters counted but not yet pointed
 * at are leaks.  Everything the guest flushed reads back.
 *
 * Threads: everything under the image lock.  The write-back thread
 * ("qcow2-wb", one per writable image) sleeps on wb_cond and takes the
 * lock to write back metadata left dirty for QCOW2_WRITEBACK_NS, so an
 * idle guest's metadata reaches the file too; it does no guest I/O.  It
 * installs the VM's I/O seccomp filter first (disk_spec.thread_start).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lkvm/disk/qcow2.h"
#include "lkvm/lib/util.h"

int qcow2_cache_init(struct qcow2 *q)
{
	unsigned int i;

	q->l2c.n = L2_CACHE;
	q->l2c.l2 = true;
	q->rbc.n = RB_CACHE;
	for (i = 0; i < L2_CACHE; i++) {
		q->l2c.e[i].buf = malloc(q->cluster_size);
		if (i < RB_CACHE)
			q->rbc.e[i].buf = malloc(q->cluster_size);
		if (!q->l2c.e[i].buf || (i < RB_CACHE && !q->rbc.e[i].buf))
			return -ENOMEM;
	}
	q->wbuf = malloc(q->cluster_size);
	return q->wbuf ? 0 : -ENOMEM;
}

void qcow2_cache_free(struct qcow2 *q)
{
	unsigned int i;

	for (i = 0; i < L2_CACHE; i++) {
		free(q->l2c.e[i].buf);
		free(q->rbc.e[i].buf);
	}
	free(q->wbuf);
}

/* Writes one dirty table; an L2 table goes out big-endian. */
static int cached_write(struct disk *d, struct qcow2_cache *c,
			struct qcow2_cached *e)
{
	struct qcow2 *q = d->priv;
	const void *out = e->buf;
	int ret;

	if (c->l2) {
		const uint64_t *t = e->buf;
		uint64_t i;

		for (i = 0; i < q->cluster_size / 8; i++)
			put_be64(q->wbuf + 8 * i, t[i]);
		out = q->wbuf;
	}
	ret = pwrite_full(qcow2_fd(d), out, q->cluster_size, e->off);
	if (!ret)
		e->dirty = false;
	return ret;
}

static int cache_write(struct disk *d, struct qcow2_cache *c, bool *any)
{
	unsigned int i;
	int ret;

	for (i = 0; i < c->n; i++) {
		if (!c->e[i].off || !c->e[i].dirty)
			continue;
		ret = cached_write(d, c, &c->e[i]);
		if (ret)
			return ret;
		*any = true;
	}
	return 0;
}

static bool cache_dirty(const struct qcow2_cache *c)
{
	unsigned int i;

	for (i = 0; i < c->n; i++)
		if (c->e[i].off && c->e[i].dirty)
			return true;
	return false;
}

static int wb_sync(struct disk *d)
{
	struct qcow2 *q = d->priv;

	if (!q->barriers)
		return 0;
	q->syncs++;
	return fdatasync(d->fd) ? -errno : 0;
}

int qcow2_writeback(struct disk *d, bool sync)
{
	struct qcow2 *q = d->priv;
	bool any = false;
	int ret = 0;

	if (!q->lazy && cache_dirty(&q->rbc))
		ret = cache_write(d, &q->rbc, &any);
	if (!ret && cache_dirty(&q->l2c)) {
		/* Counts and data durable before the pointers to them. */
		ret = wb_sync(d);
		if (!ret)
			ret = cache_write(d, &q->l2c, &any);
	}
	if (!ret && sync)
		ret = wb_sync(d);
	if (any)
		q->writebacks++;
	if (!ret)
		q->dirty_since = 0;
	return ret;
}

/*
 * The table at off, loaded if need be.  A dirty victim is written back
 * first (with everything it depends on).  A pointer returned stays valid
 * until the next get on the same cache that misses.
 */
int qcow2_cache_get(struct disk *d, struct qcow2_cache *c, uint64_t off,
		    void **buf)
{
	struct qcow2 *q = d->priv;
	struct qcow2_cached *victim = &c->e[0];
	unsigned int i;
	int ret;

	for (i = 0; i < c->n; i++) {
		if (c->e[i].off == off) {
			c->e[i].age = ++q->tick;
			*buf = c->e[i].buf;
			return 0;
		}
		if (!c->e[i].off || (victim->off && c->e[i].age < victim->age))
			victim = &c->e[i];
	}
	if (!qcow2_cluster_ok(q, off))
		return -EIO;		/* outside the image, or over metadata */
	if (victim->off && victim->dirty) {
		ret = qcow2_writeback(d, false);
		/* A refcount block under lazy refcounts goes by itself. */
		if (!ret && victim->dirty)
			ret = cached_write(d, c, victim);
		if (ret)
			return ret;
	}
	victim->off = 0;
	ret = disk_pread_full(qcow2_fd(d), c->l2 ? q->wbuf : victim->buf,
			      q->cluster_size, off);
	if (ret)
		return ret;
	if (c->l2) {
		uint64_t *t = victim->buf;

		for (i = 0; i < q->cluster_size / 8; i++)
			t[i] = be64(q->wbuf + 8 * i);
	}
	victim->off = off;
	victim->dirty = false;
	victim->age = ++q->tick;
	*buf = victim->buf;
	return 0;
}

void qcow2_cache_dirty(struct qcow2 *q, struct qcow2_cache *c,
		       const void *buf)
{
	unsigned int i;

	for (i = 0; i < c->n; i++)
		if (c->e[i].buf == buf && c->e[i].off)
			c->e[i].dirty = true;
	/* Lazy refcounts: a refcount block alone is not due for write-back. */
	if (!q->dirty_since && !(q->lazy && c == &q->rbc)) {
		q->dirty_since = now_ns();
		if (q->wb_running)
			pthread_cond_signal(&q->wb_cond);
	}
}

void qcow2_cache_forget(struct qcow2_cache *c, uint64_t off)
{
	unsigned int i;

	for (i = 0; i < c->n; i++)
		if (c->e[i].off == off)
			c->e[i].off = 0;
}

/* ---- the write-back thread ---- */

static void *qcow2_wb_main(void *arg)
{
	struct disk *d = arg;
	struct qcow2 *q = d->priv;

	/* Filtered like I/O threads; if that fails, write-back is left to
	 * FLUSH, eviction and close. */
	if (d->spec.thread_start && d->spec.thread_start("qcow2-wb"))
		return NULL;
	pthread_mutex_lock(&q->lock);
	while (!q->wb_stop) {
		uint64_t due = q->dirty_since + QCOW2_WRITEBACK_NS, now;
		struct timespec ts;

		if (!q->dirty_since) {
			pthread_cond_wait(&q->wb_cond, &q->lock);
			continue;
		}
		now = now_ns();
		if (now < due) {
			ts.tv_sec = due / 1000000000ULL;
			ts.tv_nsec = due % 1000000000ULL;
			pthread_cond_timedwait(&q->wb_cond, &q->lock, &ts);
			continue;
		}
		/* A failure stays dirty: the next try is a period later. */
		if (qcow2_writeback(d, false))
			q->dirty_since = now;
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

int qcow2_wb_start(struct disk *d)
{
	struct qcow2 *q = d->priv;
	pthread_condattr_t ca;
	int ret;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->wb_cond, &ca);
	pthread_condattr_destroy(&ca);
	ret = pthread_create(&q->wb_thread, NULL, qcow2_wb_main, d);
	if (ret)
		return -ret;
	pthread_setname_np(q->wb_thread, "qcow2-wb");
	q->wb_running = true;
	return 0;
}

void qcow2_wb_stop(struct disk *d)
{
	struct qcow2 *q = d->priv;

	if (!q->wb_running)
		return;
	pthread_mutex_lock(&q->lock);
	q->wb_stop = true;
	pthread_cond_signal(&q->wb_cond);
	pthread_mutex_unlock(&q->lock);
	pthread_join(q->wb_thread, NULL);
	q->wb_running = false;
	pthread_cond_destroy(&q->wb_cond);
}
