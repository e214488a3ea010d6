#!/usr/bin/env bash
# Bad command lines: one clear line on stderr, exit status 2, no crash.
. "$(dirname "$0")/common.bash"

usage_error() {
	local name=$1 want=$2
	shift 2
	lkvm_run "$@"
	local lines
	lines=$(printf '%s' "$ERR" | grep -c '')
	check "$name: status 2" [ "$STATUS" -eq 2 ]
	check "$name: one line on stderr" [ "$lines" -eq 1 ]
	check "$name: says '$want'" has "$ERR" "$want"
}

head -c 700000 /dev/urandom > "$TMP/junk"
printf '\x1f\x8b\x08\x00junk' > "$TMP/gz"
: > "$TMP/empty"

usage_error "no command" "no command given"
usage_error "unknown command" "unknown command" frobnicate
usage_error "unknown option" "unknown option --bogus" run -k $GUESTS/hello.bin --bogus
usage_error "missing value" "needs an argument" run -k $GUESTS/hello.bin -m
usage_error "bad size" "bad memory size" run -k $GUESTS/hello.bin -m 12Q
usage_error "zero CPUs" "0 CPUs requested; x86_64 supports 1 to 254" run -k $GUESTS/hello.bin -c 0
usage_error "too many CPUs" "9999 CPUs requested; x86_64 supports 1 to 254" run -k $GUESTS/hello.bin -c 9999
usage_error "255 CPUs" "255 CPUs requested; x86_64 supports 1 to 254" run -k $GUESTS/hello.bin -c 255
usage_error "not a CPU count" "bad CPU count" run -k $GUESTS/hello.bin -c two
usage_error "a directory as a disk" "not a regular file or block device" run -k $GUESTS/hello.bin -d /tmp
usage_error "a missing disk" "No such file" run -k $GUESTS/hello.bin -d /nonexistent.img
usage_error "a bad disk option" "disk" run -k $GUESTS/hello.bin -d "$TMP/empty,cache=sometimes"
usage_error "a bad network mode" "mode=bogus" run -k $GUESTS/hello.bin -n mode=bogus
usage_error "a bad balloon option" "balloon: bad option" run -k $GUESTS/hello.bin --balloon=bogus=on
usage_error "--dump-dtb on x86" "arm64 only" run -k $GUESTS/hello.bin --dump-dtb "$TMP/x.dtb"
usage_error "--irqchip on x86" "arm64 only" run -k $GUESTS/hello.bin --irqchip gicv3
usage_error "bad exit code offset" "bad exit code offset" run -k $GUESTS/hello.bin --exit-code-offset 300
usage_error "more memory than the host" "more than the host" run -k $GUESTS/hello.bin -m 64T
usage_error "missing kernel" "cannot read kernel" run -k /nonexistent/bzImage
usage_error "missing initrd" "cannot read initrd" run -k $GUESTS/hello.bin -i /nonexistent
LKVM_BOOT_DIR=/nonexistent usage_error "no kernel" "no kernel given" run -m 64
usage_error "bad timeout" "bad timeout" run -k $GUESTS/hello.bin --timeout -1
usage_error "bad log path" "cannot open log" run -k $GUESTS/hello.bin --log /nonexistent/dir/log
if can_kvm; then
	usage_error "-p with a flat binary" "takes no kernel command line" run -k $GUESTS/hello.bin -p "console=ttyS0"
	usage_error "unknown kernel format" "not a bzImage" run -k "$TMP/junk"
	usage_error "gzip kernel" "gzip" run -k "$TMP/gz"
	usage_error "empty kernel" "empty" run -k "$TMP/empty"
	usage_error "directory as kernel" "kernel" run -k /tmp
else
	skip_env "kernel format and -p checks: /dev/kvm is not usable here (they come after KVM set-up)"
fi

lkvm_run version
check "version exits 0" [ "$STATUS" -eq 0 ]
check "version prints it" has "$OUT" "lkvm 0."
lkvm_run help
check "help exits 0" [ "$STATUS" -eq 0 ]
check "help lists run" has "$OUT" "run"
lkvm_run run --help
check "run --help exits 0" [ "$STATUS" -eq 0 ]
check "run --help documents exit statuses" has "$OUT" "124 timeout"

finish
