/*
 * blkmq - two vCPUs, two virtio-blk queues, used at the same time: the
 * boot CPU writes and reads back the first 64 KiB (pattern seed 2)
 * through queue 0 while the second CPU does the next 64 KiB through
 * queue 1.  Each checks its half; the host checks the whole file.
 */
#include "runtime/vblk.h"

#define HALF	(64 * 1024)
#define CHUNK	4096
#define BATCH	16

static struct vblk b;
static uint8_t bufs[2][BATCH][CHUNK] __attribute__((aligned(4096)));
static volatile unsigned int result[2];	/* 0 running, 1 ok, 2 failed */
static volatile unsigned int go;

static bool batch(unsigned int qi, uint32_t type, uint64_t off)
{
	unsigned int i;

	for (i = 0; i < BATCH; i++)
		vblk_post(&b, qi, i, type, (off + i * CHUNK) / 512,
			  bufs[qi][i], CHUNK);
	vblk_kick(&b, qi);
	if (!vblk_wait(&b, qi))
		return false;
	for (i = 0; i < BATCH; i++)
		if (b.q[qi].status[i])
			return false;
	return true;
}

static void worker(unsigned int qi)
{
	uint64_t base = qi * HALF, off;
	unsigned int i, j, bad = 0;

	for (off = base; off < base + HALF; off += BATCH * CHUNK) {
		for (i = 0; i < BATCH; i++)
			for (j = 0; j < CHUNK; j++)
				bufs[qi][i][j] = vblk_pattern(off + i * CHUNK + j, 2);
		if (!batch(qi, VBLK_T_OUT, off)) {
			result[qi] = 2;
			return;
		}
	}
	for (off = base; off < base + HALF; off += BATCH * CHUNK) {
		memset(bufs[qi], 0, sizeof(bufs[qi]));
		if (!batch(qi, VBLK_T_IN, off)) {
			result[qi] = 2;
			return;
		}
		for (i = 0; i < BATCH; i++)
			for (j = 0; j < CHUNK; j++)
				bad += bufs[qi][i][j] !=
				       vblk_pattern(off + i * CHUNK + j, 2);
	}
	result[qi] = bad ? 2 : 1;
}

void ap_main(unsigned int cpu)
{
	if (cpu != 1)
		return;
	while (!go)
		cpu_relax();
	worker(1);
}

static void send_ipi(uint32_t low)
{
	lapic_write(0x310, 0);
	lapic_write(0x300, low);
	while (lapic_read(0x300) & (1u << 12))
		cpu_relax();
}

void main(void)
{
	unsigned long spins;

	if (mp_cpu_count() < 2) {
		gprintf("blkmq: needs 2 CPUs\n");
		guest_exit(1);
	}
	if (!vblk_open(&b, 2)) {
		gprintf("blkmq: FAIL no virtio-blk with 2 queues\n");
		guest_exit(1);
	}
	lapic_write(0xf0, 0x1ff);
	send_ipi(3u << 18 | 5u << 8 | 1u << 14);	/* INIT to the others */
	send_ipi(3u << 18 | 6u << 8 | 0x10);		/* SIPI at 0x10000 */
	go = 1;
	worker(0);
	for (spins = 0; !result[1] && spins < 400000000; spins++)
		cpu_relax();
	gprintf("blkmq: queue 0 %s, queue 1 %s\n",
		result[0] == 1 ? "ok" : "FAILED",
		result[1] == 1 ? "ok" : result[1] ? "FAILED" : "no answer");
	guest_exit(result[0] == 1 && result[1] == 1 ? 0 : 1);
}
