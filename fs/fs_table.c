/*
 * fs_table.c - ids with generations and reference counts for the
 * passthrough filesystem's inodes and open files (see fs_table.h for
 * the rules and the threads).
 *
 * A slot's state word holds its references and a DEAD bit.  A live
 * entry holds one reference of its own (the table's); killing it sets
 * DEAD and drops that one in a single atomic step, and whoever drops
 * the last reference of a dead entry closes its descriptor and frees
 * the slot.  A free slot is DEAD with no references, so fst_get() on it
 * fails; the generation is bumped on every free, so an old id naming a
 * reused slot fails too.
 */
#include <errno.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <unistd.h>

#include "lkvm/fs/fs_table.h"

#define DEAD	(1ULL << 63)
#define REFS	0xffffffffULL

static uint64_t make_id(uint32_t slot, uint32_t gen)
{
	return (uint64_t)gen << 32 | (slot + 1);
}

int fst_init(struct fs_table *t, uint32_t cap, bool hashed)
{
	uint32_t i;

	*t = (struct fs_table){ .cap = cap };
	t->e = calloc(cap, sizeof(*t->e));
	if (!t->e)
		return -ENOMEM;
	for (i = 0; i < cap; i++) {
		atomic_init(&t->e[i].state, DEAD);
		t->e[i].fd = -1;
		pthread_mutex_init(&t->e[i].dir_lock, NULL);
	}
	pthread_mutex_init(&t->free_lock, NULL);
	if (hashed) {
		for (t->nbuckets = 64; t->nbuckets < cap / 2; t->nbuckets *= 2)
			;
		t->bucket = calloc(t->nbuckets, sizeof(*t->bucket));
		if (!t->bucket)
			return -ENOMEM;
	}
	for (i = 0; i < FST_SHARDS; i++)
		pthread_mutex_init(&t->shard[i], NULL);
	return 0;
}

void fst_free(struct fs_table *t)
{
	uint32_t i;

	for (i = 0; t->e && i < t->cap; i++) {
		if (t->e[i].fd >= 0)
			close(t->e[i].fd);
		pthread_mutex_destroy(&t->e[i].dir_lock);
	}
	for (i = 0; i < FST_SHARDS; i++)
		pthread_mutex_destroy(&t->shard[i]);
	pthread_mutex_destroy(&t->free_lock);
	free(t->bucket);
	free(t->e);
	t->e = NULL;
}

static int slot_alloc(struct fs_table *t, uint32_t *slot)
{
	int ret = 0;

	pthread_mutex_lock(&t->free_lock);
	if (t->free_head) {
		*slot = t->free_head - 1;
		t->free_head = t->e[*slot].next;
	} else if (t->top < t->cap) {
		*slot = t->top++;
	} else {
		ret = -ENFILE;
	}
	if (!ret)
		t->used++;
	pthread_mutex_unlock(&t->free_lock);
	return ret;
}

/* The last reference of a dead entry is gone: close, and free the slot. */
static void slot_free(struct fs_table *t, struct fst_entry *e)
{
	uint32_t slot = e - t->e;

	if (e->fd >= 0)
		close(e->fd);
	e->fd = -1;
	atomic_fetch_add(&e->gen, 1);
	pthread_mutex_lock(&t->free_lock);
	e->next = t->free_head;
	t->free_head = slot + 1;
	t->used--;
	pthread_mutex_unlock(&t->free_lock);
}

struct fst_entry *fst_get(struct fs_table *t, uint64_t id)
{
	uint64_t lo = id & REFS, st;
	struct fst_entry *e;

	if (!lo || lo > t->cap)
		return NULL;
	e = &t->e[lo - 1];
	st = atomic_load_explicit(&e->state, memory_order_acquire);
	do {
		if (st & DEAD)
			return NULL;
	} while (!atomic_compare_exchange_weak_explicit(&e->state, &st, st + 1,
							memory_order_acquire,
							memory_order_acquire));
	if (atomic_load(&e->gen) != (uint32_t)(id >> 32)) {
		fst_put(t, e);		/* the slot holds someone else now */
		return NULL;
	}
	return e;
}

void fst_put(struct fs_table *t, struct fst_entry *e)
{
	uint64_t old = atomic_fetch_sub_explicit(&e->state, 1,
						 memory_order_acq_rel);

	if (old == (DEAD | 1))
		slot_free(t, e);
}

/* Sets DEAD and drops the table's reference, once; true if this did. */
static bool kill(struct fs_table *t, struct fst_entry *e)
{
	uint64_t st = atomic_load(&e->state);

	do {
		if (st & DEAD)
			return false;
	} while (!atomic_compare_exchange_weak(&e->state, &st, st + DEAD - 1));
	if (st == 1)
		slot_free(t, e);
	return true;
}

uint32_t fst_count(struct fs_table *t)
{
	uint32_t n;

	pthread_mutex_lock(&t->free_lock);
	n = t->used;
	pthread_mutex_unlock(&t->free_lock);
	return n;
}

/* ---- inodes ---- */

static uint32_t bucket_of(const struct fs_table *t, dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ULL ^
		     (uint64_t)dev * 0xc2b2ae3d27d4eb4fULL;

	return (h >> 32) & (t->nbuckets - 1);
}

static pthread_mutex_t *shard_of(struct fs_table *t, uint32_t b)
{
	return &t->shard[b % FST_SHARDS];
}

/* A new inode entry in slot, linked into bucket b (its shard locked). */
static void inode_fill(struct fs_table *t, uint32_t slot, uint32_t b, int fd,
		       dev_t dev, ino_t ino, mode_t type, uint64_t refs)
{
	struct fst_entry *e = &t->e[slot];

	e->fd = fd;
	e->dev = dev;
	e->ino = ino;
	e->type = type;
	e->nlookup = 1;
	e->next = t->bucket[b];
	t->bucket[b] = slot + 1;
	atomic_store_explicit(&e->state, refs, memory_order_release);
}

int fst_inode_add(struct fs_table *t, int fd, dev_t dev, ino_t ino,
		  mode_t type, uint64_t *id, struct fst_entry **ep)
{
	uint32_t b = bucket_of(t, dev, ino), s;
	pthread_mutex_t *lock = shard_of(t, b);
	int ret;

	pthread_mutex_lock(lock);
	for (s = t->bucket[b]; s; s = t->e[s - 1].next) {
		struct fst_entry *e = &t->e[s - 1];

		if (e->dev != dev || e->ino != ino)
			continue;
		/* Linked entries are alive: forget unlinks first. */
		e->nlookup++;
		atomic_fetch_add(&e->state, 1);
		*id = make_id(s - 1, atomic_load(&e->gen));
		*ep = e;
		pthread_mutex_unlock(lock);
		close(fd);
		return 0;
	}
	ret = slot_alloc(t, &s);
	if (!ret) {
		inode_fill(t, s, b, fd, dev, ino, type, 2);
		*id = make_id(s, atomic_load(&t->e[s].gen));
		*ep = &t->e[s];
	}
	pthread_mutex_unlock(lock);
	if (ret)
		close(fd);
	return ret;
}

int fst_inode_root(struct fs_table *t, int fd, dev_t dev, ino_t ino)
{
	uint32_t b = bucket_of(t, dev, ino), s;
	int ret = slot_alloc(t, &s);

	if (ret || s != 0)
		return ret ? ret : -EINVAL;
	pthread_mutex_lock(shard_of(t, b));
	inode_fill(t, s, b, fd, dev, ino, S_IFDIR, 1);
	pthread_mutex_unlock(shard_of(t, b));
	return 0;
}

void fst_inode_forget(struct fs_table *t, uint64_t id, uint64_t n)
{
	struct fst_entry *e = fst_get(t, id);
	uint32_t b, *pp, slot;
	pthread_mutex_t *lock;

	if (!e)
		return;
	slot = e - t->e;
	if (slot == 0) {		/* the root stays */
		fst_put(t, e);
		return;
	}
	b = bucket_of(t, e->dev, e->ino);
	lock = shard_of(t, b);
	pthread_mutex_lock(lock);
	if (e->nlookup > n) {
		e->nlookup -= n;
	} else if (e->nlookup) {
		e->nlookup = 0;
		for (pp = &t->bucket[b]; *pp; pp = &t->e[*pp - 1].next) {
			if (*pp == slot + 1) {
				*pp = e->next;
				break;
			}
		}
		kill(t, e);	/* our reference keeps it from freeing here */
	}
	pthread_mutex_unlock(lock);
	fst_put(t, e);
}

/* ---- open files ---- */

int fst_file_add(struct fs_table *t, int fd, bool is_dir, uint64_t *id)
{
	uint32_t s;
	int ret = slot_alloc(t, &s);
	struct fst_entry *e;

	if (ret) {
		close(fd);
		return ret;
	}
	e = &t->e[s];
	e->fd = fd;
	e->is_dir = is_dir;
	e->dir_off = 0;
	*id = make_id(s, atomic_load(&e->gen));
	atomic_store_explicit(&e->state, 1, memory_order_release);
	return 0;
}

void fst_file_release(struct fs_table *t, uint64_t id)
{
	struct fst_entry *e = fst_get(t, id);

	if (!e)
		return;
	kill(t, e);
	fst_put(t, e);
}
