#!/usr/bin/env bash
# End to end: virtio-net over tap, inside a network namespace made for
# the test.  The guests net and netbasic answer ARP and ping at
# 10.0.2.15; the host side pings them with small and large (multi-buffer)
# frames, then ends the run with a UDP "quit".  Also: taps lkvm creates
# are gone after it exits, persistent taps are attached to and kept,
# missing permission and a failing script give clear errors.
. "$(dirname "$0")/common.bash"
need_kvm

skip() { skip_env "$*"; finish; exit 0; }
[ "$(id -u)" -eq 0 ] || skip "network namespaces need root"
need_tool ip iproute2
need_tool ping iputils-ping
[ -c /dev/net/tun ] || skip "/dev/net/tun is missing"

NS=lkvm-e2e-$$
ip netns add $NS || skip "cannot make a network namespace"
trap 'ip netns del $NS 2> /dev/null; rm -rf "$TMP"' EXIT
IN="ip netns exec $NS"
cat > "$TMP/ifup" << 'EOF'
#!/bin/sh
ip addr add 10.0.2.1/24 dev "$1" && ip link set "$1" up
EOF
chmod +x "$TMP/ifup"

# serve GUEST ARGS...: runs lkvm in the namespace, pings the guest,
# stops it; sets STATUS, OUT, ERR, PING (ping's summaries).
serve() {
	local guest=$1 i
	shift
	$IN timeout 60 "$LKVM" run -k $GUESTS/$guest.bin "$@" \
		> "$TMP/out" 2> "$TMP/err" < /dev/null &
	local pid=$!
	for i in $(seq 50); do
		grep -q "queue pair" "$TMP/out" 2> /dev/null && break
		sleep 0.1
	done
	PING=$($IN ping -q -c 3 -i 0.2 -W 5 10.0.2.15 2>&1 | grep transmitted)
	PING+=" / "$($IN ping -q -c 3 -i 0.2 -s 1400 -W 5 10.0.2.15 2>&1 | grep transmitted)
	$IN bash -c 'echo quit > /dev/udp/10.0.2.15/9'
	wait $pid
	STATUS=$?
	OUT=$(cat "$TMP/out")
	ERR=$(cat "$TMP/err")
}

ALL="3 packets transmitted, 3 received, 0% packet loss"
for tr in pci mmio; do
	serve net --virtio-transport $tr -n mode=tap,tapif=lkt0,script=$TMP/ifup
	check "$tr: net guest exits 0" [ "$STATUS" -eq 0 ]
	check "$tr: every small and large ping answered" \
		[ "$(grep -o "$ALL" <<< "$PING" | wc -l)" -eq 2 ]
	check "$tr: mergeable buffers, large frames over 3 buffers" \
		has "$OUT" "(3 frames over several buffers, at most 3)"
	check "$tr: 6 echo replies, ARP answered, no damaged frame" \
		has "$OUT" "net: 6 echo replies"
	check "$tr: no bad frames" has "$OUT" ", 0 bad frames"
	check "$tr: the tap lkvm made is gone after exit" \
		bash -c "! $IN ip link show lkt0 > /dev/null 2>&1"

	serve net --virtio-transport $tr -n mode=tap,tapif=lkt0,script=$TMP/ifup,queues=2
	check "$tr: 2 queue pairs turned on through the control queue" \
		has "$OUT" "2 queue pair(s), mergeable buffers"
	check "$tr: 2 queue pairs: every ping answered" \
		[ "$(grep -o "$ALL" <<< "$PING" | wc -l)" -eq 2 ]
	check "$tr: 2 queue pairs: guest exits 0" [ "$STATUS" -eq 0 ]

	serve netbasic --virtio-transport $tr -n mode=tap,tapif=lkt0,script=$TMP/ifup,guest_mac=52:54:00:12:34:56
	check "$tr: netbasic: whole buffers, MAC from guest_mac" \
		has "$OUT" "net: 52:54:00:12:34:56 on virtio-$tr, 1 queue pair(s), whole buffers"
	check "$tr: netbasic: malformed transmit chains came back" \
		has "$OUT" "6 malformed transmit chains sent, all returned"
	check "$tr: netbasic: all 6 dropped and counted by reason" \
		has "$ERR" "dropped 6 transmit frame(s) (1 transmit chain with writable buffers, 1 shorter than a header and Ethernet header, 1 larger than the MTU, 1 bad header flags, 2 bad checksum offload request)"
	check "$tr: netbasic: still answers every ping afterwards" \
		[ "$(grep -o "$ALL" <<< "$PING" | wc -l)" -eq 2 ]
	check "$tr: netbasic: exits 0" [ "$STATUS" -eq 0 ]
done

# A persistent tap made for the user: attached without CAP_NET_ADMIN,
# and still there afterwards.
$IN ip tuntap add dev lkp0 mode tap vnet_hdr user 0
$IN ip addr add 10.0.2.1/24 dev lkp0
$IN ip link set lkp0 up
NOADMIN="setpriv --inh-caps=-net_admin --bounding-set=-net_admin"
IN="ip netns exec $NS $NOADMIN"
serve net -n mode=tap,tapif=lkp0
IN="ip netns exec $NS"
check "persistent tap: attached without CAP_NET_ADMIN, pings answered" \
	[ "$(grep -o "$ALL" <<< "$PING" | wc -l)" -eq 2 ]
check "persistent tap: guest exits 0" [ "$STATUS" -eq 0 ]
check "persistent tap: kept after exit" $IN ip link show dev lkp0 > /dev/null

OUT=$($IN $NOADMIN timeout 20 "$LKVM" run -k $GUESTS/net.bin -n mode=tap,tapif=lkn0 2>&1)
STATUS=$?
check "no CAP_NET_ADMIN: creating a tap fails with status 1" [ "$STATUS" -eq 1 ]
check "no CAP_NET_ADMIN: the message says what is missing" \
	has "$OUT" "cannot create tap 'lkn0': Operation not permitted (creating a tap needs CAP_NET_ADMIN"

OUT=$($IN timeout 20 "$LKVM" run -k $GUESTS/net.bin -n mode=tap,tapif=lkf0,script=/bin/false 2>&1)
STATUS=$?
check "failing script: status 1" [ "$STATUS" -eq 1 ]
check "failing script: a message" \
	has "$OUT" "script '/bin/false lkf0' failed (exit status 1)"
check "failing script: the tap is removed" \
	bash -c "! $IN ip link show lkf0 > /dev/null 2>&1"

OUT=$($IN timeout 20 "$LKVM" run -k $GUESTS/net.bin -n mode=tap,tapif=lkb0,script=/nonexistent 2>&1)
check "missing script: a message" has "$OUT" "cannot run script '/nonexistent'"

for bad in "mode=tap,guest_mac=01:00:5e:00:00:01" "mode=tap,guest_mac=zz" \
	"mode=tap,queues=0" "mode=tap,queues=99" "mode=bridge" "tapif=x" \
	"mode=tap,tapif=a/b" "mode=none,tapif=x" "mode=tap,,queues=2"; do
	lkvm_run run -k $GUESTS/hello.bin -n "$bad"
	check "bad -n '$bad': usage error (2)" [ "$STATUS" -eq 2 ]
	check "bad -n '$bad': a message" has "$ERR" "network:"
done
lkvm_run run -k $GUESTS/hello.bin -n mode=none
check "-n mode=none: no device, guest runs" [ "$STATUS" -eq 0 ]

finish
