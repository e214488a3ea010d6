#!/usr/bin/env bash
# Embedding: liblkvm.a exports only the lkvm_* API (nm), and the program
# in tests/e2e/embed.c, linked against it alone, runs (see there).
. "$(dirname "$0")/common.bash"
LIB=${LIBLKVM:-liblkvm.a}
OTHER=$(nm -g --defined-only "$LIB" | awk 'NF == 3 && $3 !~ /^lkvm_/ { print $3 }')
check "liblkvm.a defines only lkvm_* globals ($(nm -g --defined-only "$LIB" | awk 'NF == 3' | wc -l) of them)" [ -z "$OTHER" ]
[ -n "$OTHER" ] && echo "  also: $(echo $OTHER | head -c 300)"
# Installed, found by pkg-config, and linked as the README shows.
if command -v pkg-config > /dev/null; then
	make -s install PREFIX="$TMP/usr" > "$TMP/install.log" 2>&1
	check "make install PREFIX=... installs lkvm.pc" [ -f "$TMP/usr/lib/pkgconfig/lkvm.pc" ]
	FLAGS=$(PKG_CONFIG_PATH="$TMP/usr/lib/pkgconfig" pkg-config --cflags --libs lkvm)
	check "pkg-config --cflags --libs lkvm: $FLAGS" has "$FLAGS" "-llkvm -lz"
	cc -Itests/unit tests/e2e/embed.c $FLAGS -o "$TMP/embed-pc" 2> "$TMP/cc.log"
	check "cc prog.c \$(pkg-config --cflags --libs lkvm) links" [ -x "$TMP/embed-pc" ]
else
	skip_tool pkg-config pkgconf
fi
out=$("${B:-build/x86_64}/e2e/embed" guest/build 2>&1)
echo "$out" | grep -v "passed, .* failed"
line=$(echo "$out" | grep -E "^[0-9]+ passed, [0-9]+ failed" | tail -1)
p=${line%% passed*}; f=${line#*, }; f=${f%% failed*}
case "$line" in *skipped) s=${line##*failed, }; SKIPPED=$((SKIPPED + ${s%% skipped})) ;; esac
PASSED=$((PASSED + ${p:-0})); FAILED=$((FAILED + ${f:-1}))
finish
