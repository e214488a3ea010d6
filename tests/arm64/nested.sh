#!/usr/bin/env bash
# The arm64 nested end-to-end tests (make check-arm64; make check runs
# them when qemu-system-aarch64 is installed).  Builds a static arm64
# lkvm, fetches Debian's arm64 kernel and busybox (apt-get download,
# cached in tests/.cache/arm64), and boots under qemu-system-aarch64 an
# L1 Linux whose init (tests/arm64/l1-init) runs lkvm on a real L2 Linux
# (tests/arm64/l2-init) several times.  LKVM_RACE_ITERS (default 3000)
# sets the racing guest's iterations per transport and vCPU count.  L1's disks are files here, so the
# host checks what L2 wrote to them after qemu exits.
cd "$(dirname "$0")/../.."
. tests/nested.bash

W=build/arm64-nested
source tests/arm64/common.bash

build_lkvm ||
	{ cat $W/build.log; fail "static arm64 lkvm builds"; echo "$PASSED passed, $FAILED failed"; exit 1; }
pass "static arm64 lkvm builds ($(stat -c %s build/arm64-static/lkvm) bytes)"

rootfs $W/l2 tests/arm64/l2-init virtio_mmio virtio_pci virtio_pci_modern_dev \
	virtio_pci_legacy_dev virtio_blk virtio_console virtio-rng ext4 jbd2 \
	mbcache crc16 crc32c_generic libcrc32c virtio_net net_failover failover \
	virtio_balloon vsock vmw_vsock_virtio_transport_common \
	vmw_vsock_virtio_transport fuse virtiofs
aarch64-linux-gnu-gcc -O2 -Wall -Wextra -static -pthread -o $W/l2/bin/race \
	tests/arm64/race.c > $W/race-build.log 2>&1 ||
	{ cat $W/race-build.log; fail "the racing guest program builds"; }
make -s ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- build/arm64/tools/vsockpeer \
	> $W/peer-build.log 2>&1 || { cat $W/peer-build.log; fail "vsockpeer builds for arm64"; }
cp build/arm64/tools/vsockpeer $W/l2/bin/
(cd $W/l2 && find . | cpio -o -H newc --quiet) > $W/l2.cpio
rootfs $W/l1 tests/arm64/l1-init virtio_mmio virtio_blk tun dummy
# passt for -n mode=user, with the C library it loads, off $PATH (L2
# runs elsewhere keep their no-network default): Debian's arm64 builds.
if ! ls $CACHE/passt_*_arm64.deb > /dev/null 2>&1 ||
   ! ls $CACHE/libc6_*_arm64.deb > /dev/null 2>&1; then
	(cd $CACHE && apt-get download passt:arm64 libc6:arm64) > /dev/null 2>&1
fi
if ls $CACHE/passt_*_arm64.deb > /dev/null 2>&1; then
	dpkg-deb -x $CACHE/passt_*_arm64.deb $W/pa
	dpkg-deb -x $CACHE/libc6_*_arm64.deb $W/pa
	mkdir -p $W/l1/opt/passt $W/l1/lib/aarch64-linux-gnu
	cp $W/pa/usr/bin/passt $W/l1/opt/passt/
	cp -L $W/pa/lib/aarch64-linux-gnu/libc.so.6 $W/l1/lib/aarch64-linux-gnu/
	cp -L $W/pa/lib/ld-linux-aarch64.so.1 $W/l1/lib/ 2> /dev/null ||
		cp -L $W/pa/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1 $W/l1/lib/
fi
mkdir -p $W/l1/l2
cp $IMAGE $W/l1/l2/Image
cp $W/l2.cpio $W/l1/l2/initrd.cpio
cp build/arm64-static/lkvm $W/l1/bin/lkvm
cp build/arm64/tools/vsockpeer $W/l1/bin/
(cd $W/l1 && find . | cpio -o -H newc --quiet) > $W/l1.cpio

# Disks: two 64 MiB images with known content, and an ext4 made here.
for d in a b; do
	head -c 67108864 /dev/urandom > $W/disk-$d.img
done
mkdir -p $W/ext4src && echo "hello from the host" > $W/ext4src/hello.txt
mkfs.ext4 -q -F -d $W/ext4src $W/ext4.img 32M
SUM_A=$(sha256sum < $W/disk-a.img | cut -d' ' -f1)
SUM_B=$(sha256sum < $W/disk-b.img | cut -d' ' -f1)
# What L2 writes: "lkvm-arm64-l2\n" repeated over the first 4 MiB.
expect() {
	{ yes lkvm-arm64-l2 | head -c 4194304; tail -c +4194305 "$1"; } |
		sha256sum | cut -d' ' -f1
}
WANT_A=$(expect $W/disk-a.img)
WANT_B=$(expect $W/disk-b.img)

T0=$(date +%s)
RACE_ITERS=${LKVM_RACE_ITERS:-3000}
timeout $((900 + RACE_ITERS / 25)) qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 \
	-cpu max,pauth-impdef=on -smp 2 -m 2048 -nographic -nic none -no-reboot \
	-kernel $IMAGE -initrd $W/l1.cpio \
	-append "console=ttyAMA0 rdinit=/init panic=-1 quiet racen=$RACE_ITERS${LKVM_NESTED_ONLY:+ lkvmonly=$LKVM_NESTED_ONLY}" \
	-drive file=$W/disk-a.img,if=none,id=da,format=raw -device virtio-blk-device,drive=da,serial=lkvm-a \
	-drive file=$W/disk-b.img,if=none,id=db,format=raw -device virtio-blk-device,drive=db,serial=lkvm-b \
	-drive file=$W/ext4.img,if=none,id=dc,format=raw -device virtio-blk-device,drive=dc,serial=lkvm-ext4 \
	< /dev/null > $W/console.log 2>&1
QS=$?
T1=$(date +%s)
LOG=$(tr -d '\r' < $W/console.log)
echo "qemu ran $((T1 - T0)) s, status $QS; console in $W/console.log"
has() { grep -qF -- "$1" <<< "$LOG"; }
section() { sed -n "/^L1 begin $1\$/,/^L1 end $1 /p" <<< "$LOG"; }

check "L1 boots with /dev/kvm" has "L1 up, kvm yes"
check "no irqfd fallbacks in L1 (irqfds registered after the vGIC exists)" \
	eval '! grep -q "no irqfd" <<< "$LOG"'
check "L1 ran every test" has "L1 all done"

S=$(section basic)
check "basic: L2 reaches init" grep -q "^L2 init uptime" <<< "$S"
check "basic: lkvm exits 0 on L2 poweroff" grep -q "^L1 end basic status 0" <<< "$S"
check "basic: L2 console is ttyS0 (the 8250 in the DT)" grep -q "^L2 console ok on ttyS0" <<< "$S"
check "basic: both CPUs online in L2 (-c 2)" grep -q "^L2 cpus online 0-1" <<< "$S"
check "basic: virtio-rng gives L2 /dev/hwrng" grep -q "^L2 hwrng 64 bytes from virtio_rng" <<< "$S"
echo "  $(grep '^L1 lkvm start to L2 init' <<< "$S"); $(grep 'lkvm: time' <<< "$S")"
check "basic: the time from lkvm start to L2 init is measured" \
	grep -q "^L1 lkvm start to L2 init [0-9.]* s" <<< "$S"

# Guest RAM: 2 MiB aligned in lkvm's address space, backed by huge pages.
RAM=
while read -r _ _ _ lo hi; do
	[ $((0x$hi - 0x$lo)) -eq 268435456 ] && RAM=$lo
done < <(grep "^L1 ram map " <<< "$S")
echo "  guest RAM mapping at 0x$RAM; $(grep 'lkvm: memory' <<< "$S")"
check "basic: the 256 MiB guest RAM mapping starts on a 2 MiB boundary" \
	[ -n "$RAM" ] && [ $((0x${RAM:-1} % 2097152)) -eq 0 ]
check "basic: --stats reports huge pages backing guest RAM" \
	grep -qE "^lkvm: memory: 256 MiB anon, [1-9][0-9]* MiB in huge pages" <<< "$S"

for b in hugetlbfs memfd; do
	S=$(section $b)
	echo "  --$b: $(grep 'lkvm: memory' <<< "$S")"
	check "--$b: L2 boots and lkvm exits 0" grep -q "^L1 end $b status 0" <<< "$S"
done
check "--hugetlbfs: guest RAM is hugetlb pages" \
	grep -qE "^lkvm: memory: 256 MiB hugetlbfs, [1-9][0-9]* MiB in huge pages" <<< "$(section hugetlbfs)"
check "--memfd: a hugetlb memfd where the host has huge pages" \
	grep -qE "^lkvm: memory: 256 MiB memfd-hugetlb, [1-9][0-9]* MiB in huge pages" <<< "$(section memfd)"

S=$(section features-on)
echo "  default: $(grep '^L2 features' <<< "$S")"
for f in sve paca pacg pmu pvtime; do
	check "features: L2 has $f by default" grep -q "^L2 features.* $f=1" <<< "$S"
done
S=$(section features-off)
echo "  switched off: $(grep '^L2 features' <<< "$S")"
check "features: --disable-sve, --disable-ptrauth, --no-pmu, --no-pvtime take each away" \
	grep -q "^L2 features sve=0 paca=0 pacg=0 pmu=0 pvtime=0" <<< "$S"
check "features: lkvm exits 0 both ways" \
	grep -q "^L1 end features-off status 0" <<< "$S"

# The device tree the basic run used (--dump-dtb), through dtc.
sed -n '/^L1 dtb-begin$/,/^L1 dtb-end$/p' <<< "$LOG" | sed '1d;$d' |
	base64 -d > $W/vm.dtb 2> /dev/null
if command -v dtc > /dev/null; then
	dtc -I dtb -O dts -o $W/vm.dts $W/vm.dtb 2> $W/dtc.log
	check "--dump-dtb: dtc decompiles lkvm's device tree without errors" [ $? -eq 0 -a -s $W/vm.dts ]
	check "--dump-dtb: dtc has no warnings about it" [ ! -s $W/dtc.log ]
	[ -s $W/dtc.log ] && sed 's/^/  dtc: /' $W/dtc.log
	check "device tree: GICv3 with ITS, PSCI, timer, 8250, ECAM host, 2 CPUs" \
		grep -q 'arm,gic-v3-its' $W/vm.dts
else
	echo "SKIP (missing tool): dtc; apt-get install -y device-tree-compiler"
	SKIPPED=1
fi

for tr in mmio:a:vda:$SUM_A:$WANT_A pci:b:vdb:$SUM_B:$WANT_B; do
	IFS=: read -r t d dev sum want <<< "$tr"
	S=$(section blk-$t)
	check "blk-$t: L2 reads the disk and its checksum is the host's" \
		grep -q "^L2 vda sha256 $sum" <<< "$S"
	check "blk-$t: lkvm exits 0" grep -q "^L1 end blk-$t status 0" <<< "$S"
	echo "  $(grep '^L2 dd read' <<< "$S")"
	check "blk-$t: L2 read all 64 MiB with dd" grep -q "^L2 dd read 64 MiB" <<< "$S"
	check "blk-$t: the image file on the host holds L2's pattern" \
		[ "$(sha256sum < $W/disk-$d.img | cut -d' ' -f1)" = "$want" ]
done

S=$(section ext4)
check "ext4: L2 mounts the host-made ext4 and reads it" \
	grep -q "^L2 ext4 mounted, hello from the host" <<< "$S"
check "ext4: L2 unmounts cleanly" grep -q "^L2 ext4 unmounted clean" <<< "$S"
fsck_clean() { e2fsck -fn $W/ext4.img > $W/e2fsck.log 2>&1; }
l2_files() { debugfs -R "cat /dir/note" $W/ext4.img 2> /dev/null | grep -q written-in-l2; }
check "ext4: e2fsck -fn on the host: clean" fsck_clean
check "ext4: L2's files are there (debugfs)" l2_files

S=$(section net)
check "net: L2 has eth0 (virtio-net) with lkvm's MTU" grep -q "^L2 eth0 .* mtu 1500" <<< "$S"
check "net: L2 pings L1 across the tap" \
	grep -q "^L2 ping 3 packets transmitted, 3 packets received" <<< "$S"
SERVED=$(sed -n 's/^L1 net serving sha256 //p' <<< "$LOG")
check "net: 16 MiB from L1 reach L2 intact (sha256)" \
	grep -q "^L2 net got 16777216 bytes sha256 $SERVED" <<< "$S"
SENT=$(sed -n 's/^L2 net sending sha256 //p' <<< "$S")
check "net: 16 MiB from L2 reach L1 intact (sha256)" \
	grep -q "^L1 net received 16777216 bytes sha256 $SENT" <<< "$LOG"
echo "  $(grep '^L2 net receive' <<< "$S"); $(grep '^L2 net send 16' <<< "$S")"
check "net: lkvm exits 0" grep -q "^L1 end net status 0" <<< "$S"
check "net: the tap lkvm created is gone after it exits" \
	grep -q "^L1 net tap after exit: gone" <<< "$LOG"

S=$(section vsock)
if [ -z "${LKVM_NESTED_ONLY:-}" ] || [ "$LKVM_NESTED_ONLY" = vsock ]; then
	check "vsock: L2's vmw_vsock_virtio_transport found the device (CID 3)" \
		grep -q "^L2 vsock cid 3$" <<< "$S"
	VS=$(sed -n 's/^L2 vsock sending sha256 //p' <<< "$S")
	check "vsock: 16 MiB from L2's AF_VSOCK reach PATH_5000 intact (sha256)" \
		eval '[ -n "$VS" ] && grep -q "^L1 vsock received 16777216 bytes sha256 $VS" <<< "$S"'
	check "vsock: L2 opens and closes 200 connections to PATH_6000, each echoed" \
		grep -q "^L2 vsockpeer: churn: 200 of 200" <<< "$S"
	VX=$(sed -n 's/^L1 vsock xfer sent sha256 //p' <<< "$S")
	check "vsock: 16 MiB through CONNECT 1234 to L2 and back intact (sha256)" \
		eval '[ -n "$VX" ] && grep -q "^L1 vsock xfer back sha256 $VX" <<< "$S"'
	grep "^L1 vsock xfer vsockpeer" <<< "$S" | sed 's/^L1 /  /'
	check "vsock: L1 opens and closes 200 connections to L2's port 1234" \
		grep -q "^L1 vsock vsockpeer: churn: 200 of 200" <<< "$S"
	check "vsock: lkvm exits 0, PATH removed" \
		eval 'grep -q "^L1 end vsock status 0" <<< "$S" && grep -q "^L1 vsock path left 0" <<< "$S"'
fi

S=$(section usernet)
if [ -z "${LKVM_NESTED_ONLY:-}" ] || [ "$LKVM_NESTED_ONLY" = usernet ]; then
	check "usernet: L2 gets 10.0.2.15 by DHCP (udhcpc) from passt" \
		grep -q "^L2 usernet lease 10.0.2.15" <<< "$S"
	US=$(sed -n 's/^L1 usernet serving sha256 //p' <<< "$S")
	check "usernet: L2 fetches 1 MiB from L1's loopback (wget via 10.0.2.2), sha256 equal" \
		eval '[ -n "$US" ] && grep -q "^L2 usernet fetched sha256 $US" <<< "$S"'
	check "usernet: hostfwd: L1 sends 1 MiB to its 127.0.0.1:8022, L2's listener on port 22 gets it, sha256 equal" \
		eval '[ -n "$US" ] && grep -q "^L1 usernet hostfwd send status 0" <<< "$S" &&
		      grep -q "^L2 usernet hostfwd got sha256 $US" <<< "$S"'
	check "usernet: lkvm exits 0, no passt left" \
		eval 'grep -q "^L1 end usernet status 0" <<< "$S" && grep -q "^L1 usernet passt left 0" <<< "$S"'
fi

S=$(section balloon)
read -r R0 R1 R2 <<< "$(sed -n 's/^L1 balloon rss KiB: before \([0-9]*\), holding 200 MiB \([0-9]*\), [0-9.]* s after freeing \([0-9]*\)/\1 \2 \3/p' <<< "$S")"
echo "  balloon: lkvm RSS $R0 KiB before, $R1 KiB holding 200 MiB, $R2 KiB $(sed -n 's/.*, \([0-9.]*\) s after freeing.*/\1/p' <<< "$S") s after L2 freed them"
check "balloon: L2's virtio_balloon negotiated free page reporting (bit 5)" \
	grep -qE "^L2 balloon features [01]{5}1" <<< "$S"
check "balloon: L2 allocated 200 MiB" grep -q "^L2 balloon allocated 200 MiB" <<< "$S"
check "balloon: lkvm's RSS grew by 150 MiB or more while L2 held them" \
	[ "$(( ${R1:-0} - ${R0:-0} ))" -ge 153600 ]
check "balloon: free page reporting gave back 100 MiB or more of them" \
	[ -n "$R2" -a "$(( ${R1:-0} - ${R2:-0} ))" -ge 102400 ]
check "balloon: lkvm exits 0" grep -q "^L1 end balloon status 0" <<< "$S"

for tr in mmio pci; do
	for c in 2 4; do
		S=$(section race-$tr-$c)
		echo "  $(grep '^L2 race .* iterations in' <<< "$S")"
		check "race $tr, $c vCPUs: every device works after the race" \
			grep -q "^L2 race $tr $c threads: .* \([0-9]\) of \1 devices work afterwards" <<< "$S"
		check "race $tr, $c vCPUs: lkvm survives and exits 0" \
			grep -q "^L1 end race-$tr-$c status 0" <<< "$S"
	done
done

# lkvm's defaults come before the user's -p (console, root, panic).
# (The tests' own -p has panic=-1, so lkvm adds none.)
check "default command line: the console before -p, no root= without a disk" \
	grep -q "^L2 cmdline console=ttyS0 console=ttyS0 quiet panic=-1 lkvmtest=basic" <<< "$(section basic)"
check "default command line: root=/dev/vda rw with a writable first disk" \
	grep -q "^L2 cmdline console=ttyS0 root=/dev/vda rw console=ttyS0 quiet panic=-1 lkvmtest=ext4" <<< "$(section ext4)"
check "default command line: console=hvc0 with --console virtio, no root= for a read-only disk" \
	grep -q "^L2 cmdline console=hvc0 console=ttyS0 quiet panic=-1 lkvmtest=race" <<< "$(section race-mmio-2)"

# The control plane (lkvm list/stat/pause/resume/debug/stop).
S=$(section control)
ctl() { sed -n "s/^L1 ctl $1: //p" <<< "$S"; }
json_ok() {	# json_ok PYTHON-EXPR: the JSON on stdin parses and EXPR holds for it (j)
	python3 -c "import json, sys; j = json.load(sys.stdin); sys.exit(0 if ($1) else 1)"
}
echo "$(ctl stat | sed 's/^/  stat: /')"
echo "$(ctl watch | sed 's/^/  watch: /')"
check "control: lkvm list shows ci1 and ci2 running" \
	test "$(ctl list | awk '$3 == "running" { print $1 }' | tr '\n' ' ')" = "ci1 ci2 "
check "control: lkvm list --json parses, two VMs with pid, vCPUs, memory, devices" \
	json_ok "len(j) == 2 and all(v['pid'] > 0 and v['cpus'] == 1 and v['mem_mib'] == 192 and 'uart0' in v['devices'] for v in j)" <<< "$(ctl list-json)"
check "control: lkvm stat --name ci1 --json parses, per-queue counters of blk0 (reads, bytes, latency, thread CPU)" \
	json_ok "[(q['queue'], q['thread']) for q in j['queues']] == [(0, 'blk0-q0')] and j['queues'][0]['reads'] > 0 and j['queues'][0]['read_bytes'] > 0 and j['queues'][0]['latency_ns'] > 0 and j['queues'][0]['cpu_ns'] > 0 and j['vm']['exits_mmio'] > 0 and j['vm']['rss_bytes'] > 0" <<< "$(ctl stat-json)"
check "control: lkvm stat --watch shows a per-queue request rate during the reads" \
	awk '$1 == "blk0" && $3 > 0 { found = 1 } END { exit !found }' <<< "$(ctl watch)"
check "control: a paused VM is listed as paused" grep -q "^L1 ctl state while paused: paused" <<< "$S"
check "control: paused, blk0 has nothing in flight (completed and published)" \
	json_ok "j['vm']['state'] == 'paused' and all(q['inflight'] == 0 and q['requests'] == q['completed'] for q in j['queues'])" <<< "$(ctl paused-stat-json)"
read -r C0 C1 C2 <<< "$(sed -n 's/^L1 ctl counter lines: paused \([0-9]*\) then \([0-9]*\), resumed \([0-9]*\)/\1 \2 \3/p' <<< "$S")"
echo "  pause: counter lines $C0 at pause, $C1 3 s later, $C2 3 s after resume"
check "control: no guest output while paused, and it goes on after resume" \
	test -n "$C2" -a "${C0:-0}" -gt 0 -a "${C0:-0}" = "${C1:-x}" -a "${C2:-0}" -gt "$((${C1:-0} + 5))"
check "control: pause --all and resume --all reach both VMs" \
	test "$(grep -c '^L1 ctl: ci[12] \(paused\|resumed\)' <<< "$S")" -ge 6
check "control: debug --nmi on arm64 says there is none" \
	grep -q "no NMI on this architecture" <<< "$(ctl nmi)"
check "control: debug --dump shows the vCPU's registers" \
	test "$(ctl dump | grep -c '^vCPU 0:\|^pc \|^x0 ')" -eq 3
check "control: debug --sysrq t reaches L2's 8250 driver: it prints its task list" \
	grep -q "^L1 ctl sysrq: [1-9][0-9]* headers, [1-9][0-9]* task lines" <<< "$S"
if grep -q "^L1 end blk-mmio status 0" <<< "$LOG"; then
	SUM16=$({ yes lkvm-arm64-l2 | head -c 4194304; tail -c +4194305 $W/disk-a.img | head -c 12582912; } | sha256sum | cut -d' ' -f1)
else
	SUM16=$(head -c 16777216 $W/disk-a.img | sha256sum | cut -d' ' -f1)
fi
check "control: every read of the disk across pause and resume has the host's checksum" \
	grep -qE "^L1 ctl sums: +[0-9]+ $SUM16 *\$" <<< "$S"
check "control: lkvm stop --name ci1 makes that lkvm exit 0" \
	grep -q "^L1 ctl ci1 status after stop: 0" <<< "$S"
check "control: ci2 keeps running after ci1 stops" \
	grep -q "^L1 ctl list after stop: ci2=running *\$" <<< "$S"
check "control: a kill -9 leaves a stale socket; lkvm list removes it" \
	eval 'grep -q "^L1 ctl ci3 socket before list: present" <<< "$S" &&
	grep -q "removed stale socket .*ci3.sock" <<< "$S" &&
	grep -q "^L1 ctl ci3 socket after list: gone" <<< "$S"'
check "control: lkvm balloon --inflate 16 reaches L2; stat --memory shows it (4096 pages)" \
	eval 'grep -q "^L1 ctl memory: *target_pages *4096" <<< "$S" &&
	grep -q "^L1 ctl memory: *actual_pages *4096" <<< "$S"'
check "control: lkvm stop --all stops ci2, paused (exit 0), no socket left" \
	eval 'grep -q "^L1 ctl ci2 status after stop --all: 0" <<< "$S" &&
	grep -q "^L1 ctl sockets left: 0" <<< "$S"'

S=$(section virtiofs)
if [ -z "${LKVM_NESTED_ONLY:-}" ] || [ "$LKVM_NESTED_ONLY" = virtiofs ]; then
	VB=$(sed -n 's/^L1 virtiofs big //p' <<< "$LOG")
	check "virtiofs: L2 mounts the share (mount -t virtiofs host)" \
		grep -q "^L2 virtiofs mounted: host virtiofs" <<< "$S"
	check "virtiofs: cp -a of the tree, then sha256sum -c of its 49 files in the copy" \
		eval 'grep -q "^L2 virtiofs cp -a done" <<< "$S" &&
		      grep -q "^L2 virtiofs sha256sum -c ok 49 files" <<< "$S"'
	check "virtiofs: a 3 MiB file (larger than a read) reads with L1's checksum" \
		eval '[ -n "$VB" ] && grep -q "^L2 virtiofs big $VB" <<< "$S"'
	check "virtiofs: mv, ln, ln -s, chmod, truncate, rm -rf through the share" \
		grep -q "^L2 virtiofs mv ln ln-s chmod truncate rm-rf done" <<< "$S"
	VD=$(sed -n 's/^L2 virtiofs dd sha256 //p' <<< "$S")
	check "virtiofs: dd conv=fsync of 5 MiB reads back, and L1 has the same bytes" \
		eval '[ -n "$VD" ] && grep -q "^L2 virtiofs dd read back $VD" <<< "$S" &&
		      grep -q "^L1 virtiofs after: dd.out $VD" <<< "$LOG"'
	check "virtiofs: L1 sees L2's changes (links, mode, size, the removed directory)" \
		eval 'grep -q "^L1 virtiofs after: hard links 2, soft moved/f2, mode 600, size 7" <<< "$LOG" &&
		      grep -q "^L1 virtiofs after: copy big d3 d4 d5 d6 hard link moved soft" <<< "$LOG"'
	check "virtiofs: L2 unmounts, lkvm exits 0" \
		eval 'grep -q "^L2 virtiofs unmounted" <<< "$S" && grep -q "^L1 end virtiofs status 0" <<< "$S"'
	S=$(section virtiofs-root)
	check "virtiofs root: L2 boots with root=rootfs rootfstype=virtiofs and runs init from the share" \
		grep -q "^L2 vfsroot init: pid 1, / is rootfs virtiofs" <<< "$S"
	check "virtiofs root: what L2 wrote there is in L1's directory, lkvm exits 0" \
		eval 'grep -q "^L1 vfsroot after: L2 vfsroot wrote" <<< "$LOG" &&
		      grep -q "^L1 end virtiofs-root status 0" <<< "$S"'
fi

S=$(section panic)
check "panic: L2 panics (sysrq c)" grep -q "Kernel panic" <<< "$S"
check "panic: lkvm ends the run (panic=-1 resets; Debian's arm64 kernel has no pvpanic)" \
	grep -q "^L1 end panic status 0" <<< "$S"

S=$(section intx)
check "--irqchip gicv3 (no ITS): virtio-pci falls back to INTx, hwrng works" \
	grep -q "^L2 hwrng 64 bytes from virtio_rng" <<< "$S"
check "--irqchip gicv3: lkvm exits 0" grep -q "^L1 end intx status 0" <<< "$S"
grep -q "interrupts through\|INTx through" <<< "$S" &&
	fail "--irqchip gicv3: INTx went through irqfd" ||
	pass "--irqchip gicv3: INTx went through irqfd (resampled)"
S=$(section gicv2)
if grep -q "^L1 end gicv2 status 0" <<< "$S"; then
	check "--irqchip gicv2: L2 runs on a GICv2" grep -q "^L2 hwrng 64 bytes" <<< "$S"
else
	check "--irqchip gicv2 on a GICv3-only host: a clear error" \
		grep -q "cannot emulate a GICv2" <<< "$S"
fi

echo "$PASSED passed, $FAILED failed, ${SKIPPED:-0} skipped"
[ "$FAILED" -eq 0 ]
