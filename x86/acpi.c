/*
 * acpi.c - an x86 guest's ACPI tables (see acpi.h), from the ACPI 6.3
 * specification: RSDP (5.2.5), XSDT (5.2.8), FADT (5.2.9) for a
 * hardware-reduced platform (4.1) whose sleep registers power it off,
 * MADT (5.2.12) with the local APICs, the I/O APIC and no overrides
 * (ISA IRQs 0-15 reach I/O APIC pins 0-15 one to one, as the MP table
 * says), and a DSDT in AML (lib/aml.c).  Pure; unit-tested.
 */
#include <errno.h>
#include <string.h>

#include "lkvm/lib/aml.h"
#include "lkvm/lib/util.h"
#include "lkvm/x86/acpi.h"
#include "lkvm/x86/layout.h"

#define ACPI_OEM_ID		"LKVM  "
#define ACPI_OEM_TABLE_ID	"LKVMTBL "
#define ACPI_CREATOR_ID		"LKVM"
#define ACPI_HDR_LEN		36
#define FADT_LEN		276
#define FADT_REVISION		6
#define FADT_MINOR		3
#define FADT_HW_REDUCED		(1u << 20)
#define FADT_RESET_REG_SUP	(1u << 10)
#define FADT_PWR_BUTTON		(1u << 4)	/* no fixed power button */
#define FADT_SLP_BUTTON		(1u << 5)
#define BOOT_ARCH_NO_VGA	(1u << 2)
#define BOOT_ARCH_NO_CMOS	(1u << 5)
#define GAS_SYSTEM_IO		1
#define GAS_ACCESS_BYTE		1
#define MADT_PCAT_COMPAT	1
#define MADT_LAPIC		0
#define MADT_IOAPIC		1
#define I8042_RESET_PORT	0x64
#define I8042_RESET_VALUE	0xfe

struct acpi_writer {
	uint8_t *buf;
	size_t len, pos;
	uint64_t gpa;
	int err;
	struct acpi_table_loc *loc;
	unsigned int nloc;
};

static void put(uint8_t *p, uint64_t v, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		p[i] = v >> (8 * i);
}

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return -s;
}

/* n zeroed bytes at the next 16-byte boundary; NULL if no room. */
static uint8_t *acpi_reserve(struct acpi_writer *w, size_t n)
{
	size_t at = ALIGN_UP(w->pos, 16);
	uint8_t *p;

	if (w->err || at > w->len || n > w->len - at) {
		w->err = -ENOSPC;
		return NULL;
	}
	p = w->buf + at;
	memset(p, 0, n);
	w->pos = at + n;
	return p;
}

static uint64_t acpi_addr(const struct acpi_writer *w, const uint8_t *p)
{
	return w->gpa + (uint64_t)(p - w->buf);
}

static void acpi_header(uint8_t *t, const char *sig, uint32_t len,
			uint8_t rev)
{
	memcpy(t, sig, 4);
	put(t + 4, len, 4);
	t[8] = rev;
	memcpy(t + 10, ACPI_OEM_ID, 6);
	memcpy(t + 16, ACPI_OEM_TABLE_ID, 8);
	put(t + 24, 1, 4);
	memcpy(t + 28, ACPI_CREATOR_ID, 4);
	put(t + 32, 1, 4);
}

/* Checksum last, once the table is complete; note where it is. */
static void acpi_finish(struct acpi_writer *w, uint8_t *t)
{
	uint32_t len = t[4] | t[5] << 8 | t[6] << 16 | (uint32_t)t[7] << 24;

	t[9] = 0;
	t[9] = checksum(t, len);
	if (w->loc && w->nloc < ACPI_MAX_TABLES) {
		struct acpi_table_loc *l = &w->loc[w->nloc++];

		memcpy(l->sig, t, 4);
		l->sig[4] = '\0';
		l->off = t - w->buf;
		l->len = len;
	}
}

/* Generic Address Structure: a byte-wide register in I/O space. */
static void gas_io(uint8_t *g, uint16_t port)
{
	g[0] = GAS_SYSTEM_IO;
	g[1] = 8;			/* bit width */
	g[2] = 0;			/* bit offset */
	g[3] = GAS_ACCESS_BYTE;
	put(g + 4, port, 8);
}

static void dsdt_com1(struct aml *a)
{
	struct aml r;
	size_t dev = aml_device_begin(a, "COM1");

	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0501");
	aml_name(a, "_UID");
	aml_integer(a, 1);
	aml_init(&r);
	aml_res_io(&r, X86_COM1_PORT, 8);
	aml_res_irq_isa(&r, X86_COM1_IRQ);
	aml_name(a, "_CRS");
	aml_resource_template(a, &r);
	aml_free(&r);
	aml_end(a, dev);
}

/* Linux's virtio_mmio binds "LNRO0005" devices. */
static void dsdt_virtio_mmio(struct aml *a, const struct acpi_mmio_dev *d,
			     unsigned int i)
{
	static const char hex[] = "0123456789ABCDEF";
	char name[5] = { 'V', 'R', hex[(i >> 4) & 0xf], hex[i & 0xf], 0 };
	struct aml r;
	size_t dev = aml_device_begin(a, name);

	aml_name(a, "_HID");
	aml_string(a, "LNRO0005");
	aml_name(a, "_UID");
	aml_integer(a, i);
	aml_init(&r);
	if (d->base > UINT32_MAX || d->size > UINT32_MAX)
		r.err = -EINVAL;
	aml_res_memory32_fixed(&r, (uint32_t)d->base, (uint32_t)d->size);
	/* Lines 16-23 are shared round-robin among devices. */
	aml_res_interrupt(&r, d->gsi, 1);
	aml_name(a, "_CRS");
	aml_resource_template(a, &r);
	aml_free(&r);
	aml_end(a, dev);
}

/*
 * The PCI host bridge: bus 0, the config ports, the I/O and memory
 * windows BARs are placed in, and INTx routing straight to GSIs (the
 * I/O APIC pins the MP table names).
 */
static void dsdt_pci(struct aml *a, const struct acpi_params *p)
{
	struct aml r;
	size_t dev = aml_device_begin(a, "PCI0"), prt;
	unsigned int i;

	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0A03");
	aml_name(a, "_UID");
	aml_integer(a, 0);
	aml_name(a, "_SEG");
	aml_integer(a, 0);
	aml_name(a, "_BBN");
	aml_integer(a, 0);
	aml_init(&r);
	aml_res_word_bus(&r, 0, 0);
	aml_res_io(&r, X86_PCI_CONFIG_PORT, 8);
	aml_res_word_io(&r, X86_PCI_IO_BASE,
			X86_PCI_IO_BASE + X86_PCI_IO_SIZE - 1);
	aml_res_dword_memory(&r, (uint32_t)X86_PCI_MMIO_BASE,
			     (uint32_t)(X86_PCI_MMIO_BASE +
					X86_PCI_MMIO_SIZE - 1));
	aml_name(a, "_CRS");
	aml_resource_template(a, &r);
	aml_free(&r);
	aml_name(a, "_PRT");
	prt = aml_package_begin(a, p->npci_irqs);
	for (i = 0; i < p->npci_irqs; i++) {
		const struct mptable_pci_irq *q = &p->pci_irqs[i];
		size_t e = aml_package_begin(a, 4);

		aml_integer(a, (uint64_t)q->slot << 16 | 0xffff);
		aml_integer(a, q->pin - 1);
		aml_integer(a, 0);		/* no link device: a GSI */
		aml_integer(a, q->ioapic_pin);
		aml_end(a, e);
	}
	aml_end(a, prt);
	aml_end(a, dev);
}

static void acpi_dsdt(struct acpi_writer *w, const struct acpi_params *p,
		      uint8_t **out)
{
	struct aml a;
	size_t sb, s5;
	unsigned int i;
	uint8_t *t;

	aml_init(&a);
	sb = aml_scope_begin(&a, "\\_SB_");
	dsdt_com1(&a);
	for (i = 0; i < p->nmmio; i++)
		dsdt_virtio_mmio(&a, &p->mmio[i], i);
	dsdt_pci(&a, p);
	aml_end(&a, sb);
	/* \_S5: SLP_TYPa, SLP_TYPb, reserved. */
	aml_name(&a, "_S5_");
	s5 = aml_package_begin(&a, 4);
	aml_integer(&a, ACPI_SLP_TYP_S5);
	aml_integer(&a, ACPI_SLP_TYP_S5);
	aml_integer(&a, 0);
	aml_integer(&a, 0);
	aml_end(&a, s5);
	if (a.err) {
		w->err = a.err;
		aml_free(&a);
		return;
	}
	t = acpi_reserve(w, ACPI_HDR_LEN + a.len);
	if (t) {
		acpi_header(t, "DSDT", ACPI_HDR_LEN + a.len, 2);
		memcpy(t + ACPI_HDR_LEN, a.buf, a.len);
		acpi_finish(w, t);
	}
	aml_free(&a);
	*out = t;
}

static uint8_t *acpi_fadt(struct acpi_writer *w, uint64_t dsdt)
{
	uint8_t *t = acpi_reserve(w, FADT_LEN);

	if (!t)
		return NULL;
	acpi_header(t, "FACP", FADT_LEN, FADT_REVISION);
	put(t + 40, dsdt, 4);
	put(t + 109, BOOT_ARCH_NO_VGA | BOOT_ARCH_NO_CMOS, 2);
	put(t + 112, FADT_HW_REDUCED | FADT_RESET_REG_SUP | FADT_PWR_BUTTON |
		     FADT_SLP_BUTTON, 4);
	/* Reset through the i8042 lkvm already has: 0xfe to port 0x64. */
	gas_io(t + 116, I8042_RESET_PORT);
	t[128] = I8042_RESET_VALUE;
	t[131] = FADT_MINOR;
	put(t + 140, dsdt, 8);
	gas_io(t + 244, ACPI_PM_SLEEP_CONTROL);
	gas_io(t + 256, ACPI_PM_SLEEP_STATUS);
	memcpy(t + 268, "LKVM\0\0\0\0", 8);	/* hypervisor vendor */
	acpi_finish(w, t);
	return t;
}

static uint8_t *acpi_madt(struct acpi_writer *w, const struct acpi_params *p)
{
	size_t len = ACPI_HDR_LEN + 8 + 8 * p->ncpus + 12;
	uint8_t *t = acpi_reserve(w, len), *e;
	unsigned int i;

	if (!t)
		return NULL;
	acpi_header(t, "APIC", len, 5);
	put(t + 36, X86_LAPIC_ADDR, 4);
	put(t + 40, MADT_PCAT_COMPAT, 4);	/* the 8259s are there */
	e = t + 44;
	for (i = 0; i < p->ncpus; i++, e += 8) {
		e[0] = MADT_LAPIC;
		e[1] = 8;
		e[2] = i;			/* processor UID */
		e[3] = i;			/* APIC ID */
		put(e + 4, 1, 4);		/* enabled */
	}
	e[0] = MADT_IOAPIC;
	e[1] = 12;
	e[2] = p->ncpus;			/* I/O APIC ID, as the MP table */
	put(e + 4, X86_IOAPIC_ADDR, 4);
	put(e + 8, 0, 4);			/* GSI base */
	acpi_finish(w, t);
	return t;
}

int acpi_build(uint8_t *buf, size_t len, uint64_t gpa,
	       const struct acpi_params *p, struct acpi_table_loc *loc,
	       unsigned int *nloc)
{
	struct acpi_writer w = { .buf = buf, .len = len, .gpa = gpa,
				 .loc = loc };
	uint8_t *rsdp, *xsdt, *dsdt = NULL, *fadt, *madt;

	if (!p->ncpus || p->ncpus > X86_MAX_CPUS ||
	    p->nmmio > ACPI_MAX_MMIO_DEVS || gpa % 16)
		return -EINVAL;
	rsdp = acpi_reserve(&w, 36);
	xsdt = acpi_reserve(&w, ACPI_HDR_LEN + 2 * 8);
	acpi_dsdt(&w, p, &dsdt);
	fadt = dsdt ? acpi_fadt(&w, acpi_addr(&w, dsdt)) : NULL;
	madt = acpi_madt(&w, p);
	if (w.err)
		return w.err;
	acpi_header(xsdt, "XSDT", ACPI_HDR_LEN + 16, 1);
	put(xsdt + 36, acpi_addr(&w, fadt), 8);
	put(xsdt + 44, acpi_addr(&w, madt), 8);
	acpi_finish(&w, xsdt);

	memcpy(rsdp, "RSD PTR ", 8);
	memcpy(rsdp + 9, ACPI_OEM_ID, 6);
	rsdp[15] = 2;				/* ACPI 2.0+: the XSDT */
	put(rsdp + 20, 36, 4);
	put(rsdp + 24, acpi_addr(&w, xsdt), 8);
	rsdp[8] = checksum(rsdp, 20);
	rsdp[32] = checksum(rsdp, 36);
	if (nloc)
		*nloc = w.nloc;
	return (int)w.pos;
}
