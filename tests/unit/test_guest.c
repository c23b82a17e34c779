/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of librosen's building blocks: the driver-side ring (against
 * the device side of lib/virtio, and against a lying device), kick and
 * interrupt suppression, and the DMA memory allocator.  The transports are
 * tested end to end by tests/guest and tests/e2e.
 */
#include <rosen/virtio.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/guest/guest_internal.h"
#include "harness.h"

#define QS 8

struct rings {
	uint8_t *mem;
	struct rb_virtq_drv drv;
	struct rb_virtq dev;
};

/* Guest-physical = host address here: the ring memory is ordinary memory. */
static void *xlate(void *ctx, uint64_t gpa, uint64_t len)
{
	(void)ctx, (void)len;
	return (void *)(uintptr_t)gpa;
}

static void setup(struct rings *r, bool event_idx)
{
	r->mem = aligned_alloc(4096, 3 * 4096);
	memset(r->mem, 0, 3 * 4096);
	REQUIRE(rb_virtq_drv_init(&r->drv, QS, r->mem, r->mem + 4096, r->mem + 8192, event_idx) == 0);
	REQUIRE(rb_virtq_init(&r->dev, QS, r->mem, r->mem + 4096, r->mem + 8192, 0, event_idx, false,
			      xlate, NULL) == 0);
}

static void teardown(struct rings *r)
{
	rb_virtq_drv_fini(&r->drv);
	free(r->mem);
}

static char err[256];
static struct rb_virtq_chain chain;

TEST(driver_chain_round_trips_through_device_ring)
{
	struct rings r;
	static uint8_t hdr[16], data[512], status[1];
	struct rb_virtq_buf bufs[3] = {
		{(uintptr_t)hdr, 16, false}, {(uintptr_t)data, 512, true}, {(uintptr_t)status, 1, true}};
	void *cookie;
	uint32_t len;

	setup(&r, true);
	REQUIRE(rb_virtq_drv_add(&r.drv, bufs, 3, (void *)0x1234) == 0);
	CHECK_EQ_U64(r.drv.num_free, QS - 3);
	REQUIRE(rb_virtq_pop(&r.dev, &chain, err, sizeof(err)) == 1);
	CHECK_EQ_U64(chain.n_segs, 3);
	CHECK_EQ_U64(chain.n_read, 1);
	CHECK(chain.iov[1].iov_base == data && chain.iov[1].iov_len == 512);
	CHECK(rb_virtq_drv_get(&r.drv, &cookie, &len, err, sizeof(err)) == 0); /* not used yet */
	rb_virtq_push(&r.dev, chain.head, 513);
	REQUIRE(rb_virtq_drv_get(&r.drv, &cookie, &len, err, sizeof(err)) == 1);
	CHECK(cookie == (void *)0x1234);
	CHECK_EQ_U64(len, 513);
	CHECK_EQ_U64(r.drv.num_free, QS);
	teardown(&r);
}

TEST(driver_reuses_descriptors_across_many_wraps)
{
	struct rings r;
	static uint8_t buf[64];
	setup(&r, false);
	for (int i = 0; i < 70000; i++) { /* wraps the 16-bit indexes */
		struct rb_virtq_buf b[2] = {{(uintptr_t)buf, 16, false}, {(uintptr_t)buf + 16, 1, true}};
		void *cookie;
		uint32_t len;
		REQUIRE(rb_virtq_drv_add(&r.drv, b, 2, (void *)(uintptr_t)(i + 1)) == 0);
		REQUIRE(rb_virtq_pop(&r.dev, &chain, err, sizeof(err)) == 1);
		rb_virtq_push(&r.dev, chain.head, 1);
		REQUIRE(rb_virtq_drv_get(&r.drv, &cookie, &len, err, sizeof(err)) == 1);
		REQUIRE(cookie == (void *)(uintptr_t)(i + 1));
	}
	CHECK_EQ_U64(r.drv.num_free, QS);
	teardown(&r);
}

TEST(driver_reports_full_ring_and_bad_chains)
{
	struct rings r;
	static uint8_t buf[64];
	struct rb_virtq_buf b[3] = {{(uintptr_t)buf, 16, false}, {(uintptr_t)buf, 8, false},
				    {(uintptr_t)buf, 1, true}};
	struct rb_virtq_buf bad[2] = {{(uintptr_t)buf, 1, true}, {(uintptr_t)buf, 16, false}};
	setup(&r, false);
	CHECK(rb_virtq_drv_add(&r.drv, bad, 2, NULL) == -EINVAL); /* readable after writable */
	CHECK(rb_virtq_drv_add(&r.drv, b, 3, NULL) == 0);
	CHECK(rb_virtq_drv_add(&r.drv, b, 3, NULL) == 0);
	CHECK(rb_virtq_drv_add(&r.drv, b, 3, NULL) == -ENOSPC); /* 2 descriptors left */
	teardown(&r);
}

TEST(driver_rejects_used_id_that_is_not_outstanding)
{
	struct rings r;
	static uint8_t buf[64];
	struct rb_virtq_buf b[2] = {{(uintptr_t)buf, 16, false}, {(uintptr_t)buf, 1, true}};
	void *cookie;
	uint32_t len;
	setup(&r, false);
	REQUIRE(rb_virtq_drv_add(&r.drv, b, 2, NULL) == 0);
	/* A lying device: id 5 was never handed out. */
	r.drv.used->ring[0] = (struct rb_vring_used_elem){5, 1};
	__atomic_store_n(&r.drv.used->idx, 1, __ATOMIC_RELEASE);
	CHECK(rb_virtq_drv_get(&r.drv, &cookie, &len, err, sizeof(err)) == -EIO);
	CHECK_STR_CONTAINS(err, "not an outstanding request");
	/* The queue stays dead: no state from the lie is used. */
	CHECK(rb_virtq_drv_get(&r.drv, &cookie, &len, err, sizeof(err)) == -EIO);
	teardown(&r);
}

TEST(driver_rejects_used_length_beyond_writable_bytes)
{
	struct rings r;
	static uint8_t buf[64];
	struct rb_virtq_buf b[2] = {{(uintptr_t)buf, 16, false}, {(uintptr_t)buf, 1, true}};
	void *cookie;
	uint32_t len;
	setup(&r, false);
	REQUIRE(rb_virtq_drv_add(&r.drv, b, 2, NULL) == 0);
	r.drv.used->ring[0] = (struct rb_vring_used_elem){0, 4096};
	__atomic_store_n(&r.drv.used->idx, 1, __ATOMIC_RELEASE);
	CHECK(rb_virtq_drv_get(&r.drv, &cookie, &len, err, sizeof(err)) == -EIO);
	CHECK_STR_CONTAINS(err, "4096 bytes");
	teardown(&r);
}

TEST(driver_rejects_used_index_running_ahead)
{
	struct rings r;
	static uint8_t buf[64];
	struct rb_virtq_buf b[2] = {{(uintptr_t)buf, 16, false}, {(uintptr_t)buf, 1, true}};
	void *cookie;
	uint32_t len;
	setup(&r, false);
	REQUIRE(rb_virtq_drv_add(&r.drv, b, 2, NULL) == 0);
	__atomic_store_n(&r.drv.used->idx, 3, __ATOMIC_RELEASE); /* 3 used, 1 outstanding */
	CHECK(rb_virtq_drv_get(&r.drv, &cookie, &len, err, sizeof(err)) == -EIO);
	teardown(&r);
}

TEST(kick_is_skipped_while_the_device_polls)
{
	struct rings r;
	static uint8_t buf[64];
	struct rb_virtq_buf b[2] = {{(uintptr_t)buf, 16, false}, {(uintptr_t)buf, 1, true}};
	setup(&r, false);
	REQUIRE(rb_virtq_drv_add(&r.drv, b, 2, NULL) == 0);
	CHECK(rb_virtq_drv_need_kick(&r.drv));        /* device wants kicks */
	CHECK(!rb_virtq_drv_need_kick(&r.drv));       /* nothing new since */
	rb_virtq_set_kicks(&r.dev, false);            /* device polls */
	REQUIRE(rb_virtq_drv_add(&r.drv, b, 2, NULL) == 0);
	CHECK(!rb_virtq_drv_need_kick(&r.drv));
	teardown(&r);
}

TEST(kick_follows_avail_event_with_event_idx)
{
	struct rings r;
	static uint8_t buf[64];
	struct rb_virtq_buf b[2] = {{(uintptr_t)buf, 16, false}, {(uintptr_t)buf, 1, true}};
	setup(&r, true);
	rb_virtq_set_kicks(&r.dev, true);  /* avail_event = 0: kick at the first */
	REQUIRE(rb_virtq_drv_add(&r.drv, b, 2, NULL) == 0);
	CHECK(rb_virtq_drv_need_kick(&r.drv));
	REQUIRE(rb_virtq_drv_add(&r.drv, b, 2, NULL) == 0);
	CHECK(!rb_virtq_drv_need_kick(&r.drv)); /* device has not consumed: no new kick */
	REQUIRE(rb_virtq_pop(&r.dev, &chain, err, sizeof(err)) == 1);
	REQUIRE(rb_virtq_pop(&r.dev, &chain, err, sizeof(err)) == 1);
	rb_virtq_set_kicks(&r.dev, true);  /* avail_event = 2 */
	REQUIRE(rb_virtq_drv_add(&r.drv, b, 2, NULL) == 0);
	CHECK(rb_virtq_drv_need_kick(&r.drv));
	teardown(&r);
}

/* One request through both sides; returns whether the device would
 * interrupt the driver for it. */
static bool one_request(struct rings *r)
{
	static uint8_t buf[64];
	struct rb_virtq_buf b[2] = {{(uintptr_t)buf, 16, false}, {(uintptr_t)buf, 1, true}};
	void *cookie;
	uint32_t len;
	REQUIRE(rb_virtq_drv_add(&r->drv, b, 2, NULL) == 0);
	REQUIRE(rb_virtq_pop(&r->dev, &chain, err, sizeof(err)) == 1);
	rb_virtq_push(&r->dev, chain.head, 1);
	bool notify = rb_virtq_should_notify(&r->dev);
	REQUIRE(rb_virtq_drv_get(&r->drv, &cookie, &len, err, sizeof(err)) == 1);
	return notify;
}

TEST(interrupts_can_be_suppressed_by_the_driver)
{
	struct rings r;
	for (int ev = 0; ev < 2; ev++) {
		setup(&r, ev);
		one_request(&r); /* the device's first notification decision is free */
		rb_virtq_drv_set_interrupts(&r.drv, false);
		CHECK(!one_request(&r));
		CHECK(!one_request(&r));
		rb_virtq_drv_set_interrupts(&r.drv, true);
		CHECK(one_request(&r));
		teardown(&r);
	}
}

/* ---- DMA allocator ------------------------------------------------------------ */

TEST(dma_allocator_reuses_freed_memory_and_reports_exhaustion)
{
	static struct rb_guest_dev d;
	size_t size = 64 * RB_GUEST_PAGE;
	void *mem = aligned_alloc(RB_GUEST_PAGE, size);
	REQUIRE(mem);
	REQUIRE(rb_guest_dma_init(&d, mem, size) == 0);
	uint8_t *a = rb_guest_dma_alloc(&d, 1);
	uint8_t *b = rb_guest_dma_alloc(&d, RB_GUEST_PAGE + 1); /* two pages */
	REQUIRE(a && b);
	CHECK(((uintptr_t)a & (RB_GUEST_PAGE - 1)) == 0);
	CHECK(b == a + RB_GUEST_PAGE);
	CHECK(rb_guest_dma_alloc(&d, 62 * RB_GUEST_PAGE) == NULL); /* only 61 pages left */
	CHECK_STR_CONTAINS(rb_guest_errmsg(), "exhausted");
	uint8_t *c = rb_guest_dma_alloc(&d, 61 * RB_GUEST_PAGE);
	CHECK(c != NULL);
	rb_guest_dma_free(&d, b);
	uint8_t *e = rb_guest_dma_alloc(&d, 2 * RB_GUEST_PAGE);
	CHECK(e == b);
	memset(e, 0xff, 2 * RB_GUEST_PAGE);
	rb_guest_dma_free(&d, e);
	e = rb_guest_dma_alloc(&d, 100);
	CHECK(e == b && e[0] == 0 && e[99] == 0); /* handed out zeroed */
	rb_guest_dma_free(&d, (uint8_t *)mem + size + 4096); /* not ours: ignored */
	rb_guest_dma_fini(&d);
	free(mem);
}

TEST(dma_blocks_never_cross_a_2mib_boundary)
{
	static struct rb_guest_dev d;
	size_t size = 4u << 20;
	void *mem = aligned_alloc(2u << 20, size);
	REQUIRE(mem);
	REQUIRE(rb_guest_dma_init(&d, mem, size) == 0);
	uint8_t *a = rb_guest_dma_alloc(&d, (2u << 20) - 4096); /* all but one page of hugepage 0 */
	uint8_t *b = rb_guest_dma_alloc(&d, 8192);              /* cannot fit in hugepage 0 */
	REQUIRE(a && b);
	CHECK(b == (uint8_t *)mem + (2u << 20));
	uint8_t *c = rb_guest_dma_alloc(&d, 4096);               /* fits the last page of 0 */
	CHECK(c == a + (2u << 20) - 4096);
	rb_guest_dma_fini(&d);
	free(mem);
}

TEST_MAIN()
