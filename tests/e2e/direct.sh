#!/usr/bin/env bash
# cache=none (O_DIRECT) on ext4 and on a disk with 4096-byte logical
# sectors: 30 opens of each (the format probe reads with O_DIRECT) and
# random reads and writes at any 512-byte offset from buffers at any
# address, checked against a copy in memory (qcow2io verify).  The 4 KiB
# disk is a loop device (losetup --sector-size 4096) with an ext4 on it,
# so both a file on a 4 KiB-sector filesystem and the block device
# itself are covered.  With /dev/kvm, the blk guest also runs 30 times
# on a cache=none disk.
. "$(dirname "$0")/common.bash"
QIO=${QIO:-build/x86_64/e2e/qcow2io}

runs() {	# runs NAME SPEC: 30 opens, each with 200 checked operations
	local name=$1 spec=$2 i bad=0 out
	for i in $(seq 30); do
		out=$("$QIO" verify "$spec" "$i" 200 2>&1) || { bad=$((bad + 1)); echo "  $out"; }
	done
	check "$name: 30 runs with cache=none, 0 failures ($bad)" [ "$bad" -eq 0 ]
	echo "  $(tail -1 <<< "$out")"
}

truncate -s 4M /var/tmp/lkvm-direct.img
runs "file on /var/tmp" /var/tmp/lkvm-direct.img,cache=none

LOOP=
MNT=$TMP/mnt
cleanup_loop() {
	mountpoint -q "$MNT" 2> /dev/null && umount "$MNT"
	[ -n "$LOOP" ] && losetup -d "$LOOP"
	rm -f /var/tmp/lkvm-direct.img /var/tmp/lkvm-4k.img
}
trap 'cleanup_loop; rm -rf "$TMP"' EXIT
if [ "$(id -u)" != 0 ] || ! command -v losetup > /dev/null ||
   ! command -v mkfs.ext4 > /dev/null; then
	skip_env "4096-byte-sector loop device: needs root, losetup and mkfs.ext4"
else
	truncate -s 64M /var/tmp/lkvm-4k.img
	LOOP=$(losetup --sector-size 4096 --find --show /var/tmp/lkvm-4k.img 2> /dev/null)
	if [ -z "$LOOP" ]; then
		skip_env "no loop device could be set up here"
	else
		check "the loop device has 4096-byte logical sectors" \
			[ "$(blockdev --getss "$LOOP")" = 4096 ]
		runs "block device with 4096-byte sectors" "$LOOP,cache=none"
		mkdir -p "$MNT"
		mkfs.ext4 -q -F "$LOOP" && mount "$LOOP" "$MNT" &&
			truncate -s 4M "$MNT/disk.img"
		runs "file on ext4 on 4096-byte sectors" "$MNT/disk.img,cache=none"
		"$QIO" verify "$MNT/disk.img,cache=none" 1 1 | grep -q "alignment 4096"
		check "... where lkvm learnt the 4096-byte direct I/O alignment" [ $? -eq 0 ]
	fi
fi

if can_kvm; then
	bad=0
	truncate -s 1M /var/tmp/lkvm-direct.img
	for i in $(seq 30); do
		lkvm_run run -k $GUESTS/blk.bin -m 64 -d /var/tmp/lkvm-direct.img,cache=none
		[ "$STATUS" -eq 0 ] || { bad=$((bad + 1)); echo "  $ERR"; }
	done
	check "blk guest: 30 runs on a cache=none disk, 0 failures ($bad)" [ "$bad" -eq 0 ]
else
	skip_env "blk guest on a cache=none disk: /dev/kvm is not usable here"
fi
finish
