/*
 * image.c - arm64 Image header and placement (see image.h).  Header
 * fields, little-endian: code0, code1, text_offset (8), image_size (16),
 * flags (24), three reserved words, the magic "ARM\x64" at 56.
 */
#include <errno.h>
#include <string.h>

#include "lkvm/arm64/image.h"

#define IMAGE_MAGIC		0x644d5241	/* "ARM\x64" */
#define IMAGE_OLD_TEXT_OFFSET	0x80000		/* image_size 0: pre-3.17 */
#define IMAGE_MAX		(1ULL << 31)
#define ALIGN2M(x)		(((x) + 0x1fffffULL) & ~0x1fffffULL)

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

int arm64_image_parse(const uint8_t *hdr, size_t n, uint64_t file_size,
		      struct arm64_image *img)
{
	uint32_t magic;

	if (n < ARM64_IMAGE_HEADER_SIZE || file_size < ARM64_IMAGE_HEADER_SIZE)
		return -EINVAL;
	magic = hdr[56] | hdr[57] << 8 | hdr[58] << 16 | (uint32_t)hdr[59] << 24;
	if (magic != IMAGE_MAGIC)
		return -EINVAL;
	img->text_offset = le64(hdr + 8);
	img->image_size = le64(hdr + 16);
	img->file_size = file_size;
	if (!img->image_size) {
		img->text_offset = IMAGE_OLD_TEXT_OFFSET;
		img->image_size = file_size;
	}
	/* Absurd values are a corrupt header, not a kernel. */
	if (img->text_offset >= 0x200000 || img->text_offset % 4096 ||
	    img->image_size > IMAGE_MAX || file_size > IMAGE_MAX ||
	    img->image_size < file_size)
		return -EINVAL;
	return 0;
}

int arm64_image_place(const struct arm64_image *img, uint64_t ram,
		      uint64_t ram_size, uint64_t initrd_size,
		      uint64_t *kernel, uint64_t *fdt, uint64_t *initrd)
{
	uint64_t base = ALIGN2M(ram), end = ram + ram_size, next;

	if (ram + ram_size < ram || initrd_size > ram_size)
		return -ENOSPC;
	*kernel = base + img->text_offset;
	*fdt = ALIGN2M(*kernel + img->image_size);
	next = *fdt + 0x200000;		/* the DT may use 2 MiB */
	*initrd = (next + 0xfff) & ~0xfffULL;
	if (*kernel + img->image_size > end || next > end ||
	    *initrd + initrd_size > end || *initrd + initrd_size < *initrd)
		return -ENOSPC;
	return 0;
}
