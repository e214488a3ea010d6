#!/usr/bin/env bash
# Runs every test program and sums their closing "N passed, N failed[,
# N skipped]" lines.  A program that crashes or exits non-zero without
# reporting a failure counts as one failure.  The last line is the grand
# total, skips included.
#
# Skips: "SKIP: why" is a machine that cannot do it (no /dev/kvm, not
# root); "SKIP (missing tool): ..." is a package tests/deps.sh should
# have installed.  Under CI=true the latter fails the run: CI installs
# everything, so such a skip means a test silently stopped running.
set -u
B=${B:-build/x86_64}
cd "$(dirname "$0")/.."
total_pass=0
total_fail=0
total_skip=0
unexpected=0
SKIPS=$(mktemp)
trap 'rm -f "$SKIPS"' EXIT

[ "${LKVM_NO_DEPS:-0}" = 1 ] || bash tests/deps.sh

run_test() {
	local name=$1 out rc line p f s t0=$SECONDS
	shift
	out=$("$@" 2>&1)
	rc=$?
	name="$name (${TOOK:-$((SECONDS - t0))} s)"
	line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
	printf '%s\n' "$out" | grep -E '^SKIP' | sed "s|^|$name: |" >> "$SKIPS"
	if [ -z "$line" ]; then
		p=0
		f=1
		s=0
		printf '%s\n' "$out" | tail -n 30
		echo "$name: no result line (exit status $rc)"
	else
		p=${line%% passed*}
		f=${line#*, }
		f=${f%% failed*}
		s=0
		case "$line" in
		*" skipped"*) s=${line##*failed, }; s=${s%% skipped*} ;;
		esac
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
			f=1
			echo "$name: exit status $rc despite no reported failure"
		fi
		if [ "$f" -ne 0 ]; then
			printf '%s\n' "$out" | grep -E 'FAIL|ERROR|error|runtime error' | head -n 40
			# What the program said last (a nested run's hang
			# report and console tail): CI keeps nothing else.
			echo "--- $name: the last lines it printed"
			printf '%s\n' "$out" | tail -n 40
		fi
		echo "$name: $line"
	fi
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	total_skip=$((total_skip + s))
}

# The arm64 nested guests (qemu-system-aarch64 keeps about one CPU busy,
# for about five minutes) run beside the host tests, which mostly use
# one CPU; the x86 nested run comes after both, alone, because TCG's
# nested SVM has frozen whole under load here.
ARM=0
if [ "${LKVM_NO_ARM64:-0}" != 1 ]; then
	ARM=1
	ARM_OUT=$(mktemp)
	ARM_RC=$(mktemp)
	trap 'rm -f "$SKIPS" "$ARM_OUT" "$ARM_RC"' EXIT
	# Its static lkvm is built first: tests/arm64/unit.sh builds into
	# the same directory later, and two makes must not meet there.
	command -v aarch64-linux-gnu-gcc > /dev/null &&
		make -s ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- STATIC=1 lkvm \
			> /dev/null 2>&1
	( t0=$SECONDS; bash tests/arm64/nested.sh > "$ARM_OUT" 2>&1
	  echo "$? $((SECONDS - t0))" > "$ARM_RC" ) &
	ARM_PID=$!
fi

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
# lkvm built with ASan and UBSan, through the scripts that drive it.
for t in usage status guests lock; do
	[ -x "$B/lkvm-san" ] &&
		run_test "e2e-asan/$t" env LKVM="$B/lkvm-san" bash tests/e2e/$t.sh
done
# arm64: unit tests under qemu-user, and real Linux guests nested under
# qemu-system-aarch64.
if [ $ARM = 1 ]; then
	run_test "arm64/unit" bash tests/arm64/unit.sh
	wait $ARM_PID
	read -r arm_rc arm_took < "$ARM_RC"
	TOOK=$arm_took run_test "arm64/nested" \
		sh -c 'cat "$1"; exit $2' _ "$ARM_OUT" "${arm_rc:-1}"
fi
# x86: the test guests, the control plane and a real Linux on real x86
# KVM, nested under qemu-system-x86_64 (TCG with SVM).
run_test "x86/nested" bash tests/x86/nested.sh

if [ -s "$SKIPS" ]; then
	echo "skipped:"
	sed 's/^/  /' "$SKIPS"
fi
if [ "${CI:-}" = true ] && grep -q 'SKIP (missing tool)' "$SKIPS"; then
	unexpected=$(grep -c 'SKIP (missing tool)' "$SKIPS")
	echo "CI: $unexpected skip(s) for a missing tool: failing the run"
	total_fail=$((total_fail + unexpected))
fi
echo "total: $total_pass passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" -eq 0 ]
