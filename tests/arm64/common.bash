# Shared by the arm64 nested tests (nested.sh) and benchmark (bench.sh):
# the tools they need, Debian's arm64 kernel and busybox (apt-get
# download, cached in tests/.cache/arm64, unpacked into $W), a busybox
# initramfs maker and the static arm64 lkvm.  The caller sets W and
# defines skip, skip_tool, pass and fail.
for t in qemu-system-aarch64:qemu-system-arm aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu \
	 cpio:cpio mkfs.ext4:e2fsprogs e2fsck:e2fsprogs; do
	command -v ${t%%:*} > /dev/null || skip_tool ${t%%:*} ${t##*:}
done
CACHE=tests/.cache/arm64
mkdir -p $CACHE
rm -rf $W && mkdir -p $W

# Debian's arm64 kernel (its vmlinuz is a plain Image) and busybox.
if ! ls $CACHE/linux-image-*-arm64-unsigned_*.deb > /dev/null 2>&1 ||
   ! ls $CACHE/busybox-static_*.deb > /dev/null 2>&1; then
	dpkg --print-foreign-architectures | grep -q arm64 ||
		skip_tool "arm64 packages" "(dpkg --add-architecture arm64; apt-get update first)"
	KPKG=$(apt-cache depends linux-image-arm64:arm64 2>/dev/null |
	       sed -n 's/.*Depends: \(linux-image-[0-9.-]*-arm64\):arm64/\1/p' | head -1)
	[ -n "$KPKG" ] || skip_tool "arm64 kernel package" "linux-image-arm64:arm64 (apt-get update first)"
	(cd $CACHE && apt-get download "$KPKG-unsigned:arm64" busybox-static:arm64) \
		> /dev/null 2>&1 || skip "cannot download the arm64 kernel/busybox (no package mirror?)"
fi
dpkg-deb -x $CACHE/linux-image-*-arm64-unsigned_*.deb $W/k
dpkg-deb -x $CACHE/busybox-static_*.deb $W/bb
IMAGE=$(ls $W/k/boot/vmlinuz-*)
MODS=$(ls -d $W/k/lib/modules/*)/kernel

# rootfs DIR INIT MODULES...: a busybox initramfs
rootfs() {
	local d=$1 init=$2
	shift 2
	mkdir -p $d/bin $d/proc $d/sys $d/dev $d/tmp $d/lib/modules
	cp $W/bb/bin/busybox $d/bin/busybox
	cp $init $d/init && chmod 755 $d/init
	for m in "$@"; do cp $(find $MODS -name "$m.ko") $d/lib/modules/; done
}

# The static arm64 lkvm of this tree, in build/arm64-static/lkvm.
build_lkvm() {
	make -s ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- STATIC=1 lkvm > $W/build.log 2>&1
}
