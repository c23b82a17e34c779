/* SPDX-License-Identifier: MIT */
/*
 * RosenGDS's pure parts and tables (lib/gpu, lib/ndp/gpu.c): the CRC-32
 * both sides compute, region bounds, the REG_GPU and GPU_SUM checks rule
 * by rule, host regions, a VM's region table (limits, keys, references),
 * and the CUDA target's absence handled as "no GPU".
 */
#include <rosen/gpu.h>
#include <rosen/ndp.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static char err[512];

TEST(crc32_matches_the_standard_check_values)
{
	/* ISO-HDLC's check value, and zlib.crc32 of these strings. */
	CHECK_EQ_U64(rb_gpu_crc32(0, "123456789", 9), 0xCBF43926u);
	CHECK_EQ_U64(rb_gpu_crc32(0, "", 0), 0);
	CHECK_EQ_U64(rb_gpu_crc32(0, "a", 1), 0xE8B7BE43u);
	CHECK_EQ_U64(rb_gpu_crc32(0, "The quick brown fox jumps over the lazy dog", 43), 0x414FA339u);
}

TEST(crc32_in_pieces_and_at_any_alignment_equals_crc32_whole)
{
	static uint8_t buf[5000 + 8];
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	for (unsigned a = 0; a < 8; a++) {
		uint32_t whole = rb_gpu_crc32(0, buf + a, 5000);
		/* A byte-at-a-time reference: the table path must agree. */
		uint32_t ref = 0;
		for (unsigned i = 0; i < 5000; i++)
			ref = rb_gpu_crc32(ref, buf + a + i, 1);
		CHECK_EQ_U64(whole, ref);
		uint32_t c = rb_gpu_crc32(0, buf + a, 1234);
		c = rb_gpu_crc32(c, buf + a + 1234, 5000 - 1234);
		CHECK_EQ_U64(c, whole);
	}
}

TEST(range_ok_refuses_empty_outside_and_wrapping_ranges)
{
	CHECK(rb_gpu_range_ok(4096, 0, 4096));
	CHECK(rb_gpu_range_ok(4096, 4095, 1));
	CHECK(!rb_gpu_range_ok(4096, 0, 0));
	CHECK(!rb_gpu_range_ok(4096, 4096, 1));
	CHECK(!rb_gpu_range_ok(4096, 512, 4096));
	CHECK(!rb_gpu_range_ok(4096, UINT64_MAX - 511, 1024));
	CHECK(!rb_gpu_range_ok(4096, 1, UINT64_MAX));
}

TEST(reg_check_refuses_each_broken_rule_with_its_reason)
{
	static const struct {
		uint64_t size;
		uint32_t target, flags;
		const char *reason; /* NULL: accepted */
	} cases[] = {
		{4096, RB_NDP_GPU_HOST, 0, NULL},
		{512, RB_NDP_GPU_CUDA, 0, NULL},
		{RB_NDP_MAX_GPU_REGION_BYTES, RB_NDP_GPU_HOST, 0, NULL},
		{0, RB_NDP_GPU_HOST, 0, "REG_GPU of 0 bytes"},
		{511, RB_NDP_GPU_HOST, 0, "REG_GPU of 511 bytes"},
		{4097, RB_NDP_GPU_HOST, 0, "a multiple of 512"},
		{RB_NDP_MAX_GPU_REGION_BYTES + 512ull, RB_NDP_GPU_HOST, 0, "512..268435456"},
		{UINT64_MAX - 511, RB_NDP_GPU_HOST, 0, "bytes: a region is"},
		{4096, 0, 0, "target 0"},
		{4096, 3, 0, "target 3"},
		{4096, RB_NDP_GPU_HOST, 4, "flags 0x4"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rb_ndp_reg_gpu rg = {.size = cases[i].size, .target = cases[i].target,
					    .flags = cases[i].flags};
		err[0] = 0;
		int rc = rb_ndp_gpu_reg_check(&rg, err, sizeof(err));
		if (cases[i].reason ? rc != -EINVAL || !strstr(err, cases[i].reason) : rc != 0)
			RT_FAIL_AT("case %zu: rc %d, '%s' (expected %s)", i, rc, err,
				   cases[i].reason ? cases[i].reason : "accepted");
	}
}

TEST(sum_check_refuses_reserved_empty_oversized_and_wrapping)
{
	struct rb_ndp_gpu_sum ok = {.key = 1, .offset = 100, .len = 1};
	CHECK_EQ_U64(rb_ndp_gpu_sum_check(&ok, err, sizeof(err)), 0);
	ok.len = RB_NDP_MAX_GPU_READ;
	CHECK_EQ_U64(rb_ndp_gpu_sum_check(&ok, err, sizeof(err)), 0);
	struct rb_ndp_gpu_sum bad[] = {
		{.key = 1, .reserved = 1, .len = 1},
		{.key = 1, .len = 0},
		{.key = 1, .len = RB_NDP_MAX_GPU_READ + 1ull},
		{.key = 1, .offset = UINT64_MAX, .len = 1},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (rb_ndp_gpu_sum_check(&bad[i], err, sizeof(err)) != -EINVAL)
			RT_FAIL_AT("GPU_SUM case %zu accepted", i);
}

TEST(host_region_starts_zeroed_and_checks_every_access)
{
	struct rb_gpu_region *r;
	static uint8_t data[3000];
	uint32_t crc;

	REQUIRE(rb_gpu_region_new(RB_GPU_HOST, 8192, &r, err, sizeof(err)) == 0);
	CHECK_EQ_U64(rb_gpu_region_size(r), 8192);
	CHECK(rb_gpu_region_host(r) != NULL);
	static const uint8_t zeros[8192];
	CHECK_EQ_U64(rb_gpu_region_sum(r, 0, 8192, &crc, err, sizeof(err)), 0);
	CHECK_EQ_U64(crc, rb_gpu_crc32(0, zeros, 8192));
	memset(data, 0x5a, sizeof(data));
	CHECK_EQ_U64(rb_gpu_region_write(r, 5000, data, sizeof(data), err, sizeof(err)), 0);
	CHECK_EQ_U64(rb_gpu_region_sum(r, 5000, sizeof(data), &crc, err, sizeof(err)), 0);
	CHECK_EQ_U64(crc, rb_gpu_crc32(0, data, sizeof(data)));
	CHECK_EQ_U64(rb_gpu_region_write(r, 5193, data, sizeof(data), err, sizeof(err)), (uint64_t)-ERANGE);
	CHECK_EQ_U64(rb_gpu_region_sum(r, 8000, 193, &crc, err, sizeof(err)), (uint64_t)-ERANGE);
	CHECK(strstr(err, "leave the 8192-byte region") != NULL);
	CHECK_EQ_U64(rb_gpu_region_sum(r, UINT64_MAX, 2, &crc, err, sizeof(err)), (uint64_t)-ERANGE);
	/* A reference outlives the creator's. */
	rb_gpu_region_get(r);
	rb_gpu_region_put(r);
	CHECK_EQ_U64(rb_gpu_region_sum(r, 0, 1, &crc, err, sizeof(err)), 0);
	rb_gpu_region_put(r);
	rb_gpu_region_put(NULL);
	CHECK_EQ_U64(rb_gpu_region_new(RB_GPU_HOST, 0, &r, err, sizeof(err)), (uint64_t)-EINVAL);
	CHECK_EQ_U64(rb_gpu_region_new(7, 4096, &r, err, sizeof(err)), (uint64_t)-EINVAL);
}

TEST(cuda_missing_is_no_gpu_never_a_crash)
{
	struct rb_gpu_region *r;
	int rc = rb_gpu_cuda_open(0, err, sizeof(err));

	if (rc == 0) { /* a machine with a GPU: then a CUDA region works */
		printf("    (a GPU is here: %s)\n", rb_gpu_cuda_name());
		REQUIRE(rb_gpu_region_new(RB_GPU_CUDA, 1 << 20, &r, err, sizeof(err)) == 0);
		uint32_t crc;
		static const uint8_t zeros[1 << 20];
		CHECK_EQ_U64(rb_gpu_region_sum(r, 0, 1 << 20, &crc, err, sizeof(err)), 0);
		CHECK_EQ_U64(crc, rb_gpu_crc32(0, zeros, sizeof(zeros)));
		rb_gpu_region_put(r);
		rb_gpu_cuda_close();
		return;
	}
	CHECK(rc == -ENOENT || rc == -ENODEV);
	CHECK(strstr(err, "no GPU") != NULL);
	CHECK(!rb_gpu_cuda_available());
	CHECK_EQ_U64(rb_gpu_region_new(RB_GPU_CUDA, 4096, &r, err, sizeof(err)), (uint64_t)-ENODEV);
	CHECK(strstr(err, "no GPU") != NULL);
	CHECK(rb_gpu_stager_get(err, sizeof(err)) == NULL);
	/* An ordinal that no driver has fails the same way. */
	CHECK(rb_gpu_cuda_open(100000, err, sizeof(err)) < 0);
}

static uint32_t reg(struct rb_ndp_table *t, uint64_t size, uint32_t target, uint32_t *key)
{
	struct rb_ndp_reg_gpu rg = {.size = size, .target = target};
	err[0] = 0;
	return rb_ndp_reg_gpu(t, &rg, key, err, sizeof(err));
}

TEST(vm_regions_are_bounded_in_number_and_bytes)
{
	struct rb_ndp_table *t = rb_ndp_table_new("vm-test");
	uint32_t keys[RB_NDP_MAX_GPU_REGIONS], k;
	uint64_t bytes;

	REQUIRE(t != NULL);
	for (unsigned i = 0; i < RB_NDP_MAX_GPU_REGIONS; i++) {
		REQUIRE(reg(t, 4096, RB_NDP_GPU_HOST, &keys[i]) == RB_NDP_S_OK);
		CHECK(keys[i] != 0);
		for (unsigned j = 0; j < i; j++)
			CHECK(keys[i] != keys[j]);
	}
	CHECK_EQ_U64(reg(t, 4096, RB_NDP_GPU_HOST, &k), RB_NDP_S_LIMIT);
	CHECK_EQ_U64(k, 0);
	CHECK(strstr(err, "already has 8 GPU regions") != NULL);
	CHECK_EQ_U64(rb_ndp_gpu_count(t, &bytes), RB_NDP_MAX_GPU_REGIONS);
	CHECK_EQ_U64(bytes, 8 * 4096);
	for (unsigned i = 0; i < RB_NDP_MAX_GPU_REGIONS; i++)
		CHECK_EQ_U64(rb_ndp_unreg_gpu(t, keys[i]), RB_NDP_S_OK);
	CHECK_EQ_U64(rb_ndp_gpu_count(t, &bytes), 0);
	CHECK_EQ_U64(bytes, 0);
	/* Bytes: two of 256 MiB fill the VM's 512 MiB. */
	REQUIRE(reg(t, 256u << 20, RB_NDP_GPU_HOST, &keys[0]) == RB_NDP_S_OK);
	REQUIRE(reg(t, 256u << 20, RB_NDP_GPU_HOST, &keys[1]) == RB_NDP_S_OK);
	CHECK_EQ_U64(reg(t, 512, RB_NDP_GPU_HOST, &k), RB_NDP_S_LIMIT);
	CHECK(strstr(err, "past 536870912 bytes") != NULL);
	CHECK_EQ_U64(rb_ndp_unreg_gpu(t, keys[1]), RB_NDP_S_OK);
	CHECK_EQ_U64(reg(t, 512, RB_NDP_GPU_HOST, &k), RB_NDP_S_OK);
	rb_ndp_table_free(t); /* frees what is left (ASan: no leak) */
}

TEST(region_keys_are_stale_after_unreg_and_foreign_to_other_vms)
{
	struct rb_ndp_table *a = rb_ndp_table_new("vm-a"), *b = rb_ndp_table_new("vm-b");
	uint32_t k, k2;

	REQUIRE(a && b);
	REQUIRE(reg(a, 4096, RB_NDP_GPU_HOST, &k) == RB_NDP_S_OK);
	CHECK(rb_ndp_gpu_acquire(b, k) == NULL);
	CHECK_EQ_U64(rb_ndp_unreg_gpu(b, k), RB_NDP_S_NO_MEMORY);
	struct rb_gpu_region *r = rb_ndp_gpu_acquire(a, k);
	REQUIRE(r != NULL);
	CHECK_EQ_U64(rb_ndp_unreg_gpu(a, k), RB_NDP_S_OK);
	/* The holder keeps the memory; the key names nothing any more. */
	uint32_t crc;
	CHECK_EQ_U64(rb_gpu_region_sum(r, 0, 4096, &crc, err, sizeof(err)), 0);
	rb_gpu_region_put(r);
	CHECK(rb_ndp_gpu_acquire(a, k) == NULL);
	CHECK_EQ_U64(rb_ndp_unreg_gpu(a, k), RB_NDP_S_NO_MEMORY);
	REQUIRE(reg(a, 4096, RB_NDP_GPU_HOST, &k2) == RB_NDP_S_OK);
	CHECK(k2 != k); /* same slot, another generation */
	CHECK(rb_ndp_gpu_acquire(a, k) == NULL);
	/* Another epoch: STATE_LOST; never-valid values: NO_MEMORY. */
	uint32_t e = k2 >> RB_NDP_ID_EPOCH_SHIFT;
	uint32_t earlier = ((e % RB_NDP_ID_EPOCH_MAX) + 1) << RB_NDP_ID_EPOCH_SHIFT |
			   (k2 & ((1u << RB_NDP_ID_EPOCH_SHIFT) - 1));
	CHECK_EQ_U64(rb_ndp_unreg_gpu(a, earlier), RB_NDP_S_STATE_LOST);
	CHECK_EQ_U64(rb_ndp_unreg_gpu(a, 0), RB_NDP_S_NO_MEMORY);
	CHECK_EQ_U64(rb_ndp_unreg_gpu(a, 0xffffffffu), RB_NDP_S_NO_MEMORY);
	CHECK_EQ_U64(reg(a, 4096, RB_NDP_GPU_CUDA, &k), rb_gpu_cuda_available() ? RB_NDP_S_OK : RB_NDP_S_NO_GPU);
	rb_ndp_table_free(a);
	rb_ndp_table_free(b);
}

TEST_MAIN()
