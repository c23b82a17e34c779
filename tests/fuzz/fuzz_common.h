/* SPDX-License-Identifier: MIT */
/*
 * What the libFuzzer targets of tests/fuzz/ share: a reader that turns the
 * fuzzer's bytes into numbers (missing bytes read as zero, so every input
 * means something), memory with PROT_NONE guard pages on both sides (an
 * access past a buffer faults even where ASan cannot see: mmap'd memory,
 * JIT code), a bug report that names the target, and the writing of seed
 * files.  Test code only: never linked into the daemon.
 */
#ifndef ROSEN_FUZZ_COMMON_H
#define ROSEN_FUZZ_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* ---- reading the input ------------------------------------------------------- */

struct fz {
	const uint8_t *d;
	size_t n, at;
};

static inline size_t fz_left(const struct fz *f)
{
	return f->at < f->n ? f->n - f->at : 0;
}

/* Copies len bytes (zeros past the end of the input). */
static inline void fz_bytes(struct fz *f, void *dst, size_t len)
{
	size_t have = fz_left(f) < len ? fz_left(f) : len;

	if (have)
		memcpy(dst, f->d + f->at, have);
	memset((uint8_t *)dst + have, 0, len - have);
	f->at += have;
}

static inline uint8_t fz_u8(struct fz *f)
{
	uint8_t v;

	fz_bytes(f, &v, 1);
	return v;
}

static inline uint16_t fz_u16(struct fz *f)
{
	uint16_t v;

	fz_bytes(f, &v, 2);
	return v;
}

static inline uint32_t fz_u32(struct fz *f)
{
	uint32_t v;

	fz_bytes(f, &v, 4);
	return v;
}

static inline uint64_t fz_u64(struct fz *f)
{
	uint64_t v;

	fz_bytes(f, &v, 8);
	return v;
}

/* ---- guarded memory ------------------------------------------------------------ */

/*
 * len bytes (len may be 0) with a PROT_NONE page right after them (`right`:
 * the buffer ends where the guard begins, so any byte past it faults) or
 * right before them (the buffer starts at the page after the guard), and a
 * guard on the other side too.  `align` (a power of two <= 4096) rounds
 * the right-aligned start down, leaving at most align - 1 bytes of slack.
 * Contents are zero.  Returns NULL when mmap fails.
 */
struct fz_guarded {
	uint8_t *p;     /* the buffer */
	size_t len;
	void *map;      /* the whole mapping, guards included */
	size_t map_len;
	uint8_t *body;  /* the accessible pages */
	size_t body_len;
};

static inline size_t fz_page(void)
{
	static size_t pg;

	if (!pg)
		pg = (size_t)sysconf(_SC_PAGESIZE);
	return pg;
}

static inline int fz_guard_alloc(struct fz_guarded *g, size_t len, bool right, size_t align)
{
	size_t pg = fz_page();
	size_t body = (len + pg - 1) / pg * pg;

	if (!body)
		body = pg;
	g->map_len = body + 2 * pg;
	g->map = mmap(NULL, g->map_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (g->map == MAP_FAILED) {
		g->map = NULL;
		return -1;
	}
	g->body = (uint8_t *)g->map + pg;
	g->body_len = body;
	if (mprotect(g->body, body, PROT_READ | PROT_WRITE)) {
		munmap(g->map, g->map_len);
		g->map = NULL;
		return -1;
	}
	g->len = len;
	if (right) {
		uintptr_t start = (uintptr_t)(g->body + body - len);
		start &= ~(uintptr_t)(align ? align - 1 : 0);
		g->p = (uint8_t *)start;
	} else {
		g->p = g->body;
	}
	return 0;
}

static inline void fz_guard_free(struct fz_guarded *g)
{
	if (g->map)
		munmap(g->map, g->map_len);
	memset(g, 0, sizeof(*g));
}

/* Whether [p, p + len) lies inside the guarded buffer's accessible pages. */
static inline bool fz_guard_holds(const struct fz_guarded *g, const void *p, size_t len)
{
	uintptr_t a = (uintptr_t)p, lo = (uintptr_t)g->body;

	return g->map && a >= lo && a - lo <= g->body_len && len <= g->body_len - (a - lo);
}

/* ---- reporting ------------------------------------------------------------------ */

/* A real bug: says so in a line tests/fuzz/run.sh shows, then aborts
 * (libFuzzer saves the input).  Never for malformed input. */
static inline void __attribute__((noreturn, format(printf, 2, 3)))
fz_bug(const char *target, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "\n%s: FUZZ BUG: ", target);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* ---- seeds ---------------------------------------------------------------------- */

static inline int fz_write_seed(const char *dir, const char *name, const void *p, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, len, f) != len) {
		fprintf(stderr, "fuzz: cannot write the seed %s\n", path);
		if (f)
			fclose(f);
		return 1;
	}
	fclose(f);
	return 0;
}

/* A whole file in memory (malloc'd), or NULL. */
static inline void *fz_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	void *p = NULL;
	long sz;

	*len = 0;
	if (!f)
		return NULL;
	if (!fseek(f, 0, SEEK_END) && (sz = ftell(f)) > 0 && !fseek(f, 0, SEEK_SET) &&
	    (p = malloc((size_t)sz))) {
		if (fread(p, 1, (size_t)sz, f) != (size_t)sz) {
			free(p);
			p = NULL;
		} else {
			*len = (size_t)sz;
		}
	}
	fclose(f);
	return p;
}

/* A growing byte buffer for building seeds. */
struct fz_buf {
	uint8_t *p;
	size_t len, cap;
};

static inline void fz_put(struct fz_buf *b, const void *p, size_t len)
{
	if (!len)
		return;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + len)
			cap *= 2;
		uint8_t *q = realloc(b->p, cap);
		if (!q)
			abort(); /* seed writing only: out of memory is not an input */
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, len);
	b->len += len;
}

#define FZ_PUT(b, type, v)                 \
	do {                               \
		type fz_v_ = (type)(v);    \
		fz_put((b), &fz_v_, sizeof(fz_v_)); \
	} while (0)

#endif
