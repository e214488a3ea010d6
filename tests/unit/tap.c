/*
 * tap.c - the tap backend taking a tap the embedder opened (fd=N): its
 * name comes from the kernel, the embedder's descriptor stays theirs,
 * and what is not a vnet-header tap, or a request for more queue pairs
 * than one descriptor gives, is refused with a usage error.  Needs root
 * and /dev/net/tun (else one skip).
 */
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "lkvm/lib/util.h"
#include "lkvm/net/net.h"
#include "test.h"

static int open_tap(char *name)
{
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -1;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lkfd%d", getpid() % 10000);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		close(fd);
		return -1;
	}
	snprintf(name, IFNAMSIZ, "%s", ifr.ifr_name);
	return fd;
}

static int open_spec(const char *fmt, int fd, unsigned int queues,
		     struct net_backend **nb, char *err)
{
	struct net_spec spec;
	char s[64];
	int ret;

	snprintf(s, sizeof(s), fmt, fd);
	ret = net_spec_parse(s, &spec, err, 256);
	if (ret)
		return ret;
	return net_open(nb, &spec, queues, err, 256);
}

int main(void)
{
	struct net_backend *nb = NULL;
	char name[IFNAMSIZ], err[256];
	int fd, null;

	if (getuid() != 0 || access("/dev/net/tun", R_OK | W_OK)) {
		printf("SKIP: needs root and /dev/net/tun\n0 passed, 0 failed, 1 skipped\n");
		return 0;
	}
	fd = open_tap(name);
	CHECK(fd >= 0);
	CHECK_EQ(open_spec("mode=tap,fd=%d", fd, 1, &nb, err), 0);
	if (nb) {
		CHECK(!strcmp(nb->ifname, name));
		CHECK(nb->fds[0] != fd);
		CHECK(!nb->created);
		net_close(nb);
	}
	CHECK(fcntl(fd, F_GETFD) >= 0);		/* theirs stays open */
	CHECK(err_is_input(open_spec("mode=tap,fd=%d", fd, 2, &nb, err)));
	CHECK(strstr(err, "one queue pair") != NULL);
	null = open("/dev/null", O_RDWR);
	CHECK(err_is_input(open_spec("mode=tap,fd=%d", null, 1, &nb, err)));
	CHECK(strstr(err, "not a tap") != NULL);
	CHECK(err_is_input(open_spec("mode=tap,fd=%d", 999, 1, &nb, err)));
	close(null);
	close(fd);
	return test_done();
}
