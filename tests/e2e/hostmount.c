/*
 * hostmount - lkvm's passthrough filesystem (the server behind
 * virtio-fs) mounted on the host through /dev/fuse, so that the host
 * kernel's FUSE client and ordinary tools exercise it:
 *
 *   hostmount DIR MOUNTPOINT [--ro] [--threads N] [--cache auto|always|never]
 *
 * Serves until SIGINT/SIGTERM or an unmount; prints "mounted" once the
 * mount is up, and at the end "queue I: N requests" for each queue and
 * the inodes and open files the tables still hold.  Needs root.  Only the transport differs from virtio-fs:
 * the request handling is fs/passthrough.c's.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>

#include "lkvm/fs/fuse_devq.h"
#include "lkvm/fs/passthrough.h"

int main(int argc, char **argv)
{
	struct pfs_opts o = { 0 };
	struct fuse_devq_opts d = { 0 };
	struct fuse_devq *dq;
	struct pfs *p;
	struct pollfd pfd[2];
	struct stat st;
	char err[512];
	sigset_t sigs;
	int i, sfd;

	if (argc < 3) {
		fprintf(stderr, "usage: hostmount DIR MOUNTPOINT [--ro] [--threads N] [--cache auto|always|never]\n");
		return 2;
	}
	o.dir = argv[1];
	d.mountpoint = argv[2];
	d.threads = 2;
	for (i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--ro"))
			o.ro = true;
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			d.threads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--cache") && i + 1 < argc) {
			i++;
			o.cache = !strcmp(argv[i], "always") ? PFS_CACHE_ALWAYS :
				  !strcmp(argv[i], "never") ? PFS_CACHE_NEVER :
				  PFS_CACHE_AUTO;
		} else {
			fprintf(stderr, "hostmount: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (stat(o.dir, &st) || pfs_open(&p, &o, err, sizeof(err))) {
		fprintf(stderr, "hostmount: %s\n", errno ? strerror(errno) : err);
		return 2;
	}
	d.rootmode = st.st_mode;
	d.source = "lkvm-hostmount";
	d.ops = &pfs_fuse_ops;
	d.fs = p;
	if (fuse_devq_open(&dq, &d, err, sizeof(err))) {
		fprintf(stderr, "hostmount: %s\n", err);
		pfs_close(p);
		return 2;
	}
	printf("mounted\n");
	fflush(stdout);
	pfd[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = fuse_devq_end_fd(dq), .events = POLLIN };
	while (poll(pfd, 2, -1) < 0 && errno == EINTR)
		;
	for (i = 0; i < (int)fuse_devq_threads(dq); i++)
		printf("queue %d: %llu requests\n", i,
		       (unsigned long long)fuse_devq_requests(dq, i));
	fuse_devq_close(dq);
	{
		uint32_t ni, nf;

		pfs_counts(p, &ni, &nf);
		printf("held: %u inodes, %u open files\n", ni, nf);
	}
	pfs_close(p);
	return 0;
}
