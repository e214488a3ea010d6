/* Tests disk/disk.c: the -d specification parser's options and errors. */
#include <errno.h>
#include <string.h>

#include "lkvm/disk/disk.h"
#include "lkvm/lib/iothread.h"
#include "test.h"

static void test_spec_options(void)
{
	struct disk_spec s;
	char err[256];

	CHECK_EQ(disk_spec_parse("a.img", &s, err, sizeof(err)), 0);
	CHECK(!strcmp(s.path, "a.img"));
	CHECK_EQ(s.poll, IOT_POLL_AUTO);	/* the default */
	CHECK_EQ(s.queues, 0);
	disk_spec_free(&s);

	CHECK_EQ(disk_spec_parse("b.img,ro,queues=4,poll=off,cache=none", &s,
				 err, sizeof(err)), 0);
	CHECK(s.ro && s.queues == 4 && s.cache == DISK_CACHE_NONE);
	CHECK_EQ(s.poll, IOT_POLL_OFF);
	disk_spec_free(&s);

	CHECK_EQ(disk_spec_parse("c.img,poll=50", &s, err, sizeof(err)), 0);
	CHECK_EQ(s.poll, 50000);
	disk_spec_free(&s);
	CHECK_EQ(disk_spec_parse("c.img,poll=auto", &s, err, sizeof(err)), 0);
	CHECK_EQ(s.poll, IOT_POLL_AUTO);
	disk_spec_free(&s);
}

static void test_spec_errors(void)
{
	static const char *const bad[] = {
		"c.img,poll=soon", "c.img,poll=", "c.img,poll",
		"c.img,poll=-5", "c.img,poll=2000000", "c.img,queues=0",
		",ro",
	};
	struct disk_spec s;
	char err[256];
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CHECK(disk_spec_parse(bad[i], &s, err, sizeof(err)) < 0);
		CHECK(err[0] != '\0');
		disk_spec_free(&s);
	}
	CHECK(disk_spec_parse("c.img,poll=x", &s, err, sizeof(err)) < 0);
	CHECK(strstr(err, "poll=x: want auto, off or microseconds") != NULL);
	disk_spec_free(&s);
}

int main(void)
{
	test_spec_options();
	test_spec_errors();
	return test_done();
}
