/* SPDX-License-Identifier: MIT */
/*
 * The daemon's metrics in the Prometheus text exposition format 0.0.4:
 * counters the workers keep per queue (lib/io), the program tables'
 * verifier rejections, the throttle groups' waits, the vhost sockets'
 * connects and the workers' busy time.  It only reads: rendering never
 * waits for a worker, and costs the control thread a few microseconds per
 * disk.  Names, labels and meanings: docs/metrics.md.
 */
#include "metrics.h"

#include <rosen/io.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing text; after an allocation failure it only remembers that. */
struct text {
	char *p;
	size_t len, cap;
	bool oom;
};

static bool reserve(struct text *t, size_t more)
{
	if (t->oom)
		return false;
	if (t->len + more + 1 <= t->cap)
		return true;
	size_t cap = t->cap ? t->cap : 16384;
	while (cap < t->len + more + 1)
		cap *= 2;
	char *p = realloc(t->p, cap);
	if (!p) {
		t->oom = true;
		return false;
	}
	t->p = p;
	t->cap = cap;
	return true;
}

static void put(struct text *t, const char *s, size_t n)
{
	if (!reserve(t, n))
		return;
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = 0;
}

static void puts_(struct text *t, const char *s)
{
	put(t, s, strlen(s));
}

static void __attribute__((format(printf, 2, 3))) printf_(struct text *t, const char *fmt, ...)
{
	va_list ap;
	char small[256];

	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		put(t, small, (size_t)n);
		return;
	}
	if (!reserve(t, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(t->p + t->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

/* A label value, escaped as the format says: \ " and newline. */
static void label_value(struct text *t, const char *v)
{
	for (const char *s = v; *s;) {
		size_t run = strcspn(s, "\\\"\n");
		put(t, s, run);
		s += run;
		if (!*s)
			break;
		put(t, *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : "\\n", 2);
		s++;
	}
}

static void family(struct text *t, const char *name, const char *type, const char *help)
{
	printf_(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{disk="D"[,extra]} — the opening of a per-disk sample. */
static void disk_sample(struct text *t, const char *name, const char *disk)
{
	puts_(t, name);
	puts_(t, "{disk=\"");
	label_value(t, disk);
	puts_(t, "\"");
}

/* Nanoseconds as decimal seconds, exactly (no exponent, no rounding). */
static void seconds(struct text *t, uint64_t ns)
{
	printf_(t, "%" PRIu64 ".%09" PRIu64, ns / 1000000000u, ns % 1000000000u);
}

/* A bucket bound as the shortest decimal ("0.00025", "2.5", "10"). */
static void bound(char *buf, size_t len, uint64_t ns)
{
	int n = snprintf(buf, len, "%" PRIu64 ".%09" PRIu64, ns / 1000000000u, ns % 1000000000u);
	while (n > 0 && buf[n - 1] == '0')
		buf[--n] = 0;
	if (n > 0 && buf[n - 1] == '.')
		buf[--n] = 0;
}

/* One counter or gauge per disk: value(m) for each. */
static void per_disk(struct text *t, struct rb_device *const *devs, unsigned ndevs,
		     const struct rb_disk_metrics *m, const char *name, const char *type,
		     const char *help, bool in_seconds,
		     uint64_t (*value)(struct rb_device *dev, const struct rb_disk_metrics *m))
{
	family(t, name, type, help);
	for (unsigned i = 0; i < ndevs; i++) {
		disk_sample(t, name, rb_device_name(devs[i]));
		puts_(t, "} ");
		uint64_t v = value(devs[i], &m[i]);
		if (in_seconds)
			seconds(t, v);
		else
			printf_(t, "%" PRIu64, v);
		puts_(t, "\n");
	}
}

static uint64_t v_hops(struct rb_device *d, const struct rb_disk_metrics *m)
{
	(void)d;
	return m->ndp_hops;
}

static uint64_t v_insns(struct rb_device *d, const struct rb_disk_metrics *m)
{
	(void)d;
	return m->prog_insns;
}

static uint64_t v_prog_ns(struct rb_device *d, const struct rb_disk_metrics *m)
{
	(void)d;
	return m->prog_run_ns;
}

static uint64_t v_prog_timed(struct rb_device *d, const struct rb_disk_metrics *m)
{
	(void)d;
	return m->prog_sampled_requests;
}

static uint64_t v_rejections(struct rb_device *d, const struct rb_disk_metrics *m)
{
	(void)d;
	return m->verifier_rejections;
}

static uint64_t v_throttled(struct rb_device *d, const struct rb_disk_metrics *m)
{
	(void)d;
	return m->throttled_ns;
}

static uint64_t v_inflight(struct rb_device *d, const struct rb_disk_metrics *m)
{
	(void)d;
	return m->inflight;
}

static uint64_t v_connects(struct rb_device *d, const struct rb_disk_metrics *m)
{
	(void)m;
	return rb_device_connects(d);
}

static uint64_t v_connected(struct rb_device *d, const struct rb_disk_metrics *m)
{
	(void)m;
	return rb_device_connected(d);
}

static uint64_t v_capacity(struct rb_device *d, const struct rb_disk_metrics *m)
{
	(void)m;
	return rb_disk_capacity_sectors(rb_device_disk(d)) * 512u;
}

static void requests(struct text *t, struct rb_device *const *devs, unsigned ndevs,
		     const struct rb_disk_metrics *m)
{
	static const char name[] = "rosen_requests_total";

	family(t, name, "counter",
	       "Requests given back to the guest, by type and outcome (virtio status ok/ioerr/unsupp, malformed: no status; NDP requests by their NDP status).");
	for (unsigned i = 0; i < ndevs; i++) {
		for (unsigned ty = 0; ty < RB_IO_NR_RTYPES; ty++) {
			for (unsigned s = 0; s < RB_IO_NR_RSTATUS; s++) {
				uint64_t v = m[i].requests[ty][s];
				/* Every type's "ok" is always there (rate() sees the
				 * first one); other outcomes once they happened. */
				if (!v && s != RB_IO_RS_OK)
					continue;
				disk_sample(t, name, rb_device_name(devs[i]));
				printf_(t, ",type=\"%s\",status=\"%s\"} %" PRIu64 "\n", rb_io_rtype_name(ty),
					rb_io_rstatus_name(s), v);
			}
		}
	}
}

static void latency(struct text *t, struct rb_device *const *devs, unsigned ndevs,
		    const struct rb_disk_metrics *m)
{
	static const char name[] = "rosen_request_duration_seconds";
	char le[RB_IO_LAT_BUCKETS][32];

	for (unsigned b = 0; b < RB_IO_LAT_BUCKETS; b++)
		bound(le[b], sizeof(le[b]), rb_io_lat_bound_ns[b]);
	family(t, name, "histogram",
	       "Time from the ring poll that took a request to its completion, by type (types seen so far).");
	for (unsigned i = 0; i < ndevs; i++) {
		const char *disk = rb_device_name(devs[i]);
		for (unsigned ty = 0; ty < RB_IO_NR_RTYPES; ty++) {
			uint64_t cum = 0;
			for (unsigned b = 0; b <= RB_IO_LAT_BUCKETS; b++)
				cum += m[i].latency[ty][b];
			if (!cum)
				continue;
			cum = 0;
			for (unsigned b = 0; b <= RB_IO_LAT_BUCKETS; b++) {
				cum += m[i].latency[ty][b];
				disk_sample(t, "rosen_request_duration_seconds_bucket", disk);
				printf_(t, ",type=\"%s\",le=\"%s\"} %" PRIu64 "\n", rb_io_rtype_name(ty),
					b < RB_IO_LAT_BUCKETS ? le[b] : "+Inf", cum);
			}
			disk_sample(t, "rosen_request_duration_seconds_sum", disk);
			printf_(t, ",type=\"%s\"} ", rb_io_rtype_name(ty));
			seconds(t, m[i].latency_sum_ns[ty]);
			puts_(t, "\n");
			disk_sample(t, "rosen_request_duration_seconds_count", disk);
			printf_(t, ",type=\"%s\"} %" PRIu64 "\n", rb_io_rtype_name(ty), cum);
		}
	}
}

/* A counter per disk split by one more label of two values, (label=
 * values[0], label=values[1]): value(m, 0) and value(m, 1). */
static void per_disk_split(struct text *t, struct rb_device *const *devs, unsigned ndevs,
			   const struct rb_disk_metrics *m, const char *name, const char *help,
			   const char *label, const char *const values[2],
			   uint64_t (*value)(const struct rb_disk_metrics *m, unsigned which))
{
	family(t, name, "counter", help);
	for (unsigned i = 0; i < ndevs; i++)
		for (unsigned k = 0; k < 2; k++) {
			disk_sample(t, name, rb_device_name(devs[i]));
			printf_(t, ",%s=\"%s\"} %" PRIu64 "\n", label, values[k], value(&m[i], k));
		}
}

static uint64_t v_bytes(const struct rb_disk_metrics *m, unsigned which)
{
	return which ? m->bytes_written : m->bytes_read;
}

static uint64_t v_inline(const struct rb_disk_metrics *m, unsigned which)
{
	return which ? m->inline_misses : m->inline_hits;
}

static void bytes(struct text *t, struct rb_device *const *devs, unsigned ndevs,
		  const struct rb_disk_metrics *m)
{
	static const char *const dir[2] = {"read", "write"};

	per_disk_split(t, devs, ndevs, m, "rosen_bytes_total",
		       "Bytes moved between storage and the daemon for the guest: its reads and writes and every I/O of its NDP requests.",
		       "direction", dir, v_bytes);
}

static void inline_reads(struct text *t, struct rb_device *const *devs, unsigned ndevs,
			 const struct rb_disk_metrics *m)
{
	static const char *const result[2] = {"hit", "miss"};

	per_disk_split(t, devs, ndevs, m, "rosen_inline_reads_total",
		       "Reads of a buffered image tried at once (preadv2 RWF_NOWAIT): result=hit, served from the page cache; result=miss, then done through io_uring.",
		       "result", result, v_inline);
}

static void workers_busy(struct text *t, struct rb_workers *w)
{
	static const char name[] = "rosen_worker_busy_seconds_total";

	family(t, name, "counter",
	       "Time each I/O worker spent in loop iterations that did work; the rest it polled idle or slept.");
	for (unsigned i = 0; i < rb_workers_count(w); i++) {
		printf_(t, "%s{worker=\"%u\"} ", name, i);
		seconds(t, rb_workers_busy_ns(w, i));
		puts_(t, "\n");
	}
}

int rb_metrics_render(struct rb_device *const *devs, unsigned ndevs, struct rb_workers *workers,
		      char **out, size_t *len)
{
	struct text t = {0};
	struct rb_disk_metrics *m = ndevs ? calloc(ndevs, sizeof(*m)) : NULL;

	*out = NULL;
	*len = 0;
	if (ndevs && !m)
		return -ENOMEM;
	for (unsigned i = 0; i < ndevs; i++)
		rb_disk_metrics(rb_device_disk(devs[i]), &m[i]);

	requests(&t, devs, ndevs, m);
	latency(&t, devs, ndevs, m);
	bytes(&t, devs, ndevs, m);
	per_disk(&t, devs, ndevs, m, "rosen_ndp_hops_total", "counter",
		 "Storage I/Os of NDP requests (the first I/O and every program hop), as their results report them.",
		 false, v_hops);
	per_disk(&t, devs, ndevs, m, "rosen_program_instructions_total", "counter",
		 "eBPF instructions the disk's NDP programs executed (exact).", false, v_insns);
	per_disk(&t, devs, ndevs, m, "rosen_program_run_seconds_total", "counter",
		 "Time the disk's NDP programs ran: measured on 1 request in 64, the others converted from their instruction counts at the measured rate.",
		 true, v_prog_ns);
	per_disk(&t, devs, ndevs, m, "rosen_program_timed_requests_total", "counter",
		 "NDP requests whose program runs were timed (the sample behind rosen_program_run_seconds_total).",
		 false, v_prog_timed);
	per_disk(&t, devs, ndevs, m, "rosen_verifier_rejections_total", "counter",
		 "NDP LOADs the verifier refused (unsafe, or over a verification bound).", false,
		 v_rejections);
	per_disk(&t, devs, ndevs, m, "rosen_throttled_seconds_total", "counter",
		 "Time the disk's I/Os waited for throttle budget, summed over I/Os (two I/Os waiting 1 s add 2 s).",
		 true, v_throttled);
	per_disk(&t, devs, ndevs, m, "rosen_inflight_requests", "gauge",
		 "Requests taken from the disk's rings and not given back yet.", false, v_inflight);
	per_disk(&t, devs, ndevs, m, "rosen_frontend_connects_total", "counter",
		 "vhost-user frontends (VMs) that connected to the disk's socket.", false, v_connects);
	per_disk(&t, devs, ndevs, m, "rosen_frontend_connected", "gauge",
		 "1 while a frontend is connected to the disk's socket.", false, v_connected);
	per_disk(&t, devs, ndevs, m, "rosen_disk_capacity_bytes", "gauge",
		 "The disk's size as the guest is told it (changes with disk_resize).", false,
		 v_capacity);
	inline_reads(&t, devs, ndevs, m);
	if (workers)
		workers_busy(&t, workers);
	free(m);
	if (t.oom || !t.p) {
		free(t.p);
		return -ENOMEM;
	}
	*out = t.p;
	*len = t.len;
	return 0;
}
