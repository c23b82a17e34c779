/* SPDX-License-Identifier: MIT */
/*
 * BPF-KV batched point lookups as an XRP program (`xrp` type, built with
 * `clang -include rosen/xrp.h` like any XRP program): scratch holds up to
 * 32 keys (struct bpfkv_get_scratch, progs/bpfkv_prog.h), as BPF-KV's own
 * lookup program takes them; one 512-byte read per hop, the root first.
 */
#include "bpfkv_prog.h"

#define SEC(name) __attribute__((section(name), used))

SEC("bpfkv_xrp_get")
int bpfkv_xrp_get_prog(struct bpf_xrp *ctx)
{
	struct bpfkv_get_scratch *s = (struct bpfkv_get_scratch *)ctx->scratch;
	unsigned long long next = 0;

	if (bpfkv_get_step((const unsigned char *)ctx->data, s, &next)) {
		ctx->done = 1;
		return 0;
	}
	ctx->next_addr[0] = next;
	ctx->size[0] = BPFKV_BLOCK_SIZE;
	return 0;
}

char LICENSE[] SEC("license") = "MIT";
