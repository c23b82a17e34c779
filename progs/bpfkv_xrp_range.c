/* SPDX-License-Identifier: MIT */
/*
 * BPF-KV range queries as an XRP program (built with -include rosen/xrp.h):
 * [begin, end] with inclusive/exclusive bounds, up to 32 pairs per call or
 * a SUM, resumable state in scratch (struct bpfkv_range_scratch,
 * progs/bpfkv_prog.h), one 512-byte read per hop as XRP allows.
 */
#include "bpfkv_prog.h"

#define SEC(name) __attribute__((section(name), used))

SEC("bpfkv_xrp_range")
int bpfkv_xrp_range_prog(struct bpf_xrp *ctx)
{
	struct bpfkv_range_scratch *s = (struct bpfkv_range_scratch *)ctx->scratch;
	unsigned long long next = 0;

	if (bpfkv_range_step((const unsigned char *)ctx->data, s, &next)) {
		ctx->done = 1;
		return 0;
	}
	ctx->next_addr[0] = next;
	ctx->size[0] = BPFKV_BLOCK_SIZE;
	return 0;
}

char LICENSE[] SEC("license") = "MIT";
