/* Tests vmm/cli.c: "lkvm run" option parsing and exit-status mapping. */
#include <errno.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lkvm/cli/cli.h"
#include "test.h"

static char kernel[64];

/* Parses a NULL-terminated list of arguments after "run". */
static int parse(struct cli_run *r, char *err, const char *first, ...)
{
	char *argv[32] = { "run" };
	const char *a;
	va_list ap;
	int argc = 1, ret;

	va_start(ap, first);
	for (a = first; a && argc < 31; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	ret = cli_parse_run(argc, argv, r, err, 256);
	return ret;
}

static void test_good(void)
{
	struct cli_run r;
	char err[256];

	CHECK_EQ(parse(&r, err, "-k", kernel, "-m", "512M", "-c", "4", "-p",
		       "console=ttyS0", "--name", "t1", "-d", "a.img", "--disk",
		       "b.img,ro", "--timeout", "2.5", "--log", "/tmp/x",
		       "--stats", "--console", "serial", NULL), 0);
	CHECK(r.cfg.kernel == kernel || !strcmp(r.cfg.kernel, kernel));
	CHECK_EQ(r.cfg.mem_mib, 512);
	CHECK_EQ(r.cfg.cpus, 4);
	CHECK(!strcmp(r.cfg.cmdline, "console=ttyS0"));
	CHECK(!strcmp(r.cfg.name, "t1"));
	CHECK_EQ(r.cfg.ndisks, 2);
	CHECK(!strcmp(r.cfg.disks[1], "b.img,ro"));
	CHECK_EQ(r.cfg.timeout_ms, 2500);
	CHECK(r.stats);
	CHECK(!strcmp(r.log_path, "/tmp/x"));
	cli_run_free(&r);

	CHECK_EQ(parse(&r, err, "--kernel=", NULL), -ENOENT);
	cli_run_free(&r);
	CHECK_EQ(parse(&r, err, "--kernel", kernel, "--mem=2G", "--cpus=1",
		       NULL), 0);
	CHECK_EQ(r.cfg.mem_mib, 2048);
	CHECK_EQ(r.cfg.timeout_ms, 0);
	cli_run_free(&r);
	/* Plain numbers are MiB, as in kvmtool. */
	CHECK_EQ(parse(&r, err, "-k", kernel, "-m", "64", NULL), 0);
	CHECK_EQ(r.cfg.mem_mib, 64);
	cli_run_free(&r);
	CHECK_EQ(parse(&r, err, "--help", NULL), 0);
	CHECK(r.help);
	cli_run_free(&r);
	/* Memory backing, halt polling, arm64 features. */
	CHECK_EQ(r.cfg.halt_poll_us, -1);
	CHECK_EQ(parse(&r, err, "-k", kernel, "--hugetlbfs", "/dev/hugepages",
		       "--halt-poll", "20", "--disable-sve", "--no-pmu",
		       "--no-pvtime", "--disable-ptrauth", NULL), 0);
	CHECK_EQ(r.cfg.ram_backing, LKVM_RAM_HUGETLBFS);
	CHECK(!strcmp(r.cfg.hugetlbfs, "/dev/hugepages"));
	CHECK_EQ(r.cfg.halt_poll_us, 20);
	CHECK(r.cfg.no_sve && r.cfg.no_pmu && r.cfg.no_pvtime &&
	      r.cfg.no_ptrauth);
	cli_run_free(&r);
	CHECK_EQ(parse(&r, err, "-k", kernel, "--memfd", "--no-pmu", "--pmu",
		       "--halt-poll", "auto", NULL), 0);
	CHECK_EQ(r.cfg.ram_backing, LKVM_RAM_MEMFD);
	CHECK_EQ(r.cfg.no_pmu, 0);
	CHECK_EQ(r.cfg.halt_poll_us, -1);
	CHECK_EQ(r.cfg.no_sve, 0);
	cli_run_free(&r);
}

static void expect_error(const char *why, int want, const char *contains,
			 const char *a1, const char *a2, const char *a3,
			 const char *a4)
{
	struct cli_run r;
	char err[256] = "";
	int ret = parse(&r, err, a1, a2, a3, a4, NULL);

	CHECK_EQ(ret, want);
	if (!strstr(err, contains) || strchr(err, '\n')) {
		test_failed++;
		fprintf(stderr, "FAIL %s: message '%s' lacks '%s'\n", why, err,
			contains);
	} else {
		test_passed++;
	}
	cli_run_free(&r);
}

/* kvmtool's conveniences: a bare kernel, the host's kernel, --nodefaults. */
static void test_kernel_args(void)
{
	char dir[64], path[128], err[256];
	struct cli_run r;
	FILE *f;

	CHECK_EQ(parse(&r, err, kernel, "-m", "64", NULL), 0);
	CHECK(r.cfg.kernel && !strcmp(r.cfg.kernel, kernel));
	cli_run_free(&r);
	CHECK_EQ(parse(&r, err, "-m", "64", kernel, "--nodefaults", NULL), 0);
	CHECK(r.cfg.kernel && !strcmp(r.cfg.kernel, kernel) &&
	      r.cfg.nodefaults == 1 && !r.host_kernel);
	cli_run_free(&r);
	/* No kernel named: the host's vmlinuz from the boot directory. */
	snprintf(dir, sizeof(dir), "/tmp/lkvm-boot-%d", (int)getpid());
	mkdir(dir, 0700);
	snprintf(path, sizeof(path), "%s/vmlinuz", dir);
	f = fopen(path, "w");
	if (f)
		fclose(f);
	setenv("LKVM_BOOT_DIR", dir, 1);
	CHECK_EQ(parse(&r, err, "-m", "64", NULL), 0);
	CHECK(r.host_kernel && !strcmp(r.host_kernel, path) &&
	      r.cfg.kernel == r.host_kernel);
	cli_run_free(&r);
	unsetenv("LKVM_BOOT_DIR");
	unlink(path);
	rmdir(dir);
}

static void test_bad(void)
{
	expect_error("unknown", -EINVAL, "unknown option --frobnicate",
		     "-k", kernel, "--frobnicate", NULL);
	expect_error("unknown short", -EINVAL, "unknown option", "-k", kernel,
		     "-z", NULL);
	expect_error("missing arg", -EINVAL, "needs an argument", "-k",
		     kernel, "-m", NULL);
	expect_error("bad mem", -EINVAL, "bad memory size", "-k", kernel,
		     "-m", "lots");
	expect_error("zero mem", -EINVAL, "bad memory size", "-k", kernel,
		     "-m", "0");
	expect_error("huge mem", -EINVAL, "bad memory size", "-k", kernel,
		     "-m", "99999999999999999999G");
	/* The count's range is the arch's, said once by the library. */
	expect_error("cpus huge", -EINVAL, "bad CPU count", "-k", kernel,
		     "-c", "99999999999");
	expect_error("cpus word", -EINVAL, "bad CPU count", "-k", kernel,
		     "-c", "two");
	expect_error("cpus neg", -EINVAL, "bad CPU count", "-k", kernel,
		     "-c", "-2");
	setenv("LKVM_BOOT_DIR", "/nonexistent", 1);
	expect_error("no kernel", -EINVAL, "no kernel", "-m", "64", NULL,
		     NULL);
	unsetenv("LKVM_BOOT_DIR");
	expect_error("missing kernel", -ENOENT, "cannot read kernel", "-k",
		     "/nonexistent/bzImage", NULL, NULL);
	expect_error("missing initrd", -ENOENT, "cannot read initrd", "-k",
		     kernel, "-i", "/nonexistent/initrd");
	expect_error("bad timeout", -EINVAL, "bad timeout", "-k", kernel,
		     "--timeout", "soon");
	expect_error("zero timeout", -EINVAL, "bad timeout", "-k", kernel,
		     "--timeout", "0");
	expect_error("timeout digits", -EINVAL, "bad timeout", "-k", kernel,
		     "--timeout", "1.2345");
	expect_error("console", -EINVAL, "unsupported console", "-k", kernel,
		     "--console", "vga");
	expect_error("stray", -EINVAL, "unexpected argument", "-k", kernel,
		     "extra", NULL);
	expect_error("empty disk", -EINVAL, "empty --disk", "-k", kernel,
		     "-d", "");
	expect_error("halt poll", -EINVAL, "bad --halt-poll", "-k", kernel,
		     "--halt-poll", "fast");
	expect_error("halt poll big", -EINVAL, "bad --halt-poll", "-k", kernel,
		     "--halt-poll", "1000001");
	expect_error("hugetlbfs empty", -EINVAL, "needs the mount", "-k",
		     kernel, "--hugetlbfs", "");
}

static void test_status(void)
{
	struct lkvm_result r = { 0 };

	r.reason = LKVM_EXIT_POWEROFF;
	CHECK_EQ(cli_exit_status(&r, 0), 0);
	r.reason = LKVM_EXIT_RESET;
	CHECK_EQ(cli_exit_status(&r, 0), 0);
	r.reason = LKVM_EXIT_DEBUG;
	r.status = 42;
	CHECK_EQ(cli_exit_status(&r, 0), 42);
	/* --exit-code-offset: a guest's 1 is not lkvm's error status. */
	r.status = 1;
	CHECK_EQ(cli_exit_status(&r, 100), 101);
	r.status = 200;
	CHECK_EQ(cli_exit_status(&r, 100), 44);
	r.reason = LKVM_EXIT_PANIC;
	CHECK_EQ(cli_exit_status(&r, 0), LKVM_STATUS_PANIC);
	r.reason = LKVM_EXIT_TIMEOUT;
	CHECK_EQ(cli_exit_status(&r, 0), LKVM_STATUS_TIMEOUT);
	r.reason = LKVM_EXIT_ERROR;
	CHECK_EQ(cli_exit_status(&r, 0), 1);
	CHECK(strcmp(lkvm_exit_reason_name(LKVM_EXIT_PANIC), "panic") == 0);
	CHECK(strcmp(lkvm_exit_reason_name(99), "unknown") == 0);
}

int main(void)
{
	int fd;

	strcpy(kernel, "/tmp/lkvm-cli-test-XXXXXX");
	fd = mkstemp(kernel);
	if (fd < 0)
		return 1;
	close(fd);
	test_good();
	test_kernel_args();
	test_bad();
	test_status();
	unlink(kernel);
	return test_done();
}
