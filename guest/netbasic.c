/* netbasic - the net guest without mergeable buffers or multiqueue,
 * sending malformed transmit chains first (see net.c). */
#define NET_BASIC 1
#include "net.c"
