/*
 * bzimage.c - Linux bzImage through the x86 64-bit boot protocol
 * (Documentation/arch/x86/boot.rst): the protected-mode part is loaded at
 * 1 MiB, boot_params ("zero page") carries the setup header, command
 * line, initrd and e820 map, and the boot CPU enters the kernel's 64-bit
 * entry point (load address + 0x200) with paging on and RSI pointing at
 * boot_params.  No real-mode setup code runs, so no BIOS is needed.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "lkvm/lib/util.h"
#include "lkvm/x86/boot.h"
#include "lkvm/x86/layout.h"

#define SETUP_HDR_OFF	0x1f1
#define BOOT_FLAG	0xaa55
#define HDRS_MAGIC	0x53726448	/* "HdrS" */
#define MIN_VERSION	0x020c		/* 2.12: xloadflags, 64-bit entry */
#define ENTRY64_OFF	0x200
#define LOADER_UNKNOWN	0xff

static uint16_t get16(const uint8_t *p)
{
	return p[0] | p[1] << 8;
}

static uint32_t get32(const uint8_t *p)
{
	return get16(p) | (uint32_t)get16(p + 2) << 16;
}

bool bzimage_probe(const uint8_t *head, size_t len)
{
	return len >= 0x206 && get16(head + 0x1fe) == BOOT_FLAG &&
	       get32(head + 0x202) == HDRS_MAGIC;
}

int bzimage_load(const struct x86_boot_args *a, struct x86_boot *b,
		 char *err, size_t errlen)
{
	struct boot_params *bp;
	struct setup_header hdr;
	uint64_t setup_size, payload, need, low_end, initrd_addr = 0;
	size_t hdr_len;
	unsigned int setup_sects;
	int ret;

	if (a->head_len < SETUP_HDR_OFF + sizeof(hdr))
		return input_errf(err, errlen, -ENOEXEC, "bzImage header truncated");
	memcpy(&hdr, a->head + SETUP_HDR_OFF, sizeof(hdr));
	if (hdr.version < MIN_VERSION)
		return input_errf(err, errlen, -ENOEXEC,
				  "bzImage boot protocol %u.%02u is too old; lkvm needs 2.12 or later (Linux 3.8+)",
				  hdr.version >> 8, hdr.version & 0xff);
	if (!(hdr.xloadflags & XLF_KERNEL_64))
		return input_errf(err, errlen, -ENOEXEC,
				  "bzImage has no 64-bit entry point (a 32-bit kernel?)");
	setup_sects = hdr.setup_sects ? hdr.setup_sects : 4;
	setup_size = (uint64_t)(setup_sects + 1) * 512;
	if (setup_size >= a->kernel_size)
		return input_errf(err, errlen, -ENOEXEC,
				  "bzImage truncated: setup claims %llu bytes of a %llu-byte file",
				  (unsigned long long)setup_size,
				  (unsigned long long)a->kernel_size);
	payload = a->kernel_size - setup_size;
	need = MAX(payload, (uint64_t)hdr.init_size);
	low_end = boot_low_mem_end(a->mem);
	if (X86_HIGH_MEM + need > low_end)
		return input_errf(err, errlen, -E2BIG,
				  "kernel needs %llu MiB of memory above 1 MiB; give the guest more with -m",
				  (unsigned long long)(need + MiB - 1) / MiB);

	ret = pread_exact(a->kernel_fd,
			  guest_ptr(a->mem, X86_HIGH_MEM, payload), payload,
			  setup_size);
	if (ret)
		return errf(err, errlen, ret, "cannot read kernel: %s",
			    strerror(-ret));

	bp = guest_ptr(a->mem, X86_ZERO_PAGE_ADDR, sizeof(*bp));
	if (!bp)
		return errf(err, errlen, -ENOMEM, "no room for boot_params");
	memset(bp, 0, sizeof(*bp));
	/* The header runs to 0x202 plus the jump offset stored at 0x201. */
	hdr_len = MIN(sizeof(hdr), (size_t)0x202 + a->head[0x201] -
		      SETUP_HDR_OFF);
	memcpy(&bp->hdr, a->head + SETUP_HDR_OFF, hdr_len);

	ret = boot_write_cmdline(a, hdr.cmdline_size ? hdr.cmdline_size : 256,
				 err, errlen);
	if (ret)
		return ret;
	bp->hdr.cmd_line_ptr = X86_CMDLINE_ADDR;
	bp->hdr.type_of_loader = LOADER_UNKNOWN;
	bp->hdr.loadflags |= CAN_USE_HEAP;
	bp->hdr.heap_end_ptr = 0xfe00 - 0x200;
	bp->hdr.vid_mode = 0xffff;	/* "normal" */

	if (a->initrd_fd >= 0) {
		ret = boot_load_initrd(a, X86_HIGH_MEM + need,
				       (uint64_t)hdr.initrd_addr_max + 1,
				       &initrd_addr, err, errlen);
		if (ret)
			return ret;
		bp->hdr.ramdisk_image = initrd_addr;
		bp->hdr.ramdisk_size = a->initrd_size;
	}
	if (a->e820_n > E820_MAX_ENTRIES_ZEROPAGE)
		return errf(err, errlen, -E2BIG, "too many e820 entries");
	memcpy(bp->e820_table, a->e820, a->e820_n * sizeof(*a->e820));
	bp->e820_entries = a->e820_n;
	bp->acpi_rsdp_addr = a->acpi_rsdp;	/* boot protocol 2.14 */

	*b = (struct x86_boot){
		.mode = X86_BOOT_LONG64,
		.entry = X86_HIGH_MEM + ENTRY64_OFF,
		.arg = X86_ZERO_PAGE_ADDR,
		.format = "bzImage",
	};
	return 0;
}
