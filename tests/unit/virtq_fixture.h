/* SPDX-License-Identifier: MIT */
/*
 * The fake guest and hostile driver the lib/virtio unit tests share
 * (test_virtio.c, test_virtq_inflight.c): two heap regions at fake
 * guest-physical addresses with a gap between, one queue under test and a
 * driver that writes its rings.  Include once per test binary, after
 * harness.h.
 */
#ifndef ROSEN_TEST_VIRTQ_FIXTURE_H
#define ROSEN_TEST_VIRTQ_FIXTURE_H

#include <rosen/virtio.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Not every binary uses every helper. */
#pragma GCC diagnostic ignored "-Wunused-function"

/* ---- Fake guest memory ----------------------------------------------------- */

#define GA_BASE 0x10000ull  /* region A: rings, then buffers and tables */
#define GA_SIZE 0x40000u
#define GB_BASE 0x100000ull /* region B: not adjacent to A */
#define GB_SIZE 0x4000u
#define GA_END (GA_BASE + GA_SIZE)
#define GB_END (GB_BASE + GB_SIZE)
#define DESC_GPA GA_BASE               /* room for 512 descriptors */
#define AVAIL_GPA (GA_BASE + 0x2000)
#define USED_GPA (GA_BASE + 0x3000)
#define BUF_GPA (GA_BASE + 0x5000)
#define BAD_GPA 0xdead00000000ull      /* in no region */

struct region {
	uint64_t gpa, len;
	uint8_t *host;
};
static struct region regions[2] = {{GA_BASE, GA_SIZE, NULL},
				   {GB_BASE, GB_SIZE, NULL}};

/* Like the vhost-user memory table: the whole range must lie in one region. */
static void *translate(void *ctx, uint64_t gpa, uint64_t len)
{
	(void)ctx;
	for (unsigned i = 0; i < 2; i++) {
		const struct region *r = &regions[i];

		if (gpa >= r->gpa && gpa - r->gpa < r->len &&
		    len <= r->len - (gpa - r->gpa))
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}

/* Host view of guest memory the test writes as the driver. */
static void *G(uint64_t gpa)
{
	void *p = translate(NULL, gpa, 1);

	REQUIRE(p);
	return p;
}

/* ---- The queue under test and a driver that writes it ------------------- */

static struct rb_virtq vq;
static struct rb_virtq_chain chain;
static char err[256];
static struct rb_vring_desc *desc;
static struct rb_vring_avail *avail;
static struct rb_vring_used *used;
static uint16_t qsize;
static uint16_t drv_avail; /* the driver's next avail index */
static uint64_t next_a, next_b;

static void setup_q(uint16_t size, uint16_t start, bool event_idx,
		    bool indirect)
{
	for (unsigned i = 0; i < 2; i++) {
		if (!regions[i].host)
			regions[i].host = aligned_alloc(4096, regions[i].len);
		REQUIRE(regions[i].host);
		memset(regions[i].host, 0, regions[i].len);
	}
	desc = G(DESC_GPA);
	avail = G(AVAIL_GPA);
	used = G(USED_GPA);
	avail->idx = start;
	used->idx = start;
	qsize = size;
	drv_avail = start;
	next_a = BUF_GPA;
	next_b = GB_BASE;
	memset(&chain, 0, sizeof(chain));
	err[0] = 0;
	REQUIRE(rb_virtq_init(&vq, size, desc, avail, used, start, event_idx,
			      indirect, translate, NULL) == 0);
}

/* Guest buffers, 16-aligned, from region A or B. */
static uint64_t buf_a(size_t len)
{
	uint64_t g = next_a;

	next_a += (len + 15) & ~(size_t)15;
	REQUIRE(next_a <= GA_END);
	return g;
}

static uint64_t buf_b(size_t len)
{
	uint64_t g = next_b;

	next_b += (len + 15) & ~(size_t)15;
	REQUIRE(next_b <= GB_END);
	return g;
}

static void set_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	desc[i] = (struct rb_vring_desc){addr, len, flags, next};
}

/* Makes `head` available as a driver does: ring entry, then the index. */
static void publish(uint16_t head)
{
	avail->ring[drv_avail % qsize] = head;
	drv_avail++;
	__atomic_store_n(&avail->idx, drv_avail, __ATOMIC_RELEASE);
}

struct seg {
	uint64_t gpa;
	uint32_t len;
	uint16_t flags;
};
#define R(g, l) {(g), (l), 0}
#define W(g, l) {(g), (l), RB_VRING_DESC_F_WRITE}
#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Writes a direct chain into descriptors first, first+1, ... and
 * publishes it. */
static void add_chain(uint16_t first, const struct seg *s, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		set_desc((uint16_t)((first + i) % qsize), s[i].gpa, s[i].len,
			 s[i].flags | (i + 1 < n ? RB_VRING_DESC_F_NEXT : 0),
			 (uint16_t)((first + i + 1) % qsize));
	publish(first);
}

/* Writes an indirect table (entry i chained to i+1) into region `b` or A. */
static uint64_t put_table(const struct seg *s, unsigned n, bool in_b)
{
	uint64_t t = in_b ? buf_b(16u * n) : buf_a(16u * n);
	struct rb_vring_desc *d = G(t);

	for (unsigned i = 0; i < n; i++)
		d[i] = (struct rb_vring_desc){
			s[i].gpa, s[i].len,
			(uint16_t)(s[i].flags | (i + 1 < n ? RB_VRING_DESC_F_NEXT : 0)),
			(uint16_t)(i + 1)};
	return t;
}

static int pop(void)
{
	err[0] = 0;
	return rb_virtq_pop(&vq, &chain, err, sizeof(err));
}

/* A malformed chain: -EINVAL, the head comes back with no segment, the
 * avail entry is consumed (so the head can be given back), queue intact. */
#define EXPECT_BAD_CHAIN(head_, msg_)                                       \
	do {                                                                \
		uint16_t before_ = vq.last_avail;                           \
		int rc_ = pop();                                            \
		CHECK_EQ_U64(rc_, -EINVAL);                                 \
		CHECK_EQ_U64(chain.head, (head_));                          \
		CHECK_EQ_U64(chain.n_segs, 0);                              \
		CHECK_EQ_U64(chain.read_bytes + chain.write_bytes, 0);      \
		CHECK_EQ_U64(vq.last_avail, (uint16_t)(before_ + 1));       \
		CHECK(!vq.broken);                                          \
		CHECK_STR_CONTAINS(err, (msg_));                            \
	} while (0)

#endif
