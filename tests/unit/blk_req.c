/*
 * Tests virtio/blk_req.c: every way a request chain can be malformed,
 * split headers, trimming of the status byte, range checks, read-only
 * refusals, discard/write-zeroes segments; then random chains.
 */
#include <errno.h>

#include "lkvm/virtio/blk.h"
#include "test.h"

static uint8_t mem[1 << 16];
static struct iovec iov[16];

struct seg {
	uint64_t sector;
	uint32_t num, flags;
};

/* Lays out a chain: out buffers of the given sizes, then in buffers. */
static struct vq_elem chain(const unsigned int *outs, unsigned int nout,
			    const unsigned int *ins, unsigned int nin)
{
	struct vq_elem e = { .iov = iov, .max_iov = 16, .nout = nout,
			     .nin = nin };
	uint8_t *p = mem;
	unsigned int i;

	for (i = 0; i < nout + nin; i++) {
		unsigned int len = i < nout ? outs[i] : ins[i - nout];

		iov[i].iov_base = p;
		iov[i].iov_len = len;
		if (i >= nout)
			e.in_bytes += len;
		p += len + 64;
	}
	return e;
}

/* Writes a header across the out buffers (it may be split). */
static void put_hdr(struct vq_elem *e, uint32_t type, uint64_t sector)
{
	uint8_t h[16] = { 0 };
	unsigned int i, k = 0, j;

	memcpy(h, &type, 4);
	memcpy(h + 8, &sector, 8);
	for (i = 0; i < e->nout && k < 16; i++)
		for (j = 0; j < e->iov[i].iov_len && k < 16; j++)
			((uint8_t *)e->iov[i].iov_base)[j] = h[k++];
}

static void put_seg(struct vq_elem *e, unsigned int idx, struct seg s)
{
	memcpy(e->iov[idx].iov_base, &s, sizeof(s));
}

int main(void)
{
	struct blk_limits lim = { .sectors = 1000, .ro = false };
	struct blk_limits ro = { .sectors = 1000, .ro = true };
	struct blk_parsed p;
	struct vq_elem e;
	uint64_t seed = 7;
	unsigned int i;

	/* A plain read: header, 4 KiB in, status. */
	e = chain((unsigned int[]){ 16 }, 1, (unsigned int[]){ 4096, 1 }, 2);
	put_hdr(&e, VIRTIO_BLK_T_IN, 10);
	CHECK_EQ(blk_parse(&e, &lim, &p), 0);
	CHECK_EQ(p.early, 0xff);
	CHECK_EQ(p.type, VIRTIO_BLK_T_IN);
	CHECK_EQ(p.sector, 10);
	CHECK_EQ(p.len, 4096);
	CHECK_EQ(p.ndata, 1);
	CHECK(p.status == (uint8_t *)iov[2].iov_base);

	/* Status inside the data buffer's last byte: trimmed off. */
	e = chain((unsigned int[]){ 16 }, 1, (unsigned int[]){ 513 }, 1);
	put_hdr(&e, VIRTIO_BLK_T_IN, 0);
	CHECK_EQ(blk_parse(&e, &lim, &p), 0);
	CHECK_EQ(p.len, 512);
	CHECK(p.status == (uint8_t *)iov[1].iov_base + 512);

	/* Header split 3 + 13 across two buffers, write of 1 KiB. */
	e = chain((unsigned int[]){ 3, 13, 1024 }, 3, (unsigned int[]){ 1 }, 1);
	put_hdr(&e, VIRTIO_BLK_T_OUT, 999 - 1);
	CHECK_EQ(blk_parse(&e, &lim, &p), 0);
	CHECK_EQ(p.early, 0xff);
	CHECK_EQ(p.sector, 998);
	CHECK_EQ(p.len, 1024);
	CHECK_EQ(p.ndata, 1);
	/* Header and data sharing one buffer. */
	e = chain((unsigned int[]){ 16 + 512 }, 1, (unsigned int[]){ 1 }, 1);
	put_hdr(&e, VIRTIO_BLK_T_OUT, 0);
	{
		uint8_t *base = iov[0].iov_base;

		CHECK_EQ(blk_parse(&e, &lim, &p), 0);
		CHECK_EQ(p.len, 512);
		CHECK(p.data[0].iov_base == base + 16);
	}

	/* No writable byte at all: nowhere to put a status. */
	e = chain((unsigned int[]){ 16, 512 }, 2, NULL, 0);
	put_hdr(&e, VIRTIO_BLK_T_OUT, 0);
	CHECK_EQ(blk_parse(&e, &lim, &p), -EINVAL);
	e = chain((unsigned int[]){ 16 }, 1, (unsigned int[]){ 0, 0 }, 2);
	CHECK_EQ(blk_parse(&e, &lim, &p), -EINVAL);
	/* Short header: IOERR. */
	e = chain((unsigned int[]){ 15 }, 1, (unsigned int[]){ 1 }, 1);
	CHECK_EQ(blk_parse(&e, &lim, &p), 0);
	CHECK_EQ(p.early, VIRTIO_BLK_S_IOERR);
	e = chain(NULL, 0, (unsigned int[]){ 512, 1 }, 2);
	CHECK_EQ(blk_parse(&e, &lim, &p), 0);
	CHECK_EQ(p.early, VIRTIO_BLK_S_IOERR);

	/* Ranges: last sector fine, one past, partial sectors, overflow. */
	e = chain((unsigned int[]){ 16 }, 1, (unsigned int[]){ 512, 1 }, 2);
	put_hdr(&e, VIRTIO_BLK_T_IN, 999);
	blk_parse(&e, &lim, &p);
	CHECK_EQ(p.early, 0xff);
	e = chain((unsigned int[]){ 16 }, 1, (unsigned int[]){ 1024, 1 }, 2);
	put_hdr(&e, VIRTIO_BLK_T_IN, 999);
	blk_parse(&e, &lim, &p);
	CHECK_EQ(p.early, VIRTIO_BLK_S_IOERR);
	e = chain((unsigned int[]){ 16 }, 1, (unsigned int[]){ 1000, 1 }, 2);
	put_hdr(&e, VIRTIO_BLK_T_IN, 0);
	blk_parse(&e, &lim, &p);
	CHECK_EQ(p.early, VIRTIO_BLK_S_IOERR);
	e = chain((unsigned int[]){ 16 }, 1, (unsigned int[]){ 512, 1 }, 2);
	put_hdr(&e, VIRTIO_BLK_T_IN, UINT64_MAX);
	blk_parse(&e, &lim, &p);
	CHECK_EQ(p.early, VIRTIO_BLK_S_IOERR);
	put_hdr(&e, VIRTIO_BLK_T_IN, 1001);
	blk_parse(&e, &lim, &p);
	CHECK_EQ(p.early, VIRTIO_BLK_S_IOERR);
	put_hdr(&e, VIRTIO_BLK_T_IN, UINT64_MAX / 512 + 1);
	blk_parse(&e, &lim, &p);
	CHECK_EQ(p.early, VIRTIO_BLK_S_IOERR);

	/* Read-only: writes, discards, write-zeroes refused; reads fine. */
	e = chain((unsigned int[]){ 16, 512 }, 2, (unsigned int[]){ 1 }, 1);
	put_hdr(&e, VIRTIO_BLK_T_OUT, 0);
	blk_parse(&e, &ro, &p);
	CHECK_EQ(p.early, VIRTIO_BLK_S_IOERR);
	e = chain((unsigned int[]){ 16, 16 }, 2, (unsigned int[]){ 1 }, 1);
	put_hdr(&e, VIRTIO_BLK_T_DISCARD, 0);
	put_seg(&e, 1, (struct seg){ 0, 8, 0 });
	blk_parse(&e, &ro, &p);
	CHECK_EQ(p.early, VIRTIO_BLK_S_IOERR);
	put_hdr(&e, VIRTIO_BLK_T_WRITE_ZEROES, 0);
	blk_parse(&e, &ro, &p);
	CHECK_EQ(p.early, VIRTIO_BLK_S_IOERR);
	e = chain((unsigned int[]){ 16 }, 1, (unsigned int[]){ 512, 1 }, 2);
	put_hdr(&e, VIRTIO_BLK_T_IN, 0);
	blk_parse(&e, &ro, &p);
	CHECK_EQ(p.early, 0xff);

	/* Flush, get-id, unknown types. */
	e = chain((unsigned int[]){ 16 }, 1, (unsigned int[]){ 1 }, 1);
	put_hdr(&e, VIRTIO_BLK_T_FLUSH, 0);
	blk_parse(&e, &lim, &p);
	CHECK_EQ(p.early, 0xff);
	CHECK_EQ(p.type, VIRTIO_BLK_T_FLUSH);
	e = chain((unsigned int[]){ 16 }, 1, (unsigned int[]){ 20, 1 }, 2);
	put_hdr(&e, VIRTIO_BLK_T_GET_ID, 0);
	blk_parse(&e, &lim, &p);
	CHECK_EQ(p.early, 0xff);
	CHECK_EQ(p.len, 20);
	for (i = 2; i < 40; i++) {
		if (i == VIRTIO_BLK_T_FLUSH || i == VIRTIO_BLK_T_GET_ID ||
		    i == VIRTIO_BLK_T_DISCARD || i == VIRTIO_BLK_T_WRITE_ZEROES)
			continue;
		put_hdr(&e, i, 0);
		blk_parse(&e, &lim, &p);
		CHECK_EQ(p.early, VIRTIO_BLK_S_UNSUPP);
	}

	/* Discard / write zeroes: one 16-byte segment exactly. */
	e = chain((unsigned int[]){ 16, 16 }, 2, (unsigned int[]){ 1 }, 1);
	put_hdr(&e, VIRTIO_BLK_T_WRITE_ZEROES, 0);
	put_seg(&e, 1, (struct seg){ 100, 50, 1 });
	blk_parse(&e, &lim, &p);
	CHECK_EQ(p.early, 0xff);
	CHECK_EQ(p.sector, 100);
	CHECK_EQ(p.len, 50 * 512);
	CHECK(p.unmap);
	put_seg(&e, 1, (struct seg){ 100, 50, 2 });	/* unknown flag */
	blk_parse(&e, &lim, &p);
	CHECK_EQ(p.early, VIRTIO_BLK_S_UNSUPP);
	put_seg(&e, 1, (struct seg){ 990, 11, 0 });	/* past the end */
	blk_parse(&e, &lim, &p);
	CHECK_EQ(p.early, VIRTIO_BLK_S_IOERR);
	put_seg(&e, 1, (struct seg){ UINT64_MAX - 3, 8, 0 });
	blk_parse(&e, &lim, &p);
	CHECK_EQ(p.early, VIRTIO_BLK_S_IOERR);
	put_hdr(&e, VIRTIO_BLK_T_DISCARD, 0);
	put_seg(&e, 1, (struct seg){ 0, 8, 1 });	/* unmap on discard */
	blk_parse(&e, &lim, &p);
	CHECK_EQ(p.early, VIRTIO_BLK_S_UNSUPP);
	put_seg(&e, 1, (struct seg){ 0, 8, 0 });
	blk_parse(&e, &lim, &p);
	CHECK_EQ(p.early, 0xff);
	CHECK(!p.unmap);
	e = chain((unsigned int[]){ 16, 32 }, 2, (unsigned int[]){ 1 }, 1);
	put_hdr(&e, VIRTIO_BLK_T_DISCARD, 0);
	blk_parse(&e, &lim, &p);
	CHECK_EQ(p.early, VIRTIO_BLK_S_UNSUPP);		/* two segments */
	e = chain((unsigned int[]){ 16, 8 }, 2, (unsigned int[]){ 1 }, 1);
	put_hdr(&e, VIRTIO_BLK_T_DISCARD, 0);
	blk_parse(&e, &lim, &p);
	CHECK_EQ(p.early, VIRTIO_BLK_S_UNSUPP);		/* half a segment */

	/*
	 * Random chains: whatever the shape and bytes, the parser either
	 * refuses, or its data and status lie inside the chain's buffers
	 * and the range inside the disk.
	 */
	test_case_begin("20000 random chains: refused, or data and status inside the chain and the disk");
	for (i = 0; i < 20000; i++) {
		unsigned int outs[6], ins[6], no = test_rand(&seed) % 5,
			     ni = test_rand(&seed) % 5, k, j;
		uint8_t *lo = mem, *hi = mem + sizeof(mem);
		int r;

		for (k = 0; k < no; k++)
			outs[k] = test_rand(&seed) % 40;
		for (k = 0; k < ni; k++)
			ins[k] = test_rand(&seed) % 1100;
		e = chain(outs, no, ins, ni);
		for (k = 0; k < 64; k++)
			mem[test_rand(&seed) % 256] = test_rand(&seed);
		if (no)
			put_hdr(&e, test_rand(&seed) % 16,
				test_rand(&seed) % 1200);
		r = blk_parse(&e, &lim, &p);
		if (r) {
			CHECK_EQ(r, -EINVAL);
			continue;
		}
		CHECK(p.status >= lo && p.status < hi);
		if (p.early != 0xff)
			continue;
		if (p.type == VIRTIO_BLK_T_IN || p.type == VIRTIO_BLK_T_OUT) {
			uint64_t sum = 0;

			for (j = 0; j < p.ndata; j++) {
				uint8_t *b = p.data[j].iov_base;

				sum += p.data[j].iov_len;
				CHECK(b >= lo && b + p.data[j].iov_len <= hi);
				CHECK(!(p.status >= b &&
					p.status < b + p.data[j].iov_len));
			}
			CHECK_EQ(sum, p.len);
			CHECK(p.len % 512 == 0);
			CHECK(p.sector + p.len / 512 <= lim.sectors);
		}
	}
	test_case_end();
	return test_done();
}
