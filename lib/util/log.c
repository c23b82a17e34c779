/* SPDX-License-Identifier: MIT */
/*
 * Log lines: "2026-11-24T12:00:00.123Z info  vm0: message", or the same as
 * one JSON object per line (--log-format json).  Each line is
 * formatted into a local buffer and written with one write(2), so lines from
 * different threads never interleave.  Messages carry what guests send
 * (section names, file names): every byte that is not printable ASCII is
 * written as \xNN (a backslash as \\), so no guest can end a line early
 * and forge the next one, or reach the terminal with escape sequences.
 */
#include <rosen/log.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Changed at run time (the control socket's log_level) while every
 * thread logs: relaxed atomics, a line at the old level is harmless. */
static _Atomic int max_level = RB_LOG_INFO;
static _Atomic int log_format = RB_LOG_FORMAT_TEXT;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

const char *rb_log_level_name(enum rb_log_level level)
{
	return (unsigned)level < 4 ? level_names[level] : "?";
}

int rb_log_level_parse(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (name && !strcmp(name, level_names[i]))
			return i;
	if (name && !strcmp(name, "warning"))
		return RB_LOG_WARN;
	return -1;
}

void rb_log_set_format(enum rb_log_format format)
{
	atomic_store_explicit(&log_format, (int)format, memory_order_relaxed);
}

void rb_log_set_level(enum rb_log_level level)
{
	atomic_store_explicit(&max_level, (int)level, memory_order_relaxed);
}

enum rb_log_level rb_log_get_level(void)
{
	return (enum rb_log_level)atomic_load_explicit(&max_level, memory_order_relaxed);
}

size_t rb_log_escape(char *dst, size_t cap, const char *src)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (!cap)
		return 0;
	for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
		unsigned char c = *p;
		bool plain = c >= 0x20 && c < 0x7f && c != '\\';
		size_t need = plain ? 1 : c == '\\' ? 2 : 4;
		if (o + need >= cap)
			break;
		if (plain) {
			dst[o++] = (char)c;
		} else if (c == '\\') {
			dst[o++] = '\\';
			dst[o++] = '\\';
		} else {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	dst[o] = 0;
	return o;
}

bool rb_log_limit(struct rb_log_limit *l, unsigned burst, const char *subject)
{
	struct timespec ts;
	bool ok;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	pthread_mutex_lock(&l->lock);
	if (now - l->window_start_us >= 1000000u) {
		if (l->suppressed)
			rb_warn(subject, "%u more such messages suppressed", l->suppressed);
		l->window_start_us = now;
		l->lines = 0;
		l->suppressed = 0;
	}
	ok = l->lines < burst;
	if (ok)
		l->lines++;
	else
		l->suppressed++;
	pthread_mutex_unlock(&l->lock);
	return ok;
}

/* Appends src to dst as the inside of a JSON string.  src comes from
 * rb_log_escape() (printable ASCII only): only '"' and '\\' need escaping. */
static size_t json_str(char *dst, size_t cap, const char *src)
{
	size_t o = 0;

	for (; *src && o + 2 < cap; src++) {
		if (*src == '"' || *src == '\\')
			dst[o++] = '\\';
		dst[o++] = *src;
	}
	dst[o] = 0;
	return o;
}

void rb_log(enum rb_log_level level, const char *subject, const char *fmt, ...)
{
	static const char *const names[] = {"error", "warn ", "info ", "debug"};
	char line[2048];
	char stamp[96];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	size_t len;

	if ((int)level > atomic_load_explicit(&max_level, memory_order_relaxed) || level < RB_LOG_ERROR)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
	char msg[900];
	va_start(ap, fmt);
	int m = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (m < 0)
		msg[0] = 0;
	if (atomic_load_explicit(&log_format, memory_order_relaxed) == RB_LOG_FORMAT_JSON) {
		/* Escaped first (no control bytes, no non-ASCII), then quoted:
		 * always one valid JSON object, whatever a guest put in it. */
		char esc[1024], subj[160];
		rb_log_escape(esc, sizeof(esc), msg);
		rb_log_escape(subj, sizeof(subj), subject ? subject : "-");
		len = (size_t)snprintf(line, sizeof(line), "{\"time\":\"%s\",\"level\":\"%s\",\"subject\":\"",
				       stamp, level_names[level]);
		len += json_str(line + len, sizeof(line) - len - 16, subj);
		len += (size_t)snprintf(line + len, sizeof(line) - len, "\",\"msg\":\"");
		len += json_str(line + len, sizeof(line) - len - 4, esc);
		line[len++] = '"';
		line[len++] = '}';
	} else {
		int n = snprintf(line, sizeof(line), "%s %s %s: ", stamp, names[level],
				 subject ? subject : "-");
		if (n < 0 || (size_t)n >= sizeof(line))
			n = 0;
		len = (size_t)n;
		len += rb_log_escape(line + len, sizeof(line) - len - 1, msg);
	}
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}
