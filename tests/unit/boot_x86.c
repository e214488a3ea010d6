/*
 * Tests x86/boot.c, bzimage.c, pvh.c and flat.c: format detection, what
 * each loader writes into guest memory, and that corrupt or truncated
 * images (including random mutations) are refused with a message and
 * never read or write out of bounds (this also runs under ASan/UBSan).
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "lkvm/lib/util.h"
#include "lkvm/x86/boot.h"
#include "lkvm/x86/e820.h"
#include "lkvm/x86/layout.h"
#include "test.h"

#define MEM (64 * MiB)

static struct guest_memory mem;
static struct boot_e820_entry e820[8];
static unsigned int e820_n;
static char path[64] = "/tmp/lkvm-boot-test-XXXXXX";
static char ipath[64] = "/tmp/lkvm-initrd-test-XXXXXX";

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* Writes img to the scratch file and runs the loader dispatcher on it. */
static int load(const uint8_t *img, size_t len, const char *cmdline,
		int initrd_fd, uint64_t initrd_size, struct x86_boot *b,
		char *err)
{
	uint8_t head[X86_KERNEL_HEAD];
	struct x86_boot_args a = {
		.mem = &mem, .cmdline = cmdline, .initrd_fd = initrd_fd,
		.initrd_size = initrd_size, .e820 = e820, .e820_n = e820_n,
		.head = head,
	};
	int fd = open(path, O_RDWR | O_TRUNC);
	int ret;

	if (fd < 0 || write(fd, img, len) != (ssize_t)len)
		return -EIO;
	a.kernel_fd = fd;
	a.kernel_size = len;
	a.head_len = MIN(len, sizeof(head));
	memcpy(head, img, a.head_len);
	err[0] = '\0';
	ret = x86_kernel_load(&a, b, err, 256);
	close(fd);
	return ret;
}

#define BZ_SETUP_SECTS	4
#define BZ_SETUP_SIZE	((BZ_SETUP_SECTS + 1) * 512)
#define BZ_PAYLOAD	(64 * 1024)

static size_t make_bzimage(uint8_t *img)
{
	size_t i;

	memset(img, 0, BZ_SETUP_SIZE + BZ_PAYLOAD);
	img[0x1f1] = BZ_SETUP_SECTS;
	put16(img + 0x1fe, 0xaa55);
	img[0x200] = 0xeb;
	img[0x201] = 0x66;			/* header ends at 0x268 */
	memcpy(img + 0x202, "HdrS", 4);
	put16(img + 0x206, 0x020f);
	put32(img + 0x22c, 0x7fffffff);		/* initrd_addr_max */
	put32(img + 0x230, 0x200000);		/* kernel_alignment */
	put16(img + 0x236, XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G);
	put32(img + 0x238, 2048);		/* cmdline_size */
	put32(img + 0x260, 4 * MiB);		/* init_size */
	for (i = 0; i < BZ_PAYLOAD; i++)
		img[BZ_SETUP_SIZE + i] = i * 7 + 3;
	return BZ_SETUP_SIZE + BZ_PAYLOAD;
}

static int make_initrd(size_t size)
{
	int fd = open(ipath, O_RDWR | O_TRUNC);
	uint8_t buf[4096];
	size_t done;

	for (done = 0; done < size; done += sizeof(buf)) {
		size_t n = MIN(sizeof(buf), size - done);

		memset(buf, (int)(done / 4096) & 0xff, n);
		if (write(fd, buf, n) != (ssize_t)n)
			return -1;
	}
	return fd;
}

static void test_bzimage(void)
{
	static uint8_t img[BZ_SETUP_SIZE + BZ_PAYLOAD];
	struct boot_params *bp;
	struct x86_boot b;
	char err[256];
	size_t len = make_bzimage(img);
	int ifd = make_initrd(100000);
	uint8_t *rd;

	CHECK_EQ(load(img, len, "console=ttyS0 quiet", ifd, 100000, &b, err),
		 0);
	CHECK_EQ(b.mode, X86_BOOT_LONG64);
	CHECK_EQ(b.entry, X86_HIGH_MEM + 0x200);
	CHECK_EQ(b.arg, X86_ZERO_PAGE_ADDR);
	CHECK(!memcmp(guest_ptr(&mem, X86_HIGH_MEM, BZ_PAYLOAD),
		      img + BZ_SETUP_SIZE, BZ_PAYLOAD));
	bp = guest_ptr(&mem, X86_ZERO_PAGE_ADDR, sizeof(*bp));
	CHECK_EQ(bp->hdr.type_of_loader, 0xff);
	CHECK(bp->hdr.loadflags & CAN_USE_HEAP);
	CHECK_EQ(bp->hdr.version, 0x020f);
	CHECK_EQ(bp->hdr.cmd_line_ptr, X86_CMDLINE_ADDR);
	CHECK(!strcmp(guest_ptr(&mem, X86_CMDLINE_ADDR, 1),
		      "console=ttyS0 quiet"));
	CHECK_EQ(bp->e820_entries, e820_n);
	CHECK(!memcmp(bp->e820_table, e820, e820_n * sizeof(*e820)));
	/* initrd: page aligned, above the kernel, inside RAM, intact */
	CHECK_EQ(bp->hdr.ramdisk_size, 100000);
	CHECK_EQ(bp->hdr.ramdisk_image % 4096, 0);
	CHECK(bp->hdr.ramdisk_image >= X86_HIGH_MEM + 4 * MiB);
	CHECK(bp->hdr.ramdisk_image + 100000 <= MEM);
	rd = guest_ptr(&mem, bp->hdr.ramdisk_image, 100000);
	CHECK(rd && rd[0] == 0 && rd[4096] == 1 && rd[99999] == 24);
	close(ifd);

	/* Without initrd or command line. */
	CHECK_EQ(load(img, len, NULL, -1, 0, &b, err), 0);
	CHECK_EQ(bp->hdr.ramdisk_image, 0);
	CHECK(!strcmp(guest_ptr(&mem, X86_CMDLINE_ADDR, 1), ""));
}

/*
 * The loader refuses img with want and says why; a kernel that cannot be
 * used is the configuration's fault (an input error), not the host's.
 */
static void expect_refused(const char *why, uint8_t *img, size_t len, int want,
		      const char *cmdline, uint64_t initrd_size)
{
	struct x86_boot b;
	char err[256];
	int fd = initrd_size ? open(ipath, O_RDONLY) : -1;
	int ret = load(img, len, cmdline, fd, initrd_size, &b, err);

	if (fd >= 0)
		close(fd);
	if (err_errno(ret) != want || !err_is_input(ret) || !err[0]) {
		test_failed++;
		fprintf(stderr, "FAIL %s: got %d (%s), want input error %d\n",
			why, ret, err, want);
	} else {
		test_passed++;
	}
}

static void test_bzimage_bad(void)
{
	static uint8_t img[BZ_SETUP_SIZE + BZ_PAYLOAD];
	static char longcmd[4096];
	size_t len = make_bzimage(img);

	put16(img + 0x206, 0x0204);
	expect_refused("old protocol", img, len, -ENOEXEC, NULL, 0);
	make_bzimage(img);
	put16(img + 0x236, 0);
	expect_refused("no 64-bit entry", img, len, -ENOEXEC, NULL, 0);
	make_bzimage(img);
	img[0x1f1] = 200;
	expect_refused("setup beyond file", img, len, -ENOEXEC, NULL, 0);
	make_bzimage(img);
	put32(img + 0x260, 0xffffffff);
	expect_refused("init_size beyond RAM", img, len, -E2BIG, NULL, 0);
	make_bzimage(img);
	memset(longcmd, 'a', 3000);
	expect_refused("command line too long", img, len, -E2BIG, longcmd, 0);
	expect_refused("initrd larger than RAM", img, len, -E2BIG, NULL,
		  2 * MEM);
	put32(img + 0x22c, 0x200000);	/* initrd_addr_max below the kernel */
	expect_refused("initrd limit below kernel", img, len, -E2BIG, NULL, 4096);
	make_bzimage(img);
	/* Header probe passes but the file ends inside the header. */
	expect_refused("truncated", img, 0x210, -ENOEXEC, NULL, 0);
}

/* A minimal PVH ELF: one PT_LOAD at paddr, one PT_NOTE with the entry. */
struct pvh_img {
	Elf64_Ehdr eh;
	Elf64_Phdr ph[2];
	struct {
		uint32_t namesz, descsz, type;
		char name[4];
		uint32_t entry;
	} note;
	uint8_t code[4096];
};

static void make_pvh(struct pvh_img *p, uint64_t paddr)
{
	unsigned int i;

	memset(p, 0, sizeof(*p));
	memcpy(p->eh.e_ident, ELFMAG, SELFMAG);
	p->eh.e_ident[EI_CLASS] = ELFCLASS64;
	p->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	p->eh.e_ident[EI_VERSION] = EV_CURRENT;
	p->eh.e_type = ET_EXEC;
	p->eh.e_machine = EM_X86_64;
	p->eh.e_phoff = offsetof(struct pvh_img, ph);
	p->eh.e_phentsize = sizeof(Elf64_Phdr);
	p->eh.e_phnum = 2;
	p->eh.e_ehsize = sizeof(Elf64_Ehdr);
	p->ph[0].p_type = PT_LOAD;
	p->ph[0].p_offset = offsetof(struct pvh_img, code);
	p->ph[0].p_paddr = p->ph[0].p_vaddr = paddr;
	p->ph[0].p_filesz = sizeof(p->code);
	p->ph[0].p_memsz = 3 * sizeof(p->code);	/* two pages of bss */
	p->ph[1].p_type = PT_NOTE;
	p->ph[1].p_offset = offsetof(struct pvh_img, note);
	p->ph[1].p_filesz = sizeof(p->note);
	p->note.namesz = 4;
	p->note.descsz = 4;
	p->note.type = 18;
	memcpy(p->note.name, "Xen", 4);
	p->note.entry = paddr + 0x10;
	for (i = 0; i < sizeof(p->code); i++)
		p->code[i] = i ^ 0x5a;
}

static void test_pvh(void)
{
	static struct pvh_img img;
	struct x86_boot b;
	char err[256];
	uint8_t *seg;
	uint32_t *si;
	uint64_t *mod;
	int ifd = make_initrd(8192);

	make_pvh(&img, 0x200000);
	memset(guest_ptr(&mem, 0x200000, 3 * 4096), 0xaa, 3 * 4096);
	CHECK_EQ(load((uint8_t *)&img, sizeof(img), "root=/dev/vda", ifd, 8192,
		      &b, err), 0);
	close(ifd);
	CHECK_EQ(b.mode, X86_BOOT_PROT32);
	CHECK_EQ(b.entry, 0x200010);
	CHECK_EQ(b.arg, X86_START_INFO_ADDR);
	seg = guest_ptr(&mem, 0x200000, 3 * 4096);
	CHECK(!memcmp(seg, img.code, 4096));
	CHECK(seg[4096] == 0 && seg[3 * 4096 - 1] == 0);	/* bss zeroed */
	si = guest_ptr(&mem, X86_START_INFO_ADDR, 64);
	CHECK_EQ(si[0], 0x336ec578);
	CHECK_EQ(si[1], 1);
	CHECK_EQ(si[3], 1);		/* one module: the initrd */
	CHECK_EQ(*(uint64_t *)(si + 6), X86_CMDLINE_ADDR);
	CHECK(!strcmp(guest_ptr(&mem, X86_CMDLINE_ADDR, 1), "root=/dev/vda"));
	CHECK_EQ(si[12], e820_n);	/* memmap_entries */
	mod = guest_ptr(&mem, *(uint64_t *)(si + 4), 32);
	CHECK(mod && mod[1] == 8192 && mod[0] % 4096 == 0 &&
	      mod[0] >= 0x203000);
}

static void expect_pvh(const char *why, struct pvh_img *img, size_t len,
		       int want)
{
	expect_refused(why, (uint8_t *)img, len, want, NULL, 0);
}

static void test_pvh_bad(void)
{
	static struct pvh_img img;

	make_pvh(&img, 0x200000);
	img.eh.e_ident[EI_CLASS] = ELFCLASS32;
	expect_pvh("32-bit ELF", &img, sizeof(img), -ENOEXEC);
	make_pvh(&img, 0x200000);
	img.eh.e_machine = EM_AARCH64;
	expect_pvh("wrong machine", &img, sizeof(img), -ENOEXEC);
	make_pvh(&img, 0x200000);
	img.eh.e_type = ET_DYN;
	expect_pvh("not executable", &img, sizeof(img), -ENOEXEC);
	make_pvh(&img, 0x200000);
	img.eh.e_phoff = 1ULL << 40;
	expect_pvh("phoff beyond file", &img, sizeof(img), -ENOEXEC);
	make_pvh(&img, 0x200000);
	img.eh.e_phoff = UINT64_MAX - 8;
	expect_pvh("phoff wraps", &img, sizeof(img), -ENOEXEC);
	make_pvh(&img, 0x200000);
	img.eh.e_phnum = 60000;
	expect_pvh("too many phdrs", &img, sizeof(img), -ENOEXEC);
	make_pvh(&img, 0x200000);
	img.eh.e_phentsize = 32;
	expect_pvh("phentsize", &img, sizeof(img), -ENOEXEC);
	make_pvh(&img, 0x200000);
	img.ph[1].p_type = PT_NULL;
	expect_pvh("no note", &img, sizeof(img), -ENOEXEC);
	make_pvh(&img, 0x200000);
	img.note.type = 17;
	expect_pvh("other note", &img, sizeof(img), -ENOEXEC);
	make_pvh(&img, 0x200000);
	img.note.descsz = 0xfffffff0;
	expect_pvh("note descsz huge", &img, sizeof(img), -ENOEXEC);
	make_pvh(&img, 0x200000);
	img.note.namesz = 0xffffffff;
	expect_pvh("note namesz huge", &img, sizeof(img), -ENOEXEC);
	make_pvh(&img, 0x200000);
	img.note.descsz = 3;
	expect_pvh("note desc size", &img, sizeof(img), -ENOEXEC);
	make_pvh(&img, 0x200000);
	img.ph[1].p_filesz = 1 << 20;
	expect_pvh("note beyond file", &img, sizeof(img), -ENOEXEC);
	make_pvh(&img, 1 * GiB);
	expect_pvh("segment beyond RAM", &img, sizeof(img), -E2BIG);
	make_pvh(&img, 0x1000);
	expect_pvh("segment over boot data", &img, sizeof(img), -E2BIG);
	make_pvh(&img, MEM - 4096);
	expect_pvh("segment crosses end of RAM", &img, sizeof(img), -E2BIG);
	make_pvh(&img, 0x200000);
	img.ph[0].p_filesz = img.ph[0].p_memsz + 1;
	expect_pvh("filesz > memsz", &img, sizeof(img), -ENOEXEC);
	make_pvh(&img, 0x200000);
	img.ph[0].p_offset = sizeof(img) - 100;
	expect_pvh("segment beyond file", &img, sizeof(img), -ENOEXEC);
	make_pvh(&img, 0x200000);
	img.note.entry = 0xf0000000;
	expect_pvh("entry outside RAM", &img, sizeof(img), -ENOEXEC);
	make_pvh(&img, 0x200000);
	img.ph[0].p_type = PT_NULL;
	expect_pvh("nothing to load", &img, sizeof(img), -ENOEXEC);
}

/* Every prefix of a valid image, and random corruption of its headers. */
static void test_truncation_and_mutation(void)
{
	static struct pvh_img pvh, m;
	static uint8_t bz[BZ_SETUP_SIZE + BZ_PAYLOAD], mb[sizeof(bz)];
	struct x86_boot b;
	uint64_t seed = 12345;
	char err[256];
	size_t len, cut;
	unsigned int i, j, ok = 0, refused = 0;

	make_pvh(&pvh, 0x200000);
	for (cut = 1; cut < offsetof(struct pvh_img, code) + 64; cut++) {
		int ret = load((uint8_t *)&pvh, cut, NULL, -1, 0, &b, err);

		ret ? refused++ : ok++;
		CHECK(ret == 0 || err[0]);
	}
	CHECK(refused > 0);
	len = make_bzimage(bz);
	test_case_begin("1500 mutated PVH and bzImage headers: loaded, or refused with a reason");
	for (i = 0; i < 1500; i++) {
		int ret;

		memcpy(&m, &pvh, sizeof(m));
		for (j = 0; j < 4; j++)
			((uint8_t *)&m)[test_rand(&seed) %
					offsetof(struct pvh_img, code)] =
				test_rand(&seed);
		ret = load((uint8_t *)&m, sizeof(m), NULL, -1, 0, &b, err);
		CHECK(ret == 0 || (ret < 0 && err[0]));
		memcpy(mb, bz, len);
		for (j = 0; j < 4; j++)
			mb[0x1f1 + test_rand(&seed) % 0x80] = test_rand(&seed);
		ret = load(mb, len, NULL, -1, 0, &b, err);
		CHECK(ret == 0 || (ret < 0 && err[0]));
	}
	test_case_end();
}

static void test_other_formats(void)
{
	static uint8_t img[600 * 1024];
	struct x86_boot b;
	char err[256];

	memset(img, 0x90, sizeof(img));
	CHECK_EQ(load(img, 4096, NULL, -1, 0, &b, err), 0);
	CHECK_EQ(b.mode, X86_BOOT_REAL16);
	CHECK_EQ(b.entry, X86_FLAT_LOAD_ADDR);
	CHECK(*(uint8_t *)guest_ptr(&mem, X86_FLAT_LOAD_ADDR + 4095, 1) == 0x90);
	CHECK_EQ(err_errno(load(img, sizeof(img), NULL, -1, 0, &b, err)), -ENOEXEC);
	CHECK(strstr(err, "too big for a flat binary") != NULL);
	CHECK_EQ(err_errno(load(img, 0, NULL, -1, 0, &b, err)), -ENOEXEC);
	img[0] = 0x1f;
	img[1] = 0x8b;
	CHECK_EQ(err_errno(load(img, 4096, NULL, -1, 0, &b, err)), -ENOEXEC);
	CHECK(strstr(err, "gzip") != NULL);
	memset(img, 0, 4096);
	memcpy(img + 0x38, "ARM\x64", 4);
	CHECK_EQ(err_errno(load(img, 4096, NULL, -1, 0, &b, err)), -ENOEXEC);
	CHECK(strstr(err, "arm64") != NULL);
	memset(img, 0, 4096);
	img[0] = 'M';
	img[1] = 'Z';
	CHECK_EQ(err_errno(load(img, 4096, NULL, -1, 0, &b, err)), -ENOEXEC);
}

int main(void)
{
	struct mem_region r = { 0, MEM };
	int fd;

	fd = mkstemp(path);
	close(fd);
	fd = mkstemp(ipath);
	close(fd);
	if (guest_memory_init(&mem, &r, 1, NULL))
		return 1;
	e820_n = e820_build(&mem, e820, ARRAY_SIZE(e820));
	test_bzimage();
	test_bzimage_bad();
	test_pvh();
	test_pvh_bad();
	test_truncation_and_mutation();
	test_other_formats();
	unlink(path);
	unlink(ipath);
	guest_memory_free(&mem);
	return test_done();
}
