#!/usr/bin/env python3
"""bench_table.py CONSOLE_LOG: make bench-arm64's table from L1's log.

Per transport, vCPU count, phase and lkvm variant: IOPS (median of the
boots, with min-max), and per request the VMM's CPU time, syscalls and
sleeps (every lkvm thread, vCPUs included), L2's virtio interrupts and
L2's MMIO writes (queue notifies; ioeventfd takes them in the kernel)
and reads (exits to lkvm).  Then boot and teardown figures per variant.
"""
import re
import statistics
import sys
from collections import defaultdict

# arm64's generic syscall numbers for the ones worth naming.
SYSCALLS = {
    22: "epoll_pwait", 63: "read", 64: "write", 67: "pread64",
    68: "pwrite64", 69: "preadv", 70: "pwritev", 73: "ppoll",
    98: "futex", 124: "sched_yield", 29: "ioctl", 286: "preadv2",
    287: "pwritev2", 426: "io_uring_enter", 2: "io_submit",
    4: "io_getevents", 74: "signalfd4", 19: "eventfd2",
}


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def spread(xs):
    return "%s-%s" % (fmt(min(xs)), fmt(max(xs))) if xs else "-"


def fmt(x):
    if x != x:
        return "-"
    if x >= 100:
        return "%.0f" % x
    if x >= 10:
        return "%.1f" % x
    return "%.2f" % x


def snapshot():
    return {"threads": {}, "sys": defaultdict(int), "mmio": defaultdict(int)}


def parse(path):
    runs = []
    cur = None
    for raw in open(path, errors="replace"):
        line = raw.rstrip("\r\n")
        m = re.match(r"^L1 begin (\S+) (\S+) (\d+) (\d+)$", line)
        if m:
            cur = {"variant": m[1], "tr": m[2], "cpus": int(m[3]),
                   "snaps": defaultdict(snapshot), "phases": {},
                   "boot": None, "destroy": None, "status": None}
            continue
        if cur is None:
            continue
        m = re.match(r"^L1 boot ([\d.]+) ([\d.]+)", line)
        if m:
            cur["boot"] = float(m[1]) - float(m[2])
        m = re.match(r"^L1 snap (\S+) (begin|end) thread (\d+) (\S+) (\d+) (\d+)", line)
        if m:
            cur["snaps"][(m[1], m[2])]["threads"][int(m[3])] = (
                m[4], int(m[5]), int(m[6]))
        m = re.match(r"^L1 snap (\S+) (begin|end) sys (\d+) (\d+) (\d+)", line)
        if m:
            cur["snaps"][(m[1], m[2])]["sys"][(int(m[3]), int(m[4]))] = int(m[5])
        m = re.match(r"^L1 snap (\S+) (begin|end) mmio (\d+) (0x[0-9a-f]+) (\d+)", line)
        if m:
            cur["snaps"][(m[1], m[2])]["mmio"][(int(m[3]), int(m[4], 16))] = int(m[5])
        m = re.match(r"^L2 phase (\S+) end ops (\d+) secs ([\d.]+) iops (\d+) irqs (\d+)", line)
        if m:
            cur["phases"][m[1]] = {"ops": int(m[2]), "iops": int(m[4]),
                                   "irqs": int(m[5])}
        m = re.search(r"lkvm: time: .* destroy ([\d.]+) ms", line)
        if m:
            cur["destroy"] = float(m[1])
        m = re.match(r"^L1 end .* status (\d+)", line)
        if m:
            cur["status"] = int(m[1])
            runs.append(cur)
            cur = None
    return runs


def phase_figures(run, name):
    p = run["phases"].get(name)
    b = run["snaps"].get((name, "begin"))
    e = run["snaps"].get((name, "end"))
    if not p or not b or not e or not p["ops"]:
        return None
    ops = p["ops"]
    cpu = sleeps = 0
    for tid, (comm, c1, s1) in e["threads"].items():
        c0, s0 = b["threads"].get(tid, (comm, 0, 0))[1:]
        cpu += c1 - c0
        sleeps += s1 - s0
    sys_by = defaultdict(int)
    for k, v in e["sys"].items():
        sys_by[k[1]] += v - b["sys"].get(k, 0)
    mw = mr = 0
    for (typ, gpa), v in e["mmio"].items():
        d = v - b["mmio"].get((typ, gpa), 0)
        if typ == 2:
            mw += d
        else:
            mr += d
    return {"iops": p["iops"], "cpu_us": cpu / 1e3 / ops,
            "sys": sum(sys_by.values()) / ops, "sleeps": sleeps / ops,
            "irqs": p["irqs"] / ops, "mw": mw / ops, "mr": mr / ops,
            "sys_by": {k: v / ops for k, v in sys_by.items()}}


def main():
    runs = parse(sys.argv[1])
    bad = [r for r in runs if r["status"] != 0]
    groups = defaultdict(list)
    variants = []
    phases = []
    for r in runs:
        if r["variant"] not in variants:
            variants.append(r["variant"])
        for ph in r["phases"]:
            if ph not in phases:
                phases.append(ph)
        groups[(r["tr"], r["cpus"], r["variant"])].append(r)
    print("| transport | vCPUs | phase | variant | IOPS median (min-max) |"
          " CPU us/req | syscalls/req | sleeps/req | irqs/req |"
          " MMIO writes/req | MMIO exits/req |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    top = {}
    for tr in ("pci", "mmio"):
        for cpus in (1, 2):
            for ph in phases:
                for v in variants:
                    rs = groups.get((tr, cpus, v), [])
                    fs = [f for f in (phase_figures(r, ph) for r in rs) if f]
                    if not fs:
                        continue
                    iops = [f["iops"] for f in fs]
                    print("| %s | %d | %s | %s | %s (%s) | %s | %s | %s | %s | %s | %s |" % (
                        tr, cpus, ph, v, fmt(med(iops)), spread(iops),
                        fmt(med([f["cpu_us"] for f in fs])),
                        fmt(med([f["sys"] for f in fs])),
                        fmt(med([f["sleeps"] for f in fs])),
                        fmt(med([f["irqs"] for f in fs])),
                        fmt(med([f["mw"] for f in fs])),
                        fmt(med([f["mr"] for f in fs]))))
                    by = defaultdict(list)
                    for f in fs:
                        for k, x in f["sys_by"].items():
                            by[k].append(x)
                    top[(tr, cpus, ph, v)] = sorted(
                        ((med(x), k) for k, x in by.items()), reverse=True)[:6]
    print()
    print("Syscalls per request by call (medians; every lkvm thread):")
    print()
    for (tr, cpus, ph, v), t in top.items():
        print("- %s %d vCPU %s %s: %s" % (tr, cpus, ph, v, ", ".join(
            "%s %s" % (SYSCALLS.get(k, "nr%d" % k), fmt(x)) for x, k in t)))
    print()
    print("| variant | boots | VMM start to L2 init, s: median (min-max) |"
          " VMM teardown after power-off, ms: median (min-max) |")
    print("|---|---|---|---|")
    for v in variants:
        rs = [r for r in runs if r["variant"] == v]
        boot = [r["boot"] for r in rs if r["boot"] is not None]
        dest = [r["destroy"] for r in rs if r["destroy"] is not None]
        print("| %s | %d | %s (%s) | %s (%s) |" % (
            v, len(rs), fmt(med(boot)), spread(boot), fmt(med(dest)),
            spread(dest)))
    if bad:
        print("\n%d run(s) did not exit 0" % len(bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
