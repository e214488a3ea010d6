#!/usr/bin/env bash
# lkvm export: a disk image served as a regular file over FUSE, with
# qemu-img as the oracle.  The exported file must read like `qemu-img
# convert -O raw` (qcow2 v2/v3, compressed, a 3-deep backing chain,
# raw); writes, punch hole, zero range and fsync through it must leave
# `qemu-img check` clean and `qemu-img compare` equal to a raw mirror;
# a loop device and ext4 on top must work and leave a clean filesystem;
# kill -9 during writes must leave no corruption; misuse gets one line
# and exit status 2.
. "$(dirname "$0")/common.bash"
need_tool qemu-img qemu-utils
need_tool losetup mount
need_tool mkfs.ext4 e2fsprogs
if [ "$(id -u)" != 0 ] || [ ! -c /dev/fuse ]; then
	skip_env "export: mounting FUSE needs root and /dev/fuse"
	finish
	exit 0
fi
D=$TMP
IO=tests/e2e/exportio.py
XP=

# export IMAGE FILE [OPTIONS...]: serves it in the background (XP: pid)
export_start() {
	local img=$1 mp=$2 i
	shift 2
	"$LKVM" export "$img" "$mp" --no-control "$@" > $D/x.out 2>&1 &
	XP=$!
	for i in $(seq 100); do
		grep -q "^lkvm: exporting" $D/x.out 2> /dev/null && return 0
		kill -0 $XP 2> /dev/null || return 1
		sleep 0.05
	done
	return 1
}
# ends it with SIGTERM; 0 if it exited 0 and the mount is gone
export_stop() {
	kill -TERM $XP 2> /dev/null
	wait $XP
	local rc=$?
	! grep -q " $1 fuse.lkvm" /proc/mounts && [ $rc = 0 ]
}
reads_like() {	# IMAGE: the exported file equals qemu-img's view
	qemu-img convert -O raw "$1" $D/want.raw &&
	export_start "$1" $D/x.raw --ro &&
	cmp -s $D/x.raw $D/want.raw && export_stop $D/x.raw
}

{ head -c 3M /dev/urandom; yes "compressible lkvm text" | head -c 3M
  head -c 2M /dev/zero; } > $D/base.raw
for compat in 0.10 1.1; do
	v=$([ $compat = 0.10 ] && echo v2 || echo v3)
	for c in "" -c; do
		qemu-img convert -q $c -O qcow2 -o compat=$compat $D/base.raw $D/t.qcow2
		check "$v qcow2 ${c:+compressed }: the exported file reads like qemu-img" \
			reads_like $D/t.qcow2
	done
done
cp $D/base.raw $D/c0.raw
qemu-img create -q -f qcow2 -b c0.raw -F raw $D/c1.qcow2
qemu-io -c "write -P 0x11 1M 512k" $D/c1.qcow2 > /dev/null
qemu-img create -q -f qcow2 -b c1.qcow2 -F qcow2 $D/c2.qcow2
qemu-io -c "write -P 0x22 1536k 1M" -c "write -z 5M 1M" $D/c2.qcow2 > /dev/null
qemu-img create -q -f qcow2 -b c2.qcow2 -F qcow2 $D/c3.qcow2
qemu-io -c "write -P 0x33 3M 64k" $D/c3.qcow2 > /dev/null
check "a 3-deep backing chain (raw <- qcow2 <- qcow2 <- qcow2) reads like qemu-img" \
	reads_like $D/c3.qcow2
check "a raw image reads as itself" reads_like $D/base.raw

# Writes: random writes at any byte, punch hole, zero range, fsync,
# checked through the file, then against the image after unexport.
writes_ok() {	# IMAGE SEED [OPTIONS...]
	local img=$1 seed=$2
	shift 2
	qemu-img convert -O raw "$img" $D/mirror.raw &&
	export_start "$img" $D/x.raw "$@" &&
	python3 $IO write $D/x.raw $D/mirror.raw $seed 400 > $D/io.out &&
	export_stop $D/x.raw &&
	{ [ "${img%.raw}" != "$img" ] || qemu-img check -q "$img"; } &&
	qemu-img compare -q "$img" $D/mirror.raw
}
qemu-img create -q -f qcow2 $D/w.qcow2 16M
check "fresh qcow2, 2 threads: writes, punch, zero, fsync read back; check clean, compare equal" \
	writes_ok $D/w.qcow2 1 --threads 2
qemu-img create -q -f qcow2 -b c2.qcow2 -F qcow2 $D/o.qcow2
check "qcow2 overlay on a chain, 1 thread: the same" writes_ok $D/o.qcow2 2 --threads 1
qemu-img create -q -f qcow2 -o extended_l2=on $D/e.qcow2 16M
check "extended L2 qcow2, cache=none: the same" writes_ok $D/e.qcow2 3 --cache none
cp $D/base.raw $D/r.raw
check "raw image: the same" writes_ok $D/r.raw 4 --threads 2

# A loop device and ext4 on the exported file of a qcow2 image.
truncate -s 64M $D/fs.raw
mkfs.ext4 -q -F $D/fs.raw
qemu-img convert -O qcow2 $D/fs.raw $D/fs.qcow2
head -c 3M /dev/urandom > $D/payload
loop_ext4() {
	local dev ok=1
	export_start $D/fs.qcow2 $D/x.raw --threads 2 || return 1
	dev=$(losetup -f --show $D/x.raw) || return 1
	mkdir -p $D/mnt
	if mount -t ext4 $dev $D/mnt; then
		cp $D/payload $D/mnt/payload && mkdir $D/mnt/dir &&
		echo hello > $D/mnt/dir/hello && sync &&
		cmp -s $D/mnt/payload $D/payload && ok=0
		umount $D/mnt || ok=1
	fi
	losetup -d $dev
	export_stop $D/x.raw && return $ok
}
check "losetup + mount ext4 on the exported qcow2: write and read a file, unmount" loop_ext4
qemu-img convert -O raw $D/fs.qcow2 $D/fs2.raw
check "... qemu-img check clean after unexport" qemu-img check -q $D/fs.qcow2
check "... e2fsck -fn of the image's contents: clean" \
	eval 'e2fsck -fn $D/fs2.raw > $D/fsck.out 2>&1 || { cat $D/fsck.out; false; }'
check "... and the file is in it" \
	eval 'debugfs -R "cat /payload" $D/fs2.raw 2> /dev/null | cmp -s - $D/payload'

# kill -9 while a writer is busy: the image has no corruption (leaks
# are fine), a lazy unmount clears the dead mount, and the image opens
# again for writing.
K=0
for i in 1 2 3 4 5; do
	qemu-img create -q -f qcow2 -o cluster_size=4096 $D/k.qcow2 32M
	export_start $D/k.qcow2 $D/x.raw --threads 2 || continue
	python3 $IO loop $D/x.raw $i > $D/loop.out 2>&1 &
	W=$!
	# (python takes half a second to start here)
	for j in $(seq 100); do grep -q synced $D/loop.out && break; sleep 0.05; done
	sleep 0.$((RANDOM % 5 + 1))
	kill -9 $XP
	wait $XP 2> /dev/null
	wait $W 2> /dev/null
	umount -l $D/x.raw
	qemu-img check $D/k.qcow2 > $D/kcheck 2>&1
	rc=$?
	if [ $rc = 0 -o $rc = 3 ] && grep -q synced $D/loop.out &&
	   ! grep -q " $D/x.raw " /proc/mounts; then
		K=$((K + 1))
	else
		head -5 $D/kcheck $D/loop.out
	fi
done
check "kill -9 during writes, 5 times: qemu-img check finds no corruption, umount -l clears the mount ($K of 5)" [ $K = 5 ]

# The control socket: lkvm list shows it, lkvm stop ends it cleanly.
qemu-img create -q -f qcow2 $D/s.qcow2 8M
XDG_RUNTIME_DIR=$D "$LKVM" export $D/s.qcow2 $D/x.raw --name exptest > $D/x.out 2>&1 &
XP=$!
for i in $(seq 100); do grep -q "^lkvm: exporting" $D/x.out && break; sleep 0.05; done
dd if=/dev/zero of=$D/x.raw bs=64k count=4 conv=notrunc,fsync 2> /dev/null
L=$(XDG_RUNTIME_DIR=$D "$LKVM" list)
check "lkvm list shows the export" has "$L" "exptest"
S=$(XDG_RUNTIME_DIR=$D "$LKVM" stat exptest)
check "lkvm stat shows its workers and the writes ($(echo "$S" | head -1 | grep -o 'writes=[0-9]*'))" \
	eval 'has "$S" "worker name=fsx-0" && echo "$S" | grep -q "writes=[1-9]"'
XDG_RUNTIME_DIR=$D "$LKVM" stop exptest > /dev/null
wait $XP
check "lkvm stop: it exits 0 and unmounts" \
	eval '[ $? = 0 ] && ! grep -q " $D/x.raw " /proc/mounts && [ ! -e $D/lkvm/exptest.sock ]'
# An unmount from outside ends it too.
export_start $D/s.qcow2 $D/x.raw
umount $D/x.raw
wait $XP
check "umount from outside: it exits 0" [ $? = 0 ]

# --ro: opening for writing is refused; two read-only exports share the image.
export_start $D/s.qcow2 $D/x.raw --ro
P1=$XP
check "--ro: a write is refused" eval '! dd if=/dev/zero of=$D/x.raw bs=4k count=1 conv=notrunc 2> /dev/null'
"$LKVM" export $D/s.qcow2 $D/y.raw --ro --no-control > $D/y.out 2>&1 &
P2=$!
for i in $(seq 100); do grep -q "^lkvm: exporting" $D/y.out && break; sleep 0.05; done
check "--ro: a second read-only export of the same image runs" cmp -s $D/x.raw $D/y.raw
kill -TERM $P2; wait $P2
"$LKVM" export $D/s.qcow2 $D/z.raw --no-control > $D/z.out 2>&1
RC=$?
check "a writable export of an image in use: exit 2, one line" \
	eval '[ $RC = 2 ] && [ $(wc -l < $D/z.out) = 1 ] && grep -q "has it open" $D/z.out'
XP=$P1
export_stop $D/x.raw

# Errors: one line, exit 2.
err2() {	# WHAT ARGS...: exit 2 and one line on stderr
	shift
	"$LKVM" export "$@" --no-control > $D/e.out 2>&1
	[ $? = 2 ] && [ "$(wc -l < $D/e.out)" = 1 ] && grep -q "^lkvm: export: " $D/e.out
}
mkdir -p $D/adir
check "missing image: exit 2, one line" err2 x $D/nonexistent.qcow2 $D/x.raw
check "unknown format: exit 2, one line" err2 x $D/s.qcow2 $D/x.raw --format vmdk
check "mount point is a directory: exit 2, one line" err2 x $D/s.qcow2 $D/adir
check "a raw file forced to --format qcow2: exit 2, one line" \
	err2 x $D/base.raw $D/x.raw --format qcow2
if command -v setpriv > /dev/null; then
	chmod 755 $D
	touch $D/np.raw
	setpriv --reuid=65534 --regid=65534 --clear-groups "$LKVM" export $D/s.qcow2 $D/np.raw --ro --no-control > $D/e.out 2>&1
	RC=$?
	check "no permission on /dev/fuse: exit 2, one line" \
		eval '[ $RC = 2 ] && [ $(wc -l < $D/e.out) = 1 ] && grep -q "/dev/fuse" $D/e.out'
fi
finish
