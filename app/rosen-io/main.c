/* SPDX-License-Identifier: MIT */
/*
 * rosen-io: read, write, describe and benchmark a virtio-blk/virtio-ndp
 * device through librosen (vhost-user socket or virtio-pci in a VM).
 * stdout carries data (read), key: value lines (info) or CSV (bench);
 * everything meant for people goes to stderr.
 */
#include <rosen/guest.h>
#include <rosen/virtio_ndp.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "gds.h"

#define CHUNK (1u << 20) /* bytes per request for read/write */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rosen-io URI COMMAND ...\n"
		"\n"
		"URI: vhost-user:/path/to.sock   (a vhost-user-blk backend: rosenbridged,\n"
		"                                qemu-storage-daemon)\n"
		"     pci:0000:00:05.0           (a virtio-blk PCI device bound to\n"
		"                                uio_pci_generic, inside a VM)\n"
		"     kernel:/dev/virtio-ndp/DISK (a disk bound to the virtio_ndp kernel\n"
		"                                driver, inside a VM: docs/guest-driver.md)\n"
		"     file:/mnt/PATH             (a file on such a disk's ext4: NDP with\n"
		"                                file offsets, plain I/O through the file)\n"
		"\n"
		"Commands (OFFSET and LENGTH in bytes, multiples of 512):\n"
		"  info                    key: value lines: capacity_bytes, block_size,\n"
		"                          num_queues, features, ndp, ...\n"
		"  read OFFSET LENGTH      LENGTH bytes from OFFSET to stdout\n"
		"  write OFFSET            stdin to the device at OFFSET (its size must be a\n"
		"                          multiple of 512)\n"
		"  ndp-load OBJECT SECTION TYPE\n"
		"                          load an eBPF program (TYPE sq, cq or xrp) into the\n"
		"                          device; prints its handle (it stays loaded)\n"
		"  ndp-unload HANDLE       unload a program\n"
		"  xrp OBJECT SECTION OFFSET --scratch-in FILE --scratch-out FILE\n"
		"      [--max-hops N]      load an xrp program, run one READ_ND whose first\n"
		"                          read is 512 bytes at OFFSET with that 4096-byte\n"
		"                          scratch, write the final scratch, print\n"
		"                          hops=N status=NAME on stderr, unload; exit 0 only\n"
		"                          on success (default hop limit 64)\n"
		"                          OBJECT may be a bare name (bpfkv_xrp_lookup.o):\n"
		"                          the project's programs are found from anywhere\n"
		"  gds-read OFFSET LENGTH [--target host|cuda]\n"
		"                          RosenGDS: have the device allocate a GPU region\n"
		"                          (default host memory; cuda: the daemon's GPU), read\n"
		"                          LENGTH bytes (512..64 MiB) at OFFSET into it with one\n"
		"                          READ_ND through progs/gds_map.o, print the region's\n"
		"                          CRC-32 (GPU_SUM) and that of the same range read the\n"
		"                          normal way; exit 0 only when they match\n"
		"  bench --rw randread|randwrite|read|write --bs N --qd N --seconds S\n"
		"        [--threads T] [--notify event|poll]\n"
		"                          one CSV header and one row on stdout:\n"
		"                          rw,bs,qd,threads,notify,seconds,ios,iops,mbps,mean_us,\n"
		"                          p50_us,p99_us,p999_us,client_cpu_us_per_io\n"
		"                          (write workloads overwrite the device!)\n"
		"Options for every command:\n"
		"  --notify event|poll     event: kick every submission, sleep on the call fd;\n"
		"                          poll (default): skip kicks the backend declined,\n"
		"                          poll the used ring\n");
}

static int parse_u64(const char *what, const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	if (!s || !*s || *s == '-') {
		fprintf(stderr, "rosen-io: %s: expected a number, got '%s'\n", what, s ? s : "");
		return -1;
	}
	/* Decimal, or hex with 0x: base 0 would read "01000" as octal 512. */
	bool hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
	unsigned long long v = strtoull(hex ? s + 2 : s, &end, hex ? 16 : 10);
	if (errno || *end) {
		fprintf(stderr, "rosen-io: %s: expected a number, got '%s'\n", what, s);
		return -1;
	}
	*out = v;
	return 0;
}

int parse_aligned(const char *what, const char *s, uint64_t *out)
{
	if (parse_u64(what, s, out))
		return -1;
	if (*out % 512) {
		fprintf(stderr, "rosen-io: %s %" PRIu64 " is not a multiple of 512\n", what, *out);
		return -1;
	}
	return 0;
}

static struct rb_guest_dev *open_dev(const char *uri, enum rb_guest_notify notify,
				     unsigned queues)
{
	struct rb_guest_opts o = {.notify = notify, .num_queues = queues};
	struct rb_guest_dev *d;
	int rc = rb_guest_open(uri, &o, &d);

	if (rc) {
		fprintf(stderr, "rosen-io: %s: %s\n", uri, rb_guest_errmsg());
		return NULL;
	}
	return d;
}

static int cmd_info(struct rb_guest_dev *d)
{
	struct rb_guest_info i;

	rb_guest_info(d, &i);
	printf("capacity_bytes: %" PRIu64 "\n", i.capacity_bytes);
	printf("block_size: %u\n", i.block_size);
	printf("num_queues: %u\n", i.max_queues);
	printf("features: 0x%" PRIx64 "\n", i.features);
	printf("ndp: %s\n", i.ndp ? "yes" : "no");
	printf("readonly: %s\n", i.readonly ? "yes" : "no");
	printf("queue_size: %u\n", i.queue_size);
	printf("transport: %s\n", i.transport);
	if (!strcmp(i.transport, "kernel") || !strcmp(i.transport, "file"))
		printf("nd_requests: %llu\n", (unsigned long long)i.nd_requests);
	return 0;
}

static int cmd_read(struct rb_guest_dev *d, uint64_t off, uint64_t len)
{
	uint8_t *buf = rb_guest_dma_alloc(d, CHUNK);

	if (!buf) {
		fprintf(stderr, "rosen-io: %s\n", rb_guest_errmsg());
		return 1;
	}
	while (len) {
		size_t n = len < CHUNK ? (size_t)len : CHUNK;
		if (rb_guest_read(d, 0, buf, off, n)) {
			fprintf(stderr, "rosen-io: read: %s\n", rb_guest_errmsg());
			return 1;
		}
		if (fwrite(buf, 1, n, stdout) != n) {
			fprintf(stderr, "rosen-io: writing stdout: %s\n", strerror(errno));
			return 1;
		}
		off += n;
		len -= n;
	}
	return fflush(stdout) ? 1 : 0;
}

static int cmd_write(struct rb_guest_dev *d, uint64_t off)
{
	uint8_t *buf = rb_guest_dma_alloc(d, CHUNK);
	uint64_t total = 0;

	if (!buf) {
		fprintf(stderr, "rosen-io: %s\n", rb_guest_errmsg());
		return 1;
	}
	for (;;) {
		size_t n = 0;
		while (n < CHUNK) {
			size_t got = fread(buf + n, 1, CHUNK - n, stdin);
			if (got == 0)
				break;
			n += got;
		}
		if (n == 0)
			break;
		if (n % 512) {
			fprintf(stderr, "rosen-io: stdin is %" PRIu64 " bytes, not a multiple of 512; nothing past byte %" PRIu64 " was written\n",
				total + n, total);
			return 1;
		}
		if (rb_guest_write(d, 0, buf, off, n)) {
			fprintf(stderr, "rosen-io: write: %s\n", rb_guest_errmsg());
			return 1;
		}
		off += n;
		total += n;
		if (n < CHUNK)
			break;
	}
	int rc = rb_guest_flush(d, 0);
	if (rc && rc != -ENOTSUP) { /* no FLUSH feature: nothing to flush */
		fprintf(stderr, "rosen-io: flush: %s\n", rb_guest_errmsg());
		return 1;
	}
	fprintf(stderr, "rosen-io: wrote %" PRIu64 " bytes\n", total);
	return 0;
}

/* ---- NDP ----------------------------------------------------------------- */

/* The project's own programs are found from any working directory: next to
 * the build tree's binary, or in the installed data directory. */
static char *find_object(const char *name)
{
	char exe[4096], path[4200];
	ssize_t n;

	if (access(name, R_OK) == 0 || strchr(name, '/'))
		return strdup(name);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return strdup(name);
	exe[n] = 0;
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = 0;
	const char *dirs[] = {"/../../progs/", "/../share/rosenbridge/progs/"};
	for (unsigned i = 0; i < 2; i++) {
		for (int ext = 0; ext < 2; ext++) {
			snprintf(path, sizeof(path), "%s%s%s%s", exe, dirs[i], name, ext ? ".o" : "");
			if (access(path, R_OK) == 0)
				return strdup(path);
		}
	}
	return strdup(name);
}

static int read_whole(const char *path, uint8_t **out, size_t *len, size_t max)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	size_t n;

	if (!f) {
		fprintf(stderr, "rosen-io: %s: %s\n", path, strerror(errno));
		return -1;
	}
	buf = malloc(max + 1);
	n = buf ? fread(buf, 1, max + 1, f) : 0;
	fclose(f);
	if (!buf || n > max) {
		fprintf(stderr, "rosen-io: %s is larger than %zu bytes\n", path, max);
		free(buf);
		return -1;
	}
	*out = buf;
	*len = n;
	return 0;
}

static int parse_type(const char *s, uint32_t *type)
{
	if (!strcmp(s, "sq"))
		*type = 1;
	else if (!strcmp(s, "cq"))
		*type = 2;
	else if (!strcmp(s, "xrp"))
		*type = 3;
	else {
		fprintf(stderr, "rosen-io: program type '%s' is not sq, cq or xrp\n", s);
		return -1;
	}
	return 0;
}

int load_prog(struct rb_guest_dev *d, const char *obj_name, const char *section,
		     uint32_t type, uint32_t *handle)
{
	char *obj = find_object(obj_name), log[4096];
	uint8_t *elf;
	size_t len;
	int rc;

	if (read_whole(obj, &elf, &len, 1u << 20)) {
		free(obj);
		return -1;
	}
	rc = rb_guest_ndp_load(d, 0, elf, len, section, type, handle, log, sizeof(log));
	free(elf);
	if (rc) {
		fprintf(stderr, "rosen-io: %s: %s\n", obj, rb_guest_errmsg());
		free(obj);
		return -1;
	}
	free(obj);
	return 0;
}

static int cmd_ndp_load(struct rb_guest_dev *d, char **args)
{
	uint32_t type, handle;

	if (parse_type(args[2], &type) || load_prog(d, args[0], args[1], type, &handle))
		return 1;
	printf("%u\n", handle);
	return 0;
}

static int cmd_xrp(struct rb_guest_dev *d, int argc, char **argv)
{
	const char *in = NULL, *out = NULL;
	uint64_t off, hops = 64;
	uint8_t *scratch = NULL;
	size_t slen;
	uint32_t handle;

	if (argc < 3) {
		fprintf(stderr, "usage: rosen-io URI xrp OBJECT SECTION OFFSET --scratch-in FILE --scratch-out FILE [--max-hops N]\n");
		return 2;
	}
	if (parse_aligned("OFFSET", argv[2], &off))
		return 2;
	for (int i = 3; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(argv[i], "--scratch-in") && v)
			in = argv[++i];
		else if (!strcmp(argv[i], "--scratch-out") && v)
			out = argv[++i];
		else if (!strcmp(argv[i], "--max-hops") && v) {
			if (parse_u64("--max-hops", argv[++i], &hops) || hops == 0 || hops > 1024) {
				fprintf(stderr, "rosen-io: --max-hops must be 1..1024\n");
				return 2;
			}
		} else {
			fprintf(stderr, "rosen-io xrp: unknown or incomplete option '%s'\n", argv[i]);
			return 2;
		}
	}
	if (!in || !out) {
		fprintf(stderr, "rosen-io xrp: --scratch-in and --scratch-out are required\n");
		return 2;
	}
	if (read_whole(in, &scratch, &slen, 4096))
		return 1;
	if (slen != 4096) {
		fprintf(stderr, "rosen-io xrp: scratch %s is %zu bytes; it must be exactly 4096\n", in, slen);
		free(scratch);
		return 1;
	}
	if (load_prog(d, argv[0], argv[1], 3, &handle)) {
		free(scratch);
		return 1;
	}
	static uint8_t data[4096];
	struct rb_guest_nd nd = {.handle = handle, .offset = off, .io_len = 512, .scratch = scratch,
				 .scratch_len = 4096, .data = data, .data_len = 4096,
				 .max_hops = (uint32_t)hops};
	struct rb_guest_nd_result res = {0};
	int rc = rb_guest_read_nd(d, 0, &nd, &res);
	rb_guest_ndp_unload(d, 0, handle);
	if (rc) {
		fprintf(stderr, "rosen-io xrp: %s\n", rb_guest_errmsg());
		free(scratch);
		return 1;
	}
	FILE *f = fopen(out, "wb");
	if (!f || fwrite(scratch, 1, 4096, f) != 4096 || fclose(f)) {
		fprintf(stderr, "rosen-io xrp: cannot write %s: %s\n", out, strerror(errno));
		free(scratch);
		return 1;
	}
	free(scratch);
	fprintf(stderr, "hops=%u status=%s\n", res.hops, rb_ndp_status_name(res.status));
	return res.status == RB_NDP_S_OK ? 0 : 1;
}

/* ---- bench ------------------------------------------------------------------ */

enum rw { RANDREAD, RANDWRITE, SEQREAD, SEQWRITE };

struct bench {
	struct rb_guest_dev *dev;
	enum rw rw;
	uint64_t bs, qd, seconds;
	unsigned threads;
	uint64_t capacity;
};

struct worker {
	struct bench *b;
	unsigned q;
	uint64_t ios;
	double *lat_us;
	size_t nlat, caplat;
	int rc;
	char err[256];
};

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

struct slot {
	void *buf;
	double t0;
};

static uint64_t next_offset(struct bench *b, struct worker *w, uint64_t *rng, uint64_t *seq)
{
	uint64_t blocks = b->capacity / b->bs;
	uint64_t region = blocks / b->threads;

	if (b->rw == RANDREAD || b->rw == RANDWRITE) {
		*rng ^= *rng << 13;
		*rng ^= *rng >> 7;
		*rng ^= *rng << 17;
		return (*rng % blocks) * b->bs;
	}
	/* Sequential: each thread walks its own slice of the device. */
	uint64_t blk = w->q * region + (*seq)++ % (region ? region : 1);
	return blk * b->bs;
}

static void *bench_thread(void *arg)
{
	struct worker *w = arg;
	struct bench *b = w->b;
	bool write = b->rw == RANDWRITE || b->rw == SEQWRITE;
	enum rb_guest_op op = write ? RB_GUEST_OP_WRITE : RB_GUEST_OP_READ;
	struct slot *slots = calloc(b->qd, sizeof(*slots));
	struct rb_guest_cpl *cpl = calloc(b->qd, sizeof(*cpl));
	uint64_t rng = 0x9e3779b97f4a7c15ull ^ (w->q + 1) * 0xbf58476d1ce4e5b9ull, seq = 0;
	double end;

	if (!slots || !cpl) {
		w->rc = -ENOMEM;
		return NULL;
	}
	for (uint64_t i = 0; i < b->qd; i++) {
		slots[i].buf = rb_guest_dma_alloc(b->dev, b->bs);
		if (!slots[i].buf) {
			snprintf(w->err, sizeof(w->err), "%s", rb_guest_errmsg());
			w->rc = -ENOMEM;
			return NULL;
		}
		memset(slots[i].buf, 0x5a, b->bs);
	}
	end = now_us() + (double)b->seconds * 1e6;
	for (uint64_t i = 0; i < b->qd; i++) {
		slots[i].t0 = now_us();
		int rc = rb_guest_submit(b->dev, w->q, op, slots[i].buf, next_offset(b, w, &rng, &seq),
					 b->bs, &slots[i]);
		if (rc) {
			snprintf(w->err, sizeof(w->err), "%s", rb_guest_errmsg());
			w->rc = rc;
			return NULL;
		}
	}
	while (rb_guest_inflight(b->dev, w->q)) {
		int n = rb_guest_wait(b->dev, w->q, cpl, (unsigned)b->qd, 10000);
		if (n < 0) {
			snprintf(w->err, sizeof(w->err), "%s", rb_guest_errmsg());
			w->rc = n;
			return NULL;
		}
		double t = now_us();
		for (int i = 0; i < n; i++) {
			struct slot *s = cpl[i].user;
			if (cpl[i].status) {
				snprintf(w->err, sizeof(w->err), "the device failed a request (%s)",
					 strerror(-cpl[i].status));
				w->rc = cpl[i].status;
				return NULL;
			}
			if (w->nlat == w->caplat) {
				w->caplat = w->caplat ? w->caplat * 2 : 65536;
				double *nl = realloc(w->lat_us, w->caplat * sizeof(double));
				if (!nl) {
					w->rc = -ENOMEM;
					return NULL;
				}
				w->lat_us = nl;
			}
			w->lat_us[w->nlat++] = t - s->t0;
			w->ios++;
			if (t < end) {
				s->t0 = now_us();
				int rc = rb_guest_submit(b->dev, w->q, op, s->buf,
							 next_offset(b, w, &rng, &seq), b->bs, s);
				if (rc) {
					snprintf(w->err, sizeof(w->err), "%s", rb_guest_errmsg());
					w->rc = rc;
					return NULL;
				}
			}
		}
	}
	free(slots);
	free(cpl);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double percentile(const double *v, size_t n, double p)
{
	if (!n)
		return 0;
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static double cpu_us(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static int cmd_bench(const char *uri, int argc, char **argv, enum rb_guest_notify notify)
{
	struct bench b = {.bs = 4096, .qd = 1, .seconds = 5, .threads = 1};
	const char *rw = NULL;
	uint64_t threads = 1;

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--rw") && v) {
			rw = v;
			i++;
		} else if (!strcmp(a, "--bs")) {
			if (parse_aligned("--bs", v, &b.bs) || b.bs == 0 || b.bs > (1u << 20)) {
				fprintf(stderr, "rosen-io: --bs must be 512..1048576, a multiple of 512\n");
				return 2;
			}
			i++;
		} else if (!strcmp(a, "--qd")) {
			if (parse_u64("--qd", v, &b.qd) || b.qd == 0 || b.qd > 1024) {
				fprintf(stderr, "rosen-io: --qd must be 1..1024\n");
				return 2;
			}
			i++;
		} else if (!strcmp(a, "--seconds")) {
			if (parse_u64("--seconds", v, &b.seconds) || b.seconds == 0 || b.seconds > 3600) {
				fprintf(stderr, "rosen-io: --seconds must be 1..3600\n");
				return 2;
			}
			i++;
		} else if (!strcmp(a, "--threads")) {
			if (parse_u64("--threads", v, &threads) || threads == 0 || threads > 16) {
				fprintf(stderr, "rosen-io: --threads must be 1..16\n");
				return 2;
			}
			i++;
		} else {
			fprintf(stderr, "rosen-io bench: unknown or incomplete option '%s'\n", a);
			return 2;
		}
	}
	if (!rw || (strcmp(rw, "randread") && strcmp(rw, "randwrite") && strcmp(rw, "read") &&
		    strcmp(rw, "write"))) {
		fprintf(stderr, "rosen-io bench: --rw randread|randwrite|read|write is required\n");
		return 2;
	}
	b.rw = !strcmp(rw, "randread") ? RANDREAD : !strcmp(rw, "randwrite") ? RANDWRITE
					     : !strcmp(rw, "read")	    ? SEQREAD
									    : SEQWRITE;
	b.threads = (unsigned)threads;
	/* Each request takes 3 descriptors (header, data, status; no indirect
	 * tables), so the ring needs 3 * qd of them. */
	unsigned qsize = 256;
	while (qsize < 3 * b.qd)
		qsize *= 2;
	struct rb_guest_opts o = {.notify = notify, .num_queues = b.threads,
				  .queue_size = qsize,
				  .dma_bytes = (size_t)(b.qd * b.threads * b.bs + (16u << 20))};
	if (rb_guest_open(uri, &o, &b.dev)) {
		fprintf(stderr, "rosen-io: %s: %s\n", uri, rb_guest_errmsg());
		return 1;
	}
	struct rb_guest_info info;
	rb_guest_info(b.dev, &info);
	b.capacity = info.capacity_bytes;
	if (b.capacity < b.bs * b.threads) {
		fprintf(stderr, "rosen-io: the device (%" PRIu64 " bytes) is too small for this bench\n",
			b.capacity);
		rb_guest_close(b.dev);
		return 1;
	}
	struct worker *w = calloc(b.threads, sizeof(*w));
	pthread_t *th = calloc(b.threads, sizeof(*th));
	double c0 = cpu_us(), t0 = now_us();
	for (unsigned i = 0; i < b.threads; i++) {
		w[i].b = &b;
		w[i].q = i;
		pthread_create(&th[i], NULL, bench_thread, &w[i]);
	}
	for (unsigned i = 0; i < b.threads; i++)
		pthread_join(th[i], NULL);
	double elapsed = (now_us() - t0) / 1e6, cpu = cpu_us() - c0;
	int ret = 0;
	size_t n = 0;
	uint64_t ios = 0;
	for (unsigned i = 0; i < b.threads; i++) {
		if (w[i].rc) {
			fprintf(stderr, "rosen-io bench: thread %u: %s\n", i, w[i].err);
			ret = 1;
		}
		n += w[i].nlat;
		ios += w[i].ios;
	}
	double *all = malloc((n ? n : 1) * sizeof(double)), sum = 0;
	for (unsigned i = 0, k = 0; i < b.threads; i++)
		for (size_t j = 0; j < w[i].nlat; j++, k++) {
			all[k] = w[i].lat_us[j];
			sum += all[k];
		}
	qsort(all, n, sizeof(double), cmp_double);
	double iops = (double)ios / elapsed;
	printf("rw,bs,qd,threads,notify,seconds,ios,iops,mbps,mean_us,p50_us,p99_us,p999_us,client_cpu_us_per_io\n");
	printf("%s,%" PRIu64 ",%" PRIu64 ",%u,%s,%.2f,%" PRIu64 ",%.0f,%.2f,%.2f,%.2f,%.2f,%.2f,%.3f\n",
	       rw, b.bs, b.qd, b.threads, notify == RB_GUEST_NOTIFY_EVENT ? "event" : "poll", elapsed,
	       ios, iops, iops * (double)b.bs / 1e6, n ? sum / (double)n : 0, percentile(all, n, 0.5),
	       percentile(all, n, 0.99), percentile(all, n, 0.999), ios ? cpu / (double)ios : 0);
	fprintf(stderr, "rosen-io bench: %s bs=%" PRIu64 " qd=%" PRIu64 " threads=%u: %.0f IOPS, mean %.1f us\n",
		rw, b.bs, b.qd, b.threads, iops, n ? sum / (double)n : 0);
	for (unsigned i = 0; i < b.threads; i++)
		free(w[i].lat_us);
	free(all);
	free(w);
	free(th);
	rb_guest_close(b.dev);
	return ret;
}

int main(int argc, char **argv)
{
	enum rb_guest_notify notify = RB_GUEST_NOTIFY_POLL;
	char *args[64];
	int nargs = 0;

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	/* --notify may appear anywhere; strip it before dispatching. */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--notify")) {
			if (i + 1 >= argc || (strcmp(argv[i + 1], "event") && strcmp(argv[i + 1], "poll"))) {
				fprintf(stderr, "rosen-io: --notify takes event or poll\n");
				return 2;
			}
			notify = !strcmp(argv[i + 1], "event") ? RB_GUEST_NOTIFY_EVENT : RB_GUEST_NOTIFY_POLL;
			i++;
		} else if (nargs < 64) {
			args[nargs++] = argv[i];
		}
	}
	if (nargs < 2) {
		usage(stderr);
		return 2;
	}
	const char *uri = args[0], *cmd = args[1];
	if (!strcmp(cmd, "bench"))
		return cmd_bench(uri, nargs - 2, args + 2, notify);

	uint64_t off = 0, len = 0;
	if (!strcmp(cmd, "read")) {
		if (nargs != 4) {
			fprintf(stderr, "usage: rosen-io URI read OFFSET LENGTH\n");
			return 2;
		}
		if (parse_aligned("OFFSET", args[2], &off) || parse_aligned("LENGTH", args[3], &len))
			return 2;
	} else if (!strcmp(cmd, "write")) {
		if (nargs != 3) {
			fprintf(stderr, "usage: rosen-io URI write OFFSET < data\n");
			return 2;
		}
		if (parse_aligned("OFFSET", args[2], &off))
			return 2;
	} else if (!strcmp(cmd, "gds-read")) {
		struct rb_guest_dev *d = open_dev(uri, notify, 1);
		if (!d)
			return 1;
		int ret = cmd_gds_read(d, nargs - 2, args + 2);
		rb_guest_close(d);
		return ret;
	} else if (!strcmp(cmd, "ndp-load") || !strcmp(cmd, "ndp-unload") || !strcmp(cmd, "xrp")) {
		uint64_t h = 0;
		if ((!strcmp(cmd, "ndp-load") && nargs != 5) || (!strcmp(cmd, "ndp-unload") && nargs != 3)) {
			fprintf(stderr, "usage: rosen-io URI ndp-load OBJECT SECTION TYPE | ndp-unload HANDLE\n");
			return 2;
		}
		if (!strcmp(cmd, "ndp-unload") && (parse_u64("HANDLE", args[2], &h) || h > UINT32_MAX))
			return 2;
		struct rb_guest_dev *d = open_dev(uri, notify, 1);
		if (!d)
			return 1;
		int ret;
		if (!strcmp(cmd, "ndp-load")) {
			ret = cmd_ndp_load(d, args + 2);
		} else if (!strcmp(cmd, "xrp")) {
			ret = cmd_xrp(d, nargs - 2, args + 2);
		} else {
			ret = rb_guest_ndp_unload(d, 0, (uint32_t)h) ? 1 : 0;
			if (ret)
				fprintf(stderr, "rosen-io: %s\n", rb_guest_errmsg());
		}
		rb_guest_close(d);
		return ret;
	} else if (strcmp(cmd, "info")) {
		fprintf(stderr, "rosen-io: unknown command '%s'\n", cmd);
		usage(stderr);
		return 2;
	} else if (nargs != 2) {
		fprintf(stderr, "usage: rosen-io URI info\n");
		return 2;
	}
	struct rb_guest_dev *d = open_dev(uri, notify, 1);
	if (!d)
		return 1;
	int ret;
	if (!strcmp(cmd, "info")) {
		ret = cmd_info(d);
	} else if (!strcmp(cmd, "read")) {
		struct rb_guest_info i;
		rb_guest_info(d, &i);
		if (off > i.capacity_bytes || len > i.capacity_bytes - off) {
			fprintf(stderr, "rosen-io: %" PRIu64 " bytes at %" PRIu64 " run past the end of the %" PRIu64 "-byte device\n",
				len, off, i.capacity_bytes);
			ret = 1;
		} else {
			ret = cmd_read(d, off, len);
		}
	} else {
		ret = cmd_write(d, off);
	}
	rb_guest_close(d);
	return ret;
}
