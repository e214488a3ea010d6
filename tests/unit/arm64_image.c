/*
 * Tests arm64/image.c (built into this test on any host): Image header
 * checks against corrupt and random headers, and where kernel, device
 * tree and initrd land in RAM.
 */
#include <errno.h>

#include "lkvm/arm64/image.h"
#include "test.h"

static void put64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = v >> (8 * i);
}

static void header(uint8_t *h, uint64_t text, uint64_t size)
{
	memset(h, 0, ARM64_IMAGE_HEADER_SIZE);
	put64(h + 8, text);
	put64(h + 16, size);
	memcpy(h + 56, "ARM\x64", 4);
}

int main(void)
{
	uint8_t h[ARM64_IMAGE_HEADER_SIZE];
	struct arm64_image img;
	uint64_t k, fdt, rd, seed = 3;
	unsigned int i;

	header(h, 0, 0x2000000);
	CHECK_EQ(arm64_image_parse(h, sizeof(h), 0x1800000, &img), 0);
	CHECK_EQ(img.text_offset, 0);
	CHECK_EQ(img.image_size, 0x2000000);
	/* image_size 0: an old kernel, text_offset 0x80000 by definition. */
	header(h, 0x1234000, 0);
	CHECK_EQ(arm64_image_parse(h, sizeof(h), 0x800000, &img), 0);
	CHECK_EQ(img.text_offset, 0x80000);
	CHECK_EQ(img.image_size, 0x800000);
	/* Corrupt: magic, short, absurd offsets and sizes. */
	header(h, 0, 0x2000000);
	h[57] = 'X';
	CHECK_EQ(arm64_image_parse(h, sizeof(h), 0x1800000, &img), -EINVAL);
	header(h, 0, 0x2000000);
	CHECK_EQ(arm64_image_parse(h, 63, 0x1800000, &img), -EINVAL);
	CHECK_EQ(arm64_image_parse(h, sizeof(h), 10, &img), -EINVAL);
	header(h, 0x200000, 0x2000000);
	CHECK_EQ(arm64_image_parse(h, sizeof(h), 0x1800000, &img), -EINVAL);
	header(h, 0x1001, 0x2000000);
	CHECK_EQ(arm64_image_parse(h, sizeof(h), 0x1800000, &img), -EINVAL);
	header(h, 0, 1ULL << 40);
	CHECK_EQ(arm64_image_parse(h, sizeof(h), 0x1800000, &img), -EINVAL);
	header(h, 0, 0x100000);		/* smaller than the file */
	CHECK_EQ(arm64_image_parse(h, sizeof(h), 0x1800000, &img), -EINVAL);

	/* Placement: kernel at base + text_offset, DT on the next 2 MiB. */
	header(h, 0, 0x2000000);
	arm64_image_parse(h, sizeof(h), 0x1800000, &img);
	CHECK_EQ(arm64_image_place(&img, 0x80000000, 256 << 20, 0x1000000,
				   &k, &fdt, &rd), 0);
	CHECK_EQ(k, 0x80000000);
	CHECK_EQ(fdt, 0x82000000);
	CHECK_EQ(rd, 0x82200000);
	CHECK(fdt % 0x200000 == 0 && rd % 4096 == 0);
	/* Too small a RAM, too big an initrd, overflow. */
	CHECK_EQ(arm64_image_place(&img, 0x80000000, 32 << 20, 0, &k, &fdt,
				   &rd), -ENOSPC);
	CHECK_EQ(arm64_image_place(&img, 0x80000000, 64 << 20, 60 << 20, &k,
				   &fdt, &rd), -ENOSPC);
	CHECK_EQ(arm64_image_place(&img, UINT64_MAX - 0xfffff, 1 << 20, 0, &k,
				   &fdt, &rd), -ENOSPC);

	/* Random headers: accepted ones always place inside RAM. */
	test_case_begin("100000 random Image headers: accepted ones place inside RAM");
	for (i = 0; i < 100000; i++) {
		uint64_t ram = 256 << 20, isz = test_rand(&seed) % (64 << 20);
		unsigned int j;

		header(h, (test_rand(&seed) % 64) * 0x8000,
		       test_rand(&seed) % 2 ? 0 :
		       ((uint64_t)test_rand(&seed) << 8));
		for (j = 0; j < 4; j++)
			if (test_rand(&seed) % 4 == 0)
				h[test_rand(&seed) % sizeof(h)] = test_rand(&seed);
		if (arm64_image_parse(h, sizeof(h),
				      test_rand(&seed) % (128 << 20), &img))
			continue;
		CHECK(img.text_offset < 0x200000 && img.text_offset % 4096 == 0);
		if (arm64_image_place(&img, 0x80000000, ram, isz, &k, &fdt, &rd))
			continue;
		CHECK(k + img.image_size <= fdt);
		CHECK(fdt + 0x200000 <= rd);
		CHECK(rd + isz <= 0x80000000 + ram);
	}
	test_case_end();
	return test_done();
}
