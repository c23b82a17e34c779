/* SPDX-License-Identifier: MIT */
/*
 * JSON-RPC 2.0 over a unix stream socket, one JSON object per line in each
 * direction (rosenbridged --control, rosenctl).  The server is a transport
 * and a method table: it knows nothing of disks.  It never blocks: sockets
 * are non-blocking, each client has its own buffers and a cap on request
 * size, so a client that stalls mid-request holds only itself.  Requests
 * are parsed and validated by pure functions before a method runs.
 */
#ifndef ROSEN_RPC_H
#define ROSEN_RPC_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct json_object;

/* JSON-RPC 2.0 error codes, and ours (the -32000..-32099 server range). */
enum rb_rpc_code {
	RB_RPC_PARSE_ERROR = -32700,      /* not JSON */
	RB_RPC_INVALID_REQUEST = -32600,  /* JSON, but not a request (or too large) */
	RB_RPC_METHOD_NOT_FOUND = -32601,
	RB_RPC_INVALID_PARAMS = -32602,   /* the message names the parameter */
	RB_RPC_INTERNAL_ERROR = -32603,
	RB_RPC_APP_ERROR = -32000,        /* the method refused: see the message */
	RB_RPC_NOT_FOUND = -32001,        /* no such disk, group or program */
	RB_RPC_BUSY = -32002,             /* e.g. a frontend is connected */
};

#define RB_RPC_MAX_REQUEST (1u << 20) /* bytes in one request line */
#define RB_RPC_MAX_CLIENTS 32u

struct rb_rpc_error {
	int code;
	char msg[512];
};

/* Sets e and returns code (for `return rb_rpc_fail(e, ...)`). */
int rb_rpc_fail(struct rb_rpc_error *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- Requests (pure) ----------------------------------------------------- */

struct rb_rpc_request {
	struct json_object *root;   /* owns the rest */
	const char *method;
	struct json_object *params; /* an object (an empty one when absent) */
	struct json_object *id;     /* NULL with has_id: "id": null */
	bool has_id;                /* false: a notification, no response */
};

/*
 * One request line (without its newline).  0, or a JSON-RPC code with e
 * set: -32700 not JSON (with the line and column), -32600 not a request
 * object ("jsonrpc" not "2.0", no method, a bad id, a batch), -32602
 * params not an object (we take named parameters only).  On success the
 * caller frees it with rb_rpc_request_free() (*id_out is NULL: req->id
 * holds the id).  When the request is bad, *id_out gets its id if one
 * could be read (for the error response; the caller puts it), else NULL.
 */
int rb_rpc_parse_request(const char *line, size_t len, struct rb_rpc_request *req,
			 struct json_object **id_out, struct rb_rpc_error *e);
void rb_rpc_request_free(struct rb_rpc_request *req);

/* Response lines, newline-terminated, malloc'ed (NULL: out of memory).
 * id and result are borrowed. */
char *rb_rpc_format_result(struct json_object *id, struct json_object *result, size_t *len);
char *rb_rpc_format_error(struct json_object *id, const struct rb_rpc_error *e, size_t *len);

/* Line and column (from 1) of byte offset `off` in text. */
void rb_rpc_line_col(const char *text, size_t off, unsigned *line, unsigned *col);

/* ---- Parameters: each names the parameter on -32602 --------------------- */

/* What a JSON value is, for messages: "a string", "a number", "null", ... */
const char *rb_rpc_json_type_name(struct json_object *v);

/* Refuses a parameter not in `known` (NULL-terminated). */
int rb_rpc_params_known(struct json_object *params, const char *const *known,
			struct rb_rpc_error *e);
/* Missing and not required: *out stays as it was, 0 returned. */
int rb_rpc_param_str(struct json_object *params, const char *key, bool required,
		     const char **out, struct rb_rpc_error *e);
int rb_rpc_param_bool(struct json_object *params, const char *key, bool required, bool *out,
		      struct rb_rpc_error *e);
int rb_rpc_param_uint(struct json_object *params, const char *key, bool required, uint64_t lo,
		      uint64_t hi, uint64_t *out, struct rb_rpc_error *e);

/* ---- Server ----------------------------------------------------------------- */

/* A method: fills *result (NULL: JSON null) and returns 0, or returns
 * rb_rpc_fail(e, ...).  Runs on the thread that calls handle(). */
typedef int (*rb_rpc_fn)(void *ctx, struct json_object *params, struct json_object **result,
			 struct rb_rpc_error *e);

struct rb_rpc_server;

/*
 * Listens on `path`, created with mode 0600 (umask around bind, then
 * chmod).  A path that exists is replaced only if it is a stale socket:
 * -EADDRINUSE when something listens there, -EEXIST when it is not a
 * socket.  Clients whose uid (SO_PEERCRED) is neither ours nor root are
 * refused as well.  0 or -errno with a message.
 */
int rb_rpc_server_new(const char *path, struct rb_rpc_server **out, char *err, size_t errlen);
/* Closes every client, removes the socket file. */
void rb_rpc_server_free(struct rb_rpc_server *s);
/* Adds a method (names are unique; at most 64).  0 or -EEXIST/-ENOSPC. */
int rb_rpc_server_register(struct rb_rpc_server *s, const char *method, rb_rpc_fn fn,
			   void *ctx);
/* The fds to poll and for what: at most max; the listening socket first. */
unsigned rb_rpc_server_pollfds(struct rb_rpc_server *s, struct pollfd *pfd, unsigned max);
/* Serves what poll() reported for the fds pollfds() gave (same order). */
void rb_rpc_server_handle(struct rb_rpc_server *s, const struct pollfd *pfd, unsigned n);
unsigned rb_rpc_server_clients(const struct rb_rpc_server *s);

/* ---- Client ----------------------------------------------------------------- */

/*
 * One call: connects to path, sends {"jsonrpc":"2.0","id":1,"method":...,
 * "params":params} (params borrowed; NULL: none), waits up to timeout_ms
 * for the response line.  0 with *result (the caller puts it; may be
 * NULL for a null result), or -1 with e: the server's code and message,
 * or code 0 when the call failed locally (connect, timeout, bad reply).
 */
int rb_rpc_call(const char *path, const char *method, struct json_object *params,
		int timeout_ms, struct json_object **result, struct rb_rpc_error *e);

#ifdef __cplusplus
}
#endif
#endif /* ROSEN_RPC_H */
