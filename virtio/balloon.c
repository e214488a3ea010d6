/*
 * balloon.c - virtio-balloon (virtio 1.2, section 5.5): the host asks
 * for guest memory back, the guest reports its memory statistics and
 * the pages it has free.  --balloon[=OPTIONS]; lkvm_balloon_set() and
 * lkvm_balloon_stats() in the library.
 *
 * Queues, numbered as the driver numbers those it uses: 0 inflate,
 * 1 deflate, then the statistics queue if VIRTIO_BALLOON_F_STATS_VQ was
 * negotiated, then the free page reporting queue if
 * VIRTIO_BALLOON_F_PAGE_REPORTING was (a queue the driver does not use
 * takes no index).  Page frame numbers are in 4 KiB units whatever the
 * guest's page size.  They are the guest's: a PFN outside guest RAM is
 * ignored, counted and logged (a few times).
 *   inflate: the pages go back to the host (MADV_DONTNEED); a later
 *     touch by the guest faults in a zeroed page, so deflate has nothing
 *     to undo and only counts;
 *   reporting: each buffer is a free range of guest memory, released
 *     the same way;
 *   statistics: the driver's one buffer is held until the host wants
 *     fresh numbers (lkvm_balloon_stats), then given back; the driver
 *     refills and returns it.
 *
 * Threads: every queue and the refresh eventfd are served by the VM's
 * low-rate thread, which alone touches the held statistics chain.  The
 * configuration (num_pages, actual) is under the device's ctl_lock:
 * vCPUs read and write it, lkvm_balloon_set() writes num_pages.  The
 * last statistics are copied under stats_lock for any reader.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lkvm/lib/iothread.h"
#include "lkvm/lib/util.h"
#include "lkvm/log.h"
#include "lkvm/machine.h"
#include "lkvm/virtio/device.h"
#include "lkvm/vm.h"

#define VIRTIO_ID_BALLOON		5
#define BALLOON_F_MUST_TELL_HOST	0
#define BALLOON_F_STATS_VQ		1
#define BALLOON_F_DEFLATE_ON_OOM	2
#define BALLOON_F_PAGE_REPORTING	5
#define BALLOON_PFN_SHIFT		12
#define BALLOON_PAGE			(1ULL << BALLOON_PFN_SHIFT)
#define BALLOON_NQUEUES			4
#define BALLOON_STAT_TAGS		10	/* VIRTIO_BALLOON_S_* we know */
#define BALLOON_STAT_SIZE		10	/* le16 tag, le64 value */
#define BALLOON_STATS_IOV		8

enum balloon_role { ROLE_INFLATE, ROLE_DEFLATE, ROLE_STATS, ROLE_REPORT,
		    ROLE_NONE };

struct balloon_config {
	uint32_t num_pages;
	uint32_t actual;
	uint32_t free_page_hint_cmd_id;
	uint32_t poison_val;
} __attribute__((packed));

struct balloon {
	struct virtio_device dev;
	struct balloon_config config;	/* under dev.ctl_lock */
	int refresh_fd;			/* eventfd: fresh statistics wanted */
	/* The driver's statistics buffer, held (low-rate thread only). */
	struct vq_elem stats_elem;
	struct iovec stats_iov[BALLOON_STATS_IOV];
	bool stats_held;
	pthread_mutex_t stats_lock;
	struct lkvm_balloon_stats stats;	/* the guest's part */
	/* Counters, written by the low-rate thread. */
	atomic_uint_fast64_t inflated, deflated, reported, bad_pfns;
	struct log_limit warn_pfn;
};

static struct balloon *to_balloon(struct virtio_device *d)
{
	return container_of(d, struct balloon, dev);
}

/* Which queue is qi, given what the driver negotiated. */
static enum balloon_role balloon_role(struct balloon *b, unsigned int qi)
{
	bool stats = b->dev.acked & (1ULL << BALLOON_F_STATS_VQ);
	bool report = b->dev.acked & (1ULL << BALLOON_F_PAGE_REPORTING);

	if (qi < 2)
		return qi == 0 ? ROLE_INFLATE : ROLE_DEFLATE;
	if (qi == 2 && stats)
		return ROLE_STATS;
	if ((qi == 2 && !stats && report) || (qi == 3 && stats && report))
		return ROLE_REPORT;
	return ROLE_NONE;
}

/* Gives [gpa, gpa + len) back to the host; false if not guest RAM. */
static bool balloon_release(struct balloon *b, uint64_t gpa, uint64_t len)
{
	void *p = guest_ptr(&b->dev.vm->mem, gpa, len);

	if (!p || !len)
		return false;
	/* The next touch reads zeroes. */
	guest_memory_discard(&b->dev.vm->mem, p, len);
	return true;
}

static void balloon_bad_pfn(struct balloon *b, uint64_t pfn, uint64_t n)
{
	atomic_fetch_add(&b->bad_pfns, n);
	vm_warn_limited(b->dev.vm, &b->warn_pfn,
			"%s: %llu page(s) from PFN 0x%llx are not guest RAM; ignored",
			b->dev.vdev.name, (unsigned long long)n,
			(unsigned long long)pfn);
}

/* A run of n PFNs from first: inflate releases it, deflate counts it. */
static void balloon_pfn_run(struct balloon *b, bool inflate, uint64_t first,
			    uint64_t n)
{
	uint64_t gpa = first << BALLOON_PFN_SHIFT;

	if (!guest_ptr(&b->dev.vm->mem, gpa, n * BALLOON_PAGE)) {
		balloon_bad_pfn(b, first, n);
		return;
	}
	if (inflate) {
		balloon_release(b, gpa, n * BALLOON_PAGE);
		atomic_fetch_add(&b->inflated, n);
	} else {
		atomic_fetch_add(&b->deflated, n);
	}
}

/*
 * A chain of le32 PFNs: contiguous ones are released together, one
 * madvise for a run instead of one per page.
 */
static void balloon_pfns(struct balloon *b, const struct vq_elem *e,
			 bool inflate)
{
	uint64_t first = 0, n = 0;
	unsigned int i;

	for (i = 0; i < e->nout; i++) {
		const uint8_t *p = e->iov[i].iov_base;
		size_t k;

		for (k = 0; k + 4 <= e->iov[i].iov_len; k += 4) {
			uint32_t pfn;

			memcpy(&pfn, p + k, 4);
			if (n && pfn == first + n && n < (1u << 20)) {
				n++;
				continue;
			}
			if (n)
				balloon_pfn_run(b, inflate, first, n);
			first = pfn;
			n = 1;
		}
	}
	if (n)
		balloon_pfn_run(b, inflate, first, n);
}

/* Free page reporting: each writable buffer is a free range. */
static void balloon_report(struct balloon *b, const struct vq_elem *e)
{
	unsigned int i;

	for (i = e->nout; i < e->nout + e->nin; i++) {
		uint8_t *p = e->iov[i].iov_base;
		uintptr_t start = ALIGN_UP((uintptr_t)p, BALLOON_PAGE);
		uintptr_t end = ALIGN_DOWN((uintptr_t)p + e->iov[i].iov_len,
					   BALLOON_PAGE);

		/* vq_pop mapped it into guest RAM already. */
		if (end > start) {
			guest_memory_discard(&b->dev.vm->mem, (void *)start,
					     end - start);
			atomic_fetch_add(&b->reported, end - start);
		}
	}
}

/* The driver's statistics: an array of (le16 tag, le64 value). */
static void balloon_stats_take(struct balloon *b)
{
	uint8_t buf[BALLOON_STAT_TAGS * 4 * BALLOON_STAT_SIZE];
	uint64_t *val[BALLOON_STAT_TAGS] = {
		&b->stats.swap_in, &b->stats.swap_out,
		&b->stats.major_faults, &b->stats.minor_faults,
		&b->stats.free_memory, &b->stats.total_memory,
		&b->stats.available_memory, &b->stats.disk_caches,
		&b->stats.hugetlb_allocations, &b->stats.hugetlb_failures,
	};
	size_t n = iov_to_buf(b->stats_elem.iov, b->stats_elem.nout, 0, buf,
			      sizeof(buf));
	size_t k;

	pthread_mutex_lock(&b->stats_lock);
	for (k = 0; k + BALLOON_STAT_SIZE <= n; k += BALLOON_STAT_SIZE) {
		uint16_t tag;
		uint64_t v;

		memcpy(&tag, buf + k, 2);
		memcpy(&v, buf + k + 2, 8);
		if (tag < BALLOON_STAT_TAGS)
			*val[tag] = v;
	}
	b->stats.updates++;
	pthread_mutex_unlock(&b->stats_lock);
}

static void balloon_stats_drain(struct balloon *b, struct virtio_queue *q)
{
	b->stats_elem.iov = b->stats_iov;
	b->stats_elem.max_iov = BALLOON_STATS_IOV;
	for (;;) {
		/* A driver that sends a second buffer gets the first back. */
		if (b->stats_held) {
			struct vq_elem e;
			struct iovec iov[BALLOON_STATS_IOV];

			e.iov = iov;
			e.max_iov = BALLOON_STATS_IOV;
			if (virtio_queue_take(q, &e) <= 0)
				return;
			virtio_queue_complete(q, &b->stats_elem, 0);
			b->stats_elem.head = e.head;
			b->stats_elem.nout = e.nout;
			b->stats_elem.nin = e.nin;
			b->stats_elem.in_bytes = e.in_bytes;
			b->stats_elem.out_bytes = e.out_bytes;
			memcpy(b->stats_iov, iov, sizeof(iov));
		} else if (virtio_queue_take(q, &b->stats_elem) <= 0) {
			return;
		}
		b->stats_held = true;
		balloon_stats_take(b);
	}
}

static void balloon_drain(struct virtio_device *d, struct virtio_queue *q)
{
	struct balloon *b = to_balloon(d);
	enum balloon_role role = balloon_role(b, q->index);
	struct vq_elem *e;

	if (role == ROLE_STATS) {
		balloon_stats_drain(b, q);
		return;
	}
	while ((e = virtio_queue_pop(q))) {
		if (role == ROLE_INFLATE || role == ROLE_DEFLATE)
			balloon_pfns(b, e, role == ROLE_INFLATE);
		else if (role == ROLE_REPORT)
			balloon_report(b, e);
		else
			virtio_queue_count_error(q);
		virtio_queue_complete(q, e, 0);
	}
}

/* lkvm_balloon_stats() wants fresh numbers: give the buffer back. */
static void balloon_refresh(void *opaque, uint32_t events)
{
	struct balloon *b = opaque;
	struct virtio_queue *q = NULL;
	unsigned int i;
	uint64_t v;

	(void)events;
	if (read(b->refresh_fd, &v, sizeof(v)) < 0) {
		/* spurious: nothing to do */
	}
	for (i = 0; i < b->dev.nqueues; i++)
		if (balloon_role(b, i) == ROLE_STATS)
			q = &b->dev.queues[i];
	if (!q || !b->stats_held || !q->vq.size)
		return;
	b->stats_held = false;
	virtio_queue_complete(q, &b->stats_elem, 0);
	virtio_queue_publish(q);
}

static void balloon_config_read(struct virtio_device *d, uint32_t off,
				void *data, unsigned int len)
{
	memcpy(data, (uint8_t *)&to_balloon(d)->config + off, len);
}

/* Only actual is the driver's to write. */
static void balloon_config_write(struct virtio_device *d, uint32_t off,
				 const void *data, unsigned int len)
{
	struct balloon *b = to_balloon(d);
	uint8_t *actual = (uint8_t *)&b->config.actual;
	unsigned int i;

	for (i = 0; i < len; i++)
		if (off + i >= 4 && off + i < 8)
			actual[off + i - 4] = ((const uint8_t *)data)[i];
}

static void balloon_reset(struct virtio_device *d)
{
	struct balloon *b = to_balloon(d);

	/* Threads are paused; the held buffer belonged to the old ring. */
	b->stats_held = false;
	b->config.actual = 0;
}

static void balloon_free(struct virtio_device *d)
{
	struct balloon *b = to_balloon(d);

	vm_log_limit_report(d->vm, &b->warn_pfn, d->vdev.name);
	if (b->refresh_fd >= 0)
		close(b->refresh_fd);
	pthread_mutex_destroy(&b->stats_lock);
	free(b);
}

static const struct virtio_device_ops virtio_balloon_ops = {
	.name = "balloon",
	.device_id = VIRTIO_ID_BALLOON,
	.nqueues = BALLOON_NQUEUES,
	.queue_max = 256,
	.config_size = sizeof(struct balloon_config),
	.pci_class = 0x058000,		/* memory controller, other */
	.config_read = balloon_config_read,
	.config_write = balloon_config_write,
	.drain = balloon_drain,
	.reset = balloon_reset,
	.free = balloon_free,
};

/* --- options and creation --- */

struct balloon_opts {
	bool deflate_on_oom;
	bool reporting;
	bool stats;
};

static int balloon_parse(const char *options, struct balloon_opts *o,
			 char *err, size_t errlen)
{
	char *copy = strdup(options), *opt, *next;
	int ret = 0;

	o->deflate_on_oom = o->reporting = o->stats = true;
	if (!copy)
		return errf(err, errlen, -ENOMEM, "out of memory");
	for (opt = copy; !ret && opt && *opt; opt = next) {
		char *val;
		bool *flag = NULL;

		next = strchr(opt, ',');
		if (next)
			*next++ = '\0';
		val = strchr(opt, '=');
		if (val)
			*val++ = '\0';
		if (!strcmp(opt, "deflate_on_oom"))
			flag = &o->deflate_on_oom;
		else if (!strcmp(opt, "reporting"))
			flag = &o->reporting;
		else if (!strcmp(opt, "stats"))
			flag = &o->stats;
		if (!flag || !val || (strcmp(val, "on") && strcmp(val, "off")))
			ret = input_errf(err, errlen, -EINVAL,
					 "balloon: bad option '%s' (known: deflate_on_oom, reporting, stats; =on or =off)",
					 opt);
		else
			*flag = !strcmp(val, "on");
	}
	free(copy);
	return ret;
}

static int balloon_check(const char *options, char *err, size_t errlen)
{
	struct balloon_opts o;

	return balloon_parse(options, &o, err, errlen);
}

static int balloon_create(struct machine *m, char *err, size_t errlen)
{
	const char *options = machine_device_spec(m->cfg, "balloon", 0);
	struct iothread *lowrate;
	struct balloon_opts o;
	struct balloon *b;
	unsigned int i;
	int ret;

	if (!options)
		return 0;
	if (machine_device_spec(m->cfg, "balloon", 1))
		return input_errf(err, errlen, -EINVAL,
				  "only one balloon device");
	ret = balloon_parse(options, &o, err, errlen);
	if (ret)
		return ret;
	lowrate = machine_lowrate(m, err, errlen);
	if (!lowrate)
		return -ENOMEM;
	b = calloc(1, sizeof(*b));
	if (!b)
		return errf(err, errlen, -ENOMEM, "out of memory");
	pthread_mutex_init(&b->stats_lock, NULL);
	ret = virtio_device_init(&b->dev, m->vm, &virtio_balloon_ops,
				 "balloon0", 0);
	b->refresh_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!ret && b->refresh_fd < 0)
		ret = -errno;
	b->dev.features |= (o.stats ? 1ULL << BALLOON_F_STATS_VQ : 0) |
			   (o.deflate_on_oom ?
			    1ULL << BALLOON_F_DEFLATE_ON_OOM : 0) |
			   (o.reporting ? 1ULL << BALLOON_F_PAGE_REPORTING : 0);
	for (i = 0; !ret && i < b->dev.nqueues; i++)
		ret = virtio_queue_attach(&b->dev, i, lowrate);
	if (!ret)
		ret = iothread_add(lowrate, b->refresh_fd, EPOLLIN,
				   balloon_refresh, b);
	return virtio_device_finish(&b->dev, ret, "virtio-balloon", err,
				    errlen);
}

/* --balloon[=deflate_on_oom=on|off,reporting=on|off,stats=on|off] */
const struct device_type virtio_balloon_type = {
	.name = "balloon",
	.help = "add a virtio-balloon device (options: deflate_on_oom=, reporting=, stats= on|off)",
	.arg = DEVICE_ARG_OPTIONAL,
	.check = balloon_check,
	.create = balloon_create,
};

/* --- the library's interface --- */

static struct balloon *balloon_of(struct lkvm *vm)
{
	struct vm_device *dev = vm_device_find(vm, "balloon0");

	return dev ? to_balloon(container_of(dev, struct virtio_device, vdev)) :
		     NULL;
}

int lkvm_balloon_set(struct lkvm *vm, uint64_t pages)
{
	struct balloon *b = balloon_of(vm);

	if (!b)
		return -ENODEV;
	if (pages > UINT32_MAX ||
	    pages > guest_memory_size(&vm->mem) >> BALLOON_PFN_SHIFT)
		return -EINVAL;
	virtio_device_lock(&b->dev);
	b->config.num_pages = pages;
	b->dev.config_gen++;
	virtio_device_unlock(&b->dev);
	if (b->dev.tr && (atomic_load(&b->dev.status) &
			  VIRTIO_STATUS_DRIVER_OK))
		b->dev.tr->signal_config(&b->dev);
	return 0;
}

int lkvm_balloon_stats(struct lkvm *vm, struct lkvm_balloon_stats *st)
{
	struct balloon *b = balloon_of(vm);
	uint64_t one = 1;

	if (!b)
		return -ENODEV;
	pthread_mutex_lock(&b->stats_lock);
	*st = b->stats;
	pthread_mutex_unlock(&b->stats_lock);
	virtio_device_lock(&b->dev);
	st->target_pages = b->config.num_pages;
	st->actual_pages = b->config.actual;
	virtio_device_unlock(&b->dev);
	st->inflated_pages = atomic_load(&b->inflated);
	st->deflated_pages = atomic_load(&b->deflated);
	st->reported_bytes = atomic_load(&b->reported);
	st->bad_pfns = atomic_load(&b->bad_pfns);
	/* Ask for fresh numbers; the next call sees them. */
	if (write(b->refresh_fd, &one, sizeof(one)) < 0) {
		/* saturated: a refresh is pending */
	}
	return 0;
}
