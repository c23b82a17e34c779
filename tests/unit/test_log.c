/* SPDX-License-Identifier: MIT */
/*
 * lib/util/log.c: the escaping every log line goes through (a guest's
 * section or file name must not end a line or forge the next one) and the
 * rate limiter guest-triggered lines go through.
 */
#include "harness.h"

#include <rosen/log.h>

TEST(printable_ascii_passes_unchanged)
{
	char out[64];

	CHECK_EQ_U64(rb_log_escape(out, sizeof(out), "vm0: LOAD of 'xrp_peek'"), 23);
	CHECK(!strcmp(out, "vm0: LOAD of 'xrp_peek'"));
}

TEST(control_bytes_high_bytes_and_backslash_are_escaped)
{
	char out[128];

	rb_log_escape(out, sizeof(out), "a\nb\r\x1b[31m\x7f\xff\\x0a");
	CHECK(!strcmp(out, "a\\x0ab\\x0d\\x1b[31m\\x7f\\xff\\\\x0a"));
}

TEST(a_forged_line_stays_on_one_line)
{
	char out[256];

	rb_log_escape(out, sizeof(out), "x\n2026-01-01T00:00:00.000Z error vm1: forged");
	CHECK(strchr(out, '\n') == NULL);
	CHECK(!strncmp(out, "x\\x0a2026", 9));
}

TEST(cut_at_a_whole_escape_never_past_the_buffer)
{
	char out[8];

	/* "ab" (2) + "\x0a" (4) = 6, the next escape does not fit in 8 - 1. */
	CHECK_EQ_U64(rb_log_escape(out, sizeof(out), "ab\n\n\n"), 6);
	CHECK(!strcmp(out, "ab\\x0a"));
	CHECK_EQ_U64(rb_log_escape(out, 1, "abc"), 0);
	CHECK(out[0] == 0);
	CHECK_EQ_U64(rb_log_escape(out, 0, "abc"), 0);
}

TEST(limiter_allows_the_burst_then_suppresses)
{
	struct rb_log_limit l = RB_LOG_LIMIT_INIT;
	unsigned ok = 0;

	for (int i = 0; i < 100; i++)
		ok += rb_log_limit(&l, 10, "test");
	CHECK_EQ_U64(ok, 10);
	CHECK_EQ_U64(l.suppressed, 90);
}

TEST_MAIN()
