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
	/* vCPU features (features.c), chosen at creation. */
	bool sve, ptrauth, pmu, pvtime;
	void *pvtime_map;		/* the stolen-time slot's memory */
};

/* KVM_SET_DEVICE_ATTR on a device or vCPU fd: 0 or -errno. */
int arm64_set_attr(int fd, uint32_t group, uint64_t attr, void *val);
int arm64_gic_create(struct lkvm *vm, char *err, size_t errlen);
int arm64_gic_init(struct lkvm *vm, char *err, size_t errlen);
void arm64_gic_free(struct lkvm *vm);
int arm64_pci_init(struct lkvm *vm);
/* The device tree for this VM, in a new buffer; size or -errno. */
long arm64_fdt_build(struct lkvm *vm, uint8_t **blob);
struct kvm_vcpu_init;
struct vcpu;
void arm64_features_choose(struct lkvm *vm);
int arm64_pvtime_map(struct lkvm *vm);
void arm64_pvtime_unmap(struct arm64_vm *a);
void arm64_features_init_bits(struct lkvm *vm, struct kvm_vcpu_init *init);
int arm64_features_vcpu(struct vcpu *v, char *err, size_t errlen);
int arm64_features_vgic_ready(struct lkvm *vm, char *err, size_t errlen);
/* MPIDR affinity KVM gives vCPU id (and the DT's cpu reg). */
uint32_t arm64_mpidr(unsigned int id);

#endif
