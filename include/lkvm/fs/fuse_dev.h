/*
 * fuse_dev.h - a FUSE session over /dev/fuse: mounting it (mount(2),
 * so root or CAP_SYS_ADMIN), more descriptors on the same session
 * (FUSE_DEV_IOC_CLONE: each has its own queue of requests being
 * processed, so a reply goes to the descriptor its request came from),
 * and unmounting.  Only the thread that mounts calls these.
 */
#ifndef LKVM_FS_FUSE_DEV_H
#define LKVM_FS_FUSE_DEV_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct fuse_session {
	int fd;			/* the first /dev/fuse descriptor */
	char mountpoint[PATH_MAX];
	bool mounted;
};

/*
 * Opens /dev/fuse and mounts a filesystem whose root has rootmode (a
 * regular file's S_IFREG | permissions, or a directory's) on
 * mountpoint.  Returns 0, or -errno with a message in err.
 */
int fuse_session_mount(struct fuse_session *s, const char *mountpoint,
		       mode_t rootmode, const char *source, bool allow_other,
		       char *err, size_t errlen);
/* A new non-blocking descriptor on the session, or -errno. */
int fuse_session_clone(const struct fuse_session *s);
/*
 * Unmounts: plainly, or, while something still holds the mount, lazily
 * (it goes when the last user does).  Closes nothing.
 */
void fuse_session_unmount(struct fuse_session *s);

#endif
