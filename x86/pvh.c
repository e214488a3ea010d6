/*
 * pvh.c - ELF64 kernels with a PVH entry point (the Xen ELF note
 * PHYS32_ENTRY), the way Firecracker, cloud-hypervisor and QEMU's microvm
 * boot an uncompressed vmlinux.  PT_LOAD segments go to their physical
 * addresses; the boot CPU starts in 32-bit protected mode with paging off
 * and EBX pointing at an hvm_start_info (version 1) that carries the
 * command line, the initrd as module 0 and the memory map.
 *
 * Every header field is untrusted: offsets and sizes are checked against
 * the file and guest RAM before anything is read or written.
 */
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lkvm/lib/util.h"
#include "lkvm/x86/boot.h"
#include "lkvm/x86/e820.h"
#include "lkvm/x86/layout.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC		0x336ec578
#define PVH_MAX_PHDRS		64
#define PVH_MAX_NOTE		65536

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

/* Scans one PT_NOTE segment for the PVH entry; 0 if absent. */
static int pvh_find_entry(const uint8_t *note, uint64_t len, uint64_t *entry)
{
	uint64_t off = 0;

	while (len - off >= 12) {
		uint32_t namesz, descsz, type;
		uint64_t name_off, desc_off, next;

		memcpy(&namesz, note + off, 4);
		memcpy(&descsz, note + off + 4, 4);
		memcpy(&type, note + off + 8, 4);
		name_off = off + 12;
		desc_off = name_off + ALIGN_UP((uint64_t)namesz, 4);
		next = desc_off + ALIGN_UP((uint64_t)descsz, 4);
		if (desc_off > len || next > len)
			return -ENOEXEC;
		if (namesz == 4 && !memcmp(note + name_off, "Xen", 4) &&
		    type == XEN_ELFNOTE_PHYS32_ENTRY) {
			if (descsz == 4) {
				uint32_t e;

				memcpy(&e, note + desc_off, 4);
				*entry = e;
			} else if (descsz == 8) {
				memcpy(entry, note + desc_off, 8);
			} else {
				return -ENOEXEC;
			}
			return 1;
		}
		off = next;
	}
	return 0;
}

static int pvh_read_phdrs(const struct x86_boot_args *a, const Elf64_Ehdr *eh,
			  Elf64_Phdr *ph, char *err, size_t errlen)
{
	uint64_t size = (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr);

	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 ||
	    eh->e_phnum > PVH_MAX_PHDRS)
		return input_errf(err, errlen, -ENOEXEC,
				  "ELF program headers malformed (%u entries of %u bytes)",
				  eh->e_phnum, eh->e_phentsize);
	if (!range_within(eh->e_phoff, size, 0, a->kernel_size))
		return input_errf(err, errlen, -ENOEXEC,
				  "ELF program headers lie outside the file");
	if (pread_exact(a->kernel_fd, ph, size, eh->e_phoff))
		return errf(err, errlen, -EIO, "cannot read ELF program headers");
	return 0;
}

static int pvh_entry_from_notes(const struct x86_boot_args *a,
				const Elf64_Phdr *ph, unsigned int n,
				uint64_t *entry, char *err, size_t errlen)
{
	unsigned int i;
	int found = 0;

	for (i = 0; i < n && !found; i++) {
		uint8_t *note;

		if (ph[i].p_type != PT_NOTE)
			continue;
		if (ph[i].p_filesz > PVH_MAX_NOTE ||
		    !range_within(ph[i].p_offset, ph[i].p_filesz, 0,
				  a->kernel_size))
			return input_errf(err, errlen, -ENOEXEC,
					  "ELF note segment %u lies outside the file", i);
		note = malloc(ph[i].p_filesz ? ph[i].p_filesz : 1);
		if (!note)
			return errf(err, errlen, -ENOMEM, "out of memory");
		found = pread_exact(a->kernel_fd, note, ph[i].p_filesz,
				    ph[i].p_offset);
		if (!found)
			found = pvh_find_entry(note, ph[i].p_filesz, entry);
		free(note);
		if (found < 0)
			return input_errf(err, errlen, -ENOEXEC,
					  "ELF note segment %u is malformed", i);
	}
	if (!found)
		return input_errf(err, errlen, -ENOEXEC,
				  "ELF kernel has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); boot its bzImage instead");
	return 0;
}

static int pvh_load_segments(const struct x86_boot_args *a,
			     const Elf64_Phdr *ph, unsigned int n,
			     uint64_t *top, char *err, size_t errlen)
{
	unsigned int i, loaded = 0;

	*top = 0;
	for (i = 0; i < n; i++) {
		const Elf64_Phdr *p = &ph[i];
		uint8_t *dst;

		if (p->p_type != PT_LOAD || p->p_memsz == 0)
			continue;
		if (p->p_filesz > p->p_memsz ||
		    !range_within(p->p_offset, p->p_filesz, 0, a->kernel_size))
			return input_errf(err, errlen, -ENOEXEC,
					  "ELF segment %u: file range invalid", i);
		/* Below 64 KiB lkvm keeps its own boot structures. */
		dst = guest_ptr(a->mem, p->p_paddr, p->p_memsz);
		if (!dst || p->p_paddr < X86_FLAT_LOAD_ADDR)
			return input_errf(err, errlen, -E2BIG,
					  "ELF segment %u (0x%llx, %llu bytes) is outside guest RAM; more memory with -m?",
					  i, (unsigned long long)p->p_paddr,
					  (unsigned long long)p->p_memsz);
		if (pread_exact(a->kernel_fd, dst, p->p_filesz, p->p_offset))
			return errf(err, errlen, -EIO,
				    "cannot read ELF segment %u", i);
		memset(dst + p->p_filesz, 0, p->p_memsz - p->p_filesz);
		*top = MAX(*top, p->p_paddr + p->p_memsz);
		loaded++;
	}
	if (!loaded)
		return input_errf(err, errlen, -ENOEXEC, "ELF kernel has nothing to load");
	return 0;
}

int pvh_load(const struct x86_boot_args *a, struct x86_boot *b, char *err,
	     size_t errlen)
{
	Elf64_Phdr ph[PVH_MAX_PHDRS];
	struct hvm_start_info *si;
	struct hvm_memmap_entry *mm;
	struct hvm_modlist_entry *mod;
	Elf64_Ehdr eh;
	uint64_t entry = 0, top, initrd_addr;
	unsigned int i;
	int ret;

	if (a->head_len < sizeof(eh))
		return input_errf(err, errlen, -ENOEXEC, "ELF header truncated");
	memcpy(&eh, a->head, sizeof(eh));
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_X86_64)
		return input_errf(err, errlen, -ENOEXEC,
				  "ELF kernel is not a 64-bit little-endian x86-64 image");
	if (eh.e_type != ET_EXEC)
		return input_errf(err, errlen, -ENOEXEC,
				  "ELF kernel is not an executable (type %u)",
				  eh.e_type);
	ret = pvh_read_phdrs(a, &eh, ph, err, errlen);
	if (!ret)
		ret = pvh_entry_from_notes(a, ph, eh.e_phnum, &entry, err,
					   errlen);
	if (!ret)
		ret = pvh_load_segments(a, ph, eh.e_phnum, &top, err, errlen);
	if (ret)
		return ret;
	if (!guest_ptr(a->mem, entry, 1) || entry >= X86_4G)
		return input_errf(err, errlen, -ENOEXEC,
				  "PVH entry 0x%llx is not in guest RAM",
				  (unsigned long long)entry);

	ret = boot_write_cmdline(a, X86_CMDLINE_MAX, err, errlen);
	if (ret)
		return ret;
	/* start info, then the module list, then the memory map */
	si = guest_ptr(a->mem, X86_START_INFO_ADDR, 4096);
	if (!si)
		return errf(err, errlen, -ENOMEM, "no room for PVH start info");
	memset(si, 0, 4096);
	mod = (void *)(si + 1);
	mm = (void *)(mod + 1);
	si->magic = HVM_START_MAGIC;
	si->version = 1;
	si->cmdline_paddr = X86_CMDLINE_ADDR;
	si->rsdp_paddr = a->acpi_rsdp;
	if (a->initrd_fd >= 0) {
		ret = boot_load_initrd(a, top, X86_4G, &initrd_addr, err,
				       errlen);
		if (ret)
			return ret;
		mod->paddr = initrd_addr;
		mod->size = a->initrd_size;
		si->nr_modules = 1;
		si->modlist_paddr = X86_START_INFO_ADDR + sizeof(*si);
	}
	if ((uint8_t *)(mm + a->e820_n) > (uint8_t *)si + 4096)
		return errf(err, errlen, -E2BIG, "too many memory map entries");
	for (i = 0; i < a->e820_n; i++) {
		mm[i].addr = a->e820[i].addr;
		mm[i].size = a->e820[i].size;
		mm[i].type = a->e820[i].type;
	}
	si->memmap_paddr = X86_START_INFO_ADDR + ((uint8_t *)mm - (uint8_t *)si);
	si->memmap_entries = a->e820_n;

	*b = (struct x86_boot){
		.mode = X86_BOOT_PROT32,
		.entry = entry,
		.arg = X86_START_INFO_ADDR,
		.format = "PVH ELF",
	};
	return 0;
}
