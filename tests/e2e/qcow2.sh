#!/usr/bin/env bash
# qcow2 through lkvm's disk layer, with qemu-img as the oracle: images
# qemu-img makes (v2 and v3, several cluster sizes, compressed, with
# backing files) must read byte for byte like `qemu-img convert -O raw`;
# random writes, write-zeroes and discards through lkvm must leave
# `qemu-img check` clean and `qemu-img compare` equal to a raw mirror;
# kill -9 during writes must leave no corruption (leaks allowed); bad
# images get a clear error.  Then a test guest uses a qcow2 disk.
. "$(dirname "$0")/common.bash"
need_tool qemu-img qemu-utils
Q=${B:-build/x86_64}/e2e/qcow2io
D=$TMP
{ head -c 3M /dev/urandom; yes "compressible lkvm text" | head -c 3M
  head -c 2M /dev/zero; } > $D/base.raw

reads_like() {	# IMAGE: lkvm's view equals qemu-img's
	qemu-img convert -O raw "$1" $D/want.raw &&
	$Q dump "$1" $D/got.raw > /dev/null && cmp -s $D/want.raw $D/got.raw
}
writes_ok() {	# IMAGE SEED: random I/O through lkvm; check and compare
	qemu-img convert -O raw "$1" $D/mirror.raw &&
	$Q write "$1" $D/mirror.raw "$2" 300 > /dev/null &&
	qemu-img check -q "$1" && qemu-img compare -q "$1" $D/mirror.raw
}

for compat in 0.10 1.1; do
	v=$([ $compat = 0.10 ] && echo v2 || echo v3)
	for cs in 512 4096 65536 2M; do
		for c in "" -c; do
			I=$D/t.qcow2
			qemu-img convert -q $c -O qcow2 -o compat=$compat,cluster_size=$cs \
				$D/base.raw $I
			check "$v cluster $cs ${c:+compressed }: reads like qemu-img" reads_like $I
			check "$v cluster $cs ${c:+compressed }: writes, check clean, compare equal" \
				writes_ok $I $RANDOM
		done
	done
done
# refcount widths qemu-img makes
for ro in 1 3 5 6; do
	qemu-img convert -q -O qcow2 -o refcount_bits=$((1 << ro)) $D/base.raw $D/r.qcow2
	check "refcount_bits=$((1 << ro)): reads and writes clean" \
		eval 'reads_like $D/r.qcow2 && writes_ok $D/r.qcow2 9'
done

# Backing chains: qcow2 on qcow2 on raw, names relative and absolute.
cp $D/base.raw $D/chain0.raw
qemu-img create -q -f qcow2 -b chain0.raw -F raw $D/chain1.qcow2
qemu-io -c "write -P 0x11 1M 512k" $D/chain1.qcow2 > /dev/null
qemu-img create -q -f qcow2 -b $D/chain1.qcow2 -F qcow2 $D/chain2.qcow2
qemu-io -c "write -P 0x22 1536k 1M" -c "write -z 5M 1M" $D/chain2.qcow2 > /dev/null
check "backing chain (raw <- qcow2 <- qcow2): reads like qemu-img" reads_like $D/chain2.qcow2
check "backing chain: writes land in the top image, check clean" writes_ok $D/chain2.qcow2 5
check "backing chain: the backing files are untouched" \
	eval 'qemu-img check -q $D/chain1.qcow2 && cmp -s $D/chain0.raw $D/base.raw'
# A snapshot is kept, and writes copy what it shares.
qemu-img convert -q -O qcow2 $D/base.raw $D/snap.qcow2
qemu-img snapshot -c before $D/snap.qcow2
check "image with a snapshot: writes copy shared clusters, check clean" writes_ok $D/snap.qcow2 3
check "... and the snapshot is still there" eval 'qemu-img snapshot -l $D/snap.qcow2 | grep -q before'
qemu-img convert -q -O raw -l snapshot.name=before $D/snap.qcow2 $D/snapraw.raw 2>/dev/null &&
	check "... with its old contents" cmp -s $D/snapraw.raw $D/base.raw

# Extended L2 entries (subclusters): images qemu-img makes read alike and
# take random writes; an overlay qemu-io left with subclusters of every
# kind (allocated, zero, from the backing file) reads alike and takes
# writes; a 4 KiB write into a fresh overlay allocates its subclusters
# only (two of 2 KiB), not the 64 KiB cluster.
for cs in 16384 65536 2M; do
	qemu-img convert -q -O qcow2 -o extended_l2=on,cluster_size=$cs $D/base.raw $D/e.qcow2
	check "extended L2, cluster $cs: reads like qemu-img" reads_like $D/e.qcow2
	check "extended L2, cluster $cs: writes, check clean, compare equal" \
		writes_ok $D/e.qcow2 $RANDOM
done
# lazy_refcounts (a compatible feature): refcount blocks are written
# late and the image is marked dirty meanwhile; a clean close writes
# them and clears the mark.  (Crashes and repair: further down.)
qemu-img convert -q -O qcow2 -o lazy_refcounts=on $D/base.raw $D/lz.qcow2
dirty_bit() {	# IMAGE: the header's incompatible bit 0
	python3 -c "import sys,struct; h=open(sys.argv[1],'rb').read(80); print(struct.unpack('>Q',h[72:80])[0] & 1)" "$1"
}
check "lazy_refcounts image: writes, check clean, compare equal, not left dirty" \
	eval 'writes_ok $D/lz.qcow2 13 && [ $(dirty_bit $D/lz.qcow2) = 0 ]'
qemu-img convert -q -O qcow2 $D/base.raw $D/eb.qcow2
qemu-img create -q -f qcow2 -o extended_l2=on -b $D/eb.qcow2 -F qcow2 $D/eo.qcow2
qemu-io -c "write -P 0x11 1k 3k" -c "write -z 70k 6k" -c "write -P 0x22 200k 100k" \
	-c "discard 300k 64k" $D/eo.qcow2 > /dev/null
check "extended L2 overlay with every kind of subcluster: reads like qemu-img" \
	reads_like $D/eo.qcow2
check "... takes random writes: check clean, compare equal" writes_ok $D/eo.qcow2 11
qemu-img create -q -f qcow2 -o extended_l2=on -b $D/eb.qcow2 -F qcow2 $D/ef.qcow2
$Q poke $D/ef.qcow2 131072 4096	# also makes the L2 table
S0=$(stat -c %b $D/ef.qcow2)
$Q poke $D/ef.qcow2 327680 4096
S1=$(stat -c %b $D/ef.qcow2)
check "a 4 KiB write into a fresh extended-L2 overlay stores 4 KiB, not a 64 KiB cluster (+$(((S1 - S0) * 512)) bytes on disk)" \
	eval 'qemu-img map --output=json $D/ef.qcow2 | grep -q "\"start\": 327680, \"length\": 4096, \"depth\": 0" &&
	      [ $(qemu-img map --output=json $D/ef.qcow2 | grep -c "\"depth\": 0") = 2 ] &&
	      [ $(((S1 - S0) * 512)) -lt 65536 ] && qemu-img check -q $D/ef.qcow2'

# Filling an image of 512-byte clusters: its refcount table (one cluster,
# 64 blocks of 256 clusters: 8 MiB of file) must grow; then discards and
# rewrites, which take freed clusters again instead of growing the file.
qemu-img create -q -f qcow2 -o cluster_size=512 $D/g.qcow2 24M
RT0=$(qemu-img info --output=json $D/g.qcow2 | grep -c refcount)
head -c 24M /dev/urandom > $D/g.raw
$Q copy $D/g.qcow2 $D/g.raw > /dev/null
check "filling 24 MiB of 512-byte clusters grows the refcount table: check clean, compare equal" \
	eval 'qemu-img check -q $D/g.qcow2 && qemu-img compare -q $D/g.qcow2 $D/g.raw &&
	      [ $(od -An -j56 -N4 -tu4 --endian=big $D/g.qcow2) -gt 1 ]'
G0=$(stat -c %s $D/g.qcow2)
$Q reuse $D/g.qcow2 $D/g.raw 7 > /dev/null
G1=$(stat -c %s $D/g.qcow2)
check "discarding and rewriting reuses freed clusters (file $G0 -> $G1 bytes): check clean, compare equal" \
	eval 'qemu-img check -q $D/g.qcow2 && qemu-img compare -q $D/g.qcow2 $D/g.raw &&
	      [ $G1 -lt $((G0 + G0 / 20)) ]'

# The same through io_uring, as queue threads run it: reads and writes
# of allocated clusters go to the engine straight from the buffers, one
# extent or several; verify checks every read against a copy in memory.
for cs in 4096 65536; do
	qemu-img convert -q -O qcow2 -o cluster_size=$cs $D/base.raw $D/u.qcow2
	check "io_uring engine, cluster $cs: random reads and writes verify" \
		eval 'QCOW2IO_AIO=io_uring $Q verify $D/u.qcow2 $cs 3000 > /dev/null &&
		      qemu-img check -q $D/u.qcow2'
done

# cache=none: O_DIRECT for the aligned I/O of allocated clusters (the
# io_uring engine), a plain descriptor for metadata and the rest.
for o in cluster_size=4096 cluster_size=65536,extended_l2=on; do
	qemu-img convert -q -O qcow2 -o $o $D/base.raw $D/u.qcow2
	check "cache=none, $o: random I/O from aligned and unaligned buffers verifies, check clean" \
		eval 'QCOW2IO_ALIGN=1 QCOW2IO_AIO=io_uring $Q verify "$D/u.qcow2,cache=none" 1 2000 > /dev/null &&
		      QCOW2IO_AIO=io_uring $Q verify "$D/u.qcow2,cache=none" 2 1000 > /dev/null &&
		      qemu-img check -q $D/u.qcow2'
	check "cache=none, $o: writes, zeroes and discards: check clean, compare equal" \
		eval 'qemu-img convert -O raw $D/u.qcow2 $D/mirror.raw &&
		      QCOW2IO_AIO=io_uring $Q write "$D/u.qcow2,cache=none" $D/mirror.raw 4 300 > /dev/null &&
		      qemu-img check -q $D/u.qcow2 && qemu-img compare -q $D/u.qcow2 $D/mirror.raw'
done

# kill -9 in the middle of allocating writes (a fresh image, metadata
# written back in batches): no corruption (leaks are fine), and every
# write flushed before the kill reads back.
C=${B:-build/x86_64}/e2e/qcow2crash
K=0 R=0
for i in $(seq 20); do
	o=$(case $((i % 3)) in 0) echo 4096;; 1) echo 65536;; *) echo 65536,extended_l2=on;; esac)
	qemu-img create -q -f qcow2 -o cluster_size=$o $D/k.qcow2 32M
	$C run $D/k.qcow2 $i 1000000 - > $D/kout &
	P=$!
	sleep 0.$((RANDOM % 5 + 1))
	kill -9 $P 2> /dev/null
	wait $P 2> /dev/null
	F=$(tail -1 $D/kout | sed -n 's/^flushed //p')
	qemu-img check $D/k.qcow2 > $D/kcheck 2>&1
	rc=$?
	[ $rc = 0 -o $rc = 3 ] && K=$((K + 1)) || head -5 $D/kcheck
	# Writes after the last flush reported may have begun: F+16 at most.
	$C check $D/k.qcow2 $i ${F:-0} $((${F:-0} + 16)) > $D/kread 2>&1 &&
		R=$((R + 1)) || head -3 $D/kread
done
check "kill -9 during allocating writes, 20 times: qemu-img check finds no corruption ($K of 20)" [ $K = 20 ]
check "... and every write flushed before the kill reads back ($R of 20)" [ $R = 20 ]

# A power cut: every write and fdatasync lkvm made is logged; the image
# is rebuilt up to a random point, keeping what the last fdatasync
# before it made durable and a random subset of the writes after it.
# This tests the write-back order itself (kill -9 cannot: the page cache
# survives a killed process).
P=0 R=0
for cs in 512 4096 65536 65536,extended_l2=on; do
	qemu-img create -q -f qcow2 -o cluster_size=$cs $D/p.qcow2 32M
	cp $D/p.qcow2 $D/p0.qcow2
	cs=${cs%%,*}
	$C run $D/p.qcow2 $cs 3000 $D/p.log > /dev/null
	for i in $(seq 6); do
		$C cut $D/p0.qcow2 $D/p.log $((cs + i)) $D/cut.qcow2 > $D/cut.out
		F=$(sed -n 's/^flushed \([0-9]*\).*/\1/p' $D/cut.out)
		qemu-img check $D/cut.qcow2 > $D/kcheck 2>&1
		rc=$?
		[ $rc = 0 -o $rc = 3 ] && P=$((P + 1)) || { cat $D/cut.out; head -5 $D/kcheck; }
		$C check $D/cut.qcow2 $cs $F 3000 > $D/kread 2>&1 &&
			R=$((R + 1)) || head -3 $D/kread
	done
done
check "power cut at 24 random points (512 B clusters with a refcount table that grows, 4 KiB, 64 KiB, extended L2): qemu-img check finds no corruption ($P of 24)" [ $P = 24 ]
check "... and every write flushed before the cut reads back ($R of 24)" [ $R = 24 ]

# Lazy refcounts after a crash: the image is dirty and its refcounts lag
# (qemu-img check, which does not repair a read-only image, finds
# errors); lkvm's next writable open rebuilds them from the tables:
# qemu-img check is then clean, leaks included, and the flushed data is
# there.  First kill -9 (6 times), then power cuts (9), with 512-byte
# clusters (the table grows), 4 KiB, 64 KiB and extended L2.
K=0 R=0 E=0 DB=0
for i in $(seq 6); do
	o=$(case $((i % 4)) in 0) echo 512;; 1) echo 4096;; 2) echo 65536;; *) echo 65536,extended_l2=on;; esac)
	qemu-img create -q -f qcow2 -o lazy_refcounts=on,cluster_size=$o $D/k.qcow2 32M
	$C run $D/k.qcow2 $i 1000000 - > $D/kout &
	P=$!
	sleep 0.$((RANDOM % 5 + 2))
	kill -9 $P 2> /dev/null
	wait $P 2> /dev/null
	F=$(tail -1 $D/kout | sed -n 's/^flushed //p')
	[ "$(dirty_bit $D/k.qcow2)" = 1 ] && DB=$((DB + 1))
	qemu-img check $D/k.qcow2 > /dev/null 2>&1 || E=$((E + 1))
	$C open $D/k.qcow2 && qemu-img check $D/k.qcow2 > $D/kcheck 2>&1 &&
		[ "$(dirty_bit $D/k.qcow2)" = 0 ] && K=$((K + 1)) || head -5 $D/kcheck
	$C check $D/k.qcow2 $i ${F:-0} $((${F:-0} + 16)) > $D/kread 2>&1 &&
		R=$((R + 1)) || head -3 $D/kread
done
check "lazy refcounts, kill -9 6 times: left dirty ($DB of 6), refcounts behind ($E of 6)" \
	[ $DB = 6 -a $E -ge 4 ]
check "... repaired by lkvm at the next open: qemu-img check clean, no leaks, not dirty ($K of 6)" [ $K = 6 ]
check "... and every write flushed before the kill reads back ($R of 6)" [ $R = 6 ]
P=0 R=0
for cs in 512 4096 65536,extended_l2=on; do
	qemu-img create -q -f qcow2 -o lazy_refcounts=on,cluster_size=$cs $D/p.qcow2 32M
	cp $D/p.qcow2 $D/p0.qcow2
	cs=${cs%%,*}
	$C run $D/p.qcow2 $cs 3000 $D/p.log > /dev/null
	for i in $(seq 3); do
		$C cut $D/p0.qcow2 $D/p.log $((cs + i)) $D/cut.qcow2 > $D/cut.out
		F=$(sed -n 's/^flushed \([0-9]*\).*/\1/p' $D/cut.out)
		$C open $D/cut.qcow2 && qemu-img check $D/cut.qcow2 > $D/kcheck 2>&1 &&
			P=$((P + 1)) || { cat $D/cut.out; head -5 $D/kcheck; }
		$C check $D/cut.qcow2 $cs $F 3000 > $D/kread 2>&1 &&
			R=$((R + 1)) || head -3 $D/kread
	done
done
check "lazy refcounts, power cut at 9 random points, repaired at open: qemu-img check clean ($P of 9)" [ $P = 9 ]
check "... and every write flushed before the cut reads back ($R of 9)" [ $R = 9 ]
# A snapshot shares every cluster (refcount 2): writes copy them, the
# kill leaves the counts behind, the repair counts both tables.
qemu-img create -q -f qcow2 -o lazy_refcounts=on,cluster_size=4096 $D/s.qcow2 32M
qemu-io -c "write -P 0 0 32M" $D/s.qcow2 > /dev/null
qemu-img snapshot -c zeroes $D/s.qcow2
$C run $D/s.qcow2 5 1000000 - > $D/kout &
P=$!
sleep 0.4
kill -9 $P 2> /dev/null
wait $P 2> /dev/null
F=$(tail -1 $D/kout | sed -n 's/^flushed //p')
check "lazy refcounts with a snapshot, kill -9, repair: qemu-img check clean" \
	eval '$C open $D/s.qcow2 && qemu-img check -q $D/s.qcow2'
check "... the snapshot still reads as it was" \
	eval 'qemu-img convert -O raw -l snapshot.name=zeroes $D/s.qcow2 $D/sz.raw &&
	      cmp -s $D/sz.raw <(head -c 32M /dev/zero)'
check "... and the flushed writes read back" \
	eval '$C check $D/s.qcow2 5 ${F:-0} $((${F:-0} + 16)) > /dev/null'
# A dirty image whose L2 table points past the end: the repair refuses
# the writable open with a clear error; read-only, it still opens.
qemu-img create -q -f qcow2 -o lazy_refcounts=on,cluster_size=4096 $D/bd.qcow2 1M
qemu-io -c "write -P 7 0 4k" $D/bd.qcow2 > /dev/null
python3 - $D/bd.qcow2 <<'PY'
import struct, sys
f = open(sys.argv[1], 'r+b'); h = f.read(104)
l1 = struct.unpack('>Q', h[40:48])[0]; f.seek(l1)
l2 = struct.unpack('>Q', f.read(8))[0] & 0x00fffffffffffe00
f.seek(l2 + 8); f.write(struct.pack('>Q', (1 << 63) | (1 << 40)))
f.seek(72); f.write(struct.pack('>Q', 1))
PY
$C open $D/bd.qcow2 > $D/bd.out 2>&1
BD=$?
check "dirty image with a cluster past the end: writable open refused with a clear error" \
	eval '[ $BD = 1 ] && grep -q "data cluster points outside the image" $D/bd.out'
check "... read-only, it still opens" eval '$Q hold "$D/bd.qcow2,ro" 0 > /dev/null'

# Bad images: clear errors, no crash.
bad() {	# NAME: lkvm must refuse it with an error line, exit 1
	$Q dump "$1" $D/x.raw > $D/bad.out 2>&1
	[ $? = 1 ] && grep -q "qcow2io: " $D/bad.out
}
qemu-img convert -q -O qcow2 $D/base.raw $D/good.qcow2
head -c 100 $D/good.qcow2 > $D/trunc.qcow2
check "truncated image: clear error" bad $D/trunc.qcow2
cp $D/good.qcow2 $D/l1.qcow2
printf '\x7f\xff\xff\xff\xff\xff\x00\x00' | dd of=$D/l1.qcow2 bs=1 seek=40 conv=notrunc 2> /dev/null
check "L1 table past the end: clear error" bad $D/l1.qcow2
cp $D/good.qcow2 $D/cb.qcow2
printf '\x00\x00\x00\x1f' | dd of=$D/cb.qcow2 bs=1 seek=20 conv=notrunc 2> /dev/null
check "absurd cluster size: clear error" bad $D/cb.qcow2
cp $D/good.qcow2 $D/inc.qcow2
printf '\x00\x00\x00\x00\x00\x00\x00\x04' | dd of=$D/inc.qcow2 bs=1 seek=72 conv=notrunc 2> /dev/null
check "unknown incompatible feature: clear error" bad $D/inc.qcow2
# (qemu-img create -b naming the image itself can hang in qemu-img.)
qemu-img create -q -f qcow2 $D/loop.qcow2 8M
qemu-img rebase -q -u -b loop.qcow2 -F qcow2 $D/loop.qcow2 2> /dev/null
check "backing chain that loops: clear error" bad $D/loop.qcow2

# A guest on a qcow2 disk (needs /dev/kvm).
if [ -c /dev/kvm ]; then
	qemu-img create -q -f qcow2 $D/guest.qcow2 1M
	lkvm_run run -k $GUESTS/blk.bin -d $D/guest.qcow2
	check "blk guest on a qcow2 disk exits 0" [ "$STATUS" -eq 0 ]
	check "the guest's checks pass" has "$OUT" "write zeroes and discard read back as zeroes"
	check "qemu-img check: clean after the guest" qemu-img check -q $D/guest.qcow2
	qemu-img convert -O raw $D/guest.qcow2 $D/guest.raw
	check "the image holds the guest's pattern (seen through qemu-img)" \
		python3 tests/e2e/imgcheck.py $D/guest.raw 0 0 131072 32768 65536
	# Two queues on two vCPUs at once: one image lock, no mix-ups.
	qemu-img create -q -f qcow2 -o cluster_size=4096 $D/mq.qcow2 1M
	lkvm_run run -k $GUESTS/blkmq.bin -d $D/mq.qcow2,queues=2 -c 2
	check "blkmq on qcow2: both queues at once" has "$OUT" "blkmq: queue 0 ok, queue 1 ok"
	check "blkmq on qcow2: qemu-img check clean" qemu-img check -q $D/mq.qcow2
	qemu-img convert -O raw $D/mq.qcow2 $D/mq.raw
	check "blkmq on qcow2: both halves in the image" \
		python3 tests/e2e/imgcheck.py $D/mq.raw 2 0 131072
fi
# A data cluster placed over the L1 table: reads may see it, writes
# must not go there.
qemu-img convert -q -O qcow2 -o cluster_size=4096 $D/base.raw $D/ov.qcow2
L1=$(qemu-img info --output=json $D/ov.qcow2 > /dev/null; python3 -c "
import struct; h=open('$D/ov.qcow2','rb').read(104); print(struct.unpack('>Q',h[40:48])[0])")
L2=$(python3 -c "
import struct; f=open('$D/ov.qcow2','rb'); f.seek($L1); print(struct.unpack('>Q',f.read(8))[0] & 0x00fffffffffffe00)")
python3 -c "
import struct; f=open('$D/ov.qcow2','r+b'); f.seek($L2); f.write(struct.pack('>Q', (1<<63) | $L1))"
cp $D/ov.qcow2 $D/ov.before
$Q poke $D/ov.qcow2 0 4096 > /dev/null 2> $D/ov.err
check "a cluster over the L1 table: the write fails with an I/O error" grep -q "Input/output error" $D/ov.err
check "... and the L1 table is intact" \
	eval 'cmp -s <(dd if=$D/ov.qcow2 bs=1 skip=$L1 count=8 2>/dev/null) <(dd if=$D/ov.before bs=1 skip=$L1 count=8 2>/dev/null)'
finish
