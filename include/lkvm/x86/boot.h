/*
 * boot.h - x86 kernel loaders.  Each recognises its format from the
 * file's first bytes, loads it into guest RAM with every offset and size
 * checked, and describes how the boot CPU must start.  They touch only
 * guest memory, so unit tests run them without KVM.
 */
#ifndef LKVM_X86_BOOT_H
#define LKVM_X86_BOOT_H

#include <asm/bootparam.h>
#include <stddef.h>
#include <stdint.h>

#include "lkvm/memory.h"

enum x86_boot_mode {
	X86_BOOT_REAL16,	/* flat binary: CS=0x1000, IP=0 */
	X86_BOOT_PROT32,	/* PVH: 32-bit flat, paging off, EBX=start info */
	X86_BOOT_LONG64,	/* bzImage: 64-bit entry, RSI=boot_params */
};

struct x86_boot {
	enum x86_boot_mode mode;
	uint64_t entry;
	uint64_t arg;		/* RSI or EBX */
	const char *format;	/* for messages */
};

struct x86_boot_args {
	struct guest_memory *mem;
	int kernel_fd;
	uint64_t kernel_size;
	const uint8_t *head;	/* first bytes of the kernel file */
	size_t head_len;
	const char *cmdline;	/* may be NULL */
	int initrd_fd;		/* -1: none */
	uint64_t initrd_size;
	const struct boot_e820_entry *e820;
	unsigned int e820_n;
	uint64_t acpi_rsdp;	/* where the RSDP is; 0: no ACPI */
};

#define X86_KERNEL_HEAD 4096

/* Picks the loader.  -ENOEXEC with a message for unknown formats. */
int x86_kernel_load(const struct x86_boot_args *a, struct x86_boot *b,
		    char *err, size_t errlen);

int bzimage_load(const struct x86_boot_args *a, struct x86_boot *b,
		 char *err, size_t errlen);
int pvh_load(const struct x86_boot_args *a, struct x86_boot *b, char *err,
	     size_t errlen);
int flat_load(const struct x86_boot_args *a, struct x86_boot *b, char *err,
	      size_t errlen);

bool bzimage_probe(const uint8_t *head, size_t len);
bool elf_probe(const uint8_t *head, size_t len);

/* Helpers the loaders share. */
/* Places an initrd below limit and above floor; returns its address. */
int boot_load_initrd(const struct x86_boot_args *a, uint64_t floor,
		     uint64_t limit, uint64_t *addr, char *err,
		     size_t errlen);
int boot_write_cmdline(const struct x86_boot_args *a, uint64_t max_len,
		       char *err, size_t errlen);
/* End of RAM below 4 GiB. */
uint64_t boot_low_mem_end(const struct guest_memory *m);

#endif
