/*
 * fuse_msg.c - checking FUSE requests as bytes (see fuse_msg.h), and
 * the INIT answer every transport gives (fuse_server.h).  The
 * kernel is the peer of /dev/fuse and a guest the peer of virtio-fs;
 * either way nothing past the header is read before this says it is
 * there.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "lkvm/fs/fuse_msg.h"
#include "lkvm/fs/fuse_server.h"
#include "lkvm/lib/util.h"

size_t fuse_msg_body_size(uint32_t opcode)
{
	switch (opcode) {
	case FUSE_INIT:
		return 16;	/* major, minor, max_readahead, flags: every
				 * version; later fields are optional */
	case FUSE_DESTROY:
	case FUSE_STATFS:
	case FUSE_READLINK:
	case FUSE_SYNCFS:
		return 0;
	case FUSE_LOOKUP:
	case FUSE_UNLINK:
	case FUSE_RMDIR:
	case FUSE_REMOVEXATTR:
	case FUSE_SYMLINK:
		return 1;	/* a name, at least its NUL */
	case FUSE_FORGET:
		return sizeof(struct fuse_forget_in);
	case FUSE_BATCH_FORGET:
		return sizeof(struct fuse_batch_forget_in);
	case FUSE_INTERRUPT:
		return sizeof(struct fuse_interrupt_in);
	case FUSE_GETATTR:
		return sizeof(struct fuse_getattr_in);
	case FUSE_SETATTR:
		return sizeof(struct fuse_setattr_in);
	case FUSE_OPEN:
	case FUSE_OPENDIR:
		return sizeof(struct fuse_open_in);
	case FUSE_READ:
	case FUSE_READDIR:
	case FUSE_READDIRPLUS:
		return sizeof(struct fuse_read_in);
	case FUSE_WRITE:
		return sizeof(struct fuse_write_in);
	case FUSE_RELEASE:
	case FUSE_RELEASEDIR:
		return sizeof(struct fuse_release_in);
	case FUSE_FLUSH:
		return sizeof(struct fuse_flush_in);
	case FUSE_FSYNC:
	case FUSE_FSYNCDIR:
		return sizeof(struct fuse_fsync_in);
	case FUSE_FALLOCATE:
		return sizeof(struct fuse_fallocate_in);
	case FUSE_ACCESS:
		return sizeof(struct fuse_access_in);
	case FUSE_GETXATTR:
	case FUSE_LISTXATTR:
		return sizeof(struct fuse_getxattr_in);
	case FUSE_SETXATTR:
		return 8;	/* size, flags; setxattr_flags with SETXATTR_EXT */
	case FUSE_LSEEK:
		return sizeof(struct fuse_lseek_in);
	case FUSE_MKNOD:
		return sizeof(struct fuse_mknod_in);
	case FUSE_MKDIR:
		return sizeof(struct fuse_mkdir_in);
	case FUSE_CREATE:
		return sizeof(struct fuse_create_in);
	case FUSE_LINK:
		return sizeof(struct fuse_link_in);
	case FUSE_RENAME:
		return sizeof(struct fuse_rename_in);
	case FUSE_RENAME2:
		return sizeof(struct fuse_rename2_in);
	case FUSE_COPY_FILE_RANGE:
		return sizeof(struct fuse_copy_file_range_in);
	default:
		return SIZE_MAX;
	}
}

size_t fuse_msg_fixed_size(uint32_t opcode)
{
	size_t n = fuse_msg_body_size(opcode);

	return n == SIZE_MAX || n == 1 ? 0 : n;
}

int fuse_msg_parse(const void *buf, size_t n, struct fuse_msg *m)
{
	const struct fuse_in_header *h = buf;
	size_t need;

	if (n < sizeof(*h) || h->len != n)
		return -EPROTO;
	m->h = h;
	m->body = h + 1;
	m->body_len = n - sizeof(*h);
	need = fuse_msg_body_size(h->opcode);
	if (need != SIZE_MAX && m->body_len < need)
		return -EINVAL;
	return 0;
}

int fuse_init_answer(const struct fuse_init_in *in, uint32_t max_write,
		     uint32_t max_background, const struct fuse_fs_ops *ops,
		     void *fs, struct fuse_init_out *out)
{
	memset(out, 0, sizeof(*out));
	if (in->major != FUSE_KERNEL_VERSION || in->minor < FUSE_MSG_MIN_MINOR)
		return -EPROTO;
	out->major = FUSE_KERNEL_VERSION;
	out->minor = MIN(in->minor, (uint32_t)FUSE_KERNEL_MINOR_VERSION);
	out->max_readahead = in->max_readahead;
	out->max_background = MIN(max_background, 65535u);
	out->congestion_threshold = out->max_background * 3 / 4;
	out->max_write = max_write;
	out->time_gran = 1;
	out->max_pages = max_write / 4096;
	ops->init(fs, in, out);
	if (out->max_pages)
		out->flags |= in->flags & FUSE_MAX_PAGES;
	return 0;
}
