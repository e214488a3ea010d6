#!/usr/bin/env python3
"""The virtio-net benchmark: lkvm's device code on a real tap, driven by
netbench's simulated guest driver, beside a baseline that writes or
reads the same frames directly on a tap fd, in the same run.

    tests/bench/net.py [--seconds S] [--reps N] [--json FILE] [--quick]

Rows: direction (tx: guest to tap, rx: tap to guest) x frame size (64,
1500 bytes) x queue pairs (1, 2).  Each row runs the baseline and lkvm
back to back --reps times (default 5) and reports the median run of
each; the ratio is the median of the reps' own ratios (frames per
second, lkvm / baseline), which a slow moment of the machine spoils
less than a ratio of medians.  us/frm is the CPU time the threads that
move the frames (lkvm's queue threads, the baseline's readers or
writers) spent per frame.  Needs root (netbench makes its own network
namespace); says so and exits 0 otherwise.
"""
import argparse, json, os, statistics, subprocess, sys, time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BENCH = os.path.join(ROOT, "build", os.environ.get("ARCH", "x86_64"),
                     "bench", "netbench")


def run(direction, size, pairs, seconds, baseline):
    cmd = [BENCH, "--dir", direction, "--size", str(size), "--pairs",
           str(pairs), "--seconds", str(seconds)]
    if baseline:
        cmd.append("--baseline")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def median_run(runs):
    mid = statistics.median_low([r["pps"] for r in runs])
    return next(r for r in runs if r["pps"] == mid)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json")
    ap.add_argument("--quick", action="store_true",
                    help="0.3 s per run, 1 rep: a smoke test, not a measurement")
    args = ap.parse_args()
    seconds, reps = (0.3, 1) if args.quick else (args.seconds, args.reps)
    if os.geteuid() != 0:
        print("net bench: SKIP (needs root for a network namespace and taps)")
        return
    print("%-3s %5s %5s | %10s %7s %8s %8s %7s | %10s %7s %7s | %6s" % (
        "dir", "bytes", "pairs", "lkvm fps", "Gbit/s", "irq/frm",
        "kick/frm", "us/frm", "tap fps", "Gbit/s", "us/frm", "ratio"))
    print("-" * 110)
    rows = []
    for direction in ("tx", "rx"):
        for size in (1500, 64):
            for pairs in (1, 2):
                base, lk = [], []
                for _ in range(reps):
                    base.append(run(direction, size, pairs, seconds, True))
                    lk.append(run(direction, size, pairs, seconds, False))
                if any(r["errors"] for r in lk):
                    sys.exit("netbench reported errors")
                b, l = median_run(base), median_run(lk)
                ratios = [x["pps"] / y["pps"] for x, y in zip(lk, base)
                          if y["pps"]]
                row = {"dir": direction, "size": size, "pairs": pairs,
                       "lkvm": l, "tap": b,
                       "ratio": statistics.median(ratios) if ratios else 0,
                       "ratios": ratios}
                rows.append(row)
                print("%-3s %5d %5d | %10.0f %7.2f %8.4f %8.4f %7.3f | "
                      "%10.0f %7.2f %7.3f | %5.2fx" % (
                          direction, size, pairs, l["pps"], l["gbps"],
                          l["irqs_per_frame"], l["kicks_per_frame"],
                          l["cpu_us_per_frame"], b["pps"], b["gbps"],
                          b["cpu_us_per_frame"], row["ratio"]), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"date": time.strftime("%Y-%m-%d"),
                       "cpus": os.cpu_count(), "seconds": seconds,
                       "reps": reps, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
