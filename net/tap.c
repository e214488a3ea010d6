/*
 * tap.c - the tap backend: /dev/net/tun with a virtio-net header on each
 * frame (IFF_VNET_HDR) and one fd per queue pair (IFF_MULTI_QUEUE).
 *
 * A tap that does not exist is created and brought up; it disappears by
 * itself when the last fd closes, so lkvm removes what it created even
 * when it is killed.  A tap that exists (a persistent one, made by
 * `ip tuntap add ... user U` so an unprivileged user may attach) is
 * attached to and left as it was.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lkvm/net/net.h"
#include "lkvm/lib/util.h"

extern char **environ;

/* The header virtio 1.x uses: virtio_net_hdr plus num_buffers. */

static int tap_attach(const char *name, bool mq, char *got)
{
	struct ifreq ifr;
	int fd, err;

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR |
			(mq ? IFF_MULTI_QUEUE : 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	memcpy(got, ifr.ifr_name, IFNAMSIZ);
	got[IFNAMSIZ - 1] = '\0';
	return fd;
}

static int tap_error(struct net_backend *nb, bool existed, int ret, char *err,
		     size_t errlen)
{
	const char *name = nb->spec.tapif[0] ? nb->spec.tapif : "(new)";

	if (ret == -EPERM || ret == -EACCES)
		return errf(err, errlen, ret,
			    "network: cannot %s tap '%s': %s (creating a tap needs CAP_NET_ADMIN; an unprivileged user can attach to one made for it: ip tuntap add dev NAME mode tap vnet_hdr%s user USER)",
			    existed ? "attach to" : "create", name,
			    strerror(-ret),
			    nb->nqueues > 1 ? " multi_queue" : "");
	if (ret == -EBUSY)
		return errf(err, errlen, ret,
			    "network: tap '%s' is in use by another process",
			    name);
	if (ret == -EINVAL && existed)
		return errf(err, errlen, ret,
			    "network: cannot attach to '%s': not a tap, or its multi_queue setting does not match queues=%u",
			    name, nb->nqueues);
	if (ret == -ENOENT || ret == -ENODEV)
		return errf(err, errlen, ret,
			    "network: /dev/net/tun is missing (modprobe tun)");
	return errf(err, errlen, ret, "network: cannot open tap '%s': %s",
		    name, strerror(-ret));
}

/* Interface requests through a throwaway socket; -errno on failure. */
static int tap_ifreq(const char *name, unsigned long req, struct ifreq *ifr)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int ret = 0;

	if (s < 0)
		return -errno;
	snprintf(ifr->ifr_name, sizeof(ifr->ifr_name), "%s", name);
	if (ioctl(s, req, ifr) < 0)
		ret = -errno;
	close(s);
	return ret;
}

static int tap_link_up(const char *name)
{
	struct ifreq ifr;
	int ret;

	memset(&ifr, 0, sizeof(ifr));
	ret = tap_ifreq(name, SIOCGIFFLAGS, &ifr);
	if (ret)
		return ret;
	ifr.ifr_flags |= IFF_UP;
	return tap_ifreq(name, SIOCSIFFLAGS, &ifr);
}

/* The script is run as `script IFNAME` and must exit 0. */
static int tap_run_script(struct net_backend *nb, char *err, size_t errlen)
{
	char *argv[] = { nb->spec.script, nb->ifname, NULL };
	int status;
	pid_t pid;
	int ret;

	ret = posix_spawn(&pid, nb->spec.script, NULL, NULL, argv, environ);
	if (ret)
		return errf(err, errlen, -ret,
			    "network: cannot run script '%s': %s",
			    nb->spec.script, strerror(ret));
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return errf(err, errlen, -errno,
				    "network: script '%s': %s",
				    nb->spec.script, strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return errf(err, errlen, -EIO,
			    "network: script '%s %s' failed (%s %d)",
			    nb->spec.script, nb->ifname,
			    WIFEXITED(status) ? "exit status" : "signal",
			    WIFEXITED(status) ? WEXITSTATUS(status) :
						WTERMSIG(status));
	return 0;
}

/* Which receive offloads this kernel's tap can give us. */
static void tap_probe_offloads(struct net_backend *nb)
{
	static const unsigned int tries[] = {
		TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_UFO,
		TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN,
		TUN_F_CSUM,
	};
	unsigned int i;

	nb->offloads = 0;
	for (i = 0; i < ARRAY_SIZE(tries); i++) {
		if (ioctl(nb->fds[0], TUNSETOFFLOAD, (unsigned long)tries[i]) == 0) {
			nb->offloads = tries[i];
			break;
		}
	}
	/* Nothing until the guest says what it takes. */
	if (ioctl(nb->fds[0], TUNSETOFFLOAD, 0UL) < 0)
		nb->offloads = 0;
}

/*
 * fd=N: a tap the embedder opened (perhaps in another network
 * namespace, with privileges we lack): a copy of it, non-blocking, and
 * its name from the kernel.  One queue pair: a multiqueue tap needs a
 * descriptor per queue.
 */
static int tap_adopt(struct net_backend *nb, char *err, size_t errlen)
{
	struct ifreq ifr;
	int fd;

	if (nb->nqueues > 1)
		return input_errf(err, errlen, -EINVAL,
				  "network: fd=%d gives one queue pair, not %u",
				  nb->spec.fd, nb->nqueues);
	memset(&ifr, 0, sizeof(ifr));
	if (ioctl(nb->spec.fd, TUNGETIFF, &ifr) < 0)
		return input_errf(err, errlen, -EINVAL,
				  "network: fd=%d is not a tap: %s", nb->spec.fd,
				  strerror(errno));
	if (!(ifr.ifr_flags & IFF_TAP) || !(ifr.ifr_flags & IFF_VNET_HDR))
		return input_errf(err, errlen, -EINVAL,
				  "network: fd=%d: want a tap opened with IFF_TAP | IFF_VNET_HDR",
				  nb->spec.fd);
	fd = fcntl(nb->spec.fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		return errf(err, errlen, -errno, "network: fd=%d: %s",
			    nb->spec.fd, strerror(errno));
	snprintf(nb->ifname, sizeof(nb->ifname), "%s", ifr.ifr_name);
	return fd;
}

static int tap_open(struct net_backend *nb, char *err, size_t errlen)
{
	const char *want = nb->spec.tapif[0] ? nb->spec.tapif : "lkvm%d";
	bool existed = nb->spec.tapif[0] && if_nametoindex(nb->spec.tapif);
	bool mq = nb->nqueues > 1;
	int hdr = NET_VNET_HDR_LEN;
	struct ifreq ifr;
	unsigned int i;
	int fd;

	if (nb->spec.has_fd) {
		fd = tap_adopt(nb, err, errlen);
		if (fd < 0)
			return fd;
		existed = true;
	} else {
		fd = tap_attach(want, mq, nb->ifname);
		/* An existing single-queue tap, one queue pair: fine. */
		if (fd == -EINVAL && existed && !mq)
			fd = tap_attach(want, true, nb->ifname);
		if (fd < 0)
			return tap_error(nb, existed, fd, err, errlen);
	}
	nb->fds[0] = fd;
	nb->created = !existed;
	nb->fd_frames = true;
	for (i = 1; i < nb->nqueues; i++) {
		char again[IFNAMSIZ];

		fd = tap_attach(nb->ifname, true, again);
		if (fd < 0)
			return tap_error(nb, true, fd, err, errlen);
		nb->fds[i] = fd;
	}
	for (i = 0; i < nb->nqueues; i++)
		if (ioctl(nb->fds[i], TUNSETVNETHDRSZ, &hdr) < 0)
			return errf(err, errlen, -errno,
				    "network: %s: no virtio-net headers on this tap: %s",
				    nb->ifname, strerror(errno));
	nb->hdr_len = NET_VNET_HDR_LEN;
	tap_probe_offloads(nb);
	memset(&ifr, 0, sizeof(ifr));
	nb->mtu = tap_ifreq(nb->ifname, SIOCGIFMTU, &ifr) == 0 &&
		  ifr.ifr_mtu >= 68 ? (unsigned int)ifr.ifr_mtu : 1500;
	if (nb->created) {
		int ret = tap_link_up(nb->ifname);

		if (ret)
			return errf(err, errlen, ret,
				    "network: cannot bring %s up: %s",
				    nb->ifname, strerror(-ret));
	}
	if (nb->spec.script)
		return tap_run_script(nb, err, errlen);
	return 0;
}

static int tap_set_offload(struct net_backend *nb, unsigned int off)
{
	if (ioctl(nb->fds[0], TUNSETOFFLOAD, (unsigned long)(off & nb->offloads)) < 0)
		return -errno;
	return 0;
}

static int tap_set_queue_enabled(struct net_backend *nb, unsigned int q,
				 bool on)
{
	struct ifreq ifr;

	if (q >= nb->nqueues || nb->nqueues == 1)
		return 0;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = on ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
	if (ioctl(nb->fds[q], TUNSETQUEUE, &ifr) < 0)
		return -errno;
	return 0;
}

static void tap_close(struct net_backend *nb)
{
	unsigned int i;

	for (i = 0; i < NET_MAX_QUEUES; i++) {
		if (nb->fds[i] >= 0)
			close(nb->fds[i]);
		nb->fds[i] = -1;
	}
}

const struct net_ops net_tap_ops = {
	.name = "tap",
	.open = tap_open,
	.set_offload = tap_set_offload,
	.set_queue_enabled = tap_set_queue_enabled,
	.recv = net_fd_recv,
	.send = net_fd_send,
	.close = tap_close,
};
