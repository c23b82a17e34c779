/* SPDX-License-Identifier: MIT */
/*
 * One JSON-RPC call over the control socket (rosenctl): connect, one
 * request line, one answer line, bounded in time and size.  It trusts
 * nothing in the answer: the id, the version and the shape are checked.
 */
#include <rosen/rpc.h>

#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_ANSWER (256u << 20)

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int local(struct rb_rpc_error *e, const char *fmt, const char *a, const char *b)
{
	e->code = 0;
	snprintf(e->msg, sizeof(e->msg), fmt, a, b);
	return -1;
}

static int send_all(int fd, const char *p, size_t len, long long deadline)
{
	while (len) {
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		long long left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			return -errno;
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads up to the first newline; *out is malloc'ed and NUL-terminated. */
static int recv_line(int fd, char **out, long long deadline)
{
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		long long left = deadline - now_ms();
		if (left <= 0) {
			free(buf);
			return -ETIMEDOUT;
		}
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR) {
			int e = errno;
			free(buf);
			return -e;
		}
		if (cap - len < 4096) {
			if (cap >= MAX_ANSWER) {
				free(buf);
				return -EMSGSIZE;
			}
			char *p = realloc(buf, cap * 2);
			if (!p) {
				free(buf);
				return -ENOMEM;
			}
			buf = p;
			cap *= 2;
		}
		ssize_t n = recv(fd, buf + len, cap - len - 1, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : ECONNRESET;
			free(buf);
			return -e;
		}
		char *nl = memchr(buf + len, '\n', (size_t)n);
		len += (size_t)n;
		if (nl) {
			*nl = 0;
			*out = buf;
			return 0;
		}
	}
}

int rb_rpc_call(const char *path, const char *method, struct json_object *params,
		int timeout_ms, struct json_object **result, struct rb_rpc_error *e)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	long long deadline = now_ms() + timeout_ms;
	char *line = NULL;
	int rc;

	*result = NULL;
	if (strlen(path) >= sizeof(sa.sun_path))
		return local(e, "control socket path %s is too long%s", path, "");
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return local(e, "socket: %s%s", strerror(errno), "");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = errno;
		close(fd);
		return local(e, "cannot connect to the control socket %s: %s", path, strerror(err));
	}
	struct json_object *req = json_object_new_object();
	json_object_object_add(req, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(req, "id", json_object_new_int(1));
	json_object_object_add(req, "method", json_object_new_string(method));
	if (params)
		json_object_object_add(req, "params", json_object_get(params));
	const char *text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN |
							       JSON_C_TO_STRING_NOSLASHESCAPE);
	size_t tlen = strlen(text);
	char *wire = malloc(tlen + 1);
	if (!wire) {
		json_object_put(req);
		close(fd);
		return local(e, "out of memory%s%s", "", "");
	}
	memcpy(wire, text, tlen);
	wire[tlen] = '\n';
	json_object_put(req);
	rc = send_all(fd, wire, tlen + 1, deadline);
	free(wire);
	if (!rc)
		rc = recv_line(fd, &line, deadline);
	close(fd);
	if (rc)
		return local(e, "no answer from %s: %s", path,
			     rc == -ETIMEDOUT ? "timed out" : strerror(-rc));
	struct json_object *ans = json_tokener_parse(line);
	free(line);
	struct json_object *v;
	if (!ans || !json_object_is_type(ans, json_type_object)) {
		json_object_put(ans);
		return local(e, "the daemon's answer is not a JSON object%s%s", "", "");
	}
	if (json_object_object_get_ex(ans, "error", &v) && json_object_is_type(v, json_type_object)) {
		struct json_object *code, *msg;
		e->code = json_object_object_get_ex(v, "code", &code) ? json_object_get_int(code) : 0;
		snprintf(e->msg, sizeof(e->msg), "%s",
			 json_object_object_get_ex(v, "message", &msg) ? json_object_get_string(msg)
								       : "(no message)");
		json_object_put(ans);
		return -1;
	}
	if (!json_object_object_get_ex(ans, "id", &v) || json_object_get_int(v) != 1 ||
	    !json_object_object_get_ex(ans, "result", &v)) {
		json_object_put(ans);
		return local(e, "the daemon's answer has no result for this request%s%s", "", "");
	}
	*result = json_object_get(v);
	json_object_put(ans);
	return 0;
}
