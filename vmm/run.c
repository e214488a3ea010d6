/*
 * run.c - lkvm_run(): starts the vCPU threads and runs the control loop
 * on the caller's thread until the guest ends.  The loop owns console
 * input, the timeout and the control socket; everything that ends a run
 * (a vCPU, a device, lkvm_stop(), the timer) funnels through
 * vm->stop_fd.  The timeout counts running time only: a pause or resume
 * wakes the loop (ctl_wake_fd) to re-arm it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "lkvm/arch.h"
#include "lkvm/device.h"
#include "lkvm/log.h"
#include "lkvm/seccomp.h"
#include "lkvm/lib/ctlsock.h"
#include "lkvm/lib/util.h"
#include "lkvm/vcpu.h"
#include "lkvm/vm.h"

enum { EV_STOP, EV_TIMER, EV_INPUT, EV_SPACE, EV_CTL, EV_WAKE };

static void kick_handler(int sig)
{
	(void)sig;	/* only there to make KVM_RUN return EINTR */
}

static int install_kick_handler(int sig)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	sigemptyset(&sa.sa_mask);
	return sigaction(sig, &sa, NULL) < 0 ? -errno : 0;
}

static int epoll_add(int ep, int fd, uint32_t events, uint64_t tag)
{
	struct epoll_event ev = { .events = events, .data.u64 = tag };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int epoll_mod(int ep, int fd, uint32_t events, uint64_t tag)
{
	struct epoll_event ev = { .events = events, .data.u64 = tag };

	return epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

/*
 * (Re)arms the timeout for the running time left: the run's start plus
 * the timeout plus the time spent paused.  Paused: disarmed.  Returns
 * true when the time is up.
 */
static bool timer_rearm(struct lkvm *vm, int fd)
{
	uint64_t deadline = vm->run_start_ns + vm->cfg.timeout_ms * 1000000 +
			    vm_paused_ns(vm), now = now_ns();
	struct itimerspec its = { 0 };

	if (!vm->paused) {
		if (now >= deadline)
			return true;
		its.it_value.tv_sec = (deadline - now) / 1000000000;
		its.it_value.tv_nsec = (deadline - now) % 1000000000;
	}
	timerfd_settime(fd, 0, &its, NULL);
	return false;
}

static void drain_fd(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0) {
		/* nothing pending: fine */
	}
}

/*
 * Control loop.  Returns when a result has been recorded.
 *
 * Console input that epoll cannot watch (a regular file, /dev/null) is
 * always ready: it is read whenever the sink has room, until its end,
 * and the loop only sleeps while the sink is full.
 */
static void control_loop(struct lkvm *vm, int ep, int timer_fd)
{
	struct console *con = &vm->console;
	bool input = false, file_input = false, file_ready = false;

	if (con->in >= 0 && con->sink) {
		if (epoll_add(ep, con->in, EPOLLIN, EV_INPUT) == 0)
			input = true;
		else if (errno == EPERM)
			file_input = file_ready = true;
	}

	while (!atomic_load(&vm->result_set)) {
		struct epoll_event evs[4];
		int i, n;

		if (file_input && file_ready) {
			if (!console_input(con)) {
				if (con->in_eof)
					file_input = false;
				file_ready = false;	/* sink full: wait */
			}
		}
		n = epoll_wait(ep, evs, ARRAY_SIZE(evs),
			       file_input && file_ready ? 0 : -1);
		if (n < 0 && errno != EINTR) {
			vm_request_exit(vm, LKVM_EXIT_ERROR, 1,
					"epoll_wait: %s", strerror(errno));
			break;
		}
		for (i = 0; i < n; i++) {
			switch (evs[i].data.u64) {
			case EV_STOP:
				drain_fd(vm->stop_fd);
				vm_request_exit(vm, LKVM_EXIT_STOPPED, 0,
						"stopped on request");
				break;
			case EV_TIMER:
			case EV_WAKE:
				drain_fd(vm->ctl_wake_fd);
				if (timer_fd < 0 || !timer_rearm(vm, timer_fd))
					break;
				vm_request_exit(vm, LKVM_EXIT_TIMEOUT, 0,
						"timed out after %llu ms",
						(unsigned long long)
						vm->cfg.timeout_ms);
				break;
			case EV_CTL:
				ctl_server_serve(vm->ctl);
				break;
			case EV_INPUT:
				if (console_input(con))
					break;
				if (con->in_eof) {
					epoll_ctl(ep, EPOLL_CTL_DEL, con->in,
						  NULL);
					input = false;
				} else {
					/* Sink full: wait for its signal. */
					epoll_mod(ep, con->in, 0, EV_INPUT);
				}
				break;
			case EV_SPACE:
				drain_fd(con->space_fd);
				if (input)
					epoll_mod(ep, con->in, EPOLLIN,
						  EV_INPUT);
				file_ready = file_input;
				break;
			}
		}
	}
	if (input)
		epoll_ctl(ep, EPOLL_CTL_DEL, con->in, NULL);
}

/* Where a hung guest was stuck: a debug-level register dump per vCPU. */
static void log_vcpu_state(struct lkvm *vm)
{
	char dump[1536];
	unsigned int i;

	if (vm->cfg.log_level < LKVM_LOG_DEBUG)
		return;
	for (i = 0; i < vm->ncpus; i++) {
		dump[0] = '\0';
		arch_ops.vcpu_dump(&vm->vcpus[i], dump, sizeof(dump));
		vm_dbg(vm, "vCPU %u at timeout:\n%s", i, dump);
	}
}

int lkvm_run(struct lkvm *vm, struct lkvm_result *res)
{
	int ep = -1, timer_fd = -1, ret;

	memset(res, 0, sizeof(*res));
	if (vm->running || atomic_load(&vm->result_set)) {
		res->reason = LKVM_EXIT_ERROR;
		return errf(res->message, sizeof(res->message), -EBUSY,
			    "this VM has already run");
	}
	vm->running = true;
	if (!vm->cfg.kick_signal)
		vm->cfg.kick_signal = SIGRTMIN;
	ret = install_kick_handler(vm->cfg.kick_signal);
	if (!ret && vm->cfg.seccomp)
		ret = seccomp_install_handler();
	if (ret)
		goto fail;
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0) {
		ret = -errno;
		goto fail;
	}
	vm->run_start_ns = now_ns();
	ret = epoll_add(ep, vm->stop_fd, EPOLLIN, EV_STOP);
	if (!ret)
		ret = epoll_add(ep, vm->console.space_fd, EPOLLIN, EV_SPACE);
	if (!ret)
		ret = epoll_add(ep, vm->ctl_wake_fd, EPOLLIN, EV_WAKE);
	if (!ret && vm->ctl)
		ret = epoll_add(ep, ctl_server_fd(vm->ctl), EPOLLIN, EV_CTL);
	if (!ret && vm->cfg.timeout_ms) {
		timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
		ret = timer_fd < 0 ? -errno :
		      epoll_add(ep, timer_fd, EPOLLIN, EV_TIMER);
		if (!ret)
			timer_rearm(vm, timer_fd);
	}
	if (ret)
		goto fail;
	vm_apply_halt_poll(vm);
	ret = vm_devices_start(vm);
	if (ret)
		goto fail;
	ret = vcpus_start(vm, res->message, sizeof(res->message));
	if (ret) {
		vm_request_exit(vm, LKVM_EXIT_ERROR, 1, "%s", res->message);
		vm_control_close(vm);
		vcpus_stop(vm);
		vm_devices_stop(vm);
		goto out;
	}
	control_loop(vm, ep, timer_fd);
	/* Nobody can ask anything of a VM that is going. */
	vm_control_close(vm);
	vm_ctl_end(vm);
	vcpus_stop(vm);
	vm_devices_stop(vm);
	if (vm->result.reason == LKVM_EXIT_TIMEOUT)
		log_vcpu_state(vm);
out:
	*res = vm->result;
	if (timer_fd >= 0)
		close(timer_fd);
	close(ep);
	return ret;
fail:
	if (ep >= 0)
		close(ep);
	if (timer_fd >= 0)
		close(timer_fd);
	res->reason = LKVM_EXIT_ERROR;
	return errf(res->message, sizeof(res->message), ret,
		    "cannot start the VM: %s", strerror(-ret));
}
