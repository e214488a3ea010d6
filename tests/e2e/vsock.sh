#!/usr/bin/env bash
# End to end: virtio-vsock's hybrid Unix-socket mapping.  Without KVM:
# option errors.  With KVM, the vsock test guest: its line to host port
# 5000 (PATH_5000), a 1 MiB echo through PATH with sha256 compared, 100
# connections at once, 50 one after another, a host reader that stalls
# 2 s (nothing lost, lkvm's memory bounded), the guest's bad packets
# answered with resets, and PATH gone at the end.  tests/x86/nested.sh
# runs the same checks inside its L1 where this host has no KVM.
. "$(dirname "$0")/common.bash"
PEER=${PEER:-build/x86_64/tools/vsockpeer}

for a in "" "2" "x" "3,uds=" "3,bogus=1" "4294967295" \
	"3,uds=/$(printf 'd%.0s' $(seq 120))"; do
	lkvm_run run -k "$GUESTS/hello.bin" --vsock "$a"
	check "--vsock '$a' is refused: exit 2" [ "$STATUS" -eq 2 ]
done
touch "$TMP/file"
lkvm_run run -k "$GUESTS/hello.bin" --vsock "3,uds=$TMP/file"
check "a uds path that is a file is left alone: exit 2, file kept" \
	eval '[ "$STATUS" -eq 2 -a -f "$TMP/file" ] && has "$ERR" "in use"'

need_kvm "vsock guest"
lkvm_run run -k "$GUESTS/hello.bin" --vsock 3 --vsock 4
check "two vsock devices are refused: exit 2" [ "$STATUS" -eq 2 ]
[ -x "$PEER" ] || { fail "vsockpeer is built ($PEER)"; finish; exit 1; }
V=$TMP/v.sock
"$PEER" sink "unixl:${V}_5000" 1 > "$TMP/line" 2> /dev/null &
SINK=$!
for i in $(seq 50); do [ -S "${V}_5000" ] && break; sleep 0.1; done
timeout 120 "$LKVM" run -k "$GUESTS/vsock.bin" --vsock "3,uds=$V" \
	> "$TMP/guest" 2>&1 &
VM=$!
for i in $(seq 100); do grep -q listening "$TMP/guest" && break; sleep 0.1; done
check "PATH is a socket, mode 0600" \
	[ -S "$V" -a "$(stat -c %a "$V")" = 600 ]
head -c 1048576 /dev/urandom > "$TMP/in"
"$PEER" xfer "unix:$V:1234" < "$TMP/in" > "$TMP/out" 2> "$TMP/xfer"
check "1 MiB echoed through CONNECT 1234, sha256 equal" \
	[ "$(sha256sum < "$TMP/in")" = "$(sha256sum < "$TMP/out")" ]
"$PEER" many "unix:$V:1234" 100 20000 2> "$TMP/many"
check "100 connections at once, each 20000 bytes echoed intact" \
	grep -q "many: 100 of 100" "$TMP/many"
"$PEER" churn "unix:$V:1234" 50 2> "$TMP/churn"
check "50 connections opened, echoed and closed one after another" \
	grep -q "churn: 50 of 50" "$TMP/churn"
rss() { awk '/VmRSS/ { print $2 }' /proc/$VM/status; }
R0=$(rss)
"$PEER" stall "unix:$V:1234" 8388608 2000 2> "$TMP/stall"
R1=$(rss)
check "a host reader that stalls 2 s loses nothing (8 MiB echoed)" \
	grep -q "8388608 echoed back intact" "$TMP/stall"
check "lkvm's RSS grew by less than 4 MiB over the stall ($R0 -> $R1 KiB)" \
	[ $((R1 - R0)) -lt 4096 ]
wait $SINK
check "the guest's connection to PATH_5000 carried its line" \
	grep -qx "hello from the vsock guest" "$TMP/line"
"$PEER" send "unix:$V:1" < /dev/null 2> /dev/null
wait $VM
ST=$?
check "the guest exits 0 (3 resets for its bad packets)" \
	eval '[ $ST -eq 0 ] && grep -q "resets for 3 bad packets" "$TMP/guest"'
grep "vsock: out" "$TMP/guest"
check "PATH is removed when lkvm ends" [ ! -e "$V" ]
finish
