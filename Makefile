# lkvm - build, test, install.  See README.md.
#   make            ./lkvm and liblkvm.a (and the x86 test guests)
#   make check      every test; last line "total: N passed, N failed"
#   make run        boot the demo guest
#   make install PREFIX=/usr/local
#   make ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-

HOST_ARCH := $(shell uname -m)
ARCH ?= $(if $(filter aarch64 arm64,$(HOST_ARCH)),arm64,x86_64)
CROSS_COMPILE ?=
CC := $(CROSS_COMPILE)gcc
AR := $(CROSS_COMPILE)ar
LD := $(CROSS_COMPILE)ld
OBJCOPY := $(CROSS_COMPILE)objcopy
PREFIX ?= /usr/local

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 $(WARN) -D_GNU_SOURCE -Iinclude -pthread -MMD -MP
LDFLAGS += -pthread
LDLIBS += -lz
# STATIC=1 links lkvm statically (for the arm64 nested tests' initramfs).
ifeq ($(STATIC),1)
LDFLAGS += -static
endif
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=all

ifeq ($(ARCH),x86_64)
ARCH_DIR := x86
else ifeq ($(ARCH),arm64)
ARCH_DIR := arm64
else
$(error unsupported ARCH=$(ARCH))
endif

B := build/$(ARCH)
# Layers, bottom up: lib/ (knows no VM), disk/ net/ (backends), vmm/ (the
# core), virtio/ platform/ (devices), machine/ (assembly), the arch; the
# command line (cli/) is built on the library alone.
LIB_SRCS := $(wildcard lib/*.c) $(wildcard disk/*.c) $(wildcard net/*.c) \
	$(wildcard fs/*.c) \
	$(wildcard vmm/*.c) $(wildcard virtio/*.c) $(wildcard platform/*.c) \
	$(wildcard machine/*.c) $(wildcard $(ARCH_DIR)/*.c)
CLI_SRCS := cli/cli.c cli/ctl.c cli/term.c cli/export.c
LIB_OBJS := $(LIB_SRCS:%.c=$(B)/obj/%.o)
CLI_OBJS := $(CLI_SRCS:%.c=$(B)/obj/%.o)
SAN_OBJS := $(LIB_SRCS:%.c=$(B)/san/%.o) $(CLI_SRCS:%.c=$(B)/san/%.o)

UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_COMMON := tests/unit/test.h
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/%)
UNIT_SAN_BINS := $(UNIT_SRCS:tests/unit/%.c=$(B)/tests-san/%)

# The host's own build lands at the top (./lkvm); a cross build, and a
# static one, under build/ARCH[-static]/.
ifeq ($(ARCH)$(STATIC),$(if $(filter aarch64 arm64,$(HOST_ARCH)),arm64,x86_64))
OUT := .
else
OUT := build/$(ARCH)$(if $(filter 1,$(STATIC)),-static)
endif
LKVM := $(OUT)/lkvm
LIBLKVM := $(OUT)/liblkvm.a

all: $(LKVM) $(LIBLKVM) guests

ifneq ($(OUT),.)
lkvm: $(LKVM)
liblkvm.a: $(LIBLKVM)
.PHONY: lkvm liblkvm.a
endif

# The lkvm program, tests and benchmarks use internals: they link every
# object (liblkvm-all.a).  liblkvm.a for embedders is one object in which
# only the lkvm_* API stays global, so nothing else in it can collide
# with an embedder's own symbols.
LIBALL := $(B)/liblkvm-all.a

$(LKVM): $(B)/obj/cli/main.o $(CLI_OBJS) $(LIBALL)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(LIBALL): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	@rm -f $@
	$(AR) rcs $@ $^

$(LIBLKVM): $(LIB_OBJS)
	@mkdir -p $(dir $@) $(B)/pub
	@rm -f $@
	$(LD) -r -o $(B)/pub/lkvm-all.o $^
	$(OBJCOPY) --wildcard --keep-global-symbol='lkvm_*' \
		$(B)/pub/lkvm-all.o $(B)/pub/lkvm.o
	$(AR) rcs $@ $(B)/pub/lkvm.o

# pkg-config: cc prog.c $(pkg-config --cflags --libs lkvm).  Written at
# install time: it names the PREFIX installed to.
LKVM_PC = printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' \
		'includedir=$${prefix}/include' '' 'Name: lkvm' \
		'Description: a lightweight KVM virtual machine monitor, as a library' \
		'Version: $(shell sed -n "s/#define LKVM_VERSION \"\(.*\)\"/\1/p" include/lkvm.h)' \
		'Cflags: -I$${includedir}' 'Libs: -L$${libdir} -llkvm -lz -pthread'

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(B)/san/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -c -o $@ $<

# Pure arm64 code is unit-tested on any host: added where not in the lib.
UNIT_EXTRA := $(if $(filter arm64,$(ARCH)),,arm64/image.c)

$(B)/tests/%: tests/unit/%.c $(LIB_OBJS) $(CLI_OBJS) $(UNIT_COMMON)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(UNIT_EXTRA) $(LIB_OBJS) $(CLI_OBJS) $(LDFLAGS) $(LDLIBS)

$(B)/tests-san/%: tests/unit/%.c $(SAN_OBJS) $(UNIT_COMMON)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -Itests/unit -o $@ $< $(UNIT_EXTRA) $(SAN_OBJS) $(LDFLAGS) $(LDLIBS)

# Fuzz targets: a replay build (gcc, random inputs) runs in make check;
# make fuzz builds them with clang's libFuzzer and runs each for
# FUZZ_SECONDS (60), or FUZZ_RUNS executions if set, printing the
# executions each made.
FUZZ_SRCS := $(wildcard tests/fuzz/*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(B)/fuzz-replay/%)
FUZZ_SECONDS ?= 60
CLANG ?= clang

$(B)/fuzz-replay/%: tests/fuzz/%.c tests/fuzz/replay.h $(SAN_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $< $(SAN_OBJS) $(LDFLAGS) $(LDLIBS)

# The library is compiled once for every libFuzzer target.
FUZZ_CFLAGS := -O1 -g -std=gnu11 -D_GNU_SOURCE -DLKVM_LIBFUZZER -Iinclude
FUZZ_OBJS := $(LIB_SRCS:%.c=$(B)/fuzzobj/%.o) $(CLI_SRCS:%.c=$(B)/fuzzobj/%.o)

# -MMD: a changed header rebuilds these too (stale layouts gave false crashes).
$(B)/fuzzobj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -MMD -MP -fsanitize=fuzzer-no-link,address,undefined \
		-c -o $@ $<

# A static pattern rule: its objects are then made like explicit ones (a
# plain pattern rule was skipped once they were missing, keeping a
# binary linked against objects of older headers).
$(FUZZ_SRCS:tests/fuzz/%.c=$(B)/fuzz/%): $(B)/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJS)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< \
		$(FUZZ_OBJS) -pthread -lz

fuzz: $(FUZZ_SRCS:tests/fuzz/%.c=$(B)/fuzz/%)
	@for f in $^; do n=$$(basename $$f); mkdir -p $(B)/corpus/$$n; \
		$$f $(if $(FUZZ_RUNS),-runs=$(FUZZ_RUNS),-max_total_time=$(FUZZ_SECONDS)) \
			-print_final_stats=1 \
			$(B)/corpus/$$n > $(B)/fuzz-$$n.log 2>&1 || \
			{ tail -40 $(B)/fuzz-$$n.log; exit 1; }; \
		echo "$$n: $$(sed -n 's/^stat::number_of_executed_units: *//p' \
			$(B)/fuzz-$$n.log) executions in $$(sed -n \
			's/^stat::.*time.*: *//p;s/^Done [0-9]* runs in \([0-9]*\) .*/\1/p' \
			$(B)/fuzz-$$n.log | tail -1) s, no crash"; \
	done

# End-to-end programs that embed the library.
$(B)/e2e/%: tests/e2e/%.c $(LIBALL) include/lkvm.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(LIBALL) $(LDFLAGS) $(LDLIBS)

# The embedding test links what an embedder gets: liblkvm.a and lkvm.h.
$(B)/e2e/embed: tests/e2e/embed.c $(LIBLKVM) include/lkvm.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(LIBLKVM) $(LDFLAGS) $(LDLIBS)

# Test guests: freestanding x86 kernels (guest/Makefile.inc).
ifeq ($(ARCH),x86_64)
include guest/guest.mk
else
guests:
endif

E2E_BINS := $(patsubst tests/e2e/%.c,$(B)/e2e/%,$(wildcard tests/e2e/*.c))

# Static test tools that run beside lkvm or inside a nested guest
# (tests/tools: vsockpeer, both ends of the vsock tests).
TOOL_BINS := $(patsubst tests/tools/%.c,$(B)/tools/%,$(wildcard tests/tools/*.c))
$(B)/tools/%: tests/tools/%.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -Wextra -Werror -static -o $@ $<

# Benchmarks driving the device code directly (no KVM).
$(B)/bench/%: tests/bench/%.c $(LIBALL)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(LIBALL) $(LDFLAGS) $(LDLIBS)

BENCH_BINS := $(patsubst tests/bench/%.c,$(B)/bench/%,$(wildcard tests/bench/*.c))

# lkvm itself under AddressSanitizer and UBSan: make check runs the
# end-to-end scripts that drive lkvm with it too.
LKVM_SAN := $(B)/lkvm-san
$(LKVM_SAN): $(B)/san/cli/main.o $(SAN_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

unit-tests: $(UNIT_BINS) $(UNIT_SAN_BINS) $(E2E_BINS) $(FUZZ_BINS) $(BENCH_BINS) \
	$(TOOL_BINS) $(LKVM_SAN)

check: all unit-tests
	@B=$(B) tests/run.sh

bench: lkvm guests $(BENCH_BINS)
	tests/bench/startup.sh
	tests/bench/blk.py $(if $(BENCH_JSON),--json $(BENCH_JSON))
	tests/bench/net.py $(if $(BENCH_JSON),--json $(BENCH_JSON:.json=-net.json))
	tests/bench/vsock.py $(if $(BENCH_JSON),--json $(BENCH_JSON:.json=-vsock.json))
	tests/bench/usernet.py $(if $(BENCH_JSON),--json $(BENCH_JSON:.json=-usernet.json))
	tests/bench/export.py $(if $(BENCH_JSON),--json $(BENCH_JSON:.json=-export.json))
	tests/bench/fs.py $(if $(BENCH_JSON),--json $(BENCH_JSON:.json=-fs.json))

# A real Linux guest's I/O speed, nested under qemu-system-aarch64
# (tests/arm64/bench.sh; its settings are environment variables there).
bench-arm64:
	@bash tests/arm64/bench.sh

# The demo: the blk test guest on a fresh 1 MiB demo disk, 2 vCPUs.
# The arm64 set alone: unit tests under qemu-user, nested Linux guests.
check-arm64:
	@bash tests/arm64/unit.sh && bash tests/arm64/nested.sh

run: lkvm guests
	@mkdir -p build && rm -f build/demo.img && truncate -s 1M build/demo.img
	./lkvm run -k guest/build/blk.bin -m 64 -c 2 -d build/demo.img,serial=lkvm-demo --rng

install: $(LKVM) $(LIBLKVM)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib \
		$(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/lib/pkgconfig
	$(LKVM_PC) > $(DESTDIR)$(PREFIX)/lib/pkgconfig/lkvm.pc
	install -m 755 $(LKVM) $(DESTDIR)$(PREFIX)/bin/lkvm
	install -m 644 $(LIBLKVM) $(DESTDIR)$(PREFIX)/lib/liblkvm.a
	install -m 644 include/lkvm.h $(DESTDIR)$(PREFIX)/include/lkvm.h
	install -m 644 doc/lkvm.1 $(DESTDIR)$(PREFIX)/share/man/man1/lkvm.1

clean:
	rm -rf build lkvm liblkvm.a guest/build

.PHONY: all check check-arm64 run bench bench-arm64 fuzz install clean guests unit-tests
# Keep every intermediate object (sanitizer builds are only prerequisites).
.SECONDARY:

-include $(shell find build -path build/arm64-nested -prune -o -type f -name '*.d' -print 2>/dev/null)
