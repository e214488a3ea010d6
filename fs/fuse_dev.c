/*
 * fuse_dev.c - mounting a FUSE session over /dev/fuse (see fuse_dev.h).
 * The mount options are the kernel's own (fs/fuse/inode.c): fd=,
 * rootmode=, user_id=, group_id=; default_permissions makes the kernel
 * check the mode bits the server reports, so the server need not.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <unistd.h>

#include "lkvm/fs/fuse_dev.h"
#include "lkvm/fs/fuse_msg.h"
#include "lkvm/lib/util.h"

int fuse_session_mount(struct fuse_session *s, const char *mountpoint,
		       mode_t rootmode, const char *source, bool allow_other,
		       char *err, size_t errlen)
{
	char opts[256];

	memset(s, 0, sizeof(*s));
	snprintf(s->mountpoint, sizeof(s->mountpoint), "%s", mountpoint);
	s->fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (s->fd < 0)
		return errf(err, errlen, -errno, "cannot open /dev/fuse: %s",
			    strerror(errno));
	snprintf(opts, sizeof(opts),
		 "fd=%d,rootmode=%o,user_id=%u,group_id=%u,default_permissions%s",
		 s->fd, (unsigned int)rootmode, (unsigned int)getuid(),
		 (unsigned int)getgid(), allow_other ? ",allow_other" : "");
	if (mount(source, mountpoint, "fuse.lkvm", MS_NOSUID | MS_NODEV,
		  opts)) {
		int e = errno;

		close(s->fd);
		s->fd = -1;
		return errf(err, errlen, -e, "cannot mount on %s: %s%s",
			    mountpoint, strerror(e),
			    e == EPERM ? " (mounting FUSE needs root)" : "");
	}
	s->mounted = true;
	return 0;
}

int fuse_session_clone(const struct fuse_session *s)
{
	uint32_t master = s->fd;
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return -errno;
	if (ioctl(fd, FUSE_DEV_IOC_CLONE, &master)) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

void fuse_session_unmount(struct fuse_session *s)
{
	if (!s->mounted)
		return;
	if (umount2(s->mountpoint, 0) && errno == EBUSY)
		umount2(s->mountpoint, MNT_DETACH);
	s->mounted = false;
}
