/*
 * acpioff - powers off the way an ACPI operating system does: finds the
 * RSDP by the standard scan of 0xe0000-0xfffff, walks XSDT -> FADT,
 * takes \_S5's SLP_TYP from the DSDT and writes SLP_TYP|SLP_EN to the
 * FADT's sleep control register.  lkvm should then exit 0.  Without
 * ACPI (--no-acpi) it says it found no RSDP and exits with 3; if the
 * write did not power off, it exits with 1.
 */
#include "runtime/guest.h"

#define SLP_EN	0x20

static uint32_t rd32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static int sum_ok(const uint8_t *p, uint32_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return s == 0;
}

static const uint8_t *find_rsdp(void)
{
	uintptr_t a;

	for (a = 0xe0000; a < 0x100000; a += 16) {
		const uint8_t *p = (const uint8_t *)a;

		if (!memcmp(p, "RSD PTR ", 8) && sum_ok(p, 20))
			return p;
	}
	return 0;
}

static const uint8_t *table(uint64_t addr, const char *sig)
{
	const uint8_t *t = (const uint8_t *)(uintptr_t)addr;

	if (addr >= 0x100000000ULL || memcmp(t, sig, 4) ||
	    rd32(t + 4) < 36 || !sum_ok(t, rd32(t + 4)))
		return 0;
	return t;
}

/* \_S5: NameOp "_S5_" PackageOp PkgLength NumElements SLP_TYPa ... */
static int s5_type(const uint8_t *dsdt)
{
	uint32_t len = rd32(dsdt + 4), i;

	for (i = 36; i + 8 < len; i++) {
		const uint8_t *p = dsdt + i;

		if (p[0] != 0x08 || memcmp(p + 1, "_S5_", 4) || p[5] != 0x12)
			continue;
		p += 6 + 1 + 1;		/* a one-byte PkgLength, the count */
		if (p[0] == 0x0a)
			return p[1];
		if (p[0] <= 1)
			return p[0];
	}
	return -1;
}

void main(void)
{
	const uint8_t *rsdp = find_rsdp(), *xsdt, *fadt = 0, *dsdt;
	uint32_t i, n;
	int typ;

	if (!rsdp) {
		gprintf("acpioff: no RSDP\n");
		guest_exit(3);
	}
	xsdt = table(rd64(rsdp + 24), "XSDT");
	if (!xsdt) {
		gprintf("acpioff: bad XSDT\n");
		guest_exit(4);
	}
	n = (rd32(xsdt + 4) - 36) / 8;
	for (i = 0; i < n && !fadt; i++)
		fadt = table(rd64(xsdt + 36 + 8 * i), "FACP");
	if (!fadt || rd32(fadt + 4) < 268 || !(rd32(fadt + 112) & (1u << 20)) ||
	    fadt[244] != 1) {
		gprintf("acpioff: no hardware-reduced FADT with an I/O sleep register\n");
		guest_exit(5);
	}
	dsdt = table(rd64(fadt + 140), "DSDT");
	typ = dsdt ? s5_type(dsdt) : -1;
	if (typ < 0) {
		gprintf("acpioff: no \\_S5 in the DSDT\n");
		guest_exit(6);
	}
	gprintf("acpioff: RSDP at %x, %u XSDT entries, sleep control at port %x, S5 SLP_TYP %u: powering off\n",
		(unsigned int)(uintptr_t)rsdp, n,
		(unsigned int)rd64(fadt + 248), (unsigned int)typ);
	outb((uint16_t)rd64(fadt + 248), (uint8_t)(typ << 2 | SLP_EN));
	gprintf("acpioff: still running after the S5 write\n");
	guest_exit(1);
}
