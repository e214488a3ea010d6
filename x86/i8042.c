/*
 * i8042.c - the part of the PC keyboard controller that matters to a
 * VMM: command 0xfe on port 0x64 pulses the CPU reset line, which ends
 * the run as a reset (like QEMU's -no-reboot).  Reads report an empty
 * controller, so Linux finds no keyboard and moves on.  No state.
 */
#include <string.h>

#include "lkvm/vm.h"
#include "lkvm/x86/layout.h"
#include "lkvm/x86/x86.h"

#define I8042_DATA	0
#define I8042_CMD	4
#define I8042_RESET	0xfe

static void i8042_read(void *opaque, uint64_t off, void *data,
		       unsigned int len)
{
	(void)opaque;
	(void)off;
	memset(data, 0, len);	/* status: output buffer empty */
}

static void i8042_write(void *opaque, uint64_t off, const void *data,
			unsigned int len)
{
	struct lkvm *vm = opaque;

	(void)len;
	if (off == I8042_CMD && *(const uint8_t *)data == I8042_RESET)
		vm_request_exit(vm, LKVM_EXIT_RESET, 0, "guest reset");
}

static const struct io_ops i8042_ops = {
	.read = i8042_read,
	.write = i8042_write,
};

int x86_i8042_init(struct lkvm *vm)
{
	/*
	 * One range over 0x60-0x64, so offsets say which port; 0x61 inside
	 * it belongs to KVM's in-kernel PIT and never reaches us.
	 */
	return io_bus_register(&vm->pio, X86_I8042_PORT, I8042_CMD + 1,
			       &i8042_ops, vm);
}
