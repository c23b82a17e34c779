/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of lib/virtio: the split ring as a hostile driver fills it (a
 * test per known attack in reference/vhost-user.md), used-ring publishing,
 * notification suppression, and virtio-blk request parsing.  Guest memory
 * is two heap regions at fake guest-physical addresses with a gap between.
 */
#include <rosen/virtio.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "virtq_fixture.h"

/* ---- Set-up --------------------------------------------------------------- */

TEST(init_rejects_bad_sizes_and_misaligned_rings)
{
	struct rb_virtq q;

	setup_q(8, 0, false, false);
	CHECK_EQ_U64(rb_virtq_init(&q, 0, desc, avail, used, 0, 0, 0, translate, NULL), -EINVAL);
	CHECK_EQ_U64(rb_virtq_init(&q, 6, desc, avail, used, 0, 0, 0, translate, NULL), -EINVAL);
	CHECK_EQ_U64(rb_virtq_init(&q, 65535, desc, avail, used, 0, 0, 0, translate, NULL), -EINVAL);
	CHECK_EQ_U64(rb_virtq_init(&q, 8, (char *)desc + 8, avail, used, 0, 0, 0, translate, NULL), -EINVAL);
	CHECK_EQ_U64(rb_virtq_init(&q, 8, desc, (char *)avail + 1, used, 0, 0, 0, translate, NULL), -EINVAL);
	CHECK_EQ_U64(rb_virtq_init(&q, 8, desc, avail, (char *)used + 2, 0, 0, 0, translate, NULL), -EINVAL);
	CHECK_EQ_U64(rb_virtq_init(&q, 8, desc, avail, used, 0, 0, 0, NULL, NULL), -EINVAL);
	CHECK_EQ_U64(rb_virtq_init(&q, 1, desc, avail, used, 0, 0, 0, translate, NULL), 0);
	CHECK_EQ_U64(rb_virtq_init(&q, 32768, desc, avail, used, 0, 0, 0, translate, NULL), 0);
}

/* ---- Popping valid chains --------------------------------------------------- */

TEST(pop_on_empty_ring_returns_0)
{
	setup_q(8, 0, false, false);
	CHECK_EQ_U64(rb_virtq_pending(&vq), 0);
	CHECK_EQ_U64(pop(), 0);
	CHECK_EQ_U64(vq.last_avail, 0);
}

TEST(pop_translates_a_chain_across_regions_readable_first)
{
	uint64_t a, b;
	struct seg s[3];

	setup_q(8, 0, false, false);
	a = buf_a(100);
	b = buf_b(300);
	s[0] = (struct seg)R(a, 100);
	s[1] = (struct seg)W(b, 300);
	s[2] = (struct seg)W(a + 100, 5);
	add_chain(3, s, 3);
	CHECK_EQ_U64(rb_virtq_pending(&vq), 1);
	REQUIRE(pop() == 1);
	CHECK_EQ_U64(chain.head, 3);
	CHECK_EQ_U64(chain.n_segs, 3);
	CHECK_EQ_U64(chain.n_read, 1);
	CHECK_EQ_U64(chain.read_bytes, 100);
	CHECK_EQ_U64(chain.write_bytes, 305);
	CHECK(chain.iov[0].iov_base == G(a) && chain.iov[0].iov_len == 100);
	CHECK(chain.iov[1].iov_base == G(b) && chain.iov[1].iov_len == 300);
	CHECK(chain.iov[2].iov_base == G(a + 100) && chain.iov[2].iov_len == 5);
	CHECK_EQ_U64(rb_virtq_pending(&vq), 0);
	CHECK_EQ_U64(pop(), 0);
}

TEST(chain_using_every_descriptor_once_is_accepted)
{
	uint64_t b;

	setup_q(8, 0, false, false);
	b = buf_a(8);
	for (uint16_t i = 0; i < 8; i++)
		set_desc(i, b + i, 1, i < 7 ? RB_VRING_DESC_F_NEXT : 0, i + 1);
	publish(0);
	REQUIRE(pop() == 1);
	CHECK_EQ_U64(chain.n_segs, 8);
}

TEST(zero_length_descriptor_with_valid_address_carries_no_segment)
{
	uint64_t b;
	struct seg s[3];

	setup_q(8, 0, false, false);
	b = buf_a(16);
	s[0] = (struct seg)R(b, 16);
	s[1] = (struct seg)R(b + 16, 0);
	s[2] = (struct seg)W(b, 1);
	add_chain(0, s, 3);
	REQUIRE(pop() == 1);
	CHECK_EQ_U64(chain.n_segs, 2);
	CHECK_EQ_U64(chain.n_read, 1);
	CHECK_EQ_U64(chain.iov[1].iov_len, 1);
}

TEST(indexes_wrap_at_65536_in_pop_push_and_pending)
{
	uint64_t b;

	setup_q(8, 65534, false, false);
	b = buf_a(64);
	for (uint16_t k = 0; k < 4; k++) {
		struct seg s[1] = {W(b + 16 * k, 16)};

		add_chain(k, s, 1);
	}
	CHECK_EQ_U64(avail->idx, 2);
	CHECK_EQ_U64(rb_virtq_pending(&vq), 4);
	for (uint16_t k = 0; k < 4; k++) {
		REQUIRE(pop() == 1);
		CHECK_EQ_U64(chain.head, k);
		CHECK(chain.iov[0].iov_base == G(b + 16 * k));
		rb_virtq_push(&vq, chain.head, 100 + k);
		CHECK_EQ_U64(used->idx, (uint16_t)(65535 + k));
	}
	CHECK_EQ_U64(rb_virtq_pending(&vq), 0);
	CHECK_EQ_U64(vq.last_avail, 2);
	CHECK_EQ_U64(used->idx, 2);
	for (uint16_t k = 0; k < 4; k++) {
		struct rb_vring_used_elem *e = &used->ring[(uint16_t)(65534 + k) % 8];

		CHECK_EQ_U64(e->id, k);
		CHECK_EQ_U64(e->len, 100 + k);
	}
}

TEST(avail_idx_exactly_size_ahead_is_a_full_ring_not_an_error)
{
	uint64_t b;

	setup_q(4, 0, false, false);
	b = buf_a(16);
	for (uint16_t k = 0; k < 4; k++) {
		struct seg s[1] = {R(b, 16)};

		add_chain(k, s, 1);
	}
	CHECK_EQ_U64(rb_virtq_pending(&vq), 4);
	for (int k = 0; k < 4; k++)
		CHECK_EQ_U64(pop(), 1);
	CHECK_EQ_U64(pop(), 0);
	CHECK(!vq.broken);
}

/* ---- Malformed chains (consumed, given back) ------------------------------ */

TEST(descriptor_crossing_region_end_is_rejected)
{
	/* CVE-2018-1059: the start is mapped, the end is not. */
	struct seg s[1] = {R(GA_END - 8, 16)};

	setup_q(8, 0, false, false);
	add_chain(2, s, 1);
	EXPECT_BAD_CHAIN(2, "not inside one guest memory region");
}

TEST(descriptor_range_wrapping_the_address_space_is_rejected)
{
	struct seg s[1] = {W(UINT64_MAX - 3, 16)};

	setup_q(8, 0, false, false);
	add_chain(0, s, 1);
	EXPECT_BAD_CHAIN(0, "not inside");
}

TEST(zero_length_descriptor_with_invalid_address_is_rejected)
{
	/* CVE-2020-10725: an address nobody checked because len was 0. */
	uint64_t b;
	struct seg s[2];

	setup_q(8, 0, false, false);
	b = buf_a(16);
	s[0] = (struct seg)R(b, 16);
	s[1] = (struct seg)W(BAD_GPA, 0);
	add_chain(0, s, 2);
	EXPECT_BAD_CHAIN(0, "0xdead00000000");
}

TEST(self_loop_chain_is_rejected)
{
	setup_q(8, 0, false, false);
	set_desc(5, buf_a(16), 16, RB_VRING_DESC_F_NEXT, 5);
	publish(5);
	EXPECT_BAD_CHAIN(5, "loop");
}

TEST(two_cycle_chain_is_rejected)
{
	uint64_t b;

	setup_q(8, 0, false, false);
	b = buf_a(16);
	set_desc(1, b, 16, RB_VRING_DESC_F_NEXT, 2);
	set_desc(2, b, 16, RB_VRING_DESC_F_NEXT, 1);
	publish(1);
	EXPECT_BAD_CHAIN(1, "loop");
}

TEST(chain_longer_than_the_queue_is_rejected)
{
	uint64_t b;

	setup_q(8, 0, false, false);
	b = buf_a(16);
	/* All 8 descriptors, then back to the first: 9 steps. */
	for (uint16_t i = 0; i < 8; i++)
		set_desc(i, b, 1, RB_VRING_DESC_F_NEXT, (i + 1) % 8);
	publish(0);
	EXPECT_BAD_CHAIN(0, "longer than the queue");
}

TEST(next_outside_the_ring_is_rejected)
{
	setup_q(8, 0, false, false);
	set_desc(0, buf_a(16), 16, RB_VRING_DESC_F_NEXT, 8);
	publish(0);
	EXPECT_BAD_CHAIN(0, "next 8 is outside");
}

TEST(readable_after_writable_is_rejected)
{
	uint64_t b;
	struct seg s[3];

	setup_q(8, 0, false, false);
	b = buf_a(64);
	s[0] = (struct seg)R(b, 16);
	s[1] = (struct seg)W(b + 16, 16);
	s[2] = (struct seg)R(b + 32, 16);
	add_chain(0, s, 3);
	EXPECT_BAD_CHAIN(0, "device-readable buffer after a device-writable");
}

TEST(chain_of_256_segments_is_accepted)
{
	uint64_t b;

	setup_q(512, 0, false, false);
	b = buf_a(16);
	for (uint16_t i = 0; i < 256; i++)
		set_desc(i, b, 1, i < 255 ? RB_VRING_DESC_F_NEXT : 0, i + 1);
	publish(0);
	REQUIRE(pop() == 1);
	CHECK_EQ_U64(chain.n_segs, RB_VIRTQ_MAX_SEGS);
}

TEST(chain_of_257_segments_is_rejected)
{
	uint64_t b;

	setup_q(512, 0, false, false);
	b = buf_a(16);
	for (uint16_t i = 0; i < 257; i++)
		set_desc(i, b, 1, i < 256 ? RB_VRING_DESC_F_NEXT : 0, i + 1);
	publish(0);
	EXPECT_BAD_CHAIN(0, "more than 256 segments");
}

TEST(empty_descriptors_count_against_the_segment_limit)
{
	uint64_t b;

	setup_q(512, 0, false, false);
	b = buf_a(16);
	for (uint16_t i = 0; i < 257; i++)
		set_desc(i, b, 0, i < 256 ? RB_VRING_DESC_F_NEXT : 0, i + 1);
	publish(0);
	EXPECT_BAD_CHAIN(0, "more than 256 segments");
}

TEST(loop_of_empty_descriptors_ends_after_256_not_after_the_queue_size)
{
	/* fuzz_virtq: 32768 such chains in a 32768-entry ring cost 2^30
	 * steps per refill when only the queue size bounded the walk. */
	uint64_t b;

	setup_q(512, 0, false, false);
	b = buf_a(16);
	for (uint16_t i = 0; i < 512; i++)
		set_desc(i, b, 0, RB_VRING_DESC_F_NEXT, (i + 1) % 512);
	publish(0);
	EXPECT_BAD_CHAIN(0, "descriptor 256: more than 256 segments");
}

TEST(rejected_chain_can_be_given_back_and_the_queue_goes_on)
{
	uint64_t b;
	struct seg good[1];

	setup_q(8, 0, false, false);
	b = buf_a(16);
	set_desc(4, b, 16, RB_VRING_DESC_F_NEXT, 4);
	publish(4);
	good[0] = (struct seg)W(b, 16);
	add_chain(6, good, 1);
	EXPECT_BAD_CHAIN(4, "loop");
	rb_virtq_push(&vq, chain.head, 0);
	CHECK_EQ_U64(used->idx, 1);
	CHECK_EQ_U64(used->ring[0].id, 4);
	CHECK_EQ_U64(used->ring[0].len, 0);
	REQUIRE(pop() == 1);
	CHECK_EQ_U64(chain.head, 6);
	CHECK_EQ_U64(chain.n_segs, 1);
}

/* ---- Corrupt avail ring (queue broken) ------------------------------------ */

TEST(head_outside_the_ring_breaks_the_queue)
{
	setup_q(8, 0, false, false);
	publish(8);
	CHECK_EQ_U64(pop(), -EIO);
	CHECK(vq.broken);
	CHECK_STR_CONTAINS(err, "head 8");
	CHECK_EQ_U64(rb_virtq_pending(&vq), 0);
}

TEST(avail_idx_jumping_past_size_breaks_the_queue_for_good)
{
	struct seg s[1];

	setup_q(8, 0, false, false);
	s[0] = (struct seg)R(buf_a(16), 16);
	add_chain(0, s, 1);
	__atomic_store_n(&avail->idx, 9, __ATOMIC_RELEASE);
	CHECK_EQ_U64(pop(), -EIO);
	CHECK(vq.broken);
	CHECK_STR_CONTAINS(err, "avail idx 9");
	CHECK_EQ_U64(vq.last_avail, 0);
	/* The driver "fixing" the index does not revive the queue. */
	__atomic_store_n(&avail->idx, 1, __ATOMIC_RELEASE);
	CHECK_EQ_U64(pop(), -EIO);
	CHECK_STR_CONTAINS(err, "broken");
	CHECK_EQ_U64(rb_virtq_pending(&vq), 0);
}

/* ---- Indirect tables ------------------------------------------------------ */

TEST(indirect_table_is_walked_in_table_order)
{
	uint64_t b, t;
	struct seg s[3];

	setup_q(8, 0, false, true);
	b = buf_a(64);
	s[0] = (struct seg)R(b, 16);
	s[1] = (struct seg)W(b + 16, 32);
	s[2] = (struct seg)W(b + 48, 1);
	t = put_table(s, 3, true);
	/* The WRITE flag on the table's own descriptor means nothing. */
	set_desc(2, t, 48, RB_VRING_DESC_F_INDIRECT | RB_VRING_DESC_F_WRITE, 0);
	publish(2);
	REQUIRE(pop() == 1);
	CHECK_EQ_U64(chain.head, 2);
	CHECK_EQ_U64(chain.n_segs, 3);
	CHECK_EQ_U64(chain.n_read, 1);
	CHECK_EQ_U64(chain.write_bytes, 33);
	CHECK(chain.iov[0].iov_base == G(b));
	CHECK(chain.iov[2].iov_base == G(b + 48));
}

TEST(ring_descriptors_before_an_indirect_one_are_kept)
{
	uint64_t b, t;
	struct seg s[1];

	setup_q(8, 0, false, true);
	b = buf_a(64);
	s[0] = (struct seg)W(b + 16, 8);
	t = put_table(s, 1, false);
	set_desc(0, b, 16, RB_VRING_DESC_F_NEXT, 1);
	set_desc(1, t, 16, RB_VRING_DESC_F_INDIRECT, 0);
	publish(0);
	REQUIRE(pop() == 1);
	CHECK_EQ_U64(chain.n_segs, 2);
	CHECK_EQ_U64(chain.n_read, 1);
	CHECK(chain.iov[1].iov_base == G(b + 16));
}

TEST(indirect_without_the_feature_is_rejected)
{
	struct seg s[1];
	uint64_t t;

	setup_q(8, 0, false, false);
	s[0] = (struct seg)R(buf_a(16), 16);
	t = put_table(s, 1, false);
	set_desc(0, t, 16, RB_VRING_DESC_F_INDIRECT, 0);
	publish(0);
	EXPECT_BAD_CHAIN(0, "not negotiated");
}

TEST(nested_indirect_is_rejected)
{
	struct seg inner[1], outer[2];
	uint64_t b, t_inner, t_outer;

	setup_q(8, 0, false, true);
	b = buf_a(16);
	inner[0] = (struct seg)R(b, 16);
	t_inner = put_table(inner, 1, false);
	outer[0] = (struct seg)R(b, 16);
	outer[1] = (struct seg){t_inner, 16, RB_VRING_DESC_F_INDIRECT};
	t_outer = put_table(outer, 2, false);
	set_desc(0, t_outer, 32, RB_VRING_DESC_F_INDIRECT, 0);
	publish(0);
	EXPECT_BAD_CHAIN(0, "nested INDIRECT");
}

TEST(indirect_with_next_is_rejected)
{
	struct seg s[1];
	uint64_t t;

	setup_q(8, 0, false, true);
	s[0] = (struct seg)R(buf_a(16), 16);
	t = put_table(s, 1, false);
	set_desc(0, t, 16, RB_VRING_DESC_F_INDIRECT | RB_VRING_DESC_F_NEXT, 1);
	set_desc(1, buf_a(16), 16, RB_VRING_DESC_F_WRITE, 0);
	publish(0);
	EXPECT_BAD_CHAIN(0, "both INDIRECT and NEXT");
}

TEST(indirect_length_not_a_multiple_of_16_is_rejected)
{
	struct seg s[2];
	uint64_t t;

	setup_q(8, 0, false, true);
	s[0] = (struct seg)R(buf_a(16), 16);
	s[1] = (struct seg)W(buf_a(16), 16);
	t = put_table(s, 2, false);
	set_desc(0, t, 24, RB_VRING_DESC_F_INDIRECT, 0);
	publish(0);
	EXPECT_BAD_CHAIN(0, "24 bytes");
}

TEST(indirect_length_zero_is_rejected)
{
	setup_q(8, 0, false, true);
	set_desc(0, buf_a(16), 0, RB_VRING_DESC_F_INDIRECT, 0);
	publish(0);
	EXPECT_BAD_CHAIN(0, "of 0 bytes");
}

TEST(indirect_table_crossing_region_end_is_rejected)
{
	/* The first entry is mapped and ends the chain: only a translation of
	 * the whole table catches the second. */
	struct rb_vring_desc *d = NULL;
	uint64_t b, t = GB_END - 16;

	setup_q(8, 0, false, true);
	b = buf_a(16);
	d = G(t);
	*d = (struct rb_vring_desc){b, 16, 0, 0};
	set_desc(0, t, 32, RB_VRING_DESC_F_INDIRECT, 0);
	publish(0);
	EXPECT_BAD_CHAIN(0, "indirect table");
}

TEST(indirect_next_outside_the_table_is_rejected)
{
	struct seg s[2];
	uint64_t t;
	struct rb_vring_desc *d;

	setup_q(8, 0, false, true);
	s[0] = (struct seg)R(buf_a(16), 16);
	s[1] = (struct seg)W(buf_a(16), 16);
	t = put_table(s, 2, false);
	d = G(t);
	d[0].next = 2;
	set_desc(0, t, 32, RB_VRING_DESC_F_INDIRECT, 0);
	publish(0);
	EXPECT_BAD_CHAIN(0, "outside the 2-entry table");
}

TEST(indirect_loop_is_rejected)
{
	struct seg s[3];
	uint64_t t, b;
	struct rb_vring_desc *d;

	setup_q(8, 0, false, true);
	b = buf_a(16);
	for (int i = 0; i < 3; i++)
		s[i] = (struct seg)R(b, 16);
	t = put_table(s, 3, false);
	d = G(t);
	d[2].flags = RB_VRING_DESC_F_NEXT;
	d[2].next = 1;
	set_desc(0, t, 48, RB_VRING_DESC_F_INDIRECT, 0);
	publish(0);
	EXPECT_BAD_CHAIN(0, "does not end within 3 entries");
}

TEST(indirect_chain_of_more_than_256_segments_is_rejected)
{
	static struct seg s[300];
	uint64_t t, b;

	setup_q(8, 0, false, true);
	b = buf_a(16);
	for (int i = 0; i < 300; i++)
		s[i] = (struct seg)R(b, 1);
	t = put_table(s, 300, false);
	set_desc(0, t, 300 * 16, RB_VRING_DESC_F_INDIRECT, 0);
	publish(0);
	EXPECT_BAD_CHAIN(0, "does not end within 256 entries");
}

TEST(indirect_chain_of_256_segments_is_accepted)
{
	static struct seg s[256];
	uint64_t t, b;

	setup_q(8, 0, false, true);
	b = buf_a(16);
	for (int i = 0; i < 256; i++)
		s[i] = (struct seg)R(b, 1);
	t = put_table(s, 256, false);
	set_desc(0, t, 256 * 16, RB_VRING_DESC_F_INDIRECT, 0);
	publish(0);
	REQUIRE(pop() == 1);
	CHECK_EQ_U64(chain.n_segs, 256);
}

TEST(segment_limit_counts_ring_and_indirect_segments_together)
{
	static struct seg s[256];
	uint64_t t, b;

	setup_q(8, 0, false, true);
	b = buf_a(16);
	for (int i = 0; i < 256; i++)
		s[i] = (struct seg)R(b, 1);
	t = put_table(s, 256, false);
	set_desc(0, b, 4, RB_VRING_DESC_F_NEXT, 1);
	set_desc(1, t, 256 * 16, RB_VRING_DESC_F_INDIRECT, 0);
	publish(0);
	EXPECT_BAD_CHAIN(0, "more than 256 segments");
}

/* ---- Used ring and notifications ------------------------------------------ */

TEST(push_publishes_used_entries_in_order)
{
	static const uint16_t ids[] = {5, 2, 7};

	setup_q(8, 0, false, false);
	for (unsigned k = 0; k < N(ids); k++) {
		rb_virtq_push(&vq, ids[k], 10 * (k + 1));
		CHECK_EQ_U64(used->idx, k + 1);
	}
	for (unsigned k = 0; k < N(ids); k++) {
		CHECK_EQ_U64(used->ring[k].id, ids[k]);
		CHECK_EQ_U64(used->ring[k].len, 10 * (k + 1));
	}
}

/*
 * With EVENT_IDX: pushes one entry from `start`, checks (signalled up to
 * start+1), pushes two more, and asks again with used_event = ev.  The
 * driver is owed a notification iff ev is in [start+1, start+3).
 */
static bool notify_after(uint16_t start, uint16_t ev)
{
	setup_q(8, start, true, false);
	rb_virtq_push(&vq, 0, 0);
	(void)rb_virtq_should_notify(&vq);
	rb_virtq_push(&vq, 1, 0);
	rb_virtq_push(&vq, 2, 0);
	avail->ring[qsize] = ev; /* used_event */
	return rb_virtq_should_notify(&vq);
}

TEST(event_idx_notifies_only_when_used_event_was_crossed)
{
	CHECK(!notify_after(0, 0));   /* before: already notified for it */
	CHECK(notify_after(0, 1));    /* first new entry */
	CHECK(notify_after(0, 2));    /* last new entry */
	CHECK(!notify_after(0, 3));   /* not reached yet */
	CHECK(!notify_after(0, 200)); /* far ahead */
}

TEST(event_idx_comparison_survives_index_wrap)
{
	/* signalled 65535, new entries 65535 and 0, used_idx 1. */
	CHECK(!notify_after(65534, 65534));
	CHECK(notify_after(65534, 65535));
	CHECK(notify_after(65534, 0));
	CHECK(!notify_after(65534, 1));
}

TEST(event_idx_first_check_always_notifies)
{
	setup_q(8, 0, true, false);
	rb_virtq_push(&vq, 0, 0);
	avail->ring[qsize] = 100; /* would say "not yet" */
	CHECK(rb_virtq_should_notify(&vq));
	/* Nothing new since: no notification. */
	CHECK(!rb_virtq_should_notify(&vq));
}

TEST(event_idx_notifies_after_65536_unchecked_pushes)
{
	/* used_idx comes back to signalled_used: the interval is ambiguous,
	 * so the device must notify rather than compute "nothing new". */
	setup_q(8, 0, true, false);
	rb_virtq_push(&vq, 0, 0);
	(void)rb_virtq_should_notify(&vq);
	for (unsigned k = 0; k < 65536; k++)
		rb_virtq_push(&vq, 0, 0);
	avail->ring[qsize] = 500;
	CHECK(rb_virtq_should_notify(&vq));
}

TEST(no_interrupt_flag_suppresses_notify_without_event_idx)
{
	setup_q(8, 0, false, false);
	rb_virtq_push(&vq, 0, 0);
	avail->flags = RB_VRING_AVAIL_F_NO_INTERRUPT;
	avail->ring[qsize] = 0; /* used_event: ignored without EVENT_IDX */
	CHECK(!rb_virtq_should_notify(&vq));
	rb_virtq_push(&vq, 1, 0);
	avail->flags = 0;
	CHECK(rb_virtq_should_notify(&vq));
}

TEST(set_kicks_with_event_idx_writes_avail_event_only)
{
	uint16_t *avail_event;
	uint64_t b;

	setup_q(8, 0, true, false);
	avail_event = (uint16_t *)&used->ring[qsize];
	b = buf_a(16);
	for (uint16_t k = 0; k < 3; k++) {
		struct seg s[1] = {R(b, 16)};

		add_chain(k, s, 1);
	}
	REQUIRE(pop() == 1);
	REQUIRE(pop() == 1);
	*avail_event = 0x5555;
	rb_virtq_set_kicks(&vq, true);
	CHECK_EQ_U64(*avail_event, 2); /* last_avail */
	CHECK_EQ_U64(used->flags, 0);
	*avail_event = 0x5555;
	rb_virtq_set_kicks(&vq, false);
	CHECK_EQ_U64(*avail_event, 0x5555);
	CHECK_EQ_U64(used->flags, 0);
}

TEST(set_kicks_without_event_idx_toggles_no_notify_only)
{
	uint16_t *avail_event;

	setup_q(8, 0, false, false);
	avail_event = (uint16_t *)&used->ring[qsize];
	*avail_event = 0x5555;
	rb_virtq_set_kicks(&vq, false);
	CHECK_EQ_U64(used->flags, RB_VRING_USED_F_NO_NOTIFY);
	rb_virtq_set_kicks(&vq, true);
	CHECK_EQ_U64(used->flags, 0);
	CHECK_EQ_U64(*avail_event, 0x5555);
}

/* ---- virtio-blk requests ---------------------------------------------------- */

static struct rb_blk_req req;

/* A request header in guest memory, followed by `extra` bytes. */
static uint64_t put_hdr(uint32_t type, uint64_t sector, size_t extra)
{
	uint64_t h = buf_a(16 + extra);
	struct rb_virtio_blk_outhdr hdr = {type, 0, sector};

	memcpy(G(h), &hdr, sizeof(hdr));
	return h;
}

static uint64_t put_range(uint64_t sector, uint32_t n, uint32_t flags)
{
	uint64_t r = buf_a(16);
	struct rb_virtio_blk_discard_wz wz = {sector, n, flags};

	memcpy(G(r), &wz, sizeof(wz));
	return r;
}

/* Publishes the chain, pops it, parses it. */
static int parse(const struct seg *s, unsigned n)
{
	add_chain(0, s, n);
	REQUIRE(pop() == 1);
	err[0] = 0;
	memset(&req, 0xa5, sizeof(req));
	return rb_blk_req_parse(&chain, &req, err, sizeof(err));
}

TEST(blk_read_request_is_parsed)
{
	uint64_t h, d, st;

	setup_q(16, 0, false, false);
	h = put_hdr(RB_VIRTIO_BLK_T_IN, 7, 0);
	d = buf_b(1024);
	st = buf_a(1);
	{
		struct seg s[] = {R(h, 16), W(d, 1024), W(st, 1)};

		CHECK_EQ_U64(parse(s, N(s)), RB_VIRTIO_BLK_S_OK);
	}
	CHECK_EQ_U64(req.hdr.type, RB_VIRTIO_BLK_T_IN);
	CHECK_EQ_U64(req.hdr.sector, 7);
	CHECK(req.status == G(st));
	REQUIRE(req.iovcnt == 1);
	CHECK(req.iov[0].iov_base == G(d));
	CHECK_EQ_U64(req.iov[0].iov_len, 1024);
	CHECK_EQ_U64(req.data_bytes, 1024);
}

TEST(blk_header_split_over_three_descriptors_is_served)
{
	/* Valid with VERSION_1: the pieces lie apart (one in the other
	 * region), so reading 16 bytes from the first would be wrong. */
	struct rb_virtio_blk_outhdr hdr = {RB_VIRTIO_BLK_T_OUT, 0,
					   0x1122334455667788ull};
	uint64_t p0, p1, p2, d, st;

	setup_q(16, 0, false, false);
	p0 = buf_a(16);
	p1 = buf_b(16);
	p2 = buf_a(16);
	memset(G(p0), 0xff, 16);
	memset(G(p1), 0xff, 16);
	memset(G(p2), 0xff, 16);
	memcpy(G(p0), (char *)&hdr, 5);
	memcpy(G(p1), (char *)&hdr + 5, 7);
	memcpy(G(p2), (char *)&hdr + 12, 4);
	d = buf_a(512);
	st = buf_a(1);
	{
		struct seg s[] = {R(p0, 5), R(p1, 7), R(p2, 4), R(d, 512), W(st, 1)};

		CHECK_EQ_U64(parse(s, N(s)), RB_VIRTIO_BLK_S_OK);
	}
	CHECK_EQ_U64(req.hdr.type, RB_VIRTIO_BLK_T_OUT);
	CHECK_EQ_U64(req.hdr.sector, 0x1122334455667788ull);
	REQUIRE(req.iovcnt == 1);
	CHECK(req.iov[0].iov_base == G(d));
	CHECK_EQ_U64(req.data_bytes, 512);
}

TEST(blk_header_sharing_a_descriptor_with_data_is_trimmed_off)
{
	uint64_t h, st;

	setup_q(16, 0, false, false);
	h = put_hdr(RB_VIRTIO_BLK_T_OUT, 3, 1024);
	st = buf_a(1);
	{
		struct seg s[] = {R(h, 16 + 1024), W(st, 1)};

		CHECK_EQ_U64(parse(s, N(s)), RB_VIRTIO_BLK_S_OK);
	}
	CHECK_EQ_U64(req.hdr.sector, 3);
	REQUIRE(req.iovcnt == 1);
	CHECK(req.iov[0].iov_base == (char *)G(h) + 16);
	CHECK_EQ_U64(req.iov[0].iov_len, 1024);
	CHECK_EQ_U64(req.data_bytes, 1024);
}

TEST(blk_status_sharing_the_last_writable_segment_is_trimmed_off)
{
	uint64_t h, d;

	setup_q(16, 0, false, false);
	h = put_hdr(RB_VIRTIO_BLK_T_IN, 0, 0);
	d = buf_a(513);
	{
		struct seg s[] = {R(h, 16), W(d, 513)};

		CHECK_EQ_U64(parse(s, N(s)), RB_VIRTIO_BLK_S_OK);
	}
	CHECK(req.status == (uint8_t *)G(d) + 512);
	REQUIRE(req.iovcnt == 1);
	CHECK_EQ_U64(req.iov[0].iov_len, 512);
	CHECK_EQ_U64(req.data_bytes, 512);
}

TEST(blk_header_shorter_than_16_bytes_is_ioerr)
{
	uint64_t h, st;

	setup_q(16, 0, false, false);
	h = put_hdr(RB_VIRTIO_BLK_T_IN, 0, 0);
	st = buf_a(1);
	{
		struct seg s[] = {R(h, 12), W(st, 1)};

		CHECK_EQ_U64(parse(s, N(s)), RB_VIRTIO_BLK_S_IOERR);
	}
	CHECK(req.status == G(st));
	CHECK_EQ_U64(req.iovcnt, 0);
	CHECK_STR_CONTAINS(err, "header is 12");
	{
		struct seg s[] = {W(st, 1)};

		CHECK_EQ_U64(parse(s, N(s)), RB_VIRTIO_BLK_S_IOERR);
	}
	CHECK(req.status == G(st));
	CHECK_STR_CONTAINS(err, "header is 0");
}

TEST(blk_request_without_a_status_byte_is_einval)
{
	uint64_t h, d;

	setup_q(16, 0, false, false);
	h = put_hdr(RB_VIRTIO_BLK_T_OUT, 0, 0);
	d = buf_a(512);
	{
		struct seg s[] = {R(h, 16), R(d, 512)};

		CHECK_EQ_U64(parse(s, N(s)), -EINVAL);
	}
	CHECK_STR_CONTAINS(err, "status");
	CHECK(req.status == NULL);
}

TEST(blk_data_not_a_multiple_of_512_is_ioerr)
{
	uint64_t h, d, st;

	setup_q(16, 0, false, false);
	h = put_hdr(RB_VIRTIO_BLK_T_IN, 0, 0);
	d = buf_a(1000);
	st = buf_a(1);
	{
		struct seg s[] = {R(h, 16), W(d, 100), W(st, 1)};

		CHECK_EQ_U64(parse(s, N(s)), RB_VIRTIO_BLK_S_IOERR);
	}
	CHECK_STR_CONTAINS(err, "not a multiple of 512");
	CHECK(req.status == G(st));
	h = put_hdr(RB_VIRTIO_BLK_T_OUT, 0, 0);
	{
		struct seg s[] = {R(h, 16), R(d, 1000), W(st, 1)};

		CHECK_EQ_U64(parse(s, N(s)), RB_VIRTIO_BLK_S_IOERR);
	}
	CHECK_STR_CONTAINS(err, "OUT data of 1000");
}

TEST(blk_read_with_device_readable_data_is_ioerr)
{
	uint64_t h, d, st;

	setup_q(16, 0, false, false);
	h = put_hdr(RB_VIRTIO_BLK_T_IN, 0, 512);
	d = buf_a(512);
	st = buf_a(1);
	{
		struct seg s[] = {R(h, 16 + 512), W(d, 512), W(st, 1)};

		CHECK_EQ_U64(parse(s, N(s)), RB_VIRTIO_BLK_S_IOERR);
	}
	CHECK_STR_CONTAINS(err, "IN request carries 512");
	CHECK_EQ_U64(req.iovcnt, 0);
}

TEST(blk_write_with_device_writable_data_is_ioerr)
{
	uint64_t h, d, st;

	setup_q(16, 0, false, false);
	h = put_hdr(RB_VIRTIO_BLK_T_OUT, 0, 512);
	d = buf_a(512);
	st = buf_a(1);
	{
		struct seg s[] = {R(h, 16 + 512), W(d, 512), W(st, 1)};

		CHECK_EQ_U64(parse(s, N(s)), RB_VIRTIO_BLK_S_IOERR);
	}
	CHECK_STR_CONTAINS(err, "OUT request carries 512");
}

TEST(blk_get_id_needs_a_20_byte_buffer)
{
	uint64_t h, d, st;

	setup_q(16, 0, false, false);
	h = put_hdr(RB_VIRTIO_BLK_T_GET_ID, 0, 0);
	d = buf_a(20);
	st = buf_a(1);
	{
		struct seg s[] = {R(h, 16), W(d, 19), W(st, 1)};

		CHECK_EQ_U64(parse(s, N(s)), RB_VIRTIO_BLK_S_IOERR);
	}
	CHECK_STR_CONTAINS(err, "19 bytes, needs 20");
	{
		struct seg s[] = {R(h, 16), W(d, 20), W(st, 1)};

		CHECK_EQ_U64(parse(s, N(s)), RB_VIRTIO_BLK_S_OK);
	}
	CHECK_EQ_U64(req.data_bytes, 20);
	REQUIRE(req.iovcnt == 1);
	CHECK(req.iov[0].iov_base == G(d));
}

TEST(blk_flush_ignores_any_data)
{
	uint64_t h, d, st;

	setup_q(16, 0, false, false);
	h = put_hdr(RB_VIRTIO_BLK_T_FLUSH, 0, 0);
	d = buf_a(512);
	st = buf_a(1);
	{
		struct seg s[] = {R(h, 16), W(st, 1)};

		CHECK_EQ_U64(parse(s, N(s)), RB_VIRTIO_BLK_S_OK);
	}
	CHECK_EQ_U64(req.iovcnt, 0);
	CHECK(req.status == G(st));
	{
		struct seg s[] = {R(h, 16), R(d, 512), W(st, 1)};

		CHECK_EQ_U64(parse(s, N(s)), RB_VIRTIO_BLK_S_OK);
	}
	CHECK_EQ_U64(req.iovcnt, 0);
	CHECK_EQ_U64(req.data_bytes, 0);
}

TEST(blk_discard_range_split_across_segments_is_gathered)
{
	uint64_t h, r, p0, p1, st;

	setup_q(16, 0, false, false);
	h = put_hdr(RB_VIRTIO_BLK_T_DISCARD, 0, 0);
	r = put_range(0x123456789ull, 77, 0);
	p0 = buf_a(16);
	p1 = buf_b(16);
	memcpy(G(p0), G(r), 8);
	memcpy(G(p1), (char *)G(r) + 8, 8);
	st = buf_a(1);
	{
		struct seg s[] = {R(h, 16), R(p0, 8), R(p1, 8), W(st, 1)};

		CHECK_EQ_U64(parse(s, N(s)), RB_VIRTIO_BLK_S_OK);
	}
	CHECK_EQ_U64(req.range.sector, 0x123456789ull);
	CHECK_EQ_U64(req.range.num_sectors, 77);
	CHECK_EQ_U64(req.range.flags, 0);
	CHECK_EQ_U64(req.iovcnt, 0);
}

TEST(blk_write_zeroes_range_sharing_the_header_segment_is_gathered)
{
	uint64_t h, st;
	struct rb_virtio_blk_discard_wz wz = {99, 8, 1};

	setup_q(16, 0, false, false);
	h = put_hdr(RB_VIRTIO_BLK_T_WRITE_ZEROES, 0, 16);
	memcpy((char *)G(h) + 16, &wz, sizeof(wz));
	st = buf_a(1);
	{
		struct seg s[] = {R(h, 32), W(st, 1)};

		CHECK_EQ_U64(parse(s, N(s)), RB_VIRTIO_BLK_S_OK);
	}
	CHECK_EQ_U64(req.range.sector, 99);
	CHECK_EQ_U64(req.range.num_sectors, 8);
	CHECK_EQ_U64(req.range.flags, 1); /* unmap is allowed here */
}

TEST(blk_discard_with_two_ranges_is_ioerr)
{
	uint64_t h, st;

	setup_q(16, 0, false, false);
	h = put_hdr(RB_VIRTIO_BLK_T_DISCARD, 0, 0);
	st = buf_a(1);
	{
		struct seg s[] = {R(h, 16), R(put_range(0, 8, 0), 16),
				  R(put_range(64, 8, 0), 16), W(st, 1)};

		CHECK_EQ_U64(parse(s, N(s)), RB_VIRTIO_BLK_S_IOERR);
	}
	CHECK_STR_CONTAINS(err, "2 ranges");
}

TEST(blk_discard_range_of_wrong_size_is_ioerr)
{
	uint64_t h, r, st;

	setup_q(16, 0, false, false);
	h = put_hdr(RB_VIRTIO_BLK_T_DISCARD, 0, 0);
	r = put_range(0, 8, 0);
	st = buf_a(1);
	{
		struct seg s[] = {R(h, 16), R(r, 15), W(st, 1)};

		CHECK_EQ_U64(parse(s, N(s)), RB_VIRTIO_BLK_S_IOERR);
	}
	CHECK_STR_CONTAINS(err, "15 bytes, needs 16");
	{
		struct seg s[] = {R(h, 16), W(st, 1)};

		CHECK_EQ_U64(parse(s, N(s)), RB_VIRTIO_BLK_S_IOERR);
	}
	{
		struct seg s[] = {R(h, 16), R(r, 16), W(buf_a(16), 16), W(st, 1)};

		CHECK_EQ_U64(parse(s, N(s)), RB_VIRTIO_BLK_S_IOERR);
	}
	CHECK_STR_CONTAINS(err, "device-writable");
}

TEST(blk_unmap_on_discard_and_reserved_flags_are_unsupp)
{
	/* virtio 1.2, 5.2.6.2: UNSUPP for any unknown flag, and for unmap
	 * on a discard. */
	static const struct {
		uint32_t type, flags;
		int status;
	} cases[] = {
		{RB_VIRTIO_BLK_T_DISCARD, 1, RB_VIRTIO_BLK_S_UNSUPP},
		{RB_VIRTIO_BLK_T_DISCARD, 2, RB_VIRTIO_BLK_S_UNSUPP},
		{RB_VIRTIO_BLK_T_DISCARD, 0x80000000u, RB_VIRTIO_BLK_S_UNSUPP},
		{RB_VIRTIO_BLK_T_WRITE_ZEROES, 1, RB_VIRTIO_BLK_S_OK},
		{RB_VIRTIO_BLK_T_WRITE_ZEROES, 2, RB_VIRTIO_BLK_S_UNSUPP},
		{RB_VIRTIO_BLK_T_WRITE_ZEROES, 3, RB_VIRTIO_BLK_S_UNSUPP},
	};

	for (unsigned k = 0; k < N(cases); k++) {
		uint64_t h, r, st;

		setup_q(16, 0, false, false);
		h = put_hdr(cases[k].type, 0, 0);
		r = put_range(0, 8, cases[k].flags);
		st = buf_a(1);
		{
			struct seg s[] = {R(h, 16), R(r, 16), W(st, 1)};

			CHECK_EQ_U64(parse(s, N(s)), cases[k].status);
		}
		CHECK(req.status == G(st));
		if (cases[k].status != RB_VIRTIO_BLK_S_OK)
			CHECK_STR_CONTAINS(err, "unsupported flags");
	}
}

TEST(blk_unknown_type_is_unsupp)
{
	static const uint32_t types[] = {2, 3, 5, 10, 14, 0x80000000u, UINT32_MAX};

	for (unsigned k = 0; k < N(types); k++) {
		uint64_t h, st;

		setup_q(16, 0, false, false);
		h = put_hdr(types[k], 0, 0);
		st = buf_a(1);
		{
			struct seg s[] = {R(h, 16), W(st, 1)};

			CHECK_EQ_U64(parse(s, N(s)), RB_VIRTIO_BLK_S_UNSUPP);
		}
		CHECK(req.status == G(st));
		CHECK_STR_CONTAINS(err, "unknown request type");
	}
}

/* ---- Range checks ------------------------------------------------------------- */

TEST(range_ok_rejects_sector_whose_byte_offset_overflows)
{
	/* sector*512 wraps to a small offset on a disk "big enough". */
	CHECK(!rb_blk_range_ok(UINT64_MAX / 512 + 1, 512, UINT64_MAX));
	CHECK(!rb_blk_range_ok(UINT64_MAX / 512 + 1, 0, UINT64_MAX));
}

TEST(range_ok_rejects_sector_plus_length_that_wraps)
{
	CHECK(!rb_blk_range_ok(UINT64_MAX - 1, 4 * 512, 1000));
	CHECK(!rb_blk_range_ok(10, UINT64_MAX - 511, 1000));
	/* End byte offset past 2^64 even though the sector count fits. */
	CHECK(!rb_blk_range_ok(UINT64_MAX / 512, 1024, UINT64_MAX));
}

TEST(range_ok_accepts_exactly_up_to_capacity_and_not_one_past)
{
	CHECK(rb_blk_range_ok(0, 1000 * 512, 1000));
	CHECK(rb_blk_range_ok(998, 1024, 1000));
	CHECK(!rb_blk_range_ok(998, 1536, 1000));
	CHECK(!rb_blk_range_ok(999, 1024, 1000));
	CHECK(rb_blk_range_ok(1000, 0, 1000));
	CHECK(!rb_blk_range_ok(1000, 512, 1000));
	CHECK(!rb_blk_range_ok(1001, 0, 1000));
	/* A partial sector still touches its sector. */
	CHECK(!rb_blk_range_ok(999, 513, 1000));
}

TEST_MAIN()
