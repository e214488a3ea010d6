/*
 * embed - uses liblkvm the way a sandbox would: two VMs created and run
 * at the same time in one process, from two threads, each with its own
 * console pipe.  Checks that each ends with its own result and output,
 * that lkvm_stop() from a third thread stops a guest that never ends,
 * and that a VM cannot be run twice.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lkvm.h"
#include "test.h"

struct job {
	const char *kernel;
	unsigned int cpus;
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
	int ret;

	if (pipe(j->pipe))
		return -errno;
	lkvm_config_init(&cfg);
	cfg.kernel = j->kernel;
	cfg.mem_mib = 32;
	cfg.cpus = j->cpus;
	cfg.console_out = j->pipe[1];
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

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "guest/build";
	char k1[256], k2[256], k3[256];
	struct job a = { .kernel = k1, .cpus = 2 };
	struct job b = { .kernel = k2, .cpus = 1 };
	struct job c = { .kernel = k3, .cpus = 1 };
	pthread_t ta, tb, tc;

	if (access("/dev/kvm", R_OK | W_OK)) {
		printf("SKIP: /dev/kvm is not usable here\n");
		return test_done();
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

	lkvm_destroy(a.vm);
	lkvm_destroy(b.vm);
	lkvm_destroy(c.vm);
	return test_done();
}
