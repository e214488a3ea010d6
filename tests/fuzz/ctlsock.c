/*
 * Fuzz target for the control socket: the input is what a client sends.
 * One server lives for the whole run (in a private directory), answering
 * with the real request handler of a VM that exists but does not run
 * (so pause, dump and the rest refuse, and info and stat answer).  Each
 * input is sent on a new connection, which is then half-closed; the
 * server must answer what it can, drop the rest and close, never crash,
 * block or leak.  The reply lines go through the client's record parser.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lkvm/lib/ctlsock.h"
#include "lkvm/vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ctl_server *server;
static struct lkvm *vm;
static char path[128], dir[64];

static int fuzz_request(void *opaque, const struct ctl_request *req,
			struct ctl_reply *rep, char *msg, size_t msglen)
{
	return vm_control_request(opaque, req, rep, msg, msglen);
}

static const struct ctl_ops fuzz_ops = { .request = fuzz_request };

static void cleanup(void)
{
	ctl_server_close(server);
	rmdir(dir);
	free(vm);
}

static bool setup(void)
{
	char err[256];

	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return false;
	vm->cfg.name = "fuzz";
	vm->cfg.mem_mib = 64;
	vm->stop_fd = vm->ctl_wake_fd = vm->kvm_fd = vm->vm_fd = -1;
	snprintf(dir, sizeof(dir), "/tmp/lkvm-fuzz-ctl-%d", (int)getpid());
	if (ctl_server_open(dir, "fuzz", &fuzz_ops, vm, &server, err,
			    sizeof(err))) {
		fprintf(stderr, "ctlsock fuzz: %s\n", err);
		return false;
	}
	snprintf(path, sizeof(path), "%s", ctl_server_path(server));
	atexit(cleanup);
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char buf[8192], line[8192];
	size_t have = 0, sent = 0;
	int fd, rounds;

	if (!server && !setup())
		abort();
	fd = ctl_connect(path);
	if (fd < 0)
		abort();
	/* Send, serve, read until the server closes. */
	for (rounds = 0; rounds < 100000; rounds++) {
		ssize_t n;

		if (sent < size) {
			n = send(fd, data + sent, size - sent,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0)
				sent += n;
			if (sent == size)
				shutdown(fd, SHUT_WR);
		} else if (!size && rounds == 0) {
			shutdown(fd, SHUT_WR);
		}
		ctl_server_serve(server);
		n = recv(fd, buf + have, sizeof(buf) - have, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			break;
		if (n > 0)
			have += n;
		while (have) {
			char *nl = memchr(buf, '\n', have);
			struct ctl_record rec;
			size_t len;

			if (!nl) {
				if (have == sizeof(buf))
					have = 0;	/* a long line: skip */
				break;
			}
			len = nl - buf;
			memcpy(line, buf, len);
			line[len] = '\0';
			ctl_parse_record(line, &rec);
			memmove(buf, nl + 1, have - len - 1);
			have -= len + 1;
		}
	}
	if (rounds == 100000)
		abort();	/* the server never closed: it would block */
	close(fd);
	return 0;
}

#ifndef LKVM_LIBFUZZER
#include "replay.h"

int main(int argc, char **argv)
{
	return replay_main(argc, argv, "control socket messages", 2048, false);
}
#endif
