#!/usr/bin/env bash
# Short libFuzzer runs of every fuzz target (make fuzz runs them longer).
# Needs clang with libFuzzer (make check installs it): without clang the
# whole script is one skip; a target that does not build is a failure.
set -u
cd "$(dirname "$0")/../.."
B=${B:-build/x86_64}
SECS=${FUZZ_SECS:-3}
pass=0
fail=0
if ! command -v clang > /dev/null; then
	echo "SKIP (missing tool): clang; apt-get install -y clang libclang-rt-14-dev"
	echo "0 passed, 0 failed, 1 skipped"
	exit 0
fi
# Every target at once, in parallel: they share one build of the library.
make -s -k -j"$(nproc)" $(for src in tests/fuzz/*.c; do
	echo "$B/fuzz/$(basename "$src" .c)"; done) > /dev/null 2>&1
for src in tests/fuzz/*.c; do
	name=$(basename "$src" .c)
	if ! make -s "$B/fuzz/$name" > "/tmp/lkvm-fuzz-build.$$" 2>&1; then
		tail -n 5 "/tmp/lkvm-fuzz-build.$$"
		echo "FAIL $name: the libFuzzer build failed"
		fail=$((fail + 1))
		continue
	fi
	mkdir -p "$B/corpus/$name"
	if "$B/fuzz/$name" -max_total_time="$SECS" "$B/corpus/$name" > "/tmp/lkvm-fuzz.$$" 2>&1; then
		echo "PASS $name: $(grep -E '^Done' "/tmp/lkvm-fuzz.$$")"
		pass=$((pass + 1))
	else
		tail -n 30 "/tmp/lkvm-fuzz.$$"
		echo "FAIL $name"
		fail=$((fail + 1))
	fi
done
rm -f "/tmp/lkvm-fuzz-build.$$" "/tmp/lkvm-fuzz.$$"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
