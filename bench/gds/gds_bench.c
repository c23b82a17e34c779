/* SPDX-License-Identifier: MIT */
/*
 * bench/gds: RosenGDS against the baseline an application without it has,
 * on a rosenbridged device (bench/gds/run.py starts one and calls this).
 *   gds       one READ_ND (RB_NDP_IO_F_GPU) through progs/gds_map.o: the
 *             daemon reads straight into a GPU region (host target here;
 *             with --target cuda, pinned staging and HtoD copies)
 *   baseline  the client reads into its own memory through the normal
 *             virtio-blk path (1 MiB requests, all in flight at once), then
 *             copies into its "GPU" buffer (memcpy into host memory, or
 *             cuMemcpyHtoD with --target cuda)
 * for each size and thread count (one queue per thread, random offsets).
 * Every GDS read's result is checked (OK, `size` bytes) and, once per run,
 * the region's CRC-32 (GPU_SUM) against the baseline's bytes.  Prints CSV
 * rows, then a summary with the ratios gds/baseline.  CPU per GiB = client
 * CPU (getrusage) + the daemon's (/proc/PID/stat), over the bytes moved.
 */
#include <rosen/gpu.h>
#include <rosen/guest.h>
#include <rosen/virtio_ndp.h>

#include "../../progs/gds_map.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 4
#define MAX_SAMPLES 200000
#define CHUNK (1u << 20)
#define PHONY 0x7e0000000000ull

struct cfg {
	const char *uri, *prog;
	int daemon_pid;
	uint32_t target;
	double seconds;
	uint32_t sizes[16];
	unsigned nsizes;
	unsigned threads[4];
	unsigned nthreads;
};

struct row {
	const char *mode;
	unsigned threads;
	uint32_t size;
	uint64_t ops;
	double secs, mean_us, p50_us, p99_us, client_cpu, daemon_cpu;
};

struct worker {
	struct rb_guest_dev *d;
	unsigned q;
	bool gds;
	uint32_t size, handle, key;
	uint64_t cap;
	double seconds;
	unsigned seed;
	struct rb_gpu_region *dest; /* baseline: the client's "GPU" buffer */
	uint8_t *buf;               /* baseline: DMA memory for the normal read */
	double *lat;
	uint64_t n;
	int err;
	char msg[256];
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double self_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static double proc_cpu(int pid)
{
	char path[64], buf[1024];
	unsigned long ut = 0, st = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	/* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static uint64_t pick_off(struct worker *w)
{
	uint64_t slots = (w->cap - w->size) / 4096 + 1;

	return (uint64_t)(rand_r(&w->seed) % (unsigned)(slots > RAND_MAX ? RAND_MAX : slots)) * 4096;
}

/* The baseline: the whole range in 1 MiB virtio-blk reads, all in flight,
 * then one copy to the "GPU". */
static int baseline_once(struct worker *w, uint64_t off)
{
	unsigned n = 0, done = 0;

	for (uint32_t at = 0; at < w->size; at += CHUNK, n++) {
		uint32_t len = w->size - at < CHUNK ? w->size - at : CHUNK;
		int rc = rb_guest_submit(w->d, w->q, RB_GUEST_OP_READ, w->buf + at, off + at, len, NULL);
		if (rc)
			return rc;
	}
	while (done < n) {
		struct rb_guest_cpl cpl[8];
		int k = rb_guest_wait(w->d, w->q, cpl, 8, 10000);
		if (k < 0)
			return k;
		for (int i = 0; i < k; i++)
			if (cpl[i].status)
				return cpl[i].status;
		done += (unsigned)k;
	}
	return rb_gpu_region_write(w->dest, 0, w->buf, w->size, w->msg, sizeof(w->msg));
}

static void *run_worker(void *arg)
{
	struct worker *w = arg;
	struct gds_map_meta m = {.dest = PHONY, .n = 1};
	double end;

	m.e[0] = (struct gds_map_entry){.phony = PHONY, .len = w->size, .key = w->key};
	end = now_s() + w->seconds;
	while (w->n < MAX_SAMPLES) {
		uint64_t off = pick_off(w);
		double t0 = now_s();
		if (w->gds) {
			struct rb_guest_gds g = {.handle = w->handle, .offset = off, .len = w->size,
						 .meta = &m, .meta_len = sizeof(m)};
			struct rb_guest_nd_result res;
			int rc = rb_guest_read_gds(w->d, w->q, &g, &res);
			if (rc || res.status != RB_NDP_S_OK || res.bytes != w->size) {
				w->err = rc ? rc : -EIO;
				snprintf(w->msg, sizeof(w->msg), "GDS read: %s", rb_guest_errmsg());
				break;
			}
		} else {
			int rc = baseline_once(w, off);
			if (rc) {
				w->err = rc;
				if (!w->msg[0])
					snprintf(w->msg, sizeof(w->msg), "baseline read: %s", rb_guest_errmsg());
				break;
			}
		}
		double t1 = now_s();
		w->lat[w->n++] = (t1 - t0) * 1e6;
		if (t1 >= end)
			break;
	}
	return NULL;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The region's bytes (GPU_SUM) against the same range read normally. */
static int verify(struct rb_guest_dev *d, uint32_t handle, uint32_t key, uint32_t size, uint8_t *buf)
{
	struct gds_map_meta m = {.dest = PHONY, .n = 1};
	struct rb_guest_nd_result res;
	uint32_t crc, want = 0;

	m.e[0] = (struct gds_map_entry){.phony = PHONY, .len = size, .key = key};
	struct rb_guest_gds g = {.handle = handle, .offset = 8192, .len = size, .meta = &m,
				 .meta_len = sizeof(m)};
	if (rb_guest_read_gds(d, 0, &g, &res) || res.status != RB_NDP_S_OK ||
	    rb_guest_ndp_gpu_sum(d, 0, key, 0, size, &crc))
		return -1;
	for (uint32_t at = 0; at < size; at += CHUNK) {
		uint32_t len = size - at < CHUNK ? size - at : CHUNK;
		if (rb_guest_read(d, 0, buf, 8192 + at, len))
			return -1;
		want = rb_gpu_crc32(want, buf, len);
	}
	return crc == want ? 0 : -1;
}

static int run_one(const struct cfg *c, struct rb_guest_dev *d, uint32_t handle, bool gds,
		   unsigned nt, uint32_t size, struct row *out)
{
	struct worker w[MAX_THREADS];
	pthread_t th[MAX_THREADS];
	struct rb_guest_info info;
	int ret = 0;

	rb_guest_info(d, &info);
	memset(w, 0, sizeof(w));
	for (unsigned i = 0; i < nt; i++) {
		w[i] = (struct worker){.d = d, .q = i, .gds = gds, .size = size, .handle = handle,
				       .cap = info.capacity_bytes, .seconds = c->seconds,
				       .seed = 1234 + i * 77 + size};
		w[i].lat = malloc(MAX_SAMPLES * sizeof(double));
		if (!w[i].lat)
			return -1;
		if (gds) {
			if (rb_guest_ndp_reg_gpu(d, i, c->target, size, &w[i].key)) {
				fprintf(stderr, "gds_bench: REG_GPU: %s\n", rb_guest_errmsg());
				ret = -1;
			}
		} else {
			char err[256];
			w[i].buf = rb_guest_dma_alloc(d, size);
			if (!w[i].buf ||
			    rb_gpu_region_new(c->target == RB_GUEST_GPU_CUDA ? RB_GPU_CUDA : RB_GPU_HOST,
					      size, &w[i].dest, err, sizeof(err))) {
				fprintf(stderr, "gds_bench: baseline buffers: %s\n", w[i].buf ? err : "no DMA memory");
				ret = -1;
			}
		}
	}
	if (ret == 0) {
		double c0 = self_cpu(), d0 = proc_cpu(c->daemon_pid), t0 = now_s();
		for (unsigned i = 0; i < nt; i++)
			pthread_create(&th[i], NULL, run_worker, &w[i]);
		for (unsigned i = 0; i < nt; i++)
			pthread_join(th[i], NULL);
		double t1 = now_s();
		out->client_cpu = self_cpu() - c0;
		out->daemon_cpu = proc_cpu(c->daemon_pid) - d0;
		out->secs = t1 - t0;
		uint64_t n = 0;
		for (unsigned i = 0; i < nt; i++) {
			if (w[i].err) {
				fprintf(stderr, "gds_bench: thread %u: %s (%s)\n", i, w[i].msg, strerror(-w[i].err));
				ret = -1;
			}
			n += w[i].n;
		}
		double *all = malloc((n ? n : 1) * sizeof(double)), sum = 0;
		uint64_t k = 0;
		for (unsigned i = 0; i < nt; i++)
			for (uint64_t j = 0; j < w[i].n; j++) {
				all[k++] = w[i].lat[j];
				sum += w[i].lat[j];
			}
		qsort(all, n, sizeof(double), cmp_d);
		*out = (struct row){gds ? "gds" : "baseline", nt, size, n, out->secs, n ? sum / n : 0,
				    n ? all[n / 2] : 0, n ? all[(n * 99) / 100] : 0, out->client_cpu,
				    out->daemon_cpu};
		free(all);
	}
	for (unsigned i = 0; i < nt; i++) {
		if (w[i].key)
			rb_guest_ndp_unreg_gpu(d, 0, w[i].key);
		rb_gpu_region_put(w[i].dest);
		if (w[i].buf)
			rb_guest_dma_free(d, w[i].buf);
		free(w[i].lat);
	}
	return ret;
}

static int parse_list(const char *s, uint32_t *out, unsigned max, bool sizes)
{
	unsigned n = 0;
	char *dup = strdup(s), *save = NULL;

	for (char *t = strtok_r(dup, ",", &save); t && n < max; t = strtok_r(NULL, ",", &save)) {
		char *end;
		unsigned long v = strtoul(t, &end, 10);
		if (sizes && (*end == 'k' || *end == 'K'))
			v <<= 10, end++;
		else if (sizes && (*end == 'm' || *end == 'M'))
			v <<= 20, end++;
		if (*end || !v)
			return free(dup), -1;
		out[n++] = (uint32_t)v;
	}
	free(dup);
	return (int)n;
}

static double gib(const struct row *r)
{
	return (double)r->ops * r->size / (double)(1u << 30);
}

int main(int argc, char **argv)
{
	struct cfg c = {.target = RB_GUEST_GPU_HOST, .seconds = 2, .prog = "build/progs/gds_map.o"};
	uint32_t th[4];

	parse_list("4k,64k,1m,4m", c.sizes, 16, true);
	c.nsizes = 4;
	c.threads[0] = 1, c.threads[1] = 4, c.nthreads = 2;
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(argv[i], "--daemon-pid") && v) {
			c.daemon_pid = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--target") && v) {
			c.target = !strcmp(argv[++i], "cuda") ? RB_GUEST_GPU_CUDA : RB_GUEST_GPU_HOST;
		} else if (!strcmp(argv[i], "--seconds") && v) {
			c.seconds = atof(argv[++i]);
		} else if (!strcmp(argv[i], "--prog") && v) {
			c.prog = argv[++i];
		} else if (!strcmp(argv[i], "--sizes") && v) {
			int n = parse_list(argv[++i], c.sizes, 16, true);
			if (n <= 0)
				return fprintf(stderr, "gds_bench: bad --sizes\n"), 2;
			c.nsizes = (unsigned)n;
		} else if (!strcmp(argv[i], "--threads") && v) {
			int n = parse_list(argv[++i], th, 4, false);
			if (n <= 0)
				return fprintf(stderr, "gds_bench: bad --threads\n"), 2;
			c.nthreads = (unsigned)n;
			for (int k = 0; k < n; k++)
				c.threads[k] = th[k] > MAX_THREADS ? MAX_THREADS : th[k];
		} else if (!c.uri && argv[i][0] != '-') {
			c.uri = argv[i];
		} else {
			fprintf(stderr,
				"usage: gds_bench URI --daemon-pid PID [--target host|cuda] [--seconds S]\n"
				"                 [--sizes 4k,64k,1m,4m] [--threads 1,4] [--prog gds_map.o]\n");
			return 2;
		}
	}
	if (!c.uri || !c.daemon_pid) {
		fprintf(stderr, "gds_bench: URI and --daemon-pid are required\n");
		return 2;
	}
	if (c.target == RB_GUEST_GPU_CUDA) {
		char err[256];
		if (rb_gpu_cuda_open(0, err, sizeof(err))) { /* the baseline's own copies */
			fprintf(stderr, "gds_bench: --target cuda: %s\n", err);
			return 1;
		}
	}
	struct rb_guest_opts o = {.num_queues = MAX_THREADS, .dma_bytes = 128u << 20,
				  .notify = RB_GUEST_NOTIFY_EVENT};
	struct rb_guest_dev *d;
	if (rb_guest_open(c.uri, &o, &d)) {
		fprintf(stderr, "gds_bench: %s: %s\n", c.uri, rb_guest_errmsg());
		return 1;
	}
	FILE *f = fopen(c.prog, "rb");
	static uint8_t elf[1 << 20];
	size_t elf_len = f ? fread(elf, 1, sizeof(elf), f) : 0;
	uint32_t handle;
	char log[1024];
	if (f)
		fclose(f);
	if (!elf_len || rb_guest_ndp_load(d, 0, elf, elf_len, "gds_map", RB_NDP_PROG_SQ, &handle, log,
					  sizeof(log))) {
		fprintf(stderr, "gds_bench: cannot load %s: %s\n", c.prog, elf_len ? log : "unreadable");
		rb_guest_close(d);
		return 1;
	}
	/* Check once per size that a GDS read lands the disk's bytes. */
	uint8_t *vbuf = rb_guest_dma_alloc(d, CHUNK);
	for (unsigned s = 0; s < c.nsizes; s++) {
		uint32_t key;
		if (!vbuf || rb_guest_ndp_reg_gpu(d, 0, c.target, c.sizes[s], &key)) {
			fprintf(stderr, "gds_bench: REG_GPU: %s\n", rb_guest_errmsg());
			return 1;
		}
		int v = verify(d, handle, key, c.sizes[s], vbuf);
		rb_guest_ndp_unreg_gpu(d, 0, key);
		if (v) {
			fprintf(stderr, "gds_bench: a %u-byte GDS read did not land the disk's bytes\n", c.sizes[s]);
			return 1;
		}
	}
	rb_guest_dma_free(d, vbuf);

	struct row rows[64];
	unsigned nr = 0;
	printf("mode,target,threads,size,ops,seconds,gib_per_s,mean_us,p50_us,p99_us,client_cpu_s_per_gib,daemon_cpu_s_per_gib,cpu_s_per_gib\n");
	for (unsigned t = 0; t < c.nthreads; t++)
		for (unsigned s = 0; s < c.nsizes; s++)
			for (int g = 1; g >= 0; g--) {
				struct row r = {0};
				if (run_one(&c, d, handle, g, c.threads[t], c.sizes[s], &r))
					return 1;
				double gb = gib(&r);
				printf("%s,%s,%u,%u,%" PRIu64 ",%.2f,%.3f,%.1f,%.1f,%.1f,%.3f,%.3f,%.3f\n", r.mode,
				       c.target == RB_GUEST_GPU_CUDA ? "cuda" : "host", r.threads, r.size, r.ops,
				       r.secs, gb / r.secs, r.mean_us, r.p50_us, r.p99_us, r.client_cpu / gb,
				       r.daemon_cpu / gb, (r.client_cpu + r.daemon_cpu) / gb);
				fflush(stdout);
				rows[nr++] = r;
			}
	rb_guest_ndp_unload(d, 0, handle);
	rb_guest_close(d);

	fprintf(stderr, "\nRosenGDS vs read-then-copy (%s target): ratio gds/baseline, < 1 is better\n",
		c.target == RB_GUEST_GPU_CUDA ? "cuda" : "host");
	fprintf(stderr, "%-8s %-8s %12s %12s %8s %14s %14s %8s\n", "threads", "size", "gds mean_us",
		"base mean_us", "lat", "gds cpu s/GiB", "base cpu s/GiB", "cpu");
	for (unsigned i = 0; i + 1 < nr; i += 2) {
		const struct row *g = &rows[i], *b = &rows[i + 1];
		double gc = (g->client_cpu + g->daemon_cpu) / gib(g), bc = (b->client_cpu + b->daemon_cpu) / gib(b);
		char sz[16];
		snprintf(sz, sizeof(sz), g->size >= (1u << 20) ? "%u MiB" : "%u KiB",
			 g->size >= (1u << 20) ? g->size >> 20 : g->size >> 10);
		fprintf(stderr, "%-8u %-8s %12.1f %12.1f %8.2f %14.3f %14.3f %8.2f\n", g->threads, sz,
			g->mean_us, b->mean_us, g->mean_us / b->mean_us, gc, bc, gc / bc);
	}
	return 0;
}
