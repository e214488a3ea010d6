/*
 * export.c - the `lkvm export` command: its options, the control socket
 * (`lkvm list` shows the export, `lkvm stop` ends it), signals, and the
 * exit status.  The export itself is fs/export.c.
 *
 * Threads: all of this runs on the main thread, which sleeps in poll()
 * on a signalfd, the export's end eventfd and the control socket.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "lkvm/cli/cli.h"
#include "lkvm/fs/export.h"
#include "lkvm/lib/ctlsock.h"
#include "lkvm/lib/util.h"

const char cli_export_usage[] =
	"usage: lkvm export IMAGE MOUNTPOINT [options]\n"
	"\n"
	"Serves IMAGE's guest-visible contents (raw or qcow2, with its\n"
	"backing chain) as the regular file MOUNTPOINT, made if missing,\n"
	"until SIGINT, SIGTERM, `lkvm stop NAME` or an unmount.  Needs root.\n"
	"\n"
	"      --ro              read-only (the image is locked shared)\n"
	"      --threads N       workers, each with its own /dev/fuse queue\n"
	"                        (default: one per host CPU)\n"
	"      --format raw|qcow2  (default: probed)\n"
	"      --cache MODE      the image's host cache: writeback (default),\n"
	"                        none (O_DIRECT) or unsafe (no flushes)\n"
	"      --allow-other     other users may open the file (its mode\n"
	"                        bits still apply)\n"
	"      --name NAME       the control socket's name (default export-PID)\n"
	"      --no-control      no control socket\n";

struct export_cli {
	struct fsx_opts o;
	const char *name;
	bool control;
	char namebuf[CTL_NAME_MAX + 1];
	struct timespec t0;
	bool stop;
	struct fsx *x;
};

/* 0, or LKVM_STATUS_USAGE after a message; help: printed, *done set. */
static int parse_args(int argc, char **argv, struct export_cli *c, bool *done)
{
	static const struct option opts[] = {
		{ "ro", no_argument, NULL, 'r' },
		{ "threads", required_argument, NULL, 't' },
		{ "format", required_argument, NULL, 'f' },
		{ "cache", required_argument, NULL, 'c' },
		{ "allow-other", no_argument, NULL, 'a' },
		{ "name", required_argument, NULL, 'n' },
		{ "no-control", no_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *pos[2];
	unsigned int npos = 0;
	uint64_t v;
	int ch;

	*done = false;
	c->control = true;
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "-hn:", opts, NULL)) != -1) {
		switch (ch) {
		case 1:
			if (npos == 2) {
				fprintf(stderr, "lkvm: export: unexpected argument '%s'\n",
					optarg);
				return LKVM_STATUS_USAGE;
			}
			pos[npos++] = optarg;
			break;
		case 'r':
			c->o.ro = true;
			break;
		case 't':
			if (parse_uint(optarg, 1, 64, &v)) {
				fprintf(stderr, "lkvm: export: --threads %s: want 1 to 64\n",
					optarg);
				return LKVM_STATUS_USAGE;
			}
			c->o.threads = v;
			break;
		case 'f':
			if (strcmp(optarg, "raw") && strcmp(optarg, "qcow2")) {
				fprintf(stderr, "lkvm: export: --format %s: want raw or qcow2\n",
					optarg);
				return LKVM_STATUS_USAGE;
			}
			c->o.format = optarg;
			break;
		case 'c':
			c->o.cache_set = true;
			if (!strcmp(optarg, "writeback")) {
				c->o.cache = DISK_CACHE_WRITEBACK;
			} else if (!strcmp(optarg, "none")) {
				c->o.cache = DISK_CACHE_NONE;
			} else if (!strcmp(optarg, "unsafe")) {
				c->o.cache = DISK_CACHE_UNSAFE;
			} else {
				fprintf(stderr, "lkvm: export: --cache %s: want writeback, none or unsafe\n",
					optarg);
				return LKVM_STATUS_USAGE;
			}
			break;
		case 'a':
			c->o.allow_other = true;
			break;
		case 'n':
			if (!ctl_name_valid(optarg)) {
				fprintf(stderr, "lkvm: export: --name %s: want 1 to 64 of [A-Za-z0-9._+-], no leading dot\n",
					optarg);
				return LKVM_STATUS_USAGE;
			}
			c->name = optarg;
			break;
		case 'N':
			c->control = false;
			break;
		case 'h':
			fputs(cli_export_usage, stdout);
			*done = true;
			return 0;
		default:
			fprintf(stderr, "lkvm: export: unknown option '%s' (try 'lkvm export --help')\n",
				argv[optind - 1]);
			return LKVM_STATUS_USAGE;
		}
	}
	if (npos != 2) {
		fprintf(stderr, "lkvm: export: want IMAGE and MOUNTPOINT (try 'lkvm export --help')\n");
		return LKVM_STATUS_USAGE;
	}
	c->o.image = pos[0];
	c->o.mountpoint = pos[1];
	if (!c->name) {
		snprintf(c->namebuf, sizeof(c->namebuf), "export-%d", (int)getpid());
		c->name = c->namebuf;
	}
	return 0;
}

/* The control socket: info (for lkvm list), stat and stop. */
static int ctl_request(void *opaque, const struct ctl_request *req,
		       struct ctl_reply *rep, char *msg, size_t msglen)
{
	struct export_cli *c = opaque;
	struct fsx_stats st;
	struct timespec now;
	unsigned long long up;
	unsigned int i;

	clock_gettime(CLOCK_MONOTONIC, &now);
	up = (now.tv_sec - c->t0.tv_sec) * 1000ULL +
	     (now.tv_nsec - c->t0.tv_nsec) / 1000000;
	fsx_stats(c->x, -1, &st);
	if (!strcmp(req->argv[0], "info") && req->argc == 1) {
		ctl_reply_printf(rep,
				 "vm proto=1 name=%s pid=%d state=exporting cpus=0 mem_mib=0 uptime_ms=%llu paused_ms=0 devices=export\n",
				 c->name, (int)getpid(), up);
		return 0;
	}
	if (!strcmp(req->argv[0], "stat") && req->argc == 1) {
		ctl_reply_printf(rep,
				 "export name=%s threads=%u size=%llu reads=%llu writes=%llu flushes=%llu zeroes=%llu bytes_read=%llu bytes_written=%llu errors=%llu malformed=%llu uptime_ms=%llu\n",
				 c->name, st.threads, (unsigned long long)st.size,
				 (unsigned long long)st.reads,
				 (unsigned long long)st.writes,
				 (unsigned long long)st.flushes,
				 (unsigned long long)st.zeroes,
				 (unsigned long long)st.bytes_read,
				 (unsigned long long)st.bytes_written,
				 (unsigned long long)st.errors,
				 (unsigned long long)st.bad, up);
		for (i = 0; i < st.threads; i++) {
			struct fsx_stats w;

			fsx_stats(c->x, i, &w);
			ctl_reply_printf(rep,
					 "worker name=fsx-%u reads=%llu writes=%llu flushes=%llu zeroes=%llu errors=%llu cpu_ns=%llu\n",
					 i, (unsigned long long)w.reads,
					 (unsigned long long)w.writes,
					 (unsigned long long)w.flushes,
					 (unsigned long long)w.zeroes,
					 (unsigned long long)w.errors,
					 (unsigned long long)w.cpu_ns);
		}
		return 0;
	}
	if (!strcmp(req->argv[0], "stop") && req->argc == 1) {
		c->stop = true;
		return 0;
	}
	snprintf(msg, msglen, "an export does not do '%s'", req->argv[0]);
	return -EOPNOTSUPP;
}

static const struct ctl_ops export_ctl_ops = { .request = ctl_request };

int cli_export_main(int argc, char **argv)
{
	struct export_cli c = { 0 };
	struct ctl_server *ctl = NULL;
	struct pollfd pfd[3];
	char err[512], dir[256];
	sigset_t sigs;
	bool done;
	int ret, sfd, n;

	ret = parse_args(argc, argv, &c, &done);
	if (ret || done)
		return ret;
	/* Signals arrive as reads; the workers never see them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	clock_gettime(CLOCK_MONOTONIC, &c.t0);
	ret = fsx_open(&c.x, &c.o, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "lkvm: export: %s\n", err);
		return LKVM_STATUS_USAGE;
	}
	if (c.control && ctl_default_dir(dir, sizeof(dir)) >= 0) {
		ret = ctl_server_open(dir, c.name, &export_ctl_ops, &c, &ctl,
				      err, sizeof(err));
		if (ret) {
			fprintf(stderr, "lkvm: export: no control socket: %s\n", err);
			ctl = NULL;
		}
	}
	printf("lkvm: exporting %s at %s (%u threads)\n", c.o.image,
	       c.o.mountpoint, c.o.threads ? c.o.threads :
	       (unsigned int)MIN(sysconf(_SC_NPROCESSORS_ONLN), 64));
	fflush(stdout);
	while (!c.stop) {
		pfd[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = fsx_end_fd(c.x), .events = POLLIN };
		pfd[2] = (struct pollfd){ .fd = ctl ? ctl_server_fd(ctl) : -1,
					  .events = POLLIN };
		n = poll(pfd, 3, -1);
		if (n < 0 && errno != EINTR)
			break;
		if (pfd[0].revents || pfd[1].revents)
			break;
		if (pfd[2].revents)
			ctl_server_serve(ctl);
	}
	if (ctl)
		ctl_server_close(ctl);
	ret = fsx_close(c.x);
	if (sfd >= 0)
		close(sfd);
	if (ret) {
		fprintf(stderr, "lkvm: export: the final flush failed: %s\n",
			strerror(-ret));
		return LKVM_STATUS_ERROR;
	}
	return LKVM_STATUS_OK;
}
