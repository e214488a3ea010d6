/*
 * ctl.c - the lkvm commands that talk to running VMs over their control
 * sockets: list, stop, pause, resume, stat, debug, balloon (kvmtool's
 * names and options, plus a positional NAME).  Each finds the socket in
 * the control directory, sends one request per VM and turns the
 * records that come back into a table or JSON.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lkvm/cli/cli.h"
#include "lkvm/lib/ctlsock.h"
#include "lkvm/lib/util.h"

#define MAX_RECORDS	512

/* The records of one reply, parsed (the lines are kept). */
struct reply {
	unsigned int n;
	char *lines[MAX_RECORDS];
	struct ctl_record rec[MAX_RECORDS];
};

static void reply_add(void *opaque, char *line)
{
	struct reply *r = opaque;
	char *copy;

	if (r->n == MAX_RECORDS)
		return;
	copy = strdup(line);
	if (!copy)
		return;
	/* "text LINE": free text, kept whole after the type. */
	if (!strncmp(copy, "text ", 5)) {
		memset(&r->rec[r->n], 0, sizeof(r->rec[r->n]));
		copy[4] = '\0';
		r->rec[r->n].type = copy;
	} else if (ctl_parse_record(copy, &r->rec[r->n])) {
		free(copy);
		return;
	}
	r->lines[r->n++] = copy;
}

static void reply_free(struct reply *r)
{
	unsigned int i;

	for (i = 0; i < r->n; i++)
		free(r->lines[i]);
	r->n = 0;
}

static const char *get(const struct ctl_record *rec, const char *key)
{
	const char *v = ctl_record_get(rec, key);

	return v ? v : "";
}

static unsigned long long num(const struct ctl_record *rec, const char *key)
{
	return strtoull(get(rec, key), NULL, 10);
}

struct ctl_cmd_info;

struct ctl_opts {
	const struct ctl_cmd_info *cmd;	/* the command, from ctl_cmds */
	const char *name;
	bool all, json, memory, dump, help;
	double watch;			/* seconds; 0: once */
	unsigned long long count;	/* --watch rounds; 0: until ^C */
	long nmi;			/* -1: none */
	const char *sysrq;
	long long balloon;		/* MiB; > 0 inflate, < 0 deflate */
};

static int control_dir(char *buf, size_t len)
{
	int ret = lkvm_control_dir(buf, len);

	if (ret < 0)
		fprintf(stderr,
			"lkvm: no control directory: set XDG_RUNTIME_DIR or HOME\n");
	return ret;
}

/*
 * Connects to VM name; a socket whose process died is removed.  Prints
 * why on failure.
 */
static int connect_vm(const char *dir, const char *name, bool quiet)
{
	char path[512];
	int fd;

	if (!ctl_name_valid(name)) {
		fprintf(stderr, "lkvm: '%s' is not a VM name\n", name);
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "%s/%s.sock", dir, name);
	fd = ctl_connect(path);
	if (fd == -ECONNREFUSED) {
		unlink(path);
		if (!quiet)
			fprintf(stderr,
				"lkvm: %s is not running (removed its stale socket %s)\n",
				name, path);
	} else if (fd < 0 && !quiet) {
		fprintf(stderr, "lkvm: no VM named %s (%s: %s)\n", name, path,
			strerror(-fd));
	}
	return fd;
}

/* The names of every socket in dir, live or not; sorted. */
static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static unsigned int list_names(const char *dir, char ***out)
{
	struct dirent *de;
	char **names = NULL;
	unsigned int n = 0;
	DIR *d = opendir(dir);

	*out = NULL;
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char **more;

		if (len <= 5 || strcmp(de->d_name + len - 5, ".sock"))
			continue;
		more = realloc(names, (n + 1) * sizeof(*names));
		if (!more)
			break;
		names = more;
		names[n] = strndup(de->d_name, len - 5);
		if (names[n])
			n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), name_cmp);
	*out = names;
	return n;
}

static void free_names(char **names, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* One request to one VM; records into r.  Prints an error. */
static int call_vm(const char *dir, const char *name, const char *request,
		   struct reply *r)
{
	char err[256];
	int fd = connect_vm(dir, name, false), ret;

	if (fd < 0)
		return fd;
	ret = ctl_call(fd, request, reply_add, r, err, sizeof(err));
	close(fd);
	if (ret)
		fprintf(stderr, "lkvm: %s: %s\n", name, err);
	return ret;
}

/* --- output --- */

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void json_record(const struct ctl_record *rec)
{
	unsigned int i;

	putchar('{');
	for (i = 0; i < rec->n; i++) {
		printf("%s", i ? ", " : "");
		json_string(rec->key[i]);
		printf(": ");
		if (all_digits(rec->val[i]) && strlen(rec->val[i]) < 20)
			printf("%s", rec->val[i]);
		else
			json_string(rec->val[i]);
	}
	putchar('}');
}

static void fmt_uptime(unsigned long long ms, char *buf, size_t len)
{
	unsigned long long s = ms / 1000;

	if (s < 60)
		snprintf(buf, len, "%llu.%llus", s, ms % 1000 / 100);
	else if (s < 3600)
		snprintf(buf, len, "%llum%02llus", s / 60, s % 60);
	else
		snprintf(buf, len, "%lluh%02llum", s / 3600, s / 60 % 60);
}

/* --- list --- */

static int cmd_list(const struct ctl_opts *o)
{
	char dir[256], **names;
	unsigned int n, i, shown = 0;

	if (control_dir(dir, sizeof(dir)) < 0)
		return LKVM_STATUS_ERROR;
	n = list_names(dir, &names);
	if (o->json)
		printf("[");
	else
		printf("%-20s %8s %-8s %4s %8s %9s  %s\n", "NAME", "PID",
		       "STATE", "CPUS", "MEM", "UPTIME", "DEVICES");
	for (i = 0; i < n; i++) {
		struct reply r = { 0 };
		char err[256], up[32];
		int fd = connect_vm(dir, names[i], true);

		if (fd == -ECONNREFUSED) {
			fprintf(stderr, "lkvm: removed stale socket %s/%s.sock\n",
				dir, names[i]);
			continue;
		}
		if (fd < 0)
			continue;
		if (ctl_call(fd, "info", reply_add, &r, err, sizeof(err)) ||
		    !r.n) {
			fprintf(stderr, "lkvm: %s: %s\n", names[i],
				err[0] ? err : "no answer");
		} else if (o->json) {
			printf("%s", shown++ ? ",\n " : "");
			json_record(&r.rec[0]);
		} else {
			const struct ctl_record *v = &r.rec[0];

			fmt_uptime(num(v, "uptime_ms"), up, sizeof(up));
			printf("%-20s %8s %-8s %4s %7sM %9s  %s\n",
			       get(v, "name"), get(v, "pid"), get(v, "state"),
			       get(v, "cpus"), get(v, "mem_mib"), up,
			       get(v, "devices"));
			shown++;
		}
		reply_free(&r);
		close(fd);
	}
	if (o->json)
		printf("]\n");
	free_names(names, n);
	return LKVM_STATUS_OK;
}

/* --- commands for one VM, or --all --- */

/* Calls fn for the VM named, or for every live VM with --all. */
static int for_each_vm(const struct ctl_opts *o,
		       int (*fn)(const struct ctl_opts *o, const char *dir,
				 const char *name))
{
	char dir[256], **names;
	unsigned int n, i;
	int status = LKVM_STATUS_OK;

	if (control_dir(dir, sizeof(dir)) < 0)
		return LKVM_STATUS_ERROR;
	if (!o->all)
		return fn(o, dir, o->name);
	n = list_names(dir, &names);
	for (i = 0; i < n; i++) {
		int fd = connect_vm(dir, names[i], true);

		if (fd < 0)
			continue;	/* gone, or stale (now removed) */
		close(fd);
		if (fn(o, dir, names[i]) != LKVM_STATUS_OK)
			status = LKVM_STATUS_ERROR;
	}
	free_names(names, n);
	return status;
}

static int simple_request(const char *dir, const char *name,
			  const char *request, const char *done)
{
	struct reply r = { 0 };
	int ret = call_vm(dir, name, request, &r);

	reply_free(&r);
	if (ret)
		return LKVM_STATUS_ERROR;
	if (done)
		printf("%s %s\n", name, done);
	return LKVM_STATUS_OK;
}

/* --- stat --- */

static void print_vm_line(const struct ctl_record *v)
{
	char up[32];

	fmt_uptime(num(v, "uptime_ms"), up, sizeof(up));
	printf("%s: %s, up %s (paused %.1f s); exits io %llu mmio %llu intr %llu other %llu notify %llu; RAM %llu MiB (%s), touched %llu MiB, %llu MiB in huge pages\n",
	       get(v, "name"), get(v, "state"), up,
	       num(v, "paused_ms") / 1e3, num(v, "exits_io"),
	       num(v, "exits_mmio"), num(v, "exits_intr"),
	       num(v, "exits_other"), num(v, "exits_notify"),
	       num(v, "ram_bytes") >> 20, get(v, "backing"),
	       num(v, "rss_bytes") >> 20, num(v, "huge_bytes") >> 20);
}

static void print_queue_totals(const struct reply *r)
{
	unsigned int i;

	for (i = 0; i < r->n && strcmp(r->rec[i].type, "queue"); i++)
		;
	if (i == r->n)
		return;		/* an export: no queues */
	printf("%-8s %2s %-10s %9s %4s %9s %9s %7s %6s %10s %10s %4s %9s %9s %8s %7s\n",
	       "DEVICE", "Q", "THREAD", "REQUESTS", "INFL", "READS",
	       "WRITES", "FLUSHES", "DISCRD", "READ_MiB", "WRITE_MiB",
	       "ERRS", "IRQS", "KICKS", "CPU_ms", "POLL_us");
	for (i = 0; i < r->n; i++) {
		const struct ctl_record *q = &r->rec[i];

		if (strcmp(q->type, "queue"))
			continue;
		printf("%-8s %2s %-10s %9llu %4llu %9llu %9llu %7llu %6llu %10.1f %10.1f %4llu %9llu %9llu %8.1f %7.1f\n",
		       get(q, "device"), get(q, "queue"), get(q, "thread"),
		       num(q, "requests"), num(q, "inflight"), num(q, "reads"),
		       num(q, "writes"), num(q, "flushes"),
		       num(q, "discards"), num(q, "read_bytes") / 1048576.0,
		       num(q, "write_bytes") / 1048576.0, num(q, "errors"),
		       num(q, "irqs"), num(q, "notifies"),
		       num(q, "cpu_ns") / 1e6, num(q, "poll_ns") / 1e3);
	}
}

static const struct ctl_record *find_queue(const struct reply *r,
					   const struct ctl_record *q)
{
	unsigned int i;

	for (i = 0; i < r->n; i++)
		if (!strcmp(r->rec[i].type, "queue") &&
		    !strcmp(get(&r->rec[i], "device"), get(q, "device")) &&
		    !strcmp(get(&r->rec[i], "queue"), get(q, "queue")))
			return &r->rec[i];
	return NULL;
}

static double delta(const struct ctl_record *a, const struct ctl_record *b,
		    const char *key)
{
	unsigned long long x = num(a, key), y = num(b, key);

	return y >= x ? (double)(y - x) : 0.0;
}

/* One interval of --watch: rates per queue between two replies. */
static void print_rates(const struct reply *prev, const struct reply *cur,
			double secs, bool json)
{
	unsigned int i, shown = 0;

	if (json)
		printf("{\"interval_s\": %.3f, \"queues\": [", secs);
	else
		printf("%-8s %2s %9s %9s %9s %9s %9s %9s %9s %6s %5s\n",
		       "DEVICE", "Q", "REQ/s", "READ/s", "WRITE/s",
		       "RD_MiB/s", "WR_MiB/s", "LAT_us", "IRQ/s", "CPU%",
		       "INFL");
	for (i = 0; i < cur->n; i++) {
		const struct ctl_record *q = &cur->rec[i], *p;
		double done, lat;

		if (strcmp(q->type, "queue") || !(p = find_queue(prev, q)))
			continue;
		done = delta(p, q, "completed");
		lat = done ? delta(p, q, "latency_ns") / done / 1e3 : 0;
		if (json) {
			printf("%s{\"device\": \"%s\", \"queue\": %llu, \"requests_per_s\": %.1f, \"reads_per_s\": %.1f, \"writes_per_s\": %.1f, \"read_bytes_per_s\": %.0f, \"write_bytes_per_s\": %.0f, \"latency_us\": %.1f, \"irqs_per_s\": %.1f, \"cpu_percent\": %.1f, \"inflight\": %llu}",
			       shown++ ? ", " : "", get(q, "device"),
			       num(q, "queue"), delta(p, q, "requests") / secs,
			       delta(p, q, "reads") / secs,
			       delta(p, q, "writes") / secs,
			       delta(p, q, "read_bytes") / secs,
			       delta(p, q, "write_bytes") / secs, lat,
			       delta(p, q, "irqs") / secs,
			       delta(p, q, "cpu_ns") / secs / 1e7,
			       num(q, "inflight"));
			continue;
		}
		printf("%-8s %2s %9.1f %9.1f %9.1f %9.2f %9.2f %9.1f %9.1f %6.1f %5llu\n",
		       get(q, "device"), get(q, "queue"),
		       delta(p, q, "requests") / secs,
		       delta(p, q, "reads") / secs,
		       delta(p, q, "writes") / secs,
		       delta(p, q, "read_bytes") / secs / 1048576.0,
		       delta(p, q, "write_bytes") / secs / 1048576.0, lat,
		       delta(p, q, "irqs") / secs,
		       delta(p, q, "cpu_ns") / secs / 1e7, num(q, "inflight"));
	}
	if (json)
		printf("]}\n");
	else
		printf("\n");
	fflush(stdout);
}

static void print_json_reply(const struct reply *r)
{
	unsigned int i, queues = 0;
	bool vm = false;

	printf("{");
	for (i = 0; i < r->n; i++) {
		if (strcmp(r->rec[i].type, "vm") || vm)
			continue;
		printf("\"vm\": ");
		json_record(&r->rec[i]);
		vm = true;
	}
	printf("%s\"queues\": [", vm ? ", " : "");
	for (i = 0; i < r->n; i++) {
		if (strcmp(r->rec[i].type, "queue"))
			continue;
		printf("%s", queues++ ? ",\n  " : "\n  ");
		json_record(&r->rec[i]);
	}
	printf("]}\n");
}

static double mono_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static int stat_memory(const struct ctl_opts *o, const char *dir,
		       const char *name)
{
	struct reply r = { 0 };
	unsigned int i, k;

	if (call_vm(dir, name, "memstat", &r))
		return LKVM_STATUS_ERROR;
	for (i = 0; i < r.n; i++) {
		if (o->json) {
			json_record(&r.rec[i]);
			printf("\n");
			continue;
		}
		printf("%s balloon:\n", name);
		for (k = 0; k < r.rec[i].n; k++)
			printf("  %-18s %s\n", r.rec[i].key[k], r.rec[i].val[k]);
	}
	reply_free(&r);
	return LKVM_STATUS_OK;
}

static int do_stat(const struct ctl_opts *o, const char *dir,
		   const char *name)
{
	struct reply prev = { 0 }, cur = { 0 };
	unsigned long long round;
	double t0, t1;
	int fd;

	if (o->memory)
		return stat_memory(o, dir, name);
	if (!o->watch) {
		unsigned int i;

		if (call_vm(dir, name, "stat", &cur))
			return LKVM_STATUS_ERROR;
		if (o->json) {
			print_json_reply(&cur);
		} else {
			for (i = 0; i < cur.n; i++) {
				const struct ctl_record *r = &cur.rec[i];
				unsigned int k;

				if (!strcmp(r->type, "vm"))
					print_vm_line(r);
				/* An export's records, as they come. */
				if (strcmp(r->type, "export") &&
				    strcmp(r->type, "worker"))
					continue;
				printf("%s", r->type);
				for (k = 0; k < r->n; k++)
					printf(" %s=%s", r->key[k], r->val[k]);
				printf("\n");
			}
			print_queue_totals(&cur);
		}
		reply_free(&cur);
		return LKVM_STATUS_OK;
	}
	/* One connection for the whole watch. */
	fd = connect_vm(dir, name, false);
	if (fd < 0)
		return LKVM_STATUS_ERROR;
	t0 = mono_s();
	if (ctl_call(fd, "stat", reply_add, &prev, NULL, 0)) {
		fprintf(stderr, "lkvm: %s: no statistics\n", name);
		close(fd);
		return LKVM_STATUS_ERROR;
	}
	for (round = 0; !o->count || round < o->count; round++) {
		char err[256];

		usleep((useconds_t)(o->watch * 1e6));
		if (ctl_call(fd, "stat", reply_add, &cur, err, sizeof(err))) {
			/* The VM ended: the watch is over. */
			reply_free(&cur);
			break;
		}
		t1 = mono_s();
		print_rates(&prev, &cur, t1 - t0, o->json);
		reply_free(&prev);
		prev = cur;
		memset(&cur, 0, sizeof(cur));
		t0 = t1;
	}
	reply_free(&prev);
	close(fd);
	return LKVM_STATUS_OK;
}

/* --- debug, balloon --- */

static int do_debug(const struct ctl_opts *o, const char *dir,
		    const char *name)
{
	struct reply r = { 0 };
	char req[64];
	unsigned int i;
	int status = LKVM_STATUS_OK;

	if (o->dump) {
		if (call_vm(dir, name, "dump", &r))
			return LKVM_STATUS_ERROR;
		for (i = 0; i < r.n; i++)
			if (!strcmp(r.rec[i].type, "text"))
				printf("%s\n", r.lines[i] + 5);
		reply_free(&r);
	}
	if (o->nmi >= 0) {
		snprintf(req, sizeof(req), "nmi %ld", o->nmi);
		if (simple_request(dir, name, req, NULL))
			status = LKVM_STATUS_ERROR;
	}
	if (o->sysrq) {
		snprintf(req, sizeof(req), "sysrq %s", o->sysrq);
		if (simple_request(dir, name, req, NULL))
			status = LKVM_STATUS_ERROR;
	}
	return status;
}

static int do_balloon(const struct ctl_opts *o, const char *dir,
		      const char *name)
{
	char req[64];

	snprintf(req, sizeof(req), "balloon %s %lld",
		 o->balloon > 0 ? "inflate" : "deflate",
		 o->balloon > 0 ? o->balloon : -o->balloon);
	return simple_request(dir, name, req, NULL);
}

/* --- options --- */

enum ctl_cmd { CMD_LIST, CMD_STOP, CMD_PAUSE, CMD_RESUME, CMD_STAT,
	       CMD_DEBUG, CMD_BALLOON };

/*
 * Each command; those with a "done" word send their own name as the
 * request, with no argument, and say "NAME done" when it is.
 */
struct ctl_cmd_info {
	const char *name;
	enum ctl_cmd cmd;
	const char *done;
	const char *usage;
};

static const struct ctl_cmd_info ctl_cmds[] = {
	{ "list", CMD_LIST, NULL, "lkvm list [--json]\n" },
	{ "stop", CMD_STOP, "stopped", "lkvm stop [-n] NAME | --all\n" },
	{ "pause", CMD_PAUSE, "paused", "lkvm pause [-n] NAME | --all\n" },
	{ "resume", CMD_RESUME, "resumed", "lkvm resume [-n] NAME | --all\n" },
	{ "stat", CMD_STAT, NULL,
	  "lkvm stat [-n] NAME | --all [--json] [--watch SECONDS [--count N]] [--memory]\n" },
	{ "debug", CMD_DEBUG, NULL,
	  "lkvm debug [-n] NAME | --all [--dump] [--nmi CPU] [--sysrq KEY]\n" },
	{ "balloon", CMD_BALLOON, NULL,
	  "lkvm balloon [-n] NAME (--inflate MIB | --deflate MIB)\n" },
};

static const struct ctl_cmd_info *ctl_cmd_find(const char *name)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(ctl_cmds); i++)
		if (!strcmp(name, ctl_cmds[i].name))
			return &ctl_cmds[i];
	return NULL;
}

/* stop, pause, resume: the command's own name is the request. */
static int do_plain(const struct ctl_opts *o, const char *dir,
		    const char *name)
{
	return simple_request(dir, name, o->cmd->name, o->cmd->done);
}

bool cli_is_ctl_command(const char *cmd)
{
	return ctl_cmd_find(cmd) != NULL;
}

enum {
	OPT_JSON = 0x100, OPT_WATCH, OPT_COUNT, OPT_MEMORY, OPT_DUMP, OPT_NMI,
	OPT_SYSRQ, OPT_INFLATE, OPT_DEFLATE,
};

static const struct option ctl_long[] = {
	{ "name", required_argument, NULL, 'n' },
	{ "all", no_argument, NULL, 'a' },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "watch", required_argument, NULL, OPT_WATCH },
	{ "count", required_argument, NULL, OPT_COUNT },
	{ "memory", no_argument, NULL, OPT_MEMORY },
	{ "dump", no_argument, NULL, OPT_DUMP },
	{ "nmi", required_argument, NULL, OPT_NMI },
	{ "sysrq", required_argument, NULL, OPT_SYSRQ },
	{ "inflate", required_argument, NULL, OPT_INFLATE },
	{ "deflate", required_argument, NULL, OPT_DEFLATE },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Which options each command takes (the rest are usage errors). */
static bool opt_allowed(enum ctl_cmd cmd, int opt)
{
	switch (opt) {
	case 'h':
		return true;
	case 'n':
	case 'a':
		return cmd != CMD_LIST && (opt == 'n' || cmd != CMD_BALLOON);
	case OPT_JSON:
		return cmd == CMD_LIST || cmd == CMD_STAT;
	case OPT_WATCH:
	case OPT_COUNT:
	case OPT_MEMORY:
		return cmd == CMD_STAT;
	case OPT_DUMP:
	case OPT_NMI:
	case OPT_SYSRQ:
		return cmd == CMD_DEBUG;
	case OPT_INFLATE:
	case OPT_DEFLATE:
		return cmd == CMD_BALLOON;
	default:
		return false;
	}
}

int cli_parse_ctl(int argc, char **argv, struct ctl_opts *o, int *cmd,
		  char *err, size_t errlen)
{
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->nmi = -1;
	o->cmd = ctl_cmd_find(argv[0]);
	*cmd = o->cmd ? (int)o->cmd->cmd : -1;
	if (*cmd < 0)
		return errf(err, errlen, -EINVAL, "unknown command '%s'",
			    argv[0]);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "n:ah", ctl_long, NULL)) != -1) {
		if (c == '?' || c == ':')
			return errf(err, errlen, -EINVAL,
				    "bad or incomplete option '%s'",
				    argv[optind - 1]);
		if (!opt_allowed(*cmd, c))
			return errf(err, errlen, -EINVAL,
				    "option '%s' does not apply to %s",
				    argv[optind - 1], argv[0]);
		switch (c) {
		case 'n':
			o->name = optarg;
			break;
		case 'a':
			o->all = true;
			break;
		case 'h':
			o->help = true;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_WATCH: {
			char *end;

			o->watch = strtod(optarg, &end);
			if (*end || !(o->watch >= 0.1 && o->watch <= 3600))
				return errf(err, errlen, -EINVAL,
					    "--watch takes 0.1 to 3600 seconds");
			break;
		}
		case OPT_COUNT:
			if (parse_uint(optarg, 1, 1000000000, &v))
				return errf(err, errlen, -EINVAL,
					    "--count takes a positive number");
			o->count = v;
			break;
		case OPT_MEMORY:
			o->memory = true;
			break;
		case OPT_DUMP:
			o->dump = true;
			break;
		case OPT_NMI:
			if (parse_uint(optarg, 0, 4095, &v))
				return errf(err, errlen, -EINVAL,
					    "--nmi takes a vCPU number");
			o->nmi = (long)v;
			break;
		case OPT_SYSRQ:
			if (strlen(optarg) != 1 || optarg[0] <= ' ' ||
			    optarg[0] > '~')
				return errf(err, errlen, -EINVAL,
					    "--sysrq takes one key, like t or b");
			o->sysrq = optarg;
			break;
		case OPT_INFLATE:
		case OPT_DEFLATE:
			if (parse_uint(optarg, 1, 1 << 30, &v))
				return errf(err, errlen, -EINVAL,
					    "%s takes MiB", argv[optind - 1]);
			o->balloon = c == OPT_INFLATE ? (long long)v :
							-(long long)v;
			break;
		}
	}
	if (o->help)
		return 0;
	if (optind < argc && !o->name && *cmd != CMD_LIST)
		o->name = argv[optind++];
	if (optind < argc)
		return errf(err, errlen, -EINVAL, "unexpected argument '%s'",
			    argv[optind]);
	if (*cmd == CMD_LIST)
		return 0;
	if (!o->name == !o->all)
		return errf(err, errlen, -EINVAL,
			    "name one VM (-n NAME, or NAME) or give --all");
	if (o->count && !o->watch)
		return errf(err, errlen, -EINVAL, "--count goes with --watch");
	if (*cmd == CMD_DEBUG && !o->dump && o->nmi < 0 && !o->sysrq)
		return errf(err, errlen, -EINVAL,
			    "debug needs --dump, --nmi CPU or --sysrq KEY");
	if (*cmd == CMD_BALLOON && !o->balloon)
		return errf(err, errlen, -EINVAL,
			    "balloon needs --inflate MIB or --deflate MIB");
	return 0;
}

int cli_ctl_main(int argc, char **argv)
{
	struct ctl_opts o;
	char err[256];
	int cmd;

	if (cli_parse_ctl(argc, argv, &o, &cmd, err, sizeof(err))) {
		fprintf(stderr, "lkvm %s: %s\n", argv[0], err);
		return LKVM_STATUS_USAGE;
	}
	if (o.help) {
		printf("usage: %s", o.cmd->usage);
		return LKVM_STATUS_OK;
	}
	/* A reader that goes away (| head) must not kill us mid-line. */
	signal(SIGPIPE, SIG_IGN);
	switch (cmd) {
	case CMD_LIST:
		return cmd_list(&o);
	case CMD_STOP:
	case CMD_PAUSE:
	case CMD_RESUME:
		return for_each_vm(&o, do_plain);
	case CMD_STAT:
		return for_each_vm(&o, do_stat);
	case CMD_DEBUG:
		return for_each_vm(&o, do_debug);
	default:
		return for_each_vm(&o, do_balloon);
	}
}
