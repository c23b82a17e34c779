/* SPDX-License-Identifier: MIT */
/*
 * JSON-RPC 2.0 requests and responses, one line each: parsing and
 * validating a request, reading its named parameters, formatting the
 * answer.  Pure functions (no I/O, no state), tested alone; nothing a
 * client sends reaches a method before it passed here.
 */
#include <rosen/rpc.h>

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32 /* nesting of one request; json-c's default too */

int rb_rpc_fail(struct rb_rpc_error *e, int code, const char *fmt, ...)
{
	va_list ap;

	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return code;
}

void rb_rpc_line_col(const char *text, size_t off, unsigned *line, unsigned *col)
{
	unsigned l = 1, c = 1;

	for (size_t i = 0; i < off && text[i]; i++) {
		if (text[i] == '\n') {
			l++;
			c = 1;
		} else {
			c++;
		}
	}
	*line = l;
	*col = c;
}

static bool id_ok(struct json_object *id)
{
	/* A string, a number or null (JSON-RPC 2.0, 4). */
	return !id || json_object_is_type(id, json_type_string) ||
	       json_object_is_type(id, json_type_int) || json_object_is_type(id, json_type_double);
}

int rb_rpc_parse_request(const char *line, size_t len, struct rb_rpc_request *req,
			 struct json_object **id_out, struct rb_rpc_error *e)
{
	struct json_tokener *tok;
	struct json_object *root, *v;

	memset(req, 0, sizeof(*req));
	*id_out = NULL;
	if (memchr(line, 0, len))
		return rb_rpc_fail(e, RB_RPC_PARSE_ERROR, "parse error: a NUL byte in the request");
	tok = json_tokener_new_ex(MAX_DEPTH);
	if (!tok)
		return rb_rpc_fail(e, RB_RPC_INTERNAL_ERROR, "out of memory");
	root = json_tokener_parse_ex(tok, line, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t end = json_tokener_get_parse_end(tok);
	if (!root && jerr == json_tokener_continue) {
		/* A bare number at the end of the line waits for more digits:
		 * the line has ended, say so. */
		root = json_tokener_parse_ex(tok, " ", 1);
		jerr = json_tokener_get_error(tok);
		end = len;
	}
	json_tokener_free(tok);
	if (!root || jerr != json_tokener_success) {
		unsigned l, c;
		rb_rpc_line_col(line, end, &l, &c);
		json_object_put(root);
		return rb_rpc_fail(e, RB_RPC_PARSE_ERROR, "parse error at column %u: %s", c,
				   jerr == json_tokener_continue ? "the JSON text is incomplete"
								 : json_tokener_error_desc(jerr));
	}
	for (size_t i = end; i < len; i++) {
		if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r') {
			json_object_put(root);
			return rb_rpc_fail(e, RB_RPC_PARSE_ERROR,
					   "parse error at column %zu: text after the request object (one object per line)",
					   i + 1);
		}
	}
	if (json_object_is_type(root, json_type_array)) {
		json_object_put(root);
		return rb_rpc_fail(e, RB_RPC_INVALID_REQUEST,
				   "invalid request: batches are not supported; send one object per line");
	}
	if (!json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		return rb_rpc_fail(e, RB_RPC_INVALID_REQUEST, "invalid request: not a JSON object");
	}
	/* The id first: an error about the rest still goes back with it. */
	bool has_id = json_object_object_get_ex(root, "id", &v);
	if (has_id && !id_ok(v)) {
		json_object_put(root);
		return rb_rpc_fail(e, RB_RPC_INVALID_REQUEST,
				   "invalid request: id must be a string, a number or null");
	}
	if (has_id)
		*id_out = json_object_get(v);
	if (!json_object_object_get_ex(root, "jsonrpc", &v) ||
	    !json_object_is_type(v, json_type_string) || strcmp(json_object_get_string(v), "2.0")) {
		json_object_put(root);
		return rb_rpc_fail(e, RB_RPC_INVALID_REQUEST,
				   "invalid request: \"jsonrpc\" must be \"2.0\"");
	}
	if (!json_object_object_get_ex(root, "method", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		json_object_put(root);
		return rb_rpc_fail(e, RB_RPC_INVALID_REQUEST,
				   "invalid request: \"method\" must be a string");
	}
	req->method = json_object_get_string(v);
	if (json_object_object_get_ex(root, "params", &v) && v) {
		if (!json_object_is_type(v, json_type_object)) {
			json_object_put(root);
			return rb_rpc_fail(e, RB_RPC_INVALID_PARAMS,
					   "invalid params: params must be an object (named parameters)");
		}
		req->params = v;
	} else {
		req->params = json_object_new_object();
		if (!req->params) {
			json_object_put(root);
			return rb_rpc_fail(e, RB_RPC_INTERNAL_ERROR, "out of memory");
		}
		/* Owned by root from now on. */
		json_object_object_add(root, "params", req->params);
	}
	req->root = root;
	req->has_id = has_id;
	req->id = has_id ? *id_out : NULL; /* the reference moves to req */
	*id_out = NULL;
	return 0;
}

void rb_rpc_request_free(struct rb_rpc_request *req)
{
	json_object_put(req->id);
	json_object_put(req->root);
	memset(req, 0, sizeof(*req));
}

static char *finish(struct json_object *o, size_t *len)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							     JSON_C_TO_STRING_NOSLASHESCAPE);
	size_t n = s ? strlen(s) : 0;
	char *out = s ? malloc(n + 2) : NULL;

	if (out) {
		memcpy(out, s, n);
		out[n] = '\n';
		out[n + 1] = 0;
		*len = n + 1;
	}
	json_object_put(o);
	return out;
}

char *rb_rpc_format_result(struct json_object *id, struct json_object *result, size_t *len)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(o, "id", json_object_get(id));
	json_object_object_add(o, "result", json_object_get(result));
	return finish(o, len);
}

char *rb_rpc_format_error(struct json_object *id, const struct rb_rpc_error *e, size_t *len)
{
	struct json_object *o = json_object_new_object();
	struct json_object *err = json_object_new_object();

	if (!o || !err) {
		json_object_put(o);
		json_object_put(err);
		return NULL;
	}
	json_object_object_add(err, "code", json_object_new_int(e->code));
	json_object_object_add(err, "message", json_object_new_string(e->msg));
	json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(o, "id", json_object_get(id));
	json_object_object_add(o, "error", err);
	return finish(o, len);
}

/* ---- parameters -------------------------------------------------------------- */

const char *rb_rpc_json_type_name(struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null: return "null";
	case json_type_boolean: return "a boolean";
	case json_type_double: return "a fraction";
	case json_type_int: return "a number";
	case json_type_object: return "an object";
	case json_type_array: return "an array";
	case json_type_string: return "a string";
	}
	return "?";
}

int rb_rpc_params_known(struct json_object *params, const char *const *known,
			struct rb_rpc_error *e)
{
	json_object_object_foreach(params, key, val) {
		bool ok = false;
		(void)val;
		for (const char *const *k = known; *k && !ok; k++)
			ok = !strcmp(*k, key);
		if (!ok) {
			char list[256] = "";
			size_t at = 0;
			for (const char *const *k = known; *k && at < sizeof(list); k++)
				at += (size_t)snprintf(list + at, sizeof(list) - at, "%s%s",
						       k == known ? "" : ", ", *k);
			return rb_rpc_fail(e, RB_RPC_INVALID_PARAMS,
					   "invalid params: unknown parameter '%s' (this method takes: %s)",
					   key, known[0] ? list : "none");
		}
	}
	return 0;
}

static int get(struct json_object *params, const char *key, bool required,
	       struct json_object **v, struct rb_rpc_error *e)
{
	if (!json_object_object_get_ex(params, key, v) || !*v) {
		*v = NULL;
		if (required)
			return rb_rpc_fail(e, RB_RPC_INVALID_PARAMS,
					   "invalid params: parameter '%s' is required", key);
	}
	return 0;
}

int rb_rpc_param_str(struct json_object *params, const char *key, bool required,
		     const char **out, struct rb_rpc_error *e)
{
	struct json_object *v;

	if (get(params, key, required, &v, e))
		return e->code;
	if (!v)
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return rb_rpc_fail(e, RB_RPC_INVALID_PARAMS,
				   "invalid params: parameter '%s' must be a string, not %s", key,
				   rb_rpc_json_type_name(v));
	*out = json_object_get_string(v);
	return 0;
}

int rb_rpc_param_bool(struct json_object *params, const char *key, bool required, bool *out,
		      struct rb_rpc_error *e)
{
	struct json_object *v;

	if (get(params, key, required, &v, e))
		return e->code;
	if (!v)
		return 0;
	if (!json_object_is_type(v, json_type_boolean))
		return rb_rpc_fail(e, RB_RPC_INVALID_PARAMS,
				   "invalid params: parameter '%s' must be true or false, not %s", key,
				   rb_rpc_json_type_name(v));
	*out = json_object_get_boolean(v);
	return 0;
}

int rb_rpc_param_uint(struct json_object *params, const char *key, bool required, uint64_t lo,
		      uint64_t hi, uint64_t *out, struct rb_rpc_error *e)
{
	struct json_object *v;

	if (get(params, key, required, &v, e))
		return e->code;
	if (!v)
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return rb_rpc_fail(e, RB_RPC_INVALID_PARAMS,
				   "invalid params: parameter '%s' must be an integer, not %s", key,
				   rb_rpc_json_type_name(v));
	/* json-c keeps integers as int64 or uint64: read both ways. */
	errno = 0;
	int64_t s = json_object_get_int64(v);
	uint64_t u = json_object_get_uint64(v);
	if (s < 0 || u < lo || u > hi)
		return rb_rpc_fail(e, RB_RPC_INVALID_PARAMS,
				   "invalid params: parameter '%s' must be in %llu..%llu", key,
				   (unsigned long long)lo, (unsigned long long)hi);
	*out = u;
	return 0;
}
