#!/usr/bin/env bash
# End to end: the control plane.  Without KVM: usage errors, no VM,
# stale sockets.  With KVM, on the counter, sysrq and blkmq test guests:
# list, stat --json, pause/resume, --timeout that does not count a
# pause, debug --dump/--nmi/--sysrq, stop, stop --all, another uid.
. "$(dirname "$0")/common.bash"
export XDG_RUNTIME_DIR=$TMP/run
D=$XDG_RUNTIME_DIR/lkvm
mkdir -p "$D"
chmod 700 "$D"

lkvm_run list
check "list with no VM: a header only, exit 0" \
	[ "$STATUS" -eq 0 -a "$(wc -l <<< "$OUT")" -eq 1 ]
lkvm_run list --json
check "list --json with no VM: []" [ "$STATUS" -eq 0 -a "$OUT" = "[]" ]
lkvm_run stop nosuch
check "stop of a VM that does not exist: exit 1, says so" \
	eval '[ "$STATUS" -eq 1 ] && has "$ERR" "no VM named nosuch"'
for args in "stop" "stop a --all" "stat a --count 3" "debug a" \
	"debug a --sysrq tt" "pause a b" "balloon a" "list --all" \
	"stat a --watch 0"; do
	lkvm_run $args
	check "usage error: lkvm $args -> exit 2" [ "$STATUS" -eq 2 ]
done
lkvm_run stop ../x
check "a name with a slash is refused" \
	eval '[ "$STATUS" -ne 0 ] && has "$ERR" "not a VM name"'
# A socket whose process is gone (as after kill -9).
stale() {
	python3 -c "import socket; s = socket.socket(socket.AF_UNIX); s.bind('$D/$1.sock')"
}
stale old
lkvm_run list
check "list removes a stale socket and says so" \
	eval '[ "$STATUS" -eq 0 -a ! -e "$D/old.sock" ] && has "$ERR" "removed stale socket"'
stale old2
lkvm_run stop old2
check "stop of a stale socket: exit 1, socket removed" \
	eval '[ "$STATUS" -eq 1 -a ! -e "$D/old2.sock" ] && has "$ERR" "not running"'

need_kvm

bg() {	# bg NAME ARGS...: lkvm run --name NAME in the background
	local n=$1
	shift
	rm -f "$TMP/$n.status"
	{ timeout 60 "$LKVM" run --name "$n" "$@" > "$TMP/$n.out" 2> "$TMP/$n.err" < /dev/null
	  echo $? > "$TMP/$n.status"; } &
}
wait_out() {	# wait_out NAME TEXT: up to 30 s
	local i
	for i in $(seq 300); do grep -qF -- "$2" "$TMP/$1.out" 2> /dev/null && return 0; sleep 0.1; done
	return 1
}
wait_end() {	# wait_end NAME: its status, once it exits (30 s at most)
	local i
	for i in $(seq 300); do [ -s "$TMP/$1.status" ] && break; sleep 0.1; done
	cat "$TMP/$1.status" 2> /dev/null
}
lines() { grep -c "^counter:" "$TMP/$1.out"; }

bg a -k $GUESTS/counter.bin
bg b -k $GUESTS/counter.bin
check "two counter guests run" eval 'wait_out a "counter: 2" && wait_out b "counter: 2"'
lkvm_run list
check "list shows both by name, running" \
	[ "$(awk 'NR > 1 && $3 == "running" { print $1 }' <<< "$OUT" | tr '\n' ' ')" = "a b " ]
lkvm_run list --json
check "list --json parses: two VMs, pid and vCPUs" python3 -c "
import json, sys; j = json.loads(sys.argv[1])
assert [v['name'] for v in j] == ['a', 'b'] and all(v['pid'] > 0 and v['cpus'] == 1 for v in j)" "$OUT"
lkvm_run stat --name a --json
check "stat --json parses: the VM's exits, and a record per queue" python3 -c "
import json, sys; j = json.loads(sys.argv[1])
assert j['vm']['name'] == 'a' and j['vm']['exits_io'] > 0 and isinstance(j['queues'], list)" "$OUT"

lkvm_run pause a
check "pause a: exit 0" [ "$STATUS" -eq 0 ]
lkvm_run list
check "list shows a paused" has "$(awk '$1 == "a" { print $3 }' <<< "$OUT")" paused
sleep 0.3
C0=$(lines a)
sleep 1.5
C1=$(lines a)
lkvm_run pause a
check "pausing a paused VM: exit 1" [ "$STATUS" -eq 1 ]
lkvm_run resume a
sleep 1.5
C2=$(lines a)
echo "  counter lines: $C0 at pause, $C1 1.5 s later, $C2 1.5 s after resume"
check "no output while paused, more after resume" [ "$C0" -eq "$C1" -a "$C2" -gt "$C1" ]

lkvm_run debug --dump a
check "debug --dump shows the registers and the code at rip" \
	eval '[ "$STATUS" -eq 0 ] && has "$OUT" "vCPU 0:" && has "$OUT" "rip "'
lkvm_run stop --name a
check "stop --name a: a exits 0" [ "$STATUS" -eq 0 -a "$(wait_end a)" = 0 ]
lkvm_run list
check "b still runs after a stopped" \
	[ "$(awk 'NR > 1 { print $1 "=" $3 }' <<< "$OUT" | tr '\n' ' ')" = "b=running " ]
lkvm_run debug --nmi 0 b
check "debug --nmi 0 reaches the guest (no handler: it traps out)" \
	eval '[ "$STATUS" -eq 0 -a "$(wait_end b)" = $((0xee)) ] &&
	grep -q "PANIC: exception 2 " "$TMP/b.out"'

bg c -k $GUESTS/counter.bin
bg d -k $GUESTS/counter.bin
wait_out c "counter: 1" && wait_out d "counter: 1"
"$LKVM" pause c > /dev/null
lkvm_run stop --all
check "stop --all (c paused): both exit 0, no socket left" \
	[ "$STATUS" -eq 0 -a "$(wait_end c)" = 0 -a "$(wait_end d)" = 0 -a -z "$(ls "$D")" ]

# Another user: the directory keeps it out; where it is let in, the
# peer check refuses it.
if command -v setpriv > /dev/null && [ "$(id -u)" = 0 ]; then
	bg e -k $GUESTS/counter.bin
	wait_out e "counter: 1"
	chmod 755 "$TMP" "$XDG_RUNTIME_DIR" "$D"
	chmod 666 "$D/e.sock"
	cp "$LKVM" "$TMP/lkvm-other" && chmod 755 "$TMP/lkvm-other"
	OTHER=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$TMP/lkvm-other" stat e 2>&1)
	echo "  as uid 65534: $OTHER"
	check "another uid is refused (SO_PEERCRED)" has "$OTHER" "not this VM's user"
	chmod 700 "$D"
	"$LKVM" stop e > /dev/null
	check "e stops" [ "$(wait_end e)" = 0 ]
else
	skip_env "another uid: needs root and setpriv"
fi

bg s -k $GUESTS/sysrq.bin
wait_out s "sysrq: ready"
lkvm_run debug --sysrq t s
check "debug --sysrq t: the guest sees a break, then 't'" \
	eval '[ "$STATUS" -eq 0 -a "$(wait_end s)" = 116 ] &&
	grep -q "sysrq: break (byte 0), then key .t.\$" "$TMP/s.out"'

# --timeout 2 with a 2 s pause inside: the run lasts 4 s or more.
T0=$(date +%s%N)
bg t -k $GUESTS/counter.bin --timeout 2
wait_out t "counter: 1"
"$LKVM" pause t > /dev/null
sleep 2
"$LKVM" resume t > /dev/null
ST=$(wait_end t)
MS=$((($(date +%s%N) - T0) / 1000000))
echo "  --timeout 2 with a 2 s pause: ended after $MS ms, status $ST"
check "paused time does not count against --timeout" [ "$ST" = 124 -a "$MS" -ge 3800 ]

# A pause while blkmq's requests are in flight loses nothing.
IMG=$TMP/mq.img
truncate -s 1M "$IMG"
bg m -k $GUESTS/blkmq.bin -d "$IMG,queues=2" -c 2
PAUSED=no
for i in $(seq 100); do
	"$LKVM" pause m > /dev/null 2>&1 && { PAUSED=yes; break; }
	sleep 0.02
done
sleep 0.5
[ "$PAUSED" = yes ] && "$LKVM" resume m > /dev/null
echo "  blkmq paused mid-run: $PAUSED"
check "blkmq after a pause: both queues complete, exit 0" \
	eval '[ "$(wait_end m)" = 0 ] && grep -q "blkmq: queue 0 ok, queue 1 ok" "$TMP/m.out"'
check "blkmq after a pause: the image holds both halves" \
	python3 tests/e2e/imgcheck.py "$IMG" 2 0 $((128 * 1024))
wait
finish
