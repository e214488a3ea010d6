/*
 * machine.h - assembling a VM from its configuration: which devices the
 * configuration asks for, in which order, and what they share.  This is
 * the boundary layer: it knows the core (vmm/), every device type and
 * the arch; nothing below it knows it.
 *
 * A device type is one file (its device and a struct device_type) plus
 * one line in machine.c's table.  Types are created in table order, each
 * placing its devices itself (virtio_device_register for virtio ones).
 *
 * Threads: everything here runs on the thread creating the VM.
 */
#ifndef LKVM_MACHINE_H
#define LKVM_MACHINE_H

#include <stdbool.h>
#include <stddef.h>

#include "lkvm.h"

struct lkvm;
struct iothread;

struct machine {
	struct lkvm *vm;
	const struct lkvm_config *cfg;
	struct iothread *lowrate;	/* see machine_lowrate() */
};

enum device_arg {
	DEVICE_ARG_NONE,		/* --NAME */
	DEVICE_ARG_OPTIONAL,		/* --NAME or --NAME=OPTIONS */
	DEVICE_ARG_REQUIRED,		/* --NAME OPTIONS */
};

struct device_type {
	/* Its word in lkvm_config.devices ("NAME" or "NAME,OPTIONS"). */
	const char *name;
	/* A command-line option --NAME with this help text; NULL: none
	 * (the type has options of its own, such as -d). */
	const char *help;
	enum device_arg arg;
	/* Optional: checks one spec's OPTIONS (a usage error if bad). */
	int (*check)(const char *options, char *err, size_t errlen);
	/* Creates every device of this type the configuration asks for. */
	int (*create)(struct machine *m, char *err, size_t errlen);
};

/*
 * The thread shared by low-rate queues (rng, console, network control),
 * made on first ask and run as a device of its own.
 */
struct iothread *machine_lowrate(struct machine *m, char *err, size_t errlen);

/*
 * The i-th spec in cfg.devices naming type `name`: its OPTIONS ("" when
 * it has none), or NULL past the last one.
 */
const char *machine_device_spec(const struct lkvm_config *cfg,
				const char *name, unsigned int i);

/* Creates every device the VM's configuration asks for. */
int machine_create_devices(struct lkvm *vm, char *err, size_t errlen);

/* What the default kernel command line depends on (cmdline.c). */
struct cmdline_defaults_in {
	bool virtio_console;		/* console=hvc0, else serial_args */
	const char *serial_args;	/* "console=ttyS0 ..." (the arch's) */
	bool root_disk_rw;		/* the first disk is writable */
	bool reboot_k;			/* x86 without ACPI */
	const char *user;		/* the user's -p, or "" */
};

/* Writes the defaults into buf; their length, or -1 if they don't fit. */
int cmdline_defaults(const struct cmdline_defaults_in *in, char *buf,
		     size_t len);

#endif
