/*
 * batchintx - the batch guest with MSI-X left off, so that on virtio-pci
 * its one interrupt comes as INTx through the I/O APIC.
 */
#define BATCH_INTX 1
#include "batch.c"
