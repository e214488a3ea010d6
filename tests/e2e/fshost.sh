#!/usr/bin/env bash
# lkvm's passthrough filesystem (the server behind virtio-fs) mounted on
# the host through /dev/fuse (tests/e2e/hostmount.c), so that the host
# kernel's FUSE client and ordinary tools exercise it: a tree with many
# files, symlinks, hard links, xattrs and sparse files copied in and out
# with cp -a and tar and compared; fio with verification; writers on two
# queues at once; a read-only mount that refuses writes.
. "$(dirname "$0")/common.bash"
need_tool fio fio
if [ "$(id -u)" != 0 ] || [ ! -c /dev/fuse ]; then
	skip_env "fshost: mounting FUSE needs root and /dev/fuse"
	finish
	exit 0
fi
H=${B:-build/x86_64}/e2e/hostmount
D=$TMP
HP=

mount_fs() {	# DIR MNT [OPTIONS...]: HP is its pid
	local dir=$1 mnt=$2 i
	shift 2
	mkdir -p "$mnt"
	$H "$dir" "$mnt" "$@" > $D/h.out 2>&1 &
	HP=$!
	for i in $(seq 100); do
		grep -q mounted $D/h.out 2> /dev/null && return 0
		kill -0 $HP 2> /dev/null || return 1
		sleep 0.05
	done
	return 1
}
umount_fs() {	# MNT: 0 if the server exited 0 and the mount is gone
	umount "$1"
	wait $HP
	local rc=$?
	! grep -q " $1 fuse" /proc/mounts && [ $rc = 0 ]
}

# The tree: 300 small files in 10 directories, a 3 MiB file, symlinks
# (relative, absolute, dangling), hard links, xattrs, a sparse file, an
# empty directory, odd names.
S=$D/src
mkdir -p $S/empty
for d in $(seq 10); do
	mkdir -p $S/dir$d/sub
	for f in $(seq 30); do echo "file $d/$f $RANDOM" > $S/dir$d/f$f; done
	ln -s ../dir$d/f1 $S/dir$d/sub/rel
done
head -c 3M /dev/urandom > $S/big
ln -s /etc/hostname $S/abs
ln -s nowhere $S/dangling
ln $S/big $S/big.hard
python3 -c "import os; os.setxattr('$S/big', 'user.lkvm', b'xattr value'); os.setxattr('$S/dir1', 'user.d', b'on a dir')"
truncate -s 64M $S/sparse
echo tail | dd of=$S/sparse bs=1 seek=$((40 << 20)) conv=notrunc 2> /dev/null
touch "$S/name with spaces" "$S/ünïcödé"
chmod 640 $S/dir2/f2
touch -d "2020-01-02 03:04:05" $S/dir3/f3

same_tree() {	# A B: same names, types, contents, links and modes
	diff -r --no-dereference "$1" "$2" > $D/diff.out 2>&1 &&
	[ "$(cd "$1" && find . -printf '%p %y %m %l\n' | sort)" = \
	  "$(cd "$2" && find . -printf '%p %y %m %l\n' | sort)" ]
}

E=$D/export
mkdir -p $E
check "hostmount mounts the directory" mount_fs $E $D/m
check "cp -a of the tree into the mount" cp -a $S $D/m/copy
check "... the directory holds the same tree (diff -r, types, modes, links)" same_tree $S $E/copy
check "... hard links are one inode" \
	[ "$(stat -c %i $E/copy/big)" = "$(stat -c %i $E/copy/big.hard)" ]
check "... xattrs came along (file and directory)" \
	python3 -c "import os, sys; sys.exit(os.getxattr('$E/copy/big', 'user.lkvm') != b'xattr value' or os.getxattr('$E/copy/dir1', 'user.d') != b'on a dir')"
check "... times came along" [ "$(stat -c %Y $E/copy/dir3/f3)" = "$(stat -c %Y $S/dir3/f3)" ]
check "... the sparse file reads the same and stays sparse" \
	eval 'cmp -s $S/sparse $E/copy/sparse && [ $(stat -c %b $E/copy/sparse) -lt 1024 ]'
check "cp -a back out of the mount: the same tree" eval 'cp -a $D/m/copy $D/back && same_tree $S $D/back'
check "tar through the mount both ways: the same tree" \
	eval 'mkdir $D/m/tarred && tar -C $S -cf - . | tar -C $D/m/tarred -xpf - &&
	      mkdir $D/untar && tar -C $D/m/tarred -cf - . | tar -C $D/untar -xpf - &&
	      same_tree $S $D/untar'
check "find sees every name" [ "$(cd $S && find . | wc -l)" = "$(cd $D/m/copy && find . | wc -l)" ]
check "sha256sum -c of every file, through the mount" \
	eval '(cd $S && find . -type f -exec sha256sum {} +) > $D/sums &&
	      (cd $D/m/copy && sha256sum -c --quiet $D/sums)'
check "mv, ln -s, chmod, truncate, rm -rf through the mount" \
	eval 'mv $D/m/copy/dir1 $D/m/copy/moved && [ -d $E/copy/moved ] && [ ! -e $E/copy/dir1 ] &&
	      ln -s moved/f2 $D/m/copy/newlink && [ "$(readlink $E/copy/newlink)" = moved/f2 ] &&
	      chmod 600 $D/m/copy/moved/f3 && [ "$(stat -c %a $E/copy/moved/f3)" = 600 ] &&
	      truncate -s 5 $D/m/copy/moved/f4 && [ "$(stat -c %s $E/copy/moved/f4)" = 5 ] &&
	      rm -rf $D/m/copy/dir5 && [ ! -e $E/copy/dir5 ]'
check "rename with RENAME_EXCHANGE-free overwrite, and a file larger than a read" \
	eval 'head -c 5M /dev/urandom > $D/m/five && mv $D/m/five $D/m/copy/big &&
	      cmp -s $D/m/copy/big $E/copy/big && [ $(stat -c %s $E/copy/big) = 5242880 ]'
check "fio: 4 KiB random writes then verified reads (crc32c), io_uring depth 16" \
	eval 'fio --name=v --filename=$D/m/fio.dat --size=16M --bs=4k --rw=randwrite \
	      --ioengine=io_uring --iodepth=16 --verify=crc32c --do_verify=1 \
	      --output=$D/fio.out > /dev/null && grep -q "err= 0" $D/fio.out'
check "two writers at once (2 queues): both files right" \
	eval 'fio --name=w --directory=$D/m --size=8M --bs=64k --rw=write --numjobs=2 \
	      --ioengine=psync --verify=md5 --do_verify=1 --output=$D/fio2.out > /dev/null &&
	      [ $(grep -c "err= 0" $D/fio2.out) = 2 ]'
check "the server exits 0 on unmount" umount_fs $D/m
check "... both queues served requests" \
	eval 'grep -q "queue 0: [1-9]" $D/h.out && grep -q "queue 1: [1-9]" $D/h.out'

# Read-only: every change refused, nothing changed underneath.
mount_fs $E $D/ro --ro
(cd $E && find . -printf '%p %s %m %T@\n' | sort) > $D/before
check "ro: creating a file is refused" eval '! touch $D/ro/new 2> /dev/null'
check "ro: writing into a file is refused" eval '! sh -c "echo x >> $D/ro/copy/big" 2> /dev/null'
check "ro: mkdir, rm, mv, chmod are refused" \
	eval '! mkdir $D/ro/d 2> /dev/null && ! rm $D/ro/copy/abs 2> /dev/null &&
	      ! mv $D/ro/copy/big $D/ro/x 2> /dev/null && ! chmod 777 $D/ro/copy 2> /dev/null'
check "ro: reading works" cmp -s $D/ro/copy/big $E/copy/big
umount_fs $D/ro
(cd $E && find . -printf '%p %s %m %T@\n' | sort) > $D/after
check "ro: the directory is unchanged" cmp -s $D/before $D/after
finish
