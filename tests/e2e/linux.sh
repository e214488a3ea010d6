#!/usr/bin/env bash
# Smoke test with Debian's x86_64 kernel (package linux-image-amd64).
#
# This machine's KVM emulates kernel-mode guest code instruction by
# instruction, so a stock kernel cannot boot far (README, "Measured here").
# What is checked:
#  1. the bzImage through the 64-bit boot protocol: its decompressor runs
#     and prints the early message our command line asked for (nokaslr);
#  2. the same kernel as a PVH ELF (vmlinux, decompressed from the
#     bzImage payload on the host): it prints its "Linux version" banner,
#     the e820 map lkvm passed, and parses lkvm's ACPI tables.
# LKVM_SLOW_TESTS=1 also waits for the bzImage's own banner, which takes
# many minutes here (its xz decompressor runs emulated).
. "$(dirname "$0")/common.bash"
need_kvm

CACHE=${LKVM_CACHE:-tests/.cache}
mkdir -p "$CACHE"

fetch_kernel() {
	local pkg
	ls "$CACHE"/boot/vmlinuz-* > /dev/null 2>&1 && return 0
	if ! ls "$CACHE"/linux-image-*.deb > /dev/null 2>&1; then
		command -v apt-get > /dev/null || return 1
		pkg=$(apt-cache depends linux-image-amd64 2> /dev/null |
		      awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
		[ -n "$pkg" ] || return 1
		(cd "$CACHE" && apt-get download -q "$pkg" > /dev/null 2>&1) || return 1
	fi
	dpkg-deb --fsys-tarfile "$CACHE"/linux-image-*.deb |
		tar -x -C "$CACHE" --wildcards './boot/vmlinuz-*' || return 1
}

if ! fetch_kernel; then
	skip_env "Debian's kernel is not available (needs apt-get download linux-image-amd64)"
	finish
	exit
fi
BZ=$(ls "$CACHE"/boot/vmlinuz-* | head -n 1)
echo "kernel: $BZ"

# boot_until LOG PATTERN SECONDS ARGS...: runs lkvm until the console log
# shows every line of PATTERN (a file of fixed strings) or time runs out.
boot_until() {
	local log=$1 patterns=$2 secs=$3 pid i
	shift 3
	"$LKVM" run "$@" --timeout "$secs" > "$log" 2>&1 < /dev/null &
	pid=$!
	for ((i = 0; i < secs * 4; i++)); do
		if ! kill -0 $pid 2> /dev/null; then
			break
		fi
		if [ "$(grep -cFf "$patterns" "$log")" -ge "$(grep -c '' "$patterns")" ]; then
			break
		fi
		sleep 0.25
	done
	kill -TERM $pid 2> /dev/null
	wait $pid
}

CMD="earlyprintk=serial,ttyS0,115200 console=ttyS0 nokaslr"

printf 'KASLR disabled\n' > "$TMP/p1"
boot_until "$TMP/bz.log" "$TMP/p1" 20 -k "$BZ" -m 256 -p "$CMD"
check "bzImage decompressor runs and reads our command line" grep -q "KASLR disabled: 'nokaslr' on cmdline" "$TMP/bz.log"

# The PVH ELF inside the bzImage: the payload is xz (or gzip/zstd) data.
extract_vmlinux() {
	local off len setup
	setup=$(od -An -tu1 -j $((0x1f1)) -N1 "$BZ" | tr -d ' ')
	[ "$setup" -eq 0 ] && setup=4
	off=$(od -An -tu4 -j $((0x248)) -N4 "$BZ" | tr -d ' ')
	len=$(od -An -tu4 -j $((0x24c)) -N4 "$BZ" | tr -d ' ')
	tail -c +$(((setup + 1) * 512 + off + 1)) "$BZ" | head -c "$len" > "$TMP/payload"
	case "$(od -An -tx1 -N2 "$TMP/payload" | tr -d ' ')" in
	fd37) xz -dc --single-stream "$TMP/payload" ;;
	1f8b) gzip -dc "$TMP/payload" 2> /dev/null ;;
	28b5) zstd -dc "$TMP/payload" 2> /dev/null ;;
	*) return 1 ;;
	esac > "$TMP/vmlinux"
	[ -s "$TMP/vmlinux" ]
}

if extract_vmlinux; then
	cat > "$TMP/p2" <<'PAT'
Linux version
BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable
BIOS-e820: [mem 0x000000000009fc00-0x00000000000fffff] reserved
BIOS-e820: [mem 0x0000000000100000-0x0000000007ffffff] usable
ACPI: RSDP 0x00000000000E0000
ACPI: XSDT 0x
ACPI: FACP 0x
ACPI: DSDT 0x
ACPI: APIC 0x
PAT
	t0=$(date +%s)
	boot_until "$TMP/pvh.log" "$TMP/p2" 90 -k "$TMP/vmlinux" -m 128 -c 2 -p "$CMD"
	echo "PVH boot reached the ACPI tables after $(($(date +%s) - t0)) s"
	check "PVH vmlinux prints the Linux banner" grep -q "Linux version" "$TMP/pvh.log"
	while read -r line; do
		check "PVH vmlinux shows: $line" grep -qF "$line" "$TMP/pvh.log"
	done < <(tail -n +2 "$TMP/p2")
	check "the kernel saw our command line" grep -qF "Command line: $CMD" "$TMP/pvh.log"
	grep -E "Linux version|BIOS-e820|ACPI: [A-Z]{4} " "$TMP/pvh.log" | head -n 12
else
	skip_tool xz xz-utils
fi

if [ "${LKVM_SLOW_TESTS:-0}" = 1 ]; then
	printf 'Linux version\nBIOS-e820\n' > "$TMP/p3"
	boot_until "$TMP/bzfull.log" "$TMP/p3" 3000 -k "$BZ" -m 256 -p "$CMD"
	check "bzImage prints the Linux banner" grep -q "Linux version" "$TMP/bzfull.log"
	check "bzImage shows our e820 map" grep -qF "BIOS-e820: [mem 0x000000000009fc00-0x00000000000fffff] reserved" "$TMP/bzfull.log"
fi

finish
