/* SPDX-License-Identifier: MIT */
/*
 * What RosenBridge's native NDP programs (types `sq` and `cq`) include:
 * their context and return codes.  Programs are C built with
 *   clang -target bpf -O2 -I<rosenbridge>/include -c prog.c
 * `xrp` programs use rosen/xrp.h instead.
 *
 * A `cq` program runs after each storage I/O of a READ_ND/WRITE_ND request
 * completes: it reads the data (and the guest's read-only metadata), may
 * update scratch (returned to the guest), and either returns RB_NDP_OK (the
 * request completes) or fills next_off/next_len[0..n_next) and returns
 * RB_NDP_RESUBMIT.  An `sq` program runs once before the first I/O and may
 * rewrite it (next_off[0]/next_len[0]) or return RB_NDP_OK to skip I/O.
 * Every next I/O is range-checked against the VM's own disk.
 */
#ifndef ROSEN_PROG_H
#define ROSEN_PROG_H

#ifndef __u64
#include <linux/types.h>
#endif

#define RB_NDP_OK 0
#define RB_NDP_RESUBMIT 1

#define RB_NDP_CTX_MAX_NEXT 16

struct rb_ndp_ctx {
	__u64 meta;        /* read-only metadata from the guest */
	__u64 meta_end;
	__u64 data;        /* what the last I/O read (4096-byte buffer) */
	__u64 data_end;
	__u64 scratch;     /* kept across hops, returned to the guest */
	__u64 scratch_end;
	__u64 offset;      /* disk byte offset of the I/O just done */
	__u32 len;         /* its length */
	__u32 hop;         /* I/Os done so far in this request */
	__u32 n_next;      /* set by the program: next I/Os */
	__u32 reserved;
	__u64 next_off[RB_NDP_CTX_MAX_NEXT];
	__u32 next_len[RB_NDP_CTX_MAX_NEXT];
};

#ifndef SEC
#define SEC(name) __attribute__((section(name), used))
#endif

#endif
