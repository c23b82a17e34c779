/* SPDX-License-Identifier: MIT */
/*
 * The verifier's abstract numbers: unsigned and signed ranges of the 64-bit
 * value and of its low 32 bits, plus known bits.  Every operation returns a
 * sound over-approximation of what the machine computes (RFC 9669
 * semantics, division by zero included); precision is only what clang's
 * masks and bound checks need.  Pure functions: no state, no allocation.
 */
#include "verifier_internal.h"

#include <inttypes.h>
#include <stdio.h>

#define U64_MAX UINT64_MAX
#define S64_MIN INT64_MIN
#define S64_MAX INT64_MAX

/* ---- known bits ------------------------------------------------------------------ */

struct tnum tnum_const(uint64_t v)
{
	return (struct tnum){v, 0};
}

struct tnum tnum_unknown(void)
{
	return (struct tnum){0, U64_MAX};
}

/* The bits every value in [min, max] shares (the common prefix). */
static struct tnum tnum_range(uint64_t min, uint64_t max)
{
	uint64_t chi = min ^ max;
	unsigned bits = chi ? 64 - (unsigned)__builtin_clzll(chi) : 0;

	if (bits > 63)
		return tnum_unknown();
	uint64_t delta = (1ULL << bits) - 1;
	return (struct tnum){min & ~delta, delta};
}

static struct tnum tnum_add(struct tnum a, struct tnum b)
{
	uint64_t sm = a.mask + b.mask, sv = a.value + b.value;
	uint64_t sigma = sm + sv, chi = sigma ^ sv, mu = chi | a.mask | b.mask;
	return (struct tnum){sv & ~mu, mu};
}

static struct tnum tnum_sub(struct tnum a, struct tnum b)
{
	uint64_t dv = a.value - b.value, alpha = dv + a.mask, beta = dv - b.mask;
	uint64_t chi = alpha ^ beta, mu = chi | a.mask | b.mask;
	return (struct tnum){dv & ~mu, mu};
}

static struct tnum tnum_and(struct tnum a, struct tnum b)
{
	uint64_t alpha = a.value | a.mask, beta = b.value | b.mask, v = a.value & b.value;
	return (struct tnum){v, alpha & beta & ~v};
}

static struct tnum tnum_or(struct tnum a, struct tnum b)
{
	uint64_t v = a.value | b.value, mu = a.mask | b.mask;
	return (struct tnum){v, mu & ~v};
}

static struct tnum tnum_xor(struct tnum a, struct tnum b)
{
	uint64_t v = a.value ^ b.value, mu = a.mask | b.mask;
	return (struct tnum){v & ~mu, mu};
}

static struct tnum tnum_intersect(struct tnum a, struct tnum b)
{
	uint64_t v = a.value | b.value, mu = a.mask & b.mask;
	return (struct tnum){v & ~mu, mu};
}

static struct tnum tnum_trunc(struct tnum a, unsigned bytes)
{
	if (bytes >= 8)
		return a;
	uint64_t keep = (1ULL << (bytes * 8)) - 1;
	return (struct tnum){a.value & keep, a.mask & keep};
}

/* Joined: bits known and equal in both stay known. */
static struct tnum tnum_union(struct tnum a, struct tnum b)
{
	uint64_t mu = a.mask | b.mask | (a.value ^ b.value);
	return (struct tnum){a.value & ~mu, mu};
}

/* ---- constructors --------------------------------------------------------------- */

struct scal scal_unknown(void)
{
	return (struct scal){
		.umin = 0, .umax = U64_MAX, .smin = S64_MIN, .smax = S64_MAX,
		.u32min = 0, .u32max = UINT32_MAX, .s32min = INT32_MIN, .s32max = INT32_MAX,
		.t = tnum_unknown(),
	};
}

struct scal scal_const(uint64_t v)
{
	return (struct scal){
		.umin = v, .umax = v, .smin = (int64_t)v, .smax = (int64_t)v,
		.u32min = (uint32_t)v, .u32max = (uint32_t)v,
		.s32min = (int32_t)v, .s32max = (int32_t)v, .t = tnum_const(v),
	};
}

/* A value known only to lie in [lo, hi] (unsigned). */
static struct scal scal_urange(uint64_t lo, uint64_t hi)
{
	struct scal s = scal_unknown();

	s.umin = lo;
	s.umax = hi;
	s.t = tnum_range(lo, hi);
	scal_sync(&s);
	return s;
}

struct scal scal_width(unsigned bytes)
{
	return bytes >= 8 ? scal_unknown() : scal_urange(0, (1ULL << (bytes * 8)) - 1);
}

struct scal scal_swidth(unsigned bytes)
{
	if (bytes >= 8)
		return scal_unknown();
	struct scal s = scal_unknown();
	int64_t half = (int64_t)1 << (bytes * 8 - 1);
	s.smin = -half;
	s.smax = half - 1;
	scal_sync(&s);
	return s;
}

bool scal_is_const(const struct scal *s)
{
	return s->t.mask == 0;
}

/* ---- keeping the views consistent ------------------------------------------------ */

static uint64_t umax64(uint64_t a, uint64_t b) { return a > b ? a : b; }
static uint64_t umin64(uint64_t a, uint64_t b) { return a < b ? a : b; }
static int64_t smax64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t smin64(int64_t a, int64_t b) { return a < b ? a : b; }

bool scal_sync(struct scal *s)
{
	for (int round = 0; round < 2; round++) {
		/* Known bits bound the unsigned ranges. */
		s->umin = umax64(s->umin, s->t.value);
		s->umax = umin64(s->umax, s->t.value | s->t.mask);
		uint32_t tv = (uint32_t)s->t.value, tm = (uint32_t)s->t.mask;
		if (s->u32min < tv)
			s->u32min = tv;
		if (s->u32max > (tv | tm))
			s->u32max = tv | tm;
		if (s->umin > s->umax || s->u32min > s->u32max)
			return false;

		/* Signed <-> unsigned where the range does not cross the sign. */
		if (((s->umin ^ s->umax) >> 63) == 0) {
			/* umin..umax has one sign: same order signed. */
			s->smin = smax64(s->smin, (int64_t)s->umin);
			s->smax = smin64(s->smax, (int64_t)s->umax);
		}
		if (s->smin >= 0 || s->smax < 0) {
			s->umin = umax64(s->umin, (uint64_t)s->smin);
			s->umax = umin64(s->umax, (uint64_t)s->smax);
		}
		if (s->smin > s->smax || s->umin > s->umax)
			return false;

		/* 64-bit ranges whose upper halves agree bound the low half. */
		if ((s->umin >> 32) == (s->umax >> 32)) {
			if (s->u32min < (uint32_t)s->umin)
				s->u32min = (uint32_t)s->umin;
			if (s->u32max > (uint32_t)s->umax)
				s->u32max = (uint32_t)s->umax;
		}
		if (s->smin >= INT32_MIN && s->smax <= INT32_MAX) {
			if (s->s32min < s->smin)
				s->s32min = (int32_t)s->smin;
			if (s->s32max > s->smax)
				s->s32max = (int32_t)s->smax;
		}
		/* 32-bit signed <-> unsigned. */
		if (((s->u32min ^ s->u32max) >> 31) == 0) {
			if (s->s32min < (int32_t)s->u32min)
				s->s32min = (int32_t)s->u32min;
			if (s->s32max > (int32_t)s->u32max)
				s->s32max = (int32_t)s->u32max;
		}
		if (s->s32min >= 0 || s->s32max < 0) {
			if (s->u32min < (uint32_t)s->s32min)
				s->u32min = (uint32_t)s->s32min;
			if (s->u32max > (uint32_t)s->s32max)
				s->u32max = (uint32_t)s->s32max;
		}
		if (s->u32min > s->u32max || s->s32min > s->s32max)
			return false;
		/* Upper half known: the low-half range gives the whole. */
		if ((s->t.mask >> 32) == 0) {
			uint64_t hi = s->t.value & 0xffffffff00000000ULL;
			s->umin = umax64(s->umin, hi | s->u32min);
			s->umax = umin64(s->umax, hi | s->u32max);
			if (s->umin > s->umax)
				return false;
		}
		/* Known low bits (an aligned pointer offset, a multiple of 8)
		 * pull the bounds in to the nearest values that have them. */
		if (s->t.mask && (s->t.mask & 1) == 0) {
			unsigned tz = (unsigned)__builtin_ctzll(s->t.mask);
			uint64_t step = 1ULL << tz, low = s->t.value & (step - 1);
			uint64_t hi = (s->umax & ~(step - 1)) | low;
			if (hi > s->umax) {
				if (hi < step)
					return false;
				hi -= step;
			}
			uint64_t lo = (s->umin & ~(step - 1)) | low;
			if (lo < s->umin) {
				if (lo > UINT64_MAX - step)
					return false;
				lo += step;
			}
			s->umin = lo;
			s->umax = hi;
			if (s->umin > s->umax)
				return false;
		}
		/* Ranges give known bits back. */
		struct tnum rr = tnum_range(s->umin, s->umax);
		if ((rr.value ^ s->t.value) & ~rr.mask & ~s->t.mask)
			return false;
		struct tnum r = tnum_intersect(s->t, rr);
		struct tnum r32 = tnum_range(s->u32min, s->u32max);
		uint64_t lowmask = 0xffffffffULL;
		struct tnum low = {r32.value & lowmask, (r32.mask & lowmask) | ~lowmask};
		/* Contradicting known bits: a bit known 0 in one, 1 in the other. */
		if ((r.value ^ low.value) & ~r.mask & ~low.mask)
			return false;
		s->t = tnum_intersect(r, low);
	}
	return s->umin <= s->umax && s->smin <= s->smax && s->u32min <= s->u32max &&
	       s->s32min <= s->s32max;
}

/* A 32-bit result: the value is the zero-extended low half. */
static void from32(struct scal *s, uint32_t lo, uint32_t hi, struct tnum t)
{
	*s = scal_urange(lo, hi);
	s->t = tnum_intersect(s->t, tnum_trunc(t, 4));
	scal_sync(s);
}

/* The low 32 bits of s as a 64-bit number (what a 32-bit op reads). */
static struct scal low32(const struct scal *s)
{
	struct scal r = scal_urange(s->u32min, s->u32max);
	r.t = tnum_intersect(r.t, tnum_trunc(s->t, 4));
	r.s32min = s->s32min;
	r.s32max = s->s32max;
	scal_sync(&r);
	return r;
}

/* ---- arithmetic ----------------------------------------------------------------- */

static void alu_add(struct scal *d, const struct scal *a, const struct scal *b)
{
	struct scal r = scal_unknown();
	uint64_t lo, hi;
	int64_t slo, shi;

	if (!__builtin_add_overflow(a->umin, b->umin, &lo) &&
	    !__builtin_add_overflow(a->umax, b->umax, &hi)) {
		r.umin = lo;
		r.umax = hi;
	}
	if (!__builtin_add_overflow(a->smin, b->smin, &slo) &&
	    !__builtin_add_overflow(a->smax, b->smax, &shi)) {
		r.smin = slo;
		r.smax = shi;
	}
	r.t = tnum_add(a->t, b->t);
	*d = r;
}

static void alu_sub(struct scal *d, const struct scal *a, const struct scal *b)
{
	struct scal r = scal_unknown();
	int64_t slo, shi;

	if (a->umin >= b->umax) {
		r.umin = a->umin - b->umax;
		r.umax = a->umax - b->umin;
	}
	if (!__builtin_sub_overflow(a->smin, b->smax, &slo) &&
	    !__builtin_sub_overflow(a->smax, b->smin, &shi)) {
		r.smin = slo;
		r.smax = shi;
	}
	r.t = tnum_sub(a->t, b->t);
	*d = r;
}

static void alu_mul(struct scal *d, const struct scal *a, const struct scal *b)
{
	struct scal r = scal_unknown();
	uint64_t hi;

	if (!__builtin_mul_overflow(a->umax, b->umax, &hi)) {
		r.umin = a->umin * b->umin;
		r.umax = hi;
	}
	if (scal_is_const(a) && scal_is_const(b))
		r = scal_const(a->t.value * b->t.value);
	*d = r;
}

static uint64_t shift_amount_max(bool is64)
{
	return is64 ? 63 : 31;
}

/* One ALU op on 64-bit operands (for 32-bit ops the caller passes the low
 * halves zero-extended and truncates after). */
static void alu64(struct scal *d, const struct scal *a, const struct scal *b, uint8_t op,
		  bool is64, bool sdiv)
{
	unsigned bits = is64 ? 64 : 32;

	/* Constants fold exactly (the interpreter's semantics). */
	if (scal_is_const(a) && scal_is_const(b) && op != RB_BPF_NEG) {
		uint64_t x = a->t.value, y = b->t.value, v = 0;
		bool ok = true;
		if (!is64) {
			x = (uint32_t)x;
			y = (uint32_t)y;
		}
		switch (op) {
		case RB_BPF_ADD: v = x + y; break;
		case RB_BPF_SUB: v = x - y; break;
		case RB_BPF_MUL: v = x * y; break;
		case RB_BPF_OR: v = x | y; break;
		case RB_BPF_AND: v = x & y; break;
		case RB_BPF_XOR: v = x ^ y; break;
		case RB_BPF_LSH: v = x << (y & (bits - 1)); break;
		case RB_BPF_RSH: v = x >> (y & (bits - 1)); break;
		case RB_BPF_ARSH:
			v = is64 ? (uint64_t)((int64_t)x >> (y & 63))
				 : (uint32_t)((int32_t)(uint32_t)x >> (y & 31));
			break;
		case RB_BPF_DIV:
		case RB_BPF_MOD:
			if (sdiv) {
				int64_t sx = is64 ? (int64_t)x : (int32_t)(uint32_t)x;
				int64_t sy = is64 ? (int64_t)y : (int32_t)(uint32_t)y;
				if (sy == 0)
					v = op == RB_BPF_DIV ? 0 : (uint64_t)sx;
				else if (sy == -1)
					v = op == RB_BPF_DIV ? (uint64_t)0 - (uint64_t)sx : 0;
				else
					v = (uint64_t)(op == RB_BPF_DIV ? sx / sy : sx % sy);
			} else if (y == 0) {
				v = op == RB_BPF_DIV ? 0 : x;
			} else {
				v = op == RB_BPF_DIV ? x / y : x % y;
			}
			break;
		default: ok = false;
		}
		if (ok) {
			*d = scal_const(is64 ? v : (uint32_t)v);
			return;
		}
	}
	struct scal r = scal_unknown();
	switch (op) {
	case RB_BPF_ADD: alu_add(&r, a, b); break;
	case RB_BPF_SUB: alu_sub(&r, a, b); break;
	case RB_BPF_MUL: alu_mul(&r, a, b); break;
	case RB_BPF_AND:
		r.t = tnum_and(a->t, b->t);
		/* Both non-negative: no bigger than either. */
		r.umax = umin64(a->umax, b->umax);
		break;
	case RB_BPF_OR:
		r.t = tnum_or(a->t, b->t);
		r.umin = umax64(a->umin, b->umin);
		break;
	case RB_BPF_XOR:
		r.t = tnum_xor(a->t, b->t);
		break;
	case RB_BPF_LSH:
		if (scal_is_const(b) && b->t.value <= shift_amount_max(is64)) {
			unsigned sh = (unsigned)b->t.value;
			r.t = (struct tnum){a->t.value << sh, a->t.mask << sh};
			if (a->umax <= (U64_MAX >> sh)) {
				r.umin = a->umin << sh;
				r.umax = a->umax << sh;
			}
		}
		break;
	case RB_BPF_RSH:
		if (scal_is_const(b) && b->t.value <= shift_amount_max(is64)) {
			unsigned sh = (unsigned)b->t.value;
			r.t = (struct tnum){a->t.value >> sh, a->t.mask >> sh};
			r.umin = a->umin >> sh;
			r.umax = a->umax >> sh;
		} else {
			/* Any shift makes it no bigger. */
			r.umax = a->umax;
		}
		break;
	case RB_BPF_ARSH:
		if (is64 && scal_is_const(b) && b->t.value <= 63) {
			unsigned sh = (unsigned)b->t.value;
			r.smin = a->smin >> sh;
			r.smax = a->smax >> sh;
			r.t = (struct tnum){(uint64_t)((int64_t)a->t.value >> sh),
					    (uint64_t)((int64_t)a->t.mask >> sh)};
		}
		break;
	case RB_BPF_DIV:
		if (!sdiv) {
			/* x / y <= x, and x / 0 = 0. */
			r.umin = 0;
			r.umax = a->umax;
		}
		break;
	case RB_BPF_MOD:
		if (!sdiv) {
			/* x % y < y when y != 0, and x % 0 = x: at most max(x, y-1). */
			r.umin = 0;
			r.umax = b->umin ? umin64(a->umax, b->umax - 1) : a->umax;
		}
		break;
	case RB_BPF_NEG:
		if (scal_is_const(a))
			r = scal_const(is64 ? (uint64_t)0 - a->t.value : (uint32_t)(0 - (uint32_t)a->t.value));
		break;
	}
	if (!is64) {
		/* Only the low half is meaningful (and known bits of it). */
		uint32_t lo = 0, hi = UINT32_MAX;
		if (r.umax <= UINT32_MAX && r.umin <= r.umax) {
			lo = (uint32_t)r.umin;
			hi = (uint32_t)r.umax;
		}
		from32(d, lo, hi, r.t);
		return;
	}
	if (!scal_sync(&r))
		r = scal_unknown();
	*d = r;
}

void scal_alu(struct scal *dst, const struct scal *src, uint8_t op, bool is64, bool sdiv)
{
	if (op == RB_BPF_MOV) {
		*dst = is64 ? *src : low32(src);
		return;
	}
	if (is64) {
		struct scal a = *dst;
		alu64(dst, &a, src, op, true, sdiv);
		return;
	}
	struct scal a = low32(dst), b = low32(src);
	alu64(dst, &a, &b, op, false, sdiv);
}

void scal_movsx(struct scal *dst, const struct scal *src, unsigned bits, bool is64)
{
	if (bits >= 64) {
		*dst = *src;
		return;
	}
	struct scal r;
	if (scal_is_const(src)) {
		int64_t v = bits == 8 ? (int8_t)src->t.value : bits == 16 ? (int16_t)src->t.value
									  : (int32_t)src->t.value;
		r = scal_const(is64 ? (uint64_t)v : (uint32_t)v);
	} else if (src->umax < (1ULL << (bits - 1))) {
		/* Sign bit clear: sign-extension is zero-extension. */
		r = *src;
	} else {
		r = scal_swidth(bits / 8);
		if (!is64)
			r = low32(&r);
	}
	*dst = r;
}

void scal_bswap(struct scal *dst, unsigned bits, bool swap)
{
	if (!swap) {
		scal_trunc(dst, bits / 8);
		return;
	}
	if (scal_is_const(dst)) {
		uint64_t v = dst->t.value;
		v = bits == 16 ? __builtin_bswap16((uint16_t)v)
		    : bits == 32 ? __builtin_bswap32((uint32_t)v) : __builtin_bswap64(v);
		*dst = scal_const(v);
		return;
	}
	*dst = scal_width(bits / 8);
}

void scal_trunc(struct scal *dst, unsigned bytes)
{
	if (bytes >= 8)
		return;
	uint64_t max = (1ULL << (bytes * 8)) - 1;
	if (dst->umax <= max)
		return;
	if (scal_is_const(dst)) {
		*dst = scal_const(dst->t.value & max);
		return;
	}
	struct tnum t = tnum_trunc(dst->t, bytes);
	*dst = scal_urange(0, max);
	dst->t = tnum_intersect(dst->t, t);
	scal_sync(dst);
}

/* ---- comparisons --------------------------------------------------------------- */

/* Refines a 64-bit (or, with the 32-bit view, the low-half) range pair for
 * "a rel b"; returns false when impossible. */
static bool refine_u(uint64_t *amin, uint64_t *amax, uint64_t *bmin, uint64_t *bmax,
		     enum scal_rel rel)
{
	switch (rel) {
	case REL_EQ:
		*amin = *bmin = umax64(*amin, *bmin);
		*amax = *bmax = umin64(*amax, *bmax);
		break;
	case REL_NE:
		if (*amin == *amax && *bmin == *bmax && *amin == *bmin)
			return false;
		if (*bmin == *bmax) {
			if (*amin == *bmin)
				(*amin)++;
			else if (*amax == *bmin)
				(*amax)--;
		}
		if (*amin == *amax) {
			if (*bmin == *amin)
				(*bmin)++;
			else if (*bmax == *amin)
				(*bmax)--;
		}
		break;
	case REL_GT: /* a > b */
		if (*amax == 0 || *bmin == UINT64_MAX)
			return false;
		*amin = umax64(*amin, *bmin + 1);
		*bmax = umin64(*bmax, *amax - 1);
		break;
	case REL_GE:
		*amin = umax64(*amin, *bmin);
		*bmax = umin64(*bmax, *amax);
		break;
	case REL_LT:
		return refine_u(bmin, bmax, amin, amax, REL_GT);
	case REL_LE:
		return refine_u(bmin, bmax, amin, amax, REL_GE);
	default:
		break;
	}
	return *amin <= *amax && *bmin <= *bmax;
}

static bool refine_s(int64_t *amin, int64_t *amax, int64_t *bmin, int64_t *bmax,
		     enum scal_rel rel)
{
	switch (rel) {
	case REL_EQ:
		*amin = *bmin = smax64(*amin, *bmin);
		*amax = *bmax = smin64(*amax, *bmax);
		break;
	case REL_SGT:
		if (*amax == INT64_MIN || *bmin == INT64_MAX)
			return false;
		*amin = smax64(*amin, *bmin + 1);
		*bmax = smin64(*bmax, *amax - 1);
		break;
	case REL_SGE:
		*amin = smax64(*amin, *bmin);
		*bmax = smin64(*bmax, *amax);
		break;
	case REL_SLT:
		return refine_s(bmin, bmax, amin, amax, REL_SGT);
	case REL_SLE:
		return refine_s(bmin, bmax, amin, amax, REL_SGE);
	default:
		break;
	}
	return *amin <= *amax && *bmin <= *bmax;
}

bool scal_refine(struct scal *a, struct scal *b, enum scal_rel rel, bool is32)
{
	bool ok = true;

	if (rel == REL_SET || rel == REL_NSET) {
		if (!scal_is_const(b))
			return true;
		uint64_t m = is32 ? (uint32_t)b->t.value : b->t.value;
		if (rel == REL_NSET) {
			/* Every bit of m is 0 in a. */
			if (a->t.value & m)
				return false;
			a->t.mask &= ~m;
		} else {
			if (!((a->t.value | a->t.mask) & m))
				return false;
			if (__builtin_popcountll(m) == 1) {
				a->t.value |= m;
				a->t.mask &= ~m;
			}
		}
		return scal_sync(a);
	}
	if (is32) {
		uint64_t amin = a->u32min, amax = a->u32max, bmin = b->u32min, bmax = b->u32max;
		int64_t samin = a->s32min, samax = a->s32max, sbmin = b->s32min, sbmax = b->s32max;
		ok = refine_u(&amin, &amax, &bmin, &bmax, rel) &&
		     refine_s(&samin, &samax, &sbmin, &sbmax, rel);
		if (!ok)
			return false;
		a->u32min = (uint32_t)amin, a->u32max = (uint32_t)amax;
		b->u32min = (uint32_t)bmin, b->u32max = (uint32_t)bmax;
		a->s32min = (int32_t)samin, a->s32max = (int32_t)samax;
		b->s32min = (int32_t)sbmin, b->s32max = (int32_t)sbmax;
		if (rel == REL_EQ) {
			struct tnum la = tnum_trunc(a->t, 4), lb = tnum_trunc(b->t, 4);
			uint64_t hi = 0xffffffff00000000ULL;
			struct tnum both = tnum_intersect(la, lb);
			if ((la.value ^ lb.value) & ~la.mask & ~lb.mask)
				return false;
			a->t = tnum_intersect(a->t, (struct tnum){both.value, both.mask | hi});
			b->t = tnum_intersect(b->t, (struct tnum){both.value, both.mask | hi});
		}
	} else {
		ok = refine_u(&a->umin, &a->umax, &b->umin, &b->umax, rel) &&
		     refine_s(&a->smin, &a->smax, &b->smin, &b->smax, rel);
		if (!ok)
			return false;
		if (rel == REL_EQ) {
			if ((a->t.value ^ b->t.value) & ~a->t.mask & ~b->t.mask)
				return false;
			a->t = b->t = tnum_intersect(a->t, b->t);
		}
	}
	return scal_sync(a) && scal_sync(b);
}

bool scal_subset(const struct scal *s, const struct scal *b)
{
	return s->umin >= b->umin && s->umax <= b->umax && s->smin >= b->smin &&
	       s->smax <= b->smax && s->u32min >= b->u32min && s->u32max <= b->u32max &&
	       s->s32min >= b->s32min && s->s32max <= b->s32max &&
	       /* every bit b knows, s knows with the same value */
	       (b->t.mask | s->t.mask) == b->t.mask &&
	       ((s->t.value ^ b->t.value) & ~b->t.mask) == 0;
}

static void widen_bounds(struct scal *r, const struct scal *old, const uint64_t *thr, unsigned n);

void scal_join(struct scal *d, const struct scal *o, bool widen)
{
	struct scal r;

	r.t = tnum_union(d->t, o->t);
	r.umin = umin64(d->umin, o->umin);
	r.umax = umax64(d->umax, o->umax);
	r.smin = smin64(d->smin, o->smin);
	r.smax = smax64(d->smax, o->smax);
	r.u32min = d->u32min < o->u32min ? d->u32min : o->u32min;
	r.u32max = d->u32max > o->u32max ? d->u32max : o->u32max;
	r.s32min = d->s32min < o->s32min ? d->s32min : o->s32min;
	r.s32max = d->s32max > o->s32max ? d->s32max : o->s32max;
	if (widen)
		widen_bounds(&r, d, NULL, 0);
	if (!scal_sync(&r))
		r = scal_unknown();
	*d = r;
}

/* Thresholds: the smallest t >= v (or the largest t <= v), else the
 * extreme.  thr is sorted as unsigned; signed lookups scan it. */
static uint64_t up_u(uint64_t v, const uint64_t *thr, unsigned n, uint64_t max)
{
	for (unsigned i = 0; i < n; i++)
		if (thr[i] >= v && thr[i] <= max)
			return thr[i];
	return max;
}

static uint64_t down_u(uint64_t v, const uint64_t *thr, unsigned n)
{
	for (unsigned i = n; i-- > 0;)
		if (thr[i] <= v)
			return thr[i];
	return 0;
}

static int64_t up_s(int64_t v, const uint64_t *thr, unsigned n, int64_t max)
{
	int64_t best = max;
	for (unsigned i = 0; i < n; i++) {
		int64_t t = (int64_t)thr[i];
		if (t >= v && t < best)
			best = t;
	}
	return best;
}

static int64_t down_s(int64_t v, const uint64_t *thr, unsigned n, int64_t min)
{
	int64_t best = min;
	for (unsigned i = 0; i < n; i++) {
		int64_t t = (int64_t)thr[i];
		if (t <= v && t > best)
			best = t;
	}
	return best;
}

/* Bounds of r that grew past old's jump to the next threshold (or the
 * extreme): each bound can only grow through finitely many values, so
 * repeated widening reaches a fixed point; a loop counted up to one of
 * the program's constants stops growing there. */
static void widen_bounds(struct scal *r, const struct scal *old, const uint64_t *thr, unsigned n)
{
	if (r->umin < old->umin) r->umin = down_u(r->umin, thr, n);
	if (r->umax > old->umax) r->umax = up_u(r->umax, thr, n, U64_MAX);
	if (r->smin < old->smin) r->smin = down_s(r->smin, thr, n, S64_MIN);
	if (r->smax > old->smax) r->smax = up_s(r->smax, thr, n, S64_MAX);
	if (r->u32min < old->u32min) r->u32min = (uint32_t)down_u(r->u32min, thr, n);
	if (r->u32max > old->u32max) r->u32max = (uint32_t)up_u(r->u32max, thr, n, UINT32_MAX);
	if (r->s32min < old->s32min) r->s32min = (int32_t)down_s(r->s32min, thr, n, INT32_MIN);
	if (r->s32max > old->s32max) r->s32max = (int32_t)up_s(r->s32max, thr, n, INT32_MAX);
}

void scal_widen(struct scal *d, const struct scal *o, const uint64_t *thr, unsigned n)
{
	struct scal old = *d;

	scal_join(d, o, false);
	widen_bounds(d, &old, thr, n);
	if (!scal_sync(d))
		*d = scal_unknown();
}

/* q = what both q and n allow (n when they contradict: q's path is then
 * impossible, and n is still sound). */
void scal_meet(struct scal *q, const struct scal *n)
{
	struct scal m = *q;

	if ((m.t.value ^ n->t.value) & ~m.t.mask & ~n->t.mask) {
		*q = *n;
		return;
	}
	m.umin = m.umin > n->umin ? m.umin : n->umin;
	m.umax = m.umax < n->umax ? m.umax : n->umax;
	m.smin = m.smin > n->smin ? m.smin : n->smin;
	m.smax = m.smax < n->smax ? m.smax : n->smax;
	m.u32min = m.u32min > n->u32min ? m.u32min : n->u32min;
	m.u32max = m.u32max < n->u32max ? m.u32max : n->u32max;
	m.s32min = m.s32min > n->s32min ? m.s32min : n->s32min;
	m.s32max = m.s32max < n->s32max ? m.s32max : n->s32max;
	uint64_t val = m.t.value | n->t.value, mask = m.t.mask & n->t.mask;
	m.t.value = val & ~mask;
	m.t.mask = mask;
	*q = scal_sync(&m) ? m : *n;
}

void scal_fmt(char *buf, size_t len, const struct scal *s)
{
	if (scal_is_const(s)) {
		if ((int64_t)s->t.value < 0 && (int64_t)s->t.value > -4096)
			snprintf(buf, len, "%" PRId64, (int64_t)s->t.value);
		else
			snprintf(buf, len, "%" PRIu64, s->t.value);
		return;
	}
	if (s->umin == 0 && s->umax == U64_MAX && s->smin == S64_MIN && s->smax == S64_MAX) {
		snprintf(buf, len, "scalar");
		return;
	}
	if (s->smin >= 0 && s->umax != U64_MAX) {
		snprintf(buf, len, "[%" PRIu64 "..%" PRIu64 "]", s->umin, s->umax);
		return;
	}
	snprintf(buf, len, "scalar(u[%" PRIu64 "..%" PRIu64 "] s[%" PRId64 "..%" PRId64 "])",
		 s->umin, s->umax, s->smin, s->smax);
}
