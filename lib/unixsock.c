/*
 * unixsock.c - Unix stream sockets by path (see unixsock.h).  Any
 * thread; no state.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lkvm/lib/unixsock.h"

static int sock_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

int unix_connect(const char *path, int flags)
{
	struct sockaddr_un sa;
	int fd, ret = sock_addr(path, &sa);

	if (ret)
		return ret;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

/* Binds path, replacing a socket whose server is gone. */
static int bind_path(int fd, const char *path)
{
	struct sockaddr_un sa;
	struct stat st;
	int ret = sock_addr(path, &sa), peer;

	if (ret)
		return ret;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return 0;
	if (errno != EADDRINUSE)
		return -errno;
	/* Never remove what is not a socket: a user's file, say. */
	if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return -EADDRINUSE;
	peer = unix_connect(path, 0);
	if (peer >= 0) {
		close(peer);
		return -EADDRINUSE;
	}
	if (peer != -ECONNREFUSED)
		return -EADDRINUSE;
	unlink(path);
	return bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
}

int unix_listen(const char *path, int backlog)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int ret;

	if (fd < 0)
		return -errno;
	/*
	 * Linux creates the socket file with the socket's own mode (less
	 * the umask): no moment at which others may connect.
	 */
	if (fchmod(fd, 0600) < 0) {
		ret = -errno;
		goto fail;
	}
	ret = bind_path(fd, path);
	if (ret)
		goto fail;
	if (chmod(path, 0600) < 0 || listen(fd, backlog) < 0) {
		ret = -errno;
		unlink(path);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return ret;
}
