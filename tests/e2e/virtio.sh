#!/usr/bin/env bash
# End to end: the test guests drive lkvm's virtio devices over
# virtio-mmio with their own small driver (guest/runtime/virtio.c).
. "$(dirname "$0")/common.bash"
need_kvm

notify_exits() { sed -n 's/.* notify \([0-9]*\);.*/\1/p' <<< "$ERR"; }

lkvm_run run -k $GUESTS/rng.bin --rng --stats
check "rng guest exits 0" [ "$STATUS" -eq 0 ]
check "rng: 4 KiB of varied entropy, plain and indirect, one interrupt each" \
	has "$OUT" "rng: 2 x 4096 bytes"
check "rng: queue notifies never exit to lkvm (notify $(notify_exits))" [ "$(notify_exits)" = 0 ]

lkvm_run run -k $GUESTS/batch.bin --rng --stats
check "batch guest exits 0" [ "$STATUS" -eq 0 ]
check "64 requests, one kick: exactly one interrupt (EVENT_IDX)" \
	has "$OUT" "batch: 64 requests completed, 1 interrupt(s)"
check "batch: notifies never exit (notify $(notify_exits))" [ "$(notify_exits)" = 0 ]

lkvm_run run -k $GUESTS/hostile.bin --rng
check "hostile guest: VMM survives, guest exits 0" [ "$STATUS" -eq 0 ]
check "every malformed chain gives NEEDS_RESET, device recovers" \
	has "$OUT" "hostile: 10 of 10 malformed chains rejected"
check "the error is logged once, not per chain" [ "$(grep -c 'needs reset' <<< "$ERR")" -eq 1 ]

printf 'ping me\n' | timeout 30 $LKVM run -k $GUESTS/vconsole.bin --console virtio > "$TMP/vcon" 2>&1
STATUS=$?
check "virtio-console guest exits 0" [ "$STATUS" -eq 0 ]
check "virtio-console output reaches stdout" grep -q "vconsole: hello from virtio-console" "$TMP/vcon"
check "piped input reaches the guest through virtio-console" grep -q "vconsole: got PING ME" "$TMP/vcon"

lkvm_run run -k $GUESTS/rng.bin
check "without --rng the guest finds no device" has "$OUT" "no virtio-rng device"

lkvm_run run -k $GUESTS/hello.bin --rng --console virtio
check "virtio devices do not disturb a guest that ignores them" [ "$STATUS" -eq 0 ]

lkvm_run run -k $GUESTS/hello.bin --virtio-transport pci
check "unsupported transport is a usage error" [ "$STATUS" -eq 2 ]

finish
