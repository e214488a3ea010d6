#!/usr/bin/env python3
"""The virtio-vsock benchmark: lkvm's device (its I/O thread and host
Unix sockets) driven by vsockbench's simulated guest driver, beside a
baseline that moves the same bytes over a Unix socket pair on the host
(or, for connections, connects to a Unix listener), in the same run.

    tests/bench/vsock.py [--seconds S] [--reps N] [--json FILE]

Rows: tx (guest to host, 64 KiB packets), rx (host to guest, 64 KiB
writes into 4 KiB receive buffers, as a Linux guest posts them), conn
(connections set up and reset per second).  Each row runs the baseline
and lkvm back to back --reps times (default 5); it reports the median of
each, the spread (min-max) of lkvm's, and the median of the reps' own
ratios.  The issue's target: tx at 0.7x the socket pair or better.
"""
import argparse, json, os, statistics, subprocess, sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BENCH = os.path.join(ROOT, "build", os.environ.get("ARCH", "x86_64"),
                     "bench", "vsockbench")


def run(test, seconds, baseline):
    cmd = [BENCH, "--test", test, "--seconds", str(seconds)]
    if baseline:
        cmd.append("--baseline")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if out.returncode:
        return None
    r = json.loads(out.stdout)
    return r.get("mbps", r.get("conns_per_s"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json")
    a = ap.parse_args()
    rows = []
    print("%-5s %14s %14s %20s %7s" % ("test", "socket pair", "lkvm",
                                       "lkvm spread", "ratio"))
    for test, unit in (("tx", "MB/s"), ("rx", "MB/s"), ("conn", "conn/s")):
        base, lk, ratios = [], [], []
        for _ in range(a.reps):
            b = run(test, a.seconds, True)
            l = run(test, a.seconds, False)
            if b and l:
                base.append(b)
                lk.append(l)
                ratios.append(l / b)
        if not lk:
            print("%-5s failed" % test)
            continue
        row = {"test": test, "unit": unit,
               "baseline": statistics.median(base),
               "lkvm": statistics.median(lk), "lkvm_min": min(lk),
               "lkvm_max": max(lk), "ratio": statistics.median(ratios),
               "reps": len(lk)}
        rows.append(row)
        print("%-5s %9.0f %-4s %9.0f %-4s %9.0f-%-9.0f %6.2fx" % (
            test, row["baseline"], unit, row["lkvm"], unit, row["lkvm_min"],
            row["lkvm_max"], row["ratio"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
