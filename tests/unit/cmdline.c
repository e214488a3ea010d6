/* Tests machine/cmdline.c: the default kernel command line. */
#include <string.h>

#include "lkvm/machine.h"
#include "test.h"

static const char *defaults(bool vcon, bool root_rw, bool reboot_k,
			    const char *user)
{
	static char buf[256];
	struct cmdline_defaults_in in = {
		.virtio_console = vcon,
		.serial_args = "console=ttyS0 earlyprintk=serial",
		.root_disk_rw = root_rw,
		.reboot_k = reboot_k,
		.user = user,
	};

	return cmdline_defaults(&in, buf, sizeof(buf)) < 0 ? "(too long)" : buf;
}

int main(void)
{
	char small[8];
	struct cmdline_defaults_in in = { .serial_args = "console=ttyS0",
					  .user = "" };

	CHECK(!strcmp(defaults(false, true, false, ""),
		      "console=ttyS0 earlyprintk=serial root=/dev/vda rw panic=-1"));
	CHECK(!strcmp(defaults(true, false, false, ""),
		      "console=hvc0 panic=-1"));
	CHECK(!strcmp(defaults(false, false, true, ""),
		      "console=ttyS0 earlyprintk=serial panic=-1 reboot=k"));
	/* The user's root= and panic= are theirs alone. */
	CHECK(!strcmp(defaults(false, true, false, "quiet root=/dev/vdb1"),
		      "console=ttyS0 earlyprintk=serial panic=-1"));
	CHECK(!strcmp(defaults(false, true, false, "panic=5"),
		      "console=ttyS0 earlyprintk=serial root=/dev/vda rw"));
	/* "xroot=" is not root=. */
	CHECK(!strcmp(defaults(true, true, false, "xroot=1"),
		      "console=hvc0 root=/dev/vda rw panic=-1"));
	CHECK(cmdline_defaults(&in, small, sizeof(small)) == -1);
	return test_done();
}
