/* SPDX-License-Identifier: MIT */
/*
 * The control socket: a listening unix socket (mode 0600), up to
 * RB_RPC_MAX_CLIENTS clients, each with its own input and output buffer.
 * Everything is non-blocking and driven by the caller's poll(): a client
 * that sends half a line and stalls, or never reads its answers, holds
 * only its own buffers, never the thread.  A line over RB_RPC_MAX_REQUEST
 * is answered -32600 and the client closed.
 */
#include <rosen/log.h>
#include <rosen/rpc.h>

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_METHODS 64u
#define READ_CHUNK 65536u
#define SUBJECT "control"

struct method {
	char name[48];
	rb_rpc_fn fn;
	void *ctx;
};

struct client {
	int fd;          /* -1: free slot */
	unsigned id;     /* for log lines */
	char *in;        /* received, not yet a whole line */
	size_t in_len, in_cap;
	char *out;       /* answers not yet written */
	size_t out_len, out_off, out_cap;
	bool closing;    /* close once out is written */
};

struct rb_rpc_server {
	char *path;
	int listen_fd;
	struct method m[MAX_METHODS];
	unsigned nm;
	struct client c[RB_RPC_MAX_CLIENTS];
	/* pollfds() order: the slot of pfd[1 + i]. */
	unsigned polled[RB_RPC_MAX_CLIENTS];
	unsigned npolled;
	unsigned next_id;
};

/* ---- output ------------------------------------------------------------------- */

static void client_close(struct rb_rpc_server *s, struct client *c, const char *why)
{
	(void)s;
	if (why)
		rb_debug(SUBJECT, "client %u closed: %s", c->id, why);
	close(c->fd);
	free(c->in);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* Writes what it can; true while the client lives. */
static bool flush_out(struct rb_rpc_server *s, struct client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n <= 0) {
			client_close(s, c, n < 0 ? strerror(errno) : "peer gone");
			return false;
		}
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
	if (c->closing) {
		client_close(s, c, "answered and closed");
		return false;
	}
	return true;
}

static void queue_out(struct client *c, char *line, size_t len)
{
	if (!line)
		return; /* out of memory: the client gets no answer (it may time out) */
	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		while (cap < c->out_len + len)
			cap *= 2;
		char *p = realloc(c->out, cap);
		if (!p) {
			free(line);
			return;
		}
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, line, len);
	c->out_len += len;
	free(line);
}

static void queue_error(struct client *c, struct json_object *id, const struct rb_rpc_error *e)
{
	size_t len = 0;
	char *line = rb_rpc_format_error(id, e, &len);
	queue_out(c, line, len);
}

/* ---- requests ----------------------------------------------------------------- */

static const struct method *find_method(const struct rb_rpc_server *s, const char *name)
{
	for (unsigned i = 0; i < s->nm; i++)
		if (!strcmp(s->m[i].name, name))
			return &s->m[i];
	return NULL;
}

static void serve_line(struct rb_rpc_server *s, struct client *c, const char *line, size_t len)
{
	struct rb_rpc_request req;
	struct rb_rpc_error e = {0};
	struct json_object *bad_id = NULL;

	if (rb_rpc_parse_request(line, len, &req, &bad_id, &e)) {
		rb_debug(SUBJECT, "client %u: %s", c->id, e.msg);
		queue_error(c, bad_id, &e);
		json_object_put(bad_id);
		return;
	}
	const struct method *m = find_method(s, req.method);
	struct json_object *result = NULL;
	int rc;
	if (!m) {
		rc = rb_rpc_fail(&e, RB_RPC_METHOD_NOT_FOUND, "unknown method '%.64s'", req.method);
	} else {
		rb_debug(SUBJECT, "client %u: %s", c->id, m->name);
		rc = m->fn(m->ctx, req.params, &result, &e);
	}
	if (req.has_id) {
		size_t olen = 0;
		char *out = rc ? rb_rpc_format_error(req.id, &e, &olen)
			       : rb_rpc_format_result(req.id, result, &olen);
		queue_out(c, out, olen);
	}
	json_object_put(result);
	rb_rpc_request_free(&req);
}

/* Serves the whole lines in c->in while its answers get written. */
static bool serve_lines(struct rb_rpc_server *s, struct client *c)
{
	size_t start = 0;

	while (!c->closing && c->out_len == 0 && start < c->in_len) {
		char *nl = memchr(c->in + start, '\n', c->in_len - start);
		if (!nl)
			break;
		size_t len = (size_t)(nl - (c->in + start));
		if (len > RB_RPC_MAX_REQUEST) {
			struct rb_rpc_error e;
			rb_rpc_fail(&e, RB_RPC_INVALID_REQUEST,
				    "invalid request: over %u bytes; the connection is closed",
				    RB_RPC_MAX_REQUEST);
			queue_error(c, NULL, &e);
			c->closing = true;
			break;
		}
		const char *line = c->in + start;
		start += len + 1;
		if (len && line[len - 1] == '\r')
			len--;
		size_t k = 0;
		while (k < len && (line[k] == ' ' || line[k] == '\t'))
			k++;
		if (k < len)
			serve_line(s, c, line, len);
		if (!flush_out(s, c))
			return false;
	}
	memmove(c->in, c->in + start, c->in_len - start);
	c->in_len -= start;
	if (!c->closing && c->in_len > RB_RPC_MAX_REQUEST && !memchr(c->in, '\n', c->in_len)) {
		struct rb_rpc_error e;
		rb_rpc_fail(&e, RB_RPC_INVALID_REQUEST,
			    "invalid request: over %u bytes without a newline; the connection is closed",
			    RB_RPC_MAX_REQUEST);
		rb_warn(SUBJECT, "client %u: a request over %u bytes; closing it", c->id,
			RB_RPC_MAX_REQUEST);
		queue_error(c, NULL, &e);
		c->closing = true;
	}
	return flush_out(s, c);
}

static void client_read(struct rb_rpc_server *s, struct client *c)
{
	if (c->in_cap - c->in_len < READ_CHUNK) {
		size_t cap = c->in_len + READ_CHUNK;
		char *p = realloc(c->in, cap);
		if (!p) {
			client_close(s, c, "out of memory");
			return;
		}
		c->in = p;
		c->in_cap = cap;
	}
	ssize_t n = recv(c->fd, c->in + c->in_len, READ_CHUNK, MSG_DONTWAIT);
	if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		client_close(s, c, n < 0 ? strerror(errno) : "disconnected");
		return;
	}
	c->in_len += (size_t)n;
	serve_lines(s, c);
	/* A buffer that grew for one large request shrinks back. */
	if (c->in && c->in_len == 0 && c->in_cap > 4 * READ_CHUNK) {
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
}

/* ---- accepting ------------------------------------------------------------------ */

static void refuse(int fd, const char *why)
{
	struct rb_rpc_error e;
	size_t len = 0;

	rb_rpc_fail(&e, RB_RPC_APP_ERROR, "%s", why);
	char *line = rb_rpc_format_error(NULL, &e, &len);
	if (line) {
		ssize_t w = send(fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)w;
		free(line);
	}
	close(fd);
}

static void accept_one(struct rb_rpc_server *s)
{
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	struct ucred cred;
	socklen_t cl = sizeof(cred);

	if (fd < 0) {
		if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
			rb_err(SUBJECT, "accept: %s", strerror(errno));
		return;
	}
	/* The socket file is 0600 already; this also covers a file made
	 * reachable by a careless chmod or a directory bind mount. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 ||
	    (cred.uid != 0 && cred.uid != geteuid())) {
		rb_warn(SUBJECT, "refused a client of uid %d (only root and uid %d may connect)",
			(int)cred.uid, (int)geteuid());
		refuse(fd, "permission denied");
		return;
	}
	for (unsigned i = 0; i < RB_RPC_MAX_CLIENTS; i++) {
		struct client *c = &s->c[i];
		if (c->fd >= 0)
			continue;
		memset(c, 0, sizeof(*c));
		c->fd = fd;
		c->id = ++s->next_id;
		rb_debug(SUBJECT, "client %u connected (pid %d)", c->id, (int)cred.pid);
		return;
	}
	rb_warn(SUBJECT, "refused a client: %u clients are connected already", RB_RPC_MAX_CLIENTS);
	refuse(fd, "too many clients connected; retry later");
}

/* ---- poll ------------------------------------------------------------------------------ */

unsigned rb_rpc_server_pollfds(struct rb_rpc_server *s, struct pollfd *pfd, unsigned max)
{
	unsigned n = 0;

	s->npolled = 0;
	if (!max)
		return 0;
	pfd[n++] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
	for (unsigned i = 0; i < RB_RPC_MAX_CLIENTS && n < max; i++) {
		struct client *c = &s->c[i];
		if (c->fd < 0)
			continue;
		short ev = 0;
		/* Answers pending: no more requests read until they are out
		 * (the client's backlog stays in its socket, not our memory). */
		if (c->out_len)
			ev |= POLLOUT;
		else if (!c->closing)
			ev |= POLLIN;
		pfd[n++] = (struct pollfd){.fd = c->fd, .events = ev};
		s->polled[s->npolled++] = i;
	}
	return n;
}

void rb_rpc_server_handle(struct rb_rpc_server *s, const struct pollfd *pfd, unsigned n)
{
	/* Clients first: accepting could reuse a slot (and an fd number)
	 * that was just closed. */
	for (unsigned k = 1; k < n && k - 1 < s->npolled; k++) {
		struct client *c = &s->c[s->polled[k - 1]];
		if (c->fd < 0 || c->fd != pfd[k].fd || !pfd[k].revents)
			continue;
		if (pfd[k].revents & POLLOUT) {
			if (!flush_out(s, c))
				continue;
			/* Drained: serve what was waiting behind it. */
			if (!serve_lines(s, c))
				continue;
		}
		if (pfd[k].revents & (POLLIN | POLLHUP | POLLERR))
			client_read(s, c);
	}
	if (n && (pfd[0].revents & POLLIN))
		accept_one(s);
	s->npolled = 0;
}

unsigned rb_rpc_server_clients(const struct rb_rpc_server *s)
{
	unsigned n = 0;

	for (unsigned i = 0; i < RB_RPC_MAX_CLIENTS; i++)
		n += s->c[i].fd >= 0;
	return n;
}

/* ---- set-up and tear-down ------------------------------------------------------------------ */

int rb_rpc_server_register(struct rb_rpc_server *s, const char *method, rb_rpc_fn fn, void *ctx)
{
	if (find_method(s, method))
		return -EEXIST;
	if (s->nm == MAX_METHODS || strlen(method) >= sizeof(s->m[0].name))
		return -ENOSPC;
	snprintf(s->m[s->nm].name, sizeof(s->m[0].name), "%s", method);
	s->m[s->nm].fn = fn;
	s->m[s->nm].ctx = ctx;
	s->nm++;
	return 0;
}

static int listen_on(const char *path, int *out, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "control socket path %s is longer than %zu bytes", path,
			 sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "control socket %s exists and is not a socket; refusing to replace it",
				 path);
			return -EEXIST;
		}
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			snprintf(err, errlen, "control socket %s is in use by another process", path);
			return -EADDRINUSE;
		}
		if (probe >= 0)
			close(probe);
		unlink(path); /* stale: its daemon is gone */
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "socket: %s", strerror(e));
		return -e;
	}
	/* Born 0600: no moment where another user could connect. */
	mode_t old = umask(0177);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	int e = errno;
	umask(old);
	if (rc == 0 && chmod(path, 0600) < 0)
		rc = -1, e = errno;
	if (rc == 0 && listen(fd, 16) < 0)
		rc = -1, e = errno;
	if (rc) {
		snprintf(err, errlen, "cannot listen on control socket %s: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	*out = fd;
	return 0;
}

int rb_rpc_server_new(const char *path, struct rb_rpc_server **out, char *err, size_t errlen)
{
	struct rb_rpc_server *s = calloc(1, sizeof(*s));
	int rc;

	*out = NULL;
	if (!s || !(s->path = strdup(path))) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (unsigned i = 0; i < RB_RPC_MAX_CLIENTS; i++)
		s->c[i].fd = -1;
	rc = listen_on(path, &s->listen_fd, err, errlen);
	if (rc) {
		free(s->path);
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void rb_rpc_server_free(struct rb_rpc_server *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < RB_RPC_MAX_CLIENTS; i++)
		if (s->c[i].fd >= 0)
			client_close(s, &s->c[i], NULL);
	close(s->listen_fd);
	unlink(s->path);
	free(s->path);
	free(s);
}
