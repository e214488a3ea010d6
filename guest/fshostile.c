/* fshostile: fs.c with malformed requests and escape attempts. */
#define FS_HOSTILE 1
#include "fs.c"
