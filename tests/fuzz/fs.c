/*
 * Fuzz target for the passthrough filesystem's request handling
 * (fs/fuse_msg.c, fs/passthrough.c, fs/fs_table.c): each input is one
 * FUSE request, run against a small share (a 16 MiB tmpfs in a private
 * mount namespace where that is allowed, else a directory under
 * /dev/shm), with replies to /dev/null.  Beside the share sits a
 * sentinel directory; nothing may ever change in it, and nothing may be
 * created beside the share.  If the input's last header byte (padding)
 * is odd, its length field is made to match.
 *
 * Built with libFuzzer by `make fuzz`; without it, main() replays
 * requests of every opcode with names from a list of hostile ones
 * ("..", "a/b", "/etc", 300 bytes, no NUL), nodeids and handles that
 * exist, are stale or are made up, and checks the sentinel at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lkvm/fs/fuse_devq.h"
#include "lkvm/fs/passthrough.h"
#include "lkvm/lib/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fuse_devq *dq;
static struct pfs *pfs;
static int null_fd = -1;
static char top[64], share[96], sentinel[128];
static uint8_t *req;

#define REQ_MAX	(200000)

static void sh(const char *fmt, const char *a)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), fmt, a, a, a, a);
	if (system(cmd))
		abort();
}

/* libFuzzer ends with exit(): the share and sentinel go with it. */
static void cleanup(void)
{
	char cmd[160];

	umount2(share, MNT_DETACH);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
	if (system(cmd))
		return;
}

static void setup(void)
{
	struct pfs_opts o = { 0 };
	char err[256];

	if (req)
		return;
	req = malloc(REQ_MAX);
	null_fd = open("/dev/null", O_WRONLY);
	snprintf(top, sizeof(top), "/dev/shm/lkvm-fsfuzz.%d", (int)getpid());
	snprintf(share, sizeof(share), "%s/share", top);
	snprintf(sentinel, sizeof(sentinel), "%s/sentinel", top);
	sh("rm -rf %s && mkdir -p %s/share %s/sentinel && echo keep > %s/sentinel/file", top);
#ifdef LKVM_LIBFUZZER
	atexit(cleanup);
#endif
	/* A bounded share where the kernel lets us: writes cannot fill /dev/shm. */
	if (!unshare(CLONE_NEWNS) &&
	    !mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		mount("fsfuzz", share, "tmpfs", 0, "size=16m");
	sh("mkdir -p %s/share/d/e && echo hello > %s/share/f && ln -s / %s/share/root && ln -s ../sentinel %s/share/up", top);
	o.dir = share;
	o.max_inodes = 256;
	o.max_files = 64;
	if (!req || null_fd < 0 || pfs_open(&pfs, &o, err, sizeof(err)) ||
	    fuse_devq_test_open(&dq, &pfs_fuse_ops, pfs, null_fd))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuse_in_header *h;

	setup();	/* req exists from here on */
	h = (struct fuse_in_header *)req;
	if (size > REQ_MAX)
		size = REQ_MAX;
	memcpy(req, data, size);
	if (size >= sizeof(*h) && (req[39] & 1))
		h->len = size;
	fuse_devq_test_request(dq, req, size);
	return 0;
}

#ifndef LKVM_LIBFUZZER
static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static const char *const names[] = {
	"f", "d", "e", "root", "up", "new", "x", "..", ".", "", "a/b", "/etc",
	"../sentinel", "d/../../sentinel", "up/file", "root/etc", "n\n1",
};

int main(int argc, char **argv)
{
	static const uint32_t ops[] = {
		FUSE_LOOKUP, FUSE_FORGET, FUSE_BATCH_FORGET, FUSE_GETATTR,
		FUSE_SETATTR, FUSE_MKDIR, FUSE_MKNOD, FUSE_SYMLINK, FUSE_LINK,
		FUSE_UNLINK, FUSE_RMDIR, FUSE_RENAME, FUSE_RENAME2,
		FUSE_READLINK, FUSE_OPEN, FUSE_CREATE, FUSE_READ, FUSE_WRITE,
		FUSE_FLUSH, FUSE_RELEASE, FUSE_FSYNC, FUSE_OPENDIR,
		FUSE_READDIR, FUSE_READDIRPLUS, FUSE_RELEASEDIR, FUSE_FSYNCDIR,
		FUSE_STATFS, FUSE_ACCESS, FUSE_GETXATTR, FUSE_LISTXATTR,
		FUSE_SETXATTR, FUSE_REMOVEXATTR, FUSE_FALLOCATE, FUSE_LSEEK,
		FUSE_COPY_FILE_RANGE, FUSE_SYNCFS, FUSE_INTERRUPT, FUSE_INIT,
		FUSE_DESTROY, 4242,
	};
	static uint8_t buf[REQ_MAX];
	uint64_t s = 0x243f6a8885a308d3ULL, ids[8] = { 1, 1, 2, 3 };
	long runs = argc > 1 ? atol(argv[1]) : 20000, n;
	struct stat st;
	char cmd[768];
	int ret;

	setup();
	for (n = 0; n < runs; n++) {
		struct fuse_in_header *h = (struct fuse_in_header *)buf;
		uint32_t op = ops[xorshift(&s) % (sizeof(ops) / sizeof(ops[0]))];
		size_t body = fuse_msg_body_size(op), len, k;
		uint8_t *b = buf + sizeof(*h);

		if (body == SIZE_MAX || body == 1)
			body = 0;
		memset(buf, 0, sizeof(*h) + 128);
		/* Fixed fields: ids that exist, small numbers, or noise. */
		for (k = 0; k + 8 <= body; k += 8) {
			uint64_t r = xorshift(&s), v;

			v = r % 4 == 0 ? ids[(r >> 8) % 8] :
			    r % 4 == 1 ? (r >> 8) % 70000 :
			    r % 4 == 2 ? 0 : xorshift(&s);
			memcpy(b + k, &v, 8);
		}
		if (op == FUSE_SETATTR)		/* not the share's root */
			((struct fuse_setattr_in *)b)->valid &= ~(FATTR_UID | FATTR_GID);
		if (op == FUSE_FALLOCATE)
			((struct fuse_fallocate_in *)b)->length %= 1 << 20;
		len = sizeof(*h) + body;
		/* Then names (one or two) or data. */
		for (k = 0; k < 1 + (xorshift(&s) & 1); k++) {
			const char *nm = names[xorshift(&s) % (sizeof(names) / sizeof(names[0]))];

			if (xorshift(&s) % 16 == 0) {
				memset(buf + len, 'z', 300);
				len += 300;
			} else {
				memcpy(buf + len, nm, strlen(nm));
				len += strlen(nm);
			}
			if (xorshift(&s) % 8)
				buf[len++] = 0;
		}
		if (op == FUSE_WRITE) {
			size_t dl = xorshift(&s) % 9000;

			memset(buf + len, 0x5a, dl);
			len += dl;
			if (xorshift(&s) & 1)
				((struct fuse_write_in *)b)->size = dl;
		}
		h->len = xorshift(&s) % 32 ? len : (uint32_t)xorshift(&s);
		h->opcode = op;
		h->unique = n;
		h->nodeid = xorshift(&s) % 4 ? ids[xorshift(&s) % 8] : xorshift(&s);
		buf[39] = 0;
		LLVMFuzzerTestOneInput(buf, len);
		/* Ids the next requests may use: what lookups hand out. */
		if (op == FUSE_LOOKUP || op == FUSE_CREATE || op == FUSE_OPEN ||
		    op == FUSE_OPENDIR)
			ids[xorshift(&s) % 8] = xorshift(&s) & 1 ?
				(xorshift(&s) % 64) | ((uint64_t)(xorshift(&s) % 3) << 32) :
				(xorshift(&s) % 64) + 1;
	}
	fuse_devq_test_close(dq);
	pfs_close(pfs);
	/* The sentinel beside the share: untouched; nothing new beside it. */
	snprintf(cmd, sizeof(cmd),
		 "[ \"$(cat %s/file)\" = keep ] && [ $(ls %s | wc -l) = 1 ] && [ $(ls %s/.. | wc -l) = 2 ]",
		 sentinel, sentinel, sentinel);
	ret = system(cmd);
	cleanup();
	if (stat("/", &st))
		return 1;
	if (ret) {
		printf("FAIL fs requests: the sentinel beside the share changed\n0 passed, 1 failed\n");
		return 1;
	}
	printf("PASS fs requests: %ld of every opcode with hostile names and ids; "
	       "nothing outside the share changed\n1 passed, 0 failed\n", runs);
	return 0;
}
#endif
