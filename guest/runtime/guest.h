/*
 * guest.h - the runtime shared by lkvm's test guests: port and MMIO
 * access, a serial console, the debug-exit port, PCI configuration, the
 * local APIC and I/O APIC, interrupt handlers, the MP table.  Guests run
 * in 64-bit mode on an identity map of the low 4 GiB.  Every routine is
 * written to execute few instructions: here each costs ~0.3 us.
 */
#ifndef GUEST_H
#define GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DEBUG_EXIT_PORT	0x501
#define COM1		0x3f8
#define LAPIC_BASE	0xfee00000UL
#define IOAPIC_BASE	0xfec00000UL

/* Status a guest exits with after an unexpected exception. */
#define EXIT_TRAP	0xee

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t mmio_read32(uintptr_t addr)
{
	return *(volatile uint32_t *)addr;
}

static inline void mmio_write32(uintptr_t addr, uint32_t v)
{
	*(volatile uint32_t *)addr = v;
}

static inline uint16_t mmio_read16(uintptr_t addr)
{
	return *(volatile uint16_t *)addr;
}

static inline void mmio_write16(uintptr_t addr, uint16_t v)
{
	*(volatile uint16_t *)addr = v;
}

static inline uint8_t mmio_read8(uintptr_t addr)
{
	return *(volatile uint8_t *)addr;
}

static inline void mmio_write8(uintptr_t addr, uint8_t v)
{
	*(volatile uint8_t *)addr = v;
}

static inline void cpu_relax(void)
{
	__asm__ volatile("pause" ::: "memory");
}

static inline void irq_enable(void)
{
	__asm__ volatile("sti" ::: "memory");
}

static inline void irq_disable(void)
{
	__asm__ volatile("cli" ::: "memory");
}

/* Sleeps until an interrupt (which then runs before this returns). */
static inline void wait_for_irq(void)
{
	__asm__ volatile("sti; hlt; cli" ::: "memory");
}

/*
 * As wait_for_irq, but the local APIC timer ends the sleep after about
 * ms milliseconds (at most 4294); true if it was the timer that woke
 * us (another interrupt may have come too).  Uses vector 63.
 */
bool wait_for_irq_or_timer(unsigned int ms);

/* Console. */
void putchar_serial(char c);
void puts_serial(const char *s);
void gprintf(const char *fmt, ...);

/* Ends the run: lkvm exits with this status. */
__attribute__((noreturn)) void guest_exit(uint8_t status);

/* Interrupts: vectors 32-63 may have handlers; exceptions end the run. */
struct trap_frame {
	uint64_t r11, r10, r9, r8, rdi, rsi, rdx, rcx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};
typedef void (*irq_handler_t)(struct trap_frame *f);
void idt_init(void);
void irq_set_handler(unsigned int vector, irq_handler_t fn);

/* Local APIC and I/O APIC. */
uint32_t lapic_read(unsigned int reg);
void lapic_write(unsigned int reg, uint32_t v);
unsigned int lapic_id(void);
void lapic_eoi(void);
void ioapic_route(unsigned int pin, unsigned int vector, unsigned int apic);

/* PCI configuration mechanism #1, bus 0. */
uint32_t pci_cfg_read32(unsigned int dev, unsigned int fn, unsigned int off);
void pci_cfg_write32(unsigned int dev, unsigned int fn, unsigned int off,
		     uint32_t v);
/* Device number of vendor:device on bus 0, or -1. */
int pci_find(uint16_t vendor, uint16_t device);

/* CPU count from the MP table lkvm writes at 0xf0000 (0 if none). */
unsigned int mp_cpu_count(void);

/* A spinlock for output from several CPUs. */
void spin_lock(volatile int *l);
void spin_unlock(volatile int *l);

/* Each guest provides these: main on the boot CPU, ap_main on others. */
void main(void);
void ap_main(unsigned int cpu);

/* Freestanding compilers may still emit calls to these. */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#endif
