#!/usr/bin/env python3
"""The lkvm export benchmark: fio on the file `lkvm export` serves, with
--threads 1 and --threads 2, beside qemu-storage-daemon's FUSE export of
the same image, in the same run.

    tests/bench/export.py [--seconds S] [--reps N] [--json FILE] [--quick]

Images (on the root filesystem, 256 MiB, every byte written): raw, and
qcow2 made from it with every cluster allocated.  Rows: 4 KiB random
read and write x (psync, 1 and 2 jobs; io_uring at depth 1; io_uring at
depth 32, 1 and 2 jobs).  fio opens the file with direct=1, so every
request goes through FUSE to the server on every side (lkvm's export is
direct I/O anyway; qemu-storage-daemon's is not).  Each row runs the
three servers one after another, --reps times (default 3), and reports
the median IOPS with the spread (min-max).  Ratios: lkvm --threads 2
over --threads 1, and over qemu-storage-daemon.  Needs root.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LKVM = os.path.join(ROOT, "lkvm")
SIZE_MB = 256


def make_images(d):
    raw = os.path.join(d, "bench.raw")
    q = os.path.join(d, "bench.qcow2")
    with open(raw, "wb") as f:
        block = os.urandom(1 << 20)
        for _ in range(SIZE_MB):
            f.write(block)
    subprocess.run(["qemu-img", "convert", "-S", "0", "-O", "qcow2", raw, q],
                   check=True)
    # Written back and in the page cache before any row: the writeback
    # of 512 MiB of new files would otherwise land in the first rows.
    os.sync()
    for path in (raw, q):
        with open(path, "rb") as f:
            while f.read(1 << 20):
                pass
    return {"raw": raw, "qcow2": q}


def wait_mounted(mp, proc):
    for _ in range(200):
        with open("/proc/mounts") as f:
            if any(l.split()[1] == mp for l in f):
                return
        if proc.poll() is not None:
            raise SystemExit("the server exited: %s" % proc.args)
        time.sleep(0.05)
    raise SystemExit("not mounted: %s" % mp)


def start(server, img, fmt, mp):
    if server == "qsd":
        cmd = ["qemu-storage-daemon",
               "--blockdev", "driver=file,node-name=file,filename=" + img,
               "--blockdev", "driver=%s,node-name=fmt,file=file" % fmt,
               "--export", "type=fuse,id=exp,node-name=fmt,mountpoint=%s,"
               "writable=on" % mp]
    else:
        cmd = [LKVM, "export", img, mp, "--no-control",
               "--threads", server[-1]]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    wait_mounted(mp, p)
    return p


def stop(p, mp):
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL)


def fio(mp, rw, engine, depth, jobs, seconds):
    cmd = ["fio", "--name=x", "--filename=" + mp, "--rw=" + rw, "--bs=4k",
           "--ioengine=" + engine, "--iodepth=%d" % depth,
           "--numjobs=%d" % jobs, "--group_reporting", "--direct=1",
           "--time_based", "--runtime=%s" % seconds,
           "--output-format=json"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    j = json.loads(out.stdout)["jobs"][0]
    side = j["read"] if rw == "randread" else j["write"]
    return side["iops"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json")
    ap.add_argument("--quick", action="store_true",
                    help="qcow2 only, depth 32 and psync rows, 1 rep")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("export bench: needs root (FUSE mounts); skipped")
        return 0
    if a.quick:
        a.reps = 1
    servers = ["lkvm-t1", "lkvm-t2", "qsd"]
    shapes = [("psync", 1, 1), ("psync", 1, 2), ("io_uring", 1, 1),
              ("io_uring", 32, 1), ("io_uring", 32, 2)]
    if a.quick:
        shapes = [("psync", 1, 1), ("io_uring", 32, 1)]
    d = tempfile.mkdtemp(prefix="lkvm-exbench.", dir=os.path.expanduser("~"))
    images = make_images(d)
    mp = os.path.join(d, "mnt.raw")
    open(mp, "w").close()
    rows = []
    try:
        for fmt in (["qcow2"] if a.quick else ["raw", "qcow2"]):
            for rw in ["randread", "randwrite"]:
                for engine, depth, jobs in shapes:
                    got = {s: [] for s in servers}
                    for rep in range(a.reps):
                        # A different server first each time round.
                        for s in servers[rep % 3:] + servers[:rep % 3]:
                            p = start(s, images[fmt], fmt, mp)
                            try:
                                got[s].append(fio(mp, rw, engine, depth,
                                                  jobs, a.seconds))
                            finally:
                                stop(p, mp)
                    rows.append({"image": fmt, "rw": rw, "engine": engine,
                                 "depth": depth, "jobs": jobs,
                                 "iops": {s: got[s] for s in servers}})
                    print_row(rows[-1], len(rows) == 1)
    finally:
        subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL)
        for f in os.listdir(d):
            os.unlink(os.path.join(d, f))
        os.rmdir(d)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


def med(v):
    return statistics.median(v)


def print_row(r, header):
    if header:
        print("image  rw        engine    QD jobs |  lkvm -t1 (spread)     |"
              "  lkvm -t2 (spread)     |  qsd (spread)          | t2/t1 | t2/qsd")
        print("-" * 132)
    cells = []
    for s in ["lkvm-t1", "lkvm-t2", "qsd"]:
        v = r["iops"][s]
        cells.append("%8.0f (%6.0f-%6.0f)" % (med(v), min(v), max(v)))
    t1, t2, q = (med(r["iops"][s]) for s in ["lkvm-t1", "lkvm-t2", "qsd"])
    print("%-6s %-9s %-8s %3d %4d | %s | %s | %s | %4.2fx | %5.2fx" %
          (r["image"], r["rw"], r["engine"], r["depth"], r["jobs"],
           cells[0], cells[1], cells[2], t2 / t1, t2 / q), flush=True)


if __name__ == "__main__":
    sys.exit(main())
