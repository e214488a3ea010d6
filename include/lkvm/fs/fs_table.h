/*
 * fs_table.h - the passthrough filesystem's two tables: inodes (an
 * O_PATH descriptor per file the client looked up, found by nodeid and
 * by (dev, ino)) and open files (a descriptor per handle, found by fh).
 *
 * Both hand out 64-bit ids that the client sends back in any request
 * and may forge: the low 32 bits are a slot, the high 32 its
 * generation, bumped each time the slot is freed, so a stale or made-up
 * id finds nothing.  A slot's descriptor stays open while any request
 * holds a reference to it (fst_get .. fst_put), so a FORGET or RELEASE
 * racing a READ on another queue cannot close it underneath, nor let
 * the number be reused for something else.
 *
 * Threads: any queue thread.  Getting an entry by id takes no lock (an
 * atomic reference count per slot).  Finding an inode by (dev, ino),
 * adding one and forgetting one take the lock of one of FST_SHARDS
 * shards; allocating and freeing slots take the free-list lock.  No lock
 * is held across a system call.
 */
#ifndef LKVM_FS_FS_TABLE_H
#define LKVM_FS_FS_TABLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define FST_SHARDS	64

struct fst_entry {
	/* References (low 32 bits: the table's own is one) and DEAD. */
	_Atomic uint64_t state;
	_Atomic uint32_t gen;
	int fd;
	/* Inodes: identity, type, the client's lookups, the hash chain. */
	dev_t dev;
	ino_t ino;
	mode_t type;		/* S_IFMT bits */
	uint64_t nlookup;	/* under the shard's lock */
	uint32_t next;		/* hash chain (slot + 1), or free list */
	/* Open files: a directory's reading position, under its own lock. */
	pthread_mutex_t dir_lock;
	uint64_t dir_off;
	bool is_dir;
};

struct fs_table {
	struct fst_entry *e;
	uint32_t cap;
	uint32_t used;
	pthread_mutex_t free_lock;
	uint32_t free_head;	/* slot + 1; 0: none */
	uint32_t top;		/* slots below this were used once */
	/* Inode tables only: the (dev, ino) hash, FST_SHARDS locks. */
	uint32_t *bucket;	/* slot + 1 */
	uint32_t nbuckets;
	pthread_mutex_t shard[FST_SHARDS];
};

int fst_init(struct fs_table *t, uint32_t cap, bool hashed);
/* Closes every descriptor still open. */
void fst_free(struct fs_table *t);

/*
 * Inodes.  fst_inode_add(): the inode open as fd (O_PATH) is looked up
 * once more: an entry with the same (dev, ino) gains a lookup (and fd is
 * closed), else fd becomes a new one.  Returns its id, with a reference
 * the caller puts, in *e; -ENFILE when the table is full (fd closed).
 */
int fst_inode_add(struct fs_table *t, int fd, dev_t dev, ino_t ino,
		  mode_t type, uint64_t *id, struct fst_entry **e);
/* Drops n of the client's lookups; the last one frees the entry. */
void fst_inode_forget(struct fs_table *t, uint64_t id, uint64_t n);
/* The root: id 1 (slot 0, generation 0), never forgotten. */
int fst_inode_root(struct fs_table *t, int fd, dev_t dev, ino_t ino);

/* Open files: a new handle for fd, or -ENFILE (fd closed). */
int fst_file_add(struct fs_table *t, int fd, bool is_dir, uint64_t *id);
/* Drops the handle (the descriptor closes with the last reference). */
void fst_file_release(struct fs_table *t, uint64_t id);

/* The entry an id names, with a reference, or NULL. */
struct fst_entry *fst_get(struct fs_table *t, uint64_t id);
void fst_put(struct fs_table *t, struct fst_entry *e);
uint32_t fst_count(struct fs_table *t);

#endif
