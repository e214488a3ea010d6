# Counting helpers of the nested test scripts (tests/arm64/nested.sh,
# tests/x86/nested.sh), which check what a qemu-run L1 printed.  Source
# it from the repository's top; end with the "N passed, N failed" line.
set -u
PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "PASS $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $*"; }
check() { local n=$1; shift; if "$@"; then pass "$n"; else fail "$n"; fi; }
# The whole script cannot run here: one skip, counted.
skip() { echo "SKIP: $*"; echo "0 passed, 0 failed, 1 skipped"; exit 0; }
skip_tool() {
	echo "SKIP (missing tool): $1; apt-get install -y $2"
	echo "0 passed, 0 failed, 1 skipped"
	exit 0
}
