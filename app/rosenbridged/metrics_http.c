/* SPDX-License-Identifier: MIT */
/*
 * rosenbridged --metrics-listen: GET /metrics over HTTP, one request per
 * connection, served from the control thread's poll loop.  That thread
 * carries every VM's vhost-user messages, so nothing here may block it:
 * every socket is non-blocking, a request is capped in size, connections in
 * number and in lifetime, and a client that stalls only holds its own slot
 * until its deadline.  It serves metrics and nothing else.
 */
#include "metrics.h"

#include <rosen/log.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum conn_state {
	C_FREE,
	C_READ,  /* reading the request (up to its blank line) */
	C_WRITE, /* writing the answer */
	C_DRAIN, /* answer written and our side shut: waiting for the client's
		  * close, so unread input cannot turn our close into a reset
		  * that discards the answer */
};

struct conn {
	int fd;
	enum conn_state st;
	uint64_t since_ms, deadline_ms;
	size_t req_len;
	char req[RB_METRICS_HTTP_REQ_MAX + 1];
	char *resp;
	size_t resp_len, resp_off;
};

struct rb_metrics_http {
	int listen_fd;
	char addr[80];
	struct conn c[RB_METRICS_HTTP_MAX_CONNS];
	/* What pfd[i] of the last rb_metrics_http_poll_fds() was: -1 the
	 * listener, else a connection's index. */
	int polled[RB_METRICS_HTTP_MAX_FDS];
	unsigned npolled;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- one connection ------------------------------------------------------ */

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->resp);
	c->resp = NULL;
	c->fd = -1;
	c->st = C_FREE;
}

/* The answer: a status line, headers, and the body (unless HEAD). */
static void set_answer(struct conn *c, const char *status, const char *body, size_t blen,
		       bool metrics, bool head, bool allow)
{
	char hdr[256];
	int n = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
			 status,
			 metrics ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8",
			 blen, allow ? "Allow: GET, HEAD\r\n" : "");
	size_t total = (size_t)n + (head ? 0 : blen);

	c->resp = malloc(total);
	if (!c->resp) {
		conn_close(c);
		return;
	}
	memcpy(c->resp, hdr, (size_t)n);
	if (!head)
		memcpy(c->resp + n, body, blen);
	c->resp_len = total;
	c->resp_off = 0;
	c->st = C_WRITE;
}

static void set_error(struct conn *c, const char *status, const char *msg)
{
	set_answer(c, status, msg, strlen(msg), false, false, !strncmp(status, "405", 3));
}

/*
 * The request line, checked: "METHOD SP TARGET SP HTTP/1.x".  Returns the
 * status to answer (200 for /metrics), *head for HEAD.  Headers are not
 * read: nothing in them changes the answer.  Pure.
 */
static int parse_request_line(const char *line, size_t n, bool *head)
{
	const char *sp1 = memchr(line, ' ', n);
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - line)) : NULL;

	*head = false;
	if (!sp1 || !sp2 || sp1 == line)
		return 400;
	const char *target = sp1 + 1, *version = sp2 + 1;
	size_t tlen = (size_t)(sp2 - target), vlen = n - (size_t)(version - line);
	if (tlen == 0 || target[0] != '/' || vlen != 8 || memcmp(version, "HTTP/1.", 7) ||
	    (version[7] != '0' && version[7] != '1'))
		return 400;
	size_t mlen = (size_t)(sp1 - line);
	bool get = mlen == 3 && !memcmp(line, "GET", 3);
	*head = mlen == 4 && !memcmp(line, "HEAD", 4);
	if (!get && !*head)
		return 405;
	size_t plen = tlen;
	const char *q = memchr(target, '?', tlen);
	if (q)
		plen = (size_t)(q - target);
	if (plen != 8 || memcmp(target, "/metrics", 8))
		return 404;
	return 200;
}

static void answer(struct conn *c, int (*render)(void *, char **, size_t *), void *arg)
{
	size_t n = strcspn(c->req, "\r\n");
	bool head;
	int code = parse_request_line(c->req, n, &head);

	if (code == 400) {
		set_error(c, "400 Bad Request", "malformed request line\n");
	} else if (code == 405) {
		set_error(c, "405 Method Not Allowed", "only GET and HEAD\n");
	} else if (code == 404) {
		set_error(c, "404 Not Found", "metrics are at /metrics\n");
	} else {
		char *text = NULL;
		size_t len = 0;
		if (render(arg, &text, &len)) {
			set_error(c, "500 Internal Server Error", "out of memory\n");
		} else {
			set_answer(c, "200 OK", text, len, true, head, false);
		}
		free(text);
	}
}

/* The end of the request's head: a blank line. */
static bool head_complete(const struct conn *c)
{
	return strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n");
}

static void do_write(struct conn *c)
{
	while (c->resp_off < c->resp_len) {
		ssize_t w = send(c->fd, c->resp + c->resp_off, c->resp_len - c->resp_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (w <= 0) {
			conn_close(c);
			return;
		}
		c->resp_off += (size_t)w;
	}
	free(c->resp);
	c->resp = NULL;
	shutdown(c->fd, SHUT_WR);
	c->st = C_DRAIN;
}

static void do_read(struct conn *c, int (*render)(void *, char **, size_t *), void *arg)
{
	for (;;) {
		if (c->st == C_DRAIN) {
			char sink[512];
			ssize_t r = recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				return;
			if (r <= 0) {
				conn_close(c);
				return;
			}
			continue;
		}
		if (c->req_len == RB_METRICS_HTTP_REQ_MAX) {
			set_error(c, "431 Request Header Fields Too Large", "request too large\n");
			break;
		}
		ssize_t r = recv(c->fd, c->req + c->req_len, RB_METRICS_HTTP_REQ_MAX - c->req_len,
				 MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (r <= 0) {
			conn_close(c); /* gone before its request was whole */
			return;
		}
		c->req_len += (size_t)r;
		c->req[c->req_len] = 0;
		if (memchr(c->req + c->req_len - (size_t)r, 0, (size_t)r)) {
			set_error(c, "400 Bad Request", "NUL in request\n");
			break;
		}
		if (head_complete(c)) {
			answer(c, render, arg);
			break;
		}
	}
	if (c->st == C_WRITE)
		do_write(c);
}

/* ---- the listener -------------------------------------------------------- */

static void accept_all(struct rb_metrics_http *h)
{
	for (unsigned k = 0; k < RB_METRICS_HTTP_MAX_CONNS; k++) {
		int fd = accept4(h->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				rb_warn("metrics", "accept: %s", strerror(errno));
			return;
		}
		/* A free slot, or the oldest connection's: a flood of stalled
		 * clients cannot lock scrapes out for more than one turn. */
		struct conn *slot = NULL;
		for (unsigned i = 0; i < RB_METRICS_HTTP_MAX_CONNS && !slot; i++)
			if (h->c[i].st == C_FREE)
				slot = &h->c[i];
		if (!slot) {
			slot = &h->c[0];
			for (unsigned i = 1; i < RB_METRICS_HTTP_MAX_CONNS; i++)
				if (h->c[i].since_ms < slot->since_ms)
					slot = &h->c[i];
			rb_debug("metrics", "%u connections open: closing the oldest for a new one",
				 RB_METRICS_HTTP_MAX_CONNS);
			conn_close(slot);
		}
		slot->fd = fd;
		slot->st = C_READ;
		slot->since_ms = now_ms();
		slot->deadline_ms = slot->since_ms + RB_METRICS_HTTP_TIMEOUT_MS;
		slot->req_len = 0;
		slot->req[0] = 0;
	}
}

unsigned rb_metrics_http_poll_fds(struct rb_metrics_http *h, struct pollfd *pfd, unsigned max,
				  int *timeout_ms)
{
	unsigned n = 0;
	uint64_t now = 0;

	h->npolled = 0;
	if (max == 0)
		return 0;
	pfd[n] = (struct pollfd){.fd = h->listen_fd, .events = POLLIN};
	h->polled[n++] = -1;
	for (unsigned i = 0; i < RB_METRICS_HTTP_MAX_CONNS && n < max; i++) {
		struct conn *c = &h->c[i];
		if (c->st == C_FREE)
			continue;
		pfd[n] = (struct pollfd){.fd = c->fd, .events = c->st == C_WRITE ? POLLOUT : POLLIN};
		h->polled[n++] = (int)i;
		now = now ? now : now_ms();
		int left = c->deadline_ms > now ? (int)(c->deadline_ms - now) : 0;
		if (*timeout_ms < 0 || left < *timeout_ms)
			*timeout_ms = left;
	}
	h->npolled = n;
	return n;
}

void rb_metrics_http_handle(struct rb_metrics_http *h, const struct pollfd *pfd, unsigned n,
			    int (*render)(void *arg, char **text, size_t *len), void *arg)
{
	bool listener_ready = false;
	uint64_t now = now_ms();

	for (unsigned i = 0; i < n && i < h->npolled; i++) {
		if (!pfd[i].revents)
			continue;
		if (h->polled[i] < 0) {
			listener_ready = true;
			continue;
		}
		struct conn *c = &h->c[h->polled[i]];
		if (c->st == C_FREE || c->fd != pfd[i].fd)
			continue;
		if (c->st == C_WRITE)
			do_write(c);
		else
			do_read(c, render, arg);
	}
	for (unsigned i = 0; i < RB_METRICS_HTTP_MAX_CONNS; i++) {
		struct conn *c = &h->c[i];
		if (c->st != C_FREE && c->deadline_ms <= now) {
			if (c->st != C_DRAIN)
				rb_debug("metrics", "client too slow (%d ms): connection closed",
					 RB_METRICS_HTTP_TIMEOUT_MS);
			conn_close(c);
		}
	}
	if (listener_ready)
		accept_all(h);
	h->npolled = 0;
}

/* ---- set-up and tear-down ------------------------------------------------ */

static int parse_port(const char *s, uint16_t *port)
{
	char *end;
	unsigned long v;

	if (!*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (*end || errno || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

int rb_metrics_http_parse_addr(const char *spec, struct sockaddr_storage *ss, socklen_t *sslen,
			       bool *loopback, char *err, size_t errlen)
{
	char host[64];
	const char *port_s;
	uint16_t port;

	memset(ss, 0, sizeof(*ss));
	if (!spec || !*spec) {
		snprintf(err, errlen, "an empty address (PORT, IPV4:PORT or [IPV6]:PORT)");
		return -EINVAL;
	}
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');
		if (!close || close[1] != ':' || (size_t)(close - spec - 1) >= sizeof(host)) {
			snprintf(err, errlen, "'%s': an IPv6 address is written [ADDR]:PORT", spec);
			return -EINVAL;
		}
		memcpy(host, spec + 1, (size_t)(close - spec - 1));
		host[close - spec - 1] = 0;
		port_s = close + 2;
	} else {
		const char *colon = strrchr(spec, ':');
		if (!colon) {
			snprintf(host, sizeof(host), "127.0.0.1");
			port_s = spec;
		} else {
			if (memchr(spec, ':', (size_t)(colon - spec))) {
				snprintf(err, errlen, "'%s': an IPv6 address is written [ADDR]:PORT", spec);
				return -EINVAL;
			}
			if ((size_t)(colon - spec) >= sizeof(host)) {
				snprintf(err, errlen, "'%s': address too long", spec);
				return -EINVAL;
			}
			memcpy(host, spec, (size_t)(colon - spec));
			host[colon - spec] = 0;
			port_s = colon + 1;
		}
	}
	if (parse_port(port_s, &port)) {
		snprintf(err, errlen, "'%s': the port must be a number in 0..65535", spec);
		return -EINVAL;
	}
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons(port);
		*sslen = sizeof(*v4);
		*loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
		return 0;
	}
	if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(port);
		*sslen = sizeof(*v6);
		*loopback = IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr) ||
			    (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr) && v6->sin6_addr.s6_addr[12] == 127);
		return 0;
	}
	snprintf(err, errlen, "'%s': '%s' is not a numeric IPv4 or IPv6 address (names are not looked up)",
		 spec, host);
	return -EINVAL;
}

int rb_metrics_http_new(const char *spec, struct rb_metrics_http **out, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	bool loopback;
	int rc = rb_metrics_http_parse_addr(spec, &ss, &sslen, &loopback, err, errlen);

	*out = NULL;
	if (rc)
		return rc;
	struct rb_metrics_http *h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (unsigned i = 0; i < RB_METRICS_HTTP_MAX_CONNS; i++)
		h->c[i].fd = -1;
	h->listen_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (h->listen_fd < 0 ||
	    setsockopt(h->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(h->listen_fd, (struct sockaddr *)&ss, sslen) < 0 || listen(h->listen_fd, 16) < 0) {
		int e = errno;
		snprintf(err, errlen, "metrics: cannot listen on %s: %s", spec, strerror(e));
		if (h->listen_fd >= 0)
			close(h->listen_fd);
		free(h);
		return -e;
	}
	/* The port it got (port 0 asks the kernel for one). */
	sslen = sizeof(ss);
	getsockname(h->listen_fd, (struct sockaddr *)&ss, &sslen);
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *v4 = (const struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
		port = ntohs(v4->sin_port);
		snprintf(h->addr, sizeof(h->addr), "%s:%u", host, port);
	} else {
		const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host));
		port = ntohs(v6->sin6_port);
		snprintf(h->addr, sizeof(h->addr), "[%s]:%u", host, port);
	}
	if (!loopback)
		rb_warn("metrics", "serving metrics on %s, not a loopback address: there is no authentication, and anyone who can reach it sees every VM's disk activity",
			h->addr);
	rb_info("metrics", "serving metrics at http://%s/metrics", h->addr);
	*out = h;
	return 0;
}

const char *rb_metrics_http_addr(const struct rb_metrics_http *h)
{
	return h->addr;
}

void rb_metrics_http_free(struct rb_metrics_http *h)
{
	if (!h)
		return;
	for (unsigned i = 0; i < RB_METRICS_HTTP_MAX_CONNS; i++)
		conn_close(&h->c[i]);
	close(h->listen_fd);
	free(h);
}
