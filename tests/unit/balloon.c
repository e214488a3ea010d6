/*
 * balloon.c - tests for virtio/balloon.c with a simulated driver (no
 * KVM), on both transports: inflating pages gives them back to the host
 * (their residency, read with mincore, falls by at least 80 %) and they
 * read as zeroes; after deflate the guest uses them again; PFNs outside
 * guest RAM are counted and ignored; the statistics queue's buffer is
 * held, read and handed back on request; free page reporting releases
 * the ranges reported; the target size reaches the guest's config space
 * with a configuration interrupt; actual is the driver's to write.
 */
#include <sys/mman.h>

#include "vdrv.h"

#define BAL_GPA		(40 * MiB)	/* the pages ballooned */
#define BAL_PAGES	2048		/* 8 MiB */
#define BAL_REPORT_GPA	(52 * MiB)	/* a range reported free */
#define BAL_REPORT_LEN	(1 * MiB)
#define BAL_CHAINS	4
#define F_STATS		1
#define F_OOM		2
#define F_REPORTING	5

static unsigned int resident_pages(struct vdrv *r, uint64_t gpa, uint64_t len)
{
	unsigned char vec[4096];
	unsigned int n = 0, i;
	void *p = guest_ptr(&r->vm.mem, gpa, len);

	if (!p || len / 4096 > sizeof(vec) || mincore(p, len, vec))
		return ~0u;
	for (i = 0; i < len / 4096; i++)
		n += vec[i] & 1;
	return n;
}

static bool wait_idx(struct ring *g, uint16_t idx)
{
	uint32_t len;

	return wait_used(g, idx, &len);
}

/* Queue q of the balloon, set up on its own ring area. */
static struct ring bal_queue(struct vdrv *r, struct vdrv_dev *d,
			     unsigned int di, unsigned int q)
{
	struct ring g = ring_of(r, di, 0, q);

	ring_clear(&g);
	dev_queue_sel(r, d, q);
	dev_queue_num(r, d, VDRV_QSIZE);
	dev_queue_addrs(r, d, g.gpa + R_DESC, g.gpa + R_AVAIL, g.gpa + R_USED);
	dev_queue_ready(r, d, 1);
	return g;
}

/* Posts chain `slot` of PFNs (n of them from first) on g, at avail idx. */
static void post_pfns(struct ring *g, unsigned int slot, uint32_t first,
		      unsigned int n, uint16_t idx)
{
	struct desc *dt = (struct desc *)(g->hva + R_DESC);
	volatile uint16_t *avail = (uint16_t *)(g->hva + R_AVAIL);
	uint32_t *pfn = (uint32_t *)(g->hva + 0x6000 + 0x800 * slot);
	unsigned int k;

	for (k = 0; k < n; k++)
		pfn[k] = first + k;
	dt[slot] = (struct desc){ g->gpa + 0x6000 + 0x800 * slot, 4 * n, 0, 0 };
	avail[2 + idx % VDRV_QSIZE] = slot;
	__atomic_store_n(&avail[1], (uint16_t)(idx + 1), __ATOMIC_RELEASE);
}

/* The guest's statistics: (le16 tag, le64 value) each, packed. */
static void post_stats(struct ring *g, uint64_t free_mem, uint16_t idx)
{
	struct desc *dt = (struct desc *)(g->hva + R_DESC);
	volatile uint16_t *avail = (uint16_t *)(g->hva + R_AVAIL);
	uint8_t *b = g->hva + R_DATA;
	uint16_t tags[3] = { 4, 5, 6 };	/* free, total, available */
	uint64_t vals[3] = { free_mem, 64 * MiB, free_mem / 2 };
	unsigned int k;

	for (k = 0; k < 3; k++) {
		memcpy(b + 10 * k, &tags[k], 2);
		memcpy(b + 10 * k + 2, &vals[k], 8);
	}
	dt[0] = (struct desc){ g->gpa + R_DATA, 30, 0, 0 };
	avail[2 + idx % VDRV_QSIZE] = 0;
	__atomic_store_n(&avail[1], (uint16_t)(idx + 1), __ATOMIC_RELEASE);
}

static bool wait_stats(struct vdrv *r, uint64_t updates,
		       struct lkvm_balloon_stats *st)
{
	int i;

	for (i = 0; i < 30000; i++) {
		if (lkvm_balloon_stats(&r->vm, st) == 0 &&
		    st->updates >= updates)
			return true;
		usleep(1000);
	}
	return false;
}

static void test_balloon(bool pci)
{
	struct vdrv *r = calloc(1, sizeof(*r));
	struct lkvm_balloon_stats st;
	struct ring inf, def, sta, rep;
	struct vdrv_dev *d = NULL;
	unsigned int di, k, before, after, again;
	uint32_t first = BAL_GPA >> 12;
	uint8_t *mem;

	r->devices[r->ndevices++] = "balloon";
	CHECK_EQ(vdrv_create(r, pci, 1), 0);
	for (di = 0; di < r->ndev; di++)
		if (r->dev[di].id == 5)
			d = &r->dev[di];
	CHECK(d != NULL);
	if (!d)
		goto out;
	di = (unsigned int)(d - r->dev);
	CHECK_EQ(d->nq, 4);
	dev_status(r, d, 0);
	dev_status(r, d, 1 | 2);
	dev_features(r, d, 0, 1u << F_STATS | 1u << F_OOM | 1u << F_REPORTING);
	dev_features(r, d, 1, 1);
	dev_status(r, d, 1 | 2 | 8);
	CHECK(dev_status_read(r, d) & 8);
	inf = bal_queue(r, d, di, 0);
	def = bal_queue(r, d, di, 1);
	sta = bal_queue(r, d, di, 2);
	rep = bal_queue(r, d, di, 3);
	dev_status(r, d, 1 | 2 | 8 | 4);

	/* The guest uses 8 MiB, then gives it back. */
	mem = guest_ptr(&r->vm.mem, BAL_GPA, BAL_PAGES * 4096ULL);
	memset(mem, 0x5a, BAL_PAGES * 4096ULL);
	before = resident_pages(r, BAL_GPA, BAL_PAGES * 4096ULL);
	for (k = 0; k < BAL_CHAINS; k++)
		post_pfns(&inf, k, first + k * (BAL_PAGES / BAL_CHAINS),
			  BAL_PAGES / BAL_CHAINS, k);
	dev_notify(r, d, 0);
	CHECK(wait_idx(&inf, BAL_CHAINS));
	after = resident_pages(r, BAL_GPA, BAL_PAGES * 4096ULL);
	printf("balloon (%s): %u pages resident, %u after inflating %u (%.0f%% released)\n",
	       pci ? "pci" : "mmio", before, after, BAL_PAGES,
	       100.0 * (before - after) / BAL_PAGES);
	CHECK_EQ(before, BAL_PAGES);
	CHECK(before - after >= BAL_PAGES * 8 / 10);
	CHECK(mem[0] == 0 && mem[BAL_PAGES * 4096ULL - 1] == 0);

	/* Deflate: the guest may use them again, and they come back. */
	post_pfns(&def, 0, first, BAL_PAGES / BAL_CHAINS, 0);
	dev_notify(r, d, 1);
	CHECK(wait_idx(&def, 1));
	memset(mem, 0x33, BAL_PAGES * 4096ULL);
	again = resident_pages(r, BAL_GPA, BAL_PAGES * 4096ULL);
	printf("balloon (%s): %u pages resident after deflate and use\n",
	       pci ? "pci" : "mmio", again);
	CHECK_EQ(again, BAL_PAGES);

	/* PFNs outside guest RAM: counted, ignored, no reset needed. */
	post_pfns(&inf, 0, 0x100000, 4, BAL_CHAINS);	/* 4 GiB up */
	dev_notify(r, d, 0);
	CHECK(wait_idx(&inf, BAL_CHAINS + 1));
	CHECK_EQ(lkvm_balloon_stats(&r->vm, &st), 0);
	CHECK_EQ(st.inflated_pages, BAL_PAGES);
	CHECK_EQ(st.deflated_pages, BAL_PAGES / BAL_CHAINS);
	CHECK_EQ(st.bad_pfns, 4);
	CHECK(!(dev_status_read(r, d) & 0x40));

	/* Statistics: held, read, handed back when asked for. */
	post_stats(&sta, 12345 * 4096ULL, 0);
	dev_notify(r, d, 2);
	CHECK(wait_stats(r, 1, &st));
	CHECK_EQ(st.free_memory, 12345 * 4096ULL);
	CHECK_EQ(st.total_memory, 64 * MiB);
	CHECK_EQ(st.available_memory, 12345 * 2048ULL);
	CHECK(wait_idx(&sta, 1));	/* that call asked for fresh ones */
	post_stats(&sta, 777 * 4096ULL, 1);
	dev_notify(r, d, 2);
	CHECK(wait_stats(r, 2, &st));
	CHECK_EQ(st.free_memory, 777 * 4096ULL);

	/* Free page reporting: the range goes back to the host. */
	mem = guest_ptr(&r->vm.mem, BAL_REPORT_GPA, BAL_REPORT_LEN);
	memset(mem, 0x77, BAL_REPORT_LEN);
	before = resident_pages(r, BAL_REPORT_GPA, BAL_REPORT_LEN);
	{
		struct desc *dt = (struct desc *)(rep.hva + R_DESC);
		volatile uint16_t *avail = (uint16_t *)(rep.hva + R_AVAIL);

		dt[0] = (struct desc){ BAL_REPORT_GPA, BAL_REPORT_LEN, 2, 0 };
		avail[2] = 0;
		__atomic_store_n(&avail[1], 1, __ATOMIC_RELEASE);
	}
	dev_notify(r, d, 3);
	CHECK(wait_idx(&rep, 1));
	after = resident_pages(r, BAL_REPORT_GPA, BAL_REPORT_LEN);
	printf("balloon (%s): reporting %u free pages: %u resident after\n",
	       pci ? "pci" : "mmio", before, after);
	CHECK_EQ(after, 0);
	CHECK_EQ(lkvm_balloon_stats(&r->vm, &st), 0);
	CHECK_EQ(st.reported_bytes, BAL_REPORT_LEN);

	/* The target, and the guest's answer in actual. */
	CHECK_EQ(lkvm_balloon_set(&r->vm, 1000), 0);
	dev_config(r, d, 0, false, 0);
	CHECK_EQ(r->pci ? bus_r(r, d->bar0 + VPCI_DEVICE, 4) :
			  bus_r(r, d->mmio + MM_CONFIG, 4), 1000);
	if (!r->pci)
		CHECK(bus_r(r, d->mmio + 0x060, 4) & 2);	/* config change */
	dev_config(r, d, 4, true, 900);
	dev_config(r, d, 0, true, 5);	/* num_pages is the host's */
	CHECK_EQ(lkvm_balloon_stats(&r->vm, &st), 0);
	CHECK_EQ(st.target_pages, 1000);
	CHECK_EQ(st.actual_pages, 900);
	CHECK_EQ(lkvm_balloon_set(&r->vm, 1ULL << 40), -EINVAL);
out:
	vdrv_destroy(r);
	free(r);
}

static void test_no_balloon(void)
{
	struct vdrv *r = calloc(1, sizeof(*r));
	struct lkvm_balloon_stats st;

	CHECK_EQ(vdrv_create(r, false, 1), 0);
	CHECK_EQ(lkvm_balloon_set(&r->vm, 1), -ENODEV);
	CHECK_EQ(lkvm_balloon_stats(&r->vm, &st), -ENODEV);
	vdrv_destroy(r);
	free(r);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_balloon(false);
	test_balloon(true);
	test_no_balloon();
	return test_done();
}
