# Test guests: freestanding x86_64 kernels linked at 0x10000, each built
# as a flat binary (guest/build/NAME.bin) and a PVH ELF (NAME.elf).
# The flags keep the compiler away from instructions this machine's KVM
# cannot emulate (README, "Measured here").
GUEST_CC ?= gcc
GUEST_LD ?= ld
GUEST_OBJCOPY ?= objcopy
GUEST_CFLAGS := -O2 -std=gnu11 -Wall -Wextra -Werror -ffreestanding -nostdlib \
	-mgeneral-regs-only -mno-red-zone -mno-popcnt -mno-bmi -mno-bmi2 \
	-mno-movbe -fno-pic -fno-pie -fno-stack-protector -fno-builtin \
	-fno-asynchronous-unwind-tables -fcf-protection=none -Iguest
GUESTS := hello exitcode spin smp irq panic reboot triple echo emufail \
	rng batch batchintx msix vconsole hostile blk blkro blkmq net netbasic \
	counter sysrq acpioff vsock usernet fs fshostile
GUEST_RT := guest/build/rt/entry.o guest/build/rt/vectors.o guest/build/rt/lib.o \
	guest/build/rt/virtio.o guest/build/rt/vblk.o

guests: $(GUESTS:%=guest/build/%.bin) $(GUESTS:%=guest/build/%.elf)

guest/build/rt/%.o: guest/runtime/%.S
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<

guest/build/rt/%.o: guest/runtime/%.c guest/runtime/guest.h guest/runtime/virtio.h guest/runtime/vblk.h
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<

guest/build/%.o: guest/%.c guest/runtime/guest.h guest/runtime/virtio.h guest/runtime/vblk.h
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<

guest/build/%.elf: guest/build/%.o $(GUEST_RT) guest/runtime/link.ld
	$(GUEST_LD) -nostdlib -static -z noexecstack -z max-page-size=4096 --no-warn-rwx-segments \
		-T guest/runtime/link.ld -o $@ $(GUEST_RT) $<

guest/build/%.bin: guest/build/%.elf
	$(GUEST_OBJCOPY) -O binary $< $@

# netbasic is net.c built with NET_BASIC.
guest/build/netbasic.o: guest/net.c
guest/build/fshostile.o: guest/fs.c

.SECONDARY: $(GUESTS:%=guest/build/%.o) $(GUEST_RT)
