/*
 * fuse_devq.h - the /dev/fuse transport of a FUSE server
 * (fuse_server.h): mounts the session, answers INIT with the
 * filesystem's choices, and serves requests on N queues, each an
 * iothread with its own /dev/fuse descriptor (the first, or a clone) and
 * its own I/O engine.
 *
 * Threads: the opener's thread opens, polls fuse_devq_end_fd() and
 * closes; the queues' threads call the filesystem.
 */
#ifndef LKVM_FS_FUSE_DEVQ_H
#define LKVM_FS_FUSE_DEVQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lkvm/fs/fuse_server.h"

/* The largest WRITE, and READ, a queue takes. */
#define FUSE_DEVQ_MAX_WRITE	(1u << 20)

struct fuse_devq_opts {
	const char *mountpoint;
	mode_t rootmode;	/* S_IFREG or S_IFDIR, and permissions */
	const char *source;	/* the name /proc/mounts shows */
	bool allow_other;
	unsigned int threads;	/* 1 to 64 */
	bool aio_sync;		/* no io_uring */
	const struct fuse_fs_ops *ops;
	void *fs;
};

struct fuse_devq;

/* Mounts, answers INIT, starts the queues: 0, or -errno and err. */
int fuse_devq_open(struct fuse_devq **dp, const struct fuse_devq_opts *o,
		   char *err, size_t errlen);
/* Readable (an eventfd) once the session ended: unmounted, or DESTROY. */
int fuse_devq_end_fd(const struct fuse_devq *d);
unsigned int fuse_devq_threads(const struct fuse_devq *d);
/* Queue i's thread's CPU time, and the malformed requests it got. */
uint64_t fuse_devq_cpu_ns(const struct fuse_devq *d, unsigned int i);
uint64_t fuse_devq_malformed(const struct fuse_devq *d, unsigned int i);
uint64_t fuse_devq_requests(const struct fuse_devq *d, unsigned int i);
/*
 * Unmounts (lazily if still in use), lets every request in flight be
 * answered, stops the queues and closes the session.
 */
void fuse_devq_close(struct fuse_devq *d);

/*
 * For fuzz targets: one queue with no thread and no mount, on a
 * synchronous engine; fuse_devq_test_request() hands it one request's
 * bytes and returns once it is answered (replies go to reply_fd).
 */
int fuse_devq_test_open(struct fuse_devq **dp, const struct fuse_fs_ops *ops,
			void *fs, int reply_fd);
void fuse_devq_test_request(struct fuse_devq *d, const void *buf, size_t n);
void fuse_devq_test_close(struct fuse_devq *d);

#endif
