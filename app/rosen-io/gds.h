/* SPDX-License-Identifier: MIT */
/* rosen-io's gds-read command (gds.c) and what it shares with main.c. */
#ifndef ROSEN_IO_GDS_H
#define ROSEN_IO_GDS_H

#include <rosen/guest.h>

#include <stdint.h>

int parse_aligned(const char *what, const char *s, uint64_t *out);
/* Loads section of a program object (a path, or a bare name found among
 * the project's programs) on queue 0: 0, or -1 with a message printed. */
int load_prog(struct rb_guest_dev *d, const char *obj_name, const char *section, uint32_t type,
	      uint32_t *handle);
/* rosen-io URI gds-read OFFSET LENGTH [--target host|cuda]: 0 when the
 * region's CRC-32 matches the range's, 1 otherwise, 2 on bad arguments. */
int cmd_gds_read(struct rb_guest_dev *d, int argc, char **argv);

#endif
