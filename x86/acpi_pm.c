/*
 * acpi_pm.c - the sleep control and status registers a hardware-reduced
 * FADT names (ACPI 6.3, 4.8.3.7): writing SLP_EN with \_S5's SLP_TYP
 * powers the guest off (lkvm exits 0).  Other sleep states are not
 * offered (no \_S1-\_S4), so any other write is ignored.  The reset
 * register is the i8042's.  No state: vCPU threads only.
 */
#include <string.h>

#include "lkvm/log.h"
#include "lkvm/vm.h"
#include "lkvm/x86/acpi.h"
#include "lkvm/x86/x86.h"

static void acpi_pm_write(void *opaque, uint64_t off, const void *data,
			  unsigned int len)
{
	struct lkvm *vm = opaque;
	uint8_t v = *(const uint8_t *)data;

	(void)len;
	if (off != 0 || !(v & ACPI_SLP_EN))
		return;
	if (((v >> ACPI_SLP_TYP_SHIFT) & 7) == ACPI_SLP_TYP_S5)
		vm_request_exit(vm, LKVM_EXIT_POWEROFF, 0,
				"guest powered off (ACPI S5)");
}

/* WAK_STS stays clear: nothing ever sleeps and wakes. */
static void acpi_pm_read(void *opaque, uint64_t off, void *data,
			 unsigned int len)
{
	(void)opaque;
	(void)off;
	memset(data, 0, len);
}

static const struct io_ops acpi_pm_ops = {
	.read = acpi_pm_read,
	.write = acpi_pm_write,
};

int x86_acpi_pm_init(struct lkvm *vm)
{
	return io_bus_register(&vm->pio, ACPI_PM_SLEEP_CONTROL, 2,
			       &acpi_pm_ops, vm);
}
