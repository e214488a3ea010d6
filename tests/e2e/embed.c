/*
 * embed - uses liblkvm the way a sandbox would, linked as one (against
 * liblkvm.a and lkvm.h only): three VMs created and run at the same time
 * in one process, from three threads, each with its own console pipe,
 * its own disk, rng and balloon (so each has queue threads of its own).
 * Checks that each ends with its own result and output, that
 * lkvm_stop() from another thread stops a guest that never ends, that
 * console output also reaches a callback, and that a VM cannot be run
 * twice.  Before any KVM: configurations that cannot work are refused at
 * create time as usage errors, and this program defines functions named
 * like lkvm internals (read_file, console_write), which must not clash.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lkvm.h"
#include "test.h"

/* An embedder's own functions, named like lkvm's internal ones. */
int read_file(void);
int read_file(void)
{
	return 7;
}

const char *console_write(int x);
const char *console_write(int x)
{
	return x ? "mine" : "";
}

static char cb_out[512];
static size_t cb_len;

static void console_cb(void *opaque, const void *buf, size_t len)
{
	(void)opaque;
	if (cb_len + len < sizeof(cb_out)) {
		memcpy(cb_out + cb_len, buf, len);
		cb_len += len;
	}
}

struct job {
	const char *kernel;
	unsigned int cpus;
	char disk[64];
	const char *disks[1];
	const char *devices[1];
	struct lkvm *vm;
	struct lkvm_result res;
	int run_ret;
	int pipe[2];
	char out[512];
};

static void *run_job(void *arg)
{
	struct job *j = arg;

	j->run_ret = lkvm_run(j->vm, &j->res);
	close(j->pipe[1]);
	return NULL;
}

static int create(struct job *j)
{
	struct lkvm_config cfg;
	char err[256];
	int ret, fd;

	if (pipe(j->pipe))
		return -errno;
	snprintf(j->disk, sizeof(j->disk), "/tmp/lkvm-embed-%d-%u.img",
		 getpid(), j->cpus + (unsigned int)(uintptr_t)j % 1000);
	fd = open(j->disk, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, 1 << 20)) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	close(fd);
	j->disks[0] = j->disk;
	j->devices[0] = "balloon";
	lkvm_config_init(&cfg);
	cfg.kernel = j->kernel;
	cfg.mem_mib = 32;
	cfg.cpus = j->cpus;
	cfg.console_out = j->pipe[1];
	cfg.disks = j->disks;
	cfg.ndisks = 1;
	cfg.rng = 1;
	cfg.devices = j->devices;
	cfg.ndevices = 1;
	if (j->cpus == 2) {
		cfg.console_cb = console_cb;
		cfg.console_cb_opaque = j;
	}
	ret = lkvm_create(&cfg, &j->vm, err, sizeof(err));
	if (ret)
		fprintf(stderr, "create %s: %s\n", j->kernel, err);
	return ret;
}

static void slurp(struct job *j)
{
	size_t got = 0;
	ssize_t n;

	while ((n = read(j->pipe[0], j->out + got,
			 sizeof(j->out) - 1 - got)) > 0)
		got += n;
	j->out[got] = '\0';
	close(j->pipe[0]);
}

/* Refused at create, as configuration errors, before KVM is touched. */
static void test_bad_configs(const char *kernel, const char *dir)
{
	struct lkvm_config cfg;
	struct lkvm *vm = NULL;
	char err[256];
	int ret;

	(void)dir;
	lkvm_config_init(&cfg);
	cfg.kernel = kernel;
	cfg.ndisks = 2;			/* and no disks */
	ret = lkvm_create(&cfg, &vm, err, sizeof(err));
	CHECK_EQ(lkvm_error_kind(ret), LKVM_ERROR_CONFIG);
	CHECK(strstr(err, "no specification") != NULL);

	lkvm_config_init(&cfg);
	cfg.kernel = kernel;
	cfg.console_out = 987;		/* not open */
	ret = lkvm_create(&cfg, &vm, err, sizeof(err));
	CHECK_EQ(lkvm_error_kind(ret), LKVM_ERROR_CONFIG);
	CHECK_EQ(lkvm_error_errno(ret), -EBADF);

	lkvm_config_init(&cfg);
	cfg.kernel = kernel;
	cfg.kick_signal = 5;		/* SIGTRAP: not a real-time signal */
	ret = lkvm_create(&cfg, &vm, err, sizeof(err));
	CHECK_EQ(lkvm_error_kind(ret), LKVM_ERROR_CONFIG);
	CHECK(strstr(err, "real-time") != NULL);

	lkvm_config_init(&cfg);
	cfg.kernel = kernel;
	cfg.devices = (const char *[]){ "no-such-device" };
	cfg.ndevices = 1;
	ret = lkvm_create(&cfg, &vm, err, sizeof(err));
	CHECK_EQ(lkvm_error_kind(ret), LKVM_ERROR_CONFIG);
	CHECK(strstr(err, "unknown device") != NULL);
	CHECK(vm == NULL);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "guest/build";
	char k1[256], k2[256], k3[256];
	struct job a = { .kernel = k1, .cpus = 2 };
	struct job b = { .kernel = k2, .cpus = 1 };
	struct job c = { .kernel = k3, .cpus = 1 };
	pthread_t ta, tb, tc;

	CHECK_EQ(read_file(), 7);
	CHECK(!strcmp(console_write(1), "mine"));
	test_bad_configs(k1, dir);
	if (access("/dev/kvm", R_OK | W_OK)) {
		printf("SKIP: three VMs at once: /dev/kvm is not usable here\n");
		printf("%d passed, %d failed, 1 skipped\n", test_passed,
		       test_failed);
		return test_failed ? 1 : 0;
	}
	snprintf(k1, sizeof(k1), "%s/smp.bin", dir);
	snprintf(k2, sizeof(k2), "%s/exitcode.bin", dir);
	snprintf(k3, sizeof(k3), "%s/spin.bin", dir);

	CHECK_EQ(create(&a), 0);
	CHECK_EQ(create(&b), 0);
	CHECK_EQ(create(&c), 0);
	if (!a.vm || !b.vm || !c.vm)
		return test_done();
	pthread_create(&ta, NULL, run_job, &a);
	pthread_create(&tb, NULL, run_job, &b);
	pthread_create(&tc, NULL, run_job, &c);
	slurp(&a);
	slurp(&b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	usleep(100 * 1000);
	lkvm_stop(c.vm);
	slurp(&c);
	pthread_join(tc, NULL);

	CHECK_EQ(a.run_ret, 0);
	CHECK_EQ(a.res.reason, LKVM_EXIT_DEBUG);
	CHECK_EQ(a.res.status, 0);
	CHECK(strstr(a.out, "smp: 2 of 2 CPUs online") != NULL);
	CHECK(strstr(cb_out, "smp: 2 of 2 CPUs online") != NULL);
	CHECK_EQ(b.run_ret, 0);
	CHECK_EQ(b.res.reason, LKVM_EXIT_DEBUG);
	CHECK_EQ(b.res.status, 42);
	CHECK(strstr(b.out, "status 42") != NULL);
	CHECK(strstr(b.out, "smp") == NULL);	/* consoles stay apart */
	CHECK_EQ(c.res.reason, LKVM_EXIT_STOPPED);
	CHECK(strstr(c.out, "spin: waiting forever") != NULL);

	/* A VM runs once. */
	CHECK_EQ(lkvm_run(b.vm, &b.res), -EBUSY);
	CHECK_EQ(b.res.reason, LKVM_EXIT_ERROR);

	{
		struct lkvm_balloon_stats st;

		CHECK_EQ(lkvm_balloon_stats(a.vm, &st), 0);
	}
	lkvm_destroy(a.vm);
	lkvm_destroy(b.vm);
	lkvm_destroy(c.vm);
	unlink(a.disk);
	unlink(b.disk);
	unlink(c.disk);
	return test_done();
}
