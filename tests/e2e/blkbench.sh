#!/usr/bin/env bash
# The block benchmark's programs, run briefly for correctness only (no
# timing is asserted): blkbench's simulated driver writes, flushes and
# reads back data through the real virtio-blk code on both I/O engines,
# checking it through the device and in the file; then a short run of
# every mode must finish without request errors.
. "$(dirname "$0")/common.bash"

BENCH=${B:-build/x86_64}/bench/blkbench
IMG=$TMP/bench.img
truncate -s 64M "$IMG"
for aio in io_uring sync; do
	OUT=$($BENCH --check "$IMG" --aio $aio 2>&1)
	check "blkbench --check ($aio): $(tail -1 <<< "$OUT")" \
		grep -q "^16 passed, 0 failed" <<< "$OUT"
done
for disk in null "$IMG"; do
	for mode in "--depth 1 --queues 1 --rw randread" \
		    "--depth 32 --queues 2 --rw randwrite"; do
		OUT=$($BENCH --disk "$disk" $mode --seconds 0.2 2>&1)
		check "blkbench $(basename "$disk") $mode: requests done, no errors" \
			grep -q '"errors": 0' <<< "$OUT"
		check "... and it did some ($(sed -n 's/.*"requests": \([0-9]*\).*/\1/p' <<< "$OUT"))" \
			grep -q '"requests": [1-9]' <<< "$OUT"
	done
done
finish
