/* SPDX-License-Identifier: MIT */
/*
 * The daemon's metrics as text in the Prometheus exposition format 0.0.4
 * (docs/metrics.md), and the optional HTTP endpoint that serves them
 * (--metrics-listen).  Both run on the control thread: they read counters
 * the workers keep and never wait for a worker or a client.
 */
#ifndef ROSENBRIDGED_METRICS_H
#define ROSENBRIDGED_METRICS_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "device.h"

/*
 * Renders every metric of the ndevs devices and of the workers (NULL: no
 * worker metrics) into a malloc'd, NUL-terminated text the caller frees:
 * *out, *len bytes (without the NUL).  Each family has its # HELP and
 * # TYPE lines; label values are escaped (backslash, double quote,
 * newline).  0, or -ENOMEM (*out NULL).  The control socket's `metrics`
 * method and the HTTP endpoint both serve this text.
 */
int rb_metrics_render(struct rb_device *const *devs, unsigned ndevs, struct rb_workers *workers,
		      char **out, size_t *len);

/* ---- HTTP endpoint (metrics_http.c) ---------------------------------------- */

/*
 * GET /metrics over HTTP/1.0-style connections (one request each, then
 * close), served from the control thread's poll loop: the socket is
 * non-blocking, a request is at most RB_METRICS_HTTP_REQ_MAX bytes, a
 * connection lives at most RB_METRICS_HTTP_TIMEOUT_MS (reading the
 * request and writing the answer together), and at most
 * RB_METRICS_HTTP_MAX_CONNS are open: the oldest is closed to make room
 * for a new one.  A stalled client therefore holds one slot for a few
 * seconds and delays nobody.
 */
#define RB_METRICS_HTTP_MAX_CONNS 8u
#define RB_METRICS_HTTP_MAX_FDS (RB_METRICS_HTTP_MAX_CONNS + 1u)
#define RB_METRICS_HTTP_REQ_MAX 4096u
#define RB_METRICS_HTTP_TIMEOUT_MS 5000

struct rb_metrics_http;

/*
 * Parses an address to listen on: "PORT" (127.0.0.1), "IPV4:PORT" or
 * "[IPV6]:PORT", numeric only (no name lookups in the daemon).  *loopback
 * tells whether it is 127.0.0.0/8 or ::1.  0, or -EINVAL with a message.
 * Pure.
 */
int rb_metrics_http_parse_addr(const char *spec, struct sockaddr_storage *ss, socklen_t *sslen,
			       bool *loopback, char *err, size_t errlen);
/* Listens on spec (above).  0 or -errno with a message. */
int rb_metrics_http_new(const char *spec, struct rb_metrics_http **out, char *err, size_t errlen);
void rb_metrics_http_free(struct rb_metrics_http *h);
/* The address it listens on, as given ("127.0.0.1:9177"). */
const char *rb_metrics_http_addr(const struct rb_metrics_http *h);

/* Fills pfd[0..max) with the fds to poll (the listener, each connection,
 * with the events it waits for); returns how many.  Lowers *timeout_ms
 * (-1: none) to the nearest connection's deadline. */
unsigned rb_metrics_http_poll_fds(struct rb_metrics_http *h, struct pollfd *pfd, unsigned max,
				  int *timeout_ms);
/* Serves what poll() found ready in pfd[0..n) (as poll_fds filled it) and
 * closes connections past their deadline; never blocks.  render(arg, &text,
 * &len) makes each answer (a malloc'd text it hands over, 0 or -errno). */
void rb_metrics_http_handle(struct rb_metrics_http *h, const struct pollfd *pfd, unsigned n,
			    int (*render)(void *arg, char **text, size_t *len), void *arg);

#endif
