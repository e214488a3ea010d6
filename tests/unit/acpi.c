/*
 * Tests for lib/aml.c and x86/acpi.c: AML encodings checked byte by
 * byte; whole table sets checked for checksums and lengths, and
 * disassembled by iasl (acpica-tools), which must report neither errors
 * nor warnings, with the DSDT's disassembly compiled back as well; and
 * every vCPU count from 1 to 254 with 0 to 32 virtio-mmio devices.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lkvm/lib/aml.h"
#include "lkvm/x86/acpi.h"
#include "test.h"

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return s;
}

static uint32_t le32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static void test_aml(void)
{
	struct aml a;
	size_t m;
	static const uint8_t name_int[] = { 0x08, '_', 'U', 'I', 'D', 0x0b, 0x34, 0x12 };
	static const uint8_t eisaid[] = { 0x0c, 0x41, 0xd0, 0x0a, 0x03 };
	static const uint8_t root[] = { 0x5c, '_', 'S', 'B', '_' };
	static const uint8_t dual[] = { 0x5c, 0x2e, '_', 'S', 'B', '_', 'P', 'C', 'I', '0' };

	aml_init(&a);
	aml_name(&a, "_UID");
	aml_integer(&a, 0x1234);
	CHECK(a.len == sizeof(name_int) && !memcmp(a.buf, name_int, a.len));
	aml_free(&a);

	aml_eisaid(&a, "PNP0A03");
	CHECK(a.len == sizeof(eisaid) && !memcmp(a.buf, eisaid, a.len));
	aml_free(&a);

	aml_name_string(&a, "\\_SB_");
	CHECK(a.len == sizeof(root) && !memcmp(a.buf, root, a.len));
	aml_free(&a);
	aml_name_string(&a, "\\_SB_.PCI0");
	CHECK(a.len == sizeof(dual) && !memcmp(a.buf, dual, a.len));
	aml_free(&a);
	aml_name_string(&a, "S5");
	CHECK(a.len == 4 && !memcmp(a.buf, "S5__", 4));
	aml_free(&a);

	/* Integers take their shortest form. */
	aml_integer(&a, 0);
	aml_integer(&a, 1);
	aml_integer(&a, 0xff);
	aml_integer(&a, 0x10000);
	aml_integer(&a, 0x100000000ULL);
	CHECK(a.len == 1 + 1 + 2 + 5 + 9 && a.buf[0] == 0 && a.buf[1] == 1 &&
	      a.buf[2] == 0x0a && a.buf[4] == 0x0c && a.buf[9] == 0x0e);
	aml_free(&a);

	/* PkgLength: one byte below 63, two above, counting itself. */
	m = aml_package_begin(&a, 2);
	aml_integer(&a, 5);
	aml_integer(&a, 6);
	aml_end(&a, m);
	CHECK(a.len == 7 && a.buf[0] == 0x12 && a.buf[1] == 6 && a.buf[2] == 2);
	aml_free(&a);
	m = aml_package_begin(&a, 100);
	{
		unsigned int i;

		for (i = 0; i < 100; i++)
			aml_integer(&a, 0x20);
	}
	aml_end(&a, m);
	/* 1 count byte + 200 bytes + 2 PkgLength bytes = 203 = 0xcb. */
	CHECK(a.len == 1 + 2 + 1 + 200 && a.buf[1] == (0x40 | 0xb) &&
	      a.buf[2] == 0x0c);
	aml_free(&a);

	/* Bad names and IDs stick as errors. */
	aml_name(&a, "TOOLONG");
	CHECK(a.err == -EINVAL);
	aml_free(&a);
	aml_name(&a, "1ABC");
	CHECK(a.err == -EINVAL);
	aml_free(&a);
	aml_eisaid(&a, "pnp0a03");
	CHECK(a.err == -EINVAL);
	aml_free(&a);
}

static bool tables_ok(const uint8_t *buf, int used, const struct acpi_table_loc *loc,
		      unsigned int nloc)
{
	unsigned int i;

	if (used <= 0 || memcmp(buf, "RSD PTR ", 8) || sum(buf, 20) ||
	    sum(buf, 36) || nloc != 4)
		return false;
	for (i = 0; i < nloc; i++) {
		const uint8_t *t = buf + loc[i].off;

		if (loc[i].off + loc[i].len > (size_t)used ||
		    le32(t + 4) != loc[i].len || sum(t, loc[i].len) ||
		    memcmp(t, loc[i].sig, 4))
			return false;
	}
	return true;
}

/* iasl's verdict on every table: 0 if no error and no warning. */
static int iasl_check(const char *dir, const struct acpi_table_loc *loc,
		      unsigned int nloc, char *why, size_t whylen)
{
	char cmd[512];
	unsigned int i;

	for (i = 0; i < nloc; i++) {
		FILE *f;
		char line[512];
		int bad = 0;

		snprintf(cmd, sizeof(cmd),
			 "cd %s && iasl -d %s.dat 2>&1", dir, loc[i].sig);
		f = popen(cmd, "r");
		if (!f)
			return -1;
		while (fgets(line, sizeof(line), f))
			if (strstr(line, "Error") || strstr(line, "Warning") ||
			    strstr(line, "**** ")) {
				snprintf(why, whylen, "%s: %.300s", loc[i].sig, line);
				bad = 1;
			}
		if (pclose(f) != 0 || bad)
			return -1;
	}
	/* The DSDT's source compiles back without complaint. */
	snprintf(cmd, sizeof(cmd),
		 "cd %s && iasl -p recompiled DSDT.dsl 2>&1 | grep -E 'Compilation|Error|Warning'",
		 dir);
	{
		FILE *f = popen(cmd, "r");
		char line[512];
		int ok = 0;

		if (!f)
			return -1;
		while (fgets(line, sizeof(line), f)) {
			if (strstr(line, "0 Errors, 0 Warnings"))
				ok = 1;
			else
				snprintf(why, whylen, "DSDT recompiled: %.400s", line);
		}
		pclose(f);
		if (!ok)
			return -1;
	}
	return 0;
}

static void test_tables(void)
{
	static uint8_t buf[65536];
	struct acpi_mmio_dev mmio[3] = {
		{ 0xd0000000, 0x200, 16 }, { 0xd0000200, 0x200, 17 },
		{ 0xd0000400, 0x200, 16 },
	};
	struct mptable_pci_irq pci[2] = { { 1, 1, 18 }, { 2, 1, 19 } };
	struct acpi_params p = { .ncpus = 2, .mmio = mmio, .nmmio = 3,
				 .pci_irqs = pci, .npci_irqs = 2 };
	struct acpi_table_loc loc[ACPI_MAX_TABLES];
	unsigned int nloc = 0, i;
	char dir[64], path[128], why[512] = "";
	int used;

	used = acpi_build(buf, sizeof(buf), 0xe0000, &p, loc, &nloc);
	CHECK(tables_ok(buf, used, loc, nloc));
	{
		static uint8_t scratch[65536];

		CHECK(acpi_build(scratch, 100, 0xe0000, &p, NULL, NULL) == -ENOSPC);
		CHECK(acpi_build(scratch, sizeof(scratch), 0xe0008, &p, NULL,
				 NULL) == -EINVAL);
		p.ncpus = 0;
		CHECK(acpi_build(scratch, sizeof(scratch), 0xe0000, &p, NULL,
				 NULL) == -EINVAL);
		p.ncpus = 2;
	}

	if (system("command -v iasl > /dev/null 2>&1")) {
		printf("SKIP (missing tool): iasl; apt-get install -y acpica-tools\n");
		test_skipped++;
		return;
	}
	snprintf(dir, sizeof(dir), "/tmp/lkvm-acpi-%d", (int)getpid());
	mkdir(dir, 0700);
	for (i = 0; i < nloc; i++) {
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s.dat", dir, loc[i].sig);
		f = fopen(path, "wb");
		if (f) {
			fwrite(buf + loc[i].off, 1, loc[i].len, f);
			fclose(f);
		}
	}
	i = iasl_check(dir, loc, nloc, why, sizeof(why));
	if (i)
		fprintf(stderr, "iasl: %s", why);
	CHECK(i == 0);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	CHECK(system(path) == 0);
}

/* Every vCPU count and device count builds, within the space lkvm gives. */
static void test_property(void)
{
	static uint8_t buf[0x10000];
	struct acpi_mmio_dev mmio[ACPI_MAX_MMIO_DEVS];
	struct mptable_pci_irq pci[32];
	struct acpi_table_loc loc[ACPI_MAX_TABLES];
	unsigned int cpus, n, nloc, i;

	for (i = 0; i < ACPI_MAX_MMIO_DEVS; i++)
		mmio[i] = (struct acpi_mmio_dev){ 0xd0000000 + 0x200 * i, 0x200,
						  16 + i % 8 };
	for (i = 0; i < 32; i++)
		pci[i] = (struct mptable_pci_irq){ i, 1, 16 + i % 8 };
	test_case_begin("tables for 1-254 vCPUs and 0-32 devices");
	for (cpus = 1; cpus <= 254; cpus++) {
		for (n = 0; n <= ACPI_MAX_MMIO_DEVS; n += (cpus % 7) + 1) {
			struct acpi_params p = { .ncpus = cpus, .mmio = mmio,
						 .nmmio = n, .pci_irqs = pci,
						 .npci_irqs = n };
			int used = acpi_build(buf, sizeof(buf), 0xe0000, &p,
					      loc, &nloc);

			CHECK(tables_ok(buf, used, loc, nloc));
		}
	}
	{
		struct acpi_params p = { .ncpus = 255, .mmio = mmio };

		CHECK(acpi_build(buf, sizeof(buf), 0xe0000, &p, NULL, NULL) ==
		      -EINVAL);
		p.ncpus = 1;
		p.nmmio = 33;
		CHECK(acpi_build(buf, sizeof(buf), 0xe0000, &p, NULL, NULL) ==
		      -EINVAL);
	}
	test_case_end();
}

int main(void)
{
	test_aml();
	test_tables();
	test_property();
	return test_done();
}
