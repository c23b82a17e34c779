/* SPDX-License-Identifier: MIT */
/*
 * Every NDP helper on its failure paths, for tests/ndp/test_ndp.c
 * (helper_failures_leave_no_stale_data): a helper that fails must leave
 * no stale bytes where the program reads its answer.
 */
#include <rosen/prog.h>

/* cq: out-buffers and slots are pre-filled with a pattern first, so
 * anything a failing helper leaves unwritten shows as 0xabab... in
 * scratch; the return codes land in scratch too.  meta = {u32 key}: a key
 * that is not registered. */
#define STALE 0xababababababababULL

SEC("cq_helper_failures")
int cq_helper_failures_prog(struct rb_ndp_ctx *ctx)
{
	__s64 *s = (__s64 *)ctx->scratch;
	struct rb_ndp_sqe out;
	static const __u32 bad_idx[3] = {5, RB_NDP_CTX_MAX_NEXT, RB_NDP_SQE_CURRENT - 1};

	/* get_sqe: a slot that does not exist, out-buffer on the stack. */
	for (int i = 0; i < 3; i++) {
		__builtin_memset(&out, 0xab, sizeof(out));
		s[i * 3] = rb_ndp_get_sqe(ctx, bad_idx[i], &out);
		__builtin_memcpy(&s[i * 3 + 1], &out, sizeof(out));
	}
	/* ... and with its out-buffer in scratch. */
	s[10] = STALE;
	s[11] = STALE;
	s[9] = rb_ndp_get_sqe(ctx, 7, (struct rb_ndp_sqe *)&s[10]);
	/* new_sqe hands out a zeroed slot, whatever the program left there. */
	ctx->next_off[0] = STALE;
	ctx->next_len[0] = 0xabababab;
	s[12] = rb_ndp_new_sqe(ctx);
	s[13] = ctx->next_off[0];
	s[14] = ctx->next_len[0];
	/* new_sqe when all 16 slots are taken. */
	for (int i = 1; i < RB_NDP_CTX_MAX_NEXT; i++)
		rb_ndp_new_sqe(ctx);
	s[15] = rb_ndp_new_sqe(ctx);
	/* set_sqe: bad slot, out of the disk, misaligned; the slot keeps
	 * what it had (0 from new_sqe). */
	s[16] = rb_ndp_set_sqe(ctx, RB_NDP_CTX_MAX_NEXT, 0, 512);
	s[17] = rb_ndp_set_sqe(ctx, 0, 1ULL << 50, 512);
	s[18] = rb_ndp_set_sqe(ctx, 0, 513, 512);
	s[19] = rb_ndp_set_sqe(ctx, 0, 0, 4097);
	s[20] = ctx->next_off[0];
	s[21] = ctx->next_len[0];
	/* disk_trans outside the disk; mem_trans with an unknown key. */
	s[22] = (__s64)rb_ndp_disk_trans(ctx, 1ULL << 50);
	s[23] = rb_ndp_mem_trans(ctx, *(const __u32 *)ctx->meta, 0, 64) ? 1 : 0;
	return RB_NDP_OK;
}

char LICENSE[] SEC("license") = "MIT";
