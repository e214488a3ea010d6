/*
 * net.c - -n option parsing and opening a network backend.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/uio.h>

#include "lkvm/net/net.h"
#include "lkvm/lib/util.h"

ssize_t net_fd_recv(struct net_backend *nb, unsigned int q,
		    const struct iovec *iov, unsigned int n)
{
	ssize_t r = readv(nb->fds[q], iov, n);

	return r < 0 ? -errno : r;
}

int net_fd_send(struct net_backend *nb, unsigned int q,
		const struct iovec *iov, unsigned int n)
{
	return writev(nb->fds[q], iov, n) < 0 ? -errno : 0;
}

void net_spec_free(struct net_spec *spec)
{
	free(spec->script);
	free(spec->passt);
	spec->script = spec->passt = NULL;
}

/* "tcp:[ADDR]:HOSTPORT-:GUESTPORT" (QEMU's hostfwd), IPv4 or any. */
static int parse_fwd(const char *s, struct net_fwd *f)
{
	char buf[64], *colon, *dash;
	uint64_t n;
	struct in_addr a;

	memset(f, 0, sizeof(*f));
	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	if (!strncmp(buf, "tcp:", 4))
		f->udp = false;
	else if (!strncmp(buf, "udp:", 4))
		f->udp = true;
	else
		return -EINVAL;
	dash = strstr(buf + 4, "-:");
	if (!dash)
		return -EINVAL;
	*dash = '\0';
	if (parse_uint(dash + 2, 1, 65535, &n))
		return -EINVAL;
	f->guest_port = n;
	colon = strrchr(buf + 4, ':');
	if (!colon)
		return -EINVAL;
	*colon = '\0';
	if (parse_uint(colon + 1, 1, 65535, &n))
		return -EINVAL;
	f->host_port = n;
	if (strlen(buf + 4) >= sizeof(f->addr) ||
	    (buf[4] && inet_pton(AF_INET, buf + 4, &a) != 1))
		return -EINVAL;
	memcpy(f->addr, buf + 4, strlen(buf + 4) + 1);
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "52:54:00:12:34:56": six two-digit hex bytes, unicast, not zero. */
static int parse_mac(const char *s, uint8_t *mac)
{
	unsigned int i;
	int hi, lo;

	if (strlen(s) != 17)
		return -EINVAL;
	for (i = 0; i < NET_MAC_LEN; i++) {
		hi = hexval(s[3 * i]);
		lo = hexval(s[3 * i + 1]);
		if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
			return -EINVAL;
		mac[i] = hi << 4 | lo;
	}
	if (mac[0] & 1)
		return -EINVAL;		/* multicast */
	for (i = 0; i < NET_MAC_LEN; i++)
		if (mac[i])
			return 0;
	return -EINVAL;
}

/* Interface names: what the kernel accepts (dev_valid_name). */
static bool ifname_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n >= IFNAMSIZ || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || *s <= ' ' || *s == 0x7f)
			return false;
	return true;
}

static int net_opt(struct net_spec *spec, char *opt, bool *mode_set,
		   char *err, size_t errlen)
{
	char *val = strchr(opt, '=');
	uint64_t n;

	if (!val)
		return errf(err, errlen, -EINVAL,
			    "network: option '%s' needs a value (NAME=VALUE)",
			    opt);
	*val++ = '\0';
	if (!strcmp(opt, "mode")) {
		if (!strcmp(val, "tap"))
			spec->mode = NET_MODE_TAP;
		else if (!strcmp(val, "user"))
			spec->mode = NET_MODE_USER;
		else if (!strcmp(val, "none"))
			spec->mode = NET_MODE_NONE;
		else
			return errf(err, errlen, -EINVAL,
				    "network: mode=%s: supported are tap, user and none",
				    val);
		*mode_set = true;
	} else if (!strcmp(opt, "tapif")) {
		if (!ifname_ok(val))
			return errf(err, errlen, -EINVAL,
				    "network: tapif=%s: not a valid interface name (1 to %d characters, no '/', ':' or spaces)",
				    val, IFNAMSIZ - 1);
		snprintf(spec->tapif, sizeof(spec->tapif), "%s", val);
	} else if (!strcmp(opt, "guest_mac")) {
		if (parse_mac(val, spec->mac))
			return errf(err, errlen, -EINVAL,
				    "network: guest_mac=%s: want a unicast address like 52:54:00:12:34:56",
				    val);
		spec->mac_set = true;
	} else if (!strcmp(opt, "script")) {
		free(spec->script);
		spec->script = NULL;
		if (!*val)
			return errf(err, errlen, -EINVAL,
				    "network: empty script= (use script=none)");
		if (strcmp(val, "none")) {
			spec->script = strdup(val);
			if (!spec->script)
				return errf(err, errlen, -ENOMEM,
					    "out of memory");
		}
	} else if (!strcmp(opt, "fd")) {
		if (parse_uint(val, 0, INT32_MAX, &n) || fcntl((int)n, F_GETFD) < 0)
			return errf(err, errlen, -EBADF,
				    "network: fd=%s: not an open file descriptor",
				    val);
		spec->fd = n;
		spec->has_fd = true;
	} else if (!strcmp(opt, "queues")) {
		if (parse_uint(val, 1, NET_MAX_QUEUES, &n))
			return errf(err, errlen, -EINVAL,
				    "network: queues=%s: want 1 to %d", val,
				    NET_MAX_QUEUES);
		spec->queues = n;
	} else if (!strcmp(opt, "hostfwd")) {
		if (spec->nfwd == NET_MAX_FWD)
			return errf(err, errlen, -EINVAL,
				    "network: more than %d hostfwd", NET_MAX_FWD);
		if (parse_fwd(val, &spec->fwd[spec->nfwd]))
			return errf(err, errlen, -EINVAL,
				    "network: hostfwd=%s: want tcp|udp:[HOSTADDR]:HOSTPORT-:GUESTPORT (IPv4 HOSTADDR, ports 1-65535)",
				    val);
		spec->nfwd++;
	} else if (!strcmp(opt, "mtu")) {
		if (parse_uint(val, 576, 65520, &n))
			return errf(err, errlen, -EINVAL,
				    "network: mtu=%s: want 576 to 65520", val);
		spec->mtu = n;
	} else if (!strcmp(opt, "passt")) {
		free(spec->passt);
		spec->passt = *val ? strdup(val) : NULL;
		if (!spec->passt)
			return errf(err, errlen, *val ? -ENOMEM : -EINVAL,
				    "network: passt= needs a path");
	} else {
		return errf(err, errlen, -EINVAL,
			    "network: unknown option '%s' (known: mode, tapif, guest_mac, script, queues, fd, hostfwd, mtu, passt)",
			    opt);
	}
	return 0;
}

static int net_spec_parse_raw(const char *s, struct net_spec *spec,
			      char *err, size_t errlen)
{
	char *copy = strdup(s), *opt, *next;
	bool mode_set = false;
	int ret = 0;

	memset(spec, 0, sizeof(*spec));
	if (!copy)
		return errf(err, errlen, -ENOMEM, "out of memory");
	for (next = copy; !ret && next;) {
		opt = next;
		next = strchr(opt, ',');
		if (next)
			*next++ = '\0';
		if (!*opt)
			ret = errf(err, errlen, -EINVAL,
				   "network: empty option in '%s'", s);
		else
			ret = net_opt(spec, opt, &mode_set, err, errlen);
	}
	free(copy);
	if (!ret && !mode_set)
		ret = errf(err, errlen, -EINVAL,
			   "network: no mode in '%s' (mode=tap, mode=user or mode=none)",
			   s);
	if (!ret && spec->mode == NET_MODE_NONE &&
	    (spec->tapif[0] || spec->script || spec->queues || spec->mac_set ||
	     spec->nfwd || spec->mtu || spec->passt))
		ret = errf(err, errlen, -EINVAL,
			   "network: mode=none takes no other options");
	if (!ret && spec->mode == NET_MODE_TAP &&
	    (spec->nfwd || spec->mtu || spec->passt))
		ret = errf(err, errlen, -EINVAL,
			   "network: hostfwd, mtu and passt are mode=user's");
	if (!ret && spec->mode == NET_MODE_USER &&
	    (spec->tapif[0] || spec->script || spec->has_fd ||
	     spec->queues > 1))
		ret = errf(err, errlen, -EINVAL,
			   "network: mode=user takes hostfwd, guest_mac, mtu and passt (one queue pair)");
	if (ret)
		net_spec_free(spec);
	return ret;
}

/* Whatever a spec parser rejects is the configuration's fault. */
int net_spec_parse(const char *s, struct net_spec *spec, char *err,
		    size_t errlen)
{
	int ret = net_spec_parse_raw(s, spec, err, errlen);

	return ret == -ENOMEM ? ret : err_input(ret);
}

int net_open(struct net_backend **nbp, struct net_spec *spec,
	     unsigned int nqueues, char *err, size_t errlen)
{
	struct net_backend *nb;
	unsigned int i;
	int ret;

	*nbp = NULL;
	if (spec->mode == NET_MODE_NONE || !nqueues ||
	    nqueues > NET_MAX_QUEUES) {
		net_spec_free(spec);
		return errf(err, errlen, -EINVAL, "network: nothing to open");
	}
	nb = calloc(1, sizeof(*nb));
	if (!nb) {
		net_spec_free(spec);
		return errf(err, errlen, -ENOMEM, "out of memory");
	}
	nb->spec = *spec;
	spec->script = spec->passt = NULL;	/* ours now */
	nb->nqueues = nqueues;
	nb->log_fd = -1;
	for (i = 0; i < NET_MAX_QUEUES; i++)
		nb->fds[i] = -1;
	nb->ops = spec->mode == NET_MODE_USER ? &net_passt_ops : &net_tap_ops;
	ret = nb->ops->open(nb, err, errlen);
	if (ret) {
		net_close(nb);
		return ret;
	}
	*nbp = nb;
	return 0;
}

void net_close(struct net_backend *nb)
{
	if (!nb)
		return;
	nb->ops->close(nb);
	net_spec_free(&nb->spec);
	free(nb);
}
