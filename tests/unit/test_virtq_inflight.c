/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of lib/virtio's inflight log (vhost-user INFLIGHT_SHMFD): pops
 * and pushes logged in crash-safe order, recovery after a crash at each
 * point, and logs a hostile frontend wrote refused whole.
 */
#include "harness.h"
#include "virtq_fixture.h"

/* ---- Inflight log (vhost-user INFLIGHT_SHMFD) ------------------------------ */

/* One queue's region, 16 entries (room for queues of up to 16). */
static union {
	struct rb_vring_inflight log;
	uint8_t bytes[16 + 16 * 16 + 64];
} ifl;
static uint16_t resub[16];

/* A chain of one 16-byte readable buffer at descriptor `d`, published. */
static void add_one(uint16_t d)
{
	struct seg s[] = {R(buf_a(16), 16)};

	add_chain(d, s, 1);
}

static int ifl_start(uint16_t region_desc_num)
{
	err[0] = 0;
	return rb_virtq_inflight_start(&vq, &ifl.log, region_desc_num, resub, err, sizeof(err));
}

/* The daemon dies: a new one gets the ring at base = used->idx (what QEMU
 * 7.2 sends after a crash) and the same log. */
static void restart_q(uint16_t size)
{
	REQUIRE(rb_virtq_init(&vq, size, desc, avail, used, used->idx, false, false, translate,
			      NULL) == 0);
}

TEST(inflight_fresh_region_is_initialised_and_pops_are_logged)
{
	setup_q(8, 0, false, false);
	memset(&ifl, 0xee, sizeof(ifl)); /* version 0 below: the rest is junk */
	ifl.log.version = 0;
	REQUIRE(ifl_start(8) == 0);
	CHECK_EQ_U64(ifl.log.version, 1);
	CHECK_EQ_U64(ifl.log.desc_num, 8);
	CHECK_EQ_U64(ifl.log.features, 0);
	for (unsigned i = 0; i < 8; i++)
		CHECK_EQ_U64(ifl.log.desc[i].inflight, 0);
	add_one(3);
	add_one(5);
	REQUIRE(pop() == 1 && chain.head == 3);
	REQUIRE(pop() == 1 && chain.head == 5);
	CHECK_EQ_U64(ifl.log.desc[3].inflight, 1);
	CHECK_EQ_U64(ifl.log.desc[5].inflight, 1);
	CHECK(ifl.log.desc[3].counter < ifl.log.desc[5].counter);
	rb_virtq_push(&vq, 5, 0); /* out of order */
	CHECK_EQ_U64(ifl.log.desc[5].inflight, 0);
	CHECK_EQ_U64(ifl.log.desc[3].inflight, 1);
	CHECK_EQ_U64(ifl.log.last_batch_head, 5);
	CHECK_EQ_U64(ifl.log.used_idx, 1);
	CHECK_EQ_U64(used->idx, 1);
}

TEST(inflight_restart_resubmits_in_pop_order_and_skips_completed_heads)
{
	static const uint16_t heads[] = {6, 0, 4, 2, 7};

	setup_q(8, 65533, false, false); /* indexes wrap during the test */
	memset(&ifl, 0, sizeof(ifl));
	REQUIRE(ifl_start(8) == 0);
	for (unsigned k = 0; k < N(heads); k++)
		add_one(heads[k]);
	for (unsigned k = 0; k < N(heads); k++)
		REQUIRE(pop() == 1 && chain.head == heads[k]);
	rb_virtq_push(&vq, 4, 0); /* completions out of order */
	rb_virtq_push(&vq, 6, 0);
	add_one(1);               /* made available, never popped */
	restart_q(8);
	REQUIRE(ifl_start(8) == 0);
	CHECK_EQ_U64(vq.used_idx, (uint16_t)(65533 + 2));
	CHECK_EQ_U64(vq.last_avail, (uint16_t)(65533 + 5));
	CHECK_EQ_U64(rb_virtq_pending(&vq), 3);
	/* 0, 2, 7 in the order they were first popped, then the ring. */
	REQUIRE(pop() == 1);
	CHECK_EQ_U64(chain.head, 0);
	REQUIRE(pop() == 1);
	CHECK_EQ_U64(chain.head, 2);
	REQUIRE(pop() == 1);
	CHECK_EQ_U64(chain.head, 7);
	CHECK_EQ_U64(chain.n_segs, 1);
	REQUIRE(pop() == 1);
	CHECK_EQ_U64(chain.head, 1);
	CHECK_EQ_U64(pop(), 0);
	/* The new device's pops come after the old ones in the log. */
	CHECK(ifl.log.desc[1].counter > ifl.log.desc[7].counter);
	rb_virtq_push(&vq, 7, 0);
	rb_virtq_push(&vq, 0, 0);
	rb_virtq_push(&vq, 1, 0);
	rb_virtq_push(&vq, 2, 0);
	for (unsigned i = 0; i < 8; i++)
		CHECK_EQ_U64(ifl.log.desc[i].inflight, 0);
	CHECK_EQ_U64(used->idx, (uint16_t)(65533 + 6));
	CHECK_EQ_U64(ifl.log.used_idx, used->idx);
	/* A clean restart (nothing in flight) resumes where the ring is. */
	restart_q(8);
	REQUIRE(ifl_start(8) == 0);
	CHECK_EQ_U64(rb_virtq_pending(&vq), 0);
	CHECK_EQ_U64(vq.last_avail, used->idx);
}

TEST(inflight_crash_after_used_idx_before_the_log_completes_the_batch)
{
	setup_q(8, 0, false, false);
	memset(&ifl, 0, sizeof(ifl));
	REQUIRE(ifl_start(8) == 0);
	add_one(2);
	add_one(3);
	REQUIRE(pop() == 1 && pop() == 1);
	/* rb_virtq_push(3) cut short after used->idx was published. */
	ifl.log.desc[3].next = ifl.log.last_batch_head;
	ifl.log.last_batch_head = 3;
	used->ring[0] = (struct rb_vring_used_elem){3, 0};
	used->idx = 1;
	restart_q(8);
	REQUIRE(ifl_start(8) == 0);
	CHECK_EQ_U64(ifl.log.desc[3].inflight, 0);
	CHECK_EQ_U64(ifl.log.used_idx, 1);
	CHECK_EQ_U64(rb_virtq_pending(&vq), 1);
	REQUIRE(pop() == 1);
	CHECK_EQ_U64(chain.head, 2); /* 3 is not completed twice */
	CHECK_EQ_U64(pop(), 0);
}

TEST(inflight_crash_between_pop_and_log_pops_the_entry_again)
{
	setup_q(8, 0, false, false);
	memset(&ifl, 0, sizeof(ifl));
	REQUIRE(ifl_start(8) == 0);
	add_one(4);
	add_one(6);
	REQUIRE(pop() == 1 && chain.head == 4);
	/* 6 was taken off the avail ring, the crash came before its mark. */
	restart_q(8);
	REQUIRE(ifl_start(8) == 0);
	REQUIRE(pop() == 1);
	CHECK_EQ_U64(chain.head, 4);
	REQUIRE(pop() == 1);
	CHECK_EQ_U64(chain.head, 6);
	CHECK_EQ_U64(pop(), 0);
}

TEST(inflight_resubmitted_malformed_chain_is_given_back_once)
{
	setup_q(8, 0, false, false);
	memset(&ifl, 0, sizeof(ifl));
	REQUIRE(ifl_start(8) == 0);
	add_one(1);
	REQUIRE(pop() == 1);
	set_desc(1, BAD_GPA, 16, 0, 0); /* the driver breaks it meanwhile */
	restart_q(8);
	REQUIRE(ifl_start(8) == 0);
	CHECK_EQ_U64(pop(), -EINVAL);
	CHECK_EQ_U64(chain.head, 1);
	CHECK_EQ_U64(chain.n_segs, 0);
	CHECK_STR_CONTAINS(err, "not inside one guest memory region");
	CHECK(!vq.broken);
	rb_virtq_push(&vq, 1, 0);
	CHECK_EQ_U64(ifl.log.desc[1].inflight, 0);
	CHECK_EQ_U64(pop(), 0);
}

TEST(inflight_equal_counters_resubmit_in_head_order)
{
	setup_q(8, 0, false, false);
	memset(&ifl, 0, sizeof(ifl));
	REQUIRE(ifl_start(8) == 0);
	for (uint16_t h = 0; h < 3; h++)
		add_one(h);
	REQUIRE(pop() == 1 && pop() == 1 && pop() == 1);
	ifl.log.desc[0].counter = ifl.log.desc[1].counter = ifl.log.desc[2].counter = 9;
	ifl.log.desc[1].counter = 3;
	restart_q(8);
	REQUIRE(ifl_start(8) == 0);
	REQUIRE(pop() == 1);
	CHECK_EQ_U64(chain.head, 1);
	REQUIRE(pop() == 1);
	CHECK_EQ_U64(chain.head, 0);
	REQUIRE(pop() == 1);
	CHECK_EQ_U64(chain.head, 2);
}

TEST(inflight_more_marks_than_avail_entries_breaks_the_ring_not_the_daemon)
{
	setup_q(8, 0, false, false);
	memset(&ifl, 0, sizeof(ifl));
	REQUIRE(ifl_start(8) == 0);
	add_one(0);
	for (uint16_t i = 0; i < 8; i++)
		set_desc(i, buf_a(16), 16, 0, 0);
	for (unsigned i = 0; i < 8; i++) { /* the frontend marks every head */
		ifl.log.desc[i].inflight = 1;
		ifl.log.desc[i].counter = 8 - i;
	}
	restart_q(8);
	REQUIRE(ifl_start(8) == 0);
	CHECK_EQ_U64(vq.last_avail, 8);
	for (unsigned i = 0; i < 8; i++) {
		REQUIRE(pop() == 1);
		CHECK_EQ_U64(chain.head, 7 - i);
	}
	CHECK_EQ_U64(pop(), -EIO); /* avail idx 1 is "65529 entries ahead" */
	CHECK(vq.broken);
}

/* A log that cannot be trusted is refused and left as it was. */
static void expect_refused(uint16_t region_desc_num, const char *msg)
{
	uint8_t before[sizeof(ifl)];

	memcpy(before, &ifl, sizeof(ifl));
	restart_q(8);
	CHECK_EQ_U64(ifl_start(region_desc_num), -EINVAL);
	CHECK_STR_CONTAINS(err, msg);
	CHECK(memcmp(before, &ifl, sizeof(ifl)) == 0);
	CHECK(vq.inflight == NULL);
}

/* A log in use with heads 2 and 5 in flight. */
static void busy_log(void)
{
	setup_q(8, 0, false, false);
	memset(&ifl, 0, sizeof(ifl));
	REQUIRE(ifl_start(8) == 0);
	add_one(2);
	add_one(5);
	REQUIRE(pop() == 1 && pop() == 1);
}

TEST(inflight_hostile_logs_are_refused_whole)
{
	busy_log();
	ifl.log.version = 7;
	expect_refused(8, "version 7");
	busy_log();
	ifl.log.desc_num = 16;
	expect_refused(8, "says 16 entries, the frontend 8");
	busy_log();
	expect_refused(4, "4 entries for a 8-entry queue");
	busy_log();
	ifl.log.desc[5].inflight = 2;
	expect_refused(8, "entry 5 has inflight byte 2");
	busy_log(); /* a 16-entry region for an 8-entry queue marks head 12 */
	ifl.log.desc_num = 16;
	ifl.log.desc[12].inflight = 1;
	expect_refused(16, "marks head 12, outside the 8-entry queue");
	busy_log();
	ifl.log.used_idx = 65000; /* a "batch" of 536 */
	expect_refused(8, "past the inflight log's 65000");
	busy_log();
	ifl.log.last_batch_head = 9;
	used->idx = 1; /* a batch of one naming head 9 */
	expect_refused(8, "names head 9");
	busy_log(); /* a batch whose next links leave the queue */
	ifl.log.last_batch_head = 2;
	ifl.log.desc[2].next = 40000;
	used->idx = 2;
	expect_refused(8, "names head 40000");
}

TEST(inflight_batch_with_a_cycle_is_bounded_by_its_length)
{
	busy_log();
	ifl.log.last_batch_head = 2;
	ifl.log.desc[2].next = 2; /* a self-loop: the walk ends after `batch` */
	used->idx = 3;
	restart_q(8);
	REQUIRE(ifl_start(8) == 0);
	CHECK_EQ_U64(ifl.log.desc[2].inflight, 0);
	CHECK_EQ_U64(ifl.log.desc[5].inflight, 1);
	CHECK_EQ_U64(vq.last_avail, 4);
}


TEST_MAIN()
