/* SPDX-License-Identifier: MIT */
/*
 * The context of XRP programs, so that an existing XRP program (BPF-KV's
 * lookup and range programs) builds unchanged for RosenBridge's `xrp`
 * program type:
 *   clang -target bpf -O2 -include rosen/xrp.h -c prog.c
 * `data` points at a 4096-byte buffer where each 512-byte read lands at the
 * start; `scratch` at a 4096-byte buffer kept across hops and returned to the
 * caller.  Set done = 1 to finish, or next_addr[0]/size[0] for the next read.
 * The same layout is used on the host (x86-64), where pointers are 64-bit too.
 */
#ifndef ROSEN_XRP_H
#define ROSEN_XRP_H

#ifndef __u64
#include <linux/types.h>
#endif

#define XRP_DATA_SIZE 4096
#define XRP_SCRATCH_SIZE 4096
#define XRP_MAX_NEXT 16

struct bpf_xrp {
	char *data;
	int done;
	__u64 next_addr[XRP_MAX_NEXT];
	__u64 size[XRP_MAX_NEXT];
	char *scratch;
};

#endif
