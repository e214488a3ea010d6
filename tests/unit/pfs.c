/*
 * Unit tests of the passthrough filesystem (fs/passthrough.c) and its
 * tables (fs/fs_table.c), with raw FUSE requests through the /dev/fuse
 * transport's test queue: lookups, escapes (".." past the root, names
 * with '/', symlinks to / and out of the tree, a rename during use,
 * very long names), stale and forged ids, the inode table's cap with
 * FORGET freeing, and a read-only share that changes nothing.  Nothing
 * outside the shared directory may change.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lkvm/fs/fuse_devq.h"
#include "lkvm/fs/passthrough.h"
#include "test.h"

static int rx_fd;
static struct fuse_devq *dq;
static uint64_t unique;
static uint8_t reply_buf[1 << 17];
static size_t reply_len;

/*
 * One request: header, fixed body, then the variable part (names).
 * Returns the reply's error (0 or -errno); its payload is in reply_buf.
 * 1 if no reply came (FORGET).
 */
static int req(uint32_t op, uint64_t nodeid, const void *body, size_t blen,
	       const void *var, size_t vlen)
{
	static uint8_t buf[1 << 16];
	struct fuse_in_header *h = (void *)buf;
	struct fuse_out_header *oh = (void *)reply_buf;
	ssize_t n;

	memset(h, 0, sizeof(*h));
	h->len = sizeof(*h) + blen + vlen;
	h->opcode = op;
	h->unique = ++unique;
	h->nodeid = nodeid;
	if (blen)
		memcpy(buf + sizeof(*h), body, blen);
	if (vlen)
		memcpy(buf + sizeof(*h) + blen, var, vlen);
	fuse_devq_test_request(dq, buf, h->len);
	n = recv(rx_fd, reply_buf, sizeof(reply_buf), MSG_DONTWAIT);
	if (n < 0)
		return 1;
	if (n < (ssize_t)sizeof(*oh) || oh->len != n || oh->unique != unique)
		return -EPROTO;
	reply_len = n - sizeof(*oh);
	return oh->error;
}

static int lookup(uint64_t parent, const char *name, uint64_t *id)
{
	int ret = req(FUSE_LOOKUP, parent, NULL, 0, name, strlen(name) + 1);

	if (!ret)
		*id = ((struct fuse_entry_out *)(reply_buf + 16))->nodeid;
	return ret;
}

static int open_file(uint64_t node, uint32_t flags, uint64_t *fh)
{
	struct fuse_open_in in = { .flags = flags };
	int ret = req(FUSE_OPEN, node, &in, sizeof(in), NULL, 0);

	if (!ret)
		*fh = ((struct fuse_open_out *)(reply_buf + 16))->fh;
	return ret;
}

static int create(uint64_t parent, const char *name, uint64_t *fh)
{
	struct fuse_create_in in = { .flags = O_RDWR, .mode = S_IFREG | 0644 };
	int ret = req(FUSE_CREATE, parent, &in, sizeof(in), name, strlen(name) + 1);

	if (!ret)
		*fh = ((struct fuse_open_out *)(reply_buf + 16 +
			sizeof(struct fuse_entry_out)))->fh;
	return ret;
}

static int forget(uint64_t node, uint64_t n)
{
	struct fuse_forget_in in = { .nlookup = n };

	return req(FUSE_FORGET, node, &in, sizeof(in), NULL, 0);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n;
}

/* Every name under dir (recursively) with its size, as one string. */
static void listing(const char *dir, char *out, size_t cap)
{
	char cmd[512];
	FILE *f;
	size_t n;

	snprintf(cmd, sizeof(cmd), "cd %s && find . -printf '%%p %%s %%m\\n' | sort", dir);
	f = popen(cmd, "r");
	n = f ? fread(out, 1, cap - 1, f) : 0;
	out[n] = 0;
	if (f)
		pclose(f);
}

static int start(const char *dir, bool ro, uint32_t max_inodes,
		 struct pfs **p)
{
	struct pfs_opts o = { .dir = dir, .ro = ro, .max_inodes = max_inodes };
	char err[256];
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) ||
	    pfs_open(p, &o, err, sizeof(err)) ||
	    fuse_devq_test_open(&dq, &pfs_fuse_ops, *p, sv[1])) {
		fprintf(stderr, "setup failed\n");
		return -1;
	}
	rx_fd = sv[0];
	return sv[1];
}

static void stop(struct pfs *p, int tx)
{
	fuse_devq_test_close(dq);
	pfs_close(p);
	close(tx);
	close(rx_fd);
}

int main(void)
{
	char top[] = "/tmp/lkvm-pfs.XXXXXX", root[64], path[1024];
	static char before[1 << 16], after[1 << 16];
	char longname[300];
	uint64_t a, sub, lnk, fh, id, ids[16];
	struct pfs *p;
	int tx, i, fds, ret;

	if (!mkdtemp(top))
		return 1;
	snprintf(root, sizeof(root), "%s/share", top);
	snprintf(path, sizeof(path), "mkdir -p %s/sub %s/outside && echo secret > %s/outside/secret && "
		 "echo hello > %s/a.txt && echo bee > %s/sub/b.txt && "
		 "ln -s / %s/to_root && ln -s ../outside %s/to_outside && "
		 "for i in 1 2 3 4 5 6 7 8 9 10; do echo $i > %s/n$i; done",
		 root, top, top, root, root, root, root, root);
	if (system(path))
		return 1;
	listing(top, before, sizeof(before));

	tx = start(root, false, 0, &p);
	if (tx < 0)
		return 1;
	CHECK_EQ(lookup(FUSE_ROOT_ID, "a.txt", &a), 0);
	CHECK_EQ(((struct fuse_entry_out *)(reply_buf + 16))->attr.size, 6);
	CHECK_EQ(lookup(FUSE_ROOT_ID, "..", &id), -EINVAL);
	CHECK_EQ(lookup(FUSE_ROOT_ID, ".", &id), -EINVAL);
	CHECK_EQ(lookup(FUSE_ROOT_ID, "sub/b.txt", &id), -EINVAL);
	CHECK_EQ(lookup(FUSE_ROOT_ID, "../outside/secret", &id), -EINVAL);
	CHECK_EQ(lookup(FUSE_ROOT_ID, "", &id), -EINVAL);
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	CHECK(lookup(FUSE_ROOT_ID, longname, &id) < 0);
	/* A name without its NUL, and a lookup in a file. */
	CHECK(req(FUSE_LOOKUP, FUSE_ROOT_ID, NULL, 0, "a.txt", 5) != 0 ||
	      ((struct fuse_entry_out *)(reply_buf + 16))->nodeid == a);
	CHECK_EQ(lookup(a, "x", &id), -ENOTDIR);

	/* Symlinks are never followed by the server. */
	CHECK_EQ(lookup(FUSE_ROOT_ID, "to_root", &lnk), 0);
	CHECK_EQ(lookup(lnk, "etc", &id), -ENOTDIR);
	CHECK(open_file(lnk, O_RDONLY, &fh) < 0);
	CHECK_EQ(req(FUSE_READLINK, lnk, NULL, 0, NULL, 0), 0);
	CHECK(reply_len == 1 && reply_buf[16] == '/');
	CHECK_EQ(lookup(FUSE_ROOT_ID, "to_outside", &lnk), 0);
	CHECK_EQ(lookup(lnk, "secret", &id), -ENOTDIR);
	{
		struct fuse_create_in in = { .flags = O_RDWR, .mode = 0644 };

		CHECK(req(FUSE_CREATE, lnk, &in, sizeof(in), "evil", 5) < 0);
		CHECK(req(FUSE_CREATE, FUSE_ROOT_ID, &in, sizeof(in),
			  "../evil", 8) == -EINVAL);
	}
	/* The server makes a symlink to / as text; it still leads nowhere. */
	CHECK_EQ(req(FUSE_SYMLINK, FUSE_ROOT_ID, NULL, 0, "s\0/etc/passwd", 14), 0);
	CHECK_EQ(lookup(FUSE_ROOT_ID, "s", &id), 0);
	CHECK(open_file(id, O_RDONLY, &fh) < 0);
	/* Hard links: not of a directory, not to a name with a '/'. */
	CHECK_EQ(lookup(FUSE_ROOT_ID, "sub", &sub), 0);
	{
		struct fuse_link_in in = { .oldnodeid = sub };
		struct fuse_link_in in2 = { .oldnodeid = a };

		CHECK_EQ(req(FUSE_LINK, FUSE_ROOT_ID, &in, sizeof(in), "d2", 3), -EPERM);
		CHECK_EQ(req(FUSE_LINK, FUSE_ROOT_ID, &in2, sizeof(in2), "../x", 5), -EINVAL);
		CHECK_EQ(req(FUSE_LINK, FUSE_ROOT_ID, &in2, sizeof(in2), "a2", 3), 0);
	}
	/* No device nodes.  A FIFO may be made, but not opened: its open
	 * would wait for a writer for ever (CREATE of an existing one). */
	{
		struct fuse_mknod_in in = { .mode = S_IFCHR | 0666, .rdev = 0x0103 };
		struct fuse_mknod_in fifo = { .mode = S_IFIFO | 0644 };

		CHECK_EQ(req(FUSE_MKNOD, FUSE_ROOT_ID, &in, sizeof(in), "null", 5), -EPERM);
		CHECK_EQ(req(FUSE_MKNOD, FUSE_ROOT_ID, &fifo, sizeof(fifo), "fifo", 5), 0);
		CHECK_EQ(create(FUSE_ROOT_ID, "fifo", &fh), -EINVAL);
		CHECK_EQ(lookup(FUSE_ROOT_ID, "fifo", &id), 0);
		CHECK_EQ(open_file(id, O_RDONLY, &fh), -EINVAL);
	}
	/* A rename of the parent while it is in use: the inode moves along. */
	{
		struct fuse_rename_in in = { .newdir = FUSE_ROOT_ID };

		CHECK_EQ(req(FUSE_RENAME, FUSE_ROOT_ID, &in, sizeof(in), "sub\0sub2", 9), 0);
		CHECK_EQ(lookup(sub, "b.txt", &id), 0);
		CHECK_EQ(req(FUSE_RENAME, FUSE_ROOT_ID, &in, sizeof(in), "sub2\0../sub3", 13), -EINVAL);
	}
	/* Stale and forged ids. */
	CHECK_EQ(req(FUSE_GETATTR, 0x123456789ULL, &(struct fuse_getattr_in){ 0 },
		     sizeof(struct fuse_getattr_in), NULL, 0), -ESTALE);
	CHECK_EQ(req(FUSE_GETATTR, 0, &(struct fuse_getattr_in){ 0 },
		     sizeof(struct fuse_getattr_in), NULL, 0), -ESTALE);
	{
		struct fuse_read_in in = { .fh = 0xdead00000001ULL, .size = 10 };

		CHECK_EQ(req(FUSE_READ, a, &in, sizeof(in), NULL, 0), -EBADF);
	}
	/* A write and a read through a handle, then release: the handle dies. */
	CHECK_EQ(create(FUSE_ROOT_ID, "made.txt", &fh), 0);
	{
		struct fuse_write_in w = { .fh = fh, .size = 5 };
		struct fuse_read_in rd = { .fh = fh, .size = 100 };
		struct fuse_release_in rel = { .fh = fh };

		CHECK_EQ(req(FUSE_WRITE, FUSE_ROOT_ID, &w, sizeof(w), "12345", 5), 0);
		CHECK_EQ(req(FUSE_READ, FUSE_ROOT_ID, &rd, sizeof(rd), NULL, 0), 0);
		CHECK(reply_len == 5 && !memcmp(reply_buf + 16, "12345", 5));
		CHECK_EQ(req(FUSE_RELEASE, FUSE_ROOT_ID, &rel, sizeof(rel), NULL, 0), 0);
		CHECK_EQ(req(FUSE_READ, FUSE_ROOT_ID, &rd, sizeof(rd), NULL, 0), -EBADF);
		w.size = 6;	/* says more than it carries */
		CHECK_EQ(req(FUSE_WRITE, FUSE_ROOT_ID, &w, sizeof(w), "12345", 5), -EINVAL);
	}
	/* Forget: the node goes (its lookups counted), then its id is stale. */
	CHECK_EQ(lookup(FUSE_ROOT_ID, "n1", &id), 0);
	CHECK_EQ(lookup(FUSE_ROOT_ID, "n1", &ids[0]), 0);
	CHECK(id == ids[0]);
	CHECK_EQ(forget(id, 1), 1);
	CHECK_EQ(req(FUSE_GETATTR, id, &(struct fuse_getattr_in){ 0 },
		     sizeof(struct fuse_getattr_in), NULL, 0), 0);
	CHECK_EQ(forget(id, 1), 1);
	CHECK_EQ(req(FUSE_GETATTR, id, &(struct fuse_getattr_in){ 0 },
		     sizeof(struct fuse_getattr_in), NULL, 0), -ESTALE);
	CHECK_EQ(forget(FUSE_ROOT_ID, 100), 1);	/* the root stays */
	CHECK_EQ(req(FUSE_GETATTR, FUSE_ROOT_ID, &(struct fuse_getattr_in){ 0 },
		     sizeof(struct fuse_getattr_in), NULL, 0), 0);
	CHECK_EQ(req(9999, FUSE_ROOT_ID, NULL, 0, NULL, 0), -ENOSYS);
	stop(p, tx);

	/* The inode table's cap: refused with ENFILE, never host fds. */
	fds = count_fds();
	tx = start(root, false, 6, &p);
	for (i = 0, ret = 0; i < 10 && !ret; i++) {
		char n[8];

		snprintf(n, sizeof(n), "n%d", i + 1);
		ret = lookup(FUSE_ROOT_ID, n, &ids[i]);
	}
	CHECK_EQ(ret, -ENFILE);
	CHECK_EQ(i, 6);		/* the root and 5 others */
	CHECK_EQ(forget(ids[0], 1), 1);
	CHECK_EQ(lookup(FUSE_ROOT_ID, "n9", &id), 0);
	CHECK(id != ids[0]);	/* the slot again, a new generation */
	CHECK_EQ(req(FUSE_GETATTR, ids[0], &(struct fuse_getattr_in){ 0 },
		     sizeof(struct fuse_getattr_in), NULL, 0), -ESTALE);
	stop(p, tx);
	CHECK_EQ(count_fds(), fds);

	/* Read-only: every change refused. */
	system("rm -f /tmp/lkvm-pfs.*/share/made.txt");
	snprintf(path, sizeof(path), "rm -f %s/s %s/a2 %s/fifo && mv %s/sub2 %s/sub", root, root, root, root, root);
	CHECK_EQ(system(path), 0);
	listing(top, before, sizeof(before));
	tx = start(root, true, 0, &p);
	CHECK_EQ(lookup(FUSE_ROOT_ID, "a.txt", &a), 0);
	CHECK_EQ(create(FUSE_ROOT_ID, "new", &fh), -EROFS);
	CHECK_EQ(open_file(a, O_WRONLY, &fh), -EROFS);
	CHECK_EQ(open_file(a, O_RDONLY | O_TRUNC, &fh), -EROFS);
	{
		struct fuse_setattr_in in = { .valid = FATTR_SIZE, .size = 0 };
		struct fuse_mkdir_in mk = { .mode = 0755 };
		struct fuse_rename_in rn = { .newdir = FUSE_ROOT_ID };

		CHECK_EQ(req(FUSE_SETATTR, a, &in, sizeof(in), NULL, 0), -EROFS);
		CHECK_EQ(req(FUSE_MKDIR, FUSE_ROOT_ID, &mk, sizeof(mk), "d", 2), -EROFS);
		CHECK_EQ(req(FUSE_UNLINK, FUSE_ROOT_ID, NULL, 0, "a.txt", 6), -EROFS);
		CHECK_EQ(req(FUSE_RENAME, FUSE_ROOT_ID, &rn, sizeof(rn), "a.txt\0b", 8), -EROFS);
		CHECK_EQ(req(FUSE_SETXATTR, a, "\1\0\0\0\0\0\0\0", 8, "user.x\0v", 8), -EROFS);
	}
	stop(p, tx);
	listing(top, after, sizeof(after));
	CHECK(!strcmp(before, after));
	snprintf(path, sizeof(path), "cat %s/outside/secret | grep -qx secret && [ ! -e %s/evil ] && [ ! -e %s/outside/evil ]",
		 top, top, top);
	CHECK_EQ(system(path), 0);
	snprintf(path, sizeof(path), "rm -rf %s", top);
	if (system(path))
		return 1;
	return test_done();
}
