#!/usr/bin/env bash
# End to end: -n mode=user (passt).  Without KVM: option errors, and
# the device on a real passt driven by the simulated guest driver
# (tests/e2e/usernet.c) in a network namespace this script makes (a veth
# with a default route: passt wants an external interface), run as
# nobody with no capabilities: DHCP, ARP, a UDP echo through the
# gateway address, a hostfwd, link down when passt dies.  A kill -9 of
# the process that started passt leaves no passt behind.
. "$(dirname "$0")/common.bash"
U=${B:-build/x86_64}/e2e/usernet

lkvm_run run -k "$GUESTS/hello.bin" -n mode=user,hostfwd=tcp::80
check "a malformed hostfwd is refused: exit 2, says the form" \
	eval '[ "$STATUS" -eq 2 ] && has "$ERR" "HOSTPORT-:GUESTPORT"'
lkvm_run run -k "$GUESTS/hello.bin" -n mode=user,queues=2
check "mode=user takes one queue pair: exit 2" [ "$STATUS" -eq 2 ]
lkvm_run run -k "$GUESTS/hello.bin" -n mode=tap,hostfwd=tcp::80-:80
check "hostfwd belongs to mode=user: exit 2" [ "$STATUS" -eq 2 ]

OUT=$(timeout 30 "$U" drops 2>&1)
echo "$OUT" | grep -vE "^(PASS|FAIL)"
check "a fake passt: frames too long or too short are dropped and counted; 1500 frames sent while it did not read arrive whole and in order: $(tail -1 <<< "$OUT")" \
	eval 'grep -q "^[0-9]* passed, 0 failed" <<< "$OUT" && has "$OUT" "dropped 2 (queue errors 2)" && has "$OUT" "the queue waited for room; 1500 frames completed; passt says ok 1500"'

if [ "$(id -u)" -ne 0 ]; then
	skip_env "the passt checks need root to make their network namespace"
	finish
	exit 0
fi
need_tool passt passt
need_tool setpriv util-linux
NS=lkvm-usernet-$$
ip netns add $NS || { fail "ip netns add"; finish; exit 1; }
trap 'ip netns del $NS 2> /dev/null; rm -rf "$TMP" "$RUN"' EXIT
ip -n $NS link set lo up
ip -n $NS link add v0 type veth peer name v1
ip -n $NS addr add 192.0.2.1/24 dev v0
ip -n $NS link set v0 up
ip -n $NS link set v1 up
ip -n $NS route add default via 192.0.2.254
# A copy nobody may run.
RUN=$(mktemp -d /tmp/lkvm-usernet.XXXXXX)
chmod 755 "$RUN"
cp "$U" "$RUN/usernet"
AS_NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all"

OUT=$(timeout 60 ip netns exec $NS $AS_NOBODY "$RUN/usernet" 5555 8022 22 2>&1)
echo "$OUT" | grep -vE "^(PASS|FAIL)"
check "as nobody, no capabilities: $(tail -1 <<< "$OUT")" grep -q "^[0-9]* passed, 0 failed" <<< "$OUT"
check "DHCP offers 10.0.2.15, router 10.0.2.2" has "$OUT" "DHCP offer: 10.0.2.15, router 10.0.2.2"
check "a UDP datagram to 10.0.2.2:5555 reaches 127.0.0.1:5555 and back" \
	has "$OUT" "UDP echo through 10.0.2.2:5555: back"
check "hostfwd 127.0.0.1:8022 reaches guest port 22" has "$OUT" "SYN arrived"
check "passt killed: the guest's link goes down" has "$OUT" "passt killed: link down"

# kill -9 of passt's parent: passt goes too (PR_SET_PDEATHSIG).
ip netns exec $NS $AS_NOBODY "$RUN/usernet" hold > "$TMP/pid" 2>&1 &
HOLD=$!
for i in $(seq 50); do [ -s "$TMP/pid" ] && break; sleep 0.1; done
PASST=$(head -1 "$TMP/pid")
check "passt runs while its parent does (pid $PASST)" kill -0 "$PASST"
kill -9 $HOLD
wait $HOLD 2> /dev/null
for i in $(seq 50); do kill -0 "$PASST" 2> /dev/null || break; sleep 0.1; done
check "after kill -9 of its parent no passt is left" eval '! kill -0 "$PASST" 2> /dev/null'
finish
