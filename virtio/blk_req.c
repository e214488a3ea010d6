/*
 * blk_req.c - virtio-blk request parsing (virtio 1.2, section 5.2.6).
 *
 * A request is a 16-byte header (type, reserved, sector) in the
 * device-readable part, then data (readable for writes, writable for
 * reads), then one writable status byte at the very end.  Drivers may
 * split any of these over several descriptors, so the parser walks the
 * chain's iovecs and trims them in place to leave just the data.
 */
#include <errno.h>
#include <string.h>

#include "lkvm/virtio/blk.h"

struct blk_seg {		/* discard / write zeroes payload */
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

#define BLK_SEG_F_UNMAP 1

/* Copies n bytes from the start of iov[0..cnt) into buf. */
static bool iov_peek(const struct iovec *iov, unsigned int cnt, void *buf,
		     size_t n)
{
	uint8_t *p = buf;
	unsigned int i;

	for (i = 0; i < cnt && n; i++) {
		size_t k = iov[i].iov_len < n ? iov[i].iov_len : n;

		memcpy(p, iov[i].iov_base, k);
		p += k;
		n -= k;
	}
	return n == 0;
}

/* Drops the first n bytes of iov[0..*cnt); returns the new start. */
static struct iovec *iov_skip(struct iovec *iov, unsigned int *cnt, size_t n)
{
	while (*cnt && n) {
		if (n < iov->iov_len) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= n;
			return iov;
		}
		n -= iov->iov_len;
		iov++;
		(*cnt)--;
	}
	/* Skip empty leading buffers too. */
	while (*cnt && !iov->iov_len) {
		iov++;
		(*cnt)--;
	}
	return iov;
}

static uint64_t iov_bytes(const struct iovec *iov, unsigned int cnt)
{
	uint64_t n = 0;
	unsigned int i;

	for (i = 0; i < cnt; i++)
		n += iov[i].iov_len;
	return n;
}

/* Is [sector, sector + len/512) inside the disk, len a whole sector count? */
static bool blk_range_ok(const struct blk_limits *lim, uint64_t sector,
			 uint64_t len)
{
	return len % BLK_SECTOR == 0 && sector <= lim->sectors &&
	       len / BLK_SECTOR <= lim->sectors - sector;
}

int blk_parse(struct vq_elem *e, const struct blk_limits *lim,
	      struct blk_parsed *p)
{
	struct iovec *out = e->iov, *in = e->iov + e->nout, *last;
	unsigned int nout = e->nout, nin = e->nin;
	uint8_t hdr[16];
	struct blk_seg seg;

	memset(p, 0, sizeof(*p));
	p->early = 0xff;
	/* The status byte: the last byte of the last writable buffer. */
	while (nin && !in[nin - 1].iov_len)
		nin--;
	if (!nin)
		return -EINVAL;
	last = &in[nin - 1];
	p->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	if (!iov_peek(out, nout, hdr, sizeof(hdr))) {
		p->early = VIRTIO_BLK_S_IOERR;	/* no complete header */
		return 0;
	}
	memcpy(&p->type, hdr, 4);
	memcpy(&p->sector, hdr + 8, 8);
	out = iov_skip(out, &nout, sizeof(hdr));
	/* What follows the header in the chain, minus the status byte. */
	if (last->iov_len == 1)
		nin--;
	else
		last->iov_len--;

	switch (p->type) {
	case VIRTIO_BLK_T_IN:
		p->data = in;
		p->ndata = nin;
		p->len = iov_bytes(in, nin);
		break;
	case VIRTIO_BLK_T_OUT:
		if (lim->ro) {
			p->early = VIRTIO_BLK_S_IOERR;
			return 0;
		}
		p->data = out;
		p->ndata = nout;
		p->len = iov_bytes(out, nout);
		break;
	case VIRTIO_BLK_T_FLUSH:
		return 0;
	case VIRTIO_BLK_T_GET_ID:
		p->data = in;
		p->ndata = nin;
		p->len = iov_bytes(in, nin);
		return 0;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (lim->ro) {
			p->early = VIRTIO_BLK_S_IOERR;
			return 0;
		}
		/* We offer one segment per request: exactly 16 bytes. */
		if (iov_bytes(out, nout) != sizeof(seg) ||
		    !iov_peek(out, nout, &seg, sizeof(seg))) {
			p->early = VIRTIO_BLK_S_UNSUPP;
			return 0;
		}
		if (seg.flags & ~(uint32_t)BLK_SEG_F_UNMAP ||
		    (p->type == VIRTIO_BLK_T_DISCARD && seg.flags)) {
			p->early = VIRTIO_BLK_S_UNSUPP;
			return 0;
		}
		p->unmap = seg.flags & BLK_SEG_F_UNMAP;
		p->sector = seg.sector;
		p->len = (uint64_t)seg.num_sectors * BLK_SECTOR;
		break;
	default:
		p->early = VIRTIO_BLK_S_UNSUPP;
		return 0;
	}
	if (!blk_range_ok(lim, p->sector, p->len))
		p->early = VIRTIO_BLK_S_IOERR;
	return 0;
}
