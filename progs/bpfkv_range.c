/* SPDX-License-Identifier: MIT */
/*
 * BPF-KV range queries as a native `cq` program: [begin, end] with
 * inclusive/exclusive bounds, up to 32 key/value pairs per call or a SUM,
 * resumable (struct bpfkv_range_scratch, progs/bpfkv_prog.h).  Walks root ->
 * leaf, then reads value blocks (one per up to 8 keys) and the next leaves.
 */
#include <rosen/prog.h>

#include "bpfkv_prog.h"

SEC("bpfkv_range")
int bpfkv_range_prog(struct rb_ndp_ctx *ctx)
{
	struct bpfkv_range_scratch *s = (struct bpfkv_range_scratch *)ctx->scratch;
	unsigned long long next = 0;

	if (bpfkv_range_step((const unsigned char *)ctx->data, s, &next))
		return RB_NDP_OK;
	ctx->n_next = 1;
	ctx->next_off[0] = next;
	ctx->next_len[0] = BPFKV_BLOCK_SIZE;
	return RB_NDP_RESUBMIT;
}

char LICENSE[] SEC("license") = "MIT";
