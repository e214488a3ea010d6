#!/usr/bin/env bash
# Per-thread seccomp filters.  Host-side, the device tests (blk on
# io_uring, rng, console, balloon, the race; virtio-net over a socketpair;
# virtio-vsock, whose thread dials and accepts host sockets)
# run with their I/O threads filtered (VDRV_SECCOMP=1) and must pass as
# they do unfiltered: the allow-lists cover real device work.  A thread
# made to call something forbidden (LKVM_TEST_FAULT=seccomp:NAME) ends
# the process with SIGSYS, and the report names the thread and the call.
# With /dev/kvm, the lkvm program (filters on by default) does the same
# for a vCPU thread.
. "$(dirname "$0")/common.bash"
T=${B:-build/x86_64}/tests

for t in "race 3000" balloon net vsockdev; do
	out=$(VDRV_SECCOMP=1 $T/$t 2>&1)
	check "filtered: $t passes ($(tail -1 <<< "$out"))" \
		grep -qE "^[0-9]+ passed, 0 failed" <<< "$out"
done

VDRV_SECCOMP=1 LKVM_TEST_FAULT=seccomp:blk0-q0 $T/balloon > "$TMP/out" 2> "$TMP/err"
st=$?
check "a forbidden call on blk0-q0: the process dies with SIGSYS (status $st)" [ $st -eq 159 ]
check "... and the report names the thread and the call" \
	grep -q "thread 'blk0-q0' made a forbidden system call, number [0-9]* (getcwd)" "$TMP/err"
VDRV_SECCOMP=1 LKVM_TEST_FAULT=seccomp:virtio-lo $T/balloon > "$TMP/out" 2> "$TMP/err"
check "... the same on the low-rate thread" grep -q "thread 'virtio-lo'" "$TMP/err"

if can_kvm; then
	lkvm_run run -k $GUESTS/rng.bin --rng
	check "lkvm run, filters on by default: the rng guest works" [ "$STATUS" -eq 0 ]
	LKVM_TEST_FAULT=seccomp:vcpu0 timeout 30 "$LKVM" run -k $GUESTS/hello.bin \
		> /dev/null 2> "$TMP/err" < /dev/null
	st=$?
	check "a forbidden call on vcpu0: SIGSYS (status $st)" [ $st -eq 159 ]
	check "... named in the report" grep -q "thread 'vcpu0'.*(getcwd)" "$TMP/err"
	LKVM_TEST_FAULT=seccomp:vcpu0 timeout 30 "$LKVM" run -k $GUESTS/hello.bin --sandbox=off \
		> /dev/null 2>&1 < /dev/null
	check "--sandbox=off: no filter, the guest runs" [ $? -eq 0 ]
else
	skip_env "lkvm run with filters on: /dev/kvm is not usable here"
fi
finish
