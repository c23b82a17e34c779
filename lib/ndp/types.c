/* SPDX-License-Identifier: MIT */
/*
 * The NDP program types as the verifier sees them: what each context holds
 * (include/rosen/prog.h for sq/cq, include/rosen/xrp.h for xrp), the buffers
 * its pointers lead to and the helpers each may call.  exec.c grants exactly
 * these buffers at run time, with at least these sizes; this file and
 * exec.c change together.
 */
#include "ndp_internal.h"

#include <stddef.h>
#include <string.h>

enum { REG_META, REG_DATA, REG_SCRATCH };

static const struct rb_bpf_region_type native_regions[] = {
	[REG_META] = {"meta", RB_NDP_MAX_META, false},
	[REG_DATA] = {"data", RB_NDP_MAX_DATA, true},
	[REG_SCRATCH] = {"scratch", RB_NDP_MAX_SCRATCH, true},
};

#define R RB_BPF_ACC_READ
#define RW (RB_BPF_ACC_READ | RB_BPF_ACC_WRITE)
#define FIELD(st, name, n, acc) \
	{#name, offsetof(struct st, name), sizeof(((struct st *)0)->name) / (n), n, acc, \
	 RB_BPF_FIELD_SCALAR, 0}
#define PTR(st, name, kind, region) \
	{#name, offsetof(struct st, name), 8, 1, R, kind, region}

static const struct rb_bpf_ctx_field native_fields[] = {
	PTR(rb_ndp_ctx, meta, RB_BPF_FIELD_PTR, REG_META),
	PTR(rb_ndp_ctx, meta_end, RB_BPF_FIELD_PTR_END, REG_META),
	PTR(rb_ndp_ctx, data, RB_BPF_FIELD_PTR, REG_DATA),
	PTR(rb_ndp_ctx, data_end, RB_BPF_FIELD_PTR_END, REG_DATA),
	PTR(rb_ndp_ctx, scratch, RB_BPF_FIELD_PTR, REG_SCRATCH),
	PTR(rb_ndp_ctx, scratch_end, RB_BPF_FIELD_PTR_END, REG_SCRATCH),
	FIELD(rb_ndp_ctx, offset, 1, R),
	FIELD(rb_ndp_ctx, len, 1, R),
	FIELD(rb_ndp_ctx, hop, 1, R),
	FIELD(rb_ndp_ctx, n_next, 1, RW),
	FIELD(rb_ndp_ctx, next_off, RB_NDP_CTX_MAX_NEXT, RW),
	FIELD(rb_ndp_ctx, next_len, RB_NDP_CTX_MAX_NEXT, RW),
};

#define ARG_CTX {RB_BPF_ARG_CTX, 0, 0, false}
#define ARG_NUM {RB_BPF_ARG_SCALAR, 0, 0, false}

static const struct rb_bpf_helper_proto native_helpers[] = {
	{RB_NDP_HELPER_GET_SQE, "rb_ndp_get_sqe",
	 /* fills its out-buffer, or zeroes it on failure (exec.c) */
	 {ARG_CTX, ARG_NUM, {RB_BPF_ARG_MEM_W, 0, sizeof(struct rb_ndp_sqe), true}}, RB_BPF_RET_SCALAR, 0,
	 false, NULL},
	{RB_NDP_HELPER_NEW_SQE, "rb_ndp_new_sqe", {ARG_CTX}, RB_BPF_RET_SCALAR, 0, false, NULL},
	{RB_NDP_HELPER_SET_SQE, "rb_ndp_set_sqe", {ARG_CTX, ARG_NUM, ARG_NUM, ARG_NUM},
	 RB_BPF_RET_SCALAR, 0, false, NULL},
	{RB_NDP_HELPER_DISK_TRANS, "rb_ndp_disk_trans", {ARG_CTX, ARG_NUM}, RB_BPF_RET_SCALAR, 0,
	 false, NULL},
	/* mem_trans(ctx, key, off, len): NULL or len bytes of registered
	 * guest memory. */
	{RB_NDP_HELPER_MEM_TRANS, "rb_ndp_mem_trans", {ARG_CTX, ARG_NUM, ARG_NUM, ARG_NUM},
	 RB_BPF_RET_MEM_OR_NULL, 4, true, "guest memory"},
	/* gpu_target(ctx, key, off): sq only (last, so cq's table stops
	 * before it).  Scalars in, a scalar out: the program never holds a
	 * pointer to a region, so there is nothing for it to dereference. */
	{RB_NDP_HELPER_GPU_TARGET, "rb_ndp_gpu_target", {ARG_CTX, ARG_NUM, ARG_NUM}, RB_BPF_RET_SCALAR,
	 0, false, NULL},
};
#define N_NATIVE_HELPERS (sizeof(native_helpers) / sizeof(native_helpers[0]))
_Static_assert(RB_NDP_HELPER_GPU_TARGET == 205, "gpu_target is the last native helper");

static const struct rb_bpf_type sq_type = {
	"sq", sizeof(struct rb_ndp_ctx), native_regions, 3, native_fields,
	sizeof(native_fields) / sizeof(native_fields[0]), native_helpers,
	sizeof(native_helpers) / sizeof(native_helpers[0]),
};

static const struct rb_bpf_type cq_type = {
	"cq", sizeof(struct rb_ndp_ctx), native_regions, 3, native_fields,
	sizeof(native_fields) / sizeof(native_fields[0]), native_helpers,
	N_NATIVE_HELPERS - 1, /* all but gpu_target */
};

/* XRP: {char *data; int done; u64 next_addr[16]; u64 size[16]; char *scratch;} */
static const struct rb_bpf_region_type xrp_regions[] = {
	{"data", XRP_DATA_SIZE, true},
	{"scratch", XRP_SCRATCH_SIZE, true},
};

static const struct rb_bpf_ctx_field xrp_fields[] = {
	PTR(bpf_xrp, data, RB_BPF_FIELD_PTR, 0),
	FIELD(bpf_xrp, done, 1, RW),
	FIELD(bpf_xrp, next_addr, XRP_MAX_NEXT, RW),
	FIELD(bpf_xrp, size, XRP_MAX_NEXT, RW),
	PTR(bpf_xrp, scratch, RB_BPF_FIELD_PTR, 1),
};

/* XRP programs call no NDP helper (XRP's interface has none). */
static const struct rb_bpf_type xrp_type = {
	"xrp", sizeof(struct bpf_xrp), xrp_regions, 2, xrp_fields,
	sizeof(xrp_fields) / sizeof(xrp_fields[0]), NULL, 0,
};

_Static_assert(XRP_DATA_SIZE <= RB_NDP_MAX_DATA && XRP_SCRATCH_SIZE <= RB_NDP_MAX_SCRATCH,
	       "exec.c grants the xrp buffers at least their verified sizes");

const struct rb_bpf_type *rb_ndp_bpf_type(uint32_t prog_type)
{
	switch (prog_type) {
	case RB_NDP_PROG_SQ: return &sq_type;
	case RB_NDP_PROG_CQ: return &cq_type;
	case RB_NDP_PROG_XRP: return &xrp_type;
	}
	return NULL;
}

const char *rb_ndp_prog_type_name(uint32_t prog_type)
{
	const struct rb_bpf_type *t = rb_ndp_bpf_type(prog_type);

	return t ? t->name : "?";
}

uint32_t rb_ndp_prog_type_parse(const char *name)
{
	for (uint32_t i = RB_NDP_PROG_SQ; i <= RB_NDP_PROG_XRP; i++)
		if (!strcmp(name, rb_ndp_prog_type_name(i)))
			return i;
	return 0;
}
