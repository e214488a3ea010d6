/*
 * flat.c - flat binaries: the whole file is copied to 0x10000 and run in
 * real mode from CS=0x1000, IP=0, as kvmtool does.  The file must fit
 * below the EBDA.
 */
#include <errno.h>
#include <string.h>

#include "lkvm/lib/util.h"
#include "lkvm/x86/boot.h"
#include "lkvm/x86/layout.h"

int flat_load(const struct x86_boot_args *a, struct x86_boot *b, char *err,
	      size_t errlen)
{
	uint64_t max = X86_EBDA_START - X86_FLAT_LOAD_ADDR;
	void *p;
	int ret;

	if (a->kernel_size > max)
		return input_errf(err, errlen, -ENOEXEC,
				  "kernel is not a bzImage or a PVH ELF, and at %llu bytes it is too big for a flat binary (at most %llu)",
				  (unsigned long long)a->kernel_size,
				  (unsigned long long)max);
	p = guest_ptr(a->mem, X86_FLAT_LOAD_ADDR, a->kernel_size);
	if (!p)
		return errf(err, errlen, -ENOMEM,
			    "guest memory too small for the flat binary");
	ret = pread_exact(a->kernel_fd, p, a->kernel_size, 0);
	if (ret)
		return errf(err, errlen, ret, "cannot read kernel: %s",
			    strerror(-ret));
	if (a->initrd_fd >= 0)
		return input_errf(err, errlen, -EINVAL,
				  "flat binaries take no initrd");
	*b = (struct x86_boot){
		.mode = X86_BOOT_REAL16,
		.entry = X86_FLAT_LOAD_ADDR,
		.format = "flat binary",
	};
	return 0;
}
