/*
 * mptable.c - MP Specification 1.4 floating pointer and configuration
 * table: one processor entry per vCPU (APIC ID = vCPU index, vCPU 0 the
 * bootstrap processor), a PCI bus 0 and an ISA bus 1, one I/O APIC whose
 * pins 0-15 carry ISA IRQs 0-15 one to one (as KVM's in-kernel PIT and
 * UART lines expect), PCI INTx routes, and LINT0/LINT1 as ExtINT/NMI.
 * Pure: writes into a buffer; unit-tested.
 */
#include <errno.h>
#include <string.h>

#include "lkvm/x86/layout.h"
#include "lkvm/x86/mptable.h"

#define MP_SPEC_REV	4	/* 1.4 */
#define MP_LAPIC_VER	0x14
#define MP_IOAPIC_VER	0x11
#define MP_BUS_PCI	0
#define MP_BUS_ISA	1

enum {
	MP_PROCESSOR = 0,
	MP_BUS = 1,
	MP_IOAPIC = 2,
	MP_IOINTR = 3,
	MP_LINTR = 4,
};

enum {
	MP_INT = 0,
	MP_NMI = 1,
	MP_EXTINT = 3,
};

/*
 * Polarity bits 0-1, trigger bits 2-3.  PCI INTx is stated explicitly as
 * level, active high rather than left to the bus's active-low default:
 * its pins are the same GSIs 16-23 the virtio-mmio slots describe as
 * level/high, and KVM's irqfd drives them high to assert.
 */
#define MP_IRQ_CONFORMING	0x0
#define MP_IRQ_LEVEL_HIGH	0xd

struct mp_writer {
	uint8_t *buf;
	size_t len, pos;
	unsigned int entries;
	int err;
};

static uint8_t *mp_reserve(struct mp_writer *w, size_t n)
{
	uint8_t *p;

	if (w->err || n > w->len - w->pos) {
		w->err = -ENOSPC;
		return NULL;
	}
	p = w->buf + w->pos;
	memset(p, 0, n);
	w->pos += n;
	return p;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v;
	p[1] = v >> 8;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v);
	put16(p + 2, v >> 16);
}

static uint8_t mp_checksum(const uint8_t *p, size_t n)
{
	uint8_t sum = 0;

	while (n--)
		sum += *p++;
	return -sum;
}

static void mp_processor(struct mp_writer *w, unsigned int id,
			 const struct mptable_params *p)
{
	uint8_t *e = mp_reserve(w, 20);

	if (!e)
		return;
	e[0] = MP_PROCESSOR;
	e[1] = id;
	e[2] = MP_LAPIC_VER;
	e[3] = 0x1 | (id == 0 ? 0x2 : 0);	/* enabled, BSP */
	put32(e + 4, p->cpu_signature);
	put32(e + 8, p->cpu_features);
	w->entries++;
}

static void mp_bus(struct mp_writer *w, uint8_t id, const char *type)
{
	uint8_t *e = mp_reserve(w, 8);

	if (!e)
		return;
	e[0] = MP_BUS;
	e[1] = id;
	memcpy(e + 2, type, 6);
	w->entries++;
}

static void mp_intr(struct mp_writer *w, uint8_t kind, uint8_t irqtype,
		    uint8_t flags, uint8_t bus, uint8_t irq, uint8_t dst_id,
		    uint8_t dst_pin)
{
	uint8_t *e = mp_reserve(w, 8);

	if (!e)
		return;
	e[0] = kind;
	e[1] = irqtype;
	put16(e + 2, flags);
	e[4] = bus;
	e[5] = irq;
	e[6] = dst_id;
	e[7] = dst_pin;
	w->entries++;
}

int mptable_build(uint8_t *buf, size_t len, uint32_t base,
		  const struct mptable_params *p)
{
	struct mp_writer w = { .buf = buf, .len = len };
	uint8_t *fp, *hdr, *e;
	unsigned int i, ioapic_id = p->ncpus;

	if (p->ncpus == 0 || p->ncpus > X86_MAX_CPUS ||
	    ioapic_id > 0xfe)
		return -EINVAL;
	fp = mp_reserve(&w, 16);
	hdr = mp_reserve(&w, 44);
	if (!fp || !hdr)
		return -ENOSPC;

	for (i = 0; i < p->ncpus; i++)
		mp_processor(&w, i, p);
	mp_bus(&w, MP_BUS_PCI, "PCI   ");
	mp_bus(&w, MP_BUS_ISA, "ISA   ");
	e = mp_reserve(&w, 8);
	if (e) {
		e[0] = MP_IOAPIC;
		e[1] = ioapic_id;
		e[2] = MP_IOAPIC_VER;
		e[3] = 1;	/* enabled */
		put32(e + 4, X86_IOAPIC_ADDR);
		w.entries++;
	}
	for (i = 0; i < 16; i++)
		mp_intr(&w, MP_IOINTR, MP_INT, MP_IRQ_CONFORMING, MP_BUS_ISA,
			i, ioapic_id, i);
	if (p->level_gsi_base + p->nlevel_gsis > MPTABLE_IOAPIC_PINS)
		return -EINVAL;
	for (i = 0; i < p->nlevel_gsis; i++)
		mp_intr(&w, MP_IOINTR, MP_INT, MP_IRQ_LEVEL_HIGH, MP_BUS_ISA,
			p->level_gsi_base + i, ioapic_id,
			p->level_gsi_base + i);
	for (i = 0; i < p->npci_irqs; i++) {
		const struct mptable_pci_irq *r = &p->pci_irqs[i];

		if (r->slot > 31 || r->pin < 1 || r->pin > 4 ||
		    r->ioapic_pin >= MPTABLE_IOAPIC_PINS)
			return -EINVAL;
		mp_intr(&w, MP_IOINTR, MP_INT, MP_IRQ_LEVEL_HIGH, MP_BUS_PCI,
			r->slot << 2 | (r->pin - 1), ioapic_id, r->ioapic_pin);
	}
	/* LINT0 takes the 8259's ExtINT, LINT1 NMIs, on every CPU (0xff). */
	mp_intr(&w, MP_LINTR, MP_EXTINT, MP_IRQ_CONFORMING, MP_BUS_ISA, 0,
		0xff, 0);
	mp_intr(&w, MP_LINTR, MP_NMI, MP_IRQ_CONFORMING, MP_BUS_ISA, 0,
		0xff, 1);
	if (w.err)
		return w.err;

	memcpy(hdr, "PCMP", 4);
	put16(hdr + 4, w.pos - 16);	/* base table length */
	hdr[6] = MP_SPEC_REV;
	memcpy(hdr + 8, "LKVM    ", 8);
	memcpy(hdr + 16, "LKVM        ", 12);
	put16(hdr + 34, w.entries);
	put32(hdr + 36, X86_LAPIC_ADDR);
	hdr[7] = mp_checksum(hdr, w.pos - 16);

	memcpy(fp, "_MP_", 4);
	put32(fp + 4, base + 16);	/* the table follows the pointer */
	fp[8] = 1;			/* length in 16-byte units */
	fp[9] = MP_SPEC_REV;
	fp[10] = mp_checksum(fp, 16);
	return w.pos;
}
