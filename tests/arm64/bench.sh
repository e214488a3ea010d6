#!/usr/bin/env bash
# make bench-arm64: lkvm's I/O speed as a real Linux guest sees it.
# Boots the nested test bed of tests/arm64 (qemu-system-aarch64 L1 with
# KVM, lkvm in L1, Debian's arm64 kernel as L2) and runs the in-guest
# load generator (tests/arm64/iobench.c) on a 256 MiB virtio-blk disk
# on L1's tmpfs: 4 KiB O_DIRECT random reads at QD1 (psync) and QD32
# (io_uring, libaio), random writes at QD32 (libaio).  Every variant
# boots on each transport and vCPU count (2 vCPUs get 2 queues), several
# times; the table gives medians with their spread, and per request the
# VMM's CPU time, syscalls and sleeps (all lkvm threads), and L2's
# interrupts and MMIO writes (notifies).  L2 boots with equal CPU
# features for every variant (arm64.nopauth arm64.nosve).
#
# Settings (environment):
#   LKVM_BENCH_REPS       boots per variant (default 3)
#   LKVM_BENCH_SECS       seconds per phase (default 3)
#   LKVM_BENCH_VARIANTS   of auto, fixed50, off, base (default auto,fixed50,off)
#   LKVM_BENCH_BASE       a git revision: "base" is lkvm built from it
#   LKVM_BENCH_TRS        transports (default pci,mmio)
#   LKVM_BENCH_CPUS       vCPU counts (default 1,2)
# Not part of make check: it takes about 15 minutes.
set -u
cd "$(dirname "$0")/../.."
skip() { echo "SKIP: $*"; exit 0; }
skip_tool() { echo "SKIP (missing tool): $1; apt-get install -y $2"; exit 0; }
W=build/arm64-bench
source tests/arm64/common.bash

REPS=${LKVM_BENCH_REPS:-3}
SECS=${LKVM_BENCH_SECS:-3}
VARIANTS=${LKVM_BENCH_VARIANTS:-auto,fixed50,off}
BASE=${LKVM_BENCH_BASE:-}
TRS=${LKVM_BENCH_TRS:-pci,mmio}
CPUS=${LKVM_BENCH_CPUS:-1,2}
PHASES=${LKVM_BENCH_PHASES:-rr1psync:randread:psync:1,rr32uring:randread:io_uring:32,rr32aio:randread:libaio:32,rw32aio:randwrite:libaio:32}

build_lkvm || { cat $W/build.log; exit 1; }
rootfs $W/l2 tests/arm64/bench-l2-init virtio_mmio virtio_pci \
	virtio_pci_modern_dev virtio_pci_legacy_dev virtio_blk
aarch64-linux-gnu-gcc -O2 -Wall -Wextra -static -o $W/l2/bin/iobench \
	tests/arm64/iobench.c || exit 1
(cd $W/l2 && find . | cpio -o -H newc --quiet) > $W/l2.cpio
rootfs $W/l1 tests/arm64/bench-l1-init
aarch64-linux-gnu-gcc -O2 -Wall -Wextra -static -o $W/l1/bin/benchsnap \
	tests/arm64/benchsnap.c || exit 1
mkdir -p $W/l1/l2
cp $IMAGE $W/l1/l2/Image
cp $W/l2.cpio $W/l1/l2/initrd.cpio
cp build/arm64-static/lkvm $W/l1/bin/lkvm
if [ -n "$BASE" ]; then
	# The same build of another revision, in a work tree of its own.
	rm -rf $W/base-tree
	git worktree add -f --detach $W/base-tree "$BASE" > /dev/null 2>&1 &&
	make -s -C $W/base-tree ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- \
		STATIC=1 lkvm > $W/base-build.log 2>&1 ||
		{ cat $W/base-build.log; exit 1; }
	cp $W/base-tree/build/arm64-static/lkvm $W/l1/bin/lkvm-base
	git worktree remove -f $W/base-tree
	echo "base: lkvm at $(git rev-parse --short "$BASE")"
fi
(cd $W/l1 && find . | cpio -o -H newc --quiet) > $W/l1.cpio

echo "bench-arm64: variants $VARIANTS, transports $TRS, vCPUs $CPUS, $REPS boots each, ${SECS} s a phase"
T0=$(date +%s)
timeout 7200 qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 \
	-cpu max,pauth-impdef=on -smp 2 -m 2048 -nographic -nic none -no-reboot \
	-kernel $IMAGE -initrd $W/l1.cpio \
	-append "console=ttyAMA0 rdinit=/init panic=-1 quiet reps=$REPS secs=$SECS phases=$PHASES variants=$VARIANTS trs=$TRS cpus=$CPUS" \
	< /dev/null > $W/console.log 2>&1
echo "qemu ran $(( $(date +%s) - T0 )) s; console in $W/console.log"
grep -q "^L1 all done" $W/console.log || { echo "L1 did not finish"; tail -20 $W/console.log; exit 1; }
python3 tests/arm64/bench_table.py $W/console.log | tee $W/table.md
