/*
 * uart8250.h - a 16550A-compatible UART: the serial console.  Registered
 * on the PIO bus on x86 (0x3f8) and may be put on MMIO by other arches.
 * Register state is touched by vCPU threads (guest accesses) and the
 * control loop (input); a mutex inside serialises both.
 */
#ifndef LKVM_UART8250_H
#define LKVM_UART8250_H

#include <stdint.h>

struct lkvm;
struct uart8250;

/*
 * Creates the UART, makes it the console's input sink, and registers it
 * at base on the PIO bus (pio != 0) or the MMIO bus; irq is its GSI.
 */
int uart8250_create(struct lkvm *vm, uint64_t base, int pio, unsigned int irq);

#endif
