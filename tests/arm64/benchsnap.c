/*
 * benchsnap.c - make bench-arm64's counter snapshot, run in L1 at the
 * start and end of each in-guest benchmark phase:
 *
 *   benchsnap TAG PID
 *
 * prints, each line starting "L1 snap TAG ":
 *   thread TID COMM CPU_NS SLEEPS    for every thread of lkvm (PID):
 *                                    CPU time (schedstat) and voluntary
 *                                    context switches (times it slept)
 *   sys TID NR COUNT                 syscalls entered by that thread,
 *                                    by number (a hist trigger on
 *                                    raw_syscalls:sys_enter)
 *   mmio TYPE GPA COUNT              L2's MMIO accesses KVM saw (a hist
 *                                    trigger on kvm:kvm_mmio; type 2 is
 *                                    a write: a notify that ioeventfd
 *                                    took, or an exit)
 * The host's bench.sh subtracts the two snapshots.  A small static
 * program, so taking it costs L1 little while L2 waits.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRACING "/sys/kernel/tracing/events/"
#define MAX_TIDS 256

static int tids[MAX_TIDS];
static int ntids;

static int is_lkvm_tid(int tid)
{
	int i;

	for (i = 0; i < ntids; i++)
		if (tids[i] == tid)
			return 1;
	return 0;
}

static void threads(const char *tag, int pid)
{
	char path[256], comm[64], line[256];
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return;
	while ((e = readdir(d)) && ntids < MAX_TIDS) {
		unsigned long long cpu = 0, sleeps = 0;
		int tid = atoi(e->d_name);
		FILE *f;

		if (tid <= 0)
			continue;
		tids[ntids++] = tid;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", pid, tid);
		f = fopen(path, "r");
		if (!f || !fgets(comm, sizeof(comm), f))
			strcpy(comm, "?");
		if (f)
			fclose(f);
		comm[strcspn(comm, "\n ")] = '\0';
		snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat",
			 pid, tid);
		f = fopen(path, "r");
		if (f) {
			if (fscanf(f, "%llu", &cpu) != 1)
				cpu = 0;
			fclose(f);
		}
		snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid,
			 tid);
		f = fopen(path, "r");
		while (f && fgets(line, sizeof(line), f))
			sscanf(line, "voluntary_ctxt_switches: %llu", &sleeps);
		if (f)
			fclose(f);
		printf("L1 snap %s thread %d %s %llu %llu\n", tag, tid, comm,
		       cpu, sleeps);
	}
	closedir(d);
}

static void syscalls(const char *tag)
{
	FILE *f = fopen(TRACING "raw_syscalls/sys_enter/hist", "r");
	unsigned long long n;
	char line[256];
	int tid, nr;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "{ common_pid: %d, id: %d } hitcount: %llu",
			   &tid, &nr, &n) == 3 && is_lkvm_tid(tid))
			printf("L1 snap %s sys %d %d %llu\n", tag, tid, nr, n);
	if (f)
		fclose(f);
}

static void mmio(const char *tag)
{
	FILE *f = fopen(TRACING "kvm/kvm_mmio/hist", "r");
	unsigned long long gpa, n;
	char line[256];
	int type;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "{ type: %d, gpa: %llu } hitcount: %llu",
			   &type, &gpa, &n) == 3)
			printf("L1 snap %s mmio %d 0x%llx %llu\n", tag, type,
			       gpa, n);
	if (f)
		fclose(f);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		printf("L1 snap failed: want TAG PID, got %d arguments\n",
		       argc - 1);
		return 2;
	}
	threads(argv[1], atoi(argv[2]));
	syscalls(argv[1]);
	mmio(argv[1]);
	return 0;
}
