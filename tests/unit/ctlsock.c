/*
 * Tests for lib/ctlsock.c: request and record parsing, socket paths,
 * and a server (with a handler of the test's own) answering real
 * clients over its Unix socket: several requests per connection, bad,
 * oversized and cut-short requests, a client that never reads, more
 * clients than it serves, another uid, a stale socket and a live one.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lkvm/lib/ctlsock.h"
#include "lkvm/lib/util.h"
#include "test.h"

static int fake_request(void *opaque, const struct ctl_request *req,
			struct ctl_reply *rep, char *msg, size_t msglen)
{
	unsigned int i;

	(void)opaque;
	if (!strcmp(req->argv[0], "echo")) {
		ctl_reply_printf(rep, "echo n=%u", req->argc - 1);
		for (i = 1; i < req->argc; i++)
			ctl_reply_printf(rep, " a%u=%s", i, req->argv[i]);
		ctl_reply_printf(rep, "\n");
		return 0;
	}
	if (!strcmp(req->argv[0], "big") && req->argc == 2) {
		unsigned int n = atoi(req->argv[1]);
		char line[1001];

		memset(line, 'x', 1000);
		line[1000] = '\0';
		for (i = 0; i < n; i++)
			ctl_reply_printf(rep, "big i=%u v=%s\n", i, line);
		return 0;
	}
	if (!strcmp(req->argv[0], "text")) {
		ctl_reply_text(rep, "line one\nline\ttwo\n");
		return 0;
	}
	return errf(msg, msglen, -EPERM, "nope: %s", req->argv[0]);
}

static const struct ctl_ops fake_ops = { .request = fake_request };

static struct ctl_server *srv;
static atomic_bool srv_stop;

static void *serve(void *arg)
{
	(void)arg;
	while (!atomic_load(&srv_stop)) {
		struct pollfd p = { .fd = ctl_server_fd(srv), .events = POLLIN };

		if (poll(&p, 1, 20) > 0)
			ctl_server_serve(srv);
	}
	return NULL;
}

struct got {
	unsigned int n;
	char first[256];
};

static void on_record(void *opaque, char *line)
{
	struct got *g = opaque;

	if (!g->n++)
		snprintf(g->first, sizeof(g->first), "%s", line);
}

/* Raw: send bytes, read the whole reply until the server closes or 1 s. */
static size_t raw_exchange(const char *path, const void *buf, size_t len,
			   bool half_close, char *out, size_t outlen)
{
	int fd = ctl_connect(path);
	size_t have = 0;

	if (fd < 0)
		return 0;
	if (len && send(fd, buf, len, MSG_NOSIGNAL) < 0) {
		close(fd);
		return 0;
	}
	if (half_close)
		shutdown(fd, SHUT_WR);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 1000) <= 0)
			break;
		n = recv(fd, out + have, outlen - 1 - have, 0);
		if (n <= 0)
			break;
		have += n;
	}
	out[have] = '\0';
	close(fd);
	return have;
}

static void test_parsers(void)
{
	struct ctl_request req;
	struct ctl_record rec;
	const char *why;
	char line[64], big[600];

	CHECK(ctl_parse_request("stat", 4, &req, &why) == 0 && req.argc == 1 &&
	      !strcmp(req.argv[0], "stat"));
	CHECK(ctl_parse_request("  nmi   1 ", 10, &req, &why) == 0 &&
	      req.argc == 2 && !strcmp(req.argv[1], "1"));
	CHECK(ctl_parse_request("a b c d e f g h i", 17, &req, &why) == -EINVAL);
	CHECK(ctl_parse_request("   ", 3, &req, &why) == -EINVAL);
	CHECK(ctl_parse_request("st\x01t", 4, &req, &why) == -EINVAL);
	CHECK(ctl_parse_request("st\0at", 5, &req, &why) == -EINVAL);
	memset(big, 'a', sizeof(big));
	CHECK(ctl_parse_request(big, sizeof(big), &req, &why) == -EMSGSIZE);

	strcpy(line, "queue device=blk0 queue=0 empty=");
	CHECK(ctl_parse_record(line, &rec) == 0 && !strcmp(rec.type, "queue") &&
	      rec.n == 3 && !strcmp(ctl_record_get(&rec, "device"), "blk0") &&
	      !strcmp(ctl_record_get(&rec, "empty"), "") &&
	      !ctl_record_get(&rec, "nothing"));
	strcpy(line, "vm =x");
	CHECK(ctl_parse_record(line, &rec) == -EINVAL);
	strcpy(line, "vm word");
	CHECK(ctl_parse_record(line, &rec) == -EINVAL);
	strcpy(line, "a=b c=d");
	CHECK(ctl_parse_record(line, &rec) == -EINVAL);
	strcpy(line, "");
	CHECK(ctl_parse_record(line, &rec) == -EINVAL);

	CHECK(ctl_name_valid("ci1") && ctl_name_valid("guest-123_a.b+c"));
	CHECK(!ctl_name_valid("") && !ctl_name_valid(".hidden") &&
	      !ctl_name_valid("a/b") && !ctl_name_valid("a b") &&
	      !ctl_name_valid("x\n"));
	memset(big, 'n', 65);
	big[65] = '\0';
	CHECK(!ctl_name_valid(big));
}

static void test_default_dir(void)
{
	char buf[128], *xdg = getenv("XDG_RUNTIME_DIR"), *home = getenv("HOME");
	char *sx = xdg ? strdup(xdg) : NULL, *sh = home ? strdup(home) : NULL;

	setenv("XDG_RUNTIME_DIR", "/run/user/7", 1);
	CHECK(ctl_default_dir(buf, sizeof(buf)) > 0 &&
	      !strcmp(buf, "/run/user/7/lkvm"));
	unsetenv("XDG_RUNTIME_DIR");
	setenv("HOME", "/home/u", 1);
	CHECK(ctl_default_dir(buf, sizeof(buf)) > 0 &&
	      !strcmp(buf, "/home/u/.lkvm"));
	unsetenv("HOME");
	CHECK(ctl_default_dir(buf, sizeof(buf)) == -ENOENT);
	setenv("HOME", "/home/u", 1);
	CHECK(ctl_default_dir(buf, 5) == -ENAMETOOLONG);
	if (sx)
		setenv("XDG_RUNTIME_DIR", sx, 1);
	if (sh)
		setenv("HOME", sh, 1);
	else
		unsetenv("HOME");
	free(sx);
	free(sh);
}

static void test_server(void)
{
	char dir[64], path[128], err[256], out[1 << 16];
	struct ctl_server *other;
	struct got g = { 0 };
	pthread_t th;
	struct stat st;
	int fd, fds[CTL_MAX_CLIENTS + 1], i, ret;

	snprintf(dir, sizeof(dir), "/tmp/lkvm-ctltest-%d/sub", (int)getpid());
	*strrchr(dir, '/') = '\0';
	mkdir(dir, 0755);
	strcat(dir, "/sub");
	CHECK(ctl_server_open(dir, "bad/name", &fake_ops, NULL, &srv, err,
			      sizeof(err)) == -EINVAL);
	ret = ctl_server_open(dir, "t1", &fake_ops, NULL, &srv, err,
			      sizeof(err));
	CHECK(ret == 0);
	if (ret) {
		fprintf(stderr, "%s\n", err);
		return;
	}
	snprintf(path, sizeof(path), "%s/t1.sock", dir);
	CHECK(!strcmp(ctl_server_path(srv), path));
	CHECK(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700);
	CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	      (st.st_mode & 0777) == 0600);
	/* A second server of the same name: refused while this one lives. */
	CHECK(ctl_server_open(dir, "t1", &fake_ops, NULL, &other, err,
			      sizeof(err)) == -EADDRINUSE &&
	      strstr(err, "already running"));
	pthread_create(&th, NULL, serve, NULL);

	/* Requests, one after another on one connection. */
	fd = ctl_connect(path);
	CHECK(fd >= 0);
	CHECK(ctl_call(fd, "echo a b", on_record, &g, err, sizeof(err)) == 0 &&
	      g.n == 1 && !strcmp(g.first, "echo n=2 a1=a a2=b"));
	g.n = 0;
	CHECK(ctl_call(fd, "fail", on_record, &g, err, sizeof(err)) == -EPERM &&
	      !strcmp(err, "nope: fail") && g.n == 0);
	CHECK(ctl_call(fd, "big 20", on_record, &g, err, sizeof(err)) == 0 &&
	      g.n == 20);
	g.n = 0;
	CHECK(ctl_call(fd, "text", on_record, &g, err, sizeof(err)) == 0 &&
	      g.n == 2 && !strcmp(g.first, "text line one"));
	CHECK(ctl_call(fd, "bad\x7f", NULL, NULL, err, sizeof(err)) ==
	      -EINVAL);
	close(fd);

	/* Pipelined requests in one write, then EOF: all answered. */
	raw_exchange(path, "echo 1\necho 2\n\nfail\n", 20, true, out,
		     sizeof(out));
	CHECK(!strcmp(out, "echo n=1 a1=1\nok\necho n=1 a1=2\nok\n"
			   "error 22 empty request\nerror 1 nope: fail\n"));
	/* Too long without a newline: an error, then the server hangs up. */
	{
		char big[CTL_LINE_MAX + 10];

		memset(big, 'a', sizeof(big));
		raw_exchange(path, big, sizeof(big), false, out, sizeof(out));
		CHECK(!strcmp(out, "error 90 request too long\n"));
	}
	/* Cut short: no answer, and the next client is served. */
	raw_exchange(path, "echo unfinish", 13, true, out, sizeof(out));
	CHECK(out[0] == '\0');
	/* A reply too large for the server to hold. */
	raw_exchange(path, "big 2000\n", 9, true, out, sizeof(out));
	CHECK(!strcmp(out, "error 105 reply too large\n"));

	/* A client that asks for a lot and never reads blocks nobody. */
	fd = ctl_connect(path);
	for (i = 0; i < 40; i++)
		if (send(fd, "big 900\n", 8, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			break;
	usleep(100000);
	g.n = 0;
	{
		int fd2 = ctl_connect(path);

		CHECK(fd2 >= 0 && ctl_call(fd2, "echo x", on_record, &g, err,
					   sizeof(err)) == 0 && g.n == 1);
		close(fd2);
	}
	close(fd);

	/* More clients than it serves: the extra one is refused. */
	for (i = 0; i <= CTL_MAX_CLIENTS; i++)
		fds[i] = ctl_connect(path);
	usleep(100000);
	{
		char buf[128] = { 0 };
		struct pollfd p = { .fd = fds[CTL_MAX_CLIENTS], .events = POLLIN };

		CHECK(poll(&p, 1, 2000) == 1 &&
		      recv(fds[CTL_MAX_CLIENTS], buf, sizeof(buf) - 1, 0) > 0 &&
		      !strcmp(buf, "error 16 too many control connections\n"));
	}
	for (i = 0; i <= CTL_MAX_CLIENTS; i++)
		close(fds[i]);
	usleep(100000);

	/* Another uid: refused by SO_PEERCRED even where the file lets it in. */
	if (geteuid() == 0) {
		pid_t pid;
		int status;

		chmod(dir, 0755);
		chmod(path, 0666);
		pid = fork();
		if (pid == 0) {
			char buf[128] = { 0 };
			int c;

			if (setresgid(65534, 65534, 65534) ||
			    setresuid(65534, 65534, 65534))
				_exit(3);
			c = ctl_connect(path);
			if (c < 0)
				_exit(4);
			if (send(c, "echo\n", 5, MSG_NOSIGNAL) < 0) {
				/* refused before it could send: fine */
			}
			if (recv(c, buf, sizeof(buf) - 1, 0) <= 0)
				_exit(5);
			_exit(strcmp(buf, "error 13 not this VM's user\n") ? 6 : 0);
		}
		waitpid(pid, &status, 0);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		chmod(path, 0600);
		chmod(dir, 0700);
	} else {
		test_skip("another uid: needs root to become one");
	}

	atomic_store(&srv_stop, true);
	pthread_join(th, NULL);
	ctl_server_close(srv);
	CHECK(access(path, F_OK) < 0 && errno == ENOENT);

	/* A socket left by a dead process is replaced. */
	{
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int s = socket(AF_UNIX, SOCK_STREAM, 0);

		strcpy(sa.sun_path, path);
		CHECK(bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0);
		close(s);	/* the file stays; nobody listens */
		CHECK(ctl_connect(path) == -ECONNREFUSED);
		CHECK(ctl_server_open(dir, "t1", &fake_ops, NULL, &srv, err,
				      sizeof(err)) == 0);
		fd = ctl_connect(path);
		CHECK(fd >= 0);
		close(fd);
		ctl_server_close(srv);
	}
	rmdir(dir);
	*strrchr(dir, '/') = '\0';
	rmdir(dir);
}

int main(void)
{
	test_parsers();
	test_default_dir();
	test_server();
	return test_done();
}
