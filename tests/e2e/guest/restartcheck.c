// SPDX-License-Identifier: MIT
// restartcheck: concurrent O_DIRECT writers of numbered, generation-stamped
// blocks, run inside the e2e test guest while the host kills and restarts
// the backend (tests/e2e/test_guest_restart.py).  Built with `gcc -static`.
//
//   restartcheck DEV CTRL_OFF WRITERS BASE LEN [MAX_SECONDS]
//
// Writer w (a process pinned to CPU w % ncpus, so every queue carries
// requests) owns [BASE + w*LEN, +LEN), cut into blocks of mixed sizes (the
// size list below, rotated per writer).  Generation g writes every block
// stamped (w, block, g) in an order shuffled per generation, then reads the
// whole region back and checks every sector carries generation g (so every
// acknowledged write survived whatever happened meanwhile), then reads the
// 512-byte control sector at CTRL_OFF: once the host wrote "STOP" there,
// the writer records {w, last generation, blocks, writes} in the sector at
// CTRL_OFF + 512 * (1 + w) and exits.  Any failed, short or mismatching
// I/O ends the writer with status 1 and a line saying what.
//
// Every 512-byte sector j of block k, generation g, of writer w holds
//   u64 0x5452545352425221, u32 w, u32 k, u32 g, u32 j, u64 block offset,
//   then bytes 32..511: (w*31 + k*7 + g*13 + j + i) & 0xff at byte i
// (tests/restart/stamp.py computes the same).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SECTOR 512u
#define MAGIC 0x5452545352425221ull
#define DONE_MAGIC 0x454e4f4453524252ull /* "RBRSDONE" */
#define MAX_BLOCK (128u * 1024)

static const uint32_t sizes[] = {4096, 1024, 65536, 8192, 512, 131072, 16384, 2048, 32768, 12288};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

struct block {
	uint64_t off;
	uint32_t len;
};

static void stamp(uint8_t *p, uint32_t w, uint32_t k, uint32_t g, uint64_t off, uint32_t len)
{
	for (uint32_t j = 0; j < len / SECTOR; j++) {
		uint8_t *s = p + (size_t)j * SECTOR;
		uint64_t magic = MAGIC;
		memcpy(s, &magic, 8);
		memcpy(s + 8, &w, 4);
		memcpy(s + 12, &k, 4);
		memcpy(s + 16, &g, 4);
		memcpy(s + 20, &j, 4);
		memcpy(s + 24, &off, 8);
		for (uint32_t i = 32; i < SECTOR; i++)
			s[i] = (uint8_t)(w * 31 + k * 7 + g * 13 + j + i);
	}
}

static uint64_t now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

static int writer(const char *dev, uint64_t ctrl, uint32_t w, uint64_t base, uint64_t len,
		  unsigned max_s)
{
	struct block *b = calloc(len / SECTOR, sizeof(*b));
	uint32_t *order = calloc(len / SECTOR, sizeof(*order));
	uint8_t *buf, *want;
	uint32_t n = 0, g = 0;
	uint64_t writes = 0, deadline = now_s() + max_s, rnd = 0x9e3779b97f4a7c15ull * (w + 1);
	int fd = open(dev, O_RDWR | O_DIRECT);

	if (fd < 0 || !b || !order || posix_memalign((void **)&buf, 4096, MAX_BLOCK) ||
	    posix_memalign((void **)&want, 4096, MAX_BLOCK)) {
		printf("restartcheck: writer %u: set-up: %s\n", w, strerror(errno));
		return 1;
	}
	for (uint64_t at = 0; n < len / SECTOR; n++) {
		uint32_t sz = sizes[(n + w * 3) % NSIZES];
		if (at + sz > len)
			break;
		b[n].off = base + at;
		b[n].len = sz;
		at += sz;
	}
	for (;;) {
		g++;
		for (uint32_t k = 0; k < n; k++)
			order[k] = k;
		for (uint32_t k = n; k > 1; k--) {
			rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
			uint32_t r = (uint32_t)(rnd >> 33) % k, t = order[k - 1];
			order[k - 1] = order[r];
			order[r] = t;
		}
		for (uint32_t i = 0; i < n; i++) {
			uint32_t k = order[i];
			stamp(buf, w, k, g, b[k].off, b[k].len);
			ssize_t r = pwrite(fd, buf, b[k].len, (off_t)b[k].off);
			if (r != (ssize_t)b[k].len) {
				printf("restartcheck: writer %u gen %u block %u: write of %u at %" PRIu64 ": %s\n",
				       w, g, k, b[k].len, b[k].off, r < 0 ? strerror(errno) : "short");
				return 1;
			}
			writes++;
		}
		for (uint32_t k = 0; k < n; k++) {
			ssize_t r = pread(fd, buf, b[k].len, (off_t)b[k].off);
			if (r != (ssize_t)b[k].len) {
				printf("restartcheck: writer %u gen %u block %u: read: %s\n", w, g, k,
				       r < 0 ? strerror(errno) : "short");
				return 1;
			}
			stamp(want, w, k, g, b[k].off, b[k].len);
			if (memcmp(buf, want, b[k].len)) {
				uint32_t got_g;
				memcpy(&got_g, buf + 16, 4);
				printf("restartcheck: writer %u gen %u block %u (%u bytes at %" PRIu64 "): acknowledged data lost (reads generation %u)\n",
				       w, g, k, b[k].len, b[k].off, got_g);
				return 1;
			}
		}
		if (pread(fd, buf, SECTOR, (off_t)ctrl) != SECTOR) {
			printf("restartcheck: writer %u: control read: %s\n", w, strerror(errno));
			return 1;
		}
		if (!memcmp(buf, "STOP", 4) || now_s() >= deadline)
			break;
	}
	uint64_t rec[4] = {DONE_MAGIC, ((uint64_t)g << 32) | w, n, writes};
	memset(buf, 0, SECTOR);
	memcpy(buf, rec, sizeof(rec));
	if (pwrite(fd, buf, SECTOR, (off_t)(ctrl + SECTOR * (1 + w))) != SECTOR) {
		printf("restartcheck: writer %u: done record: %s\n", w, strerror(errno));
		return 1;
	}
	printf("restartcheck: writer %u: %u generations of %u blocks, %" PRIu64 " writes%s\n", w, g, n,
	       writes, now_s() >= deadline ? " (stopped by its own deadline)" : "");
	return now_s() >= deadline ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: restartcheck DEV CTRL_OFF WRITERS BASE LEN [MAX_SECONDS]\n");
		return 2;
	}
	const char *dev = argv[1];
	uint64_t ctrl = strtoull(argv[2], NULL, 0), base = strtoull(argv[4], NULL, 0),
		 len = strtoull(argv[5], NULL, 0);
	unsigned nw = (unsigned)strtoul(argv[3], NULL, 0), max_s = argc > 6 ? (unsigned)atoi(argv[6]) : 300;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int failed = 0;

	if ((ctrl | base | len) % SECTOR || nw == 0 || nw > 64) {
		fprintf(stderr, "restartcheck: bad arguments\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (unsigned w = 0; w < nw; w++) {
		pid_t p = fork();
		if (p == 0) {
			cpu_set_t set;
			CPU_ZERO(&set);
			CPU_SET(w % (ncpu > 0 ? ncpu : 1), &set);
			sched_setaffinity(0, sizeof(set), &set);
			_exit(writer(dev, ctrl, w, base + (uint64_t)w * len, len, max_s));
		}
		if (p < 0) {
			perror("fork");
			return 1;
		}
	}
	for (unsigned w = 0; w < nw; w++) {
		int st;
		if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
			failed++;
	}
	printf("restartcheck: %u writers, %d failed\n", nw, failed);
	return failed ? 1 : 0;
}
