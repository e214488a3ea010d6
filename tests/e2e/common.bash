# Helpers for end-to-end tests: pass/fail counting and running lkvm with
# its output captured.  Source it; finish with "finish".
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
LKVM=${LKVM:-./lkvm}
GUESTS=${GUESTS:-guest/build}
PASSED=0
FAILED=0
TMP=$(mktemp -d /tmp/lkvm-e2e.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

pass() { PASSED=$((PASSED + 1)); echo "PASS $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $*"; }

# check NAME CONDITION-COMMAND...
check() {
	local name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name"; fi
}

# lkvm_run ARGS...: sets STATUS, OUT (stdout), ERR (stderr), ELAPSED (ms)
lkvm_run() {
	local t0 t1
	t0=$(date +%s%N)
	timeout 60 "$LKVM" "$@" > "$TMP/out" 2> "$TMP/err" < /dev/null
	STATUS=$?
	t1=$(date +%s%N)
	ELAPSED=$(((t1 - t0) / 1000000))
	OUT=$(cat "$TMP/out")
	ERR=$(cat "$TMP/err")
}

has() { grep -qF -- "$2" <<< "$1"; }
lacks() { ! has "$@"; }

need_kvm() {
	if [ ! -c /dev/kvm ] || ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
		echo "SKIP: /dev/kvm is not usable here"
		echo "0 passed, 0 failed"
		exit 0
	fi
}

finish() {
	echo "$PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
}
