#!/usr/bin/env bash
# Runs every test program and sums their closing "N passed, N failed"
# lines.  A program that crashes or exits non-zero without reporting a
# failure counts as one failure.  The last line is the grand total.
set -u
B=${B:-build/x86_64}
cd "$(dirname "$0")/.."
total_pass=0
total_fail=0

run_test() {
	local name=$1 out rc line p f
	shift
	out=$("$@" 2>&1)
	rc=$?
	line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
	if [ -z "$line" ]; then
		p=0
		f=1
		printf '%s\n' "$out" | tail -n 30
		echo "$name: no result line (exit status $rc)"
	else
		p=${line%% passed*}
		f=${line#*, }
		f=${f%% failed*}
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
			f=1
			echo "$name: exit status $rc despite no reported failure"
		fi
		if [ "$f" -ne 0 ]; then
			printf '%s\n' "$out" | grep -E 'FAIL|ERROR|error|runtime error' | head -n 40
		fi
		echo "$name: $line"
	fi
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
}

for t in "$B"/tests/*; do
	[ -x "$t" ] && run_test "unit/$(basename "$t")" "$t"
done
for t in "$B"/tests-san/*; do
	[ -x "$t" ] && run_test "unit-asan/$(basename "$t")" "$t"
done
for t in "$B"/fuzz-replay/*; do
	[ -x "$t" ] && run_test "fuzz-replay/$(basename "$t")" "$t"
done
run_test "fuzz/libfuzzer" bash tests/fuzz/libfuzzer.sh
for t in tests/e2e/*.sh; do
	run_test "e2e/$(basename "$t" .sh)" bash "$t"
done
# arm64: unit tests under qemu-user, and real Linux guests nested under
# qemu-system-aarch64 (each says SKIP where its tools are missing).
if [ "${LKVM_NO_ARM64:-0}" != 1 ]; then
	run_test "arm64/unit" bash tests/arm64/unit.sh
	run_test "arm64/nested" bash tests/arm64/nested.sh
fi

echo "total: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
