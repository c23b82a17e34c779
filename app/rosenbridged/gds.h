/* SPDX-License-Identifier: MIT */
/* rosenbridged's RosenGDS set-up (docs/gds.md). */
#ifndef ROSENBRIDGED_GDS_H
#define ROSENBRIDGED_GDS_H

/* Opens CUDA device `ordinal` for GPU regions and logs what it found; a
 * missing GPU or libcuda is a warning (GPU requests then answer NO_GPU),
 * never an exit. */
void rb_gds_setup(int ordinal);

#endif
