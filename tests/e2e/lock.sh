#!/usr/bin/env bash
# Image locking, with QEMU as the peer: two users that would corrupt an
# image are refused (lkvm and lkvm, lkvm and qemu-img, qemu-io and lkvm),
# readers share, lock=off overrides.  The disk layer is driven from the
# host (qcow2io hold/dump/verify, which open images as lkvm run does);
# with /dev/kvm, two lkvm run on one image too.
. "$(dirname "$0")/common.bash"
need_tool qemu-img qemu-utils
need_tool qemu-io qemu-utils
Q=${B:-build/x86_64}/e2e/qcow2io
IMG=$TMP/lock.qcow2
qemu-img create -q -f qcow2 "$IMG" 4M

hold() {	# hold SPEC: a holder in the background, until it says so
	"$Q" hold "$1" 30 > "$TMP/hold.out" 2>&1 &
	HOLDER=$!
	for i in $(seq 100); do grep -q holding "$TMP/hold.out" && return; sleep 0.05; done
}
release() { kill $HOLDER 2> /dev/null; wait $HOLDER 2> /dev/null; }

hold "$IMG"
"$Q" verify "$IMG" 1 1 > "$TMP/out" 2>&1
check "lkvm writing it: a second lkvm writer is refused" [ $? -ne 0 ]
check "... saying another process uses it" grep -q "another process" "$TMP/out"
"$Q" dump "$IMG" "$TMP/dump" > "$TMP/out" 2>&1
check "lkvm writing it: an lkvm reader is refused" [ $? -ne 0 ]
qemu-img info "$IMG" > "$TMP/out" 2>&1
check "lkvm writing it: qemu-img info fails" [ $? -ne 0 ]
check "... with QEMU's \"Failed to get shared 'write' lock\"" \
	grep -q 'Failed to get shared "write" lock' "$TMP/out"
qemu-io -c 'read 0 512' "$IMG" > "$TMP/out" 2>&1
check "lkvm writing it: qemu-io (read-write) is refused" grep -q "Failed to get" "$TMP/out"
"$Q" verify "$IMG,lock=off" 1 1 > "$TMP/out" 2>&1
check "lock=off overrides" [ $? -eq 0 ]
release

qemu-io -c 'sleep 30000' "$IMG" > /dev/null 2>&1 &
QPID=$!
sleep 1
"$Q" verify "$IMG" 1 1 > "$TMP/out" 2>&1
check "qemu-io writing it: lkvm is refused" [ $? -ne 0 ]
check "... with a clear message: $(head -1 "$TMP/out")" grep -q "does not share 'write'\|is using it" "$TMP/out"
kill $QPID 2> /dev/null; wait $QPID 2> /dev/null

hold "$IMG,ro"
"$Q" dump "$IMG" "$TMP/dump" > "$TMP/out" 2>&1
check "two readers share an image" [ $? -eq 0 ]
qemu-img info "$IMG" > "$TMP/out" 2>&1
check "an lkvm reader and qemu-img info share it" [ $? -eq 0 ]
"$Q" verify "$IMG" 1 1 > "$TMP/out" 2>&1
check "an lkvm reader refuses a writer" [ $? -ne 0 ]
release

"$Q" verify "$IMG" 1 1 > "$TMP/out" 2>&1
check "released: writable again" [ $? -eq 0 ]

# A backing file is opened read-only: two overlays on one base share it.
qemu-img create -q -f qcow2 "$TMP/base.qcow2" 4M
qemu-img create -q -f qcow2 -b "$TMP/base.qcow2" -F qcow2 "$TMP/o1.qcow2"
qemu-img create -q -f qcow2 -b "$TMP/base.qcow2" -F qcow2 "$TMP/o2.qcow2"
hold "$TMP/o1.qcow2"
"$Q" verify "$TMP/o2.qcow2" 1 1 > "$TMP/out" 2>&1
check "two overlays on one base image run together" [ $? -eq 0 ]
"$Q" verify "$TMP/base.qcow2" 1 1 > "$TMP/out" 2>&1
check "the base of a running overlay cannot be written" [ $? -ne 0 ]
release

if can_kvm; then
	truncate -s 1M "$TMP/raw.img"
	timeout 30 "$LKVM" run -k $GUESTS/spin.bin -d "$TMP/raw.img" > /dev/null 2>&1 &
	LPID=$!
	sleep 1
	lkvm_run run -k $GUESTS/hello.bin -d "$TMP/raw.img"
	check "two lkvm on one image: the second exits 2 ($ERR)" [ "$STATUS" -eq 2 ]
	qemu-img info -f raw "$TMP/raw.img" > "$TMP/out" 2>&1
	check "qemu-img refuses an image lkvm run is writing" \
		grep -q 'Failed to get shared "write" lock' "$TMP/out"
	kill $LPID; wait $LPID 2> /dev/null
	lkvm_run run -k $GUESTS/hello.bin -d "$TMP/raw.img" -d "$TMP/raw.img"
	check "-d IMG -d IMG: refused (exit 2)" [ "$STATUS" -eq 2 ]
else
	skip_env "two lkvm run on one image: /dev/kvm is not usable here"
fi
finish
