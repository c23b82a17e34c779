/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of lib/vhost: the pure message validators (every field of
 * every message a frontend sends is checked before use) and guest memory
 * translation (whole-length, overflow-safe).  The protocol as a whole is
 * exercised against the daemon by tests/vhost and tests/e2e.
 */
#include <rosen/vhost.h>
#include <rosen/virtio.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "harness.h"

static char err[256];

/* ---- header ---------------------------------------------------------------- */

TEST(header_accepts_version_1_and_need_reply)
{
	struct rb_vhost_msg_hdr h = {RB_VHOST_USER_GET_FEATURES, 0x1 | RB_VHOST_USER_FLAG_NEED_REPLY, 0};
	CHECK(rb_vhost_check_hdr(&h, err, sizeof(err)) == 0);
}

TEST(header_rejects_wrong_version)
{
	struct rb_vhost_msg_hdr h = {RB_VHOST_USER_GET_FEATURES, 0x2, 0};
	CHECK(rb_vhost_check_hdr(&h, err, sizeof(err)) == -EPROTO);
	CHECK_STR_CONTAINS(err, "version");
}

TEST(header_rejects_reply_flag_from_frontend)
{
	struct rb_vhost_msg_hdr h = {RB_VHOST_USER_GET_FEATURES, 0x1 | RB_VHOST_USER_FLAG_REPLY, 0};
	CHECK(rb_vhost_check_hdr(&h, err, sizeof(err)) == -EPROTO);
}

TEST(header_rejects_oversized_payload)
{
	struct rb_vhost_msg_hdr h = {RB_VHOST_USER_SET_MEM_TABLE, 0x1, RB_VHOST_USER_MAX_PAYLOAD + 1};
	CHECK(rb_vhost_check_hdr(&h, err, sizeof(err)) == -EMSGSIZE);
	h.size = RB_VHOST_USER_MAX_PAYLOAD;
	CHECK(rb_vhost_check_hdr(&h, err, sizeof(err)) == 0);
}

/* ---- SET_MEM_TABLE ---------------------------------------------------------- */

static struct rb_vhost_mem_table_desc table(unsigned n)
{
	struct rb_vhost_mem_table_desc t = {.nregions = n};
	for (unsigned i = 0; i < RB_VHOST_MAX_MEM_REGIONS; i++)
		t.regions[i] = (struct rb_vhost_mem_region_desc){
			.gpa = (uint64_t)i << 30, .size = 1 << 20, .uva = 0x7f0000000000ull + ((uint64_t)i << 30),
			.mmap_offset = 0};
	return t;
}

static uint32_t table_size(unsigned n)
{
	return 8 + n * (uint32_t)sizeof(struct rb_vhost_mem_region_desc);
}

TEST(mem_table_accepts_one_to_eight_regions)
{
	struct rb_vhost_mem_table_desc out;
	for (unsigned n = 1; n <= 8; n++) {
		struct rb_vhost_mem_table_desc t = table(n);
		CHECK(rb_vhost_check_mem_table(&t, table_size(n), n, &out, err, sizeof(err)) == 0);
		CHECK_EQ_U64(out.nregions, n);
	}
}

TEST(mem_table_rejects_zero_and_nine_regions)
{
	struct rb_vhost_mem_table_desc out, t = table(0);
	uint8_t big[8 + 9 * 32] = {0};
	CHECK(rb_vhost_check_mem_table(&t, table_size(1), 0, &out, err, sizeof(err)) == -EINVAL);
	CHECK_STR_CONTAINS(err, "0 regions");
	uint32_t nine = 9;
	memcpy(big, &nine, 4);
	CHECK(rb_vhost_check_mem_table(big, sizeof(big), 9, &out, err, sizeof(err)) == -EINVAL);
}

TEST(mem_table_rejects_fd_count_mismatch)
{
	struct rb_vhost_mem_table_desc out, t = table(2);
	CHECK(rb_vhost_check_mem_table(&t, table_size(2), 1, &out, err, sizeof(err)) == -EINVAL);
	CHECK_STR_CONTAINS(err, "file descriptors");
	CHECK(rb_vhost_check_mem_table(&t, table_size(2), 3, &out, err, sizeof(err)) == -EINVAL);
}

TEST(mem_table_rejects_truncated_payload)
{
	struct rb_vhost_mem_table_desc out, t = table(3);
	CHECK(rb_vhost_check_mem_table(&t, 4, 3, &out, err, sizeof(err)) == -EINVAL);
	CHECK(rb_vhost_check_mem_table(&t, table_size(3) - 1, 3, &out, err, sizeof(err)) == -EINVAL);
}

TEST(mem_table_rejects_overflowing_ranges)
{
	struct rb_vhost_mem_table_desc out, t = table(1);
	t.regions[0].gpa = UINT64_MAX - 10;
	CHECK(rb_vhost_check_mem_table(&t, table_size(1), 1, &out, err, sizeof(err)) == -EINVAL);
	CHECK_STR_CONTAINS(err, "overflows");
	t = table(1);
	t.regions[0].uva = UINT64_MAX - 10;
	CHECK(rb_vhost_check_mem_table(&t, table_size(1), 1, &out, err, sizeof(err)) == -EINVAL);
	t = table(1);
	t.regions[0].mmap_offset = UINT64_MAX - 10;
	CHECK(rb_vhost_check_mem_table(&t, table_size(1), 1, &out, err, sizeof(err)) == -EINVAL);
	t = table(1);
	t.regions[0].size = 0;
	CHECK(rb_vhost_check_mem_table(&t, table_size(1), 1, &out, err, sizeof(err)) == -EINVAL);
}

TEST(mem_table_rejects_overlapping_guest_ranges)
{
	struct rb_vhost_mem_table_desc out, t = table(2);
	t.regions[1].gpa = t.regions[0].gpa + 4096;
	CHECK(rb_vhost_check_mem_table(&t, table_size(2), 2, &out, err, sizeof(err)) == -EINVAL);
	CHECK_STR_CONTAINS(err, "overlap");
}

/* ---- vring state, address, fds, config -------------------------------------- */

static int state(uint32_t req, uint32_t index, uint32_t num)
{
	struct rb_vhost_vring_state s = {index, num}, out;
	return rb_vhost_check_vring_state(req, &s, sizeof(s), 2, &out, err, sizeof(err));
}

TEST(vring_num_must_be_power_of_two_up_to_32768)
{
	CHECK(state(RB_VHOST_USER_SET_VRING_NUM, 0, 256) == 0);
	CHECK(state(RB_VHOST_USER_SET_VRING_NUM, 1, 32768) == 0);
	CHECK(state(RB_VHOST_USER_SET_VRING_NUM, 0, 0) == -EINVAL);
	CHECK(state(RB_VHOST_USER_SET_VRING_NUM, 0, 100) == -EINVAL);
	CHECK(state(RB_VHOST_USER_SET_VRING_NUM, 0, 65536) == -EINVAL);
	CHECK_STR_CONTAINS(err, "power of two");
}

TEST(vring_index_is_checked_in_full_32_bits)
{
	/* 0x10000 truncated to 16 bits would be ring 0 (CVE-2020-10723). */
	CHECK(state(RB_VHOST_USER_SET_VRING_NUM, 0x10000, 256) == -EINVAL);
	CHECK(state(RB_VHOST_USER_GET_VRING_BASE, 2, 0) == -EINVAL);
	CHECK_STR_CONTAINS(err, "ring 2 does not exist");
}

TEST(vring_base_and_enable_values_are_bounded)
{
	CHECK(state(RB_VHOST_USER_SET_VRING_BASE, 0, 0xffff) == 0);
	CHECK(state(RB_VHOST_USER_SET_VRING_BASE, 0, 0x10000) == -EINVAL);
	CHECK(state(RB_VHOST_USER_SET_VRING_ENABLE, 0, 1) == 0);
	CHECK(state(RB_VHOST_USER_SET_VRING_ENABLE, 0, 2) == -EINVAL);
}

TEST(vring_state_rejects_wrong_payload_size)
{
	struct rb_vhost_vring_state s = {0, 256}, out;
	CHECK(rb_vhost_check_vring_state(RB_VHOST_USER_SET_VRING_NUM, &s, 4, 2, &out, err, sizeof(err)) == -EINVAL);
	CHECK(rb_vhost_check_vring_state(RB_VHOST_USER_SET_VRING_NUM, &s, 12, 2, &out, err, sizeof(err)) == -EINVAL);
}

TEST(vring_addr_checks_size_and_index)
{
	struct rb_vhost_vring_addr a = {.index = 1}, out;
	CHECK(rb_vhost_check_vring_addr(&a, sizeof(a), 2, &out, err, sizeof(err)) == 0);
	CHECK(rb_vhost_check_vring_addr(&a, sizeof(a) - 1, 2, &out, err, sizeof(err)) == -EINVAL);
	a.index = 2;
	CHECK(rb_vhost_check_vring_addr(&a, sizeof(a), 2, &out, err, sizeof(err)) == -EINVAL);
}

static int vfd(uint64_t v, unsigned nfds, unsigned *idx, bool *has)
{
	return rb_vhost_check_vring_fd(&v, sizeof(v), nfds, 2, idx, has, err, sizeof(err));
}

TEST(vring_fd_message_matches_fds_to_nofd_bit)
{
	unsigned idx;
	bool has;
	CHECK(vfd(1, 1, &idx, &has) == 0);
	CHECK(idx == 1 && has);
	CHECK(vfd(RB_VHOST_USER_VRING_NOFD | 0, 0, &idx, &has) == 0);
	CHECK(idx == 0 && !has);
	CHECK(vfd(0, 0, &idx, &has) == -EINVAL);  /* fd promised, none sent */
	CHECK(vfd(RB_VHOST_USER_VRING_NOFD, 1, &idx, &has) == -EINVAL); /* extra fd */
	CHECK(vfd(5, 1, &idx, &has) == -EINVAL);  /* no ring 5 */
	CHECK(vfd(1ull << 9, 1, &idx, &has) == -EINVAL); /* reserved bits */
	CHECK_STR_CONTAINS(err, "reserved");
}

TEST(config_range_is_checked_without_overflow)
{
	uint8_t buf[12 + 256] = {0};
	struct rb_vhost_config_hdr h = {0, 60, 0}, out;
	memcpy(buf, &h, sizeof(h));
	CHECK(rb_vhost_check_config(buf, 12 + 60, &out, err, sizeof(err)) == 0);
	CHECK(rb_vhost_check_config(buf, 12 + 59, &out, err, sizeof(err)) == -EINVAL);
	h = (struct rb_vhost_config_hdr){UINT32_MAX - 4, 8, 0};
	memcpy(buf, &h, sizeof(h));
	CHECK(rb_vhost_check_config(buf, sizeof(buf), &out, err, sizeof(err)) == -EINVAL);
	h = (struct rb_vhost_config_hdr){200, 57, 0};
	memcpy(buf, &h, sizeof(h));
	CHECK(rb_vhost_check_config(buf, sizeof(buf), &out, err, sizeof(err)) == -EINVAL);
	CHECK(rb_vhost_check_config(buf, 8, &out, err, sizeof(err)) == -EINVAL);
}

TEST(backend_req_fd_needs_the_feature_one_fd_and_a_small_payload)
{
	CHECK(rb_vhost_check_backend_req_fd(0, 1, true, err, sizeof(err)) == 0);
	CHECK(rb_vhost_check_backend_req_fd(8, 1, true, err, sizeof(err)) == 0);
	CHECK(rb_vhost_check_backend_req_fd(0, 1, false, err, sizeof(err)) == -EINVAL);
	CHECK_STR_CONTAINS(err, "BACKEND_REQ");
	CHECK(rb_vhost_check_backend_req_fd(0, 0, true, err, sizeof(err)) == -EINVAL);
	CHECK(rb_vhost_check_backend_req_fd(0, 2, true, err, sizeof(err)) == -EINVAL);
	CHECK_STR_CONTAINS(err, "2 fds");
	CHECK(rb_vhost_check_backend_req_fd(4, 1, true, err, sizeof(err)) == -EINVAL);
}

/* ---- translation -------------------------------------------------------------- */

/* ---- inflight area ----------------------------------------------------------- */

static int inflight(uint32_t req, uint64_t size, uint64_t off, uint16_t nq, uint16_t qs,
		    unsigned nfds, uint32_t len)
{
	struct rb_vhost_inflight_desc d = {size, off, nq, qs, 0}, out;

	err[0] = 0;
	return rb_vhost_check_inflight(req, &d, len, nfds, 4, &out, err, sizeof(err));
}

TEST(inflight_get_checks_queues_size_and_fds)
{
	const uint32_t G = RB_VHOST_USER_GET_INFLIGHT_FD;

	CHECK_EQ_U64(sizeof(struct rb_vhost_inflight_desc), 24);
	CHECK_EQ_U64(inflight(G, 0, 0, 4, 32768, 0, 24), 0);
	CHECK_EQ_U64(inflight(G, 0, 0, 1, 1, 0, 24), 0);
	CHECK_EQ_U64(inflight(G, 0, 0, 0, 128, 0, 24), -EINVAL);
	CHECK_EQ_U64(inflight(G, 0, 0, 5, 128, 0, 24), -EINVAL);
	CHECK_STR_CONTAINS(err, "5 queues (the device has 4)");
	CHECK_EQ_U64(inflight(G, 0, 0, 2, 0, 0, 24), -EINVAL);
	CHECK_EQ_U64(inflight(G, 0, 0, 2, 96, 0, 24), -EINVAL);
	CHECK_EQ_U64(inflight(G, 0, 0, 2, 65535, 0, 24), -EINVAL);
	CHECK_EQ_U64(inflight(G, 0, 0, 2, 128, 1, 24), -EINVAL);
	CHECK_EQ_U64(inflight(G, 0, 0, 2, 128, 0, 20), -EINVAL);
	CHECK_STR_CONTAINS(err, "payload of 20 bytes");
}

TEST(inflight_set_checks_the_area_size_and_offset)
{
	const uint32_t S = RB_VHOST_USER_SET_INFLIGHT_FD;
	uint64_t need = 2 * rb_vring_inflight_bytes(128);

	CHECK_EQ_U64(rb_vring_inflight_bytes(128), 16 + 16 * 128 + 48);
	CHECK_EQ_U64(inflight(S, need, 0, 2, 128, 1, 24), 0);
	CHECK_EQ_U64(inflight(S, need + 65536, 4096, 2, 128, 1, 24), 0);
	CHECK_EQ_U64(inflight(S, need, 0, 2, 128, 0, 24), -EINVAL);
	CHECK_EQ_U64(inflight(S, need, 0, 2, 128, 2, 24), -EINVAL);
	CHECK_EQ_U64(inflight(S, need - 1, 0, 2, 128, 1, 24), -EINVAL);
	CHECK_EQ_U64(inflight(S, need + 65537, 0, 2, 128, 1, 24), -EINVAL);
	CHECK_EQ_U64(inflight(S, need, UINT64_MAX - need + 1, 2, 128, 1, 24), -EINVAL);
	CHECK_STR_CONTAINS(err, "overflows");
	CHECK_EQ_U64(inflight(S, need, (uint64_t)INT64_MAX + 1, 2, 128, 1, 24), -EINVAL);
}

TEST(translation_requires_the_whole_range_in_one_region)
{
	static uint8_t a[4096], b[4096];
	struct rb_vhost_mem m = {.n = 2};
	m.r[0] = (struct rb_vhost_mem_region){.gpa = 0x1000, .size = 4096, .uva = 0x10000, .host = a};
	m.r[1] = (struct rb_vhost_mem_region){.gpa = 0x2000, .size = 4096, .uva = 0x20000, .host = b};

	CHECK(rb_vhost_gpa_to_host(&m, 0x1000, 4096) == a);
	CHECK(rb_vhost_gpa_to_host(&m, 0x1ff0, 16) == a + 0xff0);
	/* Adjacent in guest space, but two host mappings: must not span. */
	CHECK(rb_vhost_gpa_to_host(&m, 0x1ff0, 17) == NULL);
	CHECK(rb_vhost_gpa_to_host(&m, 0x0fff, 1) == NULL);
	CHECK(rb_vhost_gpa_to_host(&m, 0x3000, 0) == NULL);
	CHECK(rb_vhost_gpa_to_host(&m, 0x2000, UINT64_MAX) == NULL);
	CHECK(rb_vhost_gpa_to_host(&m, UINT64_MAX, 2) == NULL);
	CHECK(rb_vhost_uva_to_host(&m, 0x20010, 8) == b + 0x10);
	CHECK(rb_vhost_uva_to_host(&m, 0x1000, 8) == NULL);
}

TEST_MAIN()
