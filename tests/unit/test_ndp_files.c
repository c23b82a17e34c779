/* SPDX-License-Identifier: MIT */
/*
 * Registered files (lib/ndp/file.c, table.c, exec.c): the REG_FILE map
 * check rule by rule, the translation of file ranges into disk pieces
 * against a brute-force model, the file table's keys and references, and
 * the executor queueing file I/Os as disk pieces.
 */
#include <rosen/ndp.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define K 4096u
#define DISK (64ull << 20)

static char err[512];

static int check_map(uint64_t size, const struct rb_ndp_extent *e, uint32_t n)
{
	struct rb_ndp_reg_file rf = {.file_size = size, .n_extents = n};
	err[0] = 0;
	return rb_ndp_file_check(&rf, e, DISK, err, sizeof(err));
}

TEST(map_check_accepts_a_fragmented_map_with_holes)
{
	/* Sorted by file offset, disk order shuffled, a hole at [8K, 12K). */
	struct rb_ndp_extent e[] = {
		{0, 40 * K, K}, {K, 3 * K, 2 * K}, {3 * K, 100 * K, 5 * K}, {12 * K, 0, 512},
	};
	CHECK_EQ_U64(check_map(12 * K + 100, e, 4), 0);
	/* The last sector may be partial in the file. */
	CHECK_EQ_U64(check_map(12 * K + 1, e, 4), 0);
}

TEST(map_check_refuses_each_broken_rule_with_its_reason)
{
	static const struct {
		const char *what;
		uint64_t size;
		uint32_t n, flags;
		struct rb_ndp_extent e[3];
		const char *reason;
	} bad[] = {
		{"flags", 8 * K, 1, 1, {{0, 0, K}}, "flags 0x1"},
		{"no extents", 8 * K, 0, 0, {{0, 0, K}}, "0 extents"},
		{"too many", 8 * K, RB_NDP_MAX_EXTENTS + 1, 0, {{0, 0, K}}, "16385 extents"},
		{"len 0", 8 * K, 1, 0, {{0, 0, 0}}, "empty or not in whole"},
		{"file_off 100", 8 * K, 1, 0, {{100, 0, K}}, "not in whole"},
		{"disk_off 100", 8 * K, 1, 0, {{0, 100, K}}, "not in whole"},
		{"len 1000", 8 * K, 1, 0, {{0, 0, 1000}}, "not in whole"},
		{"past the size", 8 * K - 600, 1, 0, {{0, 0, 8 * K}}, "ends past the file's"},
		{"file_off + len wraps", 8 * K, 1, 0, {{UINT64_MAX - 511, 0, 1024}}, "ends past the file's"},
		{"size wraps", UINT64_MAX - 100, 1, 0, {{0, 0, K}}, "is not a size"},
		{"outside the disk", 8 * K, 1, 0, {{0, DISK - 512, K}}, "leaves the"},
		{"disk_off + len wraps", 8 * K, 1, 0, {{0, UINT64_MAX - 511, K}}, "leaves the"},
		{"unsorted", 8 * K, 2, 0, {{K, 0, K}, {0, K, K}}, "must be sorted"},
		{"overlap in the file", 8 * K, 2, 0, {{0, 0, 2 * K}, {K, 8 * K, K}}, "must be sorted"},
		{"same file_off twice", 8 * K, 2, 0, {{0, 0, K}, {0, 8 * K, K}}, "must be sorted"},
		{"overlap on the disk", 8 * K, 3, 0, {{0, 10 * K, 2 * K}, {2 * K, 0, K}, {4 * K, 11 * K, K}},
		 "extents 0 and 2 overlap on the disk"},
		{"same disk block twice", 8 * K, 2, 0, {{0, 5 * K, K}, {K, 5 * K, K}}, "overlap on the disk"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct rb_ndp_reg_file rf = {.file_size = bad[i].size, .n_extents = bad[i].n,
					     .flags = bad[i].flags};
		err[0] = 0;
		/* n may exceed the array only where the count itself is refused. */
		int rc = rb_ndp_file_check(&rf, bad[i].e, DISK, err, sizeof(err));
		if (rc != -EINVAL || !strstr(err, bad[i].reason))
			RT_FAIL_AT("%s: rc %d, message '%s' (expected '%s')", bad[i].what, rc, err,
				   bad[i].reason);
	}
}

/* The brute-force model: sector by sector through the map. */
static int model(const struct rb_ndp_extent *e, uint32_t n, uint64_t size, uint64_t off,
		 uint64_t len, uint64_t *d, uint32_t *l, unsigned max)
{
	unsigned k = 0;
	if ((off + len + 511) / 512 > (size + 511) / 512)
		return -EFBIG;
	for (uint64_t s = off; s < off + len; s += 512) {
		uint32_t i = 0;
		while (i < n && !(e[i].file_off <= s && s < e[i].file_off + e[i].len))
			i++;
		if (i == n)
			return -ENXIO;
		uint64_t disk = e[i].disk_off + (s - e[i].file_off);
		if (k && d[k - 1] + l[k - 1] == disk) {
			l[k - 1] += 512;
			continue;
		}
		if (k == max)
			return -E2BIG;
		d[k] = disk;
		l[k++] = 512;
	}
	return (int)k;
}

TEST(translation_matches_a_sector_by_sector_model)
{
	enum { N = 300 };
	static struct rb_ndp_extent e[N];
	uint64_t rng = 7, file = 0;
	uint32_t n = 0;
	/* Extents of 1..16 sectors, some holes, disk blocks shuffled (and
	 * every so often adjacent on the disk to the previous one). */
	for (; n < N; n++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t len = 512 * (1 + (rng >> 40) % 16);
		if ((rng >> 20) % 5 == 0)
			file += 512 * (1 + (rng >> 50) % 4); /* a hole */
		e[n].file_off = file;
		e[n].len = len;
		e[n].disk_off = n && (rng >> 30) % 4 == 0 ? e[n - 1].disk_off + e[n - 1].len
							  : ((uint64_t)(N - n) * 64 + (rng >> 33) % 32) * 512 * 16;
		file += len;
	}
	uint64_t size = file - 100;
	unsigned mismatches = 0;
	for (int t = 0; t < 20000; t++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t off = 512 * ((rng >> 20) % (file / 512 + 8));
		uint64_t len = 512 * (1 + (rng >> 50) % 8);
		unsigned max = 1 + (rng >> 10) % 8;
		uint64_t d1[16], d2[16];
		uint32_t l1[16], l2[16];
		int a = rb_ndp_file_translate(e, n, size, off, len, d1, l1, max);
		int b = model(e, n, size, off, len, d2, l2, max);
		bool same = a == b;
		for (int i = 0; same && i < a; i++)
			same = d1[i] == d2[i] && l1[i] == l2[i];
		if (!same && mismatches++ < 5)
			RT_FAIL_AT("off %llu len %llu max %u: translate %d, model %d",
				   (unsigned long long)off, (unsigned long long)len, max, a, b);
	}
	CHECK_EQ_U64(mismatches, 0);
}

TEST(translation_splits_at_extent_boundaries_and_refuses_holes)
{
	struct rb_ndp_extent e[] = {
		{0, 40 * K, K}, {K, 3 * K, K}, {2 * K, 4 * K, K}, {4 * K, 0, K},
	};
	uint64_t d[16];
	uint32_t l[16];
	/* Crossing extents 0 and 1: two pieces, in file order. */
	CHECK_EQ_U64(rb_ndp_file_translate(e, 4, 5 * K, 2048, K, d, l, 16), 2);
	CHECK_EQ_U64(d[0], 40 * K + 2048);
	CHECK_EQ_U64(l[0], 2048);
	CHECK_EQ_U64(d[1], 3 * K);
	CHECK_EQ_U64(l[1], 2048);
	/* Extents 1 and 2 are adjacent on the disk: one piece. */
	CHECK_EQ_U64(rb_ndp_file_translate(e, 4, 5 * K, K + 512, K, d, l, 16), 1);
	CHECK_EQ_U64(d[0], 3 * K + 512);
	CHECK_EQ_U64(l[0], K);
	/* ... and a piece limit. */
	CHECK_EQ_U64(rb_ndp_file_translate(e, 4, 5 * K, 0, 3 * K, d, l, 1), -E2BIG);
	CHECK_EQ_U64(rb_ndp_file_translate(e, 4, 5 * K, 0, 3 * K, d, l, 2), 2);
	/* The hole [3K, 4K), entered, crossed into, or left. */
	CHECK_EQ_U64(rb_ndp_file_translate(e, 4, 5 * K, 3 * K, 512, d, l, 16), -ENXIO);
	CHECK_EQ_U64(rb_ndp_file_translate(e, 4, 5 * K, 2 * K + 2048, K, d, l, 16), -ENXIO);
	CHECK_EQ_U64(rb_ndp_file_translate(e, 4, 5 * K, 3 * K + 2048, K, d, l, 16), -ENXIO);
	/* Past the map's end but inside the size; past the size; len 0. */
	CHECK_EQ_U64(rb_ndp_file_translate(e, 4, 8 * K, 5 * K, 512, d, l, 16), -ENXIO);
	CHECK_EQ_U64(rb_ndp_file_translate(e, 4, 5 * K, 5 * K, 512, d, l, 16), -EFBIG);
	CHECK_EQ_U64(rb_ndp_file_translate(e, 4, 5 * K - 1, 5 * K - 512, 512, d, l, 16), 1);
	CHECK_EQ_U64(rb_ndp_file_translate(e, 4, 5 * K - 600, 5 * K - 512, 512, d, l, 16), -EFBIG);
	CHECK_EQ_U64(rb_ndp_file_translate(e, 4, 5 * K, 0, 0, d, l, 16), -EFBIG);
	CHECK_EQ_U64(rb_ndp_file_translate(e, 4, 5 * K, UINT64_MAX - 511, 512, d, l, 16), -EFBIG);
	CHECK_EQ_U64(rb_ndp_file_translate(e, 4, UINT64_MAX - 600, UINT64_MAX - 1023, 512, d, l, 16),
		     -ENXIO);
}

TEST(file_keys_are_generational_references_outlive_unregistering)
{
	struct rb_ndp_table *t = rb_ndp_table_new("unit");
	struct rb_ndp_extent e[] = {{0, 0, K}};
	struct rb_ndp_reg_file rf = {.file_size = K, .n_extents = 1};
	uint32_t key[RB_NDP_MAX_FILES], k2 = 0;
	REQUIRE(t);
	for (unsigned i = 0; i < RB_NDP_MAX_FILES; i++) {
		CHECK_EQ_U64(rb_ndp_reg_file(t, &rf, e, &key[i]), RB_NDP_S_OK);
		CHECK(key[i] != 0);
	}
	CHECK_EQ_U64(rb_ndp_reg_file(t, &rf, e, &k2), RB_NDP_S_LIMIT);
	CHECK_EQ_U64(rb_ndp_file_count(t), RB_NDP_MAX_FILES);
	/* A request holds file 0; it is unregistered meanwhile. */
	struct rb_ndp_file *f = rb_ndp_file_acquire(t, key[0]);
	REQUIRE(f);
	CHECK_EQ_U64(rb_ndp_unreg_file(t, key[0]), RB_NDP_S_OK);
	CHECK_EQ_U64(rb_ndp_unreg_file(t, key[0]), RB_NDP_S_NO_PROGRAM);
	CHECK(rb_ndp_file_acquire(t, key[0]) == NULL);
	/* The slot is reused under another key; the old key stays dead. */
	CHECK_EQ_U64(rb_ndp_reg_file(t, &rf, e, &k2), RB_NDP_S_OK);
	CHECK(k2 != key[0]);
	CHECK(rb_ndp_file_acquire(t, key[0]) == NULL);
	CHECK(rb_ndp_file_acquire(t, 0) == NULL);
	CHECK_EQ_U64(rb_ndp_unreg_file(t, 0), RB_NDP_S_NO_PROGRAM);
	rb_ndp_file_release(f); /* last reference: freed now (ASan watches) */
	rb_ndp_table_free(t);   /* frees the registered ones */
}

/* Another daemon instance's version of id: same low bits, another epoch. */
static uint32_t earlier(uint32_t id)
{
	uint32_t e = id >> RB_NDP_ID_EPOCH_SHIFT;

	return (e % RB_NDP_ID_EPOCH_MAX + 1) << RB_NDP_ID_EPOCH_SHIFT |
	       (id & ((1u << RB_NDP_ID_EPOCH_SHIFT) - 1));
}

TEST(keys_carry_the_epoch_and_those_of_earlier_daemons_are_state_lost)
{
	struct rb_ndp_table *t = rb_ndp_table_new("unit");
	struct rb_ndp_extent e[] = {{0, 0, K}};
	struct rb_ndp_reg_file rf = {.file_size = K, .n_extents = 1};
	uint32_t fk = 0, mk[RB_NDP_MAX_REGIONS];
	uint32_t ep = rb_ndp_epoch();

	REQUIRE(t);
	CHECK(ep >= 1 && ep <= RB_NDP_ID_EPOCH_MAX);
	CHECK_EQ_U64(rb_ndp_epoch(), ep); /* one per process */
	CHECK_EQ_U64(rb_ndp_id_kind(rb_ndp_id(5)), RB_NDP_ID_CURRENT);
	CHECK_EQ_U64(rb_ndp_id_kind(earlier(rb_ndp_id(5))), RB_NDP_ID_EARLIER);
	CHECK_EQ_U64(rb_ndp_id_kind(0), RB_NDP_ID_NEVER);
	CHECK_EQ_U64(rb_ndp_id_kind(0xfffff), RB_NDP_ID_NEVER);
	CHECK_EQ_U64(rb_ndp_id_kind(0xfff00000), RB_NDP_ID_NEVER);
	CHECK_EQ_U64(rb_ndp_id_kind(0xffffffff), RB_NDP_ID_NEVER);
	CHECK_EQ_U64(rb_ndp_reg_file(t, &rf, e, &fk), RB_NDP_S_OK);
	CHECK_EQ_U64(fk >> RB_NDP_ID_EPOCH_SHIFT, ep);
	CHECK(rb_ndp_file_acquire(t, earlier(fk)) == NULL);
	CHECK_EQ_U64(rb_ndp_unreg_file(t, earlier(fk)), RB_NDP_S_STATE_LOST);
	CHECK_EQ_U64(rb_ndp_unreg_file(t, fk & 0xfffff), RB_NDP_S_NO_PROGRAM);
	for (unsigned i = 0; i < RB_NDP_MAX_REGIONS; i++) {
		CHECK_EQ_U64(rb_ndp_reg_mem(t, 4096 * i, 4096, &mk[i]), RB_NDP_S_OK);
		CHECK_EQ_U64(mk[i] >> RB_NDP_ID_EPOCH_SHIFT, ep);
		for (unsigned j = 0; j < i; j++)
			CHECK(mk[i] != mk[j]);
	}
	CHECK_EQ_U64(rb_ndp_unreg_mem(t, earlier(mk[0])), RB_NDP_S_STATE_LOST);
	CHECK_EQ_U64(rb_ndp_unreg_mem(t, 12345), RB_NDP_S_NO_MEMORY);
	CHECK_EQ_U64(rb_ndp_unreg_mem(t, mk[0]), RB_NDP_S_OK);
	CHECK_EQ_U64(rb_ndp_unreg_mem(t, mk[0]), RB_NDP_S_NO_MEMORY);
	CHECK_EQ_U64(rb_ndp_unload(t, earlier(rb_ndp_id(3))), RB_NDP_S_STATE_LOST);
	CHECK_EQ_U64(rb_ndp_unload(t, 3), RB_NDP_S_NO_PROGRAM);
	CHECK_EQ_U64(rb_ndp_missing(earlier(fk), RB_NDP_S_NO_PROGRAM), RB_NDP_S_STATE_LOST);
	CHECK_EQ_U64(rb_ndp_missing(fk, RB_NDP_S_NO_PROGRAM), RB_NDP_S_NO_PROGRAM);
	rb_ndp_table_free(t);
}

static uint8_t *read_obj(const char *name, size_t *len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", TEST_PROGS_DIR, name);
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return NULL;
	uint8_t *b = malloc(1 << 20);
	*len = fread(b, 1, 1 << 20, fp);
	fclose(fp);
	return b;
}

TEST(executor_turns_file_ios_into_disk_pieces)
{
	struct rb_ndp_table *t = rb_ndp_table_new("unit");
	size_t len = 0;
	uint8_t *elf = read_obj("ndp_progs.o", &len);
	char log[4096];
	uint32_t h = 0, key = 0;
	REQUIRE(t && elf);
	REQUIRE(rb_ndp_load(t, RB_NDP_PROG_XRP, elf, len, "xrp_peek", &h, log, sizeof(log)) ==
		RB_NDP_S_OK);
	struct rb_ndp_extent e[] = {{0, 40 * K, K}, {K, 3 * K, K}, {3 * K, 10 * K, K}};
	struct rb_ndp_reg_file rf = {.file_size = 4 * K, .n_extents = 3};
	REQUIRE(rb_ndp_reg_file(t, &rf, e, &key) == RB_NDP_S_OK);
	static uint8_t data[RB_NDP_MAX_DATA], scratch[RB_NDP_MAX_SCRATCH], meta[RB_NDP_MAX_META];
	static struct rb_ndp_exec x;
	memset(&x, 0, sizeof(x));
	x.prog = rb_ndp_acquire(t, h);
	x.file = rb_ndp_file_acquire(t, key);
	x.capacity_bytes = DISK;
	x.data = data;
	x.scratch = scratch;
	x.meta = meta;
	CHECK_EQ_U64(rb_ndp_exec_start(&x, 2048, K), RB_NDP_STEP_IO);
	CHECK_EQ_U64(x.n_io, 2);
	CHECK_EQ_U64(x.io_off[0], 40 * K + 2048);
	CHECK_EQ_U64(x.io_len[0], 2048);
	CHECK_EQ_U64(x.data_off[0], 0);
	CHECK_EQ_U64(x.io_off[1], 3 * K);
	CHECK_EQ_U64(x.io_len[1], 2048);
	CHECK_EQ_U64(x.data_off[1], 2048);
	/* xrp_peek is done after one run: one hop, whatever the pieces. */
	CHECK_EQ_U64(rb_ndp_exec_io_done(&x, 0), RB_NDP_STEP_DONE);
	CHECK_EQ_U64(x.status, RB_NDP_S_OK);
	CHECK_EQ_U64(x.hops, 1);
	CHECK_EQ_U64(x.bytes, K);
	/* A hole and past the size: OUT_OF_RANGE, saying which. */
	CHECK_EQ_U64(rb_ndp_exec_start(&x, 2 * K, 512), RB_NDP_STEP_DONE);
	CHECK_EQ_U64(x.status, RB_NDP_S_OUT_OF_RANGE);
	CHECK_STR_CONTAINS(x.msg, "is not in the file's map");
	CHECK_EQ_U64(rb_ndp_exec_start(&x, 4 * K, 512), RB_NDP_STEP_DONE);
	CHECK_EQ_U64(x.status, RB_NDP_S_OUT_OF_RANGE);
	CHECK_STR_CONTAINS(x.msg, "goes past the file's size");
	/* Unregistered while "in flight": the request's reference keeps it. */
	CHECK_EQ_U64(rb_ndp_unreg_file(t, key), RB_NDP_S_OK);
	CHECK_EQ_U64(rb_ndp_exec_start(&x, 3 * K, 512), RB_NDP_STEP_IO);
	CHECK_EQ_U64(x.io_off[0], 10 * K);
	rb_ndp_file_release(x.file);
	rb_ndp_release(x.prog);
	rb_ndp_table_free(t);
	free(elf);
}

TEST_MAIN()
