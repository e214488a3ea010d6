#!/usr/bin/env bash
# End to end: virtio-blk driven by the test guests blk, blkro and blkmq,
# on both transports and both I/O engines; the host then checks what
# reached the image files.
. "$(dirname "$0")/common.bash"
need_kvm

imgcheck() { python3 tests/e2e/imgcheck.py "$@" > /dev/null; }
fresh() { rm -f "$1"; truncate -s 1M "$1"; }
KIB=1024

for tr in pci mmio; do
	for aio in io_uring sync; do
		IMG=$TMP/blk-$tr-$aio.img
		fresh "$IMG"
		lkvm_run run -k $GUESTS/blk.bin -d "$IMG,aio=$aio,serial=lkvm-$tr" \
			--virtio-transport $tr --stats
		check "$tr/$aio: blk guest exits 0" [ "$STATUS" -eq 0 ]
		check "$tr/$aio: guest wrote, flushed, read back 128 KiB" \
			has "$OUT" "blk: wrote, flushed and read back 128 KiB: match"
		check "$tr/$aio: GET_ID returns the serial" has "$OUT" "blk: serial 'lkvm-$tr'"
		check "$tr/$aio: bad range -> IOERR, bad type -> UNSUPP" \
			has "$OUT" "read past the end -> IOERR, unknown type -> UNSUPP"
		check "$tr/$aio: write zeroes and discard read back as zeroes" \
			has "$OUT" "write zeroes and discard read back as zeroes"
		check "$tr/$aio: image holds the pattern, zeroes at sectors 64-127" \
			imgcheck "$IMG" 0 0 $((128 * KIB)) $((64 * 512)) $((128 * 512))
		check "$tr/$aio: the rest of the image is untouched (zero)" \
			imgcheck "$IMG" 0 $((128 * KIB)) $((1024 * KIB)) $((128 * KIB)) $((1024 * KIB))
		check "$tr/$aio: queue notifies never exit" has "$ERR" " notify 0;"
	done
done

RO=$TMP/ro.img
python3 -c "
import sys; sys.path.insert(0, 'tests/e2e'); from imgcheck import pattern
open('$RO', 'wb').write(bytes(pattern(o, 1) for o in range(1 << 20)))"
SUM=$(sha256sum < "$RO")
for tr in pci mmio; do
	lkvm_run run -k $GUESTS/blkro.bin -d "$RO,ro" --virtio-transport $tr
	check "$tr: blkro guest exits 0" [ "$STATUS" -eq 0 ]
	check "$tr: read-only disk: RO offered, reads match, writes refused" \
		has "$OUT" "blkro: RO offered, 64 KiB read match, write/zeroes/discard -> IOERR"
done
check "read-only image unchanged (sha256)" [ "$(sha256sum < "$RO")" = "$SUM" ]
chmod 444 "$RO"
lkvm_run run -k $GUESTS/blkro.bin -d "$RO,ro"
check "a read-only file opens with ,ro" [ "$STATUS" -eq 0 ]

for tr in pci mmio; do
	IMG=$TMP/mq-$tr.img
	fresh "$IMG"
	lkvm_run run -k $GUESTS/blkmq.bin -d "$IMG,queues=2" -c 2 --virtio-transport $tr
	check "$tr: blkmq: both queues used at once from 2 vCPUs" \
		has "$OUT" "blkmq: queue 0 ok, queue 1 ok"
	check "$tr: blkmq image holds both halves" imgcheck "$IMG" 2 0 $((128 * KIB))
done

IMG=$TMP/unsafe.img
fresh "$IMG"
lkvm_run run -k $GUESTS/blk.bin -d "$IMG,cache=unsafe"
check "cache=unsafe: blk guest exits 0" [ "$STATUS" -eq 0 ]
if IMG=$(mktemp -p "$PWD/build" direct.XXXXXX) && truncate -s 1M "$IMG" &&
   python3 -c "import os; os.close(os.open('$IMG', os.O_RDWR | os.O_DIRECT))" 2> /dev/null; then
	lkvm_run run -k $GUESTS/blk.bin -d "$IMG,cache=none"
	check "cache=none (O_DIRECT): blk guest exits 0" [ "$STATUS" -eq 0 ]
	check "cache=none: image holds the pattern" \
		imgcheck "$IMG" 0 0 $((128 * KIB)) $((64 * 512)) $((128 * 512))
else
	skip_env "cache=none: this filesystem has no O_DIRECT"
fi
rm -f "${IMG:-}"

# A host block device: a loop device over an image (root only).
IMG=$TMP/loop.img
fresh "$IMG"
if [ "$(id -u)" = 0 ] && LOOP=$(losetup -f --show "$IMG" 2> /dev/null); then
	lkvm_run run -k $GUESTS/blk.bin -d "$LOOP"
	check "block device $LOOP: blk guest exits 0" [ "$STATUS" -eq 0 ]
	check "block device: 2048 sectors seen" has "$OUT" "blk: 2048 sectors"
	losetup -d "$LOOP"
	check "block device: the backing file holds the pattern" \
		imgcheck "$IMG" 0 0 $((128 * KIB)) $((64 * 512)) $((128 * 512))
else
	skip_env "block device test needs root and losetup"
fi

lkvm_run run -k $GUESTS/hello.bin -d "$TMP/missing.img"
check "a missing image is an error naming it" has "$ERR" "missing.img"
check "... and a non-zero exit" [ "$STATUS" -ne 0 ]
lkvm_run run -k $GUESTS/hello.bin -d "$TMP/ro.img,cache=sometimes"
check "a bad disk option is a usage error" [ "$STATUS" -eq 2 ]
check "... that says what is wrong" has "$ERR" "cache=sometimes"
lkvm_run run -k $GUESTS/hello.bin -d "$TMP"
check "a directory is refused, by name" has "$ERR" "disk $TMP: "
lkvm_run run -k $GUESTS/hello.bin -d "/dev/null"
check "a character device is refused" has "$ERR" "not a regular file or block device"

finish
