/* SPDX-License-Identifier: MIT */
/*
 * Logging for the daemon and tools: one line per event on stderr with a
 * timestamp, a level and a subject ("vm0", "worker1").  Thread-safe (one
 * write per line).  Rate limiting is the caller's business on hot paths.
 */
#ifndef ROSEN_LOG_H
#define ROSEN_LOG_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RB_LOG_OFF, as the level set, logs nothing: for fuzzers that provoke
 * refusals by the million. */
enum rb_log_level { RB_LOG_OFF = -1, RB_LOG_ERROR, RB_LOG_WARN, RB_LOG_INFO, RB_LOG_DEBUG };

void rb_log_set_level(enum rb_log_level level);
enum rb_log_level rb_log_get_level(void);
/* "error", "warn", "info", "debug" and back (-1: unknown name). */
const char *rb_log_level_name(enum rb_log_level level);
int rb_log_level_parse(const char *name);

/*
 * Line format.  TEXT: "2026-11-24T12:00:00.123Z info  vm0: message".
 * JSON: one object per line, {"time":"2026-11-24T12:00:00.123Z",
 * "level":"info","subject":"vm0","msg":"message"}, for journald/Loki
 * style collectors.  Either way the message is escaped first (see
 * rb_log_escape), so a JSON line holds only printable ASCII.
 */
enum rb_log_format { RB_LOG_FORMAT_TEXT, RB_LOG_FORMAT_JSON };
void rb_log_set_format(enum rb_log_format format);

void rb_log(enum rb_log_level level, const char *subject, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Copies src into dst (cap bytes with the NUL) with every byte that is not
 * printable ASCII as \xNN and a backslash as \\; cut at a whole escape.
 * Returns the length written.  rb_log() does this to every message. */
size_t rb_log_escape(char *dst, size_t cap, const char *src);

/*
 * Rate limit for log lines a guest can trigger: at most `burst` lines per
 * second through one limiter, then one line saying how many were
 * suppressed.  Thread-safe.  if (rb_log_limit(&l, 10, "vm0")) rb_warn(...).
 */
struct rb_log_limit {
	pthread_mutex_t lock;
	uint64_t window_start_us;
	unsigned lines;
	unsigned suppressed;
};
#define RB_LOG_LIMIT_INIT {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0}
bool rb_log_limit(struct rb_log_limit *l, unsigned burst, const char *subject);

#define rb_err(subj, ...) rb_log(RB_LOG_ERROR, subj, __VA_ARGS__)
#define rb_warn(subj, ...) rb_log(RB_LOG_WARN, subj, __VA_ARGS__)
#define rb_info(subj, ...) rb_log(RB_LOG_INFO, subj, __VA_ARGS__)
#define rb_debug(subj, ...) rb_log(RB_LOG_DEBUG, subj, __VA_ARGS__)

#endif
