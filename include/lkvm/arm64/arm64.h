/*
 * arm64.h - state of an arm64 VM, shared by the files of arm64/.
 */
#ifndef LKVM_ARM64_ARM64_H
#define LKVM_ARM64_ARM64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lkvm/pci.h"

struct lkvm;

struct arm64_vm {
	int gic_fd;
	int its_fd;			/* -1: no ITS, so no MSI */
	bool gicv2;
	uint64_t kernel;		/* entry: load address */
	uint64_t fdt;
	uint64_t initrd, initrd_size;
	struct pci_dev host_bridge;
};

int arm64_gic_create(struct lkvm *vm, char *err, size_t errlen);
int arm64_gic_init(struct lkvm *vm, char *err, size_t errlen);
void arm64_gic_free(struct lkvm *vm);
int arm64_pci_init(struct lkvm *vm);
/* The device tree for this VM, in a new buffer; size or -errno. */
long arm64_fdt_build(struct lkvm *vm, uint8_t **blob);
/* MPIDR affinity KVM gives vCPU id (and the DT's cpu reg). */
uint32_t arm64_mpidr(unsigned int id);

#endif
