/*
 * panic - finds the pvpanic PCI device (1b36:0011) and reports a panic
 * through it, as Linux's pvpanic-pci driver would: lkvm must exit with
 * its panic status (123).  Exits 1 if the device is missing.
 */
#include "runtime/guest.h"

void main(void)
{
	int dev = pci_find(0x1b36, 0x0011);
	uint32_t bar;
	uint8_t caps;

	if (dev < 0) {
		gprintf("panic: no pvpanic device\n");
		guest_exit(1);
	}
	bar = pci_cfg_read32(dev, 0, 0x10) & ~0xfu;
	caps = mmio_read8(bar);
	gprintf("panic: pvpanic at 00:%02x.0, BAR0 0x%x, events 0x%x\n", dev,
		bar, caps);
	if (!(caps & 1))
		guest_exit(1);
	mmio_write8(bar, 1);			/* PVPANIC_PANICKED */
	gprintf("panic: still running after the panic event\n");
	guest_exit(1);
}
