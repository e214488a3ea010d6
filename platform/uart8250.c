/*
 * uart8250.c - 16550A UART emulation for the serial console.
 *
 * vCPU threads access the registers; the control loop pushes console
 * input into the receive FIFO.  u->lock covers all register state.  Output
 * is written straight through to the console: one byte per guest THR
 * write, which already costs an exit, so buffering would save little and
 * could lose the last line of a crashing guest.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lkvm/device.h"
#include "lkvm/lib/util.h"
#include "lkvm/platform/uart8250.h"
#include "lkvm/vm.h"

#define UART_RX_SIZE	256

/* Register offsets (DLAB selects the divisor latch at 0 and 1). */
#define UART_RBR 0
#define UART_IER 1
#define UART_IIR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define IER_RDI		0x01
#define IER_THRI	0x02
#define IER_RLSI	0x04
#define IIR_NO_INT	0x01
#define IIR_THRI	0x02
#define IIR_RDI		0x04
#define IIR_RLSI	0x06
#define IIR_FIFO	0xc0
#define FCR_ENABLE	0x01
#define FCR_CLEAR_RX	0x02
#define LCR_DLAB	0x80
#define MCR_DTR		0x01
#define MCR_RTS		0x02
#define MCR_OUT1	0x04
#define MCR_OUT2	0x08
#define MCR_LOOP	0x10
#define LSR_DR		0x01
#define LSR_OE		0x02
#define LSR_BI		0x10
#define LSR_THRE	0x20
#define LSR_TEMT	0x40
#define MSR_CTS		0x10
#define MSR_DSR		0x20
#define MSR_RI		0x40
#define MSR_DCD		0x80

struct uart8250 {
	struct vm_device dev;
	struct lkvm *vm;
	pthread_mutex_t lock;
	unsigned int irq;
	int irq_level;
	uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
	uint8_t lsr_err;		/* overrun, cleared by an LSR read */
	bool thri_pending;
	uint8_t rx[UART_RX_SIZE];
	bool rx_brk[UART_RX_SIZE];	/* this entry is a break (a 0 byte) */
	unsigned int rx_head, rx_count;
};

/* A break at the head of the receive FIFO shows in LSR until read. */
static bool uart_brk_head(const struct uart8250 *u)
{
	return u->rx_count && u->rx_brk[u->rx_head];
}

static uint8_t uart_iir(const struct uart8250 *u)
{
	uint8_t fifo = u->fcr & FCR_ENABLE ? IIR_FIFO : 0;

	if ((u->ier & IER_RLSI) && (u->lsr_err || uart_brk_head(u)))
		return fifo | IIR_RLSI;
	if ((u->ier & IER_RDI) && u->rx_count)
		return fifo | IIR_RDI;
	if ((u->ier & IER_THRI) && u->thri_pending)
		return fifo | IIR_THRI;
	return fifo | IIR_NO_INT;
}

/* Called with u->lock held.  OUT2 gates the line, as on a PC. */
static void uart_update_irq(struct uart8250 *u)
{
	int level = !(uart_iir(u) & IIR_NO_INT) && (u->mcr & MCR_OUT2);

	if (level != u->irq_level) {
		u->irq_level = level;
		vm_irq_line(u->vm, u->irq, level);
	}
}

static void uart_rx_put(struct uart8250 *u, uint8_t ch, bool brk)
{
	unsigned int i = (u->rx_head + u->rx_count) % UART_RX_SIZE;

	if (u->rx_count == UART_RX_SIZE) {
		u->lsr_err |= LSR_OE;
		return;
	}
	u->rx[i] = ch;
	u->rx_brk[i] = brk;
	u->rx_count++;
}

static uint8_t uart_rx_get(struct uart8250 *u)
{
	uint8_t ch;

	if (!u->rx_count)
		return 0;
	ch = u->rx[u->rx_head];
	u->rx_brk[u->rx_head] = false;
	u->rx_head = (u->rx_head + 1) % UART_RX_SIZE;
	if (u->rx_count-- == UART_RX_SIZE)
		console_space_available(&u->vm->console);
	return ch;
}

static uint8_t uart_msr(const struct uart8250 *u)
{
	uint8_t m = u->mcr;

	if (!(m & MCR_LOOP))
		return MSR_DCD | MSR_DSR | MSR_CTS;
	/* Loopback wires the modem outputs back to the inputs. */
	return (m & MCR_DTR ? MSR_DSR : 0) | (m & MCR_RTS ? MSR_CTS : 0) |
	       (m & MCR_OUT1 ? MSR_RI : 0) | (m & MCR_OUT2 ? MSR_DCD : 0);
}

static uint8_t uart_read_reg(struct uart8250 *u, unsigned int reg)
{
	uint8_t v = 0;

	switch (reg) {
	case UART_RBR:
		if (u->lcr & LCR_DLAB)
			return u->dll;
		return uart_rx_get(u);
	case UART_IER:
		return u->lcr & LCR_DLAB ? u->dlm : u->ier;
	case UART_IIR:
		v = uart_iir(u);
		if ((v & 0x0f) == IIR_THRI)
			u->thri_pending = false;
		return v;
	case UART_LCR:
		return u->lcr;
	case UART_MCR:
		return u->mcr;
	case UART_LSR:
		v = LSR_THRE | LSR_TEMT | u->lsr_err |
		    (u->rx_count ? LSR_DR : 0) |
		    (uart_brk_head(u) ? LSR_BI : 0);
		u->lsr_err = 0;
		return v;
	case UART_MSR:
		return uart_msr(u);
	default:
		return u->scr;
	}
}

static void uart_write_reg(struct uart8250 *u, unsigned int reg, uint8_t v)
{
	switch (reg) {
	case UART_RBR:
		if (u->lcr & LCR_DLAB) {
			u->dll = v;
			break;
		}
		if (u->mcr & MCR_LOOP)
			uart_rx_put(u, v, false);
		else
			console_write(&u->vm->console, &v, 1);
		u->thri_pending = true;
		break;
	case UART_IER:
		if (u->lcr & LCR_DLAB) {
			u->dlm = v;
			break;
		}
		/* Enabling THRI with an empty THR interrupts at once. */
		if ((v & IER_THRI) && !(u->ier & IER_THRI))
			u->thri_pending = true;
		u->ier = v & 0x0f;
		break;
	case UART_IIR:
		u->fcr = v & (FCR_ENABLE | 0xc0);
		if (v & FCR_CLEAR_RX)
			while (u->rx_count)
				uart_rx_get(u);
		break;
	case UART_LCR:
		u->lcr = v;
		break;
	case UART_MCR:
		u->mcr = v & 0x1f;
		break;
	case UART_SCR:
		u->scr = v;
		break;
	default:
		break;	/* LSR and MSR are read-only */
	}
}

static void uart_io_read(void *opaque, uint64_t off, void *data,
			 unsigned int len)
{
	struct uart8250 *u = opaque;

	memset(data, 0, len);
	pthread_mutex_lock(&u->lock);
	*(uint8_t *)data = uart_read_reg(u, off);
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

static void uart_io_write(void *opaque, uint64_t off, const void *data,
			  unsigned int len)
{
	struct uart8250 *u = opaque;

	(void)len;
	pthread_mutex_lock(&u->lock);
	uart_write_reg(u, off, *(const uint8_t *)data);
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

static const struct io_ops uart_io_ops = {
	.read = uart_io_read,
	.write = uart_io_write,
};

static size_t uart_sink_space(void *opaque)
{
	struct uart8250 *u = opaque;
	size_t space;

	pthread_mutex_lock(&u->lock);
	space = UART_RX_SIZE - u->rx_count;
	pthread_mutex_unlock(&u->lock);
	return space;
}

static void uart_sink_push(void *opaque, const uint8_t *buf, size_t len)
{
	struct uart8250 *u = opaque;
	size_t i;

	pthread_mutex_lock(&u->lock);
	for (i = 0; i < len; i++)
		uart_rx_put(u, buf[i], false);
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

/*
 * Magic SysRq over a serial line: a break (received as a 0 byte with
 * LSR.BI set), then the key.  Linux's 8250 driver on the console port
 * takes a key arriving within 5 s of a break as SysRq.
 */
static int uart_sink_sysrq(void *opaque, uint8_t key)
{
	struct uart8250 *u = opaque;
	int ret = -EAGAIN;

	pthread_mutex_lock(&u->lock);
	if (UART_RX_SIZE - u->rx_count >= 2) {
		uart_rx_put(u, 0, true);
		uart_rx_put(u, key, false);
		uart_update_irq(u);
		ret = 0;
	}
	pthread_mutex_unlock(&u->lock);
	return ret;
}

static const struct console_sink_ops uart_sink_ops = {
	.space = uart_sink_space,
	.push = uart_sink_push,
	.sysrq = uart_sink_sysrq,
};

static void uart_free(struct vm_device *dev)
{
	struct uart8250 *u = container_of(dev, struct uart8250, dev);

	pthread_mutex_destroy(&u->lock);
	free(u);
}

static const struct vm_device_ops uart_device_ops = {
	.kind = "uart8250",
	.free = uart_free,
};

int uart8250_create(struct lkvm *vm, uint64_t base, int pio, unsigned int irq)
{
	struct uart8250 *u = calloc(1, sizeof(*u));
	int ret;

	if (!u)
		return -ENOMEM;
	u->vm = vm;
	u->irq = irq;
	pthread_mutex_init(&u->lock, NULL);
	/* The VM owns it from here, whatever happens next. */
	vm_device_add(vm, &u->dev, &uart_device_ops, "uart0");
	ret = io_bus_register(pio ? &vm->pio : &vm->mmio, base, 8,
			      &uart_io_ops, u);
	if (ret)
		return ret;
	console_set_sink(&vm->console, &uart_sink_ops, u);
	return 0;
}
