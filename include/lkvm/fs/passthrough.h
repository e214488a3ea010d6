/*
 * passthrough.h - a FUSE filesystem (fuse_server.h) that passes a host
 * directory through: the server behind virtio-fs (`--fs DIR,tag=TAG`)
 * and behind a /dev/fuse mount of the same directory (the tests'
 * hostmount).  The client can never leave the directory (see
 * passthrough.c).
 */
#ifndef LKVM_FS_PASSTHROUGH_H
#define LKVM_FS_PASSTHROUGH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lkvm/fs/fuse_server.h"

enum pfs_cache {
	PFS_CACHE_AUTO,		/* names and attributes valid for 1 s */
	PFS_CACHE_ALWAYS,	/* for a day, and page cache kept on open */
	PFS_CACHE_NEVER,	/* not at all: direct I/O, no caching */
};

struct pfs_opts {
	const char *dir;
	bool ro;
	enum pfs_cache cache;
	uint32_t max_inodes;	/* 0: PFS_MAX_INODES */
	uint32_t max_files;	/* 0: PFS_MAX_FILES */
};

#define PFS_MAX_INODES	(1u << 16)
#define PFS_MAX_FILES	(1u << 14)

struct pfs;

extern const struct fuse_fs_ops pfs_fuse_ops;

/* Opens dir (it must be a directory): 0, or -errno with err. */
int pfs_open(struct pfs **pp, const struct pfs_opts *o, char *err,
	     size_t errlen);
void pfs_close(struct pfs *p);
/* Inodes and open files held now (the tables' fill). */
void pfs_counts(struct pfs *p, uint32_t *inodes, uint32_t *files);

#endif
