#!/usr/bin/env python3
"""Checks a disk image against the test guests' pattern (guest/runtime/vblk.h).

usage: imgcheck.py IMAGE SEED START END [ZERO_START ZERO_END]
Bytes in [START, END) must hold the pattern for SEED, except those in
[ZERO_START, ZERO_END), which must be zero.  Prints one line; exit 0 if so.
"""
import sys


def pattern(off, seed):
    return (((off >> 9) * 31 + (off & 511) + seed) & 0xff) ^ 0x5a


def main():
    path, seed, start, end = sys.argv[1], *map(int, sys.argv[2:5])
    zs, ze = (int(sys.argv[5]), int(sys.argv[6])) if len(sys.argv) > 6 else (0, 0)
    data = open(path, 'rb').read()
    bad = 0
    for off in range(start, end):
        want = 0 if zs <= off < ze else pattern(off, seed)
        if off >= len(data) or data[off] != want:
            bad += 1
    print(f"{path}: {end - start - bad} of {end - start} bytes as expected")
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
