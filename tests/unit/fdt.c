/*
 * Tests vmm/fdt.c: the blob's header and blocks, string sharing, cell
 * byte order, errors for unbalanced trees; then dtc (when installed)
 * must decompile a VM-like tree without errors or warnings.
 */
#include <errno.h>
#include <unistd.h>

#include "lkvm/lib/fdt.h"
#include "test.h"

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
}

/* Walks the structure block; counts nodes/props, checks nesting. */
static int walk(const uint8_t *b, long size, int *nodes, int *props)
{
	uint32_t off = be32(b + 8), strs = be32(b + 12), slen = be32(b + 36);
	uint32_t end = off + slen;
	int depth = 0;

	*nodes = *props = 0;
	while (off + 4 <= end) {
		uint32_t tok = be32(b + off);

		off += 4;
		if (tok == 1) {
			size_t n = strnlen((const char *)b + off, end - off);

			off += (n + 4) & ~3u;
			depth++;
			(*nodes)++;
		} else if (tok == 2) {
			if (--depth < 0)
				return -1;
		} else if (tok == 3) {
			uint32_t len = be32(b + off), name = be32(b + off + 4);

			if (strs + name >= (uint32_t)size)
				return -1;
			off += 8 + ((len + 3) & ~3u);
			(*props)++;
		} else if (tok == 9) {
			return depth == 0 && off == end ? 0 : -1;
		} else {
			return -1;
		}
	}
	return -1;
}

static void vm_like(struct fdt *f)
{
	uint32_t reg[4] = { 0, 0x80000000, 0, 0x10000000 };
	uint32_t irq[3] = { 0, 1, 4 };

	fdt_begin_node(f, "");
	fdt_prop_string(f, "compatible", "linux,dummy-virt");
	fdt_prop_u32(f, "#address-cells", 2);
	fdt_prop_u32(f, "#size-cells", 2);
	fdt_prop_u32(f, "interrupt-parent", 1);
	fdt_begin_node(f, "chosen");
	fdt_prop_string(f, "bootargs", "console=ttyS0");
	fdt_prop_u64(f, "linux,initrd-start", 0x84000000);
	fdt_prop_u64(f, "linux,initrd-end", 0x84100000);
	fdt_end_node(f);
	fdt_begin_node(f, "memory@80000000");
	fdt_prop_string(f, "device_type", "memory");
	fdt_prop_cells(f, "reg", reg, 4);
	fdt_end_node(f);
	fdt_begin_node(f, "intc@8000000");
	fdt_prop_string(f, "compatible", "arm,gic-v3");
	fdt_prop_u32(f, "#interrupt-cells", 3);
	fdt_prop_empty(f, "interrupt-controller");
	fdt_prop_u32(f, "#address-cells", 0);
	reg[1] = 0x08000000;
	reg[3] = 0x10000;
	fdt_prop_cells(f, "reg", reg, 4);
	fdt_prop_u32(f, "phandle", 1);
	fdt_end_node(f);
	fdt_begin_node(f, "uart@9000000");
	fdt_prop_string(f, "compatible", "ns16550a");
	reg[1] = 0x09000000;
	reg[3] = 0x1000;
	fdt_prop_cells(f, "reg", reg, 4);
	fdt_prop_cells(f, "interrupts", irq, 3);
	fdt_end_node(f);
	fdt_end_node(f);
}

int main(void)
{
	struct fdt f;
	uint8_t *b = NULL;
	int nodes, props;
	long n;

	fdt_init(&f);
	vm_like(&f);
	n = fdt_finish(&f, &b);
	CHECK(n > 40);
	CHECK_EQ(be32(b), 0xd00dfeed);
	CHECK_EQ(be32(b + 4), n);
	CHECK_EQ(be32(b + 20), 17);
	CHECK_EQ(be32(b + 24), 16);
	CHECK_EQ(be32(b + 16), 40);		/* reserve map right after */
	CHECK_EQ(be32(b + 40) | be32(b + 44) | be32(b + 48) | be32(b + 52), 0);
	CHECK_EQ(be32(b + 8), 56);
	CHECK_EQ(be32(b + 12) + be32(b + 32), n);
	CHECK_EQ(walk(b, n, &nodes, &props), 0);
	CHECK_EQ(nodes, 5);
	CHECK_EQ(props, 18);
	/* "reg" and "compatible" appear several times, stored once. */
	{
		const char *s = (const char *)b + be32(b + 12);
		uint32_t len = be32(b + 32), i, regs = 0;

		for (i = 0; i < len; i += strlen(s + i) + 1)
			regs += !strcmp(s + i, "reg") ||
				!strcmp(s + i, "compatible");
		CHECK_EQ(regs, 2);
	}
	if (access("/usr/bin/dtc", X_OK) == 0) {
		char cmd[256];
		FILE *fp = fopen("/tmp/lkvm-fdt-test.dtb", "wb");
		int rc;

		CHECK(fp && fwrite(b, 1, n, fp) == (size_t)n);
		if (fp)
			fclose(fp);
		snprintf(cmd, sizeof(cmd), "dtc -I dtb -O dts -o /dev/null "
			 "/tmp/lkvm-fdt-test.dtb 2> /tmp/lkvm-fdt-test.err");
		rc = system(cmd);
		CHECK_EQ(rc, 0);
		fp = fopen("/tmp/lkvm-fdt-test.err", "r");
		CHECK(fp && fgetc(fp) == EOF);	/* not even a warning */
		if (fp)
			fclose(fp);
		if (system("cat /tmp/lkvm-fdt-test.err >&2")) {
			/* only shown */
		}
		unlink("/tmp/lkvm-fdt-test.dtb");
		unlink("/tmp/lkvm-fdt-test.err");
	} else {
		printf("SKIP: dtc not installed; structure checked by hand only\n");
	}
	free(b);

	/* Unbalanced trees and properties outside nodes are errors. */
	fdt_init(&f);
	fdt_begin_node(&f, "");
	CHECK_EQ(fdt_finish(&f, &b), -EINVAL);
	fdt_init(&f);
	fdt_begin_node(&f, "");
	fdt_end_node(&f);
	fdt_end_node(&f);
	CHECK_EQ(fdt_finish(&f, &b), -EINVAL);
	fdt_init(&f);
	fdt_prop_u32(&f, "x", 1);
	CHECK_EQ(fdt_finish(&f, &b), -EINVAL);
	/* A big tree: growth of both blocks. */
	{
		char name[32];
		int i;

		fdt_init(&f);
		fdt_begin_node(&f, "");
		for (i = 0; i < 2000; i++) {
			snprintf(name, sizeof(name), "n@%x", i);
			fdt_begin_node(&f, name);
			snprintf(name, sizeof(name), "p%d", i % 300);
			fdt_prop_u32(&f, name, i);
			fdt_end_node(&f);
		}
		fdt_end_node(&f);
		n = fdt_finish(&f, &b);
		CHECK(n > 0);
		CHECK_EQ(walk(b, n, &nodes, &props), 0);
		CHECK_EQ(nodes, 2001);
		CHECK_EQ(props, 2000);
		free(b);
	}
	return test_done();
}
