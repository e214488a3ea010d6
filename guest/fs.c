/*
 * fs - speaks virtio-fs (FUSE over a virtqueue) to lkvm's --fs share:
 * INIT, LOOKUP of hello.txt, OPEN, READ, prints the file's first line,
 * then CREATE and WRITE of from-guest.txt, RELEASE both, and a FORGET
 * on the hiprio queue.  Exits 0 if every reply was as expected.
 *
 * Built with FS_HOSTILE (fshostile): sends malformed requests and escape
 * attempts instead, each of which must get an error or be handed back
 * empty; the host checks that nothing outside the share changed.
 */
#include "runtime/virtio.h"

#define VIRTIO_ID_FS	26
#define QSIZE		16

/* The FUSE protocol (linux/fuse.h), the parts used here. */
enum {
	OP_LOOKUP = 1, OP_FORGET = 2, OP_GETATTR = 3, OP_SYMLINK = 6,
	OP_UNLINK = 10, OP_RENAME = 12, OP_LINK = 13, OP_OPEN = 14,
	OP_READ = 15, OP_WRITE = 16, OP_RELEASE = 18, OP_INIT = 26,
	OP_CREATE = 35,
};

struct in_hdr {
	uint32_t len, opcode;
	uint64_t unique, nodeid;
	uint32_t uid, gid, pid;
	uint16_t extlen, pad;
};

struct out_hdr {
	uint32_t len;
	int32_t error;
	uint64_t unique;
};

struct entry_out {
	uint64_t nodeid, generation, entry_valid, attr_valid;
	uint32_t entry_valid_nsec, attr_valid_nsec;
	uint64_t ino, size, blocks, atime, mtime, ctime;
	uint32_t atimensec, mtimensec, ctimensec, mode, nlink, uid, gid;
	uint32_t rdev, blksize, flags;
};

struct open_out {
	uint64_t fh;
	uint32_t open_flags, pad;
};

static struct vdev dev;
static struct vq hq, rq;
static uint8_t req[8192] __attribute__((aligned(64)));
static uint8_t data[4096] __attribute__((aligned(64)));
static uint8_t rep[8192] __attribute__((aligned(64)));
static uint8_t rdata[4096] __attribute__((aligned(64)));
static uint64_t unique;
/*
 * Replies found after a sleep the timer ended, with no interrupt from
 * the device in it: each one an interrupt that never came (or came
 * later than the timer).  Reported, so that a lost interrupt shows as a
 * number instead of a guest asleep for good.
 */
#define WAKE_MS		200
static unsigned int rescued;
/* Timer wakes with no reply yet: the queue is kicked again after each. */
static unsigned int quiet;

/*
 * One request on q: req (len bytes) and optionally data (dlen), then
 * the reply into rep (rlen writable bytes; 0: none) and rdata (rdlen).
 * Returns the reply's length (-1 if nothing came back in time).
 */
static int call(struct vq *q, uint32_t len, uint32_t dlen, uint32_t rlen,
		uint32_t rdlen)
{
	unsigned int n = 0, irqs = dev.irqs;
	unsigned long spins;
	uint32_t id, got;

	q->desc[n] = (struct vdesc){ (uintptr_t)req, len, 0, 0 };
	if (dlen) {
		q->desc[n].flags = VRING_DESC_F_NEXT;
		q->desc[n].next = n + 1;
		n++;
		q->desc[n] = (struct vdesc){ (uintptr_t)data, dlen, 0, 0 };
	}
	if (rlen) {
		q->desc[n].flags |= VRING_DESC_F_NEXT;
		q->desc[n].next = n + 1;
		n++;
		q->desc[n] = (struct vdesc){ (uintptr_t)rep, rlen,
					     VRING_DESC_F_WRITE, 0 };
	}
	if (rdlen) {
		q->desc[n].flags |= VRING_DESC_F_NEXT;
		q->desc[n].next = n + 1;
		n++;
		q->desc[n] = (struct vdesc){ (uintptr_t)rdata, rdlen,
					     VRING_DESC_F_WRITE, 0 };
	}
	memset(rep, 0, sizeof(rep));
	vq_publish(q, 0);
	vq_kick(&dev, q);
	for (spins = 0; spins < 200000; spins++) {
		if (vq_get_used(q, &id, &got))
			return got;
		if (dev.irqs == irqs && wait_for_irq_or_timer(WAKE_MS) &&
		    dev.irqs == irqs) {
			if (q->used[1] != q->last_used) {
				rescued++;
			} else {
				/* Nothing yet: say it again (a kick is idempotent). */
				quiet++;
				vq_kick(&dev, q);
			}
		}
		irqs = dev.irqs;
	}
	return -1;
}

/* A header for opcode on nodeid, with body bytes after it. */
static uint8_t *start(uint32_t opcode, uint64_t nodeid, uint32_t body)
{
	struct in_hdr *h = (struct in_hdr *)req;

	memset(req, 0, sizeof(struct in_hdr) + body + 256);
	h->len = sizeof(*h) + body;
	h->opcode = opcode;
	h->unique = ++unique;
	h->nodeid = nodeid;
	return req + sizeof(*h);
}

static int error_of(void)
{
	return ((struct out_hdr *)rep)->error;
}

static size_t slen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

/* Appends a NUL-terminated name after the header's body. */
static uint32_t put_name(uint32_t at, const char *s)
{
	struct in_hdr *h = (struct in_hdr *)req;
	size_t n = slen(s) + 1;

	memcpy(req + at, s, n);
	h->len = at + n;
	return at + n;
}

static int lookup(uint64_t parent, const char *name, uint64_t *node)
{
	start(OP_LOOKUP, parent, 0);
	put_name(sizeof(struct in_hdr), name);
	if (call(&rq, ((struct in_hdr *)req)->len, 0,
		 sizeof(struct out_hdr) + sizeof(struct entry_out), 0) < 0)
		return -1000;
	*node = ((struct entry_out *)(rep + sizeof(struct out_hdr)))->nodeid;
	return error_of();
}

static void fail(const char *what, int err)
{
	gprintf("fs: %s failed (%d)\n", what, err);
	guest_exit(1);
}

static void setup(void)
{
	uint32_t tag[9];
	unsigned int i;
	uint8_t *b;

	if (!vdev_find(VIRTIO_ID_FS, &dev))
		fail("finding the virtio-fs device", 0);
	if (!vdev_init(&dev, 0))
		fail("virtio set-up", (int)vdev_status(&dev));
	vdev_irq_enable(&dev, 0x38);
	if (!vq_init(&dev, &hq, 0, QSIZE) || !vq_init(&dev, &rq, 1, QSIZE))
		fail("queue set-up", 0);
	vdev_driver_ok(&dev);
	for (i = 0; i < 9; i++)
		tag[i] = vdev_cfg_read32(&dev, 4 * i);
	gprintf("fs: tag %s, %u request queue(s)\n", (char *)tag,
		vdev_cfg_read32(&dev, 36));
	/* INIT: 7.31 or later, nothing asked for. */
	b = start(OP_INIT, 0, 64);
	((uint32_t *)b)[0] = 7;
	((uint32_t *)b)[1] = 38;
	((uint32_t *)b)[2] = 65536;
	if (call(&rq, ((struct in_hdr *)req)->len, 0, sizeof(rep), 0) < 0 ||
	    error_of())
		fail("INIT", error_of());
	gprintf("fs: init: protocol 7.%u, max_write %u\n",
		((uint32_t *)(rep + 16))[1], ((uint32_t *)(rep + 16))[5]);
}

#ifndef FS_HOSTILE
void main(void)
{
	static const char msg[] = "written by the fs guest over virtio-fs\n";
	uint64_t node, fh, fh2, made;
	uint8_t *b;
	int n, i;

	setup();
	n = lookup(1, "hello.txt", &node);
	if (n)
		fail("LOOKUP hello.txt", n);
	b = start(OP_OPEN, node, 8);
	((uint32_t *)b)[0] = 0;		/* O_RDONLY */
	if (call(&rq, ((struct in_hdr *)req)->len, 0, sizeof(rep), 0) < 0 ||
	    error_of())
		fail("OPEN", error_of());
	fh = ((struct open_out *)(rep + 16))->fh;
	b = start(OP_READ, node, 40);
	((uint64_t *)b)[0] = fh;
	((uint64_t *)b)[1] = 0;
	((uint32_t *)b)[4] = 4096;
	/* The reply's header in one buffer, the data in another. */
	n = call(&rq, ((struct in_hdr *)req)->len, 0, sizeof(struct out_hdr),
		 sizeof(rdata));
	if (n < (int)sizeof(struct out_hdr) || error_of())
		fail("READ", error_of());
	for (i = 0; i < n - 16 && rdata[i] != '\n'; i++)
		;
	rdata[i] = 0;
	gprintf("fs: hello.txt: %s\n", (char *)rdata);

	/* CREATE from-guest.txt (O_WRONLY | O_CREAT | O_TRUNC, 0644). */
	b = start(OP_CREATE, 1, 16);
	((uint32_t *)b)[0] = 01 | 0100 | 01000;
	((uint32_t *)b)[1] = 0100644;
	put_name(sizeof(struct in_hdr) + 16, "from-guest.txt");
	if (call(&rq, ((struct in_hdr *)req)->len, 0, sizeof(rep), 0) < 0 ||
	    error_of())
		fail("CREATE", error_of());
	made = ((struct entry_out *)(rep + 16))->nodeid;
	fh2 = ((struct open_out *)(rep + 16 + sizeof(struct entry_out)))->fh;
	/* WRITE: the data in its own descriptor. */
	b = start(OP_WRITE, made, 40);
	((uint64_t *)b)[0] = fh2;
	((uint64_t *)b)[1] = 0;
	((uint32_t *)b)[4] = sizeof(msg) - 1;
	((struct in_hdr *)req)->len += sizeof(msg) - 1;
	memcpy(data, msg, sizeof(msg) - 1);
	if (call(&rq, sizeof(struct in_hdr) + 40, sizeof(msg) - 1, 24, 0) < 0 ||
	    error_of() || ((uint32_t *)(rep + 16))[0] != sizeof(msg) - 1)
		fail("WRITE", error_of());
	for (i = 0; i < 2; i++) {
		b = start(OP_RELEASE, i ? made : node, 24);
		((uint64_t *)b)[0] = i ? fh2 : fh;
		if (call(&rq, ((struct in_hdr *)req)->len, 0, 16, 0) < 0 ||
		    error_of())
			fail("RELEASE", error_of());
	}
	/* FORGET on hiprio: no reply, the chain comes back empty. */
	b = start(OP_FORGET, node, 8);
	((uint64_t *)b)[0] = 1;
	n = call(&hq, ((struct in_hdr *)req)->len, 0, 0, 0);
	if (n != 0)
		fail("FORGET on hiprio", n);
	gprintf("fs: wrote from-guest.txt (%u bytes), released, forgot\n",
		(unsigned int)(sizeof(msg) - 1));
	gprintf("fs: ok\n");
	gprintf("fs: %u replies found by the %u ms timer, not an interrupt; %u quiet timer wakes (kicked again)\n",
		rescued, WAKE_MS, quiet);
	guest_exit(0);
}
#else
static unsigned int checks, bad;

static void expect(const char *what, bool ok)
{
	checks++;
	if (!ok) {
		bad++;
		gprintf("fshostile: %s: unexpected reply (error %d)\n", what,
			error_of());
	}
}

void main(void)
{
	static const char *const names[] = {
		"..", ".", "../outside.txt", "a/b", "/etc/passwd", "",
	};
	uint64_t node = 0, esc = 0;
	uint8_t *b;
	unsigned int i;
	int n;

	setup();
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		expect("LOOKUP of a bad name", lookup(1, names[i], &node) < 0);
	/* CREATE outside, through a name with a slash or dots. */
	for (i = 0; i < 3; i++) {
		b = start(OP_CREATE, 1, 16);
		((uint32_t *)b)[0] = 01 | 0100;
		((uint32_t *)b)[1] = 0100644;
		put_name(sizeof(struct in_hdr) + 16, names[i == 2 ? 4 : 2 - i]);
		n = call(&rq, ((struct in_hdr *)req)->len, 0, sizeof(rep), 0);
		expect("CREATE outside", n >= 16 && error_of() < 0);
	}
	/* A symlink to / is only text: nothing resolves through it. */
	b = start(OP_SYMLINK, 1, 0);
	{
		static const char two[] = "esc\0/";
		struct in_hdr *h = (struct in_hdr *)req;

		memcpy(b, two, sizeof(two));
		h->len += sizeof(two);
	}
	n = call(&rq, ((struct in_hdr *)req)->len, 0, sizeof(rep), 0);
	expect("SYMLINK esc -> /", n >= 16 && !error_of());
	expect("LOOKUP esc", !lookup(1, "esc", &esc));
	expect("LOOKUP through esc", lookup(esc, "etc", &node) < 0);
	b = start(OP_OPEN, esc, 8);
	n = call(&rq, ((struct in_hdr *)req)->len, 0, sizeof(rep), 0);
	expect("OPEN of the symlink", n >= 16 && error_of() < 0);
	/* RENAME out of the share. */
	b = start(OP_RENAME, 1, 8);
	((uint64_t *)b)[0] = 1;
	{
		static const char two[] = "hello.txt\0../moved.txt";
		struct in_hdr *h = (struct in_hdr *)req;

		memcpy(b + 8, two, sizeof(two));
		h->len += sizeof(two);
	}
	n = call(&rq, ((struct in_hdr *)req)->len, 0, sizeof(rep), 0);
	expect("RENAME out", n >= 16 && error_of() < 0);
	/* Forged and stale ids. */
	b = start(OP_GETATTR, 0x4141414141ULL, 16);
	n = call(&rq, ((struct in_hdr *)req)->len, 0, sizeof(rep), 0);
	expect("GETATTR of a forged nodeid", n >= 16 && error_of() < 0);
	b = start(OP_READ, 1, 40);
	((uint64_t *)b)[0] = 0x99999;
	((uint32_t *)b)[4] = 100;
	n = call(&rq, ((struct in_hdr *)req)->len, 0, sizeof(rep), 0);
	expect("READ of a forged fh", n >= 16 && error_of() < 0);
	/* Framing: a length that lies, a header cut short, no reply room. */
	b = start(OP_GETATTR, 1, 16);
	((struct in_hdr *)req)->len = 9999;
	n = call(&rq, sizeof(struct in_hdr) + 16, 0, sizeof(rep), 0);
	expect("a header whose length lies", n >= 16 && error_of() < 0);
	b = start(OP_GETATTR, 1, 16);
	n = call(&rq, 20, 0, sizeof(rep), 0);
	expect("a header cut short: handed back empty", n == 0);
	b = start(OP_GETATTR, 1, 16);
	n = call(&rq, ((struct in_hdr *)req)->len, 0, 0, 0);
	expect("no room for a reply: handed back empty", n == 0);
	/* A READ larger than the reply buffer, a WRITE that lies. */
	b = start(OP_LOOKUP, 1, 0);
	n = lookup(1, "hello.txt", &node);
	b = start(OP_OPEN, node, 8);
	call(&rq, ((struct in_hdr *)req)->len, 0, sizeof(rep), 0);
	{
		uint64_t fh = ((struct open_out *)(rep + 16))->fh;

		b = start(OP_READ, node, 40);
		((uint64_t *)b)[0] = fh;
		((uint32_t *)b)[4] = 1 << 20;
		n = call(&rq, ((struct in_hdr *)req)->len, 0, 64, 0);
		expect("READ larger than its buffer", n >= 16 && error_of() < 0);
		b = start(OP_WRITE, node, 40);
		((uint64_t *)b)[0] = fh;
		((uint32_t *)b)[4] = 5000;
		n = call(&rq, ((struct in_hdr *)req)->len, 0, sizeof(rep), 0);
		expect("WRITE that says more than it carries", n >= 16 && error_of() < 0);
	}
	/* I/O on hiprio is not taken; an unknown opcode gets ENOSYS. */
	b = start(OP_GETATTR, 1, 16);
	n = call(&hq, ((struct in_hdr *)req)->len, 0, sizeof(rep), 0);
	expect("GETATTR on hiprio refused", n >= 16 && error_of() < 0);
	b = start(4242, 1, 0);
	n = call(&rq, ((struct in_hdr *)req)->len, 0, sizeof(rep), 0);
	expect("an unknown opcode", n >= 16 && error_of() == -38);
	/* The device still works. */
	expect("LOOKUP hello.txt after all that", !lookup(1, "hello.txt", &node));
	gprintf("fshostile: %u checks, %u unexpected\n", checks, bad);
	guest_exit(bad ? 1 : 0);
}
#endif
