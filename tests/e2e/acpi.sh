#!/usr/bin/env bash
# End to end: x86 ACPI.  Without KVM: the option checks.  With KVM: the
# acpioff guest powers off through the FADT's sleep registers (exit 0),
# finds no RSDP with --no-acpi, and --dump-acpi writes tables iasl
# disassembles without errors or warnings.
. "$(dirname "$0")/common.bash"

lkvm_run run -k $GUESTS/hello.bin --no-acpi --dump-acpi "$TMP/x"
check "--dump-acpi with --no-acpi: a usage error" \
	eval '[ "$STATUS" -eq 2 ] && has "$ERR" "needs ACPI tables"'

need_kvm

lkvm_run run -k $GUESTS/acpioff.bin
check "acpioff powers off through the ACPI sleep registers: exit 0" \
	eval '[ "$STATUS" -eq 0 ] && has "$OUT" "S5 SLP_TYP 5: powering off"'
lkvm_run run -k $GUESTS/acpioff.bin -c 4 --virtio-transport mmio --rng
check "acpioff with 4 vCPUs and virtio-mmio devices: exit 0" [ "$STATUS" -eq 0 ]
lkvm_run run -k $GUESTS/acpioff.bin --no-acpi
check "--no-acpi: the guest finds no RSDP (exit 3)" \
	eval '[ "$STATUS" -eq 3 ] && has "$OUT" "acpioff: no RSDP"'
if command -v iasl > /dev/null; then
	lkvm_run run -k $GUESTS/hello.bin -c 2 --virtio-transport mmio --rng --dump-acpi "$TMP/acpi"
	check "--dump-acpi writes XSDT, FACP, DSDT and APIC" \
		eval '[ "$STATUS" -eq 0 ] && [ "$(cd "$TMP/acpi" && ls | tr "\n" " ")" = "APIC.dat DSDT.dat FACP.dat XSDT.dat " ]'
	IASL=$(cd "$TMP/acpi" && for f in *.dat; do iasl -d "$f" 2>&1; done)
	check "iasl disassembles every table without errors or warnings" \
		eval '! grep -qiE "error|warning|\*\*\*\*" <<< "$IASL"'
	check "the DSDT lists COM1, the virtio-mmio devices and the PCI host bridge" \
		eval 'grep -q "PNP0501" "$TMP/acpi/DSDT.dsl" && grep -q "LNRO0005" "$TMP/acpi/DSDT.dsl" && grep -q "PNP0A03" "$TMP/acpi/DSDT.dsl"'
else
	skip_tool iasl acpica-tools
fi

# The default command line of a kernel that takes one (hello.elf boots
# through PVH, as a vmlinux does).
truncate -s 1M "$TMP/disk.img"
lkvm_run run --debug -k $GUESTS/hello.elf -d "$TMP/disk.img" -p "quiet"
check "--debug prints the command line: console=ttyS0, root=/dev/vda rw, then the user's" \
	has "$ERR" "kernel command line: console=ttyS0 earlyprintk=serial root=/dev/vda rw panic=-1 quiet"
lkvm_run run --debug -k $GUESTS/hello.elf -d "$TMP/disk.img" -p "quiet" --nodefaults
check "--nodefaults: only the user's words" has "$ERR" "kernel command line: quiet"
lkvm_run run --debug -k $GUESTS/hello.elf -d "$TMP/disk.img,ro" --no-acpi
check "a read-only first disk: no root=; without ACPI: reboot=k" \
	has "$ERR" "kernel command line: console=ttyS0 earlyprintk=serial panic=-1 reboot=k"
finish
