/*
 * image.h - the arm64 Linux Image header (Documentation/arch/arm64/
 * booting.rst): where an Image wants to be loaded, checked before any of
 * it is trusted.
 */
#ifndef LKVM_ARM64_IMAGE_H
#define LKVM_ARM64_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#define ARM64_IMAGE_HEADER_SIZE	64

struct arm64_image {
	uint64_t text_offset;	/* from a 2 MiB-aligned base */
	uint64_t image_size;	/* memory the kernel uses from its load */
	uint64_t file_size;
};

/* Parses the header of a file of file_size bytes; -EINVAL if not an Image. */
int arm64_image_parse(const uint8_t *hdr, size_t n, uint64_t file_size,
		      struct arm64_image *img);

/*
 * Places kernel, device tree and initrd in RAM [ram, ram + ram_size):
 * kernel at a 2 MiB-aligned base + text_offset, the DT on the next 2 MiB
 * boundary after the kernel's image_size, the initrd after the DT.
 * Returns -ENOSPC if they do not fit.
 */
int arm64_image_place(const struct arm64_image *img, uint64_t ram,
		      uint64_t ram_size, uint64_t initrd_size,
		      uint64_t *kernel, uint64_t *fdt, uint64_t *initrd);

#endif
