/*
 * console.c - tests for vmm/console.c: a console reader that goes away
 * (a closed pipe) neither kills the process (SIGPIPE keeps its default
 * action here, as in an embedder that never heard of it) nor stops the
 * other sinks, and is reported once; output reaches the embedder's
 * callback; input from a regular file is read to its end.
 */
#include <signal.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lkvm/console.h"
#include "lkvm/lib/iothread.h"
#include "lkvm/vm.h"
#include "test.h"

static atomic_uint warnings, handled;
static struct lkvm vm;
static char cb_buf[64];
static size_t cb_len;

static void log_fn(void *opaque, enum lkvm_log_level level, const char *msg)
{
	(void)opaque;
	(void)level;
	if (strstr(msg, "console output"))
		atomic_fetch_add(&warnings, 1);
}

static void cb(void *opaque, const void *buf, size_t len)
{
	(void)opaque;
	if (cb_len + len <= sizeof(cb_buf)) {
		memcpy(cb_buf + cb_len, buf, len);
		cb_len += len;
	}
}

/* Writes to the console from an lkvm thread, as a vCPU or queue would. */
static void writer(void *opaque, uint32_t events)
{
	int fd = *(int *)opaque;
	uint64_t v;

	(void)events;
	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return;
	console_write(&vm.console, "hello\n", 6);
	atomic_fetch_add(&handled, 1);
}

static void test_closed_pipe(void)
{
	struct sigaction sa;
	struct iothread t;
	char logpath[] = "/tmp/lkvm-console-XXXXXX", got[32] = "";
	int p[2], logfd = mkstemp(logpath), kick = eventfd(0, EFD_NONBLOCK);
	uint64_t one = 1;
	int i;

	CHECK(pipe(p) == 0 && logfd >= 0 && kick >= 0);
	close(p[0]);		/* the reader is gone */
	vm.cfg.log = log_fn;
	vm.cfg.log_level = LKVM_LOG_WARN;
	CHECK_EQ(console_init(&vm.console, &vm, -1, p[1], logfd, false), 0);
	vm.console.cb = cb;
	CHECK_EQ(iothread_init(&t, "t-console"), 0);
	CHECK_EQ(iothread_add(&t, kick, EPOLLIN, writer, &kick), 0);
	CHECK_EQ(iothread_start(&t), 0);
	for (i = 0; i < 3; i++) {
		unsigned int before = atomic_load(&handled);

		CHECK(write(kick, &one, sizeof(one)) == sizeof(one));
		while (atomic_load(&handled) == before)
			usleep(1000);
	}
	iothread_free(&t);
	/* Still here: SIGPIPE did not end the process. */
	CHECK(sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL);
	CHECK_EQ(atomic_load(&warnings), 1);
	CHECK(vm.console.out_dead);
	CHECK(!vm.console.log_dead);
	CHECK(pread(logfd, got, sizeof(got) - 1, 0) == 18);
	CHECK(!strcmp(got, "hello\nhello\nhello\n"));
	CHECK_EQ(cb_len, 18);
	console_free(&vm.console);
	close(p[1]);
	close(logfd);
	unlink(logpath);
	close(kick);
}

static uint8_t sunk[8192];
static size_t nsunk;

static size_t sink_space(void *opaque)
{
	(void)opaque;
	return sizeof(sunk) - nsunk;
}

static void sink_push(void *opaque, const uint8_t *buf, size_t len)
{
	(void)opaque;
	memcpy(sunk + nsunk, buf, len);
	nsunk += len;
}

static const struct console_sink_ops sink = {
	.space = sink_space,
	.push = sink_push,
};

static void test_file_input(void)
{
	char path[] = "/tmp/lkvm-console-in-XXXXXX";
	int fd = mkstemp(path), i;
	char text[1000];

	for (i = 0; i < (int)sizeof(text); i++)
		text[i] = 'a' + i % 26;
	CHECK(fd >= 0 && write(fd, text, sizeof(text)) == sizeof(text));
	lseek(fd, 0, SEEK_SET);
	CHECK_EQ(console_init(&vm.console, &vm, fd, -1, -1, false), 0);
	console_set_sink(&vm.console, &sink, NULL);
	for (i = 0; i < 100 && console_input(&vm.console); i++)
		;
	CHECK(vm.console.in_eof);
	CHECK_EQ(nsunk, sizeof(text));
	CHECK(!memcmp(sunk, text, sizeof(text)));
	console_free(&vm.console);
	close(fd);
	unlink(path);
}

int main(void)
{
	alarm(120);
	test_closed_pipe();
	test_file_input();
	return test_done();
}
