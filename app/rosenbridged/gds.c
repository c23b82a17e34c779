/* SPDX-License-Identifier: MIT */
/*
 * rosenbridged --gpu N: the CUDA device GPU regions live on.  The host
 * memory target needs nothing; this only says, once, whether the CUDA one
 * is there.
 */
#include "gds.h"

#include <rosen/gpu.h>
#include <rosen/log.h>

#include <stdbool.h>

void rb_gds_setup(int ordinal)
{
	char err[256];

	if (rb_gpu_cuda_open(ordinal, err, sizeof(err))) {
		rb_warn("rosenbridged", "--gpu %d: %s; REG_GPU with the cuda target answers NO_GPU (the host target works)",
			ordinal, err);
		return;
	}
	rb_info("rosenbridged", "--gpu %d: %s (CUDA driver API loaded at run time)", ordinal,
		rb_gpu_cuda_name());
}
