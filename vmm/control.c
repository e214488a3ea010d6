/*
 * control.c - the VM's control socket: opens it when the VM is made,
 * answers requests (lkvm list, stop, pause, resume, stat, debug,
 * balloon) by calling the same lkvm_* functions an embedder calls, and
 * removes it when the run ends or the VM goes.
 *
 * Threads: requests are served on the thread running lkvm_run (its
 * control loop watches the socket), never on a vCPU or I/O thread.
 * Before and after a run nobody serves them; clients wait in the
 * backlog, then find the socket gone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lkvm/lib/ctlsock.h"
#include "lkvm/lib/util.h"
#include "lkvm/log.h"
#include "lkvm/vm.h"

#define CTL_PROTO_VERSION	1
#define CTL_DUMP_MAX		(64 * 1024)

static const char *vm_state(struct lkvm *vm)
{
	if (atomic_load(&vm->stopping))
		return "stopping";
	if (!vm->running)
		return "created";
	return vm->paused ? "paused" : "running";
}

static void reply_info(struct lkvm *vm, struct ctl_reply *rep)
{
	struct lkvm_stats st;
	char devices[512];

	lkvm_stats(vm, &st);
	if (lkvm_device_names(vm, devices, sizeof(devices)) <= 0)
		strcpy(devices, "-");
	ctl_reply_printf(rep,
			 "vm proto=%d name=%s pid=%d state=%s cpus=%u mem_mib=%llu uptime_ms=%llu paused_ms=%llu devices=%s\n",
			 CTL_PROTO_VERSION, vm->cfg.name, (int)getpid(),
			 vm_state(vm), vm->ncpus,
			 (unsigned long long)vm->cfg.mem_mib,
			 (unsigned long long)st.uptime_ms,
			 (unsigned long long)st.paused_ms, devices);
}

static void reply_stat(struct lkvm *vm, struct ctl_reply *rep)
{
	struct lkvm_queue_stats q;
	struct lkvm_stats st;
	unsigned int i;

	lkvm_stats(vm, &st);
	ctl_reply_printf(rep,
			 "vm name=%s state=%s uptime_ms=%llu paused_ms=%llu exits_io=%llu exits_mmio=%llu exits_intr=%llu exits_other=%llu exits_notify=%llu pio_unhandled=%llu mmio_unhandled=%llu ram_bytes=%llu rss_bytes=%llu huge_bytes=%llu backing=%s\n",
			 vm->cfg.name, vm_state(vm),
			 (unsigned long long)st.uptime_ms,
			 (unsigned long long)st.paused_ms,
			 (unsigned long long)st.exits_io,
			 (unsigned long long)st.exits_mmio,
			 (unsigned long long)st.exits_intr,
			 (unsigned long long)st.exits_other,
			 (unsigned long long)st.exits_notify,
			 (unsigned long long)st.pio_unhandled,
			 (unsigned long long)st.mmio_unhandled,
			 (unsigned long long)st.ram_bytes,
			 (unsigned long long)st.ram_rss_bytes,
			 (unsigned long long)st.ram_huge_bytes,
			 st.ram_backing);
	for (i = 0; lkvm_queue_stats(vm, i, &q) == 0; i++)
		ctl_reply_printf(rep,
				 "queue device=%s kind=%s queue=%u thread=%s requests=%llu completed=%llu inflight=%llu reads=%llu writes=%llu flushes=%llu discards=%llu read_bytes=%llu write_bytes=%llu errors=%llu irqs=%llu notifies=%llu batches=%llu latency_ns=%llu cpu_ns=%llu poll_ns=%llu poll=%s\n",
				 q.device, q.kind, q.queue,
				 q.thread[0] ? q.thread : "-",
				 (unsigned long long)q.requests,
				 (unsigned long long)q.completed,
				 (unsigned long long)q.inflight,
				 (unsigned long long)q.reads,
				 (unsigned long long)q.writes,
				 (unsigned long long)q.flushes,
				 (unsigned long long)q.discards,
				 (unsigned long long)q.read_bytes,
				 (unsigned long long)q.write_bytes,
				 (unsigned long long)q.errors,
				 (unsigned long long)q.irqs,
				 (unsigned long long)q.notifies,
				 (unsigned long long)q.batches,
				 (unsigned long long)q.latency_ns,
				 (unsigned long long)q.thread_cpu_ns,
				 (unsigned long long)q.poll_ns,
				 !q.thread[0] ? "-" :
				 q.poll_adaptive ? "auto" : "fixed");
}

static int reply_memstat(struct lkvm *vm, struct ctl_reply *rep)
{
	struct lkvm_balloon_stats b;
	int ret = lkvm_balloon_stats(vm, &b);

	if (ret)
		return ret;
	ctl_reply_printf(rep,
			 "balloon target_pages=%llu actual_pages=%llu inflated_pages=%llu deflated_pages=%llu reported_bytes=%llu updates=%llu swap_in=%llu swap_out=%llu major_faults=%llu minor_faults=%llu free_memory=%llu total_memory=%llu available_memory=%llu disk_caches=%llu\n",
			 (unsigned long long)b.target_pages,
			 (unsigned long long)b.actual_pages,
			 (unsigned long long)b.inflated_pages,
			 (unsigned long long)b.deflated_pages,
			 (unsigned long long)b.reported_bytes,
			 (unsigned long long)b.updates,
			 (unsigned long long)b.swap_in,
			 (unsigned long long)b.swap_out,
			 (unsigned long long)b.major_faults,
			 (unsigned long long)b.minor_faults,
			 (unsigned long long)b.free_memory,
			 (unsigned long long)b.total_memory,
			 (unsigned long long)b.available_memory,
			 (unsigned long long)b.disk_caches);
	return 0;
}

/* A decimal argument in [0, max]; -EINVAL otherwise. */
static int parse_num(const char *s, unsigned long long max,
		     unsigned long long *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return *end || errno || *v > max ? -EINVAL : 0;
}

/* "balloon inflate|deflate MIB": moves the target by MIB. */
static int do_balloon(struct lkvm *vm, const struct ctl_request *req,
		      char *msg, size_t msglen)
{
	struct lkvm_balloon_stats b;
	unsigned long long mib, pages, mem_pages = vm->cfg.mem_mib << 8;
	bool inflate;
	int ret;

	if (req->argc != 3 || (strcmp(req->argv[1], "inflate") &&
			       strcmp(req->argv[1], "deflate")) ||
	    parse_num(req->argv[2], vm->cfg.mem_mib, &mib))
		return errf(msg, msglen, -EINVAL,
			    "usage: balloon inflate|deflate MIB (at most %llu)",
			    (unsigned long long)vm->cfg.mem_mib);
	inflate = !strcmp(req->argv[1], "inflate");
	ret = lkvm_balloon_stats(vm, &b);
	if (ret)
		return errf(msg, msglen, ret, "this VM has no balloon");
	pages = mib << 8;
	if (inflate)
		pages = MIN(mem_pages, b.target_pages + pages);
	else
		pages = b.target_pages > pages ? b.target_pages - pages : 0;
	return lkvm_balloon_set(vm, pages);
}

int vm_control_request(struct lkvm *vm, const struct ctl_request *req,
		       struct ctl_reply *rep, char *msg, size_t msglen)
{
	const char *verb = req->argv[0];
	unsigned long long n;
	char *dump;
	int ret;

	if (!strcmp(verb, "info") && req->argc == 1) {
		reply_info(vm, rep);
		return 0;
	}
	if (!strcmp(verb, "stat") && req->argc == 1) {
		reply_stat(vm, rep);
		return 0;
	}
	if (!strcmp(verb, "memstat") && req->argc == 1) {
		ret = reply_memstat(vm, rep);
		return ret ? errf(msg, msglen, ret, "this VM has no balloon") :
			     0;
	}
	if (!strcmp(verb, "stop") && req->argc == 1) {
		vm_info(vm, "stop requested on the control socket");
		lkvm_stop(vm);
		return 0;
	}
	if (!strcmp(verb, "pause") && req->argc == 1)
		return lkvm_pause(vm);
	if (!strcmp(verb, "resume") && req->argc == 1)
		return lkvm_resume(vm);
	if (!strcmp(verb, "dump") && req->argc == 1) {
		dump = malloc(CTL_DUMP_MAX);
		if (!dump)
			return -ENOMEM;
		ret = lkvm_dump_vcpus(vm, dump, CTL_DUMP_MAX);
		if (!ret)
			ctl_reply_text(rep, dump);
		free(dump);
		return ret;
	}
	if (!strcmp(verb, "nmi") && req->argc == 2) {
		if (parse_num(req->argv[1], vm->ncpus ? vm->ncpus - 1 : 0, &n))
			return errf(msg, msglen, -EINVAL,
				    "no vCPU '%s' (this VM has %u)",
				    req->argv[1], vm->ncpus);
		ret = lkvm_inject_nmi(vm, (unsigned int)n);
		return ret == -ENOTSUP ?
		       errf(msg, msglen, ret, "no NMI on this architecture") :
		       ret;
	}
	if (!strcmp(verb, "sysrq") && req->argc == 2) {
		if (strlen(req->argv[1]) != 1)
			return errf(msg, msglen, -EINVAL,
				    "a SysRq key is one character");
		ret = lkvm_sysrq(vm, req->argv[1][0]);
		return ret == -ENOTSUP ?
		       errf(msg, msglen, ret, "the console cannot carry SysRq") :
		       ret;
	}
	if (!strcmp(verb, "balloon"))
		return do_balloon(vm, req, msg, msglen);
	return errf(msg, msglen, -EINVAL, "unknown request '%.32s' (%u words)",
		    verb, req->argc);
}

static int ctl_vm_request(void *opaque, const struct ctl_request *req,
			  struct ctl_reply *rep, char *msg, size_t msglen)
{
	return vm_control_request(opaque, req, rep, msg, msglen);
}

static const struct ctl_ops ctl_vm_ops = {
	.request = ctl_vm_request,
};

int vm_control_open(struct lkvm *vm, bool default_name, char *err,
		    size_t errlen)
{
	char dir[sizeof(vm->ctl_path)], name[CTL_NAME_MAX + 1], why[256];
	unsigned int i;
	int ret;

	if (!vm->cfg.control)
		return 0;
	if (vm->cfg.control_dir) {
		snprintf(dir, sizeof(dir), "%s", vm->cfg.control_dir);
	} else {
		ret = ctl_default_dir(dir, sizeof(dir));
		if (ret < 0) {
			/* A minimal environment (an init script): run anyway. */
			vm_warn(vm, "no control socket: neither XDG_RUNTIME_DIR nor HOME is set");
			return 0;
		}
	}
	/* A default name taken by another VM of this process: -2, -3... */
	for (i = 1;; i++) {
		if (i == 1)
			snprintf(name, sizeof(name), "%s", vm->cfg.name);
		else
			snprintf(name, sizeof(name), "%.56s-%u", vm->cfg.name,
				 i);
		ret = ctl_server_open(dir, name, &ctl_vm_ops, vm, &vm->ctl,
				      why, sizeof(why));
		if (ret != -EADDRINUSE || !default_name || i == 100)
			break;
	}
	/* A bad or taken name is the configuration's fault. */
	if (ret == -EINVAL || ret == -EADDRINUSE || ret == -ENAMETOOLONG)
		return input_errf(err, errlen, ret, "%s", why);
	if (ret) {
		/* An unwritable directory costs the socket, not the VM. */
		vm_warn(vm, "no control socket: %s", why);
		return 0;
	}
	if (i > 1) {
		char *n = strdup(name);

		if (!n) {
			vm_control_close(vm);
			return errf(err, errlen, -ENOMEM, "out of memory");
		}
		free((char *)vm->cfg.name);
		vm->cfg.name = n;
	}
	snprintf(vm->ctl_path, sizeof(vm->ctl_path), "%s",
		 ctl_server_path(vm->ctl));
	return 0;
}

void vm_control_close(struct lkvm *vm)
{
	ctl_server_close(vm->ctl);
	vm->ctl = NULL;
	vm->ctl_path[0] = '\0';
}

const char *lkvm_control_path(struct lkvm *vm)
{
	return vm->ctl_path;
}

int lkvm_control_dir(char *buf, size_t len)
{
	return ctl_default_dir(buf, len);
}
