#!/usr/bin/env python3
"""The virtio-fs benchmark: lkvm's virtio-fs device and passthrough
server, driven by fsbench's simulated guest driver, beside the same
operations done directly on the same files, in the same run.

    tests/bench/fs.py [--seconds S] [--reps N] [--json FILE] [--quick]

Directories: one on the root filesystem, one on /dev/shm, each with a
64 MiB file and 1000 small ones.  Rows: 4 KiB random READ and WRITE at
depth 1 and 32 on 1 and 2 queues, GETATTR and LOOKUP at depth 32 on 1
and 2 queues.  The direct side: fio on the same file (psync at depth 1,
io_uring at 32, numjobs = queues, page cache warm for both), and for
GETATTR and LOOKUP what the server does for them (fstatat; openat
O_PATH + fstatat + close) in as many threads as queues.  Then two
special rows: LOOKUPs of 12000 files with the root filesystem's caches
dropped first (requests that block) on 1 and 2 queues; and a queue
doing 4 KiB reads at depth 1 while another queue's LOOKUPs take 20 ms
each (LKVM_TEST_FAULT=fs-slow-lookup:20), against the same with fast
lookups: the reading queue's p99 should not move.
Each figure is the median of --reps runs (default 3) with the spread.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BENCH = os.path.join(ROOT, "build", os.environ.get("ARCH", "x86_64"),
                     "bench", "fsbench")


def make_dir(d, nfiles):
    os.makedirs(d, exist_ok=True)
    data = os.path.join(d, "data")
    if not os.path.exists(data) or os.path.getsize(data) != 64 << 20:
        with open(data, "wb") as f:
            f.write(os.urandom(64 << 20))
    for i in range(nfiles):
        p = os.path.join(d, "n%d" % i)
        if not os.path.exists(p):
            with open(p, "w") as f:
                f.write("%d\n" % i)
    open(os.path.join(d, "slow"), "w").close()
    with open(data, "rb") as f:
        while f.read(1 << 20):
            pass


def lkvm(d, op, depth, queues, seconds, slow=0, env=None, names=1000):
    cmd = [BENCH, "--dir", d, "--op", op, "--depth", str(depth),
           "--queues", str(queues), "--seconds", str(seconds),
           "--names", str(names)]
    if slow:
        cmd += ["--slow", str(slow)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                         env=dict(os.environ, **(env or {})))
    return json.loads(out.stdout)


def direct(d, op, depth, queues, seconds):
    if op in ("getattr", "lookup"):
        out = subprocess.run([BENCH, "--direct", op, "--dir", d, "--queues",
                              str(queues), "--seconds", str(seconds)],
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout)["ops"]
    cmd = ["fio", "--name=d", "--filename=" + os.path.join(d, "data"),
           "--rw=rand" + op, "--bs=4k", "--iodepth=%d" % depth,
           "--ioengine=" + ("psync" if depth == 1 else "io_uring"),
           "--numjobs=%d" % queues, "--group_reporting", "--invalidate=0",
           "--time_based", "--runtime=%s" % seconds, "--output-format=json"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    j = json.loads(out.stdout)["jobs"][0]
    return (j["read"] if op == "read" else j["write"])["iops"]


def med(v):
    return statistics.median(v)


def spread(v):
    return "%.0f-%.0f" % (min(v), max(v))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.reps = 1
    dirs = [("rootfs", os.path.expanduser("~/lkvm-fsbench"))]
    if os.path.isdir("/dev/shm"):
        dirs.append(("shm", "/dev/shm/lkvm-fsbench"))
    rows = []
    shapes = [("read", 1, 1), ("read", 32, 1), ("read", 32, 2),
              ("write", 1, 1), ("write", 32, 1), ("write", 32, 2),
              ("getattr", 32, 1), ("getattr", 32, 2),
              ("lookup", 32, 1), ("lookup", 32, 2)]
    if a.quick:
        shapes = [("read", 32, 1), ("getattr", 32, 1)]
    print("%-6s %-8s %3s %2s | %10s %-15s %7s %7s %7s | %10s %-15s | %5s" %
          ("dir", "op", "QD", "q", "lkvm op/s", "(spread)", "p50 us",
           "p99 us", "cpu us", "direct", "(spread)", "ratio"))
    print("-" * 118)
    for name, d in dirs:
        make_dir(d, 1000)
        for op, depth, q in shapes:
            got, base = [], []
            for _ in range(a.reps):
                base.append(direct(d, op, depth, q, a.seconds))
                got.append(lkvm(d, op, depth, q, a.seconds))
            ops = [g["ops"] for g in got]
            r = {"dir": name, "op": op, "depth": depth, "queues": q,
                 "ops": ops, "direct": base,
                 "p50_us": med([g["p50_us"] for g in got]),
                 "p99_us": med([g["p99_us"] for g in got]),
                 "cpu_us_per_op": med([g["cpu_us_per_op"] for g in got])}
            rows.append(r)
            print("%-6s %-8s %3d %2d | %10.0f %-15s %7.1f %7.1f %7.2f | %10.0f %-15s | %4.2fx"
                  % (name, op, depth, q, med(ops), "(" + spread(ops) + ")",
                     r["p50_us"], r["p99_us"], r["cpu_us_per_op"], med(base),
                     "(" + spread(base) + ")", med(ops) / med(base)), flush=True)
    if not a.quick:
        # Requests that block: lookups with the dentry and inode caches cold.
        d = dirs[0][1]
        make_dir(d, 12000)
        cold = {}
        for q in (1, 2):
            v = []
            for _ in range(a.reps):
                subprocess.run(["sync"])
                try:
                    with open("/proc/sys/vm/drop_caches", "w") as f:
                        f.write("3\n")
                except OSError:
                    pass
                v.append(lkvm(d, "lookup", 32, q, a.seconds, names=12000)["ops"])
            cold[q] = v
        print("\nlookups with cold caches (rootfs, 12000 names): 1 queue %.0f (%s), "
              "2 queues %.0f (%s) op/s: %.2fx" %
              (med(cold[1]), spread(cold[1]), med(cold[2]), spread(cold[2]),
               med(cold[2]) / med(cold[1])))
        rows.append({"cold_lookup": cold})
        # A blocking request on one queue and reads on another.
        iso = {}
        for label, env in (("fast", {}), ("slow 20 ms", {"LKVM_TEST_FAULT": "fs-slow-lookup:20"})):
            v = [lkvm(dirs[0][1], "read", 1, 2, a.seconds, slow=4, env=env)
                 for _ in range(a.reps)]
            iso[label] = v
            print("reads on queue 2 while queue 1 does lookups (%s): %.0f op/s, "
                  "p50 %.1f us, p99 %.1f us (spread %s us); lookups done %d" %
                  (label, med([x["ops"] for x in v]), med([x["p50_us"] for x in v]),
                   med([x["p99_us"] for x in v]),
                   spread([x["p99_us"] for x in v]),
                   med([x["slow_done"] for x in v])))
        rows.append({"isolation": iso})
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
