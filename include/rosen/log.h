/* SPDX-License-Identifier: MIT */
/*
 * Logging for the daemon and tools: one line per event on stderr with a
 * timestamp, a level and a subject ("vm0", "worker1").  Thread-safe (one
 * write per line).  Rate limiting is the caller's business on hot paths.
 */
#ifndef ROSEN_LOG_H
#define ROSEN_LOG_H

#include <stdarg.h>

/* RB_LOG_OFF, as the level set, logs nothing: for fuzzers that provoke
 * refusals by the million. */
enum rb_log_level { RB_LOG_OFF = -1, RB_LOG_ERROR, RB_LOG_WARN, RB_LOG_INFO, RB_LOG_DEBUG };

void rb_log_set_level(enum rb_log_level level);
enum rb_log_level rb_log_get_level(void);

void rb_log(enum rb_log_level level, const char *subject, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define rb_err(subj, ...) rb_log(RB_LOG_ERROR, subj, __VA_ARGS__)
#define rb_warn(subj, ...) rb_log(RB_LOG_WARN, subj, __VA_ARGS__)
#define rb_info(subj, ...) rb_log(RB_LOG_INFO, subj, __VA_ARGS__)
#define rb_debug(subj, ...) rb_log(RB_LOG_DEBUG, subj, __VA_ARGS__)

#endif
