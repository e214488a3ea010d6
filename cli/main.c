/*
 * main.c - the lkvm program: commands, the console terminal, signals and
 * exit statuses around the embedding API.  The only place in lkvm that
 * prints to stderr or exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "lkvm.h"
#include "lkvm/cli/cli.h"

/* Signal handlers can reach nothing else: one VM per lkvm process. */
static struct lkvm *signal_vm;
static volatile sig_atomic_t signal_seen;

static void on_signal(int sig)
{
	signal_seen = sig;
	if (signal_vm)
		lkvm_stop(signal_vm);
}

static void log_to_stderr(void *opaque, enum lkvm_log_level level,
			  const char *msg)
{
	static const char *const names[] = { "error", "warning", "info",
					     "debug" };

	(void)opaque;
	fprintf(stderr, "lkvm: %s: %s\n", names[level], msg);
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* A console reader that goes away must not kill the VMM. */
	signal(SIGPIPE, SIG_IGN);
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1e3 + (t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Peak resident set of this process, from the kernel's high-water mark. */
static long peak_rss_kib(void)
{
	char line[128];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static void report(const struct lkvm_result *res)
{
	switch (res->reason) {
	case LKVM_EXIT_ERROR:
	case LKVM_EXIT_TIMEOUT:
	case LKVM_EXIT_PANIC:
		fprintf(stderr, "lkvm: %s\n", res->message);
		break;
	default:
		break;
	}
}

/* One line per I/O thread: CPU, sleeps and the polling figures. */
static void report_threads(struct lkvm *vm)
{
	struct lkvm_thread_stats t;
	unsigned int i;

	for (i = 0; lkvm_thread_stats(vm, i, &t) == 0; i++) {
		uint64_t tries = t.poll_hits + t.poll_misses;

		fprintf(stderr,
			"lkvm: thread %s: cpu %.1f ms, sleeps %llu; poll %s "
			"window %.1f us (cap %.1f), hits %llu of %llu (%.0f%%)\n",
			t.name, t.cpu_ns / 1e6, (unsigned long long)t.sleeps,
			t.poll_adaptive ? "auto" : "fixed", t.poll_ns / 1e3,
			t.poll_max_ns / 1e3, (unsigned long long)t.poll_hits,
			(unsigned long long)tries,
			tries ? 100.0 * t.poll_hits / tries : 0.0);
	}
}

static void report_stats(const struct lkvm_stats *st, double create_ms,
			 double run_ms, double destroy_ms)
{
	fprintf(stderr,
		"lkvm: memory: %llu MiB %s, %llu MiB in huge pages\n",
		(unsigned long long)(st->ram_bytes >> 20), st->ram_backing,
		(unsigned long long)(st->ram_huge_bytes >> 20));
	fprintf(stderr,
		"lkvm: exits: io %llu mmio %llu intr %llu other %llu "
		"notify %llu; unhandled: pio %llu mmio %llu\n",
		(unsigned long long)st->exits_io,
		(unsigned long long)st->exits_mmio,
		(unsigned long long)st->exits_intr,
		(unsigned long long)st->exits_other,
		(unsigned long long)st->exits_notify,
		(unsigned long long)st->pio_unhandled,
		(unsigned long long)st->mmio_unhandled);
	fprintf(stderr,
		"lkvm: time: create %.2f ms, run %.2f ms, destroy %.2f ms; "
		"peak RSS %ld KiB\n",
		create_ms, run_ms, destroy_ms, peak_rss_kib());
}

static int cmd_run(int argc, char **argv)
{
	struct termios saved;
	struct timespec t0;
	double create_ms, run_ms;
	struct lkvm_stats st;
	struct lkvm_result res;
	struct cli_run r;
	struct lkvm *vm;
	char err[512];
	bool raw = false;
	int ret, status, log_fd = -1;

	ret = cli_parse_run(argc, argv, &r, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "lkvm run: %s\n", err);
		cli_run_free(&r);
		return LKVM_STATUS_USAGE;
	}
	if (r.help) {
		cli_run_usage_print(stdout);
		cli_run_free(&r);
		return LKVM_STATUS_OK;
	}
	if (r.host_kernel)
		fprintf(stderr, "lkvm run: no kernel given; booting the host's %s\n",
			r.host_kernel);
	if (r.log_path) {
		log_fd = open(r.log_path, O_WRONLY | O_CREAT | O_TRUNC |
			      O_CLOEXEC, 0644);
		if (log_fd < 0) {
			fprintf(stderr, "lkvm run: cannot open log '%s': %s\n",
				r.log_path, strerror(errno));
			cli_run_free(&r);
			return LKVM_STATUS_USAGE;
		}
	}
	r.cfg.console_in = fcntl(STDIN_FILENO, F_GETFL) < 0 ? -1 : STDIN_FILENO;
	r.cfg.console_out = STDOUT_FILENO;
	r.cfg.console_log = log_fd;
	r.cfg.log = log_to_stderr;
	/* Ctrl-A x leaves an interactive console, whose ^C goes to the guest. */
	r.cfg.console_escape = r.cfg.console_in >= 0 && isatty(STDIN_FILENO);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = lkvm_create(&r.cfg, &vm, err, sizeof(err));
	create_ms = ms_since(&t0);
	if (ret) {
		fprintf(stderr, "lkvm run: %s\n", err);
		/* The library says whose fault it was, not the errno. */
		status = lkvm_error_kind(ret) == LKVM_ERROR_CONFIG ?
			 LKVM_STATUS_USAGE : LKVM_STATUS_ERROR;
		goto out;
	}
	signal_vm = vm;
	install_signals();
	if (r.cfg.console_escape && term_raw(STDIN_FILENO, &saved) == 0)
		raw = true;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = lkvm_run(vm, &res);
	run_ms = ms_since(&t0);
	if (raw)
		term_restore(STDIN_FILENO, &saved);
	signal_vm = NULL;
	if (ret) {
		fprintf(stderr, "lkvm run: %s\n", res.message);
		status = lkvm_error_kind(ret) == LKVM_ERROR_CONFIG ?
			 LKVM_STATUS_USAGE : LKVM_STATUS_ERROR;
	} else if (res.reason == LKVM_EXIT_STOPPED && signal_seen) {
		status = 128 + signal_seen;
	} else {
		report(&res);
		status = cli_exit_status(&res, r.exit_offset);
	}
	lkvm_stats(vm, &st);
	if (r.stats)
		report_threads(vm);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	lkvm_destroy(vm);
	if (r.stats)
		report_stats(&st, create_ms, run_ms, ms_since(&t0));
out:
	if (log_fd >= 0)
		close(log_fd);
	cli_run_free(&r);
	return status;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (!cmd) {
		fputs("lkvm: no command given (try 'lkvm help')\n", stderr);
		return LKVM_STATUS_USAGE;
	}
	if (!strcmp(cmd, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (cli_is_ctl_command(cmd))
		return cli_ctl_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "export"))
		return cli_export_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("lkvm %s\n", LKVM_VERSION);
		return LKVM_STATUS_OK;
	}
	if (!strcmp(cmd, "help") && argc > 2 && !strcmp(argv[2], "run")) {
		cli_run_usage_print(stdout);
		return LKVM_STATUS_OK;
	}
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") ||
	    !strcmp(cmd, "-h")) {
		fputs(cli_usage, stdout);
		return LKVM_STATUS_OK;
	}
	fprintf(stderr, "lkvm: unknown command '%s' (try 'lkvm help')\n", cmd);
	return LKVM_STATUS_USAGE;
}
