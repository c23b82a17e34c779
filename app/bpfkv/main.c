/* SPDX-License-Identifier: MIT */
/*
 * bpfkv: BPF-KV databases on RosenBridge.  Creates a database
 * byte-compatible with BPF-KV, looks keys up, runs range queries and
 * benchmarks both, in five modes:
 *   pread      bare metal, one pread() per block
 *   uring      bare metal, one io_uring SQE per block
 *   local-ndp  bare metal, RosenBridge's NDP engine in this process: the
 *              program runs on every block and the next read is resubmitted
 *              from the completion loop (the XRP-like upper bound)
 *   vhost      through a virtio-blk / virtio-ndp device (librosen), one
 *              read per block: the guest drives the walk
 *   ndp        through a virtio-ndp device, one READ_ND per call: the device
 *              runs the program on every block
 * Every mode runs the same step functions (progs/bpfkv_prog.h) on the same
 * blocks: natively in pread/uring/vhost, as eBPF in local-ndp/ndp.  Every
 * value read is checked.  stdout: values (get, range) or one CSV header and
 * row (bench); everything for people goes to stderr.
 */
#include <rosen/guest.h>
#include <rosen/log.h>
#include <rosen/ndp.h>
#include <rosen/virtio_ndp.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bpfkv_prog.h"

#define VALUE_SIZE BPFKV_VALUE_SIZE
#define MAX_THREADS 16
#define MAX_QD 256

enum mode { MODE_PREAD, MODE_URING, MODE_LOCAL_NDP, MODE_VHOST, MODE_NDP };
static const char *const mode_names[] = {"pread", "uring", "local-ndp", "vhost", "ndp"};

enum op_kind { OP_GET, OP_RANGE };

struct opts {
	const char *db, *uri;
	unsigned levels;
	enum mode mode;
	uint64_t ops;
	uint64_t seconds; /* bench: stop starting operations after this long (0: run --ops) */
	unsigned threads, qd;
	uint64_t range; /* bench: keys per range query, 0 = point lookups */
	bool sum, excl_begin, excl_end, direct, quiet;
	int backend_pid;
	bool xrp; /* ndp program type: xrp (default) or cq */
	enum rb_guest_notify notify;
	bool notify_set;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bpfkv create FILE --levels L\n"
		"       bpfkv get   --db FILE --levels L [--mode M --uri URI] KEY...\n"
		"       bpfkv range --db FILE --levels L [--mode M --uri URI] BEGIN END [--sum]\n"
		"                   [--exclude-begin] [--exclude-end]\n"
		"       bpfkv bench --mode M --db FILE --levels L [--uri URI] [--ops N] [--seconds S]\n"
		"                   [--threads T] [--qd D] [--range K] [--sum] [--notify event|poll]\n"
		"                   [--backend-pid PID] [--prog xrp|cq] [--direct]\n"
		"\n"
		"A BPF-KV database (B+-tree of 512-byte nodes, fanout 31, 64-byte values)\n"
		"holds the keys 0 .. 31^L - 1; L = 4 is 72 MB, L = 5 2.2 GB.  The value of\n"
		"key k is k in decimal, right-aligned in 63 characters, plus a NUL.\n"
		"Modes: pread      read FILE directly, one pread() per block (bare metal)\n"
		"       uring      read FILE through io_uring, one SQE per block (bare metal)\n"
		"       local-ndp  RosenBridge's NDP engine in this process on io_uring: the\n"
		"                  program runs on each block and resubmits the next read\n"
		"                  itself (bare metal, the XRP-like upper bound)\n"
		"       vhost      through a device (--uri vhost-user:SOCK, pci:BDF,\n"
		"                  kernel:/dev/virtio-ndp/DISK or file:/mnt/kv.db), one\n"
		"                  virtio-blk read per block (the guest drives the walk)\n"
		"       ndp        through a virtio-ndp device: one READ_ND per call; the\n"
		"                  device runs the program on every block\n"
		"get prints 'KEY VALUE' per key ('KEY not found'); keys go 32 to a call.\n"
		"range prints 'KEY VALUE' for every key in [BEGIN, END] (--exclude-begin,\n"
		"--exclude-end make the bounds exclusive); with --sum one line\n"
		"'count N sum_keys S sum_values V' instead (V adds up the numbers the\n"
		"values spell, so V = S on a healthy database).  32 pairs per call.\n"
		"bench: --ops lookups or range queries (default 100000) over --threads\n"
		"threads (one device queue each), --qd of them in flight per thread;\n"
		"--seconds S stops starting operations after S seconds (whichever of\n"
		"--ops and --seconds comes first; ops_per_s is over the run's length);\n"
		"--range K > 0 runs range queries of K keys at random places;\n"
		"--backend-pid reports the backend's CPU time from /proc/PID/stat;\n"
		"--notify: device modes, event (kick, sleep on interrupts) or poll\n"
		"(default); --prog: the program type ndp modes run (default xrp);\n"
		"--direct: local modes read with O_DIRECT.  --db names the database file:\n"
		"local modes read it; device modes need not (the backend serves it, and a\n"
		"value is checked against its key, which it spells).\n"
		"bench prints one CSV header and one row:\n"
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

static bool value_ok(uint64_t key, const char *v)
{
	char want[VALUE_SIZE];
	value_of(key, want);
	return memcmp(v, want, VALUE_SIZE) == 0;
}

static const char *trimmed(const char *v, char out[VALUE_SIZE])
{
	memcpy(out, v, VALUE_SIZE);
	out[VALUE_SIZE - 1] = 0;
	char *p = out;
	while (*p == ' ')
		p++;
	return p;
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

/* ---- the shared environment: file, device, programs ------------------------------- */

struct env {
	struct opts *o;
	uint64_t keys;           /* 31^L */
	int fd;                  /* local modes */
	uint64_t capacity;       /* local-ndp: the file's size */
	struct rb_guest_dev *dev; /* vhost, ndp */
	uint32_t handle;         /* ndp */
	struct rb_ndp_table *table; /* local-ndp */
	struct rb_ndp_prog *prog;   /* local-ndp */
	enum op_kind kind;
};

/* The project's programs, found from any working directory. */
static int find_prog(const char *name, char *path, size_t len)
{
	char exe[4096];
	const char *env = getenv("BPFKV_PROGS");
	if (env) {
		snprintf(path, len, "%s/%s.o", env, name);
		return access(path, R_OK) == 0 ? 0 : -1;
	}
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -1;
	exe[n] = 0;
	*strrchr(exe, '/') = 0;
	const char *dirs[] = {"/../../progs/", "/../share/rosenbridge/progs/"};
	for (unsigned i = 0; i < 2; i++) {
		snprintf(path, len, "%s%s%s.o", exe, dirs[i], name);
		if (access(path, R_OK) == 0)
			return 0;
	}
	return -1;
}

static const char *prog_section(const struct env *e)
{
	if (e->kind == OP_GET)
		return e->o->xrp ? "bpfkv_xrp_get" : "bpfkv_get";
	return e->o->xrp ? "bpfkv_xrp_range" : "bpfkv_range";
}

static uint8_t *read_prog(const struct env *e, size_t *len)
{
	char path[4200];
	const char *sec = prog_section(e);
	FILE *f;
	uint8_t *elf;

	if (find_prog(sec, path, sizeof(path)) || !(f = fopen(path, "rb"))) {
		fprintf(stderr, "bpfkv: cannot find %s.o next to this program (set BPFKV_PROGS=DIR)\n", sec);
		return NULL;
	}
	elf = malloc(RB_NDP_MAX_ELF_BYTES);
	*len = elf ? fread(elf, 1, RB_NDP_MAX_ELF_BYTES, f) : 0;
	fclose(f);
	return elf;
}

static int env_open(struct env *e, struct opts *o, enum op_kind kind)
{
	memset(e, 0, sizeof(*e));
	e->o = o;
	e->fd = -1;
	e->kind = kind;
	e->keys = ipow(BPFKV_FANOUT, o->levels);
	if (o->mode <= MODE_LOCAL_NDP) {
		if (!o->db) {
			fprintf(stderr, "bpfkv: mode %s needs --db\n", mode_names[o->mode]);
			return -1;
		}
		e->fd = open(o->db, O_RDONLY | (o->direct ? O_DIRECT : 0));
		struct stat st;
		if (e->fd < 0 || fstat(e->fd, &st)) {
			fprintf(stderr, "bpfkv: %s: %s\n", o->db, strerror(errno));
			return -1;
		}
		e->capacity = (uint64_t)st.st_size & ~(uint64_t)511;
		if (e->capacity < total_nodes(o->levels) * BPFKV_BLOCK_SIZE + e->keys * VALUE_SIZE) {
			fprintf(stderr, "bpfkv: %s is too small for a %u-level database (wrong --levels?)\n",
				o->db, o->levels);
			return -1;
		}
		if (o->mode != MODE_LOCAL_NDP)
			return 0;
		size_t len;
		uint8_t *elf = read_prog(e, &len);
		char log[RB_NDP_LOG_MAX];
		if (!elf)
			return -1;
		e->table = rb_ndp_table_new("bpfkv");
		uint32_t st2 = e->table ? rb_ndp_load(e->table, o->xrp ? RB_NDP_PROG_XRP : RB_NDP_PROG_CQ, elf,
						      len, prog_section(e), &e->handle, log, sizeof(log))
					: RB_NDP_S_LIMIT;
		free(elf);
		if (st2 != RB_NDP_S_OK) {
			fprintf(stderr, "bpfkv: loading %s: %s\n", prog_section(e), e->table ? log : "out of memory");
			return -1;
		}
		e->prog = rb_ndp_acquire(e->table, e->handle);
		return e->prog ? 0 : -1;
	}
	if (!o->uri) {
		fprintf(stderr, "bpfkv: mode %s needs --uri (vhost-user:SOCKET, pci:BDF or kernel:/dev/virtio-ndp/DISK)\n",
			mode_names[o->mode]);
		return -1;
	}
	struct rb_guest_opts go = {.num_queues = o->threads, .notify = o->notify,
				   .dma_bytes = 16u << 20};
	if (rb_guest_open(o->uri, &go, &e->dev)) {
		fprintf(stderr, "bpfkv: %s: %s\n", o->uri, rb_guest_errmsg());
		return -1;
	}
	struct rb_guest_info info;
	rb_guest_info(e->dev, &info);
	if (info.num_queues < o->threads) {
		fprintf(stderr, "bpfkv: %s offers %u queues; --threads %u needs one per thread\n", o->uri,
			info.num_queues, o->threads);
		return -1;
	}
	if (info.capacity_bytes < total_nodes(o->levels) * BPFKV_BLOCK_SIZE + e->keys * VALUE_SIZE) {
		fprintf(stderr, "bpfkv: the device (%" PRIu64 " bytes) is too small for a %u-level database (wrong --levels?)\n",
			info.capacity_bytes, o->levels);
		return -1;
	}
	if (o->mode == MODE_NDP) {
		if (!info.ndp) {
			fprintf(stderr, "bpfkv: %s does not speak virtio-ndp (mode ndp needs rosenbridged)\n", o->uri);
			return -1;
		}
		size_t len;
		uint8_t *elf = read_prog(e, &len);
		char log[RB_NDP_LOG_MAX];
		if (!elf)
			return -1;
		log[0] = 0;
		int rc = rb_guest_ndp_load(e->dev, 0, elf, len, prog_section(e),
					   o->xrp ? RB_NDP_PROG_XRP : RB_NDP_PROG_CQ, &e->handle, log,
					   sizeof(log));
		free(elf);
		if (rc) {
			fprintf(stderr, "bpfkv: loading %s: %s%s%s\n", prog_section(e), rb_guest_errmsg(),
				log[0] ? ": " : "", log);
			return -1;
		}
	}
	return 0;
}

static void env_close(struct env *e)
{
	if (e->fd >= 0)
		close(e->fd);
	if (e->prog)
		rb_ndp_release(e->prog);
	if (e->table)
		rb_ndp_table_free(e->table);
	if (e->dev) {
		if (e->handle)
			rb_guest_ndp_unload(e->dev, 0, e->handle);
		rb_guest_close(e->dev);
	}
}

/* ---- operations: one lookup batch or one range query, in calls ------------------------ */

struct thr;

/* One operation in flight. */
struct slot {
	union {
		struct bpfkv_get_scratch g;
		struct bpfkv_range_scratch r;
		uint8_t raw[RB_NDP_MAX_SCRATCH];
	} s __attribute__((aligned(4096)));
	uint8_t data[RB_NDP_MAX_DATA] __attribute__((aligned(4096))); /* local modes, ndp */
	uint8_t *dma;        /* vhost: the DMA block buffer */
	uint64_t off;        /* next read (guest-driven) or first read of the call */
	double t0;           /* when the operation began */
	uint64_t key;        /* bench: lookup key or range begin */
	uint64_t want_next;  /* range: the key the next pair must have */
	uint64_t got;        /* range: pairs checked */
	struct rb_guest_nd_result res; /* ndp */
	struct rb_ndp_exec x;          /* local-ndp */
	unsigned pending;    /* local-ndp: reads of this round in flight */
	int err;
	uint64_t bytes;
};

struct thr {
	struct env *e;
	unsigned id, q;
	struct io_uring ring;
	bool ring_ok;
	struct slot *slots;
	unsigned nslots;
	uint64_t rng;
	/* the work */
	uint64_t todo, started, completed;
	double deadline_us; /* bench --seconds: start nothing after it (0: none) */
	double *lat;
	/* get / range commands: the caller's keys and output */
	int (*next_op)(struct thr *, struct slot *); /* 1 started, 0 none left, <0 error */
	int (*call_done)(struct thr *, struct slot *, bool last); /* 0 or error */
	void *user;
	int failed;
	char errmsg[256];
};

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static uint32_t scratch_len(const struct thr *t, const struct slot *s)
{
	if (t->e->kind == OP_GET)
		return (uint32_t)BPFKV_GET_SCRATCH_LEN(s->s.g.n);
	return (uint32_t)BPFKV_RANGE_SCRATCH_LEN(s->s.r.flags & BPFKV_RANGE_SUM);
}

static void set_range(struct slot *s, uint64_t begin, uint64_t end, uint64_t flags)
{
	memset(&s->s.r, 0, offsetof(struct bpfkv_range_scratch, leaf));
	s->s.r.begin = begin;
	s->s.r.end = end;
	s->s.r.flags = flags;
	s->s.r.state = BPFKV_RANGE_TRAVERSE;
	s->s.r.cur = 0;
	s->off = 0;
}

static void set_get(struct slot *s, const uint64_t *keys, unsigned n)
{
	memset(&s->s.g, 0, BPFKV_GET_HDR);
	s->s.g.n = n;
	for (unsigned i = 0; i < n; i++) {
		s->s.g.e[i].key = keys[i];
		s->s.g.e[i].found = 0;
	}
	s->off = 0;
}

/*
 * A call ended (its results are in scratch): hand them over; then either
 * the operation is complete (returns 1) or the slot is set up for the next
 * call (returns 0).  <0: error (t->errmsg).
 */
static int end_call(struct thr *t, struct slot *s)
{
	bool last = t->e->kind == OP_GET || s->s.r.done;
	int rc = t->call_done(t, s, last);
	if (rc)
		return rc;
	if (last) {
		t->completed++;
		return 1;
	}
	/* Resume the range query from the leaf it stopped in. */
	s->s.r.state = BPFKV_RANGE_LEAF;
	s->s.r.n = 0;
	s->s.r.hops = 0;
	s->s.r.cur = s->s.r.resume;
	s->off = s->s.r.resume;
	return 0;
}

/* Guest-driven modes: the block at s->off was read into blk.  1: the
 * operation is complete; 0: s->off is the next read; <0 error. */
static int block_done(struct thr *t, struct slot *s, const uint8_t *blk)
{
	unsigned long long next = 0;
	int fin = t->e->kind == OP_GET ? bpfkv_get_step(blk, &s->s.g, &next)
				       : bpfkv_range_step(blk, &s->s.r, &next);
	if (!fin) {
		if (++s->bytes > 4096) { /* reads in one call: a corrupt tree must not loop us */
			snprintf(t->errmsg, sizeof(t->errmsg), "more than 4096 reads in one call: corrupt database?");
			return -ELOOP;
		}
		s->off = next;
		return 0;
	}
	s->bytes = 0;
	return end_call(t, s);
}

/* ---- the per-mode engines ------------------------------------------------------------- */

static int fail(struct thr *t, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct thr *t, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (!t->errmsg[0])
		vsnprintf(t->errmsg, sizeof(t->errmsg), fmt, ap);
	va_end(ap);
	return rc < 0 ? rc : -EIO;
}

/* Starts the next operation in slot s; 1 started, 0 nothing left. */
static int start_op(struct thr *t, struct slot *s)
{
	if (t->started >= t->todo)
		return 0;
	if (t->deadline_us && now_us() >= t->deadline_us)
		return 0;
	int rc = t->next_op(t, s);
	if (rc <= 0)
		return rc;
	t->started++;
	s->t0 = now_us();
	s->bytes = 0;
	return 1;
}

static int run_pread(struct thr *t)
{
	struct slot *s = &t->slots[0];
	int rc;

	while ((rc = start_op(t, s)) == 1) {
		do {
			ssize_t n = pread(t->e->fd, s->data, BPFKV_BLOCK_SIZE, (off_t)s->off);
			if (n != BPFKV_BLOCK_SIZE)
				return fail(t, n < 0 ? -errno : -EIO, "pread at %" PRIu64 ": %s", s->off,
					    n < 0 ? strerror(errno) : "short read");
			rc = block_done(t, s, s->data);
		} while (rc == 0);
		if (rc < 0)
			return rc;
	}
	return rc;
}

/* local-ndp: queue the I/Os the executor asked for. */
static void lndp_queue(struct thr *t, struct slot *s)
{
	struct rb_ndp_exec *x = &s->x;
	s->pending = x->n_io;
	s->err = 0;
	s->bytes = 0;
	for (unsigned i = 0; i < x->n_io; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&t->ring);
		if (!sqe) {
			io_uring_submit(&t->ring);
			sqe = io_uring_get_sqe(&t->ring);
		}
		io_uring_prep_read(sqe, t->e->fd, s->data + x->data_off[i], x->io_len[i], x->io_off[i]);
		io_uring_sqe_set_data(sqe, s);
	}
}

static const uint8_t zero_meta[RB_NDP_MAX_META];

/* local-ndp: begin a call (its first read is s->off). */
static int lndp_call(struct thr *t, struct slot *s)
{
	struct rb_ndp_exec *x = &s->x;
	x->prog = t->e->prog;
	x->capacity_bytes = t->e->capacity;
	x->max_hops = RB_NDP_MAX_HOPS;
	x->meta = zero_meta;
	x->meta_len = 0;
	x->data = s->data;
	x->scratch = s->s.raw;
	x->scratch_len = scratch_len(t, s);
	x->n_mem = 0;
	if (rb_ndp_exec_start(x, s->off, BPFKV_BLOCK_SIZE) == RB_NDP_STEP_DONE)
		return fail(t, -EIO, "local-ndp: %s (status %u)", x->msg, x->status);
	lndp_queue(t, s);
	return 0;
}

/* Submits slot s's next read (uring) or call (local-ndp). */
static int uring_issue(struct thr *t, struct slot *s)
{
	if (t->e->o->mode == MODE_LOCAL_NDP)
		return lndp_call(t, s);
	struct io_uring_sqe *sqe = io_uring_get_sqe(&t->ring);
	if (!sqe) {
		io_uring_submit(&t->ring);
		sqe = io_uring_get_sqe(&t->ring);
	}
	io_uring_prep_read(sqe, t->e->fd, s->data, BPFKV_BLOCK_SIZE, s->off);
	io_uring_sqe_set_data(sqe, s);
	return 0;
}

/* One completion; 1 the slot's operation is complete, 0 it goes on (its
 * next I/O is queued), <0 error. */
static int uring_cqe(struct thr *t, struct slot *s, int res)
{
	if (t->e->o->mode == MODE_URING) {
		if (res != BPFKV_BLOCK_SIZE)
			return fail(t, res < 0 ? res : -EIO, "read at %" PRIu64 ": %s", s->off,
				    res < 0 ? strerror(-res) : "short read");
		int rc = block_done(t, s, s->data);
		if (rc == 0)
			uring_issue(t, s);
		return rc;
	}
	if (res < 0 && !s->err)
		s->err = res;
	if (res > 0)
		s->bytes += (uint64_t)res;
	if (--s->pending)
		return 0;
	struct rb_ndp_exec *x = &s->x;
	uint64_t want = 0;
	for (unsigned i = 0; i < x->n_io; i++)
		want += x->io_len[i];
	int round = s->err ? s->err : s->bytes != want ? -EIO : 0;
	if (rb_ndp_exec_io_done(x, round) == RB_NDP_STEP_IO) {
		lndp_queue(t, s);
		return 0;
	}
	if (x->status != RB_NDP_S_OK)
		return fail(t, -EIO, "local-ndp: the program ended with status %u: %s", x->status, x->msg);
	int rc = end_call(t, s);
	if (rc == 0)
		rc = lndp_call(t, s);
	return rc;
}

static int run_uring(struct thr *t)
{
	unsigned active = 0;
	int rc;

	for (unsigned i = 0; i < t->nslots; i++) {
		rc = start_op(t, &t->slots[i]);
		if (rc < 0)
			return rc;
		if (rc == 0)
			break;
		if ((rc = uring_issue(t, &t->slots[i])) < 0)
			return rc;
		active++;
	}
	while (active) {
		struct io_uring_cqe *cqe;
		rc = io_uring_submit_and_wait(&t->ring, 1);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
			return fail(t, rc, "io_uring_submit_and_wait: %s", strerror(-rc));
		unsigned head, seen = 0;
		io_uring_for_each_cqe(&t->ring, head, cqe)
		{
			struct slot *s = io_uring_cqe_get_data(cqe);
			int res = cqe->res;
			seen++;
			rc = uring_cqe(t, s, res);
			if (rc < 0) {
				io_uring_cq_advance(&t->ring, seen);
				return rc;
			}
			if (rc == 1) {
				rc = start_op(t, s);
				if (rc < 0) {
					io_uring_cq_advance(&t->ring, seen);
					return rc;
				}
				if (rc == 1) {
					if ((rc = uring_issue(t, s)) < 0) {
						io_uring_cq_advance(&t->ring, seen);
						return rc;
					}
				} else {
					active--;
				}
			}
		}
		io_uring_cq_advance(&t->ring, seen);
	}
	return 0;
}

/* Device modes: submit slot s's next read (vhost) or call (ndp). */
static int dev_issue(struct thr *t, struct slot *s)
{
	struct env *e = t->e;
	int rc;
	if (e->o->mode == MODE_VHOST) {
		rc = rb_guest_submit(e->dev, t->q, RB_GUEST_OP_READ, s->dma, s->off, BPFKV_BLOCK_SIZE, s);
		return rc ? fail(t, rc, "read at %" PRIu64 ": %s", s->off, rb_guest_errmsg()) : 0;
	}
	struct rb_guest_nd nd = {.handle = e->handle, .offset = s->off, .io_len = BPFKV_BLOCK_SIZE,
				 .scratch = s->s.raw, .scratch_len = scratch_len(t, s),
				 .max_hops = RB_NDP_MAX_HOPS};
	rc = rb_guest_submit_nd(e->dev, t->q, false, &nd, &s->res, s);
	return rc ? fail(t, rc, "READ_ND: %s", rb_guest_errmsg()) : 0;
}

/* A device completion: 1 complete, 0 its next request is queued, <0 error. */
static int dev_done(struct thr *t, struct slot *s, int status)
{
	int rc;
	if (status)
		return fail(t, status, "%s at %" PRIu64 ": the device answered %s",
			    t->e->o->mode == MODE_VHOST ? "read" : "READ_ND", s->off,
			    status == -ENOTSUP ? "UNSUPP" : "IOERR");
	if (t->e->o->mode == MODE_VHOST) {
		rc = block_done(t, s, s->dma);
	} else {
		if (s->res.status != RB_NDP_S_OK)
			return fail(t, -EIO, "READ_ND ended with NDP status %u after %u reads", s->res.status,
				    s->res.hops);
		rc = end_call(t, s);
	}
	if (rc == 0)
		rc = dev_issue(t, s);
	return rc;
}

static int run_ndp_sync(struct thr *t)
{
	struct slot *s = &t->slots[0];
	struct env *e = t->e;
	int rc;

	while ((rc = start_op(t, s)) == 1) {
		do {
			struct rb_guest_nd nd = {.handle = e->handle, .offset = s->off,
						 .io_len = BPFKV_BLOCK_SIZE, .scratch = s->s.raw,
						 .scratch_len = scratch_len(t, s),
						 .max_hops = RB_NDP_MAX_HOPS};
			rc = rb_guest_read_nd(e->dev, t->q, &nd, &s->res);
			if (rc)
				return fail(t, rc, "READ_ND: %s", rb_guest_errmsg());
			if (s->res.status != RB_NDP_S_OK)
				return fail(t, -EIO, "READ_ND ended with NDP status %u after %u reads",
					    s->res.status, s->res.hops);
			rc = end_call(t, s);
		} while (rc == 0);
		if (rc < 0)
			return rc;
	}
	return rc;
}

static int run_dev(struct thr *t)
{
	unsigned active = 0;
	struct rb_guest_cpl cpl[MAX_QD];
	int rc;

	if (t->e->o->mode == MODE_NDP && t->nslots == 1)
		return run_ndp_sync(t); /* librosen's synchronous path: no per-request staging */
	for (unsigned i = 0; i < t->nslots; i++) {
		rc = start_op(t, &t->slots[i]);
		if (rc < 0)
			return rc;
		if (rc == 0)
			break;
		if ((rc = dev_issue(t, &t->slots[i])) < 0)
			return rc;
		active++;
	}
	while (active) {
		int n = rb_guest_wait(t->e->dev, t->q, cpl, MAX_QD, 30000);
		if (n < 0)
			return fail(t, n, "waiting for completions: %s", rb_guest_errmsg());
		for (int i = 0; i < n; i++) {
			struct slot *s = cpl[i].user;
			rc = dev_done(t, s, cpl[i].status);
			if (rc < 0)
				return rc;
			if (rc == 1) {
				rc = start_op(t, s);
				if (rc < 0)
					return rc;
				if (rc == 1) {
					if ((rc = dev_issue(t, s)) < 0)
						return rc;
				} else {
					active--;
				}
			}
		}
	}
	return 0;
}

static int thr_setup(struct thr *t, struct env *e, unsigned id, unsigned qd)
{
	t->e = e;
	t->id = id;
	t->q = id;
	t->nslots = qd;
	t->rng = 0x2545f4914f6cdd1dull ^ ((uint64_t)(id + 1) * 0x9e3779b97f4a7c15ull);
	if (posix_memalign((void **)&t->slots, 4096, qd * sizeof(struct slot)))
		return -1;
	memset(t->slots, 0, qd * sizeof(struct slot));
	if (e->o->mode == MODE_URING || e->o->mode == MODE_LOCAL_NDP) {
		int rc = io_uring_queue_init(qd * RB_NDP_MAX_NEXT_IOS < 4096 ? qd * RB_NDP_MAX_NEXT_IOS : 4096,
					     &t->ring, 0);
		if (rc) {
			fprintf(stderr, "bpfkv: io_uring_queue_init: %s\n", strerror(-rc));
			return -1;
		}
		t->ring_ok = true;
	}
	if (e->o->mode == MODE_VHOST)
		for (unsigned i = 0; i < qd; i++)
			if (!(t->slots[i].dma = rb_guest_dma_alloc(e->dev, BPFKV_BLOCK_SIZE))) {
				fprintf(stderr, "bpfkv: out of DMA memory\n");
				return -1;
			}
	return 0;
}

static void thr_free(struct thr *t)
{
	if (t->ring_ok)
		io_uring_queue_exit(&t->ring);
	if (t->slots && t->e->dev)
		for (unsigned i = 0; i < t->nslots; i++)
			if (t->slots[i].dma)
				rb_guest_dma_free(t->e->dev, t->slots[i].dma);
	free(t->slots);
	free(t->lat);
}

static void *thr_main(void *arg)
{
	struct thr *t = arg;
	int rc;
	switch (t->e->o->mode) {
	case MODE_PREAD:
		rc = run_pread(t);
		break;
	case MODE_URING:
	case MODE_LOCAL_NDP:
		rc = run_uring(t);
		break;
	default:
		rc = run_dev(t);
	}
	if (rc < 0) {
		t->failed = rc;
		if (!t->errmsg[0])
			snprintf(t->errmsg, sizeof(t->errmsg), "%s", strerror(-rc));
	}
	return NULL;
}

/* ---- get and range commands -------------------------------------------------------------- */

struct keylist {
	uint64_t *keys;
	unsigned n, next;
	int ret;
};

static int get_next(struct thr *t, struct slot *s)
{
	struct keylist *k = t->user;
	if (k->next >= k->n)
		return 0;
	unsigned n = k->n - k->next < BPFKV_BATCH_MAX ? k->n - k->next : BPFKV_BATCH_MAX;
	set_get(s, k->keys + k->next, n);
	k->next += n;
	return 1;
}

static int get_done(struct thr *t, struct slot *s, bool last)
{
	struct keylist *k = t->user;
	(void)last;
	for (unsigned i = 0; i < s->s.g.n; i++) {
		const struct bpfkv_get_entry *en = &s->s.g.e[i];
		char buf[VALUE_SIZE];
		if (!en->found) {
			printf("%llu not found\n", en->key);
			continue;
		}
		if (!value_ok(en->key, en->value)) {
			fprintf(stderr, "bpfkv: key %llu: wrong value read: '%s'\n", en->key,
				trimmed(en->value, buf));
			k->ret = 1;
			continue;
		}
		printf("%llu %s\n", en->key, trimmed(en->value, buf));
		fprintf(stderr, "bpfkv: key %llu: %u I/Os, %s\n", en->key, t->e->o->levels + 1,
			t->e->o->mode == MODE_NDP ? "1 device round trip for its batch"
			: t->e->o->mode == MODE_VHOST ? "one device round trip each" : "bare metal");
	}
	return 0;
}

static int run_one_thread(struct env *e, struct thr *t, uint64_t ops)
{
	if (thr_setup(t, e, 0, 1))
		return 1;
	t->todo = ops;
	thr_main(t);
	if (t->failed) {
		fprintf(stderr, "bpfkv: %s\n", t->errmsg);
		return 1;
	}
	return 0;
}

static int parse_key(const char *s, uint64_t *k)
{
	char *end;
	errno = 0;
	*k = strtoull(s, &end, 0);
	if (errno || *end || !*s || *s == '-') {
		fprintf(stderr, "bpfkv: '%s' is not a key (a non-negative integer)\n", s);
		return -1;
	}
	return 0;
}

static int cmd_get(struct opts *o, int nkeys, char **keys)
{
	struct env e;
	struct thr t = {0};
	struct keylist kl = {.keys = calloc((size_t)nkeys, sizeof(uint64_t)), .n = (unsigned)nkeys};

	if (!kl.keys)
		return 1;
	for (int i = 0; i < nkeys; i++)
		if (parse_key(keys[i], &kl.keys[i])) {
			free(kl.keys);
			return 2;
		}
	if (env_open(&e, o, OP_GET)) {
		env_close(&e);
		free(kl.keys);
		return 1;
	}
	t.next_op = get_next;
	t.call_done = get_done;
	t.user = &kl;
	int rc = run_one_thread(&e, &t, UINT64_MAX);
	fprintf(stderr, "bpfkv: %u key(s) in %" PRIu64 " call(s), mode %s%s\n", kl.n, t.completed,
		mode_names[o->mode],
		o->mode == MODE_NDP ? ": one device round trip per call"
		: o->mode == MODE_VHOST ? ": one device round trip per block" : "");
	thr_free(&t);
	env_close(&e);
	free(kl.keys);
	return rc ? rc : kl.ret;
}

struct range_run {
	uint64_t begin, end, flags;
	uint64_t first, expect; /* first key and number of keys the range holds */
	bool started;
	int ret;
	uint64_t calls;
};

static int range_next(struct thr *t, struct slot *s)
{
	struct range_run *r = t->user;
	if (r->started)
		return 0;
	r->started = true;
	set_range(s, r->begin, r->end, r->flags);
	s->want_next = r->first;
	s->got = 0;
	return 1;
}

/* Checks one call's pairs: consecutive keys from want_next, right values. */
static int check_pairs(struct thr *t, struct slot *s)
{
	for (unsigned i = 0; i < s->s.r.n && i < BPFKV_BATCH_MAX; i++) {
		const struct bpfkv_pair *p = &s->s.r.pair[i];
		if (p->key != s->want_next)
			return fail(t, -EIO, "range: key %llu where %" PRIu64 " was due", p->key, s->want_next);
		if (!value_ok(p->key, p->value))
			return fail(t, -EIO, "range: key %llu: wrong value read", p->key);
		s->want_next++;
		s->got++;
	}
	return 0;
}

static int range_done(struct thr *t, struct slot *s, bool last)
{
	struct range_run *r = t->user;
	r->calls++;
	if (!(r->flags & BPFKV_RANGE_SUM)) {
		int rc = check_pairs(t, s);
		if (rc)
			return rc;
		for (unsigned i = 0; i < s->s.r.n && i < BPFKV_BATCH_MAX; i++) {
			char buf[VALUE_SIZE];
			printf("%llu %s\n", s->s.r.pair[i].key, trimmed(s->s.r.pair[i].value, buf));
		}
		if (last && s->got != r->expect)
			return fail(t, -EIO, "range: %" PRIu64 " keys returned, %" PRIu64 " expected", s->got,
				    r->expect);
		return 0;
	}
	if (!last)
		return 0;
	const struct bpfkv_range_scratch *q = &s->s.r;
	printf("count %llu sum_keys %llu sum_values %llu\n", q->count, q->sum_keys, q->sum_values);
	uint64_t want = r->expect ? r->expect * r->first + r->expect * (r->expect - 1) / 2 : 0;
	if (q->count != r->expect || q->sum_keys != want || q->sum_values != q->sum_keys)
		return fail(t, -EIO, "range: sum of %llu keys is %llu (values %llu); expected %" PRIu64 " keys summing to %" PRIu64,
			    q->count, q->sum_keys, q->sum_values, r->expect, want);
	return 0;
}

static void range_expect(uint64_t keys, struct range_run *r)
{
	bool bx = r->flags & BPFKV_RANGE_BEGIN_EXCL, ei = r->flags & BPFKV_RANGE_END_INCL;
	r->first = r->begin + (bx ? 1 : 0);
	uint64_t last_excl = ei ? (r->end >= keys ? keys : r->end + 1) : (r->end > keys ? keys : r->end);
	if (bx && r->begin == UINT64_MAX)
		r->expect = 0;
	else
		r->expect = r->first < last_excl ? last_excl - r->first : 0;
}

static int cmd_range(struct opts *o, int n, char **args)
{
	struct env e;
	struct thr t = {0};
	struct range_run r = {0};

	if (n != 2) {
		fprintf(stderr, "usage: bpfkv range --db FILE --levels L [--mode M --uri URI] BEGIN END [--sum]\n");
		return 2;
	}
	if (parse_key(args[0], &r.begin) || parse_key(args[1], &r.end))
		return 2;
	r.flags = (o->sum ? BPFKV_RANGE_SUM : 0) | (o->excl_begin ? BPFKV_RANGE_BEGIN_EXCL : 0) |
		  (o->excl_end ? 0 : BPFKV_RANGE_END_INCL);
	if (env_open(&e, o, OP_RANGE)) {
		env_close(&e);
		return 1;
	}
	range_expect(e.keys, &r);
	t.next_op = range_next;
	t.call_done = range_done;
	t.user = &r;
	int rc = run_one_thread(&e, &t, 1);
	if (!rc)
		fprintf(stderr, "bpfkv: %" PRIu64 " key(s) in %" PRIu64 " call(s), mode %s (every value checked)\n",
			r.expect, r.calls, mode_names[o->mode]);
	thr_free(&t);
	env_close(&e);
	return rc;
}

/* ---- bench ------------------------------------------------------------------------------ */

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int bench_next(struct thr *t, struct slot *s)
{
	struct env *e = t->e;
	uint64_t k = e->o->range;
	if (e->kind == OP_GET) {
		s->key = xorshift(&t->rng) % e->keys;
		set_get(s, &s->key, 1);
		return 1;
	}
	s->key = xorshift(&t->rng) % (e->keys - k + 1);
	set_range(s, s->key, s->key + k - 1,
		  BPFKV_RANGE_END_INCL | (e->o->sum ? BPFKV_RANGE_SUM : 0));
	s->want_next = s->key;
	s->got = 0;
	return 1;
}

static int bench_done(struct thr *t, struct slot *s, bool last)
{
	struct env *e = t->e;
	if (e->kind == OP_GET) {
		const struct bpfkv_get_entry *en = &s->s.g.e[0];
		if (en->key != s->key || !en->found || !value_ok(s->key, en->value))
			return fail(t, -EIO, "key %" PRIu64 ": %s", s->key,
				    en->found ? "wrong value read" : "not found");
	} else if (!e->o->sum) {
		int rc = check_pairs(t, s);
		if (rc)
			return rc;
		if (last && s->got != e->o->range)
			return fail(t, -EIO, "range at %" PRIu64 ": %" PRIu64 " keys returned, %" PRIu64 " expected",
				    s->key, s->got, e->o->range);
	} else if (last) {
		const struct bpfkv_range_scratch *q = &s->s.r;
		uint64_t k = e->o->range, want = k * s->key + k * (k - 1) / 2;
		if (q->count != k || q->sum_keys != want || q->sum_values != want)
			return fail(t, -EIO, "range sum at %" PRIu64 ": %llu keys summing to %llu (values %llu), expected %" PRIu64,
				    s->key, q->count, q->sum_keys, q->sum_values, want);
	}
	if (last)
		t->lat[t->completed] = now_us() - s->t0; /* end_call counts it next */
	return 0;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* utime + stime of every thread of pid, in seconds; < 0 when unreadable. */
static double proc_cpu_s(int pid)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	unsigned long long ut, st;
	/* after ") ": state(3) ... utime is field 14, stime 15 */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int cmd_bench(struct opts *o)
{
	struct env e;
	struct thr th[MAX_THREADS];
	pthread_t tid[MAX_THREADS];
	struct rusage r0, r1;
	int ret = 0;

	if (o->range && o->range > ipow(BPFKV_FANOUT, o->levels)) {
		fprintf(stderr, "bpfkv: --range %" PRIu64 " is more than the %" PRIu64 " keys of the database\n",
			o->range, ipow(BPFKV_FANOUT, o->levels));
		return 2;
	}
	if (env_open(&e, o, o->range ? OP_RANGE : OP_GET)) {
		env_close(&e);
		return 1;
	}
	memset(th, 0, sizeof(th));
	for (unsigned i = 0; i < o->threads; i++) {
		struct thr *t = &th[i];
		if (thr_setup(t, &e, i, o->qd)) {
			ret = 1;
			goto out;
		}
		t->todo = o->ops / o->threads + (i < o->ops % o->threads ? 1 : 0);
		t->lat = malloc((t->todo + 1) * sizeof(double));
		if (!t->lat) {
			ret = 1;
			goto out;
		}
		t->next_op = bench_next;
		t->call_done = bench_done;
	}
	double cpu_b0 = o->backend_pid ? proc_cpu_s(o->backend_pid) : -1;
	if (o->backend_pid && cpu_b0 < 0) {
		fprintf(stderr, "bpfkv: cannot read /proc/%d/stat\n", o->backend_pid);
		ret = 1;
		goto out;
	}
	getrusage(RUSAGE_SELF, &r0);
	double t0 = now_us();
	for (unsigned i = 0; o->seconds && i < o->threads; i++)
		th[i].deadline_us = t0 + (double)o->seconds * 1e6;
	unsigned started = 0;
	if (o->threads == 1) {
		thr_main(&th[0]);
	} else {
		for (; started < o->threads; started++)
			if (pthread_create(&tid[started], NULL, thr_main, &th[started])) {
				fprintf(stderr, "bpfkv: cannot start threads\n");
				ret = 1;
				break;
			}
		for (unsigned i = 0; i < started; i++)
			pthread_join(tid[i], NULL);
	}
	double wall = (now_us() - t0) / 1e6;
	getrusage(RUSAGE_SELF, &r1);
	double cpu_b1 = o->backend_pid ? proc_cpu_s(o->backend_pid) : -1;
	for (unsigned i = 0; i < o->threads; i++)
		if (th[i].failed) {
			fprintf(stderr, "bpfkv bench: thread %u: %s\n", i, th[i].errmsg);
			ret = 1;
		}
	if (ret)
		goto out;
	double *lat = malloc(o->ops * sizeof(double)), sum = 0;
	uint64_t n = 0;
	if (!lat) {
		ret = 1;
		goto out;
	}
	for (unsigned i = 0; i < o->threads; i++)
		for (uint64_t j = 0; j < th[i].completed; j++) {
			lat[n++] = th[i].lat[j];
			sum += th[i].lat[j];
		}
	qsort(lat, n, sizeof(double), cmp_d);
	double cpu = tv_s(r1.ru_utime) - tv_s(r0.ru_utime) + tv_s(r1.ru_stime) - tv_s(r0.ru_stime);
	double kops = (double)n / 1000;
	char backend[32] = "";
	if (o->backend_pid)
		snprintf(backend, sizeof(backend), "%.6f", (cpu_b1 - cpu_b0) / kops);
	bool dev = o->mode >= MODE_VHOST;
	printf("mode,notify,levels,threads,qd,range,ops,ops_per_s,mean_us,p50_us,p99_us,p999_us,client_cpu_s_per_kop,backend_cpu_s_per_kop\n");
	printf("%s,%s,%u,%u,%u,%" PRIu64 ",%" PRIu64 ",%.0f,%.2f,%.2f,%.2f,%.2f,%.6f,%s\n",
	       mode_names[o->mode], dev ? (o->notify == RB_GUEST_NOTIFY_EVENT ? "event" : "poll") : "",
	       o->levels, o->threads, o->qd, o->range, n, (double)n / wall, sum / (double)n,
	       lat[n / 2], lat[(size_t)((double)n * 0.99)], lat[(size_t)((double)n * 0.999)],
	       cpu / kops, backend);
	fprintf(stderr,
		"bpfkv bench: %s%s%s, %u levels, %u thread(s), QD %u, %s: %.0f ops/s, mean %.1f us (every value checked)\n",
		mode_names[o->mode], dev ? "/" : "",
		dev ? (o->notify == RB_GUEST_NOTIFY_EVENT ? "event" : "poll") : "", o->levels, o->threads,
		o->qd, o->range ? "range queries" : "point lookups", (double)n / wall, sum / (double)n);
	free(lat);
out:
	for (unsigned i = 0; i < o->threads; i++)
		if (th[i].e)
			thr_free(&th[i]);
	env_close(&e);
	return ret;
}

/* ---- command line ------------------------------------------------------------------------- */

static int num_arg(const char *opt, const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (errno || *end || !*v || *v == '-' || x < lo || x > hi) {
		fprintf(stderr, "bpfkv: %s takes an integer in %" PRIu64 "..%" PRIu64 ", not '%s'\n", opt, lo,
			hi, v);
		return -1;
	}
	*out = x;
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = {.levels = 0, .mode = MODE_PREAD, .ops = 100000, .threads = 1, .qd = 1,
			 .xrp = true};
	char *rest[1024];
	int nrest = 0;
	uint64_t x;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *cmd = argv[1];
	rb_log_set_level(RB_LOG_WARN); /* the engine's load notes are not for this tool's users */
	if (strcmp(cmd, "create") && strcmp(cmd, "get") && strcmp(cmd, "range") && strcmp(cmd, "bench")) {
		fprintf(stderr, "bpfkv: unknown command '%s'\n", cmd);
		usage(stderr);
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes = !strcmp(a, "--db") || !strcmp(a, "--uri") || !strcmp(a, "--levels") ||
			     !strcmp(a, "--ops") || !strcmp(a, "--seconds") || !strcmp(a, "--mode") || !strcmp(a, "--notify") ||
			     !strcmp(a, "--threads") || !strcmp(a, "--qd") || !strcmp(a, "--range") ||
			     !strcmp(a, "--backend-pid") || !strcmp(a, "--prog");
		if (takes && !v) {
			fprintf(stderr, "bpfkv: %s needs a value\n", a);
			return 2;
		}
		if (takes)
			i++;
		if (!strcmp(a, "--db")) {
			o.db = v;
		} else if (!strcmp(a, "--uri")) {
			o.uri = v;
		} else if (!strcmp(a, "--levels")) {
			if (num_arg(a, v, 1, 7, &x))
				return 2;
			o.levels = (unsigned)x;
		} else if (!strcmp(a, "--seconds")) {
			if (num_arg(a, v, 1, 86400, &o.seconds))
				return 2;
		} else if (!strcmp(a, "--ops")) {
			if (num_arg(a, v, 1, 1000000000, &o.ops))
				return 2;
		} else if (!strcmp(a, "--threads")) {
			if (num_arg(a, v, 1, MAX_THREADS, &x))
				return 2;
			o.threads = (unsigned)x;
		} else if (!strcmp(a, "--qd")) {
			if (num_arg(a, v, 1, MAX_QD, &x))
				return 2;
			o.qd = (unsigned)x;
		} else if (!strcmp(a, "--range")) {
			if (num_arg(a, v, 0, 1000000, &o.range))
				return 2;
		} else if (!strcmp(a, "--backend-pid")) {
			if (num_arg(a, v, 1, 1u << 30, &x))
				return 2;
			o.backend_pid = (int)x;
		} else if (!strcmp(a, "--mode")) {
			unsigned m;
			for (m = 0; m < 5 && strcmp(v, mode_names[m]); m++)
				;
			if (m == 5) {
				fprintf(stderr, "bpfkv: mode '%s' is not pread, uring, local-ndp, vhost or ndp\n", v);
				return 2;
			}
			o.mode = (enum mode)m;
		} else if (!strcmp(a, "--notify")) {
			if (strcmp(v, "event") && strcmp(v, "poll")) {
				fprintf(stderr, "bpfkv: --notify takes event or poll, not '%s'\n", v);
				return 2;
			}
			o.notify = !strcmp(v, "event") ? RB_GUEST_NOTIFY_EVENT : RB_GUEST_NOTIFY_POLL;
			o.notify_set = true;
		} else if (!strcmp(a, "--prog")) {
			if (strcmp(v, "xrp") && strcmp(v, "cq")) {
				fprintf(stderr, "bpfkv: --prog takes xrp or cq, not '%s'\n", v);
				return 2;
			}
			o.xrp = !strcmp(v, "xrp");
		} else if (!strcmp(a, "--sum")) {
			o.sum = true;
		} else if (!strcmp(a, "--exclude-begin")) {
			o.excl_begin = true;
		} else if (!strcmp(a, "--exclude-end")) {
			o.excl_end = true;
		} else if (!strcmp(a, "--direct")) {
			o.direct = true;
		} else if (a[0] == '-' && a[1] == '-') {
			fprintf(stderr, "bpfkv: unknown option '%s'\n", a);
			return 2;
		} else if (nrest < 1024) {
			rest[nrest++] = argv[i];
		} else {
			fprintf(stderr, "bpfkv: too many arguments\n");
			return 2;
		}
	}
	if (!o.levels) {
		fprintf(stderr, "bpfkv: --levels is required\n");
		return 2;
	}
	if (!strcmp(cmd, "create")) {
		if (nrest != 1) {
			fprintf(stderr, "usage: bpfkv create FILE --levels L\n");
			return 2;
		}
		return cmd_create(rest[0], o.levels);
	}
	if (o.mode <= MODE_LOCAL_NDP && !o.db) {
		fprintf(stderr, "bpfkv: --db is required in mode %s\n", mode_names[o.mode]);
		return 2;
	}
	if (o.mode >= MODE_VHOST && !o.uri) {
		fprintf(stderr, "bpfkv: mode %s needs --uri (vhost-user:SOCKET, pci:BDF or kernel:/dev/virtio-ndp/DISK)\n",
			mode_names[o.mode]);
		return 2;
	}
	if (o.direct && o.mode >= MODE_VHOST) {
		fprintf(stderr, "bpfkv: --direct is for the local modes; the backend chooses its own caching\n");
		return 2;
	}
	if (o.notify_set && o.mode < MODE_VHOST) {
		fprintf(stderr, "bpfkv: --notify is for the device modes (vhost, ndp)\n");
		return 2;
	}
	if (!strcmp(cmd, "get")) {
		if (!nrest) {
			fprintf(stderr, "bpfkv get: no keys\n");
			return 2;
		}
		return cmd_get(&o, nrest, rest);
	}
	if (!strcmp(cmd, "range"))
		return cmd_range(&o, nrest, rest);
	if (nrest) {
		fprintf(stderr, "bpfkv bench: unexpected argument '%s'\n", rest[0]);
		return 2;
	}
	if (o.qd > 1 && o.mode == MODE_PREAD) {
		fprintf(stderr, "bpfkv: --qd > 1 needs an asynchronous mode (uring, local-ndp, vhost, ndp)\n");
		return 2;
	}
	if (o.sum && !o.range) {
		fprintf(stderr, "bpfkv: --sum goes with --range K\n");
		return 2;
	}
	if (o.ops < o.threads) {
		fprintf(stderr, "bpfkv: --ops must be at least --threads\n");
		return 2;
	}
	return cmd_bench(&o);
}
