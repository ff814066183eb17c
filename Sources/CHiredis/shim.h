#ifndef HERALD_CHIREDIS_SHIM_H
#define HERALD_CHIREDIS_SHIM_H
// Debian's hiredis.pc puts -I/usr/include/hiredis; include by the subfolder so both layouts work.
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#endif
