/* SPDX-License-Identifier: MIT */
/*
 * LD_PRELOAD allocation-failure injector for tests (tests/fault/
 * test_memory_pressure.py): while the file named by RB_FAILALLOC_FILE
 * exists, malloc, calloc, realloc, aligned_alloc, posix_memalign and mmap
 * fail (NULL / MAP_FAILED, errno ENOMEM) with probability
 * RB_FAILALLOC_PCT percent.  So a test can start the daemon normally,
 * then turn memory pressure on and off at chosen moments.  Test code only:
 * never linked into anything, loaded by the test into the release daemon.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);

static _Thread_local int in_hook;
static atomic_uint rng = 12345;
static atomic_long checked_at; /* time (s) the file was last looked at */
static atomic_int active;

/* dlsym may allocate (calloc) before real_calloc is known: serve it from here. */
static char boot[4096];
static size_t boot_used;

static void resolve(void)
{
	if (real_malloc)
		return;
	in_hook++;
	real_calloc = dlsym(RTLD_NEXT, "calloc");
	real_malloc = dlsym(RTLD_NEXT, "malloc");
	real_realloc = dlsym(RTLD_NEXT, "realloc");
	real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
	real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
	real_mmap = dlsym(RTLD_NEXT, "mmap");
	in_hook--;
}

static int fail_now(void)
{
	const char *file, *pct;
	struct stat st;
	struct timespec ts;

	if (in_hook)
		return 0;
	in_hook++;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	/* Look at the file at most every 10 ms (a stat per allocation would
	 * change the daemon's timing more than the failures do). */
	long now = ts.tv_sec * 100 + ts.tv_nsec / 10000000;
	if (atomic_exchange(&checked_at, now) != now) {
		file = getenv("RB_FAILALLOC_FILE");
		atomic_store(&active, file && stat(file, &st) == 0);
	}
	int fail = 0;
	if (atomic_load(&active) && (pct = getenv("RB_FAILALLOC_PCT"))) {
		unsigned x = atomic_fetch_add(&rng, 2654435761u) * 2246822519u;
		fail = (int)((x >> 8) % 100) < atoi(pct);
	}
	in_hook--;
	return fail;
}

void *malloc(size_t n)
{
	resolve();
	if (!real_malloc) {
		void *p = boot + boot_used;
		boot_used += (n + 15) & ~(size_t)15;
		return boot_used <= sizeof(boot) ? p : NULL;
	}
	if (fail_now()) {
		errno = ENOMEM;
		return NULL;
	}
	return real_malloc(n);
}

void *calloc(size_t a, size_t b)
{
	if (!real_calloc && !in_hook)
		resolve();
	if (!real_calloc) {
		/* dlsym's own allocations, before the real one is known */
		size_t n = a * b;
		void *p = boot + boot_used;
		boot_used += (n + 15) & ~(size_t)15;
		if (boot_used > sizeof(boot))
			return NULL;
		memset(p, 0, n);
		return p;
	}
	if (fail_now()) {
		errno = ENOMEM;
		return NULL;
	}
	return real_calloc(a, b);
}

void free(void *p)
{
	static void (*real_free)(void *);
	if ((char *)p >= boot && (char *)p < boot + sizeof(boot))
		return;
	if (!real_free)
		real_free = dlsym(RTLD_NEXT, "free");
	real_free(p);
}

void *realloc(void *p, size_t n)
{
	resolve();
	if (fail_now()) {
		errno = ENOMEM;
		return NULL;
	}
	return real_realloc(p, n);
}

void *aligned_alloc(size_t al, size_t n)
{
	resolve();
	if (fail_now()) {
		errno = ENOMEM;
		return NULL;
	}
	return real_aligned_alloc(al, n);
}

int posix_memalign(void **out, size_t al, size_t n)
{
	resolve();
	if (fail_now())
		return ENOMEM;
	return real_posix_memalign(out, al, n);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	resolve();
	if (!(flags & MAP_FIXED) && fail_now()) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	return real_mmap(addr, len, prot, flags, fd, off);
}
