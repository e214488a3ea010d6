#!/usr/bin/env bash
# End to end: ./lkvm boots every test guest and the exit status and
# console output are what the guest did.
. "$(dirname "$0")/common.bash"
need_kvm

lkvm_run run -k $GUESTS/hello.bin -m 64 -c 1
check "hello exits 0" [ "$STATUS" -eq 0 ]
check "hello prints its line" has "$OUT" "Hello from the lkvm test guest: 1 CPU(s)"

lkvm_run run -k $GUESTS/hello.elf -m 64 -c 3
check "hello as PVH ELF exits 0" [ "$STATUS" -eq 0 ]
check "hello as PVH ELF sees 3 CPUs" has "$OUT" "Hello from the lkvm test guest: 3 CPU(s)"

lkvm_run run -k $GUESTS/hello.bin -m 4G -c 1
check "hello with 4 GiB (RAM above the hole) exits 0" [ "$STATUS" -eq 0 ]

lkvm_run run -k $GUESTS/exitcode.bin
check "exitcode gives status 42" [ "$STATUS" -eq 42 ]
check "exitcode prints" has "$OUT" "leaving with status 42"

for n in 2 4; do
	lkvm_run run -k $GUESTS/smp.bin -c $n
	check "smp -c $n exits 0" [ "$STATUS" -eq 0 ]
	check "smp -c $n reports all CPUs" has "$OUT" "smp: $n of $n CPUs online"
	check "smp -c $n: APIC ID $((n - 1)) came up" has "$OUT" "APIC ID $((n - 1))"
done

lkvm_run run -k $GUESTS/irq.bin
check "irq exits 0" [ "$STATUS" -eq 0 ]
check "irq: LAPIC timer" has "$OUT" "irq: 5 local APIC timer interrupts"
check "irq: PIT through IOAPIC" has "$OUT" "irq: 5 PIT interrupts through I/O APIC pin 0"

lkvm_run run -k $GUESTS/panic.bin
check "pvpanic gives status 123" [ "$STATUS" -eq 123 ]
check "pvpanic found on PCI" has "$OUT" "pvpanic at 00:"
check "pvpanic reported on stderr" has "$ERR" "panic"

lkvm_run run -k $GUESTS/reboot.bin
check "i8042 reset ends the run with 0" [ "$STATUS" -eq 0 ]
check "i8042 reset stops the guest at once" lacks "$OUT" "still running"

lkvm_run run -k $GUESTS/triple.bin
check "triple fault gives status 1" [ "$STATUS" -eq 1 ]
check "triple fault is named" has "$ERR" "triple fault"
check "triple fault dumps registers" has "$ERR" "cr2 1000000000"

lkvm_run run -k $GUESTS/emufail.bin
if [ "$STATUS" -eq 3 ]; then
	skip_env "emulation failure: this KVM emulates xgetbv"
else
	check "emulation failure gives status 1" [ "$STATUS" -eq 1 ]
	check "emulation failure is named" has "$ERR" "emulation failed"
	check "failing instruction bytes shown" has "$ERR" ": 0f 01 d0"
fi

lkvm_run run -k $GUESTS/spin.bin --timeout 2
check "timeout gives status 124" [ "$STATUS" -eq 124 ]
check "timeout after about 2 s ($ELAPSED ms)" [ "$ELAPSED" -ge 1900 -a "$ELAPSED" -lt 4000 ]
check "timeout reported" has "$ERR" "timed out after 2000 ms"

lkvm_run run -k $GUESTS/spin.bin --timeout 0.3 --stats
check "sub-second timeout" [ "$STATUS" -eq 124 -a "$ELAPSED" -lt 2000 ]
check "--stats prints exit counters" has "$ERR" "lkvm: exits: io"

# Console input from a pipe.
printf 'hello\nworld\nquit\n' | timeout 30 $LKVM run -k $GUESTS/echo.bin > "$TMP/echo" 2>&1
STATUS=$?
check "echo guest exits 0 on 'quit'" [ "$STATUS" -eq 0 ]
check "piped input reaches the guest" grep -q "echo: HELLO" "$TMP/echo"
check "second line too" grep -q "echo: WORLD" "$TMP/echo"

# --log copies the console.
lkvm_run run -k $GUESTS/hello.bin --log "$TMP/console.log"
check "--log file holds the console" grep -q "Hello from the lkvm test guest" "$TMP/console.log"

# Signals end the run cleanly with 128+signal.
timeout 30 $LKVM run -k $GUESTS/spin.bin > /dev/null 2>&1 < /dev/null &
pid=$!
sleep 0.5
kill -TERM $pid
wait $pid
STATUS=$?
check "SIGTERM ends lkvm with 143" [ "$STATUS" -eq 143 ]

finish
