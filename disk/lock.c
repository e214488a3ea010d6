/*
 * lock.c - image locking compatible with QEMU's, so that lkvm, QEMU and
 * qemu-img see each other's use of an image.
 *
 * Open file description locks (F_OFD_SETLK: held by the open file, not
 * the process, and released when it is closed) on single bytes of the
 * image.  Byte LOCK_PERM + n, read-locked, says "I use permission n";
 * byte LOCK_UNSHARE + n says "I do not let others take permission n".
 * The permissions are QEMU's block-layer ones: 0 consistent read,
 * 1 write, 2 write-unchanged, 3 resize.  A writer uses read, write and
 * resize and lets no one else write or resize; a reader uses read and
 * lets no one write or resize (so readers share an image, and no one
 * writes under them).  That is what QEMU 7.2's file driver takes for a
 * read-write and a read-only image (seen in /proc/locks).
 *
 * Every lock is a read lock, so taking ours never fails; then a test
 * for a write lock on a byte (F_OFD_GETLK) finds anyone else holding it.
 * Ours first, then the test: two starting at once cannot both miss each
 * other.
 *
 * Threads: the thread opening the disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "lkvm/disk/disk.h"
#include "lkvm/lib/util.h"

#define LOCK_PERM	100
#define LOCK_UNSHARE	200
#define PERM_READ	0
#define PERM_WRITE	1
#define PERM_RESIZE	3

static const char *const perm_name[] = {
	[PERM_READ] = "consistent read", [PERM_WRITE] = "write",
	[2] = "write unchanged", [PERM_RESIZE] = "resize",
};

static int ofd_lock(int fd, short type, off_t byte, bool test)
{
	struct flock fl = {
		.l_type = type,
		.l_whence = SEEK_SET,
		.l_start = byte,
		.l_len = 1,
	};

	if (fcntl(fd, test ? F_OFD_GETLK : F_OFD_SETLK, &fl) < 0)
		return -errno;
	/* A test answers F_UNLCK when nobody else holds the byte. */
	return test && fl.l_type != F_UNLCK ? -EBUSY : 0;
}

static void disk_unlock_bytes(int fd)
{
	ofd_lock(fd, F_UNLCK, LOCK_PERM, false);
	ofd_lock(fd, F_UNLCK, LOCK_PERM + 1, false);
	ofd_lock(fd, F_UNLCK, LOCK_PERM + 3, false);
	ofd_lock(fd, F_UNLCK, LOCK_UNSHARE + 1, false);
	ofd_lock(fd, F_UNLCK, LOCK_UNSHARE + 3, false);
}

int disk_lock(struct disk *d, char *err, size_t errlen)
{
	unsigned int use = 1u << PERM_READ, unshare = 1u << PERM_WRITE |
						   1u << PERM_RESIZE;
	unsigned int n;
	int ret = 0;

	if (!d->spec.ro)
		use |= 1u << PERM_WRITE | 1u << PERM_RESIZE;
	for (n = 0; !ret && n < 4; n++) {
		if (use & (1u << n))
			ret = ofd_lock(d->fd, F_RDLCK, LOCK_PERM + n, false);
		if (!ret && (unshare & (1u << n)))
			ret = ofd_lock(d->fd, F_RDLCK, LOCK_UNSHARE + n,
				       false);
	}
	if (ret == -EINVAL || ret == -ENOLCK) {
		/* A filesystem without OFD locks: say so, go on. */
		disk_unlock_bytes(d->fd);
		return 0;
	}
	for (n = 0; !ret && n < 4; n++) {
		/* Someone refuses to share what we use... */
		if ((use & (1u << n)) &&
		    ofd_lock(d->fd, F_WRLCK, LOCK_UNSHARE + n, true))
			ret = input_errf(err, errlen, -EBUSY,
					 "disk %s: another process (QEMU, qemu-img or lkvm) has it open and does not share '%s'; ,lock=off overrides",
					 d->spec.path, perm_name[n]);
		/* ...or uses what we refuse to share. */
		else if ((unshare & (1u << n)) &&
			 ofd_lock(d->fd, F_WRLCK, LOCK_PERM + n, true))
			ret = input_errf(err, errlen, -EBUSY,
					 "disk %s: another process (QEMU, qemu-img or lkvm) is using it with '%s'; ,lock=off overrides",
					 d->spec.path, perm_name[n]);
	}
	if (ret)
		disk_unlock_bytes(d->fd);
	return ret;
}
