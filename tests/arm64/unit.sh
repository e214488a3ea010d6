#!/usr/bin/env bash
# The portable unit tests, built for arm64 and run under
# qemu-aarch64-static (binfmt_misc is not mounted here, so the emulator
# is called by name; qemu-user has no io_uring, so the device tests cover
# the write() and sync-engine paths here).  The list is every
# tests/unit/*.c but the x86-only ones below.  Ends with the summed
# "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/../.."
X86_ONLY="boot_x86 mptable acpi"
for t in aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu qemu-aarch64-static:qemu-user-static; do
	if ! command -v ${t%%:*} > /dev/null; then
		echo "SKIP (missing tool): ${t%%:*}; apt-get install -y ${t##*:}"
		echo "0 passed, 0 failed, 1 skipped"
		exit 0
	fi
done
TESTS=
for src in tests/unit/*.c; do
	t=$(basename "$src" .c)
	case " $X86_ONLY " in *" $t "*) continue ;; esac
	TESTS="$TESTS $t"
done
make -s -j"$(nproc)" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- STATIC=1 \
	$(for t in $TESTS; do echo build/arm64/tests/$t; done) > /dev/null ||
	{ echo "arm64 unit tests do not build"; echo "0 passed, 1 failed"; exit 1; }
P=0
F=0
S=0
for t in $TESTS; do
	out=$(LKVM_QEMU_USER=1 timeout 600 qemu-aarch64-static build/arm64/tests/$t 2>&1)
	line=$(tail -1 <<< "$out")
	echo "arm64 unit/$t: $line"
	grep -E '^FAIL' <<< "$out" | head -10
	case "$line" in
	*" passed, "*" failed"*) ;;
	*) line="0 passed, 1 failed" ;;
	esac
	P=$((P + ${line%% passed*}))
	f=${line#*, }
	F=$((F + ${f%% failed*}))
	case "$line" in
	*" skipped") s=${line##*failed, }; S=$((S + ${s%% skipped})) ;;
	esac
done
echo "$P passed, $F failed, $S skipped"
[ "$F" -eq 0 ]
