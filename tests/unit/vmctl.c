/*
 * Tests for what the control plane reads and does without vCPUs, on
 * the simulated guest driver (vdrv.h): the per-queue statistics of a
 * virtio-blk queue after a known request mix (lkvm_queue_stats), a
 * device pause that parks the queue threads until resume, and the
 * 8250's SysRq (a break, then the key) as a guest reads it.
 */
#include <sys/mman.h>

#include "lkvm/console.h"
#include "lkvm/platform/uart8250.h"
#include "vdrv.h"

#define T_IN		0
#define T_OUT		1
#define T_FLUSH		4
#define T_GET_ID	8
#define T_DISCARD	11

/*
 * Chain `slot` on g: a 16-byte header, data_len bytes of data (written
 * by the device when in), a status byte; published at avail index idx.
 */
static void blk_post(struct ring *g, unsigned int slot, uint32_t type,
		     uint64_t sector, uint32_t data_len, bool in, uint16_t idx)
{
	struct desc *dt = (struct desc *)(g->hva + R_DESC);
	volatile uint16_t *avail = (uint16_t *)(g->hva + R_AVAIL);
	uint64_t hdr = g->gpa + R_HDR + 16 * slot;
	uint64_t data = g->gpa + R_DATA + 0x400 * slot;
	uint32_t h[4] = { type, 0, (uint32_t)sector, (uint32_t)(sector >> 32) };
	unsigned int d = 3 * slot;

	memcpy(g->hva + R_HDR + 16 * slot, h, sizeof(h));
	dt[d] = (struct desc){ hdr, 16, 1, d + 1 };
	if (data_len) {
		dt[d + 1] = (struct desc){ data, data_len, 1 | (in ? 2 : 0),
					   d + 2 };
		dt[d + 2] = (struct desc){ g->gpa + R_STATUS + slot, 1, 2, 0 };
	} else {
		dt[d + 1] = (struct desc){ g->gpa + R_STATUS + slot, 1, 2, 0 };
	}
	avail[2 + idx % VDRV_QSIZE] = d;
	__atomic_store_n(&avail[1], (uint16_t)(idx + 1), __ATOMIC_RELEASE);
}

static struct vdrv_dev *find_dev(struct vdrv *r, uint32_t id)
{
	unsigned int i;

	for (i = 0; i < r->ndev; i++)
		if (r->dev[i].id == id)
			return &r->dev[i];
	return NULL;
}

static bool blk_stats(struct vdrv *r, struct lkvm_queue_stats *st)
{
	unsigned int i;

	for (i = 0; lkvm_queue_stats(&r->vm, i, st) == 0; i++)
		if (!strcmp(st->device, "blk0") && st->queue == 0)
			return true;
	return false;
}

static void test_queue_stats_and_pause(bool pci)
{
	struct vdrv *r = calloc(1, sizeof(*r));
	struct lkvm_queue_stats st;
	struct vdrv_dev *d;
	struct ring g;
	uint32_t len;
	unsigned int i, n;
	int ret;

	CHECK_EQ(vdrv_create(r, pci, 1), 0);
	d = find_dev(r, 2);
	CHECK(d != NULL);
	if (!d)
		goto out;
	dev_status(r, d, 0);
	dev_status(r, d, 1 | 2);
	dev_features(r, d, 1, 1);		/* VERSION_1 */
	dev_status(r, d, 1 | 2 | 8);
	g = ring_of(r, (unsigned int)(d - r->dev), 0, 0);
	ring_clear(&g);
	dev_queue_sel(r, d, 0);
	dev_queue_num(r, d, VDRV_QSIZE);
	dev_queue_addrs(r, d, g.gpa + R_DESC, g.gpa + R_AVAIL, g.gpa + R_USED);
	dev_queue_ready(r, d, 1);
	dev_status(r, d, 1 | 2 | 8 | 4);

	CHECK(blk_stats(r, &st) && st.requests == 0 && st.completed == 0);
	/*
	 * The mix, in two rounds (a ring of 8 descriptors holds two
	 * requests of three): a 512-byte read and a 1 KiB write, then a
	 * flush and an ID.
	 */
	blk_post(&g, 0, T_IN, 0, 512, true, 0);
	blk_post(&g, 1, T_OUT, 8, 1024, false, 1);
	dev_notify(r, d, 0);
	CHECK(wait_used(&g, 2, &len));
	blk_post(&g, 0, T_FLUSH, 0, 0, false, 2);
	blk_post(&g, 1, T_GET_ID, 0, 20, true, 3);
	dev_notify(r, d, 0);
	CHECK(wait_used(&g, 4, &len));
	usleep(20000);	/* the batch's publication follows the last entry */
	CHECK(blk_stats(r, &st));
	printf("  blk0 q0: requests %llu completed %llu reads %llu writes %llu flushes %llu read_bytes %llu write_bytes %llu errors %llu notifies %llu latency %llu ns thread %s\n",
	       (unsigned long long)st.requests, (unsigned long long)st.completed,
	       (unsigned long long)st.reads, (unsigned long long)st.writes,
	       (unsigned long long)st.flushes,
	       (unsigned long long)st.read_bytes,
	       (unsigned long long)st.write_bytes,
	       (unsigned long long)st.errors, (unsigned long long)st.notifies,
	       (unsigned long long)st.latency_ns, st.thread);
	CHECK(!strcmp(st.kind, "virtio-blk") && !strcmp(st.thread, "blk0-q0"));
	CHECK(st.requests == 4 && st.completed == 4 && st.inflight == 0);
	CHECK(st.reads == 1 && st.writes == 1 && st.flushes == 1 &&
	      st.discards == 0 && st.errors == 0);
	CHECK(st.read_bytes == 512 && st.write_bytes == 1024);
	CHECK(st.notifies >= 1 && st.batches >= 1 && st.latency_ns > 0);
	/* Every queue of every device is listed, then -ENOENT. */
	for (n = 0; lkvm_queue_stats(&r->vm, n, &st) == 0; n++)
		;
	CHECK(n >= 3 && lkvm_queue_stats(&r->vm, n, &st) == -ENOENT);

	/* Paused: a request waits; resumed: it completes. */
	vm_devices_pause(&r->vm);
	blk_post(&g, 0, T_IN, 0, 512, true, 4);
	dev_notify(r, d, 0);
	usleep(200000);
	ret = __atomic_load_n((uint16_t *)(g.hva + R_USED) + 1, __ATOMIC_ACQUIRE);
	CHECK(ret == 4);
	CHECK(blk_stats(r, &st) && st.requests == 4);
	vm_devices_resume(&r->vm);
	CHECK(wait_used(&g, 5, &len) && len == 513);
	/* A burst, then pause at once: nothing left in flight. */
	for (i = 0; i < 2; i++)
		blk_post(&g, i, T_IN, i, 512, true, 5 + i);
	dev_notify(r, d, 0);
	vm_devices_pause(&r->vm);
	CHECK(blk_stats(r, &st) && st.inflight == 0 &&
	      st.requests == st.completed);
	vm_devices_resume(&r->vm);
	CHECK(wait_used(&g, 7, &len));
out:
	vdrv_destroy(r);
	free(r);
}

static uint8_t uart_in(struct vdrv *r, unsigned int reg)
{
	uint8_t v = 0;

	io_bus_access(&r->vm.pio, 0x3f8 + reg, &v, 1, false);
	return v;
}

static void uart_out(struct vdrv *r, unsigned int reg, uint8_t v)
{
	io_bus_access(&r->vm.pio, 0x3f8 + reg, &v, 1, true);
}

static void test_uart_sysrq(void)
{
	struct vdrv *r = calloc(1, sizeof(*r));

	CHECK_EQ(vdrv_create(r, false, 1), 0);
	/* vdrv's console is virtio; a UART takes over as the sink. */
	CHECK_EQ(uart8250_create(&r->vm, 0x3f8, 1, 4), 0);
	CHECK_EQ(uart_in(r, 5), 0x60);			/* THRE TEMT */
	uart_out(r, 1, 0x05);				/* IER: RDI, RLSI */
	CHECK_EQ(console_sysrq(&r->vm.console, 't'), 0);
	CHECK_EQ(uart_in(r, 2) & 0x0f, 0x06);		/* IIR: line status */
	CHECK_EQ(uart_in(r, 5), 0x71);			/* DR BI THRE TEMT */
	CHECK_EQ(uart_in(r, 0), 0);			/* the break's byte */
	CHECK_EQ(uart_in(r, 2) & 0x0f, 0x04);		/* IIR: data */
	CHECK_EQ(uart_in(r, 5), 0x61);			/* DR, no BI */
	CHECK_EQ(uart_in(r, 0), 't');
	CHECK_EQ(uart_in(r, 5), 0x60);
	CHECK_EQ(uart_in(r, 2) & 0x0f, 0x01);		/* no interrupt */
	vdrv_destroy(r);
	free(r);
}

int main(void)
{
	test_queue_stats_and_pause(false);
	test_queue_stats_and_pause(true);
	test_uart_sysrq();
	return test_done();
}
