/*
 * passthrough.c - a host directory passed through FUSE (passthrough.h).
 *
 * Confinement.  Every inode the client can name is an O_PATH descriptor
 * in the inode table (fs_table.h), reached from the root by LOOKUPs of
 * one name each.  A name is checked (not empty, at most NAME_MAX bytes,
 * no '/', not "." or "..") and resolved relative to its parent's
 * descriptor with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) and
 * O_NOFOLLOW: a symlink is never followed on the server, a rename
 * racing a lookup can at most make the lookup find another name in the
 * tree, and nothing resolves to a place outside it.  Operations on an
 * inode go through its descriptor: *at() calls with AT_EMPTY_PATH, or,
 * where the kernel has none (reopening for I/O, chmod, utimes, xattrs),
 * the descriptor's own /proc/self/fd link, which names exactly that
 * file.  `ro` refuses every change with EROFS and opens nothing for
 * writing.
 *
 * Threads.  Requests run on the queue thread that received them.  Data
 * reads and writes, fsync and fallocate go to the queue's engine
 * (io_uring; a page-cache hit is done on the spot) and are answered
 * from the completion; the descriptor they use is held by a table
 * reference until then.  Metadata operations, which may wait on the
 * disk, run on the queue's helper threads (fuse_pool.h) where it has
 * them, so a slow lookup does not hold up reads; bookkeeping (FORGET)
 * and GETATTR (a stat of a pinned inode) run at once.
 * The tables are the only state shared between queues and helpers;
 * they take no lock to find an entry by id (fs_table.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "lkvm/fs/fs_table.h"
#include "lkvm/fs/fuse_pool.h"
#include "lkvm/fs/passthrough.h"
#include "lkvm/lib/aio.h"
#include "lkvm/lib/util.h"

#define PFS_IOV_MAX	264		/* a 1 MiB request in guest pages, and headers */
#define PFS_XATTR_MAX	65536		/* XATTR_SIZE_MAX */

struct pfs {
	struct pfs_opts o;
	int root_fd;
	struct fs_table inodes, files;
	uint64_t ttl;			/* entry and attribute validity, s */
	bool chown_new;			/* root: new files get the caller's ids */
	/*
	 * Test hook (the benchmark's slow-request injection):
	 * LKVM_TEST_FAULT=fs-slow-lookup:MS makes every LOOKUP of a name
	 * that starts with "slow" take MS milliseconds more.
	 */
	unsigned int slow_lookup_ms;
};

/* A request with I/O in flight: the open file it holds, its buffers. */
struct pfs_req {
	struct aio_io io;
	struct iovec iov[PFS_IOV_MAX];
	struct fuse_req *r;
	struct pfs *p;
	struct fst_entry *file;
};

/* ---- helpers ---- */

static int proc_path(char *buf, size_t len, int fd)
{
	return snprintf(buf, len, "/proc/self/fd/%d", fd) < (int)len ? 0 : -ENAMETOOLONG;
}

/* fd's file opened anew with flags (fd is O_PATH, so no I/O through it). */
static int reopen(int fd, int flags)
{
	char path[64];
	int nfd;

	proc_path(path, sizeof(path), fd);
	nfd = open(path, flags | O_CLOEXEC);
	return nfd < 0 ? -errno : nfd;
}

/*
 * One component, in the parent's directory only.  Without openat2
 * (kernels before 5.6, qemu-user) plain openat is as safe for it: the
 * name is one checked component and O_NOFOLLOW keeps the last (and
 * only) step from following any link, magic or not.
 */
static int open_beneath(int dirfd, const char *name, int flags, mode_t mode)
{
	static atomic_bool no_openat2;
	struct open_how how = {
		.flags = flags | O_NOFOLLOW | O_CLOEXEC,
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	long fd = -1;

	if (!atomic_load_explicit(&no_openat2, memory_order_relaxed)) {
		fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
		if (fd >= 0 || errno != ENOSYS)
			return fd < 0 ? -errno : (int)fd;
		atomic_store(&no_openat2, true);
	}
	fd = openat(dirfd, name, how.flags, how.mode);
	return fd < 0 ? -errno : (int)fd;
}

static bool name_ok(const char *s, size_t len)
{
	return len && len <= NAME_MAX && !memchr(s, '/', len) &&
	       strcmp(s, ".") && strcmp(s, "..");
}

/*
 * The request's variable part (after its fixed body) copied into buf,
 * NUL-terminated: its length, or -EINVAL if it is over cap.
 */
static ssize_t req_bytes(const struct fuse_req *r, char *buf, size_t cap)
{
	size_t n = 0;
	unsigned int i;

	if (r->in_len >= cap)
		return -EINVAL;
	for (i = 0; i < r->n_in; i++) {
		memcpy(buf + n, r->in[i].iov_base, r->in[i].iov_len);
		n += r->in[i].iov_len;
	}
	buf[n] = 0;
	return n;
}

/* NUL-terminated names in the bytes: the k-th one, checked. */
static const char *nth_name(const char *buf, size_t len, unsigned int k)
{
	const char *p = buf, *end = buf + len, *z;

	for (;;) {
		z = memchr(p, 0, end - p);
		if (!z)
			return NULL;
		if (!k--)
			return name_ok(p, z - p) ? p : NULL;
		p = z + 1;
		if (p >= end)
			return NULL;
	}
}

static void fill_attr(struct fuse_attr *a, const struct stat *st)
{
	a->ino = st->st_ino;
	a->size = st->st_size;
	a->blocks = st->st_blocks;
	a->atime = st->st_atim.tv_sec;
	a->mtime = st->st_mtim.tv_sec;
	a->ctime = st->st_ctim.tv_sec;
	a->atimensec = st->st_atim.tv_nsec;
	a->mtimensec = st->st_mtim.tv_nsec;
	a->ctimensec = st->st_ctim.tv_nsec;
	a->mode = st->st_mode;
	a->nlink = st->st_nlink;
	a->uid = st->st_uid;
	a->gid = st->st_gid;
	a->rdev = st->st_rdev;
	a->blksize = st->st_blksize;
}

static int stat_fd(int fd, struct stat *st)
{
	return fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) ? -errno : 0;
}

/*
 * name in the directory dirfd, as an inode: added to the table (one
 * more lookup for the client) and described in out.
 */
static int lookup(struct pfs *p, int dirfd, const char *name,
		  struct fuse_entry_out *out)
{
	struct fst_entry *e;
	struct stat st;
	uint64_t id;
	int fd, ret;

	fd = open_beneath(dirfd, name, O_PATH, 0);
	if (fd < 0)
		return fd;
	ret = stat_fd(fd, &st);
	if (ret) {
		close(fd);
		return ret;
	}
	ret = fst_inode_add(&p->inodes, fd, st.st_dev, st.st_ino,
			    st.st_mode & S_IFMT, &id, &e);
	if (ret)
		return ret;
	fst_put(&p->inodes, e);
	memset(out, 0, sizeof(*out));
	out->nodeid = id;
	out->generation = id >> 32;
	out->entry_valid = p->ttl;
	out->attr_valid = p->ttl;
	fill_attr(&out->attr, &st);
	return 0;
}

/* The caller's inode (by nodeid), with a reference, or NULL. */
static struct fst_entry *inode_of(struct pfs *p, const struct fuse_req *r)
{
	return fst_get(&p->inodes, r->m.h->nodeid);
}

static void reply_entry(struct fuse_req *r, int err,
			const struct fuse_entry_out *out)
{
	if (err)
		fuse_reply_err(r, err);
	else
		fuse_reply(r, 0, out, sizeof(*out));
}

/* A new file the caller made gets the caller's ids (we run as root). */
static void own(struct pfs *p, int dirfd, const char *name,
		const struct fuse_req *r)
{
	if (p->chown_new &&
	    fchownat(dirfd, name, r->m.h->uid, r->m.h->gid, AT_SYMLINK_NOFOLLOW))
		return;		/* the file stays root's; not worth failing */
}

/* ---- lookups and attributes ---- */

static void do_lookup(struct pfs *p, struct fuse_req *r)
{
	struct fuse_entry_out out;
	char name[NAME_MAX + 2];
	struct fst_entry *dir = inode_of(p, r);
	ssize_t n = req_bytes(r, name, sizeof(name));
	int ret;

	if (!dir) {
		fuse_reply_err(r, -ESTALE);
		return;
	}
	if (n < 0 || !nth_name(name, n + 1, 0))
		ret = n < 0 ? -ENAMETOOLONG : -EINVAL;
	else if (dir->type != S_IFDIR)
		ret = -ENOTDIR;
	else
		ret = lookup(p, dir->fd, name, &out);
	fst_put(&p->inodes, dir);
	if (p->slow_lookup_ms && !strncmp(name, "slow", 4))
		usleep(p->slow_lookup_ms * 1000);
	reply_entry(r, ret, &out);
}

static void do_forget(struct pfs *p, struct fuse_req *r)
{
	const struct fuse_forget_in *in = r->m.body;

	fst_inode_forget(&p->inodes, r->m.h->nodeid, in->nlookup);
	fuse_reply_none(r);
}

static void do_batch_forget(struct pfs *p, struct fuse_req *r)
{
	const struct fuse_batch_forget_in *in = r->m.body;
	struct fuse_forget_one one;
	uint32_t i;
	size_t off = 0;
	unsigned int k = 0;

	/* The entries follow the fixed part, maybe in pieces. */
	for (i = 0; i < in->count; i++) {
		uint8_t *dst = (uint8_t *)&one;
		size_t need = sizeof(one);

		while (need && k < r->n_in) {
			size_t take = MIN(need, r->in[k].iov_len - off);

			memcpy(dst, (uint8_t *)r->in[k].iov_base + off, take);
			dst += take;
			need -= take;
			off += take;
			if (off == r->in[k].iov_len) {
				k++;
				off = 0;
			}
		}
		if (need)
			break;		/* count says more than came */
		fst_inode_forget(&p->inodes, one.nodeid, one.nlookup);
	}
	fuse_reply_none(r);
}

static void reply_attr_of(struct pfs *p, struct fuse_req *r, int fd)
{
	struct fuse_attr_out out = { .attr_valid = p->ttl };
	struct stat st;
	int ret = stat_fd(fd, &st);

	if (ret) {
		fuse_reply_err(r, ret);
		return;
	}
	fill_attr(&out.attr, &st);
	fuse_reply(r, 0, &out, sizeof(out));
}

static void do_getattr(struct pfs *p, struct fuse_req *r)
{
	struct fst_entry *e = inode_of(p, r);

	if (!e) {
		fuse_reply_err(r, -ESTALE);
		return;
	}
	reply_attr_of(p, r, e->fd);
	fst_put(&p->inodes, e);
}

static int set_times(int fd, mode_t type, const struct fuse_setattr_in *in)
{
	struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT },
				  { .tv_nsec = UTIME_OMIT } };
	char path[64];

	if (in->valid & FATTR_ATIME_NOW)
		ts[0].tv_nsec = UTIME_NOW;
	else if (in->valid & FATTR_ATIME)
		ts[0] = (struct timespec){ in->atime, in->atimensec };
	if (in->valid & FATTR_MTIME_NOW)
		ts[1].tv_nsec = UTIME_NOW;
	else if (in->valid & FATTR_MTIME)
		ts[1] = (struct timespec){ in->mtime, in->mtimensec };
	if (ts[0].tv_nsec == UTIME_OMIT && ts[1].tv_nsec == UTIME_OMIT)
		return 0;
	if (ts[0].tv_nsec > UTIME_OMIT || ts[1].tv_nsec > UTIME_OMIT)
		return -EINVAL;
	/*
	 * The descriptor's /proc link leads to the file itself; for a
	 * symlink (its O_PATH descriptor was opened without following)
	 * that is the link, as lutimes wants.
	 */
	proc_path(path, sizeof(path), fd);
	(void)type;
	return utimensat(AT_FDCWD, path, ts, 0) ? -errno : 0;
}

static void do_setattr(struct pfs *p, struct fuse_req *r)
{
	const struct fuse_setattr_in *in = r->m.body;
	struct fst_entry *e = inode_of(p, r), *f = NULL;
	char path[64];
	int ret = 0;

	if (!e) {
		fuse_reply_err(r, -ESTALE);
		return;
	}
	if (p->o.ro) {
		ret = -EROFS;
		goto out;
	}
	proc_path(path, sizeof(path), e->fd);
	if (in->valid & FATTR_MODE)
		ret = e->type == S_IFLNK ? -EOPNOTSUPP :
		      chmod(path, in->mode & 07777) ? -errno : 0;
	if (!ret && (in->valid & (FATTR_UID | FATTR_GID)) &&
	    fchownat(e->fd, "",
		     (in->valid & FATTR_UID) ? in->uid : (uid_t)-1,
		     (in->valid & FATTR_GID) ? in->gid : (gid_t)-1,
		     AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))
		ret = -errno;
	if (!ret && (in->valid & FATTR_SIZE)) {
		if (e->type != S_IFREG) {
			ret = e->type == S_IFDIR ? -EISDIR : -EINVAL;
		} else if ((in->valid & FATTR_FH) &&
			   (f = fst_get(&p->files, in->fh)) && !f->is_dir) {
			ret = ftruncate(f->fd, in->size) ? -errno : 0;
		} else {
			ret = truncate(path, in->size) ? -errno : 0;
		}
		if (f)
			fst_put(&p->files, f);
	}
	if (!ret)
		ret = set_times(e->fd, e->type, in);
out:
	if (ret)
		fuse_reply_err(r, ret);
	else
		reply_attr_of(p, r, e->fd);
	fst_put(&p->inodes, e);
}

/* ---- making and removing names ---- */

/* The parent, and the names the request carries (k of them). */
static struct fst_entry *dir_and_names(struct pfs *p, struct fuse_req *r,
				       char *buf, size_t cap, unsigned int k,
				       const char **names, int *err)
{
	struct fst_entry *dir = inode_of(p, r);
	ssize_t n = req_bytes(r, buf, cap);
	unsigned int i;

	*err = 0;
	if (!dir) {
		*err = -ESTALE;
		return NULL;
	}
	for (i = 0; i < k && n >= 0; i++)
		if (!(names[i] = nth_name(buf, n + 1, i)))
			break;
	if (n < 0 || i < k)
		*err = n < 0 ? -ENAMETOOLONG : -EINVAL;
	else if (dir->type != S_IFDIR)
		*err = -ENOTDIR;
	else if (p->o.ro)
		*err = -EROFS;
	if (*err) {
		fst_put(&p->inodes, dir);
		return NULL;
	}
	return dir;
}

static void do_mkdir(struct pfs *p, struct fuse_req *r)
{
	const struct fuse_mkdir_in *in = r->m.body;
	char buf[NAME_MAX + 2];
	const char *name;
	struct fuse_entry_out out;
	struct fst_entry *dir;
	int ret;

	dir = dir_and_names(p, r, buf, sizeof(buf), 1, &name, &ret);
	if (dir) {
		ret = mkdirat(dir->fd, name, in->mode & 07777) ? -errno : 0;
		if (!ret) {
			own(p, dir->fd, name, r);
			ret = lookup(p, dir->fd, name, &out);
		}
		fst_put(&p->inodes, dir);
	}
	reply_entry(r, ret, &out);
}

static void do_mknod(struct pfs *p, struct fuse_req *r)
{
	const struct fuse_mknod_in *in = r->m.body;
	char buf[NAME_MAX + 2];
	const char *name;
	struct fuse_entry_out out;
	struct fst_entry *dir;
	mode_t type = in->mode & S_IFMT;
	int ret;

	dir = dir_and_names(p, r, buf, sizeof(buf), 1, &name, &ret);
	if (dir) {
		/* No device nodes: they would reach the host's devices. */
		if (type != S_IFREG && type != S_IFIFO && type != S_IFSOCK)
			ret = -EPERM;
		else
			ret = mknodat(dir->fd, name, in->mode, 0) ? -errno : 0;
		if (!ret) {
			own(p, dir->fd, name, r);
			ret = lookup(p, dir->fd, name, &out);
		}
		fst_put(&p->inodes, dir);
	}
	reply_entry(r, ret, &out);
}

static void do_symlink(struct pfs *p, struct fuse_req *r)
{
	char *buf = malloc(NAME_MAX + PATH_MAX + 4);
	const char *name, *target;
	struct fuse_entry_out out;
	struct fst_entry *dir;
	ssize_t n;
	int ret;

	if (!buf) {
		fuse_reply_err(r, -ENOMEM);
		return;
	}
	dir = dir_and_names(p, r, buf, NAME_MAX + PATH_MAX + 4, 1, &name, &ret);
	if (dir) {
		/* The target is any text, stored and never followed here. */
		n = r->in_len;
		target = name + strlen(name) + 1;
		if (target >= buf + n || !memchr(target, 0, buf + n + 1 - target) ||
		    !*target || strlen(target) >= PATH_MAX)
			ret = -EINVAL;
		else
			ret = symlinkat(target, dir->fd, name) ? -errno : 0;
		if (!ret) {
			own(p, dir->fd, name, r);
			ret = lookup(p, dir->fd, name, &out);
		}
		fst_put(&p->inodes, dir);
	}
	free(buf);
	reply_entry(r, ret, &out);
}

static void do_link(struct pfs *p, struct fuse_req *r)
{
	const struct fuse_link_in *in = r->m.body;
	char buf[NAME_MAX + 2], path[64];
	const char *name;
	struct fuse_entry_out out;
	struct fst_entry *dir, *old;
	int ret;

	dir = dir_and_names(p, r, buf, sizeof(buf), 1, &name, &ret);
	if (dir) {
		old = fst_get(&p->inodes, in->oldnodeid);
		if (!old) {
			ret = -ESTALE;
		} else if (old->type == S_IFDIR) {
			ret = -EPERM;
		} else {
			proc_path(path, sizeof(path), old->fd);
			ret = linkat(AT_FDCWD, path, dir->fd, name,
				     AT_SYMLINK_FOLLOW) ? -errno : 0;
		}
		if (old)
			fst_put(&p->inodes, old);
		if (!ret)
			ret = lookup(p, dir->fd, name, &out);
		fst_put(&p->inodes, dir);
	}
	reply_entry(r, ret, &out);
}

static void do_unlink(struct pfs *p, struct fuse_req *r, int flags)
{
	char buf[NAME_MAX + 2];
	const char *name;
	struct fst_entry *dir;
	int ret;

	dir = dir_and_names(p, r, buf, sizeof(buf), 1, &name, &ret);
	if (dir) {
		ret = unlinkat(dir->fd, name, flags) ? -errno : 0;
		fst_put(&p->inodes, dir);
	}
	fuse_reply_err(r, ret);
}

static void do_rename(struct pfs *p, struct fuse_req *r, uint64_t newdir,
		      uint32_t flags)
{
	char buf[2 * NAME_MAX + 4];
	const char *names[2];
	struct fst_entry *dir, *nd;
	int ret;

	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		fuse_reply_err(r, -EINVAL);	/* no whiteouts */
		return;
	}
	dir = dir_and_names(p, r, buf, sizeof(buf), 2, names, &ret);
	if (dir) {
		nd = fst_get(&p->inodes, newdir);
		if (!nd)
			ret = -ESTALE;
		else if (nd->type != S_IFDIR)
			ret = -ENOTDIR;
		else
			ret = syscall(SYS_renameat2, dir->fd, names[0], nd->fd,
				      names[1], flags) ? -errno : 0;
		if (nd)
			fst_put(&p->inodes, nd);
		fst_put(&p->inodes, dir);
	}
	fuse_reply_err(r, ret);
}

static void do_readlink(struct pfs *p, struct fuse_req *r)
{
	struct fst_entry *e = inode_of(p, r);
	char buf[PATH_MAX];
	ssize_t n;

	if (!e) {
		fuse_reply_err(r, -ESTALE);
		return;
	}
	n = e->type == S_IFLNK ? readlinkat(e->fd, "", buf, sizeof(buf)) :
				 (errno = EINVAL, -1);
	fst_put(&p->inodes, e);
	if (n < 0)
		fuse_reply_err(r, -errno);
	else
		fuse_reply(r, 0, buf, n);
}

/* ---- open files ---- */

static uint32_t open_flags(const struct pfs *p)
{
	switch (p->o.cache) {
	case PFS_CACHE_NEVER:
		return FOPEN_DIRECT_IO | FOPEN_PARALLEL_DIRECT_WRITES;
	case PFS_CACHE_ALWAYS:
		return FOPEN_KEEP_CACHE;
	default:
		return 0;
	}
}

/* The client's open flags, as the server opens the file. */
static int host_flags(const struct pfs *p, uint32_t flags)
{
	int f = flags & (O_ACCMODE | O_APPEND | O_TRUNC | O_SYNC | O_DSYNC |
			 O_NOATIME);

	if (p->o.ro && ((f & O_ACCMODE) != O_RDONLY || (f & O_TRUNC)))
		return -EROFS;
	return f;
}

static void do_open(struct pfs *p, struct fuse_req *r)
{
	const struct fuse_open_in *in = r->m.body;
	struct fuse_open_out out = { .open_flags = open_flags(p) };
	struct fst_entry *e = inode_of(p, r);
	int flags = host_flags(p, in->flags), fd, ret;

	if (!e) {
		fuse_reply_err(r, -ESTALE);
		return;
	}
	if (flags < 0)
		ret = flags;
	else if (e->type != S_IFREG)
		ret = e->type == S_IFDIR ? -EISDIR : -EINVAL;
	else
		ret = fd = reopen(e->fd, flags);
	fst_put(&p->inodes, e);
	if (ret >= 0)
		ret = fst_file_add(&p->files, fd, false, &out.fh);
	if (ret < 0)
		fuse_reply_err(r, ret);
	else
		fuse_reply(r, 0, &out, sizeof(out));
}

static void do_create(struct pfs *p, struct fuse_req *r)
{
	const struct fuse_create_in *in = r->m.body;
	struct {
		struct fuse_entry_out e;
		struct fuse_open_out o;
	} out = { .o.open_flags = open_flags(p) };
	char buf[NAME_MAX + 2];
	const char *name;
	struct fst_entry *dir;
	int flags = host_flags(p, in->flags), fd = -1, ret;

	dir = dir_and_names(p, r, buf, sizeof(buf), 1, &name, &ret);
	if (!dir) {
		fuse_reply_err(r, ret);
		return;
	}
	ret = flags;
	/*
	 * O_NONBLOCK: the name may already be a FIFO, whose open would
	 * wait for a writer for ever (libFuzzer found that).  Only a
	 * regular file is opened through the share, as OPEN insists too.
	 */
	if (flags >= 0)
		ret = fd = open_beneath(dir->fd, name,
					flags | O_CREAT | O_NONBLOCK |
					(in->flags & O_EXCL), in->mode & 07777);
	if (ret >= 0) {
		struct stat st;

		if (fstat(fd, &st) || !S_ISREG(st.st_mode))
			ret = -EINVAL;
		else if (fcntl(fd, F_SETFL, flags & (O_APPEND | O_NOATIME)))
			ret = -errno;
	}
	if (ret >= 0) {
		own(p, dir->fd, name, r);
		ret = lookup(p, dir->fd, name, &out.e);
	}
	fst_put(&p->inodes, dir);
	if (!ret)
		ret = fst_file_add(&p->files, fd, false, &out.o.fh);
	else if (fd >= 0)
		close(fd);
	if (ret < 0)
		fuse_reply_err(r, ret);
	else
		fuse_reply(r, 0, &out, sizeof(out));
}

static void do_release(struct pfs *p, struct fuse_req *r)
{
	const struct fuse_release_in *in = r->m.body;

	fst_file_release(&p->files, in->fh);
	fuse_reply_err(r, 0);
}

/* A file handle for data I/O: a regular file's, with a reference. */
static struct fst_entry *file_of(struct pfs *p, uint64_t fh)
{
	struct fst_entry *f = fst_get(&p->files, fh);

	if (f && f->is_dir) {
		fst_put(&p->files, f);
		return NULL;
	}
	return f;
}

static void io_done(struct aio_io *io, long res)
{
	struct pfs_req *q = container_of(io, struct pfs_req, io);
	struct fuse_req *r = q->r;

	fst_put(&q->p->files, q->file);
	if (res < 0) {
		fuse_reply_err(r, res);
	} else if (r->opcode == FUSE_READ) {
		fuse_reply_out(r, res);
	} else if (r->opcode == FUSE_WRITE) {
		struct fuse_write_out out = { .size = res };

		fuse_reply(r, 0, &out, sizeof(out));
	} else {
		fuse_reply_err(r, 0);
	}
}

/* Up to len bytes of iov into q->iov: how many pieces, or -EINVAL. */
static int take_iov(struct pfs_req *q, const struct iovec *iov,
		    unsigned int n, size_t len)
{
	unsigned int i, k = 0;

	for (i = 0; i < n && len; i++) {
		if (k == PFS_IOV_MAX)
			return -EINVAL;
		q->iov[k] = iov[i];
		if (q->iov[k].iov_len > len)
			q->iov[k].iov_len = len;
		len -= q->iov[k++].iov_len;
	}
	return len ? -EINVAL : (int)k;
}

static void submit_io(struct pfs *p, struct fuse_req *r, struct fst_entry *f,
		      struct aio_io io)
{
	struct pfs_req *q = r->priv;

	q->r = r;
	q->p = p;
	q->file = f;
	io.fd = f->fd;
	io.done = io_done;
	if (io.op == AIO_READ || io.op == AIO_WRITE) {
		io.iov = q->iov;
		io.hint = AIO_TRY_NOWAIT;
	}
	q->io = io;
	aio_submit(fuse_queue_aio(r->q), &q->io);
}

static void do_read(struct pfs *p, struct fuse_req *r)
{
	const struct fuse_read_in *in = r->m.body;
	struct pfs_req *q = r->priv;
	struct fst_entry *f;
	int n;

	if (in->size > r->out_len) {
		fuse_reply_err(r, -EINVAL);
		return;
	}
	f = file_of(p, in->fh);
	if (!f) {
		fuse_reply_err(r, -EBADF);
		return;
	}
	n = take_iov(q, r->out, r->n_out, in->size);
	if (n < 0 || in->offset > INT64_MAX) {
		fst_put(&p->files, f);
		fuse_reply_err(r, -EINVAL);
		return;
	}
	submit_io(p, r, f, (struct aio_io){ .op = AIO_READ, .niov = n,
					    .off = in->offset });
}

static void do_write(struct pfs *p, struct fuse_req *r)
{
	const struct fuse_write_in *in = r->m.body;
	struct pfs_req *q = r->priv;
	struct fst_entry *f;
	int n;

	if (p->o.ro) {
		fuse_reply_err(r, -EROFS);
		return;
	}
	if (in->size != r->in_len || in->offset > INT64_MAX) {
		fuse_reply_err(r, -EINVAL);
		return;
	}
	f = file_of(p, in->fh);
	if (!f) {
		fuse_reply_err(r, -EBADF);
		return;
	}
	n = take_iov(q, r->in, r->n_in, in->size);
	if (n < 0) {
		fst_put(&p->files, f);
		fuse_reply_err(r, n);
		return;
	}
	submit_io(p, r, f, (struct aio_io){ .op = AIO_WRITE, .niov = n,
					    .off = in->offset });
}

static void do_fsync(struct pfs *p, struct fuse_req *r)
{
	const struct fuse_fsync_in *in = r->m.body;
	struct fst_entry *f = file_of(p, in->fh);

	if (!f) {
		fuse_reply_err(r, -EBADF);
		return;
	}
	submit_io(p, r, f, (struct aio_io){ .op = AIO_FDATASYNC });
}

static void do_fallocate(struct pfs *p, struct fuse_req *r)
{
	const struct fuse_fallocate_in *in = r->m.body;
	struct fst_entry *f;

	if (p->o.ro) {
		fuse_reply_err(r, -EROFS);
		return;
	}
	if (in->offset > INT64_MAX || in->length > INT64_MAX) {
		fuse_reply_err(r, -EINVAL);
		return;
	}
	f = file_of(p, in->fh);
	if (!f) {
		fuse_reply_err(r, -EBADF);
		return;
	}
	submit_io(p, r, f, (struct aio_io){ .op = AIO_FALLOCATE,
					    .off = in->offset,
					    .len = in->length,
					    .mode = in->mode });
}

static void do_lseek(struct pfs *p, struct fuse_req *r)
{
	const struct fuse_lseek_in *in = r->m.body;
	struct fuse_lseek_out out;
	struct fst_entry *f = file_of(p, in->fh);
	off_t o;

	if (!f) {
		fuse_reply_err(r, -EBADF);
		return;
	}
	if (in->whence != SEEK_DATA && in->whence != SEEK_HOLE &&
	    in->whence != SEEK_SET && in->whence != SEEK_END &&
	    in->whence != SEEK_CUR) {
		fst_put(&p->files, f);
		fuse_reply_err(r, -EINVAL);
		return;
	}
	o = lseek(f->fd, (off_t)in->offset, in->whence);
	fst_put(&p->files, f);
	if (o < 0) {
		fuse_reply_err(r, -errno);
		return;
	}
	out.offset = o;
	fuse_reply(r, 0, &out, sizeof(out));
}

static void do_copy_file_range(struct pfs *p, struct fuse_req *r)
{
	const struct fuse_copy_file_range_in *in = r->m.body;
	struct fst_entry *a, *b;
	struct fuse_write_out out = { 0 };
	loff_t oi = in->off_in, oo = in->off_out;
	ssize_t n;

	if (p->o.ro) {
		fuse_reply_err(r, -EROFS);
		return;
	}
	a = file_of(p, in->fh_in);
	b = file_of(p, in->fh_out);
	if (!a || !b || in->off_in > INT64_MAX || in->off_out > INT64_MAX)
		n = -1, errno = !a || !b ? EBADF : EINVAL;
	else
		n = copy_file_range(a->fd, &oi, b->fd, &oo,
				    MIN(in->len, (uint64_t)1 << 30), 0);
	if (a)
		fst_put(&p->files, a);
	if (b)
		fst_put(&p->files, b);
	if (n < 0) {
		fuse_reply_err(r, -errno);
		return;
	}
	out.size = n;
	fuse_reply(r, 0, &out, sizeof(out));
}

/* ---- directories ---- */

static void do_opendir(struct pfs *p, struct fuse_req *r)
{
	struct fuse_open_out out = { 0 };
	struct fst_entry *e = inode_of(p, r);
	int ret;

	if (!e) {
		fuse_reply_err(r, -ESTALE);
		return;
	}
	ret = e->type == S_IFDIR ? reopen(e->fd, O_RDONLY | O_DIRECTORY) :
				   -ENOTDIR;
	fst_put(&p->inodes, e);
	if (ret >= 0)
		ret = fst_file_add(&p->files, ret, true, &out.fh);
	if (ret < 0)
		fuse_reply_err(r, ret);
	else
		fuse_reply(r, 0, &out, sizeof(out));
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/*
 * READDIR and READDIRPLUS: entries from the handle's offset, as many as
 * fit in the size asked for.  The directory is positioned at the offset
 * each time (its cookies are the host filesystem's d_off), under the
 * handle's lock, so two readers of one handle do not mix.
 */
static void do_readdir(struct pfs *p, struct fuse_req *r, bool plus)
{
	const struct fuse_read_in *in = r->m.body;
	size_t cap = MIN((size_t)in->size, r->out_len), len = 0;
	struct fst_entry *f = fst_get(&p->files, in->fh);
	char dents[8192];
	uint8_t *out;
	long n = 0, pos;
	int ret = 0;

	if (!f || !f->is_dir) {
		if (f)
			fst_put(&p->files, f);
		fuse_reply_err(r, -EBADF);
		return;
	}
	out = malloc(cap ? cap : 1);
	if (!out) {
		fst_put(&p->files, f);
		fuse_reply_err(r, -ENOMEM);
		return;
	}
	pthread_mutex_lock(&f->dir_lock);
	if (lseek(f->fd, (off_t)in->offset, SEEK_SET) < 0)
		ret = -errno;
	while (!ret) {
		n = syscall(SYS_getdents64, f->fd, dents, sizeof(dents));
		if (n <= 0) {
			ret = n < 0 ? -errno : 0;
			break;
		}
		for (pos = 0; pos < n;) {
			struct linux_dirent64 *d = (void *)(dents + pos);
			size_t nl = strlen(d->d_name);
			size_t rec = plus ? FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET_DIRENTPLUS + nl) :
					    FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + nl);
			struct fuse_dirent *fd;

			if (len + rec > cap)
				goto full;
			memset(out + len, 0, rec);
			if (plus) {
				struct fuse_direntplus *dp = (void *)(out + len);
				bool dot = !strcmp(d->d_name, ".") ||
					   !strcmp(d->d_name, "..");

				/* No entry (nodeid 0) for dots or a name
				 * gone meanwhile: the client looks it up. */
				if (!dot && lookup(p, f->fd, d->d_name,
						   &dp->entry_out))
					memset(&dp->entry_out, 0,
					       sizeof(dp->entry_out));
				fd = &dp->dirent;
			} else {
				fd = (void *)(out + len);
			}
			fd->ino = d->d_ino;
			fd->off = d->d_off;
			fd->namelen = nl;
			fd->type = d->d_type;
			memcpy(fd->name, d->d_name, nl);
			len += rec;
			pos += d->d_reclen;
		}
	}
full:
	pthread_mutex_unlock(&f->dir_lock);
	fst_put(&p->files, f);
	if (ret && !len)
		fuse_reply_err(r, ret);
	else
		fuse_reply(r, 0, out, len);
	free(out);
}

static void do_fsyncdir(struct pfs *p, struct fuse_req *r)
{
	const struct fuse_fsync_in *in = r->m.body;
	struct fst_entry *f = fst_get(&p->files, in->fh);
	int ret;

	if (!f) {
		fuse_reply_err(r, -EBADF);
		return;
	}
	ret = fsync(f->fd) ? -errno : 0;
	fst_put(&p->files, f);
	fuse_reply_err(r, ret);
}

/* ---- the rest ---- */

static void do_statfs(struct pfs *p, struct fuse_req *r)
{
	struct fuse_statfs_out out = { 0 };
	struct fst_entry *e = inode_of(p, r);
	struct statfs s;
	int ret;

	ret = fstatfs(e ? e->fd : p->root_fd, &s) ? -errno : 0;
	if (e)
		fst_put(&p->inodes, e);
	if (ret) {
		fuse_reply_err(r, ret);
		return;
	}
	out.st.blocks = s.f_blocks;
	out.st.bfree = s.f_bfree;
	out.st.bavail = s.f_bavail;
	out.st.files = s.f_files;
	out.st.ffree = s.f_ffree;
	out.st.bsize = s.f_bsize;
	out.st.namelen = s.f_namelen;
	out.st.frsize = s.f_frsize;
	fuse_reply(r, 0, &out, sizeof(out));
}

static void do_access(struct pfs *p, struct fuse_req *r)
{
	const struct fuse_access_in *in = r->m.body;
	struct fst_entry *e = inode_of(p, r);
	char path[64];
	int ret;

	if (!e) {
		fuse_reply_err(r, -ESTALE);
		return;
	}
	proc_path(path, sizeof(path), e->fd);
	if ((in->mask & W_OK) && p->o.ro)
		ret = -EROFS;
	else
		ret = faccessat(AT_FDCWD, path, in->mask & 7, 0) ? -errno : 0;
	fst_put(&p->inodes, e);
	fuse_reply_err(r, ret);
}

enum xop { XGET, XLIST, XSET, XREMOVE };

/*
 * Extended attributes, through the descriptor's /proc link: the file
 * itself.  A symlink's would be the link's own, which the link cannot
 * have in the user namespace; they are refused.
 */
static void do_xattr(struct pfs *p, struct fuse_req *r, enum xop op)
{
	struct fst_entry *e = inode_of(p, r);
	char path[64], *buf = NULL, *val = NULL;
	const char *name = NULL;
	uint32_t size = 0, flags = 0;
	ssize_t n = 0, len;

	if (!e) {
		fuse_reply_err(r, -ESTALE);
		return;
	}
	if (op == XSET || op == XREMOVE) {
		if (p->o.ro) {
			n = -EROFS;
			goto out;
		}
	}
	if (op != XREMOVE) {
		memcpy(&size, r->m.body, 4);
		if (op == XSET)
			memcpy(&flags, (uint8_t *)r->m.body + 4, 4);
	}
	buf = malloc(XATTR_NAME_MAX + 2 + PFS_XATTR_MAX + 1);
	if (!buf) {
		n = -ENOMEM;
		goto out;
	}
	len = req_bytes(r, buf, XATTR_NAME_MAX + 2 + PFS_XATTR_MAX + 1);
	if (op != XLIST) {
		char *z = len < 0 ? NULL : memchr(buf, 0, len + 1);

		if (!z || z == buf || z - buf > XATTR_NAME_MAX) {
			n = -EINVAL;
			goto out;
		}
		name = buf;
		val = z + 1;
		if (op == XSET && (size > PFS_XATTR_MAX ||
				   (ssize_t)size != len - (val - buf))) {
			n = -EINVAL;
			goto out;
		}
	}
	if (e->type == S_IFLNK) {
		n = -EOPNOTSUPP;
		goto out;
	}
	proc_path(path, sizeof(path), e->fd);
	switch (op) {
	case XGET:
	case XLIST: {
		char *data = malloc(MIN(size, PFS_XATTR_MAX) + 1);

		if (!data) {
			n = -ENOMEM;
			break;
		}
		n = op == XGET ? getxattr(path, name, data, MIN(size, PFS_XATTR_MAX)) :
				 listxattr(path, data, MIN(size, PFS_XATTR_MAX));
		if (n < 0) {
			n = -errno;
		} else if (!size) {
			struct fuse_getxattr_out out = { .size = n };

			free(data);
			fst_put(&p->inodes, e);
			free(buf);
			fuse_reply(r, 0, &out, sizeof(out));
			return;
		} else {
			fst_put(&p->inodes, e);
			free(buf);
			fuse_reply(r, 0, data, n);
			free(data);
			return;
		}
		free(data);
		break;
	}
	case XSET:
		n = setxattr(path, name, val, size, flags) ? -errno : 0;
		break;
	case XREMOVE:
		n = removexattr(path, name) ? -errno : 0;
		break;
	}
out:
	free(buf);
	fst_put(&p->inodes, e);
	fuse_reply_err(r, n < 0 ? n : 0);
}

/*
 * A request that may block, on a helper of its queue (or here); the
 * rest never come here (pfs_request).
 */
static void pfs_blocking(void *fs, struct fuse_req *r)
{
	struct pfs *p = fs;

	switch (r->opcode) {
	case FUSE_LOOKUP:	do_lookup(p, r); break;
	case FUSE_SETATTR:	do_setattr(p, r); break;
	case FUSE_MKDIR:	do_mkdir(p, r); break;
	case FUSE_MKNOD:	do_mknod(p, r); break;
	case FUSE_SYMLINK:	do_symlink(p, r); break;
	case FUSE_LINK:		do_link(p, r); break;
	case FUSE_UNLINK:	do_unlink(p, r, 0); break;
	case FUSE_RMDIR:	do_unlink(p, r, AT_REMOVEDIR); break;
	case FUSE_RENAME:
		do_rename(p, r, ((const struct fuse_rename_in *)r->m.body)->newdir, 0);
		break;
	case FUSE_RENAME2: {
		const struct fuse_rename2_in *in = r->m.body;

		do_rename(p, r, in->newdir, in->flags);
		break;
	}
	case FUSE_READLINK:	do_readlink(p, r); break;
	case FUSE_OPEN:		do_open(p, r); break;
	case FUSE_CREATE:	do_create(p, r); break;
	case FUSE_RELEASE:
	case FUSE_RELEASEDIR:	do_release(p, r); break;
	case FUSE_OPENDIR:	do_opendir(p, r); break;
	case FUSE_READDIR:	do_readdir(p, r, false); break;
	case FUSE_READDIRPLUS:	do_readdir(p, r, true); break;
	case FUSE_FSYNCDIR:	do_fsyncdir(p, r); break;
	case FUSE_STATFS:	do_statfs(p, r); break;
	case FUSE_ACCESS:	do_access(p, r); break;
	case FUSE_GETXATTR:	do_xattr(p, r, XGET); break;
	case FUSE_LISTXATTR:	do_xattr(p, r, XLIST); break;
	case FUSE_SETXATTR:	do_xattr(p, r, XSET); break;
	case FUSE_REMOVEXATTR:	do_xattr(p, r, XREMOVE); break;
	case FUSE_LSEEK:	do_lseek(p, r); break;
	case FUSE_COPY_FILE_RANGE: do_copy_file_range(p, r); break;
	case FUSE_SYNCFS:
		fuse_reply_err(r, syncfs(p->root_fd) ? -errno : 0);
		break;
	default:		fuse_reply_err(r, -ENOSYS); break;
	}
}

/*
 * On the queue's thread: data I/O goes to its ring, bookkeeping is done
 * at once, everything that may wait on the disk to a helper.
 */
static void pfs_request(void *fs, struct fuse_req *r)
{
	struct pfs *p = fs;

	switch (r->opcode) {
	case FUSE_READ:		do_read(p, r); break;
	case FUSE_WRITE:	do_write(p, r); break;
	case FUSE_FSYNC:	do_fsync(p, r); break;
	case FUSE_FALLOCATE:	do_fallocate(p, r); break;
	case FUSE_FORGET:	do_forget(p, r); break;
	case FUSE_BATCH_FORGET:	do_batch_forget(p, r); break;
	/*
	 * The inode is pinned in memory by its O_PATH descriptor: a stat
	 * of it reads no disk on a local filesystem (a share on NFS could
	 * still wait here).
	 */
	case FUSE_GETATTR:	do_getattr(p, r); break;
	case FUSE_FLUSH:
	case FUSE_DESTROY:	fuse_reply_err(r, 0); break;
	case FUSE_INTERRUPT:	fuse_reply_none(r); break;
	default:		fuse_run_blocking(r, pfs_blocking, p); break;
	}
}

static void pfs_init(void *fs, const struct fuse_init_in *in,
		     struct fuse_init_out *out)
{
	(void)fs;
	out->flags |= in->flags & (FUSE_ASYNC_READ | FUSE_BIG_WRITES |
				   FUSE_ATOMIC_O_TRUNC | FUSE_PARALLEL_DIROPS |
				   FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO |
				   FUSE_ASYNC_DIO);
}

const struct fuse_fs_ops pfs_fuse_ops = {
	.req_priv = sizeof(struct pfs_req),
	.pool_threads = 4,
	.init = pfs_init,
	.request = pfs_request,
};

/*
 * Every inode the client holds is a descriptor: the soft limit (1024 by
 * default) would turn lookups into EMFILE long before the tables are
 * full.  Raised toward want, up to the hard limit, for the process
 * (lkvm is one; an embedder shares this), as virtiofsd does.
 */
static void raise_nofile(rlim_t want)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? want :
			      MIN(want, rl.rlim_max);
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int pfs_open(struct pfs **pp, const struct pfs_opts *o, char *err,
	     size_t errlen)
{
	struct pfs *p = calloc(1, sizeof(*p));
	struct stat st;
	int ret;

	*pp = NULL;
	if (!p)
		return errf(err, errlen, -ENOMEM, "out of memory");
	p->o = *o;
	p->root_fd = open(o->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (p->root_fd < 0) {
		ret = errf(err, errlen, -errno, "%s: %s", o->dir, strerror(errno));
		free(p);
		return ret;
	}
	ret = stat_fd(p->root_fd, &st);
	if (!ret)
		ret = fst_init(&p->inodes, o->max_inodes ? o->max_inodes :
			       PFS_MAX_INODES, true);
	if (!ret)
		ret = fst_init(&p->files, o->max_files ? o->max_files :
			       PFS_MAX_FILES, false);
	if (!ret) {
		int rfd = fcntl(p->root_fd, F_DUPFD_CLOEXEC, 0);

		ret = rfd < 0 ? -errno :
		      fst_inode_root(&p->inodes, rfd, st.st_dev, st.st_ino);
	}
	if (ret) {
		pfs_close(p);
		return errf(err, errlen, ret, "%s: %s", o->dir, strerror(-ret));
	}
	raise_nofile((rlim_t)p->inodes.cap + p->files.cap + 256);
	p->ttl = o->cache == PFS_CACHE_NEVER ? 0 :
		 o->cache == PFS_CACHE_ALWAYS ? 86400 : 1;
	p->chown_new = geteuid() == 0;
	{
		const char *f = getenv("LKVM_TEST_FAULT");

		if (f && !strncmp(f, "fs-slow-lookup:", 15))
			p->slow_lookup_ms = atoi(f + 15);
	}
	*pp = p;
	return 0;
}

void pfs_close(struct pfs *p)
{
	if (!p)
		return;
	if (p->inodes.e)
		fst_free(&p->inodes);
	if (p->files.e)
		fst_free(&p->files);
	if (p->root_fd >= 0)
		close(p->root_fd);
	free(p);
}

void pfs_counts(struct pfs *p, uint32_t *inodes, uint32_t *files)
{
	*inodes = fst_count(&p->inodes);
	*files = fst_count(&p->files);
}
