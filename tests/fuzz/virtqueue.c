/*
 * Fuzz target for descriptor-chain parsing (virtio/virtqueue.c).  The
 * input becomes a guest's descriptor table, avail ring and negotiated
 * features; every chain the parser accepts must describe memory inside
 * guest RAM, and nothing may crash or loop.  Built with clang's libFuzzer
 * by `make fuzz`; without libFuzzer, main() below replays random inputs
 * (make check runs both kinds briefly).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lkvm/virtio/virtqueue.h"

#define MEM_SIZE	(256 * 1024)
#define DESC_GPA	0x1000
#define AVAIL_GPA	0x6000
#define USED_GPA	0x8000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct guest_memory mem;

static void check_iov(const struct iovec *iov, unsigned int n)
{
	const uint8_t *lo = mem.map, *hi = mem.map + mem.map_size;
	unsigned int i;

	for (i = 0; i < n; i++) {
		const uint8_t *b = iov[i].iov_base;

		if (b < lo || b > hi || iov[i].iov_len > (size_t)(hi - b))
			abort();	/* the parser let a buffer escape */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t sizes[] = { 1, 2, 4, 16, 64, 256, 1024 };
	struct iovec iov[64];
	struct vq_elem e = { .iov = iov, .max_iov = 64 };
	struct virtqueue vq;
	uint64_t features;
	uint16_t qsize;
	size_t room;
	int i, r;

	if (!mem.map) {
		struct mem_region reg = { 0, MEM_SIZE };

		if (guest_memory_init(&mem, &reg, 1, NULL))
			abort();
	}
	if (size < 2)
		return 0;
	qsize = sizes[data[0] % 7];
	features = (data[1] & 1 ? 1ULL << VIRTIO_F_INDIRECT_DESC : 0) |
		   (data[1] & 2 ? 1ULL << VIRTIO_F_EVENT_IDX : 0);
	data += 2;
	size -= 2;
	memset(mem.map, 0, USED_GPA + 8 * 1024 + 8);
	/* Descriptor table, then the avail ring, from the input. */
	room = 16u * qsize;
	memcpy(mem.map + DESC_GPA, data, size < room ? size : room);
	if (size > room)
		memcpy(mem.map + AVAIL_GPA, data + room,
		       size - room < 6u + 2 * qsize ? size - room :
		       6u + 2 * qsize);
	if (vq_setup(&vq, &mem, qsize, DESC_GPA, AVAIL_GPA, USED_GPA,
		     features))
		abort();
	/* A well-behaved parser takes at most qsize chains per idx move. */
	for (i = 0; i < 2 * qsize + 2; i++) {
		r = vq_pop(&vq, &e);
		if (r <= 0)
			break;
		if (e.head >= qsize || e.nout + e.nin > e.max_iov)
			abort();
		check_iov(iov, e.nout + e.nin);
		vq_push(&vq, e.head, e.in_bytes);
		vq_should_notify(&vq);
	}
	if (r == 1)
		abort();	/* more chains than the ring can hold */
	return 0;
}

#ifndef LKVM_LIBFUZZER
#include "replay.h"

int main(int argc, char **argv)
{
	return replay_main(argc, argv, "virtqueue chains", 20000, true);
}
#endif
