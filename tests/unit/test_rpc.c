/* SPDX-License-Identifier: MIT */
/*
 * lib/rpc: the pure parts of the control socket's protocol (a request line
 * parsed and validated, named parameters read, answers formatted), and one
 * server with real clients on a socketpair-free unix socket: a stalled half
 * request, an oversized one, the socket's mode.
 */
#include "harness.h"

#include <rosen/rpc.h>

#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int parse(const char *line, struct rb_rpc_request *req, struct rb_rpc_error *e)
{
	struct json_object *id = NULL;
	int rc = rb_rpc_parse_request(line, strlen(line), req, &id, e);
	json_object_put(id);
	return rc;
}

TEST(a_request_with_named_params_parses)
{
	struct rb_rpc_request r;
	struct rb_rpc_error e;
	REQUIRE(parse("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"stats\",\"params\":{\"name\":\"vm0\"}}", &r,
		      &e) == 0);
	CHECK(!strcmp(r.method, "stats"));
	CHECK(r.has_id && json_object_get_int(r.id) == 7);
	const char *name = NULL;
	CHECK(rb_rpc_param_str(r.params, "name", true, &name, &e) == 0 && !strcmp(name, "vm0"));
	rb_rpc_request_free(&r);
}

TEST(params_absent_are_an_empty_object_and_no_id_is_a_notification)
{
	struct rb_rpc_request r;
	struct rb_rpc_error e;
	REQUIRE(parse("{\"jsonrpc\":\"2.0\",\"method\":\"version\"}", &r, &e) == 0);
	CHECK(!r.has_id);
	CHECK(json_object_is_type(r.params, json_type_object));
	rb_rpc_request_free(&r);
}

TEST(refusals_carry_the_json_rpc_codes)
{
	static const struct {
		const char *line;
		int code;
		const char *msg;
	} cases[] = {
		{"{bad", RB_RPC_PARSE_ERROR, "column"},
		{"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\"", RB_RPC_PARSE_ERROR, "incomplete"},
		{"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\"} x", RB_RPC_PARSE_ERROR, "after the request"},
		{"[1]", RB_RPC_INVALID_REQUEST, "batch"},
		{"42", RB_RPC_INVALID_REQUEST, "not a JSON object"},
		{"{\"id\":1,\"method\":\"x\"}", RB_RPC_INVALID_REQUEST, "jsonrpc"},
		{"{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"x\"}", RB_RPC_INVALID_REQUEST, "jsonrpc"},
		{"{\"jsonrpc\":\"2.0\",\"id\":1}", RB_RPC_INVALID_REQUEST, "method"},
		{"{\"jsonrpc\":\"2.0\",\"id\":[1],\"method\":\"x\"}", RB_RPC_INVALID_REQUEST, "id"},
		{"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":[1]}", RB_RPC_INVALID_PARAMS, "named"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rb_rpc_request r;
		struct rb_rpc_error e = {0};
		int rc = parse(cases[i].line, &r, &e);
		if (rc != cases[i].code)
			fprintf(stderr, "    '%s': %d (%s)\n", cases[i].line, rc, e.msg);
		CHECK(rc == cases[i].code);
		CHECK_STR_CONTAINS(e.msg, cases[i].msg);
	}
}

TEST(a_nul_byte_is_a_parse_error)
{
	struct rb_rpc_request r;
	struct rb_rpc_error e;
	struct json_object *id = NULL;
	static const char line[] = "{\"jsonrpc\":\"2.0\",\0\"id\":1}";
	CHECK(rb_rpc_parse_request(line, sizeof(line) - 1, &r, &id, &e) == RB_RPC_PARSE_ERROR);
	CHECK(id == NULL);
}

TEST(the_id_of_a_bad_request_is_kept_for_the_answer)
{
	struct rb_rpc_request r;
	struct rb_rpc_error e;
	struct json_object *id = NULL;
	const char *line = "{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"method\":5}";
	CHECK(rb_rpc_parse_request(line, strlen(line), &r, &id, &e) == RB_RPC_INVALID_REQUEST);
	REQUIRE(id);
	size_t len;
	char *out = rb_rpc_format_error(id, &e, &len);
	CHECK_STR_CONTAINS(out, "\"id\":\"abc\"");
	CHECK_STR_CONTAINS(out, "-32600");
	CHECK(out[len - 1] == '\n' && !memchr(out, '\n', len - 1));
	free(out);
	json_object_put(id);
}

TEST(parameters_name_themselves_when_wrong)
{
	struct json_object *p = json_tokener_parse("{\"n\":-1,\"b\":\"yes\",\"s\":3,\"big\":99}");
	struct rb_rpc_error e;
	uint64_t u;
	bool b;
	const char *s;
	static const char *const known[] = {"n", "b", "s", NULL};
	CHECK(rb_rpc_param_uint(p, "n", true, 0, 10, &u, &e) == RB_RPC_INVALID_PARAMS);
	CHECK_STR_CONTAINS(e.msg, "'n'");
	CHECK(rb_rpc_param_uint(p, "big", true, 0, 10, &u, &e) == RB_RPC_INVALID_PARAMS);
	CHECK_STR_CONTAINS(e.msg, "0..10");
	CHECK(rb_rpc_param_bool(p, "b", true, &b, &e) == RB_RPC_INVALID_PARAMS);
	CHECK_STR_CONTAINS(e.msg, "'b' must be true or false");
	CHECK(rb_rpc_param_str(p, "s", true, &s, &e) == RB_RPC_INVALID_PARAMS);
	CHECK(rb_rpc_param_str(p, "missing", true, &s, &e) == RB_RPC_INVALID_PARAMS);
	CHECK_STR_CONTAINS(e.msg, "'missing' is required");
	s = "kept";
	CHECK(rb_rpc_param_str(p, "missing", false, &s, &e) == 0 && !strcmp(s, "kept"));
	CHECK(rb_rpc_params_known(p, known, &e) == RB_RPC_INVALID_PARAMS);
	CHECK_STR_CONTAINS(e.msg, "unknown parameter 'big'");
	json_object_put(p);
}

TEST(line_and_column_of_an_offset)
{
	unsigned l, c;
	rb_rpc_line_col("ab\ncd\nef", 7, &l, &c);
	CHECK(l == 3 && c == 2);
	rb_rpc_line_col("x", 0, &l, &c);
	CHECK(l == 1 && c == 1);
}

/* ---- a real server ---------------------------------------------------------- */

static int m_echo(void *ctx, struct json_object *params, struct json_object **res,
		  struct rb_rpc_error *e)
{
	(void)ctx;
	(void)e;
	*res = json_object_get(params);
	return 0;
}

static void pump(struct rb_rpc_server *s, int ms)
{
	struct pollfd pfd[1 + RB_RPC_MAX_CLIENTS];
	for (int i = 0; i < ms; i++) {
		unsigned n = rb_rpc_server_pollfds(s, pfd, 1 + RB_RPC_MAX_CLIENTS);
		if (poll(pfd, n, 1) > 0)
			rb_rpc_server_handle(s, pfd, n);
	}
}

static int client(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static ssize_t read_some(int fd, char *buf, size_t len)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, 0) <= 0)
		return 0;
	ssize_t n = recv(fd, buf, len - 1, 0);
	buf[n > 0 ? n : 0] = 0;
	return n;
}

TEST(server_serves_one_client_while_another_stalls_and_refuses_an_oversized_line)
{
	char path[] = "/tmp/rosen-rpc-test-XXXXXX";
	REQUIRE(mkdtemp(path));
	char sock[sizeof(path) + 16];
	snprintf(sock, sizeof(sock), "%s/ctl", path);
	struct rb_rpc_server *s;
	char err[256], buf[4096];
	REQUIRE(rb_rpc_server_new(sock, &s, err, sizeof(err)) == 0);
	CHECK(rb_rpc_server_register(s, "echo", m_echo, NULL) == 0);
	CHECK(rb_rpc_server_register(s, "echo", m_echo, NULL) == -EEXIST);
	struct stat st;
	CHECK(stat(sock, &st) == 0 && (st.st_mode & 0777) == 0600);

	int a = client(sock), b = client(sock);
	REQUIRE(a >= 0 && b >= 0);
	const char *half = "{\"jsonrpc\":\"2.0\",\"id\":1,\"meth";
	CHECK(send(a, half, strlen(half), 0) > 0);
	const char *req = "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"echo\",\"params\":{\"x\":1}}\n";
	CHECK(send(b, req, strlen(req), 0) > 0);
	pump(s, 20);
	CHECK(read_some(b, buf, sizeof(buf)) > 0);
	CHECK_STR_CONTAINS(buf, "\"result\":{\"x\":1}");
	CHECK(read_some(a, buf, sizeof(buf)) == 0); /* nothing yet */
	CHECK(send(a, "od\":\"echo\"}\n", 12, 0) == 12);
	pump(s, 20);
	CHECK(read_some(a, buf, sizeof(buf)) > 0);
	CHECK_STR_CONTAINS(buf, "\"id\":1");

	/* Over RB_RPC_MAX_REQUEST without a newline: -32600, then closed. */
	char *big = malloc(RB_RPC_MAX_REQUEST + 4096);
	memset(big, 'x', RB_RPC_MAX_REQUEST + 4096);
	size_t sent = 0;
	while (sent < RB_RPC_MAX_REQUEST + 4096) {
		ssize_t n = send(b, big + sent, RB_RPC_MAX_REQUEST + 4096 - sent, MSG_DONTWAIT);
		if (n > 0)
			sent += (size_t)n;
		pump(s, 1);
		if (rb_rpc_server_clients(s) < 2)
			break;
	}
	pump(s, 10);
	CHECK(rb_rpc_server_clients(s) == 1);
	CHECK(read_some(b, buf, sizeof(buf)) > 0);
	CHECK_STR_CONTAINS(buf, "-32600");
	free(big);
	close(a);
	close(b);
	pump(s, 10);
	CHECK(rb_rpc_server_clients(s) == 0);
	rb_rpc_server_free(s);
	CHECK(access(sock, F_OK) != 0);
	rmdir(path);
}

TEST(server_refuses_a_path_that_is_not_a_socket)
{
	char path[] = "/tmp/rosen-rpc-test-XXXXXX";
	int fd = mkstemp(path);
	REQUIRE(fd >= 0);
	close(fd);
	struct rb_rpc_server *s;
	char err[256];
	CHECK(rb_rpc_server_new(path, &s, err, sizeof(err)) == -EEXIST);
	CHECK_STR_CONTAINS(err, "not a socket");
	CHECK(access(path, F_OK) == 0);
	unlink(path);
}
TEST_MAIN()
