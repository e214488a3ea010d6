/*
 * vcpu.h - vCPU objects and their threads.  Each vCPU thread runs
 * KVM_RUN and handles PIO/MMIO exits by dispatching to the buses; the
 * control loop stops them with immediate_exit plus a signal.
 */
#ifndef LKVM_VCPU_H
#define LKVM_VCPU_H

#include <stddef.h>

struct lkvm;
struct vcpu;

int vcpus_create(struct lkvm *vm, char *err, size_t errlen);
void vcpus_destroy(struct lkvm *vm);
int vcpus_start(struct lkvm *vm, char *err, size_t errlen);
/* Kicks every vCPU out of KVM_RUN and joins the threads. */
void vcpus_stop(struct lkvm *vm);
/*
 * Takes every running vCPU out of KVM_RUN and keeps it waiting, so
 * its fd is free for ioctls from this thread; -ETIMEDOUT (all released
 * again) if they did not all park in time, -ESRCH if the run is
 * ending.  One caller at a time (ctl_op_lock).
 */
int vcpus_park(struct lkvm *vm, unsigned int timeout_ms);
void vcpus_unpark(struct lkvm *vm);
/* Ends the run with an error carrying a register dump of this vCPU. */
void vcpu_fail(struct vcpu *vcpu, const char *what);

#endif
