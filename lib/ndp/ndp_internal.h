/* SPDX-License-Identifier: MIT */
/* What the files of lib/ndp share.  Nothing outside lib/ndp includes it. */
#ifndef ROSEN_NDP_INTERNAL_H
#define ROSEN_NDP_INTERNAL_H

#include <rosen/bpf.h>
#include <rosen/ndp.h>

#include <stdatomic.h>

struct rb_ndp_prog {
	atomic_uint refs;
	uint32_t type;
	uint32_t handle;
	struct rb_bpf_prog *bpf;
};


#endif
