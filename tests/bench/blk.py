#!/usr/bin/env python3
"""The virtio-blk benchmark: lkvm's device code, driven by blkbench's
simulated guest driver, beside fio on the same file in the same run.

    tests/bench/blk.py [--seconds S] [--json FILE] [--quick] [--qcow2]

Rows: backend (null device, raw image on /dev/shm, raw image on the root
filesystem; the same image with cache=none, and through a loop device
with cache=none) x depth (1, 32) x queues (1, 2) x 4 KiB random read /
write.  fio runs the same file, block size, depth and pattern with
io_uring (psync at depth 1), numjobs = queues, buffered like lkvm's
default cache=writeback with the page cache warm for both
(--invalidate=0), or with direct=1 where lkvm has cache=none: the real
device path.  cpu us/rq is the CPU time of lkvm's queue threads per
request, or fio's (user + system).
Each row alternates fio and lkvm --reps times (default 3) and reports
the median run of each, so that noise on a small shared machine hits
both sides alike.  Ratios: IOPS lkvm / fio, and p50 latency lkvm - fio.
"""
import argparse, json, os, shutil, statistics, subprocess, sys, time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BENCH = os.path.join(ROOT, "build", os.environ.get("ARCH", "x86_64"),
                     "bench", "blkbench")
SIZE_MB = 256


def make_image(path):
    if os.path.exists(path) and os.path.getsize(path) == SIZE_MB << 20:
        return
    with open(path, "wb") as f:
        block = os.urandom(1 << 20)
        for _ in range(SIZE_MB):
            f.write(block)


def warm(path):
    if path != "null" and not path.startswith("/dev/loop"):
        with open(path, "rb") as f:
            while f.read(1 << 20):
                pass


def run_lkvm(disk, rw, depth, queues, seconds):
    out = subprocess.run([BENCH, "--disk", disk, "--rw", rw,
                          "--depth", str(depth), "--queues", str(queues),
                          "--seconds", str(seconds)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def run_fio(disk, rw, depth, queues, seconds, direct=False):
    engine = "psync" if depth == 1 else "io_uring"
    cmd = ["fio", "--name=lkvm", "--filename=" + disk, "--rw=" + rw,
           "--bs=4k", "--iodepth=%d" % depth, "--ioengine=" + engine,
           "--numjobs=%d" % queues, "--group_reporting",
           "--direct=%d" % direct,
           "--invalidate=0", "--lat_percentiles=1", "--time_based",
           "--runtime=%s" % seconds, "--output-format=json"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    job = json.loads(out.stdout)["jobs"][0]
    side = job["read" if rw == "randread" else "write"]
    pct = side["lat_ns"]["percentile"]
    # usr_cpu/sys_cpu: percent of the run, per job (group_reporting).
    cpu_s = (job["usr_cpu"] + job["sys_cpu"]) / 100.0 * seconds * queues
    ios = side["total_ios"] or 1
    return {"iops": side["iops"], "p50_us": pct["50.000000"] / 1e3,
            "p99_us": pct["99.000000"] / 1e3, "engine": engine,
            "cpu_us_per_req": cpu_s * 1e6 / ios}


def median_run(runs):
    """The run with the median IOPS (its latencies come with it)."""
    return sorted(runs, key=lambda r: r["iops"])[len(runs) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json")
    ap.add_argument("--quick", action="store_true",
                    help="0.3 s per run: a smoke test, not a measurement")
    ap.add_argument("--qcow2", action="store_true",
                    help="only the qcow2 rows and the raw rootfs rows they "
                         "are compared with")
    args = ap.parse_args()
    seconds = 0.3 if args.quick else args.seconds
    reps = 1 if args.quick else max(1, args.reps)
    have_fio = shutil.which("fio") is not None
    if not have_fio:
        print("note: fio not installed; lkvm figures only "
              "(apt-get install fio)")
    shm = "/dev/shm/lkvm-bench.img"
    rootfs = os.path.join(ROOT, "build", "bench-blk.img")
    # (name, file, cache=none?)
    backends = [("null", "null", False)]
    if os.path.isdir("/dev/shm"):
        backends.append(("raw /dev/shm", shm, False))
    backends.append(("raw rootfs", rootfs, False))
    if args.qcow2:
        backends = [("raw rootfs", rootfs, False)]
    for _, path, _ in backends:
        if path != "null":
            make_image(path)
    if not args.qcow2:
        backends.append(("rootfs direct", rootfs, True))
    loop = None
    if os.geteuid() == 0 and shutil.which("losetup") and not args.qcow2:
        p = subprocess.run(["losetup", "-f", "--show", "--direct-io=on",
                            rootfs], capture_output=True, text=True)
        if p.returncode == 0:
            loop = p.stdout.strip()
            backends.append(("loop direct", loop, True))
    if not loop and not args.qcow2:
        print("note: no loop device (needs root and losetup); "
              "no loop rows")

    rows = []
    hdr = ("%-13s %-9s %5s %2s | %9s %8s %8s %6s %6s | %9s %8s %8s %6s | "
           "%6s %8s" % ("backend", "rw", "depth", "q", "IOPS", "p50 us",
                        "p99 us", "irq/rq", "cpu us", "fio IOPS", "p50 us",
                        "p99 us", "cpu us", "ratio", "p50 +us"))
    print(hdr)
    print("-" * len(hdr))
    for name, path, direct in backends:
        spec = path + (",cache=none" if direct else "")
        for depth in (1, 32):
            for queues in ((1,) if args.qcow2 else (1, 2)):
                for rw in ("randread", "randwrite"):
                    warm(path)
                    fios, lks = [], []
                    for _ in range(reps):
                        if have_fio and path != "null":
                            fios.append(run_fio(path, rw, depth, queues,
                                                seconds, direct))
                        lks.append(run_lkvm(spec, rw, depth, queues,
                                            seconds))
                    fio = median_run(fios) if fios else None
                    lk = median_run(lks)
                    if any(r["errors"] for r in lks):
                        sys.exit("blkbench reported errors")
                    row = {"backend": name, "rw": rw, "depth": depth,
                           "queues": queues, "lkvm": lk, "fio": fio}
                    if fio:
                        row["iops_ratio"] = lk["iops"] / fio["iops"]
                        row["p50_delta_us"] = lk["p50_us"] - fio["p50_us"]
                    rows.append(row)
                    f = fio or {}
                    print("%-13s %-9s %5d %2d | %9.0f %8.2f %8.2f %6.3f %6.2f | "
                          "%9s %8s %8s %6s | %6s %8s" % (
                              name, rw, depth, queues, lk["iops"],
                              lk["p50_us"], lk["p99_us"], lk["irqs_per_req"],
                              lk.get("cpu_us_per_req", 0),
                              "%.0f" % f["iops"] if fio else "-",
                              "%.2f" % f["p50_us"] if fio else "-",
                              "%.2f" % f["p99_us"] if fio else "-",
                              "%.2f" % f["cpu_us_per_req"] if fio else "-",
                              "%.2fx" % row["iops_ratio"] if fio else "-",
                              "%+.2f" % row["p50_delta_us"] if fio else "-"),
                          flush=True)
    if loop:
        subprocess.run(["losetup", "-d", loop])
    qcow2_rows(rootfs, rows, seconds, reps)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"date": time.strftime("%Y-%m-%d"),
                       "machine": os.uname().nodename,
                       "cpus": os.cpu_count(), "seconds": seconds,
                       "reps": reps, "rows": rows}, f, indent=1)
    if os.path.exists(shm):
        os.unlink(shm)


def qcow2_rows(raw, rows, seconds, reps):
    """qcow2 beside raw on the same filesystem (lkvm only: fio has no
    qcow2): an image converted from the raw one (every cluster
    allocated), and a fresh one that allocates as the writes come."""
    if not shutil.which("qemu-img"):
        print("note: qemu-img not installed; no qcow2 rows")
        return
    alloc = raw + ".qcow2"
    fresh = raw + ".fresh.qcow2"
    # -S 0: every cluster allocated, zeroes too (the raw rows' writes
    # leave the raw image mostly zero, which a plain convert would skip,
    # and reads of unallocated clusters never touch the file).
    subprocess.run(["qemu-img", "convert", "-S", "0", "-O", "qcow2", raw,
                    alloc], check=True)
    print()
    hdr = ("%-22s %-9s %5s | %9s %8s %8s | %9s | %6s"
           % ("qcow2 (rootfs)", "rw", "depth", "IOPS", "p50 us", "p99 us",
              "raw IOPS", "vs raw"))
    print(hdr)
    print("-" * len(hdr))
    for name in ("allocated", "fresh"):
        for depth in (1, 32):
            for rw in ("randread", "randwrite"):
                if name == "fresh" and rw == "randread":
                    continue
                runs = []
                for _ in range(reps):
                    img = alloc
                    if name == "fresh":
                        subprocess.run(["qemu-img", "create", "-q", "-f",
                                        "qcow2", fresh, "%dM" % SIZE_MB],
                                       check=True)
                        img = fresh
                    warm(raw)
                    runs.append(run_lkvm(img, rw, depth, 1, seconds))
                q = median_run(runs)
                base = [r for r in rows if r["backend"] == "raw rootfs" and
                        r["rw"] == rw and r["depth"] == depth and
                        r["queues"] == 1][0]["lkvm"]
                rows.append({"backend": "qcow2 rootfs " + name, "rw": rw,
                             "depth": depth, "queues": 1, "lkvm": q,
                             "raw_iops": base["iops"],
                             "vs_raw": q["iops"] / base["iops"]})
                print("%-22s %-9s %5d | %9.0f %8.2f %8.2f | %9.0f | %5.2fx"
                      % ("qcow2 " + name, rw, depth, q["iops"], q["p50_us"],
                         q["p99_us"], base["iops"], q["iops"] / base["iops"]),
                      flush=True)
    # A fresh 64 KiB-cluster overlay on the allocated image, with and
    # without extended L2 entries (subclusters): 4 KiB random writes for
    # 0.2 s, while most writes still land in clusters not yet written
    # (4096 of them); longer runs measure overwrites of clusters the
    # first writes already copied.
    overlay = raw + ".ov.qcow2"
    sub = {}
    ov_seconds = min(seconds, 0.2)
    for depth in (1, 32):
        for ext in ("off", "on"):
            runs = []
            for _ in range(reps):
                subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2",
                                "-o", "cluster_size=65536,extended_l2=" + ext,
                                "-b", alloc, "-F", "qcow2", overlay],
                               check=True)
                runs.append(run_lkvm(overlay, "randwrite", depth, 1,
                                     ov_seconds))
            sub[(depth, ext)] = median_run(runs)
        off, on = sub[(depth, "off")], sub[(depth, "on")]
        rows.append({"backend": "qcow2 rootfs overlay", "rw": "randwrite",
                     "depth": depth, "queues": 1, "lkvm": on,
                     "no_subclusters": off,
                     "vs_no_subclusters": on["iops"] / off["iops"]})
        print("%-22s %-9s %5d | %9.0f %8.2f %8.2f | %9.0f | %5.2fx (vs no subclusters)"
              % ("fresh overlay ext_l2", "randwrite", depth, on["iops"],
                 on["p50_us"], on["p99_us"], off["iops"],
                 on["iops"] / off["iops"]), flush=True)
    for f in (alloc, fresh, overlay):
        if os.path.exists(f):
            os.unlink(f)


if __name__ == "__main__":
    main()
