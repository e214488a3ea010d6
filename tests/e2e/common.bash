# Helpers for end-to-end tests: pass/fail counting and running lkvm with
# its output captured.  Source it; finish with "finish".
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
LKVM=${LKVM:-./lkvm}
GUESTS=${GUESTS:-guest/build}
PASSED=0
FAILED=0
SKIPPED=0
TMP=$(mktemp -d /tmp/lkvm-e2e.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

pass() { PASSED=$((PASSED + 1)); echo "PASS $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $*"; }
# skip_env REASON: this machine cannot do it (no /dev/kvm, not root):
# counted and shown as skipped.
skip_env() { SKIPPED=$((SKIPPED + 1)); echo "SKIP: $*"; }
# skip_tool COMMAND PACKAGE: a tool make check should have installed is
# missing; under CI=true tests/run.sh fails the run on this line.
skip_tool() {
	SKIPPED=$((SKIPPED + 1))
	echo "SKIP (missing tool): $1; apt-get install -y $2"
}

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

# Can this machine run a VM?  (/dev/kvm usable by us.)
can_kvm() { [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; }

# A script whose every test needs KVM: without it, one skip for the lot.
need_kvm() {
	if ! can_kvm; then
		skip_env "${1:-$(basename "$0" .sh)}: /dev/kvm is not usable here"
		finish
		exit 0
	fi
}

# need_tool COMMAND PACKAGE: the same for a tool the script cannot do without.
need_tool() {
	if ! command -v "$1" > /dev/null; then
		skip_tool "$1" "$2"
		finish
		exit 0
	fi
}

finish() {
	echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
	[ "$FAILED" -eq 0 ]
}
