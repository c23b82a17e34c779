/* SPDX-License-Identifier: MIT */
/* The program seeds of prog_seeds.h, from the objects the build makes. */
#include "prog_seeds.h"
#include "../../lib/bpf/bpf_internal.h"

#include <rosen/ndp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *path;
	const char *section;
	uint32_t type;
} seeds[] = {
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_mask", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_bound_check", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_meta_len", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_loop_sum", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_stack_array", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_call_stack_arg", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_spilled_ptr", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_helpers", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_mem_trans", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_globals", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_next_ios", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_ok.o", "sq_rewrite", RB_NDP_PROG_SQ},
	{TEST_PROGS_DIR "/verifier_ok.o", "xrp_walk", RB_NDP_PROG_XRP},
	{TEST_PROGS_DIR "/verifier_ok.o", "xrp_spin", RB_NDP_PROG_XRP},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_ptr_walk", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_ok.o", "cq_meta_end_walk", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/ndp_progs.o", "cq_sum", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/ndp_progs.o", "cq_helpers", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/ndp_progs.o", "cq_mem_copy", RB_NDP_PROG_CQ},
	{PROGS_DIR "/bpfkv_xrp_lookup.o", "bpfkv_xrp_lookup", RB_NDP_PROG_XRP},
	{PROGS_DIR "/bpfkv_xrp_get.o", "bpfkv_xrp_get", RB_NDP_PROG_XRP},
	{PROGS_DIR "/bpfkv_xrp_range.o", "bpfkv_xrp_range", RB_NDP_PROG_XRP},
	{PROGS_DIR "/bpfkv_get.o", "bpfkv_get", RB_NDP_PROG_CQ},
	{PROGS_DIR "/bpfkv_range.o", "bpfkv_range", RB_NDP_PROG_CQ},
	/* Rejected ones (one per rule): their mutations probe the rule's edge. */
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_data_fwd", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_data_back", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_scratch_fwd", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_scratch_back", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_meta_fwd", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_meta_back", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_ctx_fwd", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_ctx_back", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_rodata_fwd", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "xrp_data_fwd", RB_NDP_PROG_XRP},
	{TEST_PROGS_DIR "/verifier_hostile.o", "xrp_scratch_back", RB_NDP_PROG_XRP},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_unbounded_index", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_off_by_one", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_signed_index", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_mask_too_wide", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_loop_overrun", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_unbounded_loop", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_ptr_escape", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_ptr_multiply", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_ptr_and", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_number_as_ptr", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_end_deref", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_leak_scratch", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_leak_data", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_leak_ctx", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_leak_return", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_leak_low_half", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_leak_compare", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_leak_partial_spill", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "xrp_leak_next_addr", RB_NDP_PROG_XRP},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_compare_regions", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_write_meta", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_write_rodata", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_write_ctx_offset", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_write_ctx_pointer", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "xrp_write_ctx_pointer", RB_NDP_PROG_XRP},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_atomic_meta", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_atomic_ctx", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_uninit_stack", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_uninit_stack_var", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_unknown_helper", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "xrp_ndp_helper", RB_NDP_PROG_XRP},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_helper_not_ctx", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_helper_ptr_as_number", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_helper_out_small", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_helper_out_meta", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_helper_out_number", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_mem_trans_null", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_mem_trans_overrun", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_calls_too_deep", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_recursion", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_return_stack_ptr", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_compare_mem_blocks", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/verifier_hostile.o", "cq_end_check_too_short", RB_NDP_PROG_CQ},
};

static void *slurp_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	void *p = NULL;
	long sz;

	if (!f)
		return NULL;
	if (!fseek(f, 0, SEEK_END) && (sz = ftell(f)) > 0 && !fseek(f, 0, SEEK_SET) &&
	    (p = malloc((size_t)sz)) && fread(p, 1, (size_t)sz, f) != (size_t)sz) {
		free(p);
		p = NULL;
	}
	*len = p ? (size_t)sz : 0;
	fclose(f);
	return p;
}

int fz_write_prog_seeds(const char *dir, const struct rb_bpf_helpers *helpers, bool rejected)
{
	int bad = 0;

	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		size_t len;
		struct rb_bpf_prog *p = NULL;
		char err[512], path[4096];

		if (!rejected && strstr(seeds[i].path, "verifier_hostile"))
			continue;
		void *elf = slurp_file(seeds[i].path, &len);
		if (!elf || rb_bpf_prog_load_elf(elf, len, seeds[i].section, helpers, &p, err, sizeof(err))) {
			fprintf(stderr, "fuzz: %s %s: %s\n", seeds[i].path, seeds[i].section,
				elf ? err : "cannot read");
			free(elf);
			bad = 1;
			continue;
		}
		size_t ni = rb_bpf_prog_len(p);
		uint8_t hdr[FZ_PROG_HEADER] = {(uint8_t)(seeds[i].type - RB_NDP_PROG_SQ), 0,
					       (uint8_t)ni, (uint8_t)(ni >> 8)};
		for (int k = 0; k < RB_BPF_DATA_KINDS; k++) {
			hdr[4 + 2 * k] = (uint8_t)p->data_len[k];
			hdr[5 + 2 * k] = (uint8_t)(p->data_len[k] >> 8);
		}
		snprintf(path, sizeof(path), "%s/%s", dir, seeds[i].section);
		if (strstr(seeds[i].path, "ndp_progs"))
			snprintf(path, sizeof(path), "%s/ndp_%s", dir, seeds[i].section);
		if (strstr(seeds[i].path, "verifier_hostile"))
			snprintf(path, sizeof(path), "%s/rejected_%s", dir, seeds[i].section);
		FILE *f = fopen(path, "wb");
		if (!f || ni > FZ_PROG_MAX_INSNS || p->data_len[0] > FZ_PROG_MAX_SECTION ||
		    p->data_len[1] > FZ_PROG_MAX_SECTION || p->data_len[2] > FZ_PROG_MAX_SECTION) {
			fprintf(stderr, "fuzz: cannot write %s\n", path);
			bad = 1;
		} else {
			fwrite(hdr, 1, sizeof(hdr), f);
			fwrite(rb_bpf_prog_insns(p), sizeof(struct rb_bpf_insn), ni, f);
			for (int k = RB_BPF_DATA_RODATA; k <= RB_BPF_DATA_DATA; k++)
				if (p->data_len[k])
					fwrite(p->data[k], 1, p->data_len[k], f);
		}
		if (f)
			fclose(f);
		rb_bpf_prog_free(p);
		free(elf);
	}
	return bad;
}

