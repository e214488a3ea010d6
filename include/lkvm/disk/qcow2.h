/*
 * qcow2.h - the qcow2 driver's state and its internal interface, shared
 * by disk/qcow2.c (probe, open, close), qcow2_meta.c (refcounts, L2
 * tables), qcow2_cache.c (the metadata cache and its write-back) and
 * qcow2_io.c (mapping, reads, writes, discard).  Everything here runs
 * under struct qcow2's lock unless a comment says otherwise.
 */
#ifndef LKVM_DISK_QCOW2_H
#define LKVM_DISK_QCOW2_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "lkvm/disk/disk.h"

#define QCOW2_MAGIC		0x514649fb
#define QCOW2_OFLAG_COPIED	(1ULL << 63)
#define QCOW2_OFLAG_COMPRESSED	(1ULL << 62)
#define QCOW2_OFLAG_ZERO	1ULL
#define QCOW2_OFFSET_MASK	0x00fffffffffffe00ULL
#define QCOW2_INCOMPAT_DIRTY	(1ULL << 0)
#define QCOW2_INCOMPAT_CORRUPT	(1ULL << 1)
#define QCOW2_INCOMPAT_EXTL2	(1ULL << 4)
#define QCOW2_INCOMPAT_KNOWN	(QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_EXTL2)
#define QCOW2_COMPAT_LAZY	(1ULL << 0)	/* lazy refcounts */
#define QCOW2_MAX_SNAPSHOTS	65536
#define QCOW2_SUBCLUSTERS	32	/* per cluster, with extended L2 */
/* Extended L2 bitmaps: every subcluster allocated, or reading as zero. */
#define QCOW2_SC_ALLOC_ALL	0xffffffffULL
#define QCOW2_SC_ZERO_ALL	(0xffffffffULL << 32)
#define QCOW2_EXT_BACKING_FMT	0xe2792aca
#define QCOW2_MAX_CHAIN		16
#define L2_CACHE		16
#define QCOW2_MAX_EXTENTS	64
#define QCOW2_MIO_IOV		256
#define RB_CACHE		4
/* Dirty metadata is written back at most this long after it changed. */
#define QCOW2_WRITEBACK_NS	1000000000ULL

/*
 * A cached table: an L2 table (host order, entries as uint64_t) or a
 * refcount block (as on disk).  Dirty: changed here, not yet written.
 */
struct qcow2_cached {
	uint64_t off;		/* 0: empty */
	void *buf;
	unsigned int age;
	bool dirty;
};

struct qcow2_cache {
	struct qcow2_cached e[L2_CACHE];
	unsigned int n;
	bool l2;		/* entries are L2 tables */
};

struct qcow2_mio;

/* One extent of a request of several, in flight on a queue's engine. */
struct qcow2_mio_ext {
	struct aio_io io;
	struct qcow2_mio *m;
	uint64_t len;
};

/* A request of several extents in flight: pooled per image, reused. */
struct qcow2_mio {
	struct disk_req *r;
	unsigned int pending;
	int err;
	struct qcow2_mio_ext ext[QCOW2_MAX_EXTENTS];
	struct iovec iov[QCOW2_MIO_IOV];
	struct qcow2_mio *next;		/* in the free list */
	struct qcow2_mio *all_next;	/* every context, for close */
};

struct qcow2 {
	pthread_mutex_t lock;
	uint32_t version;
	unsigned int cluster_bits;
	uint64_t cluster_size;
	uint64_t l2_entries;
	unsigned int l2_bits;	/* log2(l2_entries) */
	bool ext_l2;		/* 128-bit L2 entries: a descriptor, then
				 * the subcluster bitmap (allocated: bits
				 * 0-31, reads as zero: bits 32-63) */
	uint64_t sc_size;	/* subcluster size (ext_l2) */
	uint64_t size;
	uint64_t *l1;		/* host order */
	uint32_t l1_size;
	uint64_t l1_offset;
	uint64_t *rt;		/* refcount table, host order */
	uint64_t rt_entries;
	uint64_t rt_offset;
	unsigned int refcount_bits;
	uint64_t rb_entries;	/* refcounts per block */
	uint64_t file_end;	/* next cluster to append */
	uint64_t free_hint;	/* no free cluster below this index */
	/* Requests mapped outside the lock, in flight (qcow2_io.c). */
	atomic_uint inflight;
	bool barriers;		/* fdatasync between dependency levels */
	/*
	 * Lazy refcounts (compatible bit 0, v3): while the image is open
	 * for writing its dirty bit is set and refcount blocks are written
	 * only when they leave the cache and at close; a crash leaves the
	 * dirty bit, and the next writable open rebuilds the refcounts
	 * from the tables (qcow2_repair.c).
	 */
	bool lazy;
	bool repaired;		/* it was dirty, and repaired at open */
	uint64_t incompat;	/* the header's feature words */
	uint64_t compat;
	/*
	 * The file without O_DIRECT: metadata and the synchronous path.
	 * With cache=none d->fd has O_DIRECT and only the asynchronous
	 * path's aligned I/O uses it; else this is d->fd.
	 */
	int fd;
	bool own_fd;
	struct disk *backing;	/* NULL: reads of unallocated are zero */
	struct qcow2_cache l2c;	/* L2 tables */
	struct qcow2_cache rbc;	/* refcount blocks */
	unsigned int tick;
	uint8_t *wbuf;		/* a cluster: an L2 table on its way out */
	uint8_t *cbuf;		/* compressed data, 2 clusters */
	/* Write-back of dirty metadata (qcow2_cache.c). */
	uint64_t dirty_since;	/* now_ns() of the oldest change, 0: clean */
	pthread_cond_t wb_cond;
	pthread_t wb_thread;
	bool wb_running, wb_stop;
	uint64_t writebacks, syncs;	/* counted, for tests */
	/* The asynchronous path (qcow2_io.c). */
	_Atomic(struct qcow2_mio *) mio_free;	/* popped under the lock */
	struct qcow2_mio *mio_all;
	atomic_bool read_nowait_off;	/* RWF_NOWAIT unsupported here */
};

/* The descriptor for metadata and synchronous I/O (see struct qcow2). */
static inline int qcow2_fd(const struct disk *d)
{
	return ((const struct qcow2 *)d->priv)->fd;
}

/* The L1 index of a guest offset. */
static inline uint64_t qcow2_l1_index(const struct qcow2 *q, uint64_t vo)
{
	return vo >> (q->cluster_bits + q->l2_bits);
}

/* The L2 index of a guest offset. */
static inline uint64_t qcow2_l2_index(const struct qcow2 *q, uint64_t vo)
{
	return (vo >> q->cluster_bits) & (q->l2_entries - 1);
}

/* Entry idx of a cached table: its descriptor, and its bitmap (ext_l2). */
static inline uint64_t *qcow2_l2_desc(const struct qcow2 *q, uint64_t *t,
				      uint64_t idx)
{
	return &t[q->ext_l2 ? 2 * idx : idx];
}

static inline uint64_t qcow2_l2_bitmap(const struct qcow2 *q,
				       const uint64_t *t, uint64_t idx)
{
	return q->ext_l2 ? t[2 * idx + 1] : 0;
}

/* Subclusters first..last (inclusive) as bits. */
static inline uint32_t qcow2_sc_mask(unsigned int first, unsigned int last)
{
	return (uint32_t)((((uint64_t)2 << last) - 1) & ~((1ULL << first) - 1));
}

/* The largest count a refcount entry of the image holds. */
static inline uint64_t qcow2_refcount_max(const struct qcow2 *q)
{
	return q->refcount_bits == 64 ? UINT64_MAX :
					(1ULL << q->refcount_bits) - 1;
}

static inline uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static inline uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static inline void put_be64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--, v >>= 8)
		p[i] = v;
}

/*
 * qcow2_cache.c: cached L2 tables and refcount blocks, written back in
 * dependency order (refcount blocks, sync, L2 tables) by
 * qcow2_writeback: on the guest's FLUSH (then with a final sync), when
 * a dirty table must leave the cache, before a cluster loses a
 * reference, and from the write-back thread at most
 * QCOW2_WRITEBACK_NS after the first change.
 */
int qcow2_cache_init(struct qcow2 *q);
void qcow2_cache_free(struct qcow2 *q);
int qcow2_cache_get(struct disk *d, struct qcow2_cache *c, uint64_t off,
		    void **buf);
void qcow2_cache_dirty(struct qcow2 *q, struct qcow2_cache *c,
		       const void *buf);
void qcow2_cache_forget(struct qcow2_cache *c, uint64_t off);
int qcow2_writeback(struct disk *d, bool sync);
int qcow2_wb_start(struct disk *d);
void qcow2_wb_stop(struct disk *d);

/* qcow2_meta.c: cluster allocation, L2 tables */
/*
 * A cluster for new contents, counted: a free one again, or one
 * appended at the end of the file (*fresh, if asked: it reads as
 * zeroes).
 */
int qcow2_cluster_alloc(struct disk *d, uint64_t *off, bool *fresh);
/* Drops the references entries held (after writing back their new values). */
int qcow2_entry_release(struct disk *d, uint64_t e);
int qcow2_entries_release(struct disk *d, const uint64_t *e, size_t n);
bool qcow2_cluster_ok(const struct qcow2 *q, uint64_t off);
int qcow2_l2_set(struct disk *d, uint64_t *table, uint64_t idx, uint64_t val,
		 uint64_t bitmap);
int qcow2_l2_lookup(struct disk *d, uint64_t vo, bool alloc,
		    uint64_t *l2off, uint64_t **table);
/* A cluster's count (0 where no block holds it); setting makes blocks. */
int qcow2_refcount_get(struct disk *d, uint64_t cluster, uint64_t *rc);
int qcow2_refcount_set(struct disk *d, uint64_t cluster, uint64_t rc);

/*
 * qcow2_repair.c: refcounts rebuilt from every table that points at a
 * cluster (the header, L1, refcount, L2 tables, snapshots), as
 * `qemu-img check -r all` would, and the active tables' COPIED flags
 * made to agree; then written back and synced.  At open, before any
 * other thread.  An error (a table outside the file, a count that
 * overflows) is described in err.
 */
int qcow2_repair(struct disk *d, char *err, size_t errlen);

/* qcow2_io.c: requests */
void qcow2_submit(struct disk *d, struct aio *a, struct disk_req *r);

#endif
