/* SPDX-License-Identifier: MIT */
/*
 * A very small unit-test harness: TEST(name) { ... } registers a test,
 * CHECK*() record failures without stopping the test, REQUIRE*() stop it.
 * Each test binary ends with "N passed, N failed" (tests/run.sh adds them up).
 * Include it from exactly one .c file per test binary.
 */
#ifndef ROSEN_TEST_HARNESS_H
#define ROSEN_TEST_HARNESS_H

#include <inttypes.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rt_test {
	const char *name;
	void (*fn)(void);
};

#define RT_MAX_TESTS 1024
static struct rt_test rt_tests[RT_MAX_TESTS];
static int rt_n_tests;
static int rt_cur_failed;
static jmp_buf rt_abort;

static inline void rt_register(const char *name, void (*fn)(void))
{
	if (rt_n_tests == RT_MAX_TESTS) {
		fprintf(stderr, "harness: too many tests\n");
		exit(2);
	}
	rt_tests[rt_n_tests].name = name;
	rt_tests[rt_n_tests].fn = fn;
	rt_n_tests++;
}

#define TEST(name)                                                          \
	static void rt_test_##name(void);                                   \
	__attribute__((constructor)) static void rt_reg_##name(void)        \
	{                                                                   \
		rt_register(#name, rt_test_##name);                         \
	}                                                                   \
	static void rt_test_##name(void)

#define RT_FAIL_AT(...)                                                     \
	do {                                                                \
		fprintf(stderr, "    %s:%d: ", __FILE__, __LINE__);         \
		fprintf(stderr, __VA_ARGS__);                               \
		fprintf(stderr, "\n");                                      \
		rt_cur_failed = 1;                                          \
	} while (0)

#define CHECK(cond)                                                         \
	do {                                                                \
		if (!(cond))                                                \
			RT_FAIL_AT("check failed: %s", #cond);              \
	} while (0)

#define REQUIRE(cond)                                                       \
	do {                                                                \
		if (!(cond)) {                                              \
			RT_FAIL_AT("requirement failed: %s", #cond);        \
			longjmp(rt_abort, 1);                               \
		}                                                           \
	} while (0)

#define CHECK_EQ_U64(a, b)                                                  \
	do {                                                                \
		uint64_t rt_a = (uint64_t)(a), rt_b = (uint64_t)(b);        \
		if (rt_a != rt_b)                                           \
			RT_FAIL_AT("%s == %s: 0x%" PRIx64 " != 0x%" PRIx64, \
				   #a, #b, rt_a, rt_b);                     \
	} while (0)

#define CHECK_STR_CONTAINS(hay, needle)                                     \
	do {                                                                \
		const char *rt_h = (hay), *rt_n = (needle);                 \
		if (!rt_h || !strstr(rt_h, rt_n))                           \
			RT_FAIL_AT("\"%s\" does not contain \"%s\"",        \
				   rt_h ? rt_h : "(null)", rt_n);           \
	} while (0)

/* xorshift64: a fixed seed per test binary keeps runs reproducible. */
static inline uint64_t rt_xorshift(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

/* A whole file (a test object, an image) as a malloc'd buffer; the test
 * stops (REQUIRE) when it cannot be read. */
struct rt_blob {
	unsigned char *p;
	size_t len;
};

static inline struct rt_blob rt_read_file(const char *path)
{
	struct rt_blob b = {0};
	FILE *f = fopen(path, "rb");
	long n;

	if (!f)
		fprintf(stderr, "    cannot open %s\n", path);
	REQUIRE(f);
	REQUIRE(fseek(f, 0, SEEK_END) == 0);
	n = ftell(f);
	REQUIRE(n > 0);
	rewind(f);
	b.len = (size_t)n;
	b.p = malloc(b.len);
	REQUIRE(b.p);
	REQUIRE(fread(b.p, 1, b.len, f) == b.len);
	fclose(f);
	return b;
}

/* Runs every registered test whose name contains argv[1] (if given). */
static inline int rt_main(int argc, char **argv)
{
	/* volatile: they live across the setjmp/longjmp of REQUIRE. */
	volatile int passed = 0, failed = 0;
	const char *filter = argc > 1 ? argv[1] : NULL;

	for (volatile int i = 0; i < rt_n_tests; i++) {
		if (filter && !strstr(rt_tests[i].name, filter))
			continue;
		rt_cur_failed = 0;
		if (setjmp(rt_abort) == 0)
			rt_tests[i].fn();
		if (rt_cur_failed) {
			printf("FAIL %s\n", rt_tests[i].name);
			failed++;
		} else {
			printf("PASS %s\n", rt_tests[i].name);
			passed++;
		}
		fflush(stdout);
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

#define TEST_MAIN()                                                         \
	int main(int argc, char **argv) { return rt_main(argc, argv); }

#endif
