/* SPDX-License-Identifier: MIT */
/*
 * The test helpers of the public bpf_conformance suite's plugin contract.
 * Every pointer a program passes is checked against its memory before use.
 */
#include "test_helpers.h"

#include <math.h>
#include <stdint.h>

static uint64_t gather_bytes(struct rb_bpf_call *c, uint64_t a, uint64_t b,
			     uint64_t c3, uint64_t d, uint64_t e)
{
	(void)c;
	return (a & 0xff) << 32 | (b & 0xff) << 24 | (c3 & 0xff) << 16 |
	       (d & 0xff) << 8 | (e & 0xff);
}

static uint64_t memfrob_(struct rb_bpf_call *c, uint64_t ptr, uint64_t len,
			 uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a3, (void)a4, (void)a5;
	if (!rb_bpf_call_mem_ok(c, ptr, len, true)) {
		rb_bpf_call_fail(c, "buffer 0x%llx+%llu is not writable program memory",
				 (unsigned long long)ptr, (unsigned long long)len);
		return 0;
	}
	for (uint64_t i = 0; i < len; i++)
		((uint8_t *)(uintptr_t)ptr)[i] ^= 42;
	return 0;
}

static uint64_t no_op(struct rb_bpf_call *c, uint64_t a1, uint64_t a2,
		      uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)c, (void)a1, (void)a2, (void)a3, (void)a4, (void)a5;
	return 0;
}

static uint64_t sqrti(struct rb_bpf_call *c, uint64_t a, uint64_t a2,
		      uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)c, (void)a2, (void)a3, (void)a4, (void)a5;
	/* Start from the floating-point root, then correct it exactly. */
	uint64_t x = (uint64_t)sqrtl((long double)a);

	while (x > 0 && (x > UINT32_MAX || x * x > a))
		x--;
	while (x < UINT32_MAX && (x + 1) * (x + 1) <= a)
		x++;
	return x;
}

/* Length of the NUL-terminated string at p, or -1 if it leaves memory. */
static int64_t checked_strlen(struct rb_bpf_call *c, uint64_t p)
{
	for (uint64_t i = 0;; i++) {
		if (!rb_bpf_call_mem_ok(c, p + i, 1, false))
			return -1;
		if (((const char *)(uintptr_t)p)[i] == 0)
			return (int64_t)i;
	}
}

static uint64_t strcmp_ext(struct rb_bpf_call *c, uint64_t a, uint64_t b,
			   uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a3, (void)a4, (void)a5;
	if (checked_strlen(c, a) < 0 || checked_strlen(c, b) < 0) {
		rb_bpf_call_fail(c, "string argument runs outside program memory");
		return 0;
	}
	const unsigned char *x = (const unsigned char *)(uintptr_t)a;
	const unsigned char *y = (const unsigned char *)(uintptr_t)b;
	while (*x && *x == *y)
		x++, y++;
	return (uint64_t)(int64_t)(*x - *y);
}

static uint64_t unwind(struct rb_bpf_call *c, uint64_t a, uint64_t a2,
		       uint64_t a3, uint64_t a4, uint64_t a5)
{
	(void)a2, (void)a3, (void)a4, (void)a5;
	if (a == 0)
		rb_bpf_call_stop(c, 0);
	return a;
}

int rosen_bpf_register_test_helpers(struct rb_bpf_helpers *h)
{
	int rc = 0;

	rc = rc ? rc : rb_bpf_helpers_register(h, 0, "gather_bytes", gather_bytes);
	rc = rc ? rc : rb_bpf_helpers_register(h, 1, "memfrob", memfrob_);
	rc = rc ? rc : rb_bpf_helpers_register(h, 2, "no_op", no_op);
	rc = rc ? rc : rb_bpf_helpers_register(h, 3, "sqrti", sqrti);
	rc = rc ? rc : rb_bpf_helpers_register(h, 4, "strcmp_ext", strcmp_ext);
	rc = rc ? rc : rb_bpf_helpers_register(h, 5, "unwind", unwind);
	return rc;
}
