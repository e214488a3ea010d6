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
usage_error "zero CPUs" "bad CPU count" run -k $GUESTS/hello.bin -c 0
usage_error "missing kernel" "cannot read kernel" run -k /nonexistent/bzImage
usage_error "missing initrd" "cannot read initrd" run -k $GUESTS/hello.bin -i /nonexistent
usage_error "no kernel" "no kernel given" run -m 64
usage_error "bad timeout" "bad timeout" run -k $GUESTS/hello.bin --timeout -1
usage_error "bad log path" "cannot open log" run -k $GUESTS/hello.bin --log /nonexistent/dir/log
if [ -c /dev/kvm ]; then
	usage_error "too many CPUs" "CPUs requested" run -k $GUESTS/hello.bin -c 1000
	usage_error "more memory than the host" "more than the host" run -k $GUESTS/hello.bin -m 64T
	usage_error "unknown kernel format" "not a bzImage" run -k "$TMP/junk"
	usage_error "gzip kernel" "gzip" run -k "$TMP/gz"
	usage_error "empty kernel" "empty" run -k "$TMP/empty"
	usage_error "directory as kernel" "kernel" run -k /tmp
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
