/*
 * Fuzz target for virtio-blk request parsing (virtio/blk_req.c).  The
 * input is a chain's shape (segment counts and sizes) followed by the
 * bytes of its buffers (header included).  Whatever it holds, the parser
 * refuses it, or answers at once, or describes data and a status byte
 * that lie inside the chain's buffers and a range inside the disk.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lkvm/virtio/blk.h"

#define FUZZ_MEM	(64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t mem[FUZZ_MEM];
	struct iovec iov[BLK_MAX_IOV];
	struct blk_limits lim = { .sectors = 2048, .ro = false };
	struct vq_elem e = { .iov = iov, .max_iov = BLK_MAX_IOV };
	struct blk_parsed p;
	unsigned int nout, nin, i;
	size_t off = 0, used = 0;

	if (size < 3)
		return 0;
	nout = data[0] % 5;
	nin = data[1] % 6;
	lim.ro = data[2] & 1;
	off = 3;
	memset(mem, 0, sizeof(mem));
	for (i = 0; i < nout + nin; i++) {
		size_t len = off + 2 <= size ? (data[off] | data[off + 1] << 8) % 4200 : 1;

		off += 2;
		if (used + len > FUZZ_MEM)
			len = FUZZ_MEM - used;
		iov[i].iov_base = mem + used;
		iov[i].iov_len = len;
		if (i < nout) {
			e.nout++;
			e.out_bytes += len;
		} else {
			e.nin++;
			e.in_bytes += len;
		}
		used += len;
	}
	if (off < size)
		memcpy(mem, data + off, size - off < used ? size - off : used);
	if (blk_parse(&e, &lim, &p))
		return 0;
	if (p.status < mem || p.status >= mem + used)
		abort();
	if (p.early != 0xff)
		return 0;
	if (p.type == VIRTIO_BLK_T_IN || p.type == VIRTIO_BLK_T_OUT) {
		uint64_t sum = 0;

		for (i = 0; i < p.ndata; i++) {
			uint8_t *b = p.data[i].iov_base;

			if (b < mem || b + p.data[i].iov_len > mem + used)
				abort();
			sum += p.data[i].iov_len;
		}
		if (sum != p.len || p.len % 512 ||
		    p.sector + p.len / 512 > lim.sectors ||
		    (p.type == VIRTIO_BLK_T_OUT && lim.ro))
			abort();
	}
	return 0;
}

#ifndef LKVM_LIBFUZZER
#include "replay.h"

int main(int argc, char **argv)
{
	return replay_main(argc, argv, "virtio-blk requests", 4096, true);
}
#endif
