/*
 * net.c - -n option parsing and opening a network backend.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	spec->script = NULL;
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
		else if (!strcmp(val, "none"))
			spec->mode = NET_MODE_NONE;
		else
			return errf(err, errlen, -EINVAL,
				    "network: mode=%s: supported are tap and none",
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
	} else {
		return errf(err, errlen, -EINVAL,
			    "network: unknown option '%s' (known: mode, tapif, guest_mac, script, queues, fd)",
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
			   "network: no mode in '%s' (mode=tap or mode=none)",
			   s);
	if (!ret && spec->mode == NET_MODE_NONE &&
	    (spec->tapif[0] || spec->script || spec->queues || spec->mac_set))
		ret = errf(err, errlen, -EINVAL,
			   "network: mode=none takes no other options");
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
	if (spec->mode != NET_MODE_TAP || !nqueues ||
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
	spec->script = NULL;		/* ours now */
	nb->nqueues = nqueues;
	for (i = 0; i < NET_MAX_QUEUES; i++)
		nb->fds[i] = -1;
	nb->ops = &net_tap_ops;
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
