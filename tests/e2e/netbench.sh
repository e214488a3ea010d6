#!/usr/bin/env bash
# The network benchmark's program, run briefly for correctness only (no
# timing is asserted): netbench --check sends 1000 distinct frames each
# way between its simulated driver and a real tap through the device
# code, compared byte for byte; then a short run of every mode must move
# frames without errors.  netbench makes its own network namespace, so
# this needs root.
. "$(dirname "$0")/common.bash"

if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/net/tun ]; then
	skip_env "needs root and /dev/net/tun (netbench makes a network namespace and taps)"
	finish
	exit 0
fi
BENCH=${B:-build/x86_64}/bench/netbench
OUT=$($BENCH --check 2>&1)
echo "$OUT" | grep -E "^(PASS|FAIL)"
check "netbench --check: $(tail -1 <<< "$OUT")" grep -q "^4 passed, 0 failed" <<< "$OUT"
for dir in tx rx; do
	for mode in "--size 1500 --pairs 1" "--size 64 --pairs 2"; do
		for who in "" --baseline; do
			OUT=$($BENCH --dir $dir $mode $who --seconds 0.2 2>&1)
			check "netbench $dir $mode $who: no errors" grep -q '"errors": 0' <<< "$OUT"
			check "... and frames moved ($(sed -n 's/.*"frames": \([0-9]*\).*/\1/p' <<< "$OUT"))" \
				grep -q '"frames": [1-9]' <<< "$OUT"
		done
	done
done
finish
