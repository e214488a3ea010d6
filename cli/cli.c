/*
 * cli.c - option parsing for "lkvm run" (kvmtool-compatible names) and
 * the mapping from a run's result to the exit status.  Everything the
 * user typed is untrusted: every value is checked, and any problem is one
 * line of explanation for stderr and exit status 2.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "lkvm/cli/cli.h"
#include "lkvm/net/net.h"
#include "lkvm/lib/util.h"

#define CLI_MAX_DISKS 256
#define CLI_MAX_NETS 32
#define CLI_MAX_DEVICES 64
#define OPT_DEVICE 0x200	/* + the library's device type index */
#define CLI_MAX_TIMEOUT_S (365ULL * 24 * 3600)

const char cli_usage[] =
	"usage: lkvm <command> [options]\n"
	"\n"
	"commands:\n"
	"  run       boot a guest (lkvm run --help for options)\n"
	"  list      the running guests [--json]\n"
	"  stop      power a guest off: [-n] NAME | --all\n"
	"  pause     stop a guest's vCPUs and I/O: [-n] NAME | --all\n"
	"  resume    let a paused guest go on: [-n] NAME | --all\n"
	"  stat      per-queue I/O statistics: [-n] NAME [--json]\n"
	"            [--watch SECONDS [--count N]] [--memory]\n"
	"  debug     [-n] NAME --dump | --nmi CPU | --sysrq KEY\n"
	"  balloon   [-n] NAME --inflate MIB | --deflate MIB\n"
	"  export    serve a disk image as a file over FUSE: IMAGE MOUNTPOINT\n"
	"            (lkvm export --help for options)\n"
	"  version   print the version\n"
	"  help      print this text\n";

const char cli_run_usage[] =
	"usage: lkvm run [-k] KERNEL [options]   (no KERNEL: the host's /boot/vmlinuz)\n"
	"\n"
	"  -k, --kernel FILE     bzImage, PVH ELF (vmlinux) or flat binary\n"
	"  -i, --initrd FILE     initial ramdisk\n"
	"  -p, --params TEXT     kernel command line\n"
	"  -m, --mem SIZE        guest RAM: MiB, or with a suffix (512M, 2G)\n"
	"  -c, --cpus N          number of vCPUs\n"
	"  -d, --disk SPEC       disk image (repeatable)\n"
	"  -n, --network SPEC    mode=tap[,tapif=NAME][,guest_mac=MAC]\n"
	"                        [,script=PATH|none][,queues=N], or\n"
	"                        mode=none (repeatable; default: no network)\n"
	"      --name NAME       guest name\n"
	"      --console serial|virtio  guest console: COM1 (0x3f8) or\n"
	"                        virtio-console (hvc0)\n"
	"      --rng             add a virtio-rng device\n"
	"      --virtio-transport pci|mmio  how virtio devices attach\n"
	"                        (default: pci)\n"
	"      --timeout SECONDS stop the guest after this long (exit 124)\n"
	"      --sandbox on|off  per-thread seccomp filters (default on)\n"
	"      --exit-code-offset N  exit with the guest's debug-exit value\n"
	"                        plus N (mod 256), clear of lkvm's own statuses\n"
	"      --log FILE        copy the guest console to FILE\n"
	"      --hugetlbfs PATH  back guest RAM with a file on this hugetlbfs\n"
	"      --memfd           back guest RAM with a memfd (hugetlb if the\n"
	"                        host has free huge pages); default: anonymous\n"
	"                        memory with transparent huge pages\n"
	"      --halt-poll USECS|auto  KVM halt polling per vCPU (default\n"
	"                        auto: what the devices ask for)\n"
	"      --disable-sve, --disable-ptrauth, --no-pmu, --no-pvtime\n"
	"                        arm64: leave out a vCPU feature the host has\n"
	"                        (all are on by default; --pmu is the default)\n"
	"      --stats           print exit, memory and I/O thread figures\n"
	"                        when the guest ends\n"
	"      --no-fastpath     test aid: no ioeventfd/irqfd (notifies exit)\n"
	"      --dump-dtb FILE   arm64: write the guest's device tree to FILE\n"
	"      --no-acpi         x86: no ACPI tables (MP table only; no power-off)\n"
	"      --nodefaults      add nothing to a Linux kernel's command line\n"
	"                        (default: console, root=/dev/vda rw, panic=-1)\n"
	"      --dump-acpi DIR   x86: write each ACPI table to DIR/NAME.dat\n"
	"      --irqchip gicv2|gicv3|gicv3-its  arm64 interrupt controller\n"
	"                        (default: the best the host has)\n"
	"      --debug           print debug messages\n"
	"  -h, --help            this text\n"
	"\n"
	"exit status: 0 guest powered off or reset; N guest wrote N to port\n"
	"0x501; 123 guest panicked; 124 timeout; 2 usage error; 1 VMM error.\n";

enum {
	OPT_NAME = 0x100,
	OPT_CONSOLE,
	OPT_TIMEOUT,
	OPT_LOG,
	OPT_STATS,
	OPT_DEBUG,
	OPT_RNG,
	OPT_NO_FASTPATH,
	OPT_DUMP_DTB,
	OPT_NO_ACPI,
	OPT_NODEFAULTS,
	OPT_DUMP_ACPI,
	OPT_IRQCHIP,
	OPT_TRANSPORT,
	OPT_EXIT_OFFSET,
	OPT_SANDBOX,
	OPT_HUGETLBFS,
	OPT_MEMFD,
	OPT_HALT_POLL,
	OPT_NO_SVE,
	OPT_NO_PTRAUTH,
	OPT_PMU,
	OPT_NO_PMU,
	OPT_NO_PVTIME,
};

static const struct option run_options[] = {
	{ "kernel", required_argument, NULL, 'k' },
	{ "initrd", required_argument, NULL, 'i' },
	{ "params", required_argument, NULL, 'p' },
	{ "mem", required_argument, NULL, 'm' },
	{ "cpus", required_argument, NULL, 'c' },
	{ "disk", required_argument, NULL, 'd' },
	{ "network", required_argument, NULL, 'n' },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "console", required_argument, NULL, OPT_CONSOLE },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "log", required_argument, NULL, OPT_LOG },
	{ "stats", no_argument, NULL, OPT_STATS },
	{ "debug", no_argument, NULL, OPT_DEBUG },
	{ "rng", no_argument, NULL, OPT_RNG },
	{ "no-fastpath", no_argument, NULL, OPT_NO_FASTPATH },
	{ "dump-dtb", required_argument, NULL, OPT_DUMP_DTB },
	{ "no-acpi", no_argument, NULL, OPT_NO_ACPI },
	{ "nodefaults", no_argument, NULL, OPT_NODEFAULTS },
	{ "dump-acpi", required_argument, NULL, OPT_DUMP_ACPI },
	{ "irqchip", required_argument, NULL, OPT_IRQCHIP },
	{ "virtio-transport", required_argument, NULL, OPT_TRANSPORT },
	{ "exit-code-offset", required_argument, NULL, OPT_EXIT_OFFSET },
	{ "sandbox", required_argument, NULL, OPT_SANDBOX },
	{ "hugetlbfs", required_argument, NULL, OPT_HUGETLBFS },
	{ "memfd", no_argument, NULL, OPT_MEMFD },
	{ "halt-poll", required_argument, NULL, OPT_HALT_POLL },
	{ "disable-sve", no_argument, NULL, OPT_NO_SVE },
	{ "disable-ptrauth", no_argument, NULL, OPT_NO_PTRAUTH },
	{ "pmu", no_argument, NULL, OPT_PMU },
	{ "no-pmu", no_argument, NULL, OPT_NO_PMU },
	{ "no-pvtime", no_argument, NULL, OPT_NO_PVTIME },
	{ "help", no_argument, NULL, 'h' },
};

/*
 * The options: the fixed ones, then --TYPE for each device type the
 * library lists (lkvm_device_type), so a new device needs no change
 * here.  Returns a malloc'd table ending in a zero entry.
 */
static struct option *cli_options(void)
{
	struct lkvm_device_type_info info;
	unsigned int n = ARRAY_SIZE(run_options), i;
	struct option *o;

	for (i = 0; lkvm_device_type(i, &info) == 0; i++)
		;
	o = calloc(n + i + 1, sizeof(*o));
	if (!o)
		return NULL;
	memcpy(o, run_options, sizeof(run_options));
	for (i = 0; lkvm_device_type(i, &info) == 0; i++)
		o[n + i] = (struct option){
			info.name,
			info.arg == LKVM_DEVICE_ARG_NONE ? no_argument :
			info.arg == LKVM_DEVICE_ARG_OPTIONAL ?
			optional_argument : required_argument,
			NULL, OPT_DEVICE + i,
		};
	return o;
}

void cli_run_usage_print(FILE *f)
{
	struct lkvm_device_type_info info;
	unsigned int i;
	char opt[64];

	fputs(cli_run_usage, f);
	fputs("\ndevices:\n", f);
	for (i = 0; lkvm_device_type(i, &info) == 0; i++) {
		snprintf(opt, sizeof(opt), "--%s%s", info.name,
			 info.arg == LKVM_DEVICE_ARG_NONE ? "" :
			 info.arg == LKVM_DEVICE_ARG_OPTIONAL ? "[=OPTIONS]" :
			 " OPTIONS");
		fprintf(f, "  %-24s%s\n", opt, info.help);
	}
}

/* --TYPE[=OPTIONS]: "TYPE" or "TYPE,OPTIONS" in the device list. */
static int cli_add_device(struct cli_run *r, unsigned int type,
			  const char *arg, char *err, size_t errlen)
{
	struct lkvm_device_type_info info;
	char **l, *spec;

	if (lkvm_device_type(type, &info))
		return errf(err, errlen, -EINVAL, "unknown device option");
	if (r->cfg.ndevices >= CLI_MAX_DEVICES)
		return errf(err, errlen, -EINVAL, "more than %u devices",
			    CLI_MAX_DEVICES);
	if (arg && !*arg)
		return errf(err, errlen, -EINVAL, "empty --%s argument",
			    info.name);
	if (asprintf(&spec, "%s%s%s", info.name, arg ? "," : "",
		     arg ? arg : "") < 0)
		return errf(err, errlen, -ENOMEM, "out of memory");
	l = realloc(r->devices, (r->cfg.ndevices + 1) * sizeof(*l));
	if (!l) {
		free(spec);
		return errf(err, errlen, -ENOMEM, "out of memory");
	}
	l[r->cfg.ndevices++] = spec;
	r->devices = l;
	r->cfg.devices = (const char **)l;
	return 0;
}

/* Seconds with up to three decimals ("2", "0.5"), into milliseconds. */
static int parse_timeout(const char *s, uint64_t *ms)
{
	const char *dot = strchr(s, '.');
	char whole[32];
	uint64_t sec, frac = 0, scale = 100;
	size_t n = dot ? (size_t)(dot - s) : strlen(s);
	int ret;

	if (n == 0 || n >= sizeof(whole))
		return -EINVAL;
	memcpy(whole, s, n);
	whole[n] = '\0';
	ret = parse_uint(whole, 0, CLI_MAX_TIMEOUT_S, &sec);
	if (ret)
		return ret;
	if (dot) {
		const char *f = dot + 1;

		if (!*f || strlen(f) > 3)
			return -EINVAL;
		for (; *f; f++, scale /= 10) {
			if (*f < '0' || *f > '9')
				return -EINVAL;
			frac += (*f - '0') * scale;
		}
	}
	*ms = sec * 1000 + frac;
	return *ms ? 0 : -EINVAL;
}

static int check_readable(const char *what, const char *path, char *err,
			  size_t errlen)
{
	if (access(path, R_OK) < 0)
		return errf(err, errlen, -ENOENT, "cannot read %s '%s': %s",
			    what, path, strerror(errno));
	return 0;
}

/*
 * Appends spec to a list of argv pointers that both the run (to free)
 * and its config (to use) hold: *list and *cfg_list, *n of them.
 */
static int cli_append(const char ***list, const char ***cfg_list,
		      unsigned int *n, unsigned int max, const char *what,
		      const char *spec, char *err, size_t errlen)
{
	const char **l;

	if (*n >= max)
		return errf(err, errlen, -EINVAL, "more than %u %s", max,
			    what);
	l = realloc(*list, (*n + 1) * sizeof(*l));
	if (!l)
		return errf(err, errlen, -ENOMEM, "out of memory");
	l[(*n)++] = spec;
	*list = l;
	*cfg_list = l;
	return 0;
}

static int cli_add_disk(struct cli_run *r, const char *spec, char *err,
			size_t errlen)
{
	if (!*spec)
		return errf(err, errlen, -EINVAL, "empty --disk argument");
	return cli_append(&r->disks, &r->cfg.disks, &r->cfg.ndisks,
			  CLI_MAX_DISKS, "disks", spec, err, errlen);
}

/*
 * -n mode=none stays in the list: it says "no network", which also
 * keeps a Linux kernel from its default one.
 */
static int cli_add_net(struct cli_run *r, const char *spec, char *err,
		       size_t errlen)
{
	struct net_spec ns;
	int ret;

	if (!*spec)
		return errf(err, errlen, -EINVAL, "empty --network argument");
	/* Checked now for a usage error; opened when the VM is made. */
	ret = net_spec_parse(spec, &ns, err, errlen);
	if (ret)
		return ret;
	net_spec_free(&ns);
	return cli_append(&r->nets, &r->cfg.nets, &r->cfg.nnets, CLI_MAX_NETS,
			  "networks", spec, err, errlen);
}

/* Options that only set an int of the configuration. */
static const struct cli_flag {
	int opt;
	size_t field;		/* offset in struct lkvm_config */
	int value;
} cli_flags[] = {
	{ OPT_RNG, offsetof(struct lkvm_config, rng), 1 },
	{ OPT_NO_FASTPATH, offsetof(struct lkvm_config, no_fastpath), 1 },
	{ OPT_NO_SVE, offsetof(struct lkvm_config, no_sve), 1 },
	{ OPT_NO_PTRAUTH, offsetof(struct lkvm_config, no_ptrauth), 1 },
	{ OPT_PMU, offsetof(struct lkvm_config, no_pmu), 0 },
	{ OPT_NO_PMU, offsetof(struct lkvm_config, no_pmu), 1 },
	{ OPT_NO_PVTIME, offsetof(struct lkvm_config, no_pvtime), 1 },
};

static int cli_parse_opt(struct cli_run *r, int c, const char *arg,
			 const char *opt, char *err, size_t errlen)
{
	uint64_t v;
	unsigned int i;
	int ret;

	for (i = 0; i < ARRAY_SIZE(cli_flags); i++) {
		if (cli_flags[i].opt == c) {
			*(int *)((char *)&r->cfg + cli_flags[i].field) =
				cli_flags[i].value;
			return 0;
		}
	}
	switch (c) {
	case 'k':
		r->cfg.kernel = arg;
		return 0;
	case 'i':
		r->cfg.initrd = arg;
		return 0;
	case 'p':
		r->cfg.cmdline = arg;
		return 0;
	case 'm':
		ret = parse_mem_size(arg, &v);
		if (ret)
			return errf(err, errlen, -EINVAL,
				    "bad memory size '%s' (want MiB, or a number with K/M/G/T making whole MiB)",
				    arg);
		r->cfg.mem_mib = v / MiB;
		return 0;
	case 'c':
		/* The range is the arch's: the library says it (one message). */
		ret = parse_uint(arg, 0, UINT32_MAX, &v);
		if (ret)
			return errf(err, errlen, -EINVAL,
				    "bad CPU count '%s' (want a number)", arg);
		r->cfg.cpus = v;
		return 0;
	case 'd':
		return cli_add_disk(r, arg, err, errlen);
	case 'n':
		return cli_add_net(r, arg, err, errlen);
	case OPT_NAME:
		if (!*arg || strlen(arg) > 64)
			return errf(err, errlen, -EINVAL,
				    "bad guest name (1 to 64 characters)");
		r->cfg.name = arg;
		return 0;
	case OPT_CONSOLE:
		if (!strcmp(arg, "virtio"))
			r->cfg.console_virtio = 1;
		else if (!strcmp(arg, "serial"))
			r->cfg.console_virtio = 0;
		else
			return errf(err, errlen, -EINVAL,
				    "unsupported console '%s' (supported: serial, virtio)",
				    arg);
		return 0;
	case OPT_DUMP_DTB:
		r->cfg.dump_dtb = arg;
		return 0;
	case OPT_NO_ACPI:
		r->cfg.no_acpi = 1;
		return 0;
	case OPT_NODEFAULTS:
		r->cfg.nodefaults = 1;
		return 0;
	case OPT_DUMP_ACPI:
		r->cfg.dump_acpi = arg;
		return 0;
	case OPT_IRQCHIP:
		if (!strcmp(arg, "gicv2"))
			r->cfg.irqchip = LKVM_IRQCHIP_GICV2;
		else if (!strcmp(arg, "gicv3"))
			r->cfg.irqchip = LKVM_IRQCHIP_GICV3;
		else if (!strcmp(arg, "gicv3-its"))
			r->cfg.irqchip = LKVM_IRQCHIP_GICV3_ITS;
		else
			return errf(err, errlen, -EINVAL,
				    "unsupported irqchip '%s' (supported: gicv2, gicv3, gicv3-its)",
				    arg);
		return 0;
	case OPT_TRANSPORT:
		if (!strcmp(arg, "mmio"))
			r->cfg.virtio_transport = LKVM_VIRTIO_MMIO;
		else if (!strcmp(arg, "pci"))
			r->cfg.virtio_transport = LKVM_VIRTIO_PCI;
		else
			return errf(err, errlen, -EINVAL,
				    "unsupported virtio transport '%s' (supported: mmio, pci)",
				    arg);
		return 0;
	case OPT_TIMEOUT:
		if (parse_timeout(arg, &r->cfg.timeout_ms))
			return errf(err, errlen, -EINVAL,
				    "bad timeout '%s' (want seconds, e.g. 2 or 0.5)",
				    arg);
		return 0;
	case OPT_LOG:
		r->log_path = arg;
		return 0;
	case OPT_SANDBOX:
		if (strcmp(arg, "on") && strcmp(arg, "off"))
			return errf(err, errlen, -EINVAL,
				    "bad --sandbox '%s' (want on or off)", arg);
		r->cfg.seccomp = !strcmp(arg, "on");
		return 0;
	case OPT_EXIT_OFFSET:
		if (parse_uint(arg, 0, 255, &v))
			return errf(err, errlen, -EINVAL,
				    "bad exit code offset '%s' (want 0 to 255)",
				    arg);
		r->exit_offset = v;
		return 0;
	case OPT_STATS:
		r->stats = true;
		return 0;
	case OPT_HUGETLBFS:
		if (!*arg)
			return errf(err, errlen, -EINVAL,
				    "--hugetlbfs needs the mount's path");
		r->cfg.ram_backing = LKVM_RAM_HUGETLBFS;
		r->cfg.hugetlbfs = arg;
		return 0;
	case OPT_MEMFD:
		r->cfg.ram_backing = LKVM_RAM_MEMFD;
		return 0;
	case OPT_HALT_POLL:
		if (!strcmp(arg, "auto")) {
			r->cfg.halt_poll_us = -1;
			return 0;
		}
		if (parse_uint(arg, 0, LKVM_HALT_POLL_MAX_US, &v))
			return errf(err, errlen, -EINVAL,
				    "bad --halt-poll '%s' (want auto or 0 to %d microseconds)",
				    arg, LKVM_HALT_POLL_MAX_US);
		r->cfg.halt_poll_us = v;
		return 0;

	case OPT_DEBUG:
		r->cfg.log_level = LKVM_LOG_DEBUG;
		return 0;
	case 'h':
		r->help = true;
		return 0;
	case ':':
		return errf(err, errlen, -EINVAL, "option %s needs an argument",
			    opt);
	default:
		if (c >= OPT_DEVICE)
			return cli_add_device(r, c - OPT_DEVICE, arg, err,
					      errlen);
		return errf(err, errlen, -EINVAL, "unknown option %s", opt);
	}
}

/*
 * No kernel named: the host's own, as kvmtool does, from $LKVM_BOOT_DIR
 * (default /boot): vmlinuz-$(uname -r), then vmlinuz.
 */
static int cli_host_kernel(struct cli_run *r, char *err, size_t errlen)
{
	const char *dir = getenv("LKVM_BOOT_DIR");
	struct utsname u;
	char *path;

	if (!dir || !*dir)
		dir = "/boot";
	if (uname(&u) == 0 &&
	    asprintf(&path, "%s/vmlinuz-%s", dir, u.release) >= 0) {
		if (access(path, R_OK) == 0)
			goto found;
		free(path);
	}
	if (asprintf(&path, "%s/vmlinuz", dir) >= 0) {
		if (access(path, R_OK) == 0)
			goto found;
		free(path);
	}
	return errf(err, errlen, -EINVAL,
		    "no kernel given (lkvm run -k FILE, or lkvm run FILE), and no host kernel readable at %s/vmlinuz-%s or %s/vmlinuz",
		    dir, uname(&u) == 0 ? u.release : "?", dir);
found:
	r->host_kernel = path;
	r->cfg.kernel = path;
	return 0;
}

int cli_parse_run(int argc, char **argv, struct cli_run *r, char *err,
		  size_t errlen)
{
	struct option *options;
	int c, ret = 0;

	memset(r, 0, sizeof(*r));
	lkvm_config_init(&r->cfg);
	r->cfg.seccomp = 1;	/* the program filters its threads by default */
	options = cli_options();
	if (!options)
		return errf(err, errlen, -ENOMEM, "out of memory");
	optind = 0;	/* GNU: start over, parsing may run more than once */
	opterr = 0;
	for (;;) {
		int prev = optind ? optind : 1;

		c = getopt_long(argc, argv, ":k:i:p:m:c:d:n:h", options, NULL);
		if (c == -1)
			break;
		ret = cli_parse_opt(r, c, optarg,
				    prev < argc ? argv[prev] : "?", err,
				    errlen);
		if (ret)
			break;
	}
	free(options);
	if (ret)
		return ret;
	/* kvmtool's "lkvm run KERNEL". */
	if (optind < argc && !r->cfg.kernel)
		r->cfg.kernel = argv[optind++];
	if (optind < argc)
		return errf(err, errlen, -EINVAL, "unexpected argument '%s'",
			    argv[optind]);
	if (r->help)
		return 0;
	if (!r->cfg.kernel) {
		ret = cli_host_kernel(r, err, errlen);
		if (ret)
			return ret;
	}
	ret = check_readable("kernel", r->cfg.kernel, err, errlen);
	if (!ret && r->cfg.initrd)
		ret = check_readable("initrd", r->cfg.initrd, err, errlen);
	return ret;
}

void cli_run_free(struct cli_run *r)
{
	unsigned int i;

	for (i = 0; r->devices && i < r->cfg.ndevices; i++)
		free(r->devices[i]);
	free(r->devices);
	r->devices = NULL;
	free(r->disks);
	r->disks = NULL;
	free(r->nets);
	r->nets = NULL;
	free(r->host_kernel);
	r->host_kernel = NULL;
}

int cli_exit_status(const struct lkvm_result *res, unsigned int offset)
{
	switch (res->reason) {
	case LKVM_EXIT_POWEROFF:
	case LKVM_EXIT_RESET:
	case LKVM_EXIT_STOPPED:
		return LKVM_STATUS_OK;
	case LKVM_EXIT_DEBUG:
		return (res->status + offset) & 0xff;
	case LKVM_EXIT_PANIC:
		return LKVM_STATUS_PANIC;
	case LKVM_EXIT_TIMEOUT:
		return LKVM_STATUS_TIMEOUT;
	case LKVM_EXIT_ERROR:
	default:
		return LKVM_STATUS_ERROR;
	}
}
