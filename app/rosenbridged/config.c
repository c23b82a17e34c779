/* SPDX-License-Identifier: MIT */
/*
 * rosenbridged's configuration: the flags, the --config JSON file (the
 * same vocabulary: a flag --foo-bar is the key "foo-bar"), and one disk as
 * JSON (the file's "disks" entries and the control socket's disk_add).
 * Every refusal names what it refuses: the flag, or the key by its path in
 * the file ("disks[1].throttle.iops-total"), or the line of a syntax error.
 */
#include "config.h"
#include "metrics.h"

#include <rosen/rpc.h>

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_FILE_MAX (4u << 20)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rosenbridged --disk PATH --socket PATH [DISK OPTIONS]\n"
		"                    [--disk PATH --socket PATH [DISK OPTIONS]]...\n"
		"                    [--workers N] [--poll | --event] [--control PATH] ...\n"
		"       rosenbridged --config FILE [more options]\n"
		"\n"
		"Serves each disk image (regular file or block device) as a vhost-user-blk\n"
		"device on its unix socket, for QEMU's vhost-user-blk-pci or any\n"
		"vhost-user frontend. One frontend per socket at a time; when it goes\n"
		"away the socket accepts the next one.\n"
		"\n"
		"Disk options (apply to the --disk they follow):\n"
		"  --socket PATH          unix socket to listen on (required)\n"
		"  --name NAME            the disk's name in logs, throttle groups and the\n"
		"                         control socket (default vm0, vm1, ... by position);\n"
		"                         a letter, then letters, digits, '-', '.', '_', at\n"
		"                         most 63 characters (QEMU's id rule); unique\n"
		"  --readonly             refuse writes, discards and write-zeroes\n"
		"  --queues N             virtqueues offered, 1..16 (default 4)\n"
		"  --cache direct|buffered\n"
		"                         direct: O_DIRECT where the filesystem allows it\n"
		"                         (default); buffered: through the host page cache.\n"
		"                         Either way a write the guest saw complete may sit\n"
		"                         in a cache (the page cache; with direct, the\n"
		"                         device's write cache and file metadata) until the\n"
		"                         guest FLUSHes: VIRTIO_BLK_F_FLUSH is offered in both\n"
		"                         modes, a FLUSH is an fdatasync of the image sent\n"
		"                         after the writes in flight on its queue completed,\n"
		"                         and only what a FLUSH answered OK covers is sure to\n"
		"                         survive a host crash or power loss\n"
		"  --throttle KEY=VALUE[,KEY=VALUE...]\n"
		"                         QEMU's throttling keys: iops-total, iops-read,\n"
		"                         iops-write, bps-total, bps-read, bps-write, each\n"
		"                         also -max and -max-length; iops-size; group=NAME\n"
		"                         (disks of one group share its budget). Every I/O\n"
		"                         is charged: the guest's and its NDP programs'\n"
		"                         (docs/throttling.md)\n"
		"Daemon options:\n"
		"  --config FILE          JSON with the same vocabulary as these flags:\n"
		"                         {\"workers\": 2, \"mode\": \"poll\", \"control\": PATH,\n"
		"                          \"disks\": [{\"name\": \"vm0\", \"disk\": IMG, \"socket\": S,\n"
		"                          \"throttle\": {\"iops-total\": 2000}}], ...}\n"
		"                         (docs/operations.md); flags given too are applied\n"
		"                         on top, --disk flags add disks\n"
		"  --check-config         read and check the configuration (flags, --config,\n"
		"                         --throttle-file), say so and exit: 0 if it is good\n"
		"  --control PATH         JSON-RPC control socket, mode 0600 (docs/control.md;\n"
		"                         the client is rosenctl)\n"
		"  --workers N            I/O worker threads, 1..%u (default 1)\n"
		"  --worker-depth N       at most N storage I/Os in flight per worker, the\n"
		"                         slots shared fairly among the disks it serves, so\n"
		"                         a VM with many requests outstanding cannot crowd\n"
		"                         out one with few (default 0: no limit; the worker's\n"
		"                         own time is shared fairly either way;\n"
		"                         docs/throttling.md, \"Fairness on a worker\")\n"
		"  --io-timeout S         storage I/O that has not completed after S seconds\n"
		"                         is cancelled and its request fails (IOERR), so\n"
		"                         storage that never answers cannot hold a VM's\n"
		"                         queue or a drain forever (default 60; 0: never)\n"
		"  --poll                 workers poll the rings, sleeping after %u us idle\n"
		"                         (default)\n"
		"  --event                workers never poll: they sleep on kick eventfds\n"
		"  --verbose              debug logging (--log-level debug)\n"
		"  --log-level LEVEL      error, warn, info (default) or debug\n"
		"  --log-format text|json one line per event as text (default) or as one\n"
		"                         JSON object {time, level, subject, msg}\n"
		"  --throttle-file FILE   throttle limits as JSON (docs/throttling.md), by disk\n"
		"                         name and group; read again on SIGHUP (a bad file is\n"
		"                         refused, the limits stay)\n"
		"  --stats-interval S     log every disk's counters every S seconds (I/Os by\n"
		"                         path: guest / programs; throttling: waits, bucket\n"
		"                         levels); without it they are logged at shutdown\n"
		"  --ndp-inflight N       NDP requests (READ_ND/WRITE_ND) in flight per queue,\n"
		"                         1..%u (default %u); each holds ~%u KiB while it\n"
		"                         runs, freed when the frontend goes; more wait in\n"
		"                         the ring\n"
		"  --allow-unsealed-memory\n"
		"                         accept guest memory that is not a sealable memfd\n"
		"                         (hugetlbfs, /dev/shm files). A frontend could shrink\n"
		"                         it under the daemon; the fault is then confined to\n"
		"                         that VM (its memory reads as zeros, it is\n"
		"                         disconnected). Without it such memory is refused\n"
		"  --metrics-listen [ADDR:]PORT\n"
		"                         serve the metrics (Prometheus text format) at\n"
		"                         http://ADDR:PORT/metrics; ADDR defaults to 127.0.0.1.\n"
		"                         There is no authentication and the metrics show\n"
		"                         every VM's disk activity: another address (IPv4, or\n"
		"                         [IPv6]) must be named, and is logged as a warning\n"
		"                         (docs/metrics.md); the same text is the control\n"
		"                         socket's `metrics` method\n"
		"  --gpu N                the CUDA GPU (ordinal N) GPU regions live on (REG_GPU's\n"
		"                         cuda target; docs/gds.md); without it, or without\n"
		"                         libcuda.so.1, those requests answer NO_GPU (the\n"
		"                         host-memory target works everywhere)\n"
		"  --no-inline-reads      every read goes through io_uring. By default a read\n"
		"                         of a buffered image (--cache buffered, or direct\n"
		"                         without O_DIRECT) is first tried at once with\n"
		"                         preadv2(RWF_NOWAIT): a page-cache hit costs one\n"
		"                         syscall instead of an io_uring round trip, a miss\n"
		"                         goes to io_uring (the worker never waits for the\n"
		"                         device); docs/rosenbridged.md, \"Inline reads\"\n"
		"  --uncharged-program-io for the fairness experiment only (bench/fairness):\n"
		"                         NDP program hops are not charged to the throttle\n"
		"  --help                 this text\n"
		"\n"
		"Example, with QEMU (guest RAM must be shared with the daemon):\n"
		"  rosenbridged --disk vm0.img --socket /run/vm0.sock --control /run/rosen.sock &\n"
		"  qemu-system-x86_64 ... \\\n"
		"    -object memory-backend-memfd,id=mem,size=1G,share=on -numa node,memdev=mem \\\n"
		"    -chardev socket,id=c0,path=/run/vm0.sock,reconnect=1 \\\n"
		"    -device vhost-user-blk-pci,chardev=c0,num-queues=2\n"
		"  rosenctl --control /run/rosen.sock disk-list\n"
		"\n"
		"SIGINT/SIGTERM: in-flight I/O completes, sockets are removed, exit 0.\n"
		"A new daemon on the same disks and sockets takes over: QEMU with\n"
		"reconnect=N on the chardev comes back within N s and what was in flight\n"
		"is resubmitted (programs and registrations answer STATE_LOST, the guest\n"
		"loads them again); docs/robustness.md, \"Restart without loss\".\n"
		"SIGHUP: the --throttle-file is read again.\n",
		RB_IO_MAX_WORKERS, 1000u, RB_IO_NDP_INFLIGHT_MAX, RB_IO_NDP_INFLIGHT, 28u);
}

void disk_arg_init(struct disk_arg *a)
{
	memset(a, 0, sizeof(*a));
	a->queues = 4;
	a->cache = RB_DISK_CACHE_DIRECT;
}

void disk_arg_free(struct disk_arg *a)
{
	free(a->disk);
	free(a->socket);
	a->disk = a->socket = NULL;
}

void config_free(struct config *c)
{
	for (unsigned i = 0; i < c->ndisks; i++)
		disk_arg_free(&c->disks[i]);
	free(c->throttle_file);
	free(c->control);
	free(c->metrics_listen);
	free(c->config_file);
	c->throttle_file = c->control = c->config_file = NULL;
	c->ndisks = 0;
}

/* --metrics-listen / "metrics-listen": [ADDR:]PORT that can be listened on. */
static int metrics_listen_check(const char *spec, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	bool loopback;

	return rb_metrics_http_parse_addr(spec, &ss, &sslen, &loopback, err, errlen);
}

static int set_str(char **dst, const char *v)
{
	char *p = strdup(v);

	if (!p)
		return -ENOMEM;
	free(*dst);
	*dst = p;
	return 0;
}

int disk_arg_check(const struct disk_arg *a, const char *where, char *err, size_t errlen)
{
	if (a->name[0] && !rb_qos_name_ok(a->name)) {
		snprintf(err, errlen,
			 "%s: name '%s': a disk name is a letter, then letters, digits, '-', '.' or '_', at most %d characters",
			 where, a->name, RB_QOS_NAME_MAX - 1);
		return -EINVAL;
	}
	if (!a->disk || !a->disk[0]) {
		snprintf(err, errlen, "%s: no disk image given", where);
		return -EINVAL;
	}
	if (!a->socket || !a->socket[0]) {
		snprintf(err, errlen, "%s: --disk %s has no --socket", where, a->disk);
		return -EINVAL;
	}
	if (a->queues < 1 || a->queues > 16) {
		snprintf(err, errlen, "%s: queues must be in 1..16", where);
		return -EINVAL;
	}
	return 0;
}

/* ---- flags ------------------------------------------------------------------- */

static int parse_uint(const char *opt, const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = s ? strtoul(s, &end, 10) : 0;
	if (!s || !*s || *end || errno || *s == '-' || v < lo || v > hi) {
		fprintf(stderr, "rosenbridged: %s needs a number in %u..%u, got '%s'\n", opt, lo, hi,
			s ? s : "");
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

static int parse_cache(const char *v, enum rb_disk_cache *out)
{
	if (v && !strcmp(v, "direct"))
		*out = RB_DISK_CACHE_DIRECT;
	else if (v && !strcmp(v, "buffered"))
		*out = RB_DISK_CACHE_BUFFERED;
	else
		return -1;
	return 0;
}

static int parse_log_format(const char *v)
{
	if (v && !strcmp(v, "text"))
		return RB_LOG_FORMAT_TEXT;
	if (v && !strcmp(v, "json"))
		return RB_LOG_FORMAT_JSON;
	return -1;
}

/* Defaults, uniqueness and the file's groups, once everything is read. */
static int config_finish(struct config *c, char *err, size_t errlen)
{
	for (unsigned i = 0; i < c->ndisks; i++) {
		struct disk_arg *a = &c->disks[i];
		char where[32];
		if (!a->name[0])
			snprintf(a->name, sizeof(a->name), "vm%u", i);
		snprintf(where, sizeof(where), "disk %u", i);
		if (disk_arg_check(a, where, err, errlen))
			return -1;
		for (unsigned j = 0; j < i; j++) {
			if (!strcmp(a->name, c->disks[j].name)) {
				snprintf(err, errlen,
					 "two disks are named '%s' (disk %u and disk %u; the default name of disk N is vmN): give each a unique --name",
					 a->name, j, i);
				return -1;
			}
			if (!strcmp(a->socket, c->disks[j].socket)) {
				snprintf(err, errlen, "socket %s given twice", a->socket);
				return -1;
			}
		}
	}
	for (unsigned g = 0; g < c->ngroups; g++) {
		const struct config_group *grp = &c->groups[g];
		unsigned members = 0;
		for (unsigned i = 0; i < c->ndisks; i++) {
			struct rb_qos_limits *l = &c->disks[i].throttle;
			if (strcmp(l->group, grp->name))
				continue;
			members++;
			if (rb_qos_limits_any(l) && !rb_qos_limits_equal(l, &grp->limits)) {
				char a[256], b[256];
				rb_qos_limits_format(&grp->limits, a, sizeof(a));
				struct rb_qos_limits own = *l;
				own.group[0] = 0;
				rb_qos_limits_format(&own, b, sizeof(b));
				snprintf(err, errlen,
					 "disk %s: its limits '%.160s' differ from those of group '%s' in \"groups\" ('%.160s'): give none to join it",
					 c->disks[i].name, b, grp->name, a);
				return -1;
			}
			char gname[RB_QOS_NAME_MAX];
			snprintf(gname, sizeof(gname), "%s", l->group);
			*l = grp->limits;
			snprintf(l->group, sizeof(l->group), "%s", gname);
		}
		if (!members) {
			snprintf(err, errlen,
				 "groups.%s: no disk joins this group (a disk joins with \"throttle\": {\"group\": \"%s\"})",
				 grp->name, grp->name);
			return -1;
		}
	}
	return 0;
}

int config_parse_args(int argc, char **argv, struct config *c)
{
	struct disk_arg *cur = NULL;
	char err[512];

	memset(c, 0, sizeof(*c));
	c->workers = 1;
	c->mode = RB_IO_POLL;
	c->io_timeout = 60;
	c->gpu = -1;
	c->log_level = -1;
	c->log_format = -1;
	/* --config first, wherever it is: the flags then go on top. */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			exit(0);
		}
		if (strcmp(argv[i], "--config"))
			continue;
		if (i + 1 >= argc) {
			fprintf(stderr, "rosenbridged: --config needs a file\n");
			return -1;
		}
		if (c->config_file) {
			fprintf(stderr, "rosenbridged: --config given twice\n");
			return -1;
		}
		if (set_str(&c->config_file, argv[i + 1]) ||
		    config_load_file(argv[i + 1], c, err, sizeof(err))) {
			fprintf(stderr, "rosenbridged: --config %s\n", err);
			return -1;
		}
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool per_disk = !strcmp(a, "--socket") || !strcmp(a, "--readonly") ||
				!strcmp(a, "--queues") || !strcmp(a, "--cache") ||
				!strcmp(a, "--throttle") || !strcmp(a, "--name");

		if (per_disk && !cur) {
			fprintf(stderr, "rosenbridged: %s must follow the --disk it applies to\n", a);
			return -1;
		}
		if (!strcmp(a, "--config")) {
			i++; /* read above */
		} else if (!strcmp(a, "--disk")) {
			if (!v) {
				fprintf(stderr, "rosenbridged: --disk needs a path\n");
				return -1;
			}
			if (c->ndisks == MAX_DISKS) {
				fprintf(stderr, "rosenbridged: at most %d disks\n", MAX_DISKS);
				return -1;
			}
			cur = &c->disks[c->ndisks++];
			disk_arg_init(cur);
			if (set_str(&cur->disk, v))
				return -1;
			i++;
		} else if (!strcmp(a, "--socket")) {
			if (!v) {
				fprintf(stderr, "rosenbridged: --socket needs a path\n");
				return -1;
			}
			if (set_str(&cur->socket, v))
				return -1;
			i++;
		} else if (!strcmp(a, "--name")) {
			if (!v || !rb_qos_name_ok(v)) {
				fprintf(stderr,
					"rosenbridged: --name '%s': a disk name is a letter, then letters, digits, '-', '.' or '_', at most %d characters\n",
					v ? v : "", RB_QOS_NAME_MAX - 1);
				return -1;
			}
			snprintf(cur->name, sizeof(cur->name), "%s", v);
			i++;
		} else if (!strcmp(a, "--readonly")) {
			cur->readonly = true;
		} else if (!strcmp(a, "--queues")) {
			if (parse_uint("--queues", v, 1, 16, &cur->queues))
				return -1;
			i++;
		} else if (!strcmp(a, "--cache")) {
			if (parse_cache(v, &cur->cache)) {
				fprintf(stderr, "rosenbridged: --cache takes direct or buffered, got '%s'\n",
					v ? v : "");
				return -1;
			}
			i++;
		} else if (!strcmp(a, "--throttle")) {
			char terr[256];
			if (!v || rb_qos_limits_parse(v, &cur->throttle, terr, sizeof(terr))) {
				fprintf(stderr, "rosenbridged: --throttle %s: %s\n", v ? v : "",
					v ? terr : "needs KEY=VALUE[,KEY=VALUE...]");
				return -1;
			}
			i++;
		} else if (!strcmp(a, "--throttle-file")) {
			if (!v) {
				fprintf(stderr, "rosenbridged: --throttle-file needs a path\n");
				return -1;
			}
			if (set_str(&c->throttle_file, v))
				return -1;
			i++;
		} else if (!strcmp(a, "--control")) {
			if (!v || !*v) {
				fprintf(stderr, "rosenbridged: --control needs a socket path\n");
				return -1;
			}
			if (set_str(&c->control, v))
				return -1;
			i++;
		} else if (!strcmp(a, "--stats-interval")) {
			if (parse_uint("--stats-interval", v, 1, 86400, &c->stats_interval))
				return -1;
			i++;
		} else if (!strcmp(a, "--ndp-inflight")) {
			if (parse_uint("--ndp-inflight", v, 1, RB_IO_NDP_INFLIGHT_MAX, &c->ndp_inflight))
				return -1;
			i++;
		} else if (!strcmp(a, "--check-config")) {
			c->check_only = true;
		} else if (!strcmp(a, "--allow-unsealed-memory")) {
			c->allow_unsealed_memory = true;
		} else if (!strcmp(a, "--gpu")) {
			unsigned g;
			if (parse_uint("--gpu", v, 0, 1023, &g))
				return -1;
			c->gpu = (int)g;
			i++;
		} else if (!strcmp(a, "--no-inline-reads")) {
			c->no_inline_reads = true;
		} else if (!strcmp(a, "--uncharged-program-io")) {
			c->uncharged_program_io = true;
		} else if (!strcmp(a, "--workers")) {
			if (parse_uint("--workers", v, 1, RB_IO_MAX_WORKERS, &c->workers))
				return -1;
			i++;
		} else if (!strcmp(a, "--worker-depth")) {
			if (parse_uint("--worker-depth", v, 0, 65536, &c->worker_depth))
				return -1;
			i++;
		} else if (!strcmp(a, "--io-timeout")) {
			if (parse_uint("--io-timeout", v, 0, 3600, &c->io_timeout))
				return -1;
			i++;
		} else if (!strcmp(a, "--metrics-listen")) {
			char merr[256];
			if (!v) {
				fprintf(stderr, "rosenbridged: --metrics-listen needs [ADDR:]PORT\n");
				return -1;
			}
			if (metrics_listen_check(v, merr, sizeof(merr))) {
				fprintf(stderr, "rosenbridged: --metrics-listen %s\n", merr);
				return -1;
			}
			if (set_str(&c->metrics_listen, v))
				return -1;
			i++;
		} else if (!strcmp(a, "--poll")) {
			c->mode = RB_IO_POLL;
		} else if (!strcmp(a, "--event")) {
			c->mode = RB_IO_EVENT;
		} else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
			c->log_level = RB_LOG_DEBUG;
		} else if (!strcmp(a, "--log-level")) {
			c->log_level = rb_log_level_parse(v);
			if (c->log_level < 0) {
				fprintf(stderr, "rosenbridged: --log-level takes error, warn, info or debug, got '%s'\n",
					v ? v : "");
				return -1;
			}
			i++;
		} else if (!strcmp(a, "--log-format")) {
			c->log_format = parse_log_format(v);
			if (c->log_format < 0) {
				fprintf(stderr, "rosenbridged: --log-format takes text or json, got '%s'\n",
					v ? v : "");
				return -1;
			}
			i++;
		} else {
			fprintf(stderr, "rosenbridged: unknown option '%s' (see --help)\n", a);
			return -1;
		}
	}
	if (c->ndisks == 0 && !c->control && !c->check_only) {
		fprintf(stderr, "rosenbridged: no --disk given (see --help; with --control, disks can be added at run time)\n");
		return -1;
	}
	if (config_finish(c, err, sizeof(err))) {
		fprintf(stderr, "rosenbridged: %s%s%s\n", c->config_file ? c->config_file : "",
			c->config_file ? ": " : "", err);
		return -1;
	}
	return 0;
}

/* ---- JSON ----------------------------------------------------------------------- */

static int want_str(struct json_object *v, const char *path, const char **out, char *err,
		    size_t errlen)
{
	if (!json_object_is_type(v, json_type_string) || !json_object_get_string_len(v)) {
		snprintf(err, errlen, "%s: must be a non-empty string, not %s", path,
			 json_object_is_type(v, json_type_string) ? "an empty one" : rb_rpc_json_type_name(v));
		return -EINVAL;
	}
	*out = json_object_get_string(v);
	return 0;
}

static int want_bool(struct json_object *v, const char *path, bool *out, char *err, size_t errlen)
{
	if (!json_object_is_type(v, json_type_boolean)) {
		snprintf(err, errlen, "%s: must be true or false, not %s", path, rb_rpc_json_type_name(v));
		return -EINVAL;
	}
	*out = json_object_get_boolean(v);
	return 0;
}

static int want_uint(struct json_object *v, const char *path, unsigned lo, unsigned hi,
		     unsigned *out, char *err, size_t errlen)
{
	int64_t n = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;

	if (!json_object_is_type(v, json_type_int) || n < lo || n > hi) {
		snprintf(err, errlen, "%s: must be an integer in %u..%u%s%s", path, lo, hi,
			 json_object_is_type(v, json_type_int) ? "" : ", not ",
			 json_object_is_type(v, json_type_int) ? "" : rb_rpc_json_type_name(v));
		return -EINVAL;
	}
	*out = (unsigned)n;
	return 0;
}

int disk_arg_from_json(struct json_object *o, const char *where, struct disk_arg *a, char *err,
		       size_t errlen)
{
	char path[128];
	const char *s;

	if (!json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "%s: must be an object {\"disk\": ..., \"socket\": ...}", where);
		return -EINVAL;
	}
	json_object_object_foreach(o, key, v) {
		snprintf(path, sizeof(path), "%s.%s", where, key);
		int rc = 0;
		if (!strcmp(key, "name")) {
			rc = want_str(v, path, &s, err, errlen);
			if (!rc && !rb_qos_name_ok(s)) {
				snprintf(err, errlen,
					 "%s: '%s': a disk name is a letter, then letters, digits, '-', '.' or '_', at most %d characters",
					 path, s, RB_QOS_NAME_MAX - 1);
				rc = -EINVAL;
			}
			if (!rc)
				snprintf(a->name, sizeof(a->name), "%s", s);
		} else if (!strcmp(key, "disk")) {
			rc = want_str(v, path, &s, err, errlen);
			if (!rc && set_str(&a->disk, s))
				rc = -ENOMEM;
		} else if (!strcmp(key, "socket")) {
			rc = want_str(v, path, &s, err, errlen);
			if (!rc && set_str(&a->socket, s))
				rc = -ENOMEM;
		} else if (!strcmp(key, "readonly")) {
			rc = want_bool(v, path, &a->readonly, err, errlen);
		} else if (!strcmp(key, "queues")) {
			rc = want_uint(v, path, 1, 16, &a->queues, err, errlen);
		} else if (!strcmp(key, "cache")) {
			rc = want_str(v, path, &s, err, errlen);
			if (!rc && parse_cache(s, &a->cache)) {
				snprintf(err, errlen, "%s: must be \"direct\" or \"buffered\", not '%s'", path, s);
				rc = -EINVAL;
			}
		} else if (!strcmp(key, "throttle")) {
			char terr[384];
			if (json_object_is_type(v, json_type_string)) {
				/* The flag's form, "iops-total=2000,group=g". */
				if (rb_qos_limits_parse(json_object_get_string(v), &a->throttle, terr,
							sizeof(terr))) {
					snprintf(err, errlen, "%s: %s", path, terr);
					rc = -EINVAL;
				}
			} else {
				rc = rb_qos_limits_from_json(v, path, true, true, &a->throttle, err,
							     errlen);
			}
		} else {
			snprintf(err, errlen,
				 "%s: unknown key (a disk takes name, disk, socket, readonly, queues, cache, throttle)",
				 path);
			rc = -EINVAL;
		}
		if (rc)
			return rc == -ENOMEM ? (snprintf(err, errlen, "out of memory"), rc) : rc;
	}
	return 0;
}

static int load_groups(struct json_object *o, struct config *c, char *err, size_t errlen)
{
	char path[128];

	if (!json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "groups: must be an object from group name to limits");
		return -EINVAL;
	}
	json_object_object_foreach(o, name, v) {
		snprintf(path, sizeof(path), "groups.%s", name);
		if (!rb_qos_name_ok(name)) {
			snprintf(err, errlen,
				 "%s: a group name is a letter, then letters, digits, '-', '.' or '_', at most %d characters",
				 path, RB_QOS_NAME_MAX - 1);
			return -EINVAL;
		}
		if (c->ngroups == MAX_DISKS) {
			snprintf(err, errlen, "%s: at most %d groups", path, MAX_DISKS);
			return -EINVAL;
		}
		struct config_group *g = &c->groups[c->ngroups];
		if (rb_qos_limits_from_json(v, path, false, true, &g->limits, err, errlen))
			return -EINVAL;
		if (!rb_qos_limits_any(&g->limits)) {
			snprintf(err, errlen, "%s: no limits given", path);
			return -EINVAL;
		}
		snprintf(g->name, sizeof(g->name), "%s", name);
		c->ngroups++;
	}
	return 0;
}

static int load_disks(struct json_object *o, struct config *c, char *err, size_t errlen)
{
	char where[32];

	if (!json_object_is_type(o, json_type_array)) {
		snprintf(err, errlen, "disks: must be an array of disks [{\"disk\": ..., \"socket\": ...}]");
		return -EINVAL;
	}
	size_t n = json_object_array_length(o);
	for (size_t i = 0; i < n; i++) {
		snprintf(where, sizeof(where), "disks[%zu]", i);
		if (c->ndisks == MAX_DISKS) {
			snprintf(err, errlen, "%s: at most %d disks", where, MAX_DISKS);
			return -EINVAL;
		}
		struct disk_arg *a = &c->disks[c->ndisks++];
		disk_arg_init(a);
		if (disk_arg_from_json(json_object_array_get_idx(o, i), where, a, err, errlen))
			return -EINVAL;
		if (!a->disk) {
			snprintf(err, errlen, "%s.disk: required (the image to serve)", where);
			return -EINVAL;
		}
		if (!a->socket) {
			snprintf(err, errlen, "%s.socket: required (the vhost-user socket)", where);
			return -EINVAL;
		}
	}
	return 0;
}

static int load_top(struct json_object *root, struct config *c, char *err, size_t errlen)
{
	const char *s;
	bool b = false;

	if (!json_object_is_type(root, json_type_object)) {
		snprintf(err, errlen, "the file must hold one JSON object, not %s", rb_rpc_json_type_name(root));
		return -EINVAL;
	}
	json_object_object_foreach(root, key, v) {
		int rc;
		if (!strcmp(key, "workers")) {
			rc = want_uint(v, key, 1, RB_IO_MAX_WORKERS, &c->workers, err, errlen);
		} else if (!strcmp(key, "worker-depth")) {
			rc = want_uint(v, key, 0, 65536, &c->worker_depth, err, errlen);
		} else if (!strcmp(key, "mode")) {
			rc = want_str(v, key, &s, err, errlen);
			if (!rc && !strcmp(s, "poll"))
				c->mode = RB_IO_POLL;
			else if (!rc && !strcmp(s, "event"))
				c->mode = RB_IO_EVENT;
			else if (!rc)
				snprintf(err, errlen, "mode: must be \"poll\" or \"event\", not '%s'", s), rc = -EINVAL;
		} else if (!strcmp(key, "control") || !strcmp(key, "throttle-file")) {
			rc = want_str(v, key, &s, err, errlen);
			if (!rc && set_str(!strcmp(key, "control") ? &c->control : &c->throttle_file, s))
				rc = -ENOMEM, snprintf(err, errlen, "out of memory");
		} else if (!strcmp(key, "io-timeout")) {
			rc = want_uint(v, key, 0, 3600, &c->io_timeout, err, errlen);
		} else if (!strcmp(key, "metrics-listen")) {
			char merr[256];
			rc = want_str(v, key, &s, err, errlen);
			if (!rc && metrics_listen_check(s, merr, sizeof(merr)))
				snprintf(err, errlen, "metrics-listen: %s", merr), rc = -EINVAL;
			else if (!rc && set_str(&c->metrics_listen, s))
				rc = -ENOMEM, snprintf(err, errlen, "out of memory");
		} else if (!strcmp(key, "stats-interval")) {
			rc = want_uint(v, key, 1, 86400, &c->stats_interval, err, errlen);
		} else if (!strcmp(key, "ndp-inflight")) {
			rc = want_uint(v, key, 1, RB_IO_NDP_INFLIGHT_MAX, &c->ndp_inflight, err, errlen);
		} else if (!strcmp(key, "gpu")) {
			unsigned g = 0;
			rc = want_uint(v, key, 0, 1023, &g, err, errlen);
			c->gpu = (int)g;
		} else if (!strcmp(key, "inline-reads")) {
			rc = want_bool(v, key, &b, err, errlen);
			c->no_inline_reads = !b;
		} else if (!strcmp(key, "allow-unsealed-memory")) {
			rc = want_bool(v, key, &b, err, errlen);
			c->allow_unsealed_memory = b;
		} else if (!strcmp(key, "log-level")) {
			rc = want_str(v, key, &s, err, errlen);
			if (!rc && (c->log_level = rb_log_level_parse(s)) < 0)
				snprintf(err, errlen, "log-level: must be error, warn, info or debug, not '%s'", s), rc = -EINVAL;
		} else if (!strcmp(key, "log-format")) {
			rc = want_str(v, key, &s, err, errlen);
			if (!rc && (c->log_format = parse_log_format(s)) < 0)
				snprintf(err, errlen, "log-format: must be \"text\" or \"json\", not '%s'", s), rc = -EINVAL;
		} else if (!strcmp(key, "groups")) {
			rc = load_groups(v, c, err, errlen);
		} else if (!strcmp(key, "disks")) {
			rc = load_disks(v, c, err, errlen);
		} else {
			snprintf(err, errlen,
				 "%s: unknown key (known: workers, mode, worker-depth, io-timeout, metrics-listen, control, log-level, log-format, throttle-file, stats-interval, ndp-inflight, inline-reads, gpu, allow-unsealed-memory, groups, disks)",
				 key);
			rc = -EINVAL;
		}
		if (rc)
			return rc;
	}
	return 0;
}

int config_load_json(const char *text, const char *path, struct config *c, char *err,
		     size_t errlen)
{
	char why[448];
	size_t len = strlen(text);
	if (strspn(text, " \t\r\n") == len) {
		snprintf(err, errlen, "%s: the file is empty (it must hold one JSON object)", path);
		return -EINVAL;
	}
	struct json_tokener *tok = json_tokener_new();

	if (!tok) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	struct json_object *root = json_tokener_parse_ex(tok, text, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!root || jerr != json_tokener_success) {
		unsigned line, col;
		rb_rpc_line_col(text, end, &line, &col);
		json_object_put(root);
		snprintf(err, errlen, "%s:%u:%u: JSON syntax error: %s", path, line, col,
			 jerr == json_tokener_continue ? "the file ends inside a value"
						       : json_tokener_error_desc(jerr));
		return -EINVAL;
	}
	for (size_t i = end; i < len; i++) {
		if (text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r') {
			unsigned line, col;
			rb_rpc_line_col(text, i, &line, &col);
			json_object_put(root);
			snprintf(err, errlen, "%s:%u:%u: JSON syntax error: text after the top-level object",
				 path, line, col);
			return -EINVAL;
		}
	}
	int rc = load_top(root, c, why, sizeof(why));
	json_object_put(root);
	if (rc)
		snprintf(err, errlen, "%s: %s", path, why);
	return rc;
}

int config_load_file(const char *path, struct config *c, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	char *buf = malloc(CONFIG_FILE_MAX + 1);
	size_t n = buf ? fread(buf, 1, CONFIG_FILE_MAX + 1, f) : 0;
	fclose(f);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	if (n > CONFIG_FILE_MAX) {
		free(buf);
		snprintf(err, errlen, "%s: larger than %u bytes", path, CONFIG_FILE_MAX);
		return -EFBIG;
	}
	buf[n] = 0;
	if (strlen(buf) != n) {
		free(buf);
		snprintf(err, errlen, "%s: a NUL byte in the file", path);
		return -EINVAL;
	}
	int rc = config_load_json(buf, path, c, err, errlen);
	free(buf);
	return rc;
}
