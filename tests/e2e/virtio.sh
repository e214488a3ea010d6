#!/usr/bin/env bash
# End to end: the test guests drive lkvm's virtio devices with their own
# small driver (guest/runtime/virtio.c), on virtio-pci (MSI-X and INTx)
# and virtio-mmio, with KVM's fast paths and without them.
. "$(dirname "$0")/common.bash"
need_kvm

notify_exits() { sed -n 's/.* notify \([0-9]*\);.*/\1/p' <<< "$ERR"; }

for tr in pci mmio; do
	T="--virtio-transport $tr"
	lkvm_run run -k $GUESTS/rng.bin --rng --stats $T
	check "$tr: rng guest exits 0" [ "$STATUS" -eq 0 ]
	check "$tr: 4 KiB of varied entropy, plain and indirect, one interrupt each" \
		has "$OUT" "rng: 2 x 4096 bytes"
	check "$tr: rng queue notifies never exit to lkvm (notify $(notify_exits))" \
		[ "$(notify_exits)" = 0 ]

	lkvm_run run -k $GUESTS/batch.bin --rng --stats $T
	check "$tr: batch guest exits 0" [ "$STATUS" -eq 0 ]
	check "$tr: 64 requests, one kick: exactly one interrupt (EVENT_IDX)" \
		has "$OUT" "batch: 64 requests completed, 1 interrupt(s)"
	check "$tr: batch notifies never exit (notify $(notify_exits))" [ "$(notify_exits)" = 0 ]
	[ $tr = pci ] && check "pci: the guest moved BAR0 first (ioeventfds followed it)" \
		has "$OUT" "batch: BAR0 moved from"

	lkvm_run run -k $GUESTS/batch.bin --rng --stats --no-fastpath $T
	check "$tr, no ioeventfd/irqfd: batch still gets exactly one interrupt" \
		has "$OUT" "batch: 64 requests completed, 1 interrupt(s)"
	check "$tr, no ioeventfd: the one kick exits and is counted" [ "$(notify_exits)" = 1 ]

	lkvm_run run -k $GUESTS/hostile.bin --rng $T
	check "$tr: hostile guest: VMM survives, guest exits 0" [ "$STATUS" -eq 0 ]
	check "$tr: every malformed chain gives NEEDS_RESET, device recovers" \
		has "$OUT" "hostile: 10 of 10 malformed chains rejected"
	check "$tr: the error is logged once, not per chain" \
		[ "$(grep -c 'needs reset' <<< "$ERR")" -eq 1 ]

	printf 'ping me\n' | timeout 30 $LKVM run -k $GUESTS/vconsole.bin --console virtio $T > "$TMP/vcon" 2>&1
	STATUS=$?
	check "$tr: virtio-console guest exits 0" [ "$STATUS" -eq 0 ]
	check "$tr: virtio-console output reaches stdout" grep -q "vconsole: hello from virtio-console" "$TMP/vcon"
	check "$tr: piped input reaches the guest through virtio-console" grep -q "vconsole: got PING ME" "$TMP/vcon"
done

lkvm_run run -k $GUESTS/rng.bin --rng
check "pci is the default transport, with MSI-X" has "$OUT" "(virtio-pci, MSI-X)"

lkvm_run run -k $GUESTS/batchintx.bin --rng --stats --virtio-transport pci
check "pci INTx (MSI-X off): one level interrupt for the batch" \
	has "$OUT" "batch: 64 requests completed, 1 interrupt(s)"
lkvm_run run -k $GUESTS/batchintx.bin --rng --no-fastpath --virtio-transport pci
check "pci INTx through KVM_IRQ_LINE: still one interrupt" \
	has "$OUT" "batch: 64 requests completed, 1 interrupt(s)"

for fp in "" --no-fastpath; do
	lkvm_run run -k $GUESTS/msix.bin --rng $fp
	check "msix ${fp:-(irqfd)}: guest exits 0" [ "$STATUS" -eq 0 ]
	check "msix ${fp:-(irqfd)}: a masked vector sets its PBA bit, no interrupt" \
		has "$OUT" "masked vector held its interrupt, PBA bit set"
	check "msix ${fp:-(irqfd)}: unmasking delivers the pending interrupt once" \
		has "$OUT" "pending interrupt delivered once"
	check "msix ${fp:-(irqfd)}: a re-programmed vector is re-routed" \
		has "$OUT" "re-programmed vector re-routed (A 1, B 1)"
done

lkvm_run run -k $GUESTS/rng.bin
check "without --rng the guest finds no device" has "$OUT" "no virtio-rng device"

lkvm_run run -k $GUESTS/hello.bin --rng --console virtio
check "virtio devices do not disturb a guest that ignores them" [ "$STATUS" -eq 0 ]

lkvm_run run -k $GUESTS/hello.bin --virtio-transport ccw
check "an unknown transport is a usage error" [ "$STATUS" -eq 2 ]
check "the usage error names the supported transports" has "$ERR" "supported: mmio, pci"

finish
