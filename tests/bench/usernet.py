#!/usr/bin/env python3
"""The user-mode network benchmark (-n mode=user): lkvm's virtio-net
device and passt backend, driven by usernetbench's simulated guest
driver, beside a baseline program that drives passt's socket directly
with the same frames, in the same run.  Both start passt the same way.

    tests/bench/usernet.py [--seconds S] [--reps N] [--json FILE]

Rows: udp-tx (guest to a UDP sink on the host's loopback through the
gateway address; 1500- and 64-byte frames), udp-rx (a UDP source on the
host to the guest through a hostfwd), tcp-rx (a host TCP writer through
a hostfwd to the guest's minimal receiver; MB/s of in-order payload).
Each row runs the baseline and lkvm back to back --reps times (default
5) and reports the medians, lkvm's spread (min-max) and the median of
the reps' own ratios.  us/f: CPU time per frame of the thread that moves
frames (lkvm's queue thread, or the baseline's) and of passt.  The
issue's target: 0.9x of the baseline.  Needs root (a network namespace
with a default route, which passt wants) and passt; says so and exits 0
otherwise.
"""
import argparse, json, os, shutil, statistics, subprocess, sys, time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BENCH = os.path.join(ROOT, "build", os.environ.get("ARCH", "x86_64"),
                     "bench", "usernetbench")
NS = "lkvm-unb-%d" % os.getpid()


def sh(*args):
    subprocess.run(args, check=True)


def netns_up():
    sh("ip", "netns", "add", NS)
    sh("ip", "-n", NS, "link", "set", "lo", "up")
    sh("ip", "-n", NS, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
    sh("ip", "-n", NS, "addr", "add", "192.0.2.1/24", "dev", "v0")
    sh("ip", "-n", NS, "link", "set", "v0", "up")
    sh("ip", "-n", NS, "link", "set", "v1", "up")
    sh("ip", "-n", NS, "route", "add", "default", "via", "192.0.2.254")


def run(test, size, seconds, baseline):
    cmd = ["ip", "netns", "exec", NS, BENCH, "--test", test, "--size",
           str(size), "--seconds", str(seconds)]
    if baseline:
        cmd.append("--baseline")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if out.returncode:
        sys.stderr.write(out.stderr)
        return None
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json")
    a = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("passt"):
        print("usernet bench: SKIP (needs root and passt)")
        return
    netns_up()
    rows = []
    try:
        print("%-6s %5s | %10s %16s %6s %6s | %10s %6s %6s | %6s" % (
            "test", "bytes", "lkvm", "lkvm spread", "us/f", "passt",
            "direct", "us/f", "passt", "ratio"))
        print("-" * 100)
        for test, size in (("udp-tx", 1500), ("udp-tx", 64),
                           ("udp-rx", 1500), ("tcp-rx", 1500)):
            key = "mbps" if test == "tcp-rx" else "fps"
            base, lk, ratios = [], [], []
            for _ in range(a.reps):
                b = run(test, size, a.seconds, True)
                l = run(test, size, a.seconds, False)
                if b and l and b[key]:
                    base.append(b)
                    lk.append(l)
                    ratios.append(l[key] / b[key])
            if not lk:
                print("%-6s %5d failed" % (test, size))
                continue
            med = lambda runs, k: statistics.median(r[k] for r in runs)
            row = {"test": test, "size": size, "unit": key,
                   "lkvm": med(lk, key), "direct": med(base, key),
                   "lkvm_min": min(r[key] for r in lk),
                   "lkvm_max": max(r[key] for r in lk),
                   "lkvm_us_per_frame": med(lk, "mover_us_per_frame"),
                   "direct_us_per_frame": med(base, "mover_us_per_frame"),
                   "lkvm_passt_us": med(lk, "passt_us_per_frame"),
                   "direct_passt_us": med(base, "passt_us_per_frame"),
                   "ratio": statistics.median(ratios), "ratios": ratios}
            rows.append(row)
            unit = "MB/s" if key == "mbps" else "f/s"
            print("%-6s %5d | %10.0f %16s %6.2f %6.2f | %10.0f %6.2f %6.2f | %5.2fx"
                  % (test, size, row["lkvm"],
                     "%.0f-%.0f %s" % (row["lkvm_min"], row["lkvm_max"], unit),
                     row["lkvm_us_per_frame"], row["lkvm_passt_us"],
                     row["direct"], row["direct_us_per_frame"],
                     row["direct_passt_us"], row["ratio"]), flush=True)
    finally:
        subprocess.run(["ip", "netns", "del", NS])
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"date": time.strftime("%Y-%m-%d"),
                       "cpus": os.cpu_count(), "seconds": a.seconds,
                       "reps": a.reps, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
