#!/usr/bin/env bash
# Start-up cost of a whole lkvm process: exec to exit of
#   ./lkvm run -k guest/build/hello.bin -m 64 -c 1
# over N runs (default 10): median wall time beside /bin/true's (the cost
# of any process here) and beside the bare-KVM floor (tests/bench/
# kvmfloor.c: create a VM, irqchip, PIT, 64 MiB, one vCPU, run it to
# its first exit, close: what any VMM pays here), lkvm's own
# create/run split and its peak RSS (VmHWM, from --stats).  Prints a
# table; not a pass/fail test.
set -eu
cd "$(dirname "$0")/../.."
N=${1:-10}
FLOOR=${B:-build/x86_64}/bench/kvmfloor
if ! $FLOOR 2> /tmp/kvmfloor.err; then
	echo "start-up: SKIP (KVM is not usable here: $(cat /tmp/kvmfloor.err))"
	exit 0
fi
python3 - "$N" "$FLOOR" <<'PY'
import os, re, statistics, subprocess, sys, time

n = int(sys.argv[1])
floor = sys.argv[2]
cmd = ["./lkvm", "run", "-k", "guest/build/hello.bin", "-m", "64", "-c", "1",
       "--stats"]

def timed(argv):
    t = time.perf_counter()
    p = subprocess.run(argv, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    return (time.perf_counter() - t) * 1000, p

walls, true_walls, floors = [], [], []
creates, runs, destroys, rss = [], [], [], []
for _ in range(n):
    w, p = timed(cmd)
    if p.returncode != 0:
        sys.exit("lkvm failed: " + p.stderr)
    m = re.search(r"create ([\d.]+) ms, run ([\d.]+) ms, destroy ([\d.]+) ms;"
                  r" peak RSS (\d+) KiB", p.stderr)
    walls.append(w)
    creates.append(float(m.group(1)))
    runs.append(float(m.group(2)))
    destroys.append(float(m.group(3)))
    rss.append(int(m.group(4)))
    true_walls.append(timed(["/bin/true"])[0])
    w, p = timed([floor])
    if p.returncode != 0:
        sys.exit("kvmfloor failed: " + p.stderr)
    floors.append(w)

med = statistics.median
print("start-up, %d runs of: %s" % (n, " ".join(cmd[:-1])))
print("%-36s %10s" % ("what", "median"))
print("%-34s %7.2f ms" % ("lkvm wall time, exec to exit", med(walls)))
print("%-34s %7.2f ms" % ("/bin/true wall time (baseline)", med(true_walls)))
print("%-34s %7.2f ms (%.2f-%.2f)" % ("bare-KVM floor (kvmfloor)",
                                     med(floors), min(floors), max(floors)))
print("%-34s %7.2f ms" % ("lkvm_create (KVM VM, memory, load)", med(creates)))
print("%-34s %7.2f ms" % ("lkvm_run (threads + guest running)", med(runs)))
print("%-34s %7.2f ms" % ("lkvm_destroy (mostly KVM teardown)", med(destroys)))
print("%-34s %7.2f ms" % ("the rest (exec, libc, exit)",
                          med([w - c - r - d for w, c, r, d in
                               zip(walls, creates, runs, destroys)])))
print("%-34s %7d KiB (max %d)" % ("peak RSS", med(rss), max(rss)))
print("lkvm / true wall-time ratio: %.1fx" % (med(walls) / med(true_walls)))
print("lkvm / bare-KVM floor ratio: %.2fx" % (med(walls) / med(floors)))
PY
