#!/usr/bin/env python3
"""exportio.py - I/O on a file lkvm export serves, for tests/e2e/export.sh.

  exportio.py write FILE MIRROR SEED N
      N random operations on FILE, the same on the raw MIRROR: writes
      (aligned or at any byte), fallocate punch hole and zero range (any
      byte range), fsync.  Then fsync, and every byte of FILE read back
      must equal MIRROR.  Exits 0 if so.
  exportio.py loop FILE SEED
      writes and fsyncs until killed; prints "synced K" after each fsync
      (for the kill -9 test).
"""
import ctypes
import os
import random
import sys

FALLOC_FL_KEEP_SIZE = 1
FALLOC_FL_PUNCH_HOLE = 2
FALLOC_FL_ZERO_RANGE = 16

libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64,
                           ctypes.c_int64]


def fallocate(fd, mode, off, length):
    if libc.fallocate(fd, mode, off, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def op(rng, size):
    kind = rng.random()
    if rng.random() < 0.5:
        length = rng.randrange(1, 33) * 4096
        off = rng.randrange(0, (size - length) // 4096 + 1) * 4096
    else:
        length = rng.randrange(1, 70000)
        off = rng.randrange(0, size - length + 1)
    if kind < 0.6:
        return 'w', off, length
    if kind < 0.75:
        return 'p', off, length
    if kind < 0.9:
        return 'z', off, length
    return 's', 0, 0


def write(path, mirror, seed, n):
    rng = random.Random(seed)
    fd = os.open(path, os.O_RDWR)
    mf = os.open(mirror, os.O_RDWR)
    size = os.fstat(fd).st_size
    for _ in range(n):
        kind, off, length = op(rng, size)
        if kind == 'w':
            data = rng.randbytes(length)
            if os.pwrite(fd, data, off) != length:
                raise SystemExit('short write')
            os.pwrite(mf, data, off)
        elif kind in 'pz':
            mode = (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
                    if kind == 'p' else FALLOC_FL_ZERO_RANGE)
            fallocate(fd, mode, off, length)
            os.pwrite(mf, bytes(length), off)
        else:
            os.fsync(fd)
    os.fsync(fd)
    bad = 0
    for off in range(0, size, 1 << 20):
        a = os.pread(fd, 1 << 20, off)
        b = os.pread(mf, 1 << 20, off)
        if a != b:
            bad += 1
            print('differs in the MiB at %d' % off)
    os.close(fd)
    os.close(mf)
    print('%d operations, %d MiB differ' % (n, bad))
    return 1 if bad else 0


def loop(path, seed):
    rng = random.Random(seed)
    fd = os.open(path, os.O_RDWR)
    size = os.fstat(fd).st_size
    k = 0
    while True:
        for _ in range(16):
            kind, off, length = op(rng, size)
            if kind == 'w':
                os.pwrite(fd, rng.randbytes(length), off)
            elif kind == 'p':
                fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                          off, length)
        os.fsync(fd)
        k += 16
        print('synced %d' % k, flush=True)


if __name__ == '__main__':
    a = sys.argv
    if len(a) == 6 and a[1] == 'write':
        sys.exit(write(a[2], a[3], int(a[4]), int(a[5])))
    if len(a) == 4 and a[1] == 'loop':
        sys.exit(loop(a[2], int(a[3])))
    sys.exit(__doc__)
