/*
 * fuse_msg.h - FUSE requests as bytes (the protocol of linux/fuse.h):
 * checking one that came from a transport before anything looks at it,
 * and the sizes each opcode's fixed body has.  Shared by every FUSE
 * server in lkvm; it knows no transport and no filesystem.
 *
 * Pure functions on caller memory; any thread.
 */
#ifndef LKVM_FS_FUSE_MSG_H
#define LKVM_FS_FUSE_MSG_H

#include <linux/fuse.h>
#include <stddef.h>
#include <stdint.h>

/* Newer than some uapi headers. */
#ifndef FOPEN_PARALLEL_DIRECT_WRITES
#define FOPEN_PARALLEL_DIRECT_WRITES	(1 << 6)
#endif

/* The oldest protocol minor lkvm's servers speak (7.31: max_pages). */
#define FUSE_MSG_MIN_MINOR	31

struct fuse_msg {
	const struct fuse_in_header *h;
	const void *body;	/* the opcode's fixed part, then the rest */
	size_t body_len;
};

/*
 * The size of an opcode's fixed body (fuse_read_in for READ, ...): the
 * least a request of that opcode may carry.  0 for opcodes with none,
 * SIZE_MAX for opcodes lkvm does not know.
 */
size_t fuse_msg_body_size(uint32_t opcode);

/*
 * The part of an opcode's body a transport keeps contiguous beside the
 * header: the fixed body, or 0 for an opcode whose body is all
 * variable (a name) or unknown.  The rest goes to the filesystem as
 * fuse_req.in.
 */
size_t fuse_msg_fixed_size(uint32_t opcode);

/*
 * Checks n bytes read from a transport as one request: a whole header
 * whose length is n, and at least the opcode's fixed body.  Returns 0
 * and fills m, -EPROTO for bytes that are not one request (drop them,
 * no reply can be addressed), or -EINVAL for a request too short for
 * its opcode (reply EINVAL to m->h->unique).  An unknown opcode passes:
 * the server replies ENOSYS.
 */
int fuse_msg_parse(const void *buf, size_t n, struct fuse_msg *m);

#endif
