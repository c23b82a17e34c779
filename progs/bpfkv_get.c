/* SPDX-License-Identifier: MIT */
/*
 * BPF-KV batched point lookups as a native `cq` program: scratch holds up
 * to 32 keys (struct bpfkv_get_scratch, progs/bpfkv_prog.h); the first read
 * is the root; every key is walked to its leaf, its value read and copied
 * into scratch, then the next key starts at the root again.  One READ_ND
 * answers the whole batch.
 */
#include <rosen/prog.h>

#include "bpfkv_prog.h"

SEC("bpfkv_get")
int bpfkv_get_prog(struct rb_ndp_ctx *ctx)
{
	struct bpfkv_get_scratch *s = (struct bpfkv_get_scratch *)ctx->scratch;
	unsigned long long next = 0;

	if (bpfkv_get_step((const unsigned char *)ctx->data, s, &next))
		return RB_NDP_OK;
	ctx->n_next = 1;
	ctx->next_off[0] = next;
	ctx->next_len[0] = BPFKV_BLOCK_SIZE;
	return RB_NDP_RESUBMIT;
}

char LICENSE[] SEC("license") = "MIT";
