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

/* One I/O as the helpers describe it. */
struct rb_ndp_sqe {
	__u64 off; /* byte offset on the VM's disk */
	__u32 len; /* bytes */
	__u32 reserved;
};

#define RB_NDP_SQE_CURRENT 0xffffffffu

/*
 * Helpers (ids 200..205).  They range-check as they go, so a program learns
 * of a bad I/O when it asks, not only when the request ends.  A failing
 * helper changes nothing but what it documents: an out-buffer is filled on
 * success and zeroed on failure, never left holding older bytes.
 *   get_sqe:    copies the current I/O (idx RB_NDP_SQE_CURRENT) or next I/O
 *               idx into *out; 0, or -22 (EINVAL: no such slot; *out zeroed)
 *   new_sqe:    adds a next I/O slot, zeroed; its index, or -28 (ENOSPC:
 *               all 16 taken)
 *   set_sqe:    sets next I/O idx; the offset is checked against this VM's
 *               disk (512-aligned, len 512..4096); 0, -22 (no such slot) or
 *               -34 (ERANGE); on failure the slot is unchanged
 *   disk_trans: the host offset of a disk offset (identity on a raw image),
 *               or (__u64)-34 when it is outside the disk
 *   mem_trans:  (id 204) a pointer into guest memory the VM registered, or
 *               NULL (unknown key, range outside the registration)
 *   gpu_target: (id 205, sq programs only) on a GPU read (RB_NDP_IO_F_GPU,
 *               rosen/virtio_ndp.h), the read (next I/O 0) lands at [off,
 *               off + its length) of the VM's GPU or host region `key`
 *               (REG_GPU) instead of a buffer; the program never gets a
 *               pointer to it.  0, or -22 (EINVAL: not a GPU read), -2
 *               (ENOENT: no region with that key on this VM), -116
 *               (ESTALE: a key from before the daemon restarted), -34
 *               (ERANGE: off not a multiple of 512, or the range leaves the
 *               region).  Checked again, against the final length, when the
 *               program returns.
 * They serve sq and cq programs (gpu_target: sq only); the verifier
 * refuses an xrp program that calls one.
 */
#ifdef __bpf__
static long (*const rb_ndp_get_sqe)(struct rb_ndp_ctx *ctx, __u32 idx,
				    struct rb_ndp_sqe *out) = (void *)200;
static long (*const rb_ndp_new_sqe)(struct rb_ndp_ctx *ctx) = (void *)201;
static long (*const rb_ndp_set_sqe)(struct rb_ndp_ctx *ctx, __u32 idx, __u64 off,
				    __u32 len) = (void *)202;
static __u64 (*const rb_ndp_disk_trans)(struct rb_ndp_ctx *ctx, __u64 off) = (void *)203;
/* mem_trans: a pointer to [off, off + len) of the guest memory registered
 * under key (REG_MEM), or 0 (NULL) when it is not inside it. */
static void *(*const rb_ndp_mem_trans)(struct rb_ndp_ctx *ctx, __u32 key, __u64 off,
				       __u64 len) = (void *)204;
static long (*const rb_ndp_gpu_target)(struct rb_ndp_ctx *ctx, __u32 key, __u64 off) = (void *)205;
#endif
#define RB_NDP_HELPER_GET_SQE 200
#define RB_NDP_HELPER_NEW_SQE 201
#define RB_NDP_HELPER_SET_SQE 202
#define RB_NDP_HELPER_DISK_TRANS 203
#define RB_NDP_HELPER_MEM_TRANS 204
#define RB_NDP_HELPER_GPU_TARGET 205

#ifndef SEC
#define SEC(name) __attribute__((section(name), used))
#endif

#endif
