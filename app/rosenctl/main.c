/* SPDX-License-Identifier: MIT */
/*
 * rosenctl: the command line of rosenbridged's control socket.  One
 * subcommand per JSON-RPC method (the method's name with dashes), a table
 * for people by default and the daemon's JSON with --json.  It checks only
 * what it must to build a request; the daemon validates everything and its
 * message is what the user sees.
 */
#include <rosen/rpc.h>

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CONTROL "/run/rosenbridged/control.sock"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rosenctl [--control PATH] [--json] [--timeout S] COMMAND [ARGS]\n"
		"\n"
		"Talks to a running rosenbridged through its control socket (rosenbridged\n"
		"--control PATH; JSON-RPC 2.0, docs/control.md). Each command is one method of\n"
		"the socket, its name written with dashes.\n"
		"\n"
		"Options:\n"
		"  --control PATH   the control socket (default $ROSEN_CONTROL, else\n"
		"                   " DEFAULT_CONTROL ")\n"
		"  --json           print the daemon's JSON result instead of a table\n"
		"  --timeout S      seconds to wait for the answer (default 30)\n"
		"  --help           this text\n"
		"\n"
		"Commands:\n"
		"  version                      the daemon's version, uptime, workers\n"
		"  disk-list                    every disk: image, socket, size, frontend\n"
		"  disk-add --disk IMG --socket S [--name N] [--readonly] [--queues N]\n"
		"           [--cache direct|buffered] [--throttle K=V,...]\n"
		"                               serve one more disk now (a VM can attach to S)\n"
		"  disk-remove --name N [--force]\n"
		"                               stop serving a disk; refused while a frontend\n"
		"                               is connected, unless --force (disconnects it\n"
		"                               after its in-flight I/O)\n"
		"  disk-resize --name N         read the image's size again and tell the VM\n"
		"                               (grow the file first: truncate -s, qemu-img resize)\n"
		"  program-list --name N        the disk's NDP programs and what they ran\n"
		"  program-unload --name N --handle H\n"
		"                               unload a program (requests in flight finish)\n"
		"  mem-list --name N            guest memory regions and NDP registrations\n"
		"  throttle-get --name N | --group G\n"
		"                               a throttle group's limits and bucket levels\n"
		"  throttle-set --name N | --group G K=V[,K=V...] | none\n"
		"                               new limits for the group, at once (QEMU's keys:\n"
		"                               iops-total=2000,bps-read=10485760,...; 'none'\n"
		"                               lifts every limit; docs/throttling.md)\n"
		"  stats --name N               the disk's counters\n"
		"  log-level [LEVEL]            show or set: error, warn, info, debug\n"
		"  metrics                      the daemon's metrics (Prometheus text format)\n"
		"\n"
		"Exit status: 0 done; 1 the daemon refused (its message is printed) or could\n"
		"not be reached; 2 a usage error.\n"
		"\n"
		"Example:\n"
		"  rosenctl --control /run/rosenbridged/control.sock disk-add --name vm2 \\\n"
		"      --disk /var/lib/rosen/vm2.img --socket /run/rosenbridged/vm2.sock --queues 2\n"
		"  rosenctl throttle-set --name vm2 iops-total=2000\n");
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "rosenctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see rosenctl --help)\n");
	return 2;
}

/* ---- reading results ----------------------------------------------------------- */

static struct json_object *get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;
	json_object_object_get_ex(o, key, &v);
	return v;
}

static const char *str(struct json_object *o, const char *key)
{
	struct json_object *v = get(o, key);
	return v ? json_object_get_string(v) : "";
}

static uint64_t u64(struct json_object *o, const char *key)
{
	struct json_object *v = get(o, key);
	return v ? json_object_get_uint64(v) : 0;
}

static const char *yes(struct json_object *o, const char *key)
{
	return json_object_get_boolean(get(o, key)) ? "yes" : "no";
}

static void size_text(uint64_t b, char *buf, size_t len)
{
	if (b && b % (1ull << 30) == 0)
		snprintf(buf, len, "%llu GiB", (unsigned long long)(b >> 30));
	else if (b && b % (1ull << 20) == 0)
		snprintf(buf, len, "%llu MiB", (unsigned long long)(b >> 20));
	else if (b && b % 1024 == 0)
		snprintf(buf, len, "%llu KiB", (unsigned long long)(b >> 10));
	else
		snprintf(buf, len, "%llu B", (unsigned long long)b);
}

/* ---- tables ------------------------------------------------------------------- */

#define MAX_COLS 12

struct table {
	unsigned ncols, nrows;
	char *cell[256][MAX_COLS]; /* row 0: the header */
};

static void row(struct table *t, ...)
{
	va_list ap;

	if (t->nrows == 256)
		return;
	va_start(ap, t);
	for (unsigned c = 0; c < t->ncols; c++) {
		const char *s = va_arg(ap, const char *);
		t->cell[t->nrows][c] = strdup(s ? s : "");
	}
	va_end(ap);
	t->nrows++;
}

static void print_table(struct table *t)
{
	size_t w[MAX_COLS] = {0};

	for (unsigned r = 0; r < t->nrows; r++)
		for (unsigned c = 0; c < t->ncols; c++)
			if (t->cell[r][c] && strlen(t->cell[r][c]) > w[c])
				w[c] = strlen(t->cell[r][c]);
	for (unsigned r = 0; r < t->nrows; r++) {
		for (unsigned c = 0; c < t->ncols; c++) {
			const char *s = t->cell[r][c] ? t->cell[r][c] : "";
			if (c + 1 == t->ncols)
				printf("%s\n", s);
			else
				printf("%-*s  ", (int)w[c], s);
			free(t->cell[r][c]);
		}
	}
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	static char bufs[16][128];
	static unsigned next;
	char *b = bufs[next++ % 16];
	va_list ap;

	va_start(ap, f);
	vsnprintf(b, sizeof(bufs[0]), f, ap);
	va_end(ap);
	return b;
}

/* ---- printing each result --------------------------------------------------------- */

static void show_version(struct json_object *r)
{
	printf("%s %s: pid %s, up %s s, %s worker(s) (%s), %s disk(s), log level %s\n",
	       str(r, "name"), str(r, "version"), str(r, "pid"), str(r, "uptime_seconds"),
	       str(r, "workers"), str(r, "mode"), str(r, "disks"), str(r, "log_level"));
}

static void show_disks(struct json_object *r)
{
	struct table t = {.ncols = 10};
	char size[32];

	row(&t, "NAME", "DISK", "SOCKET", "SIZE", "RO", "QUEUES", "CACHE", "FRONTEND", "GROUP",
	    "PROGRAMS");
	for (size_t i = 0; i < json_object_array_length(r); i++) {
		struct json_object *d = json_object_array_get_idx(r, i);
		size_text(u64(d, "capacity_bytes"), size, sizeof(size));
		row(&t, str(d, "name"), str(d, "disk"), str(d, "socket"), size, yes(d, "readonly"),
		    str(d, "queues"), str(d, "cache"),
		    json_object_get_boolean(get(d, "connected")) ? "connected" : "-", str(d, "group"),
		    str(d, "programs"));
	}
	print_table(&t);
}

static void show_programs(struct json_object *r)
{
	struct table t = {.ncols = 10};

	if (!json_object_array_length(r)) {
		printf("no programs loaded\n");
		return;
	}
	row(&t, "HANDLE", "TYPE", "SECTION", "INSNS", "JIT", "LOADED", "REQUESTS", "RUNS", "HOPS",
	    "EXECUTED");
	for (size_t i = 0; i < json_object_array_length(r); i++) {
		struct json_object *p = json_object_array_get_idx(r, i);
		row(&t, str(p, "handle"), str(p, "type"), str(p, "section"), str(p, "insns"),
		    yes(p, "jitted"), str(p, "loaded"), str(p, "requests"), str(p, "runs"),
		    str(p, "hops"), str(p, "executed"));
	}
	print_table(&t);
}

static void show_mem(struct json_object *r)
{
	struct json_object *gm = get(r, "guest_memory"), *reg = get(r, "registered");
	char size[32];

	if (!json_object_array_length(gm)) {
		printf("guest memory: none (no frontend connected)\n");
	} else {
		struct table t = {.ncols = 3};
		row(&t, "REGION", "GPA", "SIZE");
		for (size_t i = 0; i < json_object_array_length(gm); i++) {
			struct json_object *m = json_object_array_get_idx(gm, i);
			size_text(u64(m, "size"), size, sizeof(size));
			row(&t, fmt("%zu", i), fmt("0x%llx", (unsigned long long)u64(m, "gpa")), size);
		}
		print_table(&t);
	}
	if (!json_object_array_length(reg)) {
		printf("NDP registered memory: none\n");
	} else {
		struct table t = {.ncols = 3};
		row(&t, "KEY", "GPA", "LENGTH");
		for (size_t i = 0; i < json_object_array_length(reg); i++) {
			struct json_object *m = json_object_array_get_idx(reg, i);
			row(&t, str(m, "key"), fmt("0x%llx", (unsigned long long)u64(m, "gpa")),
			    str(m, "len"));
		}
		print_table(&t);
	}
	printf("NDP registered files: %s\n", str(r, "files"));
}

static void show_group(struct json_object *r)
{
	struct json_object *lim = get(r, "limits"), *b = get(r, "buckets");
	char text[512] = "";
	size_t at = 0;

	json_object_object_foreach(lim, k, v) {
		if (at < sizeof(text))
			at += (size_t)snprintf(text + at, sizeof(text) - at, "%s%s=%s", at ? "," : "", k,
					       json_object_get_string(v));
	}
	printf("group %s (%s disk%s): %s\n", str(r, "group"), str(r, "disks"),
	       u64(r, "disks") == 1 ? "" : "s", text[0] ? text : "no limits");
	printf("I/Os that waited: %s, %s s in all\n", str(r, "delayed"), str(r, "wait_seconds"));
	if (json_object_object_length(b)) {
		struct table t = {.ncols = 3};
		row(&t, "BUCKET", "LEVEL", "SIZE");
		json_object_object_foreach(b, k2, v2)
			row(&t, k2, str(v2, "level"), str(v2, "size"));
		print_table(&t);
	}
}

static void show_stats(struct json_object *r)
{
	json_object_object_foreach(r, k, v) {
		if (json_object_is_type(v, json_type_object)) {
			json_object_object_foreach(v, k2, v2)
				printf("%s.%s: %s\n", k, k2,
				       json_object_to_json_string_ext(v2, JSON_C_TO_STRING_PLAIN));
		} else {
			printf("%s: %s\n", k, json_object_get_string(v));
		}
	}
}

/* ---- building requests -------------------------------------------------------------- */

/* "K=V,K=V" into {"K": V}: numbers as integers, anything else as a string
 * (the daemon says what is wrong with it). */
static int limits_object(const char *kv, struct json_object **out)
{
	struct json_object *o = json_object_new_object();
	char *copy = strdup(kv), *save = NULL;

	if (strcmp(kv, "none")) {
		for (char *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
			char *eq = strchr(p, '=');
			if (!eq || eq == p) {
				free(copy);
				json_object_put(o);
				return usage_error("'%s' is not KEY=VALUE", p);
			}
			*eq = 0;
			char *end;
			errno = 0;
			long long n = strtoll(eq + 1, &end, 10);
			if (eq[1] && !*end && !errno)
				json_object_object_add(o, p, json_object_new_int64(n));
			else
				json_object_object_add(o, p, json_object_new_string(eq + 1));
		}
	}
	free(copy);
	*out = o;
	return 0;
}

struct opt {
	const char *name; /* "--name" */
	bool flag;        /* takes no value */
	const char *key;  /* its parameter */
	enum { T_STR, T_BOOL, T_UINT } type;
};

/* Options of one command into params; positional arguments into pos. */
static int parse_opts(int argc, char **argv, const struct opt *opts, struct json_object *params,
		      char **pos, unsigned max_pos, unsigned *npos)
{
	*npos = 0;
	for (int i = 0; i < argc; i++) {
		const struct opt *o = NULL;
		for (const struct opt *k = opts; k->name; k++)
			if (!strcmp(argv[i], k->name))
				o = k;
		if (!o) {
			if (argv[i][0] == '-' && argv[i][1] == '-')
				return usage_error("unknown option '%s' for this command", argv[i]);
			if (*npos == max_pos)
				return usage_error("unexpected argument '%s'", argv[i]);
			pos[(*npos)++] = argv[i];
			continue;
		}
		if (o->flag) {
			json_object_object_add(params, o->key, json_object_new_boolean(1));
			continue;
		}
		if (i + 1 >= argc)
			return usage_error("%s needs a value", o->name);
		const char *v = argv[++i];
		if (o->type == T_UINT) {
			char *end;
			errno = 0;
			unsigned long long n = strtoull(v, &end, 10);
			if (!*v || *end || errno || *v == '-')
				return usage_error("%s needs a number, got '%s'", o->name, v);
			json_object_object_add(params, o->key, json_object_new_uint64(n));
		} else {
			json_object_object_add(params, o->key, json_object_new_string(v));
		}
	}
	return 0;
}

static int need(struct json_object *params, const char *key, const char *opt)
{
	if (!get(params, key))
		return usage_error("this command needs %s", opt);
	return 0;
}

int main(int argc, char **argv)
{
	const char *control = getenv("ROSEN_CONTROL");
	bool as_json = false;
	double timeout = 30;
	static char *rest[256];
	int nrest = 0;

	if (!control || !*control)
		control = DEFAULT_CONTROL;
	/* Global options anywhere; everything else in order. */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--json")) {
			as_json = true;
		} else if (!strcmp(argv[i], "--control")) {
			if (i + 1 >= argc)
				return usage_error("--control needs a socket path");
			control = argv[++i];
		} else if (!strcmp(argv[i], "--timeout")) {
			char *end;
			if (i + 1 >= argc || (timeout = strtod(argv[++i], &end)) <= 0 || *end)
				return usage_error("--timeout needs a number of seconds");
		} else if (nrest == 256) {
			return usage_error("too many arguments");
		} else {
			rest[nrest++] = argv[i];
		}
	}
	if (nrest == 0)
		return usage_error("no command given");

	const char *cmd = rest[0];
	char method[64];
	snprintf(method, sizeof(method), "%s", cmd);
	for (char *p = method; *p; p++)
		if (*p == '-')
			*p = '_';
	struct json_object *params = json_object_new_object();
	char *pos[2];
	unsigned npos = 0;
	int rc = 0;
	static const struct opt o_name[] = {{"--name", false, "name", T_STR}, {0}};
	static const struct opt o_add[] = {
		{"--name", false, "name", T_STR},      {"--disk", false, "disk", T_STR},
		{"--socket", false, "socket", T_STR},  {"--readonly", true, "readonly", T_BOOL},
		{"--queues", false, "queues", T_UINT}, {"--cache", false, "cache", T_STR},
		{"--throttle", false, "throttle", T_STR}, {0}};
	static const struct opt o_remove[] = {{"--name", false, "name", T_STR},
					      {"--force", true, "force", T_BOOL}, {0}};
	static const struct opt o_unload[] = {{"--name", false, "name", T_STR},
					      {"--handle", false, "handle", T_UINT}, {0}};
	static const struct opt o_group[] = {{"--name", false, "name", T_STR},
					     {"--group", false, "group", T_STR}, {0}};
	static const struct opt o_none[] = {{0}};

	if (!strcmp(cmd, "version") || !strcmp(cmd, "disk-list") || !strcmp(cmd, "metrics")) {
		rc = parse_opts(nrest - 1, rest + 1, o_none, params, pos, 0, &npos);
	} else if (!strcmp(cmd, "disk-add")) {
		rc = parse_opts(nrest - 1, rest + 1, o_add, params, pos, 0, &npos);
		if (!rc)
			rc = need(params, "disk", "--disk IMG");
		if (!rc)
			rc = need(params, "socket", "--socket PATH");
	} else if (!strcmp(cmd, "disk-remove")) {
		rc = parse_opts(nrest - 1, rest + 1, o_remove, params, pos, 0, &npos);
		if (!rc)
			rc = need(params, "name", "--name NAME");
	} else if (!strcmp(cmd, "disk-resize") || !strcmp(cmd, "program-list") ||
		   !strcmp(cmd, "mem-list") || !strcmp(cmd, "stats")) {
		rc = parse_opts(nrest - 1, rest + 1, o_name, params, pos, 0, &npos);
		if (!rc)
			rc = need(params, "name", "--name NAME");
	} else if (!strcmp(cmd, "program-unload")) {
		rc = parse_opts(nrest - 1, rest + 1, o_unload, params, pos, 0, &npos);
		if (!rc)
			rc = need(params, "name", "--name NAME");
		if (!rc)
			rc = need(params, "handle", "--handle H");
	} else if (!strcmp(cmd, "throttle-get") || !strcmp(cmd, "throttle-set")) {
		bool set = !strcmp(cmd, "throttle-set");
		rc = parse_opts(nrest - 1, rest + 1, o_group, params, pos, set ? 1 : 0, &npos);
		if (!rc && !get(params, "name") == !get(params, "group"))
			rc = usage_error("%s needs --name NAME or --group GROUP", cmd);
		if (!rc && set) {
			struct json_object *lim = NULL;
			if (npos != 1)
				rc = usage_error("throttle-set needs the limits: K=V[,K=V...] or none");
			else if (!(rc = limits_object(pos[0], &lim)))
				json_object_object_add(params, "limits", lim);
		}
	} else if (!strcmp(cmd, "log-level")) {
		rc = parse_opts(nrest - 1, rest + 1, o_none, params, pos, 1, &npos);
		if (!rc && npos)
			json_object_object_add(params, "level", json_object_new_string(pos[0]));
	} else {
		rc = usage_error("unknown command '%s'", cmd);
	}
	if (rc) {
		json_object_put(params);
		return rc;
	}

	struct json_object *res = NULL;
	struct rb_rpc_error e;
	if (rb_rpc_call(control, method, params, (int)(timeout * 1000), &res, &e)) {
		if (e.code)
			fprintf(stderr, "rosenctl: %s: %s\n", cmd, e.msg);
		else
			fprintf(stderr, "rosenctl: %s\n", e.msg);
		json_object_put(params);
		return 1;
	}
	json_object_put(params);

	if (!strcmp(cmd, "metrics") && res && !as_json) {
		/* The exposition text as the daemon wrote it. */
		const char *text = json_object_is_type(res, json_type_string)
					   ? json_object_get_string(res)
					   : json_object_get_string(get(res, "text"));
		fputs(text ? text : "", stdout);
	} else if (as_json) {
		printf("%s\n", res ? json_object_to_json_string_ext(res, JSON_C_TO_STRING_PRETTY |
								     JSON_C_TO_STRING_SPACED |
								     JSON_C_TO_STRING_NOSLASHESCAPE)
				 : "null");
	} else if (!strcmp(cmd, "version")) {
		show_version(res);
	} else if (!strcmp(cmd, "disk-list")) {
		show_disks(res);
	} else if (!strcmp(cmd, "disk-add")) {
		char size[32];
		size_text(u64(res, "capacity_bytes"), size, sizeof(size));
		printf("added %s: %s (%s) on %s\n", str(res, "name"), str(res, "disk"), size,
		       str(res, "socket"));
	} else if (!strcmp(cmd, "disk-remove")) {
		printf("removed %s%s\n", str(res, "name"),
		       json_object_get_boolean(get(res, "disconnected")) ? " (its frontend was disconnected)"
									  : "");
	} else if (!strcmp(cmd, "disk-resize")) {
		char a[32], b[32];
		size_text(u64(res, "old_bytes"), a, sizeof(a));
		size_text(u64(res, "new_bytes"), b, sizeof(b));
		printf("%s: %s -> %s; %s%s\n", str(res, "name"), a, b,
		       json_object_get_boolean(get(res, "announced")) ? "announced to the frontend"
								     : "not announced: ",
		       json_object_get_boolean(get(res, "announced")) ? "" : str(res, "note"));
	} else if (!strcmp(cmd, "program-list")) {
		show_programs(res);
	} else if (!strcmp(cmd, "program-unload")) {
		printf("unloaded program %s of %s\n", str(res, "handle"), str(res, "name"));
	} else if (!strcmp(cmd, "mem-list")) {
		show_mem(res);
	} else if (!strcmp(cmd, "throttle-get") || !strcmp(cmd, "throttle-set")) {
		show_group(res);
	} else if (!strcmp(cmd, "stats")) {
		show_stats(res);
	} else if (!strcmp(cmd, "log-level")) {
		if (strcmp(str(res, "previous"), str(res, "level")))
			printf("log level %s (was %s)\n", str(res, "level"), str(res, "previous"));
		else
			printf("log level %s\n", str(res, "level"));
	}
	json_object_put(res);
	return 0;
}
