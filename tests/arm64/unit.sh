#!/usr/bin/env bash
# The portable unit tests, built for arm64 and run under
# qemu-aarch64-static (binfmt_misc is not mounted here, so the emulator
# is called by name; qemu-user has no io_uring, so the network device
# test covers its write() path here).  Skips when the cross compiler or qemu-user is
# missing.  Ends with the summed "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
for t in aarch64-linux-gnu-gcc qemu-aarch64-static; do
	if ! command -v $t > /dev/null; then
		echo "SKIP: $t not installed (.ci/run installs it)"
		echo "0 passed, 0 failed"
		exit 0
	fi
done
TESTS="util memory bus pci virtqueue blk_req net fdt arm64_image"
make -s -j"$(nproc)" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- STATIC=1 \
	$(for t in $TESTS; do echo build/arm64/tests/$t; done) > /dev/null ||
	{ echo "arm64 unit tests do not build"; echo "0 passed, 1 failed"; exit 1; }
P=0
F=0
for t in $TESTS; do
	line=$(qemu-aarch64-static build/arm64/tests/$t 2>&1 | tail -1)
	echo "arm64 unit/$t: $line"
	case "$line" in
	*" passed, "*" failed") ;;
	*) line="0 passed, 1 failed" ;;
	esac
	P=$((P + ${line%% passed*}))
	f=${line#*, }
	F=$((F + ${f%% failed*}))
done
echo "$P passed, $F failed"
[ "$F" -eq 0 ]
