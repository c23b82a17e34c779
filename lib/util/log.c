/* SPDX-License-Identifier: MIT */
/*
 * Log lines: "2026-11-24T12:00:00.123Z info  vm0: message".  Each line is
 * formatted into a local buffer and written with one write(2), so lines from
 * different threads never interleave.
 */
#include <rosen/log.h>

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile enum rb_log_level max_level = RB_LOG_INFO;

void rb_log_set_level(enum rb_log_level level)
{
	max_level = level;
}

enum rb_log_level rb_log_get_level(void)
{
	return max_level;
}

void rb_log(enum rb_log_level level, const char *subject, const char *fmt, ...)
{
	static const char *const names[] = {"error", "warn ", "info ", "debug"};
	char line[1024];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n;

	if (level > max_level || level < RB_LOG_ERROR)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		     tm.tm_sec, ts.tv_nsec / 1000000, names[level], subject ? subject : "-");
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	size_t len = (size_t)n + (size_t)m;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}
