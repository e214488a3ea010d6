/*
 * debug_exit.c - the debug-exit port (0x501): a byte N written there ends
 * the run and lkvm exits with status N.  Test guests and CI use it to
 * report results without a device driver.  Also swallows the legacy
 * "delay" port 0x80, which Linux writes constantly, so that the unhandled
 * port counter means something.  No state.
 */
#include <string.h>

#include "lkvm/vm.h"
#include "lkvm/x86/layout.h"
#include "lkvm/x86/x86.h"

static void debug_exit_write(void *opaque, uint64_t off, const void *data,
			     unsigned int len)
{
	struct lkvm *vm = opaque;
	uint8_t status = *(const uint8_t *)data;

	(void)off;
	(void)len;
	vm_request_exit(vm, LKVM_EXIT_DEBUG, status,
			"guest wrote %u to the debug-exit port", status);
}

static const struct io_ops debug_exit_ops = {
	.write = debug_exit_write,
};

static void sink_read(void *opaque, uint64_t off, void *data,
		      unsigned int len)
{
	(void)opaque;
	(void)off;
	memset(data, 0xff, len);
}

static const struct io_ops sink_ops = {
	.read = sink_read,
};

int x86_debug_exit_init(struct lkvm *vm)
{
	int ret = io_bus_register(&vm->pio, X86_DEBUG_EXIT_PORT, 1,
				  &debug_exit_ops, vm);

	return ret ? ret : io_bus_register(&vm->pio, 0x80, 1, &sink_ops, NULL);
}
