/*
 * lib.c - the test-guest runtime (see guest.h).
 */
#include "guest.h"

extern char trap_stubs[];

static volatile int print_lock;

void *memset(void *d, int c, size_t n)
{
	uint8_t *p = d;

	while (n--)
		*p++ = c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	uint8_t *p = d;
	const uint8_t *q = s;

	while (n--)
		*p++ = *q++;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *p = a, *q = b;

	for (; n--; p++, q++)
		if (*p != *q)
			return *p - *q;
	return 0;
}

void spin_lock(volatile int *l)
{
	while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
		cpu_relax();
}

void spin_unlock(volatile int *l)
{
	__atomic_store_n(l, 0, __ATOMIC_RELEASE);
}

/* lkvm's UART transmits at once, so there is no need to poll LSR. */
void putchar_serial(char c)
{
	if (c == '\n')
		outb(COM1, '\r');
	outb(COM1, c);
}

void puts_serial(const char *s)
{
	while (*s)
		putchar_serial(*s++);
}

static void put_num(uint64_t v, unsigned int base, int width)
{
	char buf[24];
	int n = 0;

	do {
		buf[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (n < width)
		buf[n++] = '0';
	while (n)
		putchar_serial(buf[--n]);
}

/* %s %c %d %u %x %lx %lu %ld, and %0Nx widths. */
static void vprint(const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		int width = 0, lng = 0;

		if (*fmt != '%') {
			putchar_serial(*fmt);
			continue;
		}
		fmt++;
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		if (*fmt == 'l') {
			lng = 1;
			fmt++;
		}
		switch (*fmt) {
		case 's':
			puts_serial(va_arg(ap, const char *));
			break;
		case 'c':
			putchar_serial(va_arg(ap, int));
			break;
		case 'd': {
			int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);

			if (v < 0) {
				putchar_serial('-');
				v = -v;
			}
			put_num(v, 10, width);
			break;
		}
		case 'u':
			put_num(lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned int),
				10, width);
			break;
		case 'x':
			put_num(lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned int),
				16, width);
			break;
		default:
			putchar_serial(*fmt);
			break;
		}
	}
}

void gprintf(const char *fmt, ...)
{
	va_list ap;

	spin_lock(&print_lock);
	va_start(ap, fmt);
	vprint(fmt, ap);
	va_end(ap);
	spin_unlock(&print_lock);
}

void guest_exit(uint8_t status)
{
	outb(DEBUG_EXIT_PORT, status);
	for (;;)
		__asm__ volatile("cli; hlt");
}

/* IDT: 64 gates, 16 bytes each. */
static uint64_t idt[64 * 2] __attribute__((aligned(16)));
static irq_handler_t handlers[64];

void idt_init(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) desc = { sizeof(idt) - 1, (uintptr_t)idt };
	unsigned int v;

	for (v = 0; v < 64; v++) {
		uint64_t a = (uintptr_t)trap_stubs + v * 16;

		/* present, DPL 0, 64-bit interrupt gate, selector 0x10 */
		idt[2 * v] = (a & 0xffff) | (0x10ULL << 16) |
			     (0x8eULL << 40) | ((a >> 16 & 0xffff) << 48);
		idt[2 * v + 1] = a >> 32;
	}
	__asm__ volatile("lidt %0" : : "m"(desc));
	/* The 8259s stay masked: interrupts come through the APICs. */
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
}

void irq_set_handler(unsigned int vector, irq_handler_t fn)
{
	if (vector < 64)
		handlers[vector] = fn;
}

void guest_trap(struct trap_frame *f);

void guest_trap(struct trap_frame *f)
{
	if (f->vector >= 32 && handlers[f->vector]) {
		handlers[f->vector](f);
		return;
	}
	gprintf("PANIC: exception %lu error %lx at rip %lx\n", f->vector,
		f->error, f->rip);
	guest_exit(EXIT_TRAP);
}

uint32_t lapic_read(unsigned int reg)
{
	return mmio_read32(LAPIC_BASE + reg);
}

void lapic_write(unsigned int reg, uint32_t v)
{
	mmio_write32(LAPIC_BASE + reg, v);
}

unsigned int lapic_id(void)
{
	return lapic_read(0x20) >> 24;
}

void lapic_eoi(void)
{
	lapic_write(0xb0, 0);
}

/*
 * The bounded sleep's timer: the local APIC's one-shot timer on the last
 * vector the IDT has, which no test guest uses for anything else.
 */
#define WAKE_VECTOR	63
static volatile bool wake_fired;

static void on_wake_timer(struct trap_frame *f)
{
	(void)f;
	wake_fired = true;
	lapic_eoi();
}

bool wait_for_irq_or_timer(unsigned int ms)
{
	static bool set_up;
	bool fired;

	/* Once: each APIC write is an exit, and the guests call this a lot. */
	if (!set_up) {
		irq_set_handler(WAKE_VECTOR, on_wake_timer);
		lapic_write(0xf0, 0x1ff);	/* enabled, spurious 0xff */
		lapic_write(0x3e0, 0xb);	/* divide by 1 */
		lapic_write(0x320, WAKE_VECTOR);	/* one-shot */
		set_up = true;
	}
	wake_fired = false;
	/* KVM's APIC timer counts at 1 GHz; writing the count starts it. */
	lapic_write(0x380, ms * 1000000u);
	wait_for_irq();
	lapic_write(0x380, 0);			/* stopped */
	fired = wake_fired;
	wake_fired = false;
	return fired;
}

void ioapic_route(unsigned int pin, unsigned int vector, unsigned int apic)
{
	mmio_write32(IOAPIC_BASE, 0x10 + 2 * pin + 1);
	mmio_write32(IOAPIC_BASE + 0x10, apic << 24);
	mmio_write32(IOAPIC_BASE, 0x10 + 2 * pin);
	mmio_write32(IOAPIC_BASE + 0x10, vector);	/* edge, high, unmasked */
}

static uint32_t pci_addr(unsigned int dev, unsigned int fn, unsigned int off)
{
	return 0x80000000u | dev << 11 | fn << 8 | (off & 0xfc);
}

uint32_t pci_cfg_read32(unsigned int dev, unsigned int fn, unsigned int off)
{
	outl(0xcf8, pci_addr(dev, fn, off));
	return inl(0xcfc);
}

void pci_cfg_write32(unsigned int dev, unsigned int fn, unsigned int off,
		     uint32_t v)
{
	outl(0xcf8, pci_addr(dev, fn, off));
	outl(0xcfc, v);
}

int pci_find(uint16_t vendor, uint16_t device)
{
	uint32_t want = (uint32_t)device << 16 | vendor;
	unsigned int dev;

	for (dev = 0; dev < 32; dev++)
		if (pci_cfg_read32(dev, 0, 0) == want)
			return dev;
	return -1;
}

unsigned int mp_cpu_count(void)
{
	uintptr_t p;

	for (p = 0xf0000; p < 0x100000; p += 16) {
		const uint8_t *fp = (const uint8_t *)p;

		if (fp[0] == '_' && fp[1] == 'M' && fp[2] == 'P' &&
		    fp[3] == '_') {
			const uint8_t *t = (const uint8_t *)(uintptr_t)
				(*(const uint32_t *)(fp + 4));
			const uint8_t *e = t + 44;
			unsigned int i, n = t[34] | t[35] << 8, cpus = 0;

			/* Processor entries (type 0) are 20 bytes, others 8. */
			for (i = 0; i < n; i++) {
				if (e[0] == 0) {
					cpus += e[3] & 1;
					e += 20;
				} else {
					e += 8;
				}
			}
			return cpus;
		}
	}
	return 0;
}

void guest_start(unsigned int cpu);

void guest_start(unsigned int cpu)
{
	if (cpu == 0) {
		idt_init();
		main();
		guest_exit(0);
	}
	ap_main(cpu);
}

/* Guests without application processors need not define ap_main. */
__attribute__((weak)) void ap_main(unsigned int cpu)
{
	(void)cpu;
}
