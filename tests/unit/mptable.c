/* Tests x86/mptable.c and x86/e820.c: the tables guests parse. */
#include <errno.h>

#include "lkvm/lib/util.h"
#include "lkvm/x86/e820.h"
#include "lkvm/x86/layout.h"
#include "lkvm/x86/mptable.h"
#include "test.h"

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return s;
}

static void test_mptable(unsigned int ncpus)
{
	struct mptable_pci_irq irq = { .slot = 3, .pin = 1, .ioapic_pin = 19 };
	struct mptable_params p = { .ncpus = ncpus, .cpu_signature = 0x806f8,
				    .cpu_features = 0x201, .pci_irqs = &irq,
				    .npci_irqs = 1 };
	static uint8_t buf[65536];
	const uint8_t *t, *e;
	unsigned int i, n, cpus = 0, bsp = 0, ioints = 0, lints = 0;
	uint32_t ptr;
	int len;

	len = mptable_build(buf, sizeof(buf), 0xf0000, &p);
	CHECK(len > 60);
	CHECK(!memcmp(buf, "_MP_", 4));
	CHECK_EQ(sum(buf, 16), 0);
	memcpy(&ptr, buf + 4, 4);
	CHECK_EQ(ptr, 0xf0010);
	t = buf + 16;
	CHECK(!memcmp(t, "PCMP", 4));
	CHECK_EQ(t[4] | t[5] << 8, len - 16);
	CHECK_EQ(sum(t, len - 16), 0);
	n = t[34] | t[35] << 8;
	e = t + 44;
	for (i = 0; i < n; i++) {
		switch (e[0]) {
		case 0:
			CHECK_EQ(e[1], cpus);	/* APIC IDs 0..n-1 */
			cpus++;
			bsp += !!(e[3] & 2);
			e += 20;
			break;
		case 2:
			CHECK_EQ(e[1], ncpus);	/* IOAPIC ID after CPUs */
			e += 8;
			break;
		case 3:
			ioints++;
			if (e[4] == 0) {	/* PCI bus */
				CHECK_EQ(e[5], 3 << 2);
				CHECK_EQ(e[7], 19);
				CHECK_EQ(e[2], 0x0d);	/* level, high */
			}
			e += 8;
			break;
		case 4:
			lints++;
			e += 8;
			break;
		default:
			e += 8;
			break;
		}
	}
	CHECK(e == buf + len);
	CHECK_EQ(cpus, ncpus);
	CHECK_EQ(bsp, 1);
	CHECK_EQ(ioints, 17);
	CHECK_EQ(lints, 2);
	/* Too small a buffer fails cleanly. */
	CHECK_EQ(mptable_build(buf, len - 1, 0xf0000, &p), -ENOSPC);
	CHECK_EQ(mptable_build(buf, 10, 0xf0000, &p), -ENOSPC);
}

static void test_mptable_bad(void)
{
	struct mptable_pci_irq irq = { .slot = 40, .pin = 1 };
	struct mptable_params p = { .ncpus = 0 };
	uint8_t buf[4096];

	CHECK_EQ(mptable_build(buf, sizeof(buf), 0xf0000, &p), -EINVAL);
	p.ncpus = X86_MAX_CPUS + 1;
	CHECK_EQ(mptable_build(buf, sizeof(buf), 0xf0000, &p), -EINVAL);
	p.ncpus = 1;
	p.pci_irqs = &irq;
	p.npci_irqs = 1;
	CHECK_EQ(mptable_build(buf, sizeof(buf), 0xf0000, &p), -EINVAL);
}

/* virtio-mmio lines: level-triggered, active high, pin = bus irq. */
static void test_level_lines(void)
{
	struct mptable_params p = { .ncpus = 1, .level_gsi_base = 16,
				    .nlevel_gsis = 8 };
	static uint8_t buf[4096];
	const uint8_t *e;
	unsigned int i, n, level = 0;
	int len = mptable_build(buf, sizeof(buf), 0xf0000, &p);

	CHECK(len > 0);
	n = buf[16 + 34];
	e = buf + 16 + 44;
	for (i = 0; i < n; i++) {
		if (e[0] == 3 && e[2] == 0xd) {
			CHECK_EQ(e[5], e[7]);
			CHECK(e[7] >= 16 && e[7] < 24);
			level++;
		}
		e += e[0] == 0 ? 20 : 8;
	}
	CHECK_EQ(level, 8);
	p.nlevel_gsis = 9;	/* pin 24 does not exist */
	CHECK_EQ(mptable_build(buf, sizeof(buf), 0xf0000, &p), -EINVAL);
}

static void test_e820(void)
{
	struct mem_region small[] = { { 0, 64 * MiB } };
	struct mem_region big[] = { { 0, X86_LOW_MEM_END },
				    { X86_4G, 1 * GiB } };
	struct boot_e820_entry e[8];
	struct guest_memory m;
	unsigned int n;

	CHECK_EQ(guest_memory_init(&m, small, 1, NULL), 0);
	n = e820_build(&m, e, 8);
	CHECK_EQ(n, 3);
	CHECK(e[0].addr == 0 && e[0].size == X86_EBDA_START &&
	      e[0].type == E820_TYPE_RAM);
	CHECK(e[1].addr == X86_EBDA_START &&
	      e[1].addr + e[1].size == X86_HIGH_MEM &&
	      e[1].type == E820_TYPE_RESERVED);
	CHECK(e[2].addr == X86_HIGH_MEM && e[2].size == 63 * MiB &&
	      e[2].type == E820_TYPE_RAM);
	CHECK_EQ(e820_build(&m, e, 2), 2);	/* truncates, never overflows */
	guest_memory_free(&m);

	CHECK_EQ(guest_memory_init(&m, big, 2, NULL), 0);
	n = e820_build(&m, e, 8);
	CHECK_EQ(n, 4);
	CHECK(e[2].addr + e[2].size == X86_LOW_MEM_END);
	CHECK(e[3].addr == X86_4G && e[3].size == GiB);
	guest_memory_free(&m);
}

int main(void)
{
	test_mptable(1);
	test_mptable(2);
	test_mptable(X86_MAX_CPUS);
	test_mptable_bad();
	test_level_lines();
	test_e820();
	return test_done();
}
