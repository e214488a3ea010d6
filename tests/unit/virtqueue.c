/*
 * Tests virtio/virtqueue.c: chains as a guest driver builds them, every
 * malformed-ring rule, notification suppression and EVENT_IDX.
 */
#include <errno.h>

#include "lkvm/lib/util.h"
#include "lkvm/virtio/virtqueue.h"
#include "test.h"

#define QSZ	8
#define DESC	0x1000ULL
#define AVAIL	0x2000ULL
#define USED	0x3000ULL
#define BUF	0x10000ULL
#define ALL_F	((1ULL << VIRTIO_F_INDIRECT_DESC) | (1ULL << VIRTIO_F_VERSION_1))

static struct guest_memory mem;
static struct vring_desc *desc;
static uint16_t *avail, *used;
static struct iovec iov[16];
static struct vq_elem e = { .iov = iov, .max_iov = 16 };

static void ring_init(struct virtqueue *vq, uint64_t features)
{
	memset(mem.map, 0, 0x10000);
	desc = guest_ptr(&mem, DESC, 16 * QSZ);
	avail = guest_ptr(&mem, AVAIL, 6 + 2 * QSZ);
	used = guest_ptr(&mem, USED, 6 + 8 * QSZ);
	CHECK_EQ(vq_setup(vq, &mem, QSZ, DESC, AVAIL, USED, features), 0);
}

static void set_desc(struct vring_desc *d, unsigned int i, uint64_t addr,
		     uint32_t len, uint16_t flags, uint16_t next)
{
	d[i] = (struct vring_desc){ addr, len, flags, next };
}

/* Makes chain `head` available (one more avail entry). */
static void offer(uint16_t head)
{
	avail[2 + avail[1] % QSZ] = head;
	avail[1]++;
}

static void test_setup(void)
{
	struct virtqueue vq;

	CHECK_EQ(vq_setup(&vq, &mem, 0, DESC, AVAIL, USED, 0), -EINVAL);
	CHECK_EQ(vq_setup(&vq, &mem, 3, DESC, AVAIL, USED, 0), -EINVAL);
	CHECK_EQ(vq_setup(&vq, &mem, 2048, DESC, AVAIL, USED, 0), -EINVAL);
	CHECK_EQ(vq_setup(&vq, &mem, 8, DESC + 8, AVAIL, USED, 0), -EINVAL);
	CHECK_EQ(vq_setup(&vq, &mem, 8, DESC, AVAIL + 1, USED, 0), -EINVAL);
	CHECK_EQ(vq_setup(&vq, &mem, 8, DESC, AVAIL, USED + 2, 0), -EINVAL);
	CHECK_EQ(vq_setup(&vq, &mem, 8, 1ULL << 40, AVAIL, USED, 0), -EFAULT);
	CHECK_EQ(vq_setup(&vq, &mem, 1024, mem.map_size - 16 * 512, AVAIL,
			  USED, 0), -EFAULT);
	CHECK_EQ(vq_setup(&vq, &mem, 8, DESC, AVAIL, USED, 0), 0);
	CHECK_EQ(vq_pop(&vq, &e), 0);	/* empty */
}

static void test_chains(void)
{
	struct virtqueue vq;
	struct vring_desc *ind;

	ring_init(&vq, ALL_F);
	/* header (out), data (in), status (in) */
	set_desc(desc, 0, BUF, 16, VRING_DESC_F_NEXT, 5);
	set_desc(desc, 5, BUF + 0x1000, 4096,
		 VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	set_desc(desc, 2, BUF + 0x3000, 1, VRING_DESC_F_WRITE, 0);
	offer(0);
	CHECK_EQ(vq_pop(&vq, &e), 1);
	CHECK_EQ(e.head, 0);
	CHECK_EQ(e.nout, 1);
	CHECK_EQ(e.nin, 2);
	CHECK_EQ(e.in_bytes, 4097);
	CHECK(iov[0].iov_base == guest_ptr(&mem, BUF, 16));
	CHECK(iov[1].iov_base == guest_ptr(&mem, BUF + 0x1000, 1));
	CHECK_EQ(iov[2].iov_len, 1);
	CHECK_EQ(vq_pop(&vq, &e), 0);
	vq_push(&vq, 0, 4097);
	/* Published in groups, or when asked (vq_should_notify does). */
	CHECK_EQ(used[1], 0);
	vq_publish_used(&vq);
	CHECK_EQ(used[1], 1);
	CHECK_EQ(*(uint32_t *)&used[2], 0);
	CHECK_EQ(*(uint32_t *)&used[4], 4097);

	/* An indirect table of three. */
	ind = guest_ptr(&mem, BUF + 0x8000, 48);
	set_desc(ind, 0, BUF, 8, VRING_DESC_F_NEXT, 2);
	set_desc(ind, 2, BUF + 8, 8, VRING_DESC_F_NEXT, 1);
	set_desc(ind, 1, BUF + 16, 100, VRING_DESC_F_WRITE, 0);
	set_desc(desc, 3, BUF + 0x8000, 48, VRING_DESC_F_INDIRECT, 0);
	offer(3);
	CHECK_EQ(vq_pop(&vq, &e), 1);
	CHECK_EQ(e.head, 3);
	CHECK_EQ(e.nout, 2);
	CHECK_EQ(e.nin, 1);
	CHECK_EQ(e.in_bytes, 100);

	/* Zero-length buffers are allowed and take no iovec. */
	set_desc(desc, 4, BUF, 0, VRING_DESC_F_NEXT, 6);
	set_desc(desc, 6, BUF, 10, 0, 0);
	offer(4);
	CHECK_EQ(vq_pop(&vq, &e), 1);
	CHECK_EQ(e.nout, 1);

	/* Wrap-around of the 16-bit indexes. */
	ring_init(&vq, ALL_F);
	avail[1] = 0xfffe;
	vq.last_avail = 0xfffe;
	set_desc(desc, 1, BUF, 10, 0, 0);
	offer(1);
	offer(1);
	offer(1);
	CHECK_EQ(vq_pop(&vq, &e), 1);
	CHECK_EQ(vq_pop(&vq, &e), 1);
	CHECK_EQ(vq_pop(&vq, &e), 1);
	CHECK_EQ(vq_pop(&vq, &e), 0);
	CHECK_EQ(vq.last_avail, 1);
}

/* Builds one bad chain at head 0 with `setup`, expects error `want`. */
static void expect_broken(const char *why, uint64_t features,
			  void (*setup)(void), enum vq_error want)
{
	struct virtqueue vq;
	int ret;

	ring_init(&vq, features);
	setup();
	ret = vq_pop(&vq, &e);
	if (ret != -EPROTO || vq.error != want || !vq.broken) {
		test_failed++;
		fprintf(stderr, "FAIL %s: ret %d error %s\n", why, ret,
			vq_error_name(vq.error));
		return;
	}
	test_passed++;
	/* Broken until reset, even with a good chain queued next. */
	set_desc(desc, 1, BUF, 1, 0, 0);
	offer(1);
	CHECK_EQ(vq_pop(&vq, &e), -EPROTO);
	CHECK(!vq_has_work(&vq));
}

static void bad_loop(void)
{
	set_desc(desc, 0, BUF, 1, VRING_DESC_F_NEXT, 1);
	set_desc(desc, 1, BUF, 1, VRING_DESC_F_NEXT, 0);
	offer(0);
}

static void bad_self_loop(void)
{
	set_desc(desc, 0, BUF, 1, VRING_DESC_F_NEXT, 0);
	offer(0);
}

static void bad_next(void)
{
	set_desc(desc, 0, BUF, 1, VRING_DESC_F_NEXT, QSZ);
	offer(0);
}

static void bad_head(void)
{
	offer(QSZ + 3);
}

static void bad_addr(void)
{
	set_desc(desc, 0, 1ULL << 40, 1, 0, 0);
	offer(0);
}

static void bad_addr_end(void)
{
	set_desc(desc, 0, mem.map_size - 4, 8, 0, 0);
	offer(0);
}

static void bad_addr_wrap(void)
{
	set_desc(desc, 0, UINT64_MAX - 2, 8, 0, 0);
	offer(0);
}

static void bad_order(void)
{
	set_desc(desc, 0, BUF, 1, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
	set_desc(desc, 1, BUF, 1, 0, 0);
	offer(0);
}

static void bad_avail_jump(void)
{
	set_desc(desc, 0, BUF, 1, 0, 0);
	avail[1] = QSZ + 1;
}

static void bad_indirect_unnegotiated(void)
{
	set_desc(desc, 0, BUF, 16, VRING_DESC_F_INDIRECT, 0);
	offer(0);
}

static void bad_indirect_nested(void)
{
	struct vring_desc *ind = guest_ptr(&mem, BUF, 32);

	set_desc(ind, 0, BUF + 0x100, 16, VRING_DESC_F_INDIRECT, 0);
	set_desc(desc, 0, BUF, 32, VRING_DESC_F_INDIRECT, 0);
	offer(0);
}

static void bad_indirect_len(void)
{
	set_desc(desc, 0, BUF, 24, VRING_DESC_F_INDIRECT, 0);
	offer(0);
}

static void bad_indirect_empty(void)
{
	set_desc(desc, 0, BUF, 0, VRING_DESC_F_INDIRECT, 0);
	offer(0);
}

static void bad_indirect_next(void)
{
	set_desc(desc, 0, BUF, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT,
		 1);
	offer(0);
}

static void bad_indirect_huge(void)
{
	set_desc(desc, 0, BUF, 16 * (VQ_MAX_SIZE + 1), VRING_DESC_F_INDIRECT,
		 0);
	offer(0);
}

static void bad_indirect_loop(void)
{
	struct vring_desc *ind = guest_ptr(&mem, BUF, 32);

	set_desc(ind, 0, BUF, 1, VRING_DESC_F_NEXT, 1);
	set_desc(ind, 1, BUF, 1, VRING_DESC_F_NEXT, 0);
	set_desc(desc, 0, BUF, 32, VRING_DESC_F_INDIRECT, 0);
	offer(0);
}

static void bad_indirect_next_range(void)
{
	struct vring_desc *ind = guest_ptr(&mem, BUF, 32);

	set_desc(ind, 0, BUF, 1, VRING_DESC_F_NEXT, 2);
	set_desc(desc, 0, BUF, 32, VRING_DESC_F_INDIRECT, 0);
	offer(0);
}

static void bad_indirect_table_addr(void)
{
	set_desc(desc, 0, 1ULL << 40, 32, VRING_DESC_F_INDIRECT, 0);
	offer(0);
}

static void bad_too_many(void)
{
	struct vring_desc *ind = guest_ptr(&mem, BUF, 17 * 16);
	unsigned int i;

	for (i = 0; i < 17; i++)
		set_desc(ind, i, BUF + 0x1000, 1, VRING_DESC_F_NEXT, i + 1);
	ind[16].flags = 0;
	set_desc(desc, 0, BUF, 17 * 16, VRING_DESC_F_INDIRECT, 0);
	offer(0);
}

static void test_malformed(void)
{
	expect_broken("loop", ALL_F, bad_loop, VQ_ERR_LOOP);
	expect_broken("self loop", ALL_F, bad_self_loop, VQ_ERR_LOOP);
	expect_broken("next out of range", ALL_F, bad_next, VQ_ERR_NEXT);
	expect_broken("head out of range", ALL_F, bad_head, VQ_ERR_HEAD);
	expect_broken("outside RAM", ALL_F, bad_addr, VQ_ERR_ADDR);
	expect_broken("crosses end of RAM", ALL_F, bad_addr_end, VQ_ERR_ADDR);
	expect_broken("address wraps", ALL_F, bad_addr_wrap, VQ_ERR_ADDR);
	expect_broken("read after write", ALL_F, bad_order, VQ_ERR_ORDER);
	expect_broken("avail jump", ALL_F, bad_avail_jump, VQ_ERR_AVAIL_IDX);
	expect_broken("indirect not negotiated", 0, bad_indirect_unnegotiated,
		      VQ_ERR_INDIRECT);
	expect_broken("nested indirect", ALL_F, bad_indirect_nested,
		      VQ_ERR_INDIRECT);
	expect_broken("indirect length", ALL_F, bad_indirect_len,
		      VQ_ERR_INDIRECT);
	expect_broken("indirect empty", ALL_F, bad_indirect_empty,
		      VQ_ERR_INDIRECT);
	expect_broken("indirect with next", ALL_F, bad_indirect_next,
		      VQ_ERR_INDIRECT);
	expect_broken("indirect too big", ALL_F, bad_indirect_huge,
		      VQ_ERR_INDIRECT);
	expect_broken("indirect loop", ALL_F, bad_indirect_loop, VQ_ERR_LOOP);
	expect_broken("indirect next range", ALL_F, bad_indirect_next_range,
		      VQ_ERR_NEXT);
	expect_broken("indirect table outside RAM", ALL_F,
		      bad_indirect_table_addr, VQ_ERR_ADDR);
	expect_broken("too many segments", ALL_F, bad_too_many,
		      VQ_ERR_TOO_BIG);
}

static void test_notify(void)
{
	struct virtqueue vq;
	unsigned int i, n;

	/* Without EVENT_IDX: NO_INTERRUPT and NO_NOTIFY flags. */
	ring_init(&vq, ALL_F);
	set_desc(desc, 0, BUF, 1, 0, 0);
	vq_push(&vq, 0, 0);
	CHECK(vq_should_notify(&vq));
	avail[0] = VRING_AVAIL_F_NO_INTERRUPT;
	vq_push(&vq, 0, 0);
	CHECK(!vq_should_notify(&vq));
	vq_notify_off(&vq);
	CHECK_EQ(used[0], VRING_USED_F_NO_NOTIFY);
	CHECK(!vq_notify_on(&vq));
	CHECK_EQ(used[0], 0);
	offer(0);
	vq_notify_off(&vq);
	CHECK(vq_notify_on(&vq));	/* work arrived while off */

	/* EVENT_IDX: 64 requests completed in one batch, one interrupt. */
	ring_init(&vq, ALL_F | (1ULL << VIRTIO_F_EVENT_IDX));
	for (i = 0; i < QSZ; i++)
		set_desc(desc, i, BUF, 1, VRING_DESC_F_WRITE, 0);
	n = 0;
	for (i = 0; i < 64; i++) {
		if (i % QSZ == 0 && i) {
			/* the guest consumed the batch: used_event = next */
			avail[2 + QSZ] = vq.used_idx;
		}
		offer(i % QSZ);
		CHECK_EQ(vq_pop(&vq, &e), 1);
		vq_push(&vq, e.head, 1);
		if (i % QSZ == QSZ - 1)
			n += vq_should_notify(&vq);
	}
	CHECK_EQ(n, 8);		/* one per batch of 8 */
	/* used_event far ahead: no interrupt until we pass it. */
	avail[2 + QSZ] = vq.used_idx + 3;
	vq_push(&vq, 0, 1);
	CHECK(!vq_should_notify(&vq));
	vq_push(&vq, 0, 1);
	vq_push(&vq, 0, 1);
	vq_push(&vq, 0, 1);
	CHECK(vq_should_notify(&vq));
	/* notify_on publishes avail_event = last_avail. */
	vq_notify_on(&vq);
	CHECK_EQ(used[2 + 4 * QSZ], vq.last_avail);

	/* used->idx moves every 32 pushes, and whenever we signal. */
	ring_init(&vq, ALL_F | (1ULL << VIRTIO_F_EVENT_IDX));
	for (i = 0; i < 40; i++) {
		vq_push(&vq, 0, 1);
		if (i == 30)
			CHECK_EQ(used[1], 0);
		if (i == 31)
			CHECK_EQ(used[1], 32);
	}
	CHECK_EQ(used[1], 32);
	vq_should_notify(&vq);
	CHECK_EQ(used[1], 40);
}

static void test_random(void)
{
	uint64_t seed = 99;
	struct virtqueue vq;
	unsigned int round, i, popped, errors = 0;
	uint8_t *lo = mem.map, *hi = mem.map + mem.map_size;

	test_case_begin("3000 random rings: every buffer popped lies in guest RAM");
	for (round = 0; round < 3000; round++) {
		ring_init(&vq, ALL_F | (round & 1 ? 1ULL << VIRTIO_F_EVENT_IDX : 0));
		for (i = 0; i < QSZ; i++)
			set_desc(desc, i, test_rand(&seed) % 3 ?
				 BUF + test_rand(&seed) % 0x20000 :
				 ((uint64_t)test_rand(&seed) << 32 | test_rand(&seed)),
				 test_rand(&seed) % 3 ? test_rand(&seed) % 4096 :
				 test_rand(&seed),
				 test_rand(&seed) % 8, test_rand(&seed) % 10);
		for (i = 0; i < QSZ; i++)
			avail[2 + i] = test_rand(&seed) % 10;
		avail[1] = test_rand(&seed) % 12;
		for (popped = 0; popped <= QSZ; popped++) {
			int r = vq_pop(&vq, &e);

			if (r < 0)
				errors++;
			if (r <= 0)
				break;
			for (i = 0; i < e.nout + e.nin; i++)
				if ((uint8_t *)iov[i].iov_base < lo ||
				    (uint8_t *)iov[i].iov_base + iov[i].iov_len > hi)
					break;
			CHECK(i == e.nout + e.nin);
		}
		CHECK(popped <= QSZ);
	}
	test_case_end();
	CHECK(errors > 0);
}

int main(void)
{
	struct mem_region r = { 0, 1 * MiB };

	if (guest_memory_init(&mem, &r, 1, NULL))
		return 1;
	test_setup();
	test_chains();
	test_malformed();
	test_notify();
	test_random();
	guest_memory_free(&mem);
	return test_done();
}
