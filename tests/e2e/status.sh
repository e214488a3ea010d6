#!/usr/bin/env bash
# README's exit-status table, one check per row (and per case the table
# names), with the message that goes with it.  Rows a guest must produce
# need /dev/kvm; "KVM unavailable" and "no permission on /dev/kvm" are
# made in a mount namespace whose /dev lacks it or holds one we may not
# open, so they run on any machine, KVM or not.
. "$(dirname "$0")/common.bash"

# Files another user can read, for the no-permission case.
PUB=$(mktemp -d /tmp/lkvm-status.XXXXXX)
chmod 755 "$PUB"
cp $GUESTS/hello.bin "$PUB/hello.bin"
cp "$LKVM" "$PUB/lkvm"
chmod 755 "$PUB/lkvm"
chmod 644 "$PUB/hello.bin"
trap 'rm -rf "$TMP" "$PUB"' EXIT

# in_ns SETUP ARGS...: lkvm run ARGS in a mount namespace after SETUP.
in_ns() {
	local setup=$1
	shift
	timeout 30 unshare -m sh -c "mount -t tmpfs none /dev && $setup && exec \"\$@\"" \
		sh "$@" > "$TMP/out" 2> "$TMP/err" < /dev/null
	STATUS=$?
	OUT=$(cat "$TMP/out")
	ERR=$(cat "$TMP/err")
}

# 2: usage errors, whatever the machine.
lkvm_run run -k $GUESTS/hello.bin --bogus
check "2: an unknown option" [ "$STATUS" -eq 2 ]
lkvm_run run -k $GUESTS/hello.bin -d /tmp
check "2: a directory given to -d ($ERR)" [ "$STATUS" -eq 2 ]
lkvm_run run -k $GUESTS/hello.bin -c 0
check "2: a CPU count out of range" [ "$STATUS" -eq 2 ]

# 1: the host cannot run it.
if [ "$(id -u)" = 0 ] && command -v unshare > /dev/null; then
	in_ns true "$PUB/lkvm" run -k "$PUB/hello.bin"
	check "1: KVM unavailable (no /dev/kvm): $ERR" [ "$STATUS" -eq 1 ]
	check "... and it says /dev/kvm" has "$ERR" "/dev/kvm"
	in_ns "mknod -m 600 /dev/kvm c 10 232" \
		setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$PUB/lkvm" run -k "$PUB/hello.bin"
	check "1: no permission on /dev/kvm: $ERR" [ "$STATUS" -eq 1 ]
	check "... and it says so" has "$ERR" "Permission denied"
else
	skip_env "KVM unavailable / no permission rows: need root and unshare"
fi

if can_kvm; then
	lkvm_run run -k $GUESTS/hello.bin
	check "0: the guest powered off (hello)" [ "$STATUS" -eq 0 ]
	lkvm_run run -k $GUESTS/reboot.bin
	check "0: the guest reset (reboot)" [ "$STATUS" -eq 0 ]
	lkvm_run run -k $GUESTS/exitcode.bin
	check "N: the guest wrote 42 to port 0x501" [ "$STATUS" -eq 42 ]
	lkvm_run run -k $GUESTS/exitcode.bin --exit-code-offset 100
	check "N + offset: --exit-code-offset 100 gives 142" [ "$STATUS" -eq 142 ]
	lkvm_run run -k $GUESTS/panic.bin
	check "123: the guest panicked (pvpanic)" [ "$STATUS" -eq 123 ]
	lkvm_run run -k $GUESTS/spin.bin --timeout 0.5
	check "124: --timeout expired" [ "$STATUS" -eq 124 ]
	lkvm_run run -k $GUESTS/triple.bin
	check "1: a guest triple fault" [ "$STATUS" -eq 1 ]
	timeout 30 "$LKVM" run -k $GUESTS/spin.bin > /dev/null 2>&1 < /dev/null &
	pid=$!
	sleep 1
	kill -TERM $pid
	wait $pid
	check "128+N: SIGTERM gives 143" [ $? -eq 143 ]
	if [ "$(id -u)" = 0 ] && [ -c /dev/net/tun ]; then
		setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
			"$PUB/lkvm" run -k "$PUB/hello.bin" -n mode=tap,tapif=lkst0 \
			> "$TMP/out" 2> "$TMP/err" < /dev/null
		STATUS=$?
		check "1: a tap without permission: $(cat "$TMP/err")" [ "$STATUS" -eq 1 ]
	else
		skip_env "tap without permission row: needs root and /dev/net/tun"
	fi
else
	skip_env "guest-driven rows (0, N, 123, 124, triple fault, 128+N, tap): /dev/kvm is not usable here"
fi
finish
