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
	char section[RB_NDP_SECTION_MAX];
	uint64_t loaded_unix_ns;
	/* rb_ndp_prog_account(): once per request, never per run. */
	_Atomic uint64_t requests, runs, hops, executed;
};

/* A registered file: its extent map, immutable once registered (requests
 * read it without the table's lock, holding a reference). */
struct rb_ndp_file {
	atomic_uint refs;
	uint32_t key;
	uint32_t n;           /* extents */
	uint64_t size;        /* bytes */
	struct rb_ndp_extent ext[]; /* validated: rb_ndp_file_check() */
};

/* A VM's GPU regions (gpu.c), hung off its table. */
struct rb_ndp_gpu_set;
struct rb_ndp_gpu_set *rb_ndp_gpu_set_new(void);
void rb_ndp_gpu_set_free(struct rb_ndp_gpu_set *g);
struct rb_ndp_gpu_set *rb_ndp_table_gpu(struct rb_ndp_table *t);
/* gpu.c: the gpu_target helper and a GPU read's verdict (exec.c). */
uint64_t rb_ndp_h_gpu_target(struct rb_bpf_call *call, uint64_t ctx, uint64_t key, uint64_t off,
			     uint64_t a4, uint64_t a5);
int rb_ndp_gpu_verdict(struct rb_ndp_exec *x, unsigned n, const uint64_t *off, const uint32_t *len);
int rb_ndp_exec_done(struct rb_ndp_exec *x, uint32_t status);

#endif
