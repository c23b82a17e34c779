/* SPDX-License-Identifier: MIT */
/*
 * The control socket's methods (docs/control.md): JSON in, JSON out, glue
 * only.  The work is done by daemon.c, device.c and the libraries; nothing
 * here touches a worker's state: counters are snapshots of atomics, a
 * program table and a throttle group have their own locks, and what must
 * run on a worker (stopping a queue) goes through rb_worker_call() inside
 * the libraries.  Runs on the control thread.
 */
#include "daemon.h"
#include "metrics.h"

#include <rosen/log.h>
#include <rosen/ndp.h>
#include <rosen/qos.h>
#include <rosen/rpc.h>

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef ROSEN_VERSION
#define ROSEN_VERSION "unknown"
#endif

#define SUBJECT "control"

/* ---- helpers ------------------------------------------------------------------ */

static struct json_object *jstr(const char *s)
{
	return json_object_new_string(s ? s : "");
}

static struct json_object *ju64(uint64_t v)
{
	return json_object_new_uint64(v);
}

/* A double written with `decimals` digits (json-c would print 17). */
static struct json_object *jdbl(double v, int decimals)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%.*f", decimals, v);
	return json_object_new_double_s(v, buf);
}

static void add(struct json_object *o, const char *key, struct json_object *v)
{
	json_object_object_add(o, key, v);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void iso_time(uint64_t unix_ns, char *buf, size_t len)
{
	time_t t = (time_t)(unix_ns / 1000000000ull);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* {"iops-total": 2000, ...}: what is set, with QEMU's keys. */
static struct json_object *limits_json(const struct rb_qos_limits *l)
{
	struct json_object *o = json_object_new_object();
	struct rb_qos_limits rates = *l;
	char buf[512];

	rates.group[0] = 0;
	rb_qos_limits_format(&rates, buf, sizeof(buf));
	for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');
		if (!eq)
			continue;
		*eq = 0;
		add(o, kv, ju64(strtoull(eq + 1, NULL, 10)));
	}
	return o;
}

/* The disk of params.name, or -32602 / -32001. */
static int the_disk(struct daemon *d, struct json_object *params, struct rb_device **out,
		    struct rb_rpc_error *e)
{
	const char *name = NULL;

	if (rb_rpc_param_str(params, "name", true, &name, e))
		return e->code;
	*out = daemon_find(d, name, NULL);
	if (!*out)
		return rb_rpc_fail(e, RB_RPC_NOT_FOUND, "no disk named '%s'", name);
	return 0;
}

static const char *const only_name[] = {"name", NULL};

/* ---- version, disk_list, stats ------------------------------------------------- */

static int m_version(void *ctx, struct json_object *params, struct json_object **res,
		     struct rb_rpc_error *e)
{
	struct daemon *d = ctx;
	static const char *const none[] = {NULL};
	struct timespec ts;

	if (rb_rpc_params_known(params, none, e))
		return e->code;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	*res = json_object_new_object();
	add(*res, "name", jstr("rosenbridged"));
	add(*res, "version", jstr(ROSEN_VERSION));
	add(*res, "pid", json_object_new_int(getpid()));
	add(*res, "uptime_seconds", jdbl((double)(now - d->started_ms) / 1e3, 3));
	add(*res, "workers", json_object_new_int((int)d->cfg->workers));
	add(*res, "mode", jstr(d->cfg->mode == RB_IO_POLL ? "poll" : "event"));
	add(*res, "disks", json_object_new_int((int)d->ndevs));
	add(*res, "log_level", jstr(rb_log_level_name(rb_log_get_level())));
	return 0;
}

static struct json_object *disk_json(struct rb_device *dev)
{
	struct rb_disk *k = rb_device_disk(dev);
	struct json_object *o = json_object_new_object();

	add(o, "name", jstr(rb_device_name(dev)));
	add(o, "disk", jstr(rb_disk_path(k)));
	add(o, "socket", jstr(rb_device_socket(dev)));
	add(o, "readonly", json_object_new_boolean(rb_disk_readonly(k)));
	add(o, "queues", json_object_new_int((int)rb_disk_num_queues(k)));
	add(o, "cache", jstr(rb_disk_cache_mode(k) == RB_DISK_CACHE_DIRECT ? "direct" : "buffered"));
	add(o, "direct", json_object_new_boolean(rb_disk_is_direct(k)));
	add(o, "capacity_bytes", ju64(rb_disk_capacity_sectors(k) * 512));
	add(o, "connected", json_object_new_boolean(rb_device_connected(dev)));
	add(o, "group", jstr(rb_disk_throttle_group(k)));
	add(o, "programs", json_object_new_int((int)rb_ndp_table_count(rb_disk_programs(k))));
	return o;
}

static int m_disk_list(void *ctx, struct json_object *params, struct json_object **res,
		       struct rb_rpc_error *e)
{
	struct daemon *d = ctx;
	static const char *const none[] = {NULL};

	if (rb_rpc_params_known(params, none, e))
		return e->code;
	*res = json_object_new_array();
	for (unsigned i = 0; i < d->ndevs; i++)
		json_object_array_add(*res, disk_json(d->devs[i]));
	return 0;
}

static int m_stats(void *ctx, struct json_object *params, struct json_object **res,
		   struct rb_rpc_error *e)
{
	static const char *const bucket[6] = {"bps-total", "bps-read", "bps-write",
					      "iops-total", "iops-read", "iops-write"};
	struct rb_device *dev;
	struct rb_disk_stats s;

	if (rb_rpc_params_known(params, only_name, e) || the_disk(ctx, params, &dev, e))
		return e->code;
	rb_disk_stats(rb_device_disk(dev), &s);
	struct json_object *o = json_object_new_object();
	add(o, "name", jstr(rb_device_name(dev)));
	add(o, "capacity_bytes", ju64(rb_disk_capacity_sectors(rb_device_disk(dev)) * 512));
	add(o, "connected", json_object_new_boolean(rb_device_connected(dev)));
	add(o, "reads", ju64(s.reads));
	add(o, "writes", ju64(s.writes));
	add(o, "flushes", ju64(s.flushes));
	add(o, "discards", ju64(s.discards));
	add(o, "write_zeroes", ju64(s.write_zeroes));
	add(o, "get_ids", ju64(s.get_ids));
	add(o, "bytes_read", ju64(s.bytes_read));
	add(o, "bytes_written", ju64(s.bytes_written));
	add(o, "errors", ju64(s.errors));
	add(o, "bad_chains", ju64(s.bad_chains));
	add(o, "guest_ios", ju64(s.guest_ios));
	add(o, "program_ios", ju64(s.program_ios));
	add(o, "program_bytes", ju64(s.program_bytes));
	add(o, "ndp_requests", ju64(s.ndp_requests));
	add(o, "ndp_hops", ju64(s.ndp_hops));
	struct json_object *t = json_object_new_object();
	add(t, "group", jstr(s.throttle_group));
	add(t, "limited", json_object_new_boolean(s.throttled));
	add(t, "delayed", ju64(s.throttle_delayed));
	add(t, "wait_seconds", jdbl(s.throttle_wait_ns / 1e9, 6));
	struct json_object *lv = json_object_new_object();
	for (int i = 0; i < 6; i++)
		if (s.bucket_level[i] >= 0)
			add(lv, bucket[i], jdbl(s.bucket_level[i], 3));
	add(t, "levels", lv);
	add(o, "throttle", t);
	*res = o;
	return 0;
}

/* ---- disk_add, disk_remove, disk_resize ----------------------------------------- */

static int m_disk_add(void *ctx, struct json_object *params, struct json_object **res,
		      struct rb_rpc_error *e)
{
	struct daemon *d = ctx;
	struct disk_arg a;
	char err[512], name[RB_QOS_NAME_MAX];

	disk_arg_init(&a);
	/* The same reader as the config file's "disks" entries. */
	if (disk_arg_from_json(params, "params", &a, err, sizeof(err))) {
		disk_arg_free(&a);
		return rb_rpc_fail(e, RB_RPC_INVALID_PARAMS, "invalid params: %s", err);
	}
	if (!a.disk || !a.socket) {
		const char *missing = !a.disk ? "disk" : "socket";
		disk_arg_free(&a);
		return rb_rpc_fail(e, RB_RPC_INVALID_PARAMS, "invalid params: parameter '%s' is required",
				   missing);
	}
	int rc = daemon_add_disk(d, &a, name, sizeof(name), err, sizeof(err));
	disk_arg_free(&a);
	if (rc)
		return rb_rpc_fail(e, rc == -EEXIST || rc == -EBUSY ? RB_RPC_BUSY : RB_RPC_APP_ERROR,
				   "%s", err);
	rb_info(name, "added at run time (control socket)");
	struct rb_device *dev = daemon_find(d, name, NULL);
	*res = disk_json(dev);
	return 0;
}

static int m_disk_remove(void *ctx, struct json_object *params, struct json_object **res,
			 struct rb_rpc_error *e)
{
	static const char *const known[] = {"name", "force", NULL};
	struct daemon *d = ctx;
	struct rb_device *dev;
	bool force = false;
	unsigned i;

	if (rb_rpc_params_known(params, known, e) || the_disk(d, params, &dev, e) ||
	    rb_rpc_param_bool(params, "force", false, &force, e))
		return e->code;
	bool connected = rb_device_connected(dev);
	if (connected && !force)
		return rb_rpc_fail(e, RB_RPC_BUSY,
				   "disk '%s' has a frontend connected: stop the VM or detach the disk first, or give force to disconnect it",
				   rb_device_name(dev));
	char name[RB_QOS_NAME_MAX];
	snprintf(name, sizeof(name), "%s", rb_device_name(dev));
	if (connected)
		rb_warn(name, "disk_remove with force: disconnecting the frontend (in-flight I/O completes first)");
	daemon_find(d, name, &i);
	daemon_remove_disk(d, i);
	rb_info(name, "removed at run time (control socket)");
	*res = json_object_new_object();
	add(*res, "name", jstr(name));
	add(*res, "disconnected", json_object_new_boolean(connected));
	return 0;
}

static int m_disk_resize(void *ctx, struct json_object *params, struct json_object **res,
			 struct rb_rpc_error *e)
{
	struct rb_device *dev;
	uint64_t before, after;
	bool announced;
	char note[256], err[512];

	if (rb_rpc_params_known(params, only_name, e) || the_disk(ctx, params, &dev, e))
		return e->code;
	if (rb_device_resize(dev, &before, &after, &announced, note, sizeof(note), err, sizeof(err)))
		return rb_rpc_fail(e, RB_RPC_APP_ERROR, "%s", err);
	*res = json_object_new_object();
	add(*res, "name", jstr(rb_device_name(dev)));
	add(*res, "old_bytes", ju64(before * 512));
	add(*res, "new_bytes", ju64(after * 512));
	add(*res, "announced", json_object_new_boolean(announced));
	if (!announced)
		add(*res, "note", jstr(note));
	return 0;
}

/* ---- programs and memory ---------------------------------------------------------- */

static int m_program_list(void *ctx, struct json_object *params, struct json_object **res,
			  struct rb_rpc_error *e)
{
	struct rb_device *dev;
	struct rb_ndp_prog_info p[RB_NDP_MAX_PROGRAMS];

	if (rb_rpc_params_known(params, only_name, e) || the_disk(ctx, params, &dev, e))
		return e->code;
	unsigned n = rb_ndp_table_list(rb_disk_programs(rb_device_disk(dev)), p, RB_NDP_MAX_PROGRAMS);
	*res = json_object_new_array();
	for (unsigned i = 0; i < n; i++) {
		char when[40];
		struct json_object *o = json_object_new_object();
		iso_time(p[i].loaded_unix_ns, when, sizeof(when));
		add(o, "handle", ju64(p[i].handle));
		add(o, "type", jstr(rb_ndp_prog_type_name(p[i].type)));
		add(o, "section", jstr(p[i].section));
		add(o, "insns", ju64(p[i].insns));
		add(o, "jitted", json_object_new_boolean(p[i].jitted));
		add(o, "loaded", jstr(when));
		add(o, "requests", ju64(p[i].requests));
		add(o, "runs", ju64(p[i].runs));
		add(o, "hops", ju64(p[i].hops));
		/* CPU as instructions executed: the unit the worker's
		 * fairness counts; timing each run would cost the hop path
		 * a clock read (docs/control.md). */
		add(o, "executed", ju64(p[i].executed));
		json_object_array_add(*res, o);
	}
	return 0;
}

static int m_program_unload(void *ctx, struct json_object *params, struct json_object **res,
			    struct rb_rpc_error *e)
{
	static const char *const known[] = {"name", "handle", NULL};
	struct rb_device *dev;
	uint64_t handle;

	if (rb_rpc_params_known(params, known, e) || the_disk(ctx, params, &dev, e) ||
	    rb_rpc_param_uint(params, "handle", true, 0, UINT32_MAX, &handle, e))
		return e->code;
	if (rb_ndp_unload(rb_disk_programs(rb_device_disk(dev)), (uint32_t)handle) != RB_NDP_S_OK)
		return rb_rpc_fail(e, RB_RPC_NOT_FOUND, "disk '%s' has no program with handle %llu",
				   rb_device_name(dev), (unsigned long long)handle);
	rb_info(rb_device_name(dev), "program %llu unloaded by the control socket (requests in flight finish with it)",
		(unsigned long long)handle);
	*res = json_object_new_object();
	add(*res, "name", jstr(rb_device_name(dev)));
	add(*res, "handle", ju64(handle));
	return 0;
}

static int m_mem_list(void *ctx, struct json_object *params, struct json_object **res,
		      struct rb_rpc_error *e)
{
	struct rb_device *dev;
	uint32_t keys[RB_NDP_MAX_REGIONS];
	uint64_t gpa[RB_NDP_MAX_REGIONS], len[RB_NDP_MAX_REGIONS];

	if (rb_rpc_params_known(params, only_name, e) || the_disk(ctx, params, &dev, e))
		return e->code;
	struct rb_ndp_table *t = rb_disk_programs(rb_device_disk(dev));
	struct json_object *o = json_object_new_object();
	struct json_object *gm = json_object_new_array();
	const struct rb_vhost_mem *mem = rb_device_guest_mem(dev);
	for (unsigned i = 0; mem && i < mem->n; i++) {
		struct json_object *r = json_object_new_object();
		add(r, "gpa", ju64(mem->r[i].gpa));
		add(r, "size", ju64(mem->r[i].size));
		json_object_array_add(gm, r);
	}
	add(o, "name", jstr(rb_device_name(dev)));
	add(o, "guest_memory", gm);
	struct json_object *reg = json_object_new_array();
	unsigned n = rb_ndp_regions(t, keys, gpa, len);
	for (unsigned i = 0; i < n; i++) {
		struct json_object *r = json_object_new_object();
		add(r, "key", ju64(keys[i]));
		add(r, "gpa", ju64(gpa[i]));
		add(r, "len", ju64(len[i]));
		json_object_array_add(reg, r);
	}
	add(o, "registered", reg);
	add(o, "files", json_object_new_int((int)rb_ndp_file_count(t)));
	*res = o;
	return 0;
}

/* ---- throttling -------------------------------------------------------------------- */

/* The group of params.name (a disk's) or params.group, with a reference. */
static int the_group(struct daemon *d, struct json_object *params, struct rb_qos_group **out,
		     struct rb_rpc_error *e)
{
	const char *name = NULL, *group = NULL;

	if (rb_rpc_param_str(params, "name", false, &name, e) ||
	    rb_rpc_param_str(params, "group", false, &group, e))
		return e->code;
	if (!name == !group)
		return rb_rpc_fail(e, RB_RPC_INVALID_PARAMS,
				   "invalid params: give either 'name' (a disk: its group) or 'group'");
	if (name) {
		struct rb_device *dev = daemon_find(d, name, NULL);
		if (!dev)
			return rb_rpc_fail(e, RB_RPC_NOT_FOUND, "no disk named '%s'", name);
		group = rb_disk_throttle_group(rb_device_disk(dev));
	}
	*out = group ? rb_qos_group_find(d->qos, group) : NULL;
	if (!*out)
		return rb_rpc_fail(e, RB_RPC_NOT_FOUND,
				   "no throttle group '%s' (a group exists while a disk is in it)",
				   group ? group : "?");
	return 0;
}

static struct json_object *group_json(struct rb_qos_group *g)
{
	static const char *const bucket[RB_QOS_NR_BUCKETS] = {"bps-total", "bps-read", "bps-write",
							     "iops-total", "iops-read", "iops-write"};
	struct rb_qos_limits l;
	struct rb_qos_group_stats st;
	struct json_object *o = json_object_new_object();

	rb_qos_get_limits(g, &l);
	rb_qos_group_stats(g, mono_ns(), &st);
	add(o, "group", jstr(rb_qos_group_name(g)));
	add(o, "limits", limits_json(&l));
	add(o, "disks", json_object_new_int((int)st.disks));
	struct json_object *lv = json_object_new_object();
	for (int i = 0; i < RB_QOS_NR_BUCKETS; i++) {
		if (st.size[i] <= 0)
			continue;
		struct json_object *b = json_object_new_object();
		add(b, "level", jdbl(st.level[i], 3));
		add(b, "size", jdbl(st.size[i], 3));
		add(lv, bucket[i], b);
	}
	add(o, "buckets", lv);
	add(o, "delayed", ju64(st.c.delayed));
	add(o, "wait_seconds", jdbl(st.c.parked_ns / 1e9, 6));
	return o;
}

static int m_throttle_get(void *ctx, struct json_object *params, struct json_object **res,
			  struct rb_rpc_error *e)
{
	static const char *const known[] = {"name", "group", NULL};
	struct rb_qos_group *g;

	if (rb_rpc_params_known(params, known, e) || the_group(ctx, params, &g, e))
		return e->code;
	*res = group_json(g);
	rb_qos_group_put(g);
	return 0;
}

static int m_throttle_set(void *ctx, struct json_object *params, struct json_object **res,
			  struct rb_rpc_error *e)
{
	static const char *const known[] = {"name", "group", "limits", NULL};
	struct rb_qos_limits lim;
	struct json_object *lj;
	struct rb_qos_group *g;
	char err[512];

	if (rb_rpc_params_known(params, known, e))
		return e->code;
	if (!json_object_object_get_ex(params, "limits", &lj) || !lj)
		return rb_rpc_fail(e, RB_RPC_INVALID_PARAMS,
				   "invalid params: parameter 'limits' is required (an object of QEMU's keys, e.g. {\"iops-total\": 2000}; {} lifts every limit)");
	if (json_object_is_type(lj, json_type_string)) {
		if (rb_qos_limits_parse(json_object_get_string(lj), &lim, err, sizeof(err)))
			return rb_rpc_fail(e, RB_RPC_INVALID_PARAMS, "invalid params: limits: %s", err);
	} else if (rb_qos_limits_from_json(lj, "limits", true, true, &lim, err, sizeof(err))) {
		return rb_rpc_fail(e, RB_RPC_INVALID_PARAMS, "invalid params: %s", err);
	}
	if (lim.group[0])
		return rb_rpc_fail(e, RB_RPC_INVALID_PARAMS,
				   "invalid params: limits.group: a disk does not change groups at run time (remove it and add it again with the group)");
	if (the_group(ctx, params, &g, e))
		return e->code;
	/* The SIGHUP reload's path: checked first, bucket levels kept. */
	if (rb_qos_set_limits(g, &lim, mono_ns(), err, sizeof(err))) {
		rb_qos_group_put(g);
		return rb_rpc_fail(e, RB_RPC_INVALID_PARAMS, "invalid params: limits: %s", err);
	}
	char text[256];
	rb_qos_limits_format(&lim, text, sizeof(text));
	rb_info(SUBJECT, "throttle group '%s': %s", rb_qos_group_name(g), text[0] ? text : "no limits");
	*res = group_json(g);
	rb_qos_group_put(g);
	return 0;
}

/* ---- logging --------------------------------------------------------------------------- */

static int m_log_level(void *ctx, struct json_object *params, struct json_object **res,
		       struct rb_rpc_error *e)
{
	static const char *const known[] = {"level", NULL};
	const char *level = NULL;
	enum rb_log_level before = rb_log_get_level();

	(void)ctx;
	if (rb_rpc_params_known(params, known, e) ||
	    rb_rpc_param_str(params, "level", false, &level, e))
		return e->code;
	if (level) {
		int l = rb_log_level_parse(level);
		if (l < 0)
			return rb_rpc_fail(e, RB_RPC_INVALID_PARAMS,
					   "invalid params: parameter 'level' must be error, warn, info or debug, not '%s'",
					   level);
		rb_log_set_level((enum rb_log_level)l);
		/* Said at the level that is more verbose of the two, so the
		 * change shows in the log either way. */
		rb_log(l > (int)before ? (enum rb_log_level)l : before, SUBJECT, "log level %s -> %s",
		       rb_log_level_name(before), rb_log_level_name((enum rb_log_level)l));
	}
	*res = json_object_new_object();
	add(*res, "previous", jstr(rb_log_level_name(before)));
	add(*res, "level", jstr(rb_log_level_name(rb_log_get_level())));
	return 0;
}

/* ---- metrics -------------------------------------------------------------------------- */

/* The Prometheus text of every disk served now and of the workers, the
 * same as --metrics-listen serves, as one JSON string (rosenctl metrics
 * prints it as is).  Counters are read, never reset. */
static int m_metrics(void *ctx, struct json_object *params, struct json_object **res,
		     struct rb_rpc_error *e)
{
	struct daemon *d = ctx;
	static const char *const none[] = {NULL};
	char *text = NULL;
	size_t len = 0;

	if (rb_rpc_params_known(params, none, e))
		return e->code;
	if (rb_metrics_render(d->devs, d->ndevs, d->workers, &text, &len))
		return rb_rpc_fail(e, RB_RPC_INTERNAL_ERROR, "out of memory rendering the metrics");
	*res = json_object_new_string_len(text, (int)len);
	free(text);
	return 0;
}

/* ---- the table ------------------------------------------------------------------------- */

int control_rpc_register(struct daemon *d)
{
	static const struct {
		const char *name;
		rb_rpc_fn fn;
	} methods[] = {
		{"version", m_version},
		{"disk_list", m_disk_list},
		{"disk_add", m_disk_add},
		{"disk_remove", m_disk_remove},
		{"disk_resize", m_disk_resize},
		{"program_list", m_program_list},
		{"program_unload", m_program_unload},
		{"mem_list", m_mem_list},
		{"throttle_get", m_throttle_get},
		{"throttle_set", m_throttle_set},
		{"stats", m_stats},
		{"log_level", m_log_level},
		{"metrics", m_metrics},
	};

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (rb_rpc_server_register(d->rpc, methods[i].name, methods[i].fn, d))
			return -1;
	return 0;
}
