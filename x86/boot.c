/*
 * boot.c - recognises the kernel's format and hands it to its loader,
 * plus the helpers the loaders share (command line, initrd placement).
 * Runs once, on the thread creating the VM.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "lkvm/lib/util.h"
#include "lkvm/x86/boot.h"
#include "lkvm/x86/layout.h"

uint64_t boot_low_mem_end(const struct guest_memory *m)
{
	/* Slot 0 always starts at 0 on x86 and ends below the hole. */
	return m->nslots ? m->slots[0].gpa + m->slots[0].size : 0;
}

int boot_write_cmdline(const struct x86_boot_args *a, uint64_t max_len,
		       char *err, size_t errlen)
{
	const char *s = a->cmdline ? a->cmdline : "";
	size_t len = strlen(s);
	uint8_t *p;

	if (len + 1 > MIN(max_len, X86_CMDLINE_MAX))
		return input_errf(err, errlen, -E2BIG,
				  "kernel command line is %zu bytes; this kernel takes at most %llu",
				  len, (unsigned long long)MIN(max_len, X86_CMDLINE_MAX) - 1);
	p = guest_ptr(a->mem, X86_CMDLINE_ADDR, len + 1);
	if (!p)
		return errf(err, errlen, -ENOMEM,
			    "guest memory too small for the command line");
	memcpy(p, s, len + 1);
	return 0;
}

int boot_load_initrd(const struct x86_boot_args *a, uint64_t floor,
		     uint64_t limit, uint64_t *addr, char *err, size_t errlen)
{
	uint64_t top = MIN(limit, boot_low_mem_end(a->mem));
	uint64_t at;
	void *p;
	int ret;

	if (a->initrd_size > top || ALIGN_DOWN(top - a->initrd_size, 4096) <
	    floor)
		return input_errf(err, errlen, -E2BIG,
				  "initrd of %llu bytes does not fit in guest memory below 0x%llx",
				  (unsigned long long)a->initrd_size,
				  (unsigned long long)top);
	at = ALIGN_DOWN(top - a->initrd_size, 4096);
	p = guest_ptr(a->mem, at, a->initrd_size);
	if (!p)
		return input_errf(err, errlen, -E2BIG, "initrd does not fit");
	ret = pread_exact(a->initrd_fd, p, a->initrd_size, 0);
	if (ret)
		return errf(err, errlen, ret, "cannot read initrd: %s",
			    strerror(-ret));
	*addr = at;
	return 0;
}

bool elf_probe(const uint8_t *head, size_t len)
{
	return len >= 4 && !memcmp(head, "\177ELF", 4);
}

int x86_kernel_load(const struct x86_boot_args *a, struct x86_boot *b,
		    char *err, size_t errlen)
{
	const uint8_t *h = a->head;
	size_t n = a->head_len;

	if (a->kernel_size == 0)
		return input_errf(err, errlen, -ENOEXEC, "kernel file is empty");
	if (bzimage_probe(h, n))
		return bzimage_load(a, b, err, errlen);
	if (elf_probe(h, n))
		return pvh_load(a, b, err, errlen);
	/* Formats that are recognisably something we cannot boot. */
	if (n >= 2 && h[0] == 0x1f && h[1] == 0x8b)
		return input_errf(err, errlen, -ENOEXEC,
				  "kernel is gzip-compressed; decompress it or use the bzImage");
	if (n >= 0x40 && !memcmp(h + 0x38, "ARM\x64", 4))
		return input_errf(err, errlen, -ENOEXEC,
				  "kernel is an arm64 Image; this lkvm is built for x86_64");
	if (n >= 2 && h[0] == 'M' && h[1] == 'Z')
		return input_errf(err, errlen, -ENOEXEC,
				  "kernel is a PE/EFI image without a Linux boot header");
	return flat_load(a, b, err, errlen);
}
