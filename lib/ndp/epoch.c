/* SPDX-License-Identifier: MIT */
/*
 * The daemon instance's epoch, carried in the top bits of every handle and
 * key it gives out, so that a request naming one from before a restart is
 * told STATE_LOST (load again) rather than NO_PROGRAM (never was).  It is
 * taken once, from the clock, and never changes while the process lives.
 */
#include "ndp_internal.h"

#include <pthread.h>
#include <time.h>

#define EPOCH_FIELD 0xfffu
#define TICKS_PER_S 64u

static uint32_t epoch;
static pthread_once_t epoch_once = PTHREAD_ONCE_INIT;

static void take_epoch(void)
{
	struct timespec ts;
	uint64_t ticks;

	clock_gettime(CLOCK_REALTIME, &ts);
	ticks = (uint64_t)ts.tv_sec * TICKS_PER_S + (uint64_t)ts.tv_nsec / (1000000000u / TICKS_PER_S);
	epoch = 1 + (uint32_t)(ticks % RB_NDP_ID_EPOCH_MAX);
}

uint32_t rb_ndp_epoch(void)
{
	pthread_once(&epoch_once, take_epoch);
	return epoch;
}

uint32_t rb_ndp_id(uint32_t low)
{
	return rb_ndp_epoch() << RB_NDP_ID_EPOCH_SHIFT | (low & ((1u << RB_NDP_ID_EPOCH_SHIFT) - 1));
}

enum rb_ndp_id_kind rb_ndp_id_kind(uint32_t id)
{
	uint32_t e = id >> RB_NDP_ID_EPOCH_SHIFT;

	if (e == 0 || e == EPOCH_FIELD)
		return RB_NDP_ID_NEVER;
	return e == rb_ndp_epoch() ? RB_NDP_ID_CURRENT : RB_NDP_ID_EARLIER;
}

uint32_t rb_ndp_missing(uint32_t id, uint32_t absent)
{
	return rb_ndp_id_kind(id) == RB_NDP_ID_EARLIER ? RB_NDP_S_STATE_LOST : absent;
}
