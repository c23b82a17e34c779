/* SPDX-License-Identifier: MIT */
/*
 * bpfkv: BPF-KV databases on RosenBridge.  Creates a database
 * byte-compatible with BPF-KV, looks keys up and benchmarks lookups, either
 * locally (pread) or through a virtio-ndp device: guest-driven (`vhost`:
 * one virtio-blk read per tree level) or with the whole walk in the device
 * (`ndp`: one READ_ND running the xrp lookup program).  Every value read is
 * checked.  stdout: values (get) or one CSV header and row (bench).
 */
#include <rosen/guest.h>
#include <rosen/virtio_ndp.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bpfkv_node.h"

#define VALUE_SIZE 64

enum mode { MODE_PREAD, MODE_VHOST, MODE_NDP };

struct opts {
	const char *db, *uri;
	unsigned levels;
	enum mode mode;
	uint64_t ops;
	enum rb_guest_notify notify;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bpfkv create FILE --levels L\n"
		"       bpfkv get --db FILE --levels L [--mode M --uri URI] KEY...\n"
		"       bpfkv bench --mode M --db FILE --levels L [--uri URI] [--ops N]\n"
		"                   [--notify event|poll]\n"
		"\n"
		"A BPF-KV database (B+-tree of 512-byte nodes, fanout 31, 64-byte values)\n"
		"holds the keys 0 .. 31^L - 1; L = 4 is 72 MB, L = 5 2.2 GB.\n"
		"Modes: pread   read the file FILE directly, one pread per level\n"
		"       vhost   through a device (--uri vhost-user:SOCK or pci:BDF), one\n"
		"               virtio-blk read per level (the guest drives the walk)\n"
		"       ndp     through a virtio-ndp device: one READ_ND per lookup; the\n"
		"               device runs the xrp lookup program on every node\n"
		"--db names the database the backend serves (it is read only in pread\n"
		"mode, and to check values).  bench prints one CSV header and one row:\n"
		"mode,notify,levels,threads,qd,range,ops,ops_per_s,mean_us,p50_us,p99_us,\n"
		"p999_us,client_cpu_s_per_kop,backend_cpu_s_per_kop\n");
}

static uint64_t ipow(uint64_t b, unsigned e)
{
	uint64_t r = 1;
	while (e--)
		r *= b;
	return r;
}

static uint64_t total_nodes(unsigned levels)
{
	uint64_t n = 0;
	for (unsigned l = 0; l < levels; l++)
		n += ipow(BPFKV_FANOUT, l);
	return n;
}

static void value_of(uint64_t key, char out[VALUE_SIZE])
{
	char tmp[VALUE_SIZE + 1];
	snprintf(tmp, sizeof(tmp), "%63" PRIu64, key);
	memcpy(out, tmp, VALUE_SIZE); /* 63 characters and the NUL */
}

static int cmd_create(const char *path, unsigned levels)
{
	FILE *f = fopen(path, "wb");
	uint64_t nodes = total_nodes(levels), keys = ipow(BPFKV_FANOUT, levels), first = 0;
	uint64_t done = 0, total = nodes + keys / 8;

	if (!f) {
		fprintf(stderr, "bpfkv: %s: %s\n", path, strerror(errno));
		return 1;
	}
	for (unsigned l = 0; l < levels; l++) {
		uint64_t span = ipow(BPFKV_FANOUT, levels - l), step = span / BPFKV_FANOUT;
		uint64_t count = ipow(BPFKV_FANOUT, l), next_first = first + count;
		bool leaf = l == levels - 1;
		for (uint64_t j = 0; j < count; j++) {
			struct bpfkv_node n = {0};
			n.type = leaf ? BPFKV_NODE_LEAF : BPFKV_NODE_INTERNAL;
			n.next = j + 1 == count ? 0 : (first + j + 1) * BPFKV_BLOCK_SIZE;
			for (unsigned k = 0; k < BPFKV_FANOUT; k++) {
				n.key[k] = j * span + k * step;
				n.ptr[k] = BPFKV_PTR_TAG |
					   (leaf ? nodes * BPFKV_BLOCK_SIZE + VALUE_SIZE * n.key[k]
						 : (next_first + j * BPFKV_FANOUT + k) * BPFKV_BLOCK_SIZE);
			}
			if (fwrite(&n, sizeof(n), 1, f) != 1)
				goto io_err;
			if (++done % 65536 == 0)
				fprintf(stderr, "\rbpfkv: writing %s: %3" PRIu64 "%%", path, done * 100 / total);
		}
		first = next_first;
	}
	char block[BPFKV_BLOCK_SIZE];
	for (uint64_t k = 0; k < keys; k += 8) {
		memset(block, 0, sizeof(block));
		for (unsigned i = 0; i < 8 && k + i < keys; i++)
			value_of(k + i, block + i * VALUE_SIZE);
		if (fwrite(block, sizeof(block), 1, f) != 1)
			goto io_err;
		if (++done % 65536 == 0)
			fprintf(stderr, "\rbpfkv: writing %s: %3" PRIu64 "%%", path, done * 100 / total);
	}
	if (fclose(f)) {
		f = NULL;
		goto io_err;
	}
	fprintf(stderr, "\rbpfkv: wrote %s: %u levels, %" PRIu64 " keys, %" PRIu64 " nodes\n", path,
		levels, keys, nodes);
	return 0;
io_err:
	fprintf(stderr, "\nbpfkv: writing %s: %s\n", path, strerror(errno));
	if (f)
		fclose(f);
	return 1;
}

/* ---- lookups ------------------------------------------------------------------- */

struct ctx {
	struct opts *o;
	int fd;                   /* pread */
	struct rb_guest_dev *dev; /* vhost, ndp */
	uint8_t *buf;             /* DMA buffer */
	uint32_t handle;          /* ndp program */
	uint8_t scratch[4096];
	uint8_t data[4096];
};

struct lookup_scratch { /* progs/bpfkv_xrp_lookup.c */
	uint64_t key, stage, value_offset, found;
	char value[VALUE_SIZE];
};

static int read_block(struct ctx *c, uint64_t off, uint8_t *out)
{
	if (c->o->mode == MODE_PREAD)
		return pread(c->fd, out, BPFKV_BLOCK_SIZE, (off_t)off) == BPFKV_BLOCK_SIZE ? 0 : -EIO;
	int rc = rb_guest_read(c->dev, 0, c->buf, off, BPFKV_BLOCK_SIZE);
	if (rc == 0)
		memcpy(out, c->buf, BPFKV_BLOCK_SIZE);
	return rc;
}

/* 1 found (value copied), 0 not found, <0 error. */
static int lookup(struct ctx *c, uint64_t key, char value[VALUE_SIZE], unsigned *hops)
{
	if (c->o->mode == MODE_NDP) {
		struct lookup_scratch *s = (void *)c->scratch;
		memset(s, 0, sizeof(*s));
		s->key = key;
		struct rb_guest_nd nd = {.handle = c->handle, .offset = 0, .io_len = BPFKV_BLOCK_SIZE,
					 .scratch = c->scratch, .scratch_len = sizeof(*s),
					 .max_hops = c->o->levels + 2};
		struct rb_guest_nd_result r;
		int rc = rb_guest_read_nd(c->dev, 0, &nd, &r);
		if (rc)
			return rc;
		if (r.status != RB_NDP_S_OK)
			return -EIO;
		*hops = r.hops;
		if (s->found)
			memcpy(value, s->value, VALUE_SIZE);
		return s->found ? 1 : 0;
	}
	uint8_t blk[BPFKV_BLOCK_SIZE];
	uint64_t off = 0;
	*hops = 0;
	for (;;) {
		int rc = read_block(c, off, blk);
		if (rc)
			return rc;
		++*hops;
		const struct bpfkv_node *n = (const void *)blk;
		uint64_t next = bpfkv_node_child(n, key);
		if (n->type == BPFKV_NODE_LEAF) {
			if (next == BPFKV_NOT_FOUND)
				return 0;
			rc = read_block(c, next & ~(uint64_t)(BPFKV_BLOCK_SIZE - 1), blk);
			if (rc)
				return rc;
			++*hops;
			memcpy(value, blk + (next & (BPFKV_BLOCK_SIZE - 1) & ~(uint64_t)(VALUE_SIZE - 1)),
			       VALUE_SIZE);
			return 1;
		}
		if (*hops > 16)
			return -ELOOP; /* a corrupt tree must not loop us */
		off = next;
	}
}

/* The project's own programs, found from any working directory. */
static int find_prog(char *path, size_t len)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -1;
	exe[n] = 0;
	*strrchr(exe, '/') = 0;
	const char *dirs[] = {"/../../progs/", "/../share/rosenbridge/progs/"};
	for (unsigned i = 0; i < 2; i++) {
		snprintf(path, len, "%s%sbpfkv_xrp_lookup.o", exe, dirs[i]);
		if (access(path, R_OK) == 0)
			return 0;
	}
	return -1;
}

static int open_ctx(struct ctx *c, struct opts *o)
{
	memset(c, 0, sizeof(*c));
	c->o = o;
	c->fd = -1;
	if (o->mode == MODE_PREAD) {
		c->fd = open(o->db, O_RDONLY);
		if (c->fd < 0) {
			fprintf(stderr, "bpfkv: %s: %s\n", o->db, strerror(errno));
			return -1;
		}
		return 0;
	}
	if (!o->uri) {
		fprintf(stderr, "bpfkv: mode %s needs --uri\n", o->mode == MODE_NDP ? "ndp" : "vhost");
		return -1;
	}
	struct rb_guest_opts go = {.num_queues = 1, .notify = o->notify, .dma_bytes = 8u << 20};
	if (rb_guest_open(o->uri, &go, &c->dev)) {
		fprintf(stderr, "bpfkv: %s: %s\n", o->uri, rb_guest_errmsg());
		return -1;
	}
	c->buf = rb_guest_dma_alloc(c->dev, BPFKV_BLOCK_SIZE);
	if (o->mode == MODE_NDP) {
		char path[4200], log[1024];
		FILE *f;
		static uint8_t elf[1 << 20];
		size_t len;
		if (find_prog(path, sizeof(path)) || !(f = fopen(path, "rb"))) {
			fprintf(stderr, "bpfkv: cannot find bpfkv_xrp_lookup.o next to this program\n");
			return -1;
		}
		len = fread(elf, 1, sizeof(elf), f);
		fclose(f);
		if (rb_guest_ndp_load(c->dev, 0, elf, len, "bpfkv_xrp_lookup", RB_NDP_PROG_XRP, &c->handle,
				      log, sizeof(log))) {
			fprintf(stderr, "bpfkv: %s\n", rb_guest_errmsg());
			return -1;
		}
	}
	return 0;
}

static void close_ctx(struct ctx *c)
{
	if (c->fd >= 0)
		close(c->fd);
	if (c->dev) {
		if (c->o->mode == MODE_NDP && c->handle)
			rb_guest_ndp_unload(c->dev, 0, c->handle);
		rb_guest_close(c->dev);
	}
}

static int cmd_get(struct opts *o, int nkeys, char **keys)
{
	struct ctx c;
	int ret = 0;

	if (open_ctx(&c, o))
		return 1;
	for (int i = 0; i < nkeys; i++) {
		char *end, value[VALUE_SIZE], want[VALUE_SIZE];
		unsigned hops;
		errno = 0;
		uint64_t key = strtoull(keys[i], &end, 0);
		if (errno || *end || !*keys[i]) {
			fprintf(stderr, "bpfkv: '%s' is not a key\n", keys[i]);
			ret = 2;
			continue;
		}
		int rc = lookup(&c, key, value, &hops);
		if (rc < 0) {
			fprintf(stderr, "bpfkv: key %" PRIu64 ": %s\n", key,
				c.dev ? rb_guest_errmsg() : strerror(-rc));
			ret = 1;
			continue;
		}
		if (rc == 0) {
			printf("%" PRIu64 " not found\n", key);
			continue;
		}
		value_of(key, want);
		if (memcmp(value, want, VALUE_SIZE)) {
			fprintf(stderr, "bpfkv: key %" PRIu64 ": wrong value read\n", key);
			ret = 1;
		}
		value[VALUE_SIZE - 1] = 0;
		char *v = value;
		while (*v == ' ')
			v++;
		printf("%" PRIu64 " %s\n", key, v);
		fprintf(stderr, "bpfkv: key %" PRIu64 ": %u I/Os, %s\n", key, hops,
			o->mode == MODE_NDP ? "1 device round trip" : "one round trip each");
	}
	close_ctx(&c);
	return ret;
}

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int cmd_bench(struct opts *o)
{
	struct ctx c;
	uint64_t keys = ipow(BPFKV_FANOUT, o->levels), rng = 0x2545f4914f6cdd1dull;
	double *lat = malloc(o->ops * sizeof(double)), sum = 0;
	struct rusage r0, r1;

	if (!lat || open_ctx(&c, o))
		return 1;
	getrusage(RUSAGE_SELF, &r0);
	double t0 = now_us();
	for (uint64_t i = 0; i < o->ops; i++) {
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		uint64_t key = rng % keys;
		char value[VALUE_SIZE], want[VALUE_SIZE];
		unsigned hops;
		double t = now_us();
		int rc = lookup(&c, key, value, &hops);
		lat[i] = now_us() - t;
		sum += lat[i];
		value_of(key, want);
		if (rc != 1 || memcmp(value, want, VALUE_SIZE)) {
			fprintf(stderr, "bpfkv bench: key %" PRIu64 ": %s\n", key,
				rc < 0 ? "lookup failed" : "wrong or missing value");
			close_ctx(&c);
			return 1;
		}
	}
	double wall = (now_us() - t0) / 1e6;
	getrusage(RUSAGE_SELF, &r1);
	double cpu = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec + r1.ru_stime.tv_sec -
			      r0.ru_stime.tv_sec) +
		     (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec + r1.ru_stime.tv_usec -
			      r0.ru_stime.tv_usec) / 1e6;
	qsort(lat, o->ops, sizeof(double), cmp_d);
	const char *m = o->mode == MODE_PREAD ? "pread" : o->mode == MODE_VHOST ? "vhost" : "ndp";
	printf("mode,notify,levels,threads,qd,range,ops,ops_per_s,mean_us,p50_us,p99_us,p999_us,client_cpu_s_per_kop,backend_cpu_s_per_kop\n");
	printf("%s,%s,%u,1,1,0,%" PRIu64 ",%.0f,%.2f,%.2f,%.2f,%.2f,%.4f,\n", m,
	       o->mode == MODE_PREAD ? "" : o->notify == RB_GUEST_NOTIFY_EVENT ? "event" : "poll",
	       o->levels, o->ops, (double)o->ops / wall, sum / (double)o->ops, lat[o->ops / 2],
	       lat[(size_t)((double)o->ops * 0.99)], lat[(size_t)((double)o->ops * 0.999)],
	       cpu / ((double)o->ops / 1000));
	fprintf(stderr, "bpfkv bench: %s, %u levels: %.0f lookups/s, mean %.1f us (every value checked)\n",
		m, o->levels, (double)o->ops / wall, sum / (double)o->ops);
	free(lat);
	close_ctx(&c);
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = {.levels = 0, .mode = MODE_PREAD, .ops = 100000};
	char *rest[1024];
	int nrest = 0;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--db") && v) {
			o.db = v;
			i++;
		} else if (!strcmp(a, "--uri") && v) {
			o.uri = v;
			i++;
		} else if (!strcmp(a, "--levels") && v) {
			o.levels = (unsigned)atoi(v);
			if (o.levels < 1 || o.levels > 7) {
				fprintf(stderr, "bpfkv: --levels must be 1..7\n");
				return 2;
			}
			i++;
		} else if (!strcmp(a, "--ops") && v) {
			o.ops = strtoull(v, NULL, 10);
			if (o.ops == 0) {
				fprintf(stderr, "bpfkv: --ops must be positive\n");
				return 2;
			}
			i++;
		} else if (!strcmp(a, "--mode") && v) {
			if (!strcmp(v, "pread"))
				o.mode = MODE_PREAD;
			else if (!strcmp(v, "vhost"))
				o.mode = MODE_VHOST;
			else if (!strcmp(v, "ndp"))
				o.mode = MODE_NDP;
			else {
				fprintf(stderr, "bpfkv: mode '%s' is not pread, vhost or ndp (uring and local-ndp come later)\n", v);
				return 2;
			}
			i++;
		} else if (!strcmp(a, "--notify") && v) {
			if (strcmp(v, "event") && strcmp(v, "poll")) {
				fprintf(stderr, "bpfkv: --notify takes event or poll\n");
				return 2;
			}
			o.notify = !strcmp(v, "event") ? RB_GUEST_NOTIFY_EVENT : RB_GUEST_NOTIFY_POLL;
			i++;
		} else if (a[0] == '-' && a[1] == '-') {
			fprintf(stderr, "bpfkv: unknown or incomplete option '%s'\n", a);
			return 2;
		} else if (nrest < 1024) {
			rest[nrest++] = argv[i];
		}
	}
	if (!o.levels) {
		fprintf(stderr, "bpfkv: --levels is required\n");
		return 2;
	}
	if (!strcmp(argv[1], "create")) {
		if (nrest != 1) {
			fprintf(stderr, "usage: bpfkv create FILE --levels L\n");
			return 2;
		}
		return cmd_create(rest[0], o.levels);
	}
	if (!o.db && o.mode == MODE_PREAD) {
		fprintf(stderr, "bpfkv: --db is required\n");
		return 2;
	}
	if (!strcmp(argv[1], "get"))
		return nrest ? cmd_get(&o, nrest, rest) : (fprintf(stderr, "bpfkv get: no keys\n"), 2);
	if (!strcmp(argv[1], "bench"))
		return cmd_bench(&o);
	fprintf(stderr, "bpfkv: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
