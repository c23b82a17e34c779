// SPDX-License-Identifier: MIT
/*
 * vndp_check: exercises /dev/virtio-ndp/<disk> inside the test guest.
 * Built with gcc -static -I include -I kernel/virtio_ndp.
 *
 *   vndp_check plain DEV          INFO, DMA, SUBMIT/REAP plain I/O, errors
 *   vndp_check ndp DEV OBJ        the same, then LOAD/READ_ND/WRITE_ND/REG_MEM
 *   vndp_check busy DEV BLKDEV    raw writes refused while BLKDEV is claimed
 *   vndp_check hold DEV SECONDS   keeps DEV open (for the rmmod check)
 *   vndp_check ro DEV             a read-only disk: INFO says so, WRITE -EROFS
 *   vndp_check files DEV MNT OBJ  registered files on the ext4 mounted at MNT
 *                                 from DEV's disk: refusals, keys, READ_ND and
 *                                 WRITE_ND at file offsets, holes, EOF, page
 *                                 cache coherence, truncate/punch races
 *   vndp_check unbind DEV OBJ     the disk unbound (and bound again) under an
 *                                 open file with requests in flight, a
 *                                 mapping kept by a child, a LOAD stuck in
 *                                 a user fault, the device's tables full
 *
 * Prints "ROSEN-E2E-CHECK: PASS|FAIL name" per check; exits 1 if any failed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <linux/userfaultfd.h>

#include <rosen/virtio_ndp.h>
#include "uapi/virtio_ndp_dev.h"

static int failed;

static void check(int ok, const char *name, const char *fmt, ...)
{
	va_list ap;

	printf("ROSEN-E2E-CHECK: %s %s", ok ? "PASS" : "FAIL", name);
	if (!ok && fmt) {
		printf(": ");
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
	}
	printf("\n");
	fflush(stdout);
	failed += !ok;
}

/* An ioctl's result as 0 or -errno. */
static int xioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

static struct vndp_info info;
static uint8_t *dma;
static uint64_t dma_len;

static int submit(int fd, struct vndp_req *r, unsigned int nr, unsigned int *done)
{
	struct vndp_submit s = { .reqs_ptr = (uintptr_t)r, .nr = nr };
	int rc = xioctl(fd, VNDP_IOC_SUBMIT, &s);

	if (done)
		*done = s.done;
	return rc;
}

static int reap(int fd, struct vndp_cpl *c, unsigned int max, unsigned int min,
		int tmo, unsigned int *got)
{
	struct vndp_reap r = { .cpls_ptr = (uintptr_t)c, .max = max, .min = min,
			       .timeout_ms = tmo };
	int rc = xioctl(fd, VNDP_IOC_REAP, &r);

	*got = r.got;
	return rc;
}

/* One request, submitted and reaped. */
static int run1(int fd, struct vndp_req *r, struct vndp_cpl *c)
{
	unsigned int got;
	int rc = submit(fd, r, 1, NULL);

	if (rc)
		return rc;
	rc = reap(fd, c, 1, 1, 10000, &got);
	if (rc)
		return rc;
	return got == 1 ? 0 : -EPROTO;
}

static void fill(uint8_t *p, size_t n, unsigned int seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

static struct vndp_req rw(uint32_t op, uint64_t off, uint32_t len, uint64_t data_off)
{
	struct vndp_req r = { .op = op, .offset = off, .len = len, .data_off = data_off,
			      .user_data = off ^ op };
	return r;
}

static int open_dev(const char *dev, int flags)
{
	int fd = open(dev, flags);

	if (fd < 0) {
		printf("cannot open %s: %s\n", dev, strerror(errno));
		exit(1);
	}
	return fd;
}

static void plain_checks(const char *dev, int fd)
{
	struct vndp_dma_alloc da = { .len = 8 << 20 };
	struct vndp_cpl c[VNDP_MAX_BATCH];
	struct vndp_req r[VNDP_MAX_BATCH + 1];
	unsigned int done, got, i;
	struct pollfd pfd;
	int rc, ro;

	rc = xioctl(fd, VNDP_IOC_INFO, &info);
	check(rc == 0 && info.uapi_version == VNDP_UAPI_VERSION && info.capacity_bytes &&
	      info.block_size >= 512 && info.num_queues >= 1 && info.max_io_bytes >= 4096,
	      "info", "rc %d", rc);
	printf("# %s: disk %s, %llu bytes, bs %u, %u queues, ro %u, ndp %u (v%u, types 0x%x, elf %u, data %u), chunk %u, io max %u, features 0x%llx\n",
	       dev, info.disk, (unsigned long long)info.capacity_bytes, info.block_size,
	       info.num_queues, info.readonly, info.ndp, info.ndp_version, info.prog_types,
	       info.max_elf_bytes, info.max_data, info.dma_chunk_bytes, info.max_io_bytes,
	       (unsigned long long)info.features);

	check(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED,
	      "mmap_before_alloc", NULL);
	rc = xioctl(fd, VNDP_IOC_DMA_ALLOC, &da);
	check(rc == 0 && da.len >= (8u << 20), "dma_alloc", "rc %d len %llu", rc,
	      (unsigned long long)da.len);
	dma_len = da.len;
	rc = xioctl(fd, VNDP_IOC_DMA_ALLOC, &da);
	check(rc == -EBUSY, "dma_alloc_twice_ebusy", "rc %d", rc);
	da.len = (uint64_t)VNDP_DMA_MAX + 1;
	check(xioctl(fd, VNDP_IOC_DMA_ALLOC, &da) == -E2BIG, "dma_alloc_too_big_e2big", NULL);
	dma = mmap(NULL, dma_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	check(dma != MAP_FAILED, "mmap", "%s", strerror(errno));
	if (dma == MAP_FAILED)
		exit(1);
	check(mmap(NULL, dma_len + 4096, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED,
	      "mmap_too_long", NULL);
	check(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0) == MAP_FAILED,
	      "mmap_private_refused", NULL);

	/* One write crossing the 4 MiB chunk boundary, read back elsewhere. */
	fill(dma + (4 << 20) - 32768, 65536, 1);
	r[0] = rw(VNDP_OP_WRITE, 1 << 20, 65536, (4 << 20) - 32768);
	rc = run1(fd, r, c);
	check(rc == 0 && c[0].error == 0 && c[0].bytes == 65536 &&
	      c[0].user_data == r[0].user_data, "write", "rc %d error %d bytes %llu", rc,
	      c[0].error, (unsigned long long)c[0].bytes);
	memset(dma, 0, 65536);
	r[0] = rw(VNDP_OP_READ, 1 << 20, 65536, 0);
	rc = run1(fd, r, c);
	check(rc == 0 && c[0].error == 0 && !memcmp(dma, dma + (4 << 20) - 32768, 65536),
	      "read_back", "rc %d error %d", rc, c[0].error);

	/* A batch of 64 4 KiB writes, then 64 reads, reaped in pieces. */
	for (i = 0; i < VNDP_MAX_BATCH; i++) {
		fill(dma + (1 << 20) + i * 4096, 4096, 100 + i);
		r[i] = rw(VNDP_OP_WRITE, (2 << 20) + i * 4096, 4096, (1 << 20) + i * 4096);
		r[i].user_data = i;
	}
	rc = submit(fd, r, VNDP_MAX_BATCH, &done);
	check(rc == 0 && done == VNDP_MAX_BATCH, "batch_submit", "rc %d done %u", rc, done);
	pfd.fd = fd;
	pfd.events = POLLIN;
	rc = poll(&pfd, 1, 10000);
	check(rc == 1 && (pfd.revents & POLLIN), "poll_pollin", "rc %d", rc);
	unsigned int total = 0, bad = 0;

	while (total < VNDP_MAX_BATCH) {
		rc = reap(fd, c, 10, 1, 10000, &got);
		if (rc)
			break;
		for (i = 0; i < got; i++)
			bad += c[i].error != 0 || c[i].bytes != 4096;
		total += got;
	}
	check(rc == 0 && total == VNDP_MAX_BATCH && !bad, "batch_reap", "rc %d total %u bad %u",
	      rc, total, bad);
	for (i = 0; i < VNDP_MAX_BATCH; i++)
		r[i] = rw(VNDP_OP_READ, (2 << 20) + i * 4096, 4096, (3 << 20) + i * 4096);
	rc = submit(fd, r, VNDP_MAX_BATCH, &done);
	rc = rc ? rc : reap(fd, c, VNDP_MAX_BATCH, VNDP_MAX_BATCH, 10000, &got);
	check(rc == 0 && got == VNDP_MAX_BATCH &&
	      !memcmp(dma + (1 << 20), dma + (3 << 20), VNDP_MAX_BATCH * 4096),
	      "batch_read_back", "rc %d got %u", rc, got);
	r[0] = (struct vndp_req){ .op = VNDP_OP_FLUSH };
	rc = run1(fd, r, c);
	check(rc == 0 && c[0].error == 0, "flush", "rc %d error %d", rc, c[0].error);

	/* Every argument error, each naming the bad request. */
	r[0] = rw(VNDP_OP_READ, 0, 4096, 0);
	r[1] = rw(VNDP_OP_READ, 100, 4096, 0);
	check(submit(fd, r, 2, &done) == -EINVAL && done == 1, "misaligned_einval", NULL);
	r[1] = rw(VNDP_OP_READ, info.capacity_bytes, 4096, 0);
	check(submit(fd, r, 2, &done) == -EINVAL && done == 1, "past_end_einval", NULL);
	r[1] = rw(VNDP_OP_READ, 0, 4096, dma_len - 2048);
	check(submit(fd, r, 2, &done) == -EINVAL, "buffer_outside_dma_einval", NULL);
	r[1] = rw(99, 0, 4096, 0);
	check(submit(fd, r, 2, &done) == -EINVAL, "bad_op_einval", NULL);
	r[1] = rw(VNDP_OP_READ, 0, 4096, 0);
	r[1].flags = 1u << 7;
	check(submit(fd, r, 2, &done) == -EINVAL, "unknown_flag_einval", NULL);
	r[1].flags = VNDP_REQ_F_FILE;
	check(submit(fd, r, 2, &done) == -EINVAL, "file_flag_on_read_einval", NULL);
	r[1].flags = 0;
	r[1].file_key = 1;
	check(submit(fd, r, 2, &done) == -EINVAL, "file_key_without_flag_einval", NULL);
	r[1].file_key = 0;
	r[1].flags = 0;
	r[1].reserved[2] = 1;
	check(submit(fd, r, 2, &done) == -EINVAL, "reserved_einval", NULL);
	r[1] = rw(VNDP_OP_READ, 0, info.max_io_bytes + 4096, 0);
	check(submit(fd, r, 2, &done) == -E2BIG, "too_long_e2big", NULL);
	check(submit(fd, r, VNDP_MAX_BATCH + 1, &done) == -E2BIG, "batch_e2big", NULL);
	check(submit(fd, r, 0, &done) == -EINVAL, "batch_zero_einval", NULL);
	{
		struct vndp_submit s = { .reqs_ptr = 8, .nr = 1 };

		check(xioctl(fd, VNDP_IOC_SUBMIT, &s) == -EFAULT, "bad_pointer_efault", NULL);
		check(xioctl(fd, VNDP_IOC_SUBMIT, (void *)8) == -EFAULT, "bad_arg_efault", NULL);
	}
	check(reap(fd, c, 4, 1, 10, &got) == -EINVAL, "reap_nothing_outstanding_einval", NULL);
	r[0] = rw(VNDP_OP_READ, 0, 4096, 0);
	rc = submit(fd, r, 1, NULL);
	rc = rc ? rc : reap(fd, c, 1, 1, 10000, &got);
	{
		struct vndp_reap rp = { .cpls_ptr = 8, .max = 1 };

		r[0] = rw(VNDP_OP_READ, 0, 4096, 0);
		submit(fd, r, 1, NULL);
		usleep(200000);
		check(xioctl(fd, VNDP_IOC_REAP, &rp) == -EFAULT, "reap_efault", NULL);
		rc = reap(fd, c, 1, 1, 10000, &got);
		check(rc == 0 && got == 1, "reap_after_efault_keeps_cpl", "rc %d", rc);
	}
	check(xioctl(fd, 0x1234, NULL) == -ENOTTY, "bad_ioctl_enotty", NULL);

	/* A read-only open can read but not write. */
	ro = open_dev(dev, O_RDONLY);
	da.len = 4096;
	rc = xioctl(ro, VNDP_IOC_DMA_ALLOC, &da);
	r[0] = rw(VNDP_OP_WRITE, 0, 4096, 0);
	check(rc == 0 && submit(ro, r, 1, &done) == -EBADF, "write_readonly_open_ebadf", NULL);
	r[0] = rw(VNDP_OP_READ, 0, 4096, 0);
	rc = run1(ro, r, c);
	check(rc == 0 && c[0].error == 0, "read_readonly_open", "rc %d", rc);
	{
		/* A shared read-only mapping of a read-only open: zeroed pages
		 * (no writable one: the file is not open for writing).
		 */
		uint8_t *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, ro, 0);
		int zero = p != MAP_FAILED;

		for (i = 0; zero && i < 4096; i++)
			zero = p[i] == 0;
		check(p != MAP_FAILED && zero, "mmap_readonly_open_zeroed", "%s",
		      p == MAP_FAILED ? strerror(errno) : "not zeroed");
		if (p != MAP_FAILED)
			munmap(p, 4096);
		check(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0) == MAP_FAILED &&
		      errno == EACCES, "mmap_readonly_open_no_write", "%s", strerror(errno));
	}
	/* Closed with a request in flight: release waits for it. */
	submit(ro, r, 1, NULL);
	close(ro);

	/* A write-only open can neither read nor map. */
	ro = open_dev(dev, O_WRONLY);
	da.len = 4096;
	rc = xioctl(ro, VNDP_IOC_DMA_ALLOC, &da);
	r[0] = rw(VNDP_OP_READ, 0, 4096, 0);
	rc = rc ? rc : submit(ro, r, 1, &done);
	check(rc == -EBADF, "read_writeonly_open_ebadf", "rc %d", rc);
	close(ro);
}

/*
 * The DMA area's mapping outlives close(), and a forked child shares it:
 * the pages stay until the last mapping goes, with a request in flight
 * when the parent closes.
 */
static void lifetime_checks(const char *dev)
{
	struct vndp_dma_alloc da = { .len = 65536 };
	struct vndp_req r = rw(VNDP_OP_READ, 0, 4096, 32768);
	int fd = open_dev(dev, O_RDWR), p[2], st = -1, rc;
	uint8_t *m;
	pid_t pid;
	char go;

	rc = xioctl(fd, VNDP_IOC_DMA_ALLOC, &da);
	m = rc ? MAP_FAILED : mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED || pipe(p)) {
		check(0, "mmap_outlives_close", "rc %d %s", rc, strerror(errno));
		close(fd);
		return;
	}
	fill(m, 4096, 3);
	pid = fork();
	if (pid == 0) {
		uint8_t want[4096];

		close(fd);
		close(p[1]);
		if (read(p[0], &go, 1) != 1)
			_exit(2);
		fill(want, 4096, 3);
		/* The parent wrote the second page after its close. */
		_exit(memcmp(m, want, 4096) || m[4096] != 0x5a ? 1 : 0);
	}
	close(p[0]);
	rc = submit(fd, &r, 1, NULL);
	close(fd);
	m[4096] = 0x5a;
	munmap(m, 65536);
	go = 1;
	if (write(p[1], &go, 1) != 1)
		st = -2;
	close(p[1]);
	if (pid > 0)
		waitpid(pid, &st, 0);
	check(rc == 0 && pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "mmap_outlives_close_and_fork", "rc %d status %d", rc, st);
}

static void *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	void *p;

	if (fd < 0 || fstat(fd, &st)) {
		printf("cannot read %s\n", path);
		exit(1);
	}
	p = malloc(st.st_size);
	if (read(fd, p, st.st_size) != st.st_size)
		exit(1);
	close(fd);
	*len = st.st_size;
	return p;
}

static int load(int fd, const void *elf, size_t len, const char *sec, uint32_t type,
		struct vndp_load *l, char *log, uint32_t log_len)
{
	memset(l, 0, sizeof(*l));
	l->elf_ptr = (uintptr_t)elf;
	l->elf_len = len;
	l->prog_type = type;
	snprintf(l->section, sizeof(l->section), "%s", sec);
	l->log_ptr = (uintptr_t)log;
	l->log_len = log_len;
	return xioctl(fd, VNDP_IOC_LOAD, l);
}

static struct vndp_req nd(uint32_t op, uint32_t handle, uint64_t off, uint32_t len)
{
	/* Buffers: data at 6 MiB, meta at 6 MiB + 8K, scratch at 6 MiB + 16K. */
	struct vndp_req r = { .op = op, .handle = handle, .offset = off, .len = len,
			      .data_off = 6 << 20, .data_len = 4096,
			      .meta_off = (6 << 20) + 8192, .meta_len = 64,
			      .scratch_off = (6 << 20) + 16384, .scratch_len = 64 };
	return r;
}

static void ndp_checks(const char *dev, int fd, const char *obj)
{
	static char log[8192];
	struct vndp_load l;
	struct vndp_unload u = { 0 };
	struct vndp_reg_mem m = { 0 };
	struct vndp_cpl c[4];
	struct vndp_req r[2];
	uint32_t peek, cq, forever, memcopy;
	size_t elf_len;
	void *elf = slurp(obj, &elf_len);
	int rc, fd2;

	check(info.ndp == 1 && info.ndp_version == RB_NDP_VERSION, "info_ndp", "ndp %u", info.ndp);
	rc = load(fd, "garbage!", 8, "x", RB_NDP_PROG_XRP, &l, log, sizeof(log));
	check(rc == 0 && l.status == RB_NDP_S_REJECTED && l.log_written > 1 &&
	      l.log_written <= sizeof(log) && log[l.log_written - 1] == 0,
	      "load_garbage_rejected_with_log", "rc %d status %u log %u", rc, l.status,
	      l.log_written);
	printf("# log: %s\n", log);
	check(load(fd, elf, elf_len, "xrp_peek", 99, &l, NULL, 0) == -EINVAL, "load_bad_type", NULL);
	check(load(fd, elf, info.max_elf_bytes + 1, "xrp_peek", RB_NDP_PROG_XRP, &l, NULL, 0) ==
	      -E2BIG, "load_too_big_e2big", NULL);
	check(load(fd, (void *)8, elf_len, "xrp_peek", RB_NDP_PROG_XRP, &l, NULL, 0) == -EFAULT,
	      "load_efault", NULL);
	rc = load(fd, elf, elf_len, "xrp_peek", RB_NDP_PROG_XRP, &l, log, sizeof(log));
	check(rc == 0 && l.status == RB_NDP_S_OK, "load_xrp_peek", "rc %d status %u %s", rc,
	      l.status, log);
	peek = l.handle;
	rc = load(fd, elf, elf_len, "cq_sum", RB_NDP_PROG_CQ, &l, NULL, 0);
	check(rc == 0 && l.status == RB_NDP_S_OK, "load_cq_sum", "rc %d status %u", rc, l.status);
	cq = l.handle;
	rc = load(fd, elf, elf_len, "xrp_forever", RB_NDP_PROG_XRP, &l, NULL, 0);
	forever = l.handle;
	rc = rc ? rc : load(fd, elf, elf_len, "cq_mem_copy", RB_NDP_PROG_CQ, &l, NULL, 0);
	memcopy = l.handle;
	check(rc == 0 && l.status == RB_NDP_S_OK, "load_more", "rc %d", rc);

	/* READ_ND with xrp_peek on the data written at 1 MiB. */
	memset(dma + (6 << 20), 0, 32768);
	r[0] = nd(VNDP_OP_READ_ND, peek, 1 << 20, 512);
	rc = run1(fd, r, c);
	check(rc == 0 && c[0].error == 0 && c[0].status == RB_NDP_S_OK && c[0].hops == 1 &&
	      !memcmp(dma + (6 << 20) + 16384, dma + (4 << 20) - 32768, 16) &&
	      !memcmp(dma + (6 << 20), dma + (4 << 20) - 32768, 512),
	      "read_nd_xrp_peek", "rc %d error %d status %u hops %u", rc, c[0].error,
	      c[0].status, c[0].hops);

	/* cq_sum over 4 blocks, stride 1: the sum of bytes of 2 KiB at 1 MiB. */
	uint32_t meta[2] = { 4, 1 };
	uint64_t sum = 0;

	for (int i = 0; i < 2048; i++)
		sum += dma[(4 << 20) - 32768 + i];
	memcpy(dma + (6 << 20) + 8192, meta, sizeof(meta));
	memset(dma + (6 << 20) + 16384, 0, 64);
	r[0] = nd(VNDP_OP_READ_ND, cq, 1 << 20, 512);
	rc = run1(fd, r, c);
	check(rc == 0 && c[0].status == RB_NDP_S_OK && c[0].hops >= 3 &&
	      *(uint64_t *)(dma + (6 << 20) + 16384) == sum, "read_nd_cq_sum",
	      "rc %d status %u hops %u sum %llu want %llu", rc, c[0].status, c[0].hops,
	      (unsigned long long)*(uint64_t *)(dma + (6 << 20) + 16384),
	      (unsigned long long)sum);
	r[0] = nd(VNDP_OP_READ_ND, forever, 0, 512);
	r[0].max_hops = 10;
	rc = run1(fd, r, c);
	check(rc == 0 && c[0].status == RB_NDP_S_HOP_LIMIT && c[0].hops == 10,
	      "read_nd_hop_limit", "rc %d status %u hops %u", rc, c[0].status, c[0].hops);
	{
		/*
		 * UNLOAD racing long READ_NDs of the same program (16 of
		 * them, so the device is still running some when UNLOAD
		 * comes): every request completes with a status, UNLOAD
		 * succeeds.
		 */
		struct vndp_req rr[16];
		struct vndp_cpl cc[16];
		struct timespec t0, t1;
		unsigned int got = 0, bad = 0, hops = 0;
		int urc, rrc;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (int i = 0; i < 16; i++) {
			rr[i] = nd(VNDP_OP_READ_ND, forever, 0, 512);
			rr[i].max_hops = info.max_hops;
		}
		rc = submit(fd, rr, 16, NULL);
		u.handle = forever;
		urc = xioctl(fd, VNDP_IOC_UNLOAD, &u);
		rrc = reap(fd, cc, 16, 16, 20000, &got);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		for (unsigned int i = 0; i < got; i++) {
			bad += cc[i].error != 0;
			hops += cc[i].hops;
		}
		printf("# 16 READ_ND raced by UNLOAD: last status %u, %u hops in all, %ld ms\n",
		       got ? cc[got - 1].status : 0, hops,
		       (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
		check(rc == 0 && urc == 0 && u.status == RB_NDP_S_OK && rrc == 0 && got == 16 && !bad,
		      "unload_racing_read_nd", "submit %d unload %d status %u reap %d got %u bad %u",
		      rc, urc, u.status, rrc, got, bad);
		r[0] = rr[0];
		check(submit(fd, r, 1, NULL) == -ENOENT, "read_nd_after_racing_unload_enoent", NULL);
	}
	{
		/* A file closed with a long READ_ND of its own program in
		 * flight: release waits for it, then unloads.
		 */
		struct vndp_dma_alloc da = { .len = 65536 };
		int fd3 = open_dev(dev, O_RDWR);

		rc = xioctl(fd3, VNDP_IOC_DMA_ALLOC, &da);
		rc = rc ? rc : load(fd3, elf, elf_len, "xrp_forever", RB_NDP_PROG_XRP, &l, NULL, 0);
		r[0] = nd(VNDP_OP_READ_ND, l.handle, 0, 512);
		r[0].data_off = 0;
		r[0].meta_off = 8192;
		r[0].scratch_off = 16384;
		r[0].max_hops = info.max_hops;
		rc = rc ? rc : submit(fd3, r, 1, NULL);
		close(fd3);
		check(rc == 0 && l.status == RB_NDP_S_OK, "close_with_read_nd_in_flight", "rc %d", rc);
	}
	r[0] = nd(VNDP_OP_READ_ND, peek, 0, 512);
	r[0].meta_len = info.max_meta + 1;
	check(submit(fd, r, 1, NULL) == -E2BIG, "read_nd_meta_e2big", NULL);
	r[0] = nd(VNDP_OP_READ_ND, 12345, 0, 512);
	check(submit(fd, r, 1, NULL) == -ENOENT, "read_nd_unowned_enoent", NULL);

	/* WRITE_ND through cq_sum (one block): the data lands on the disk. */
	fill(dma + (6 << 20), 512, 77);
	memcpy(dma + (5 << 20), dma + (6 << 20), 512);
	meta[0] = 1;
	memcpy(dma + (6 << 20) + 8192, meta, sizeof(meta));
	r[0] = nd(VNDP_OP_WRITE_ND, cq, 3 << 20, 512);
	r[0].data_len = 512;
	rc = run1(fd, r, c);
	check(rc == 0 && c[0].error == 0 && c[0].status == RB_NDP_S_OK, "write_nd",
	      "rc %d error %d status %u", rc, c[0].error, c[0].status);
	r[0] = rw(VNDP_OP_READ, 3 << 20, 4096, 7 << 20);
	rc = run1(fd, r, c);
	check(rc == 0 && !memcmp(dma + (7 << 20), dma + (5 << 20), 512), "write_nd_read_back",
	      "rc %d", rc);

	/* REG_MEM: cq_mem_copy copies 64 bytes read into the region. */
	m.dma_off = (4 << 20) + 65536;
	m.len = 4096;
	rc = xioctl(fd, VNDP_IOC_REG_MEM, &m);
	check(rc == 0 && m.status == RB_NDP_S_OK, "reg_mem", "rc %d status %u", rc, m.status);
	memset(dma + m.dma_off, 0, 4096);
	memcpy(dma + (6 << 20) + 8192, &m.key, 4);
	r[0] = nd(VNDP_OP_READ_ND, memcopy, 1 << 20, 512);
	rc = run1(fd, r, c);
	check(rc == 0 && c[0].status == RB_NDP_S_OK &&
	      !memcmp(dma + m.dma_off, dma + (4 << 20) - 32768, 64), "mem_copy_into_region",
	      "rc %d status %u retval %llu", rc, c[0].status, (unsigned long long)c[0].retval);
	{
		struct vndp_reg_mem m2 = { .dma_off = (4 << 20) - 4096, .len = 8192 };

		check(xioctl(fd, VNDP_IOC_REG_MEM, &m2) == -EINVAL, "reg_mem_across_chunks_einval",
		      NULL);
		m2.dma_off = dma_len;
		m2.len = 4096;
		check(xioctl(fd, VNDP_IOC_REG_MEM, &m2) == -EINVAL, "reg_mem_outside_einval", NULL);
	}

	/* Another open of the same disk owns none of it. */
	fd2 = open_dev(dev, O_RDWR);
	u.handle = peek;
	check(xioctl(fd2, VNDP_IOC_UNLOAD, &u) == -ENOENT, "unload_foreign_enoent", NULL);
	{
		struct vndp_reg_mem m3 = { .key = m.key };

		check(xioctl(fd2, VNDP_IOC_UNREG_MEM, &m3) == -ENOENT, "unreg_foreign_enoent", NULL);
	}
	close(fd2);

	rc = xioctl(fd, VNDP_IOC_UNREG_MEM, &m);
	check(rc == 0 && m.status == RB_NDP_S_OK, "unreg_mem", "rc %d status %u", rc, m.status);
	check(xioctl(fd, VNDP_IOC_UNREG_MEM, &m) == -ENOENT, "unreg_twice_enoent", NULL);
	u.handle = peek;
	rc = xioctl(fd, VNDP_IOC_UNLOAD, &u);
	check(rc == 0 && u.status == RB_NDP_S_OK, "unload", "rc %d status %u", rc, u.status);
	check(xioctl(fd, VNDP_IOC_UNLOAD, &u) == -ENOENT, "unload_twice_enoent", NULL);
	r[0] = nd(VNDP_OP_READ_ND, peek, 0, 512);
	check(submit(fd, r, 1, NULL) == -ENOENT, "read_nd_unloaded_enoent", NULL);
	/* Registered memory and programs left for release to clean up. */
	m.dma_off = 0;
	m.len = 4096;
	rc = xioctl(fd, VNDP_IOC_REG_MEM, &m);
	check(rc == 0 && m.status == RB_NDP_S_OK, "reg_mem_left_for_release", "rc %d", rc);
	free(elf);
}

static void no_ndp_checks(int fd)
{
	struct vndp_load l;
	struct vndp_reg_mem m = { .dma_off = 0, .len = 4096 };
	struct vndp_req r = nd(VNDP_OP_READ_ND, 1, 0, 512);

	check(info.ndp == 0, "info_no_ndp", NULL);
	check(load(fd, "x", 1, "x", RB_NDP_PROG_XRP, &l, NULL, 0) == -EOPNOTSUPP,
	      "load_eopnotsupp", NULL);
	check(xioctl(fd, VNDP_IOC_REG_MEM, &m) == -EOPNOTSUPP, "reg_mem_eopnotsupp", NULL);
	check(submit(fd, &r, 1, NULL) == -EOPNOTSUPP, "read_nd_eopnotsupp", NULL);
	r.flags = VNDP_REQ_F_FILE;
	r.file_key = 1;
	check(submit(fd, &r, 1, NULL) == -EOPNOTSUPP, "file_read_nd_eopnotsupp", NULL);
}

static void busy_checks(const char *dev, const char *blkdev)
{
	struct vndp_dma_alloc da = { .len = 4096 };
	struct vndp_req r = rw(VNDP_OP_WRITE, 0, 4096, 0);
	struct vndp_cpl c;
	unsigned int got;
	int fd = open_dev(dev, O_RDWR), bfd, rc;

	xioctl(fd, VNDP_IOC_DMA_ALLOC, &da);
	bfd = open(blkdev, O_RDONLY | O_EXCL); /* an exclusive claim, like a mount */
	if (bfd < 0 && errno == EBUSY)
		printf("# %s is claimed already (mounted?)\n", blkdev);
	else
		check(bfd >= 0, "exclusive_open", "%s", strerror(errno));
	check(submit(fd, &r, 1, NULL) == -EBUSY, "write_while_claimed_ebusy", NULL);
	r.op = VNDP_OP_READ;
	rc = run1(fd, &r, &c);
	check(rc == 0 && c.error == 0, "read_while_claimed", "rc %d", rc);
	if (bfd < 0) {
		close(fd);
		return;
	}
	close(bfd);
	r.op = VNDP_OP_WRITE;
	rc = submit(fd, &r, 1, NULL);
	rc = rc ? rc : reap(fd, &c, 1, 1, 10000, &got);
	check(rc == 0 && c.error == 0, "write_after_release", "rc %d", rc);
	close(fd);
}

/* ---- registered files ---------------------------------------------------- */

static long ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}


#define FSZ (256u << 10)

/* The byte at file offset off of every test file: never 0, never 0xee. */
static uint8_t pat(uint64_t off, unsigned int seed)
{
	uint8_t b = (uint8_t)(seed * 29 + off * 13 + (off >> 9) * 7);

	return b == 0 || b == 0xee ? 1 : b;
}

/* For results a racing thread does not care about. */
static void ignore(long v)
{
	(void)v;
}

static int make_file(const char *path, uint64_t size, unsigned int seed)
{
	static uint8_t buf[65536];
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);

	if (fd < 0)
		return -1;
	for (uint64_t o = 0; o < size; o += sizeof(buf)) {
		size_t n = size - o < sizeof(buf) ? size - o : sizeof(buf);

		for (size_t i = 0; i < n; i++)
			buf[i] = pat(o + i, seed);
		if (pwrite(fd, buf, n, o) != (ssize_t)n)
			return -1;
	}
	fsync(fd);
	return fd;
}

static int reg_file(int dev, int fd, struct vndp_reg_file *a)
{
	memset(a, 0, sizeof(*a));
	a->fd = fd;
	return xioctl(dev, VNDP_IOC_REG_FILE, a);
}

static int unreg_file(int dev, uint32_t key)
{
	struct vndp_reg_file a = { .key = key };

	return xioctl(dev, VNDP_IOC_UNREG_FILE, &a);
}

/* Buffers at 1 MiB (data), +8K (meta), +16K (scratch). */
static struct vndp_req fnd(uint32_t op, uint32_t handle, uint32_t key, uint64_t off,
			   uint32_t len)
{
	struct vndp_req r = nd(op, handle, off, len);

	r.flags = VNDP_REQ_F_FILE;
	r.file_key = key;
	r.data_off = 1 << 20;
	r.meta_off = (1 << 20) + 8192;
	r.scratch_off = (1 << 20) + 16384;
	return r;
}

#define FDATA (dma + (1 << 20))
#define FMETA (dma + (1 << 20) + 8192)
#define FSCRATCH (dma + (1 << 20) + 16384)

static int same_as_file(int fd, uint64_t off, const uint8_t *p, size_t n)
{
	uint8_t buf[4096];

	return n <= sizeof(buf) && pread(fd, buf, n, off) == (ssize_t)n && !memcmp(buf, p, n);
}

struct racer {
	const char *path, *decoy;
	int stop;               /* read and written with __atomic */
	unsigned int rounds;
};

/*
 * Truncates, punches and rewrites the file, and fills a decoy file with
 * 0xee so freed blocks come back with other bytes.
 */
static void *race_thread(void *arg)
{
	struct racer *rc = arg;
	static uint8_t buf[FSZ], ee[FSZ];
	int fd = open(rc->path, O_RDWR);

	for (size_t i = 0; i < FSZ; i++)
		buf[i] = pat(i, 1);
	memset(ee, 0xee, sizeof(ee));
	while (fd >= 0 && !__atomic_load_n(&rc->stop, __ATOMIC_RELAXED)) {
		int d;

		switch (rc->rounds % 3) {
		case 0:
			ignore(ftruncate(fd, 8192));
			break;
		case 1:
			ignore(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, FSZ));
			break;
		default:
			ignore(ftruncate(fd, 0));
			break;
		}
		d = open(rc->decoy, O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (d >= 0) {
			ignore(pwrite(d, ee, sizeof(ee), 0));
			fsync(d);
			close(d);
		}
		ignore(pwrite(fd, buf, FSZ, 0));
		if (rc->rounds % 2)
			fsync(fd);
		rc->rounds++;
		usleep(10000);  /* the whole file, for a while */
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void files_checks(const char *dev, const char *mnt, const char *obj)
{
	struct vndp_dma_alloc da = { .len = 2 << 20 };
	char path[PATH_MAX], hole[PATH_MAX], decoy[PATH_MAX], empty[PATH_MAX];
	struct vndp_reg_file a, a2;
	struct vndp_load l;
	struct vndp_cpl c[4];
	struct vndp_req r[2];
	uint32_t peek, cq, key;
	uint64_t nd0;
	unsigned int got;
	size_t elf_len;
	void *elf = slurp(obj, &elf_len);
	int fd = open_dev(dev, O_RDWR), ffd, hfd, rc, p[2], x;

	snprintf(path, sizeof(path), "%s/vndp_file.bin", mnt);
	snprintf(hole, sizeof(hole), "%s/vndp_hole.bin", mnt);
	snprintf(decoy, sizeof(decoy), "%s/vndp_decoy.bin", mnt);
	snprintf(empty, sizeof(empty), "%s/vndp_empty.bin", mnt);
	rc = xioctl(fd, VNDP_IOC_INFO, &info);
	check(rc == 0 && (info.ndp_caps & RB_NDP_CAP_FILES) && info.max_files > 0,
	      "files_info_caps", "rc %d caps 0x%x max_files %u", rc, info.ndp_caps, info.max_files);
	rc = xioctl(fd, VNDP_IOC_DMA_ALLOC, &da);
	dma = rc ? MAP_FAILED : mmap(NULL, da.len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ffd = make_file(path, FSZ, 1);
	if (dma == MAP_FAILED || ffd < 0) {
		check(0, "files_setup", "rc %d %s", rc, strerror(errno));
		return;
	}
	dma_len = da.len;
	rc = load(fd, elf, elf_len, "xrp_peek", RB_NDP_PROG_XRP, &l, NULL, 0);
	peek = l.handle;
	rc = rc ? rc : load(fd, elf, elf_len, "cq_sum", RB_NDP_PROG_CQ, &l, NULL, 0);
	cq = l.handle;
	check(rc == 0 && l.status == RB_NDP_S_OK, "files_load", "rc %d", rc);

	/* What cannot be registered, and why. */
	check(reg_file(fd, 9999, &a) == -EBADF, "reg_file_bad_fd_ebadf", NULL);
	x = open(mnt, O_RDONLY | O_DIRECTORY);
	rc = reg_file(fd, x, &a);
	check(rc == -EINVAL, "reg_file_directory_einval", "rc %d", rc);
	close(x);
	if (pipe(p) == 0) {
		rc = reg_file(fd, p[0], &a);
		check(rc == -EINVAL, "reg_file_pipe_einval", "rc %d", rc);
		close(p[0]);
		close(p[1]);
	}
	x = open("/dev/null", O_RDONLY);
	rc = reg_file(fd, x, &a);
	check(rc == -EINVAL, "reg_file_dev_null_einval", "rc %d", rc);
	close(x);
	x = open("/tmp/vndp_tmpfs_file", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (x >= 0 && pwrite(x, "tmpfs", 5, 0) == 5) {
		rc = reg_file(fd, x, &a);
		check(rc == -EINVAL, "reg_file_tmpfs_einval", "rc %d", rc);
	}
	close(x);
	unlink("/tmp/vndp_tmpfs_file");
	x = open(path, O_WRONLY);
	rc = reg_file(fd, x, &a);
	check(rc == -EBADF, "reg_file_write_only_fd_ebadf", "rc %d", rc);
	close(x);
	x = make_file(empty, 0, 1);
	rc = reg_file(fd, x, &a);
	check(rc == -EOPNOTSUPP, "reg_file_empty_eopnotsupp", "rc %d", rc);
	if (ftruncate(x, 65536) == 0) {
		rc = reg_file(fd, x, &a);
		check(rc == -EOPNOTSUPP, "reg_file_all_holes_eopnotsupp", "rc %d", rc);
	}
	close(x);
	unlink(empty);
	a.flags = 1;
	a.fd = ffd;
	check(xioctl(fd, VNDP_IOC_REG_FILE, &a) == -EINVAL, "reg_file_flags_einval", NULL);

	/* Registered: READ_ND at file offsets sees the file's bytes. */
	rc = reg_file(fd, ffd, &a);
	key = a.key;
	printf("# %s: key %u, %llu bytes in %u extents\n", path, a.key,
	       (unsigned long long)a.size, a.n_extents);
	check(rc == 0 && a.status == RB_NDP_S_OK && a.key && a.size == FSZ && a.n_extents >= 1,
	      "reg_file", "rc %d status %u key %u size %llu", rc, a.status, a.key,
	      (unsigned long long)a.size);
	xioctl(fd, VNDP_IOC_INFO, &info);
	nd0 = info.nd_requests;
	{
		static const uint64_t offs[] = { 0, 7 * 4096, 200 << 10, FSZ - 512 };
		int bad = 0;

		for (unsigned int i = 0; i < 4; i++) {
			memset(FSCRATCH, 0, 64);
			memset(FDATA, 0, 4096);
			r[0] = fnd(VNDP_OP_READ_ND, peek, key, offs[i], 512);
			rc = run1(fd, r, c);
			if (rc || c[0].error || c[0].status != RB_NDP_S_OK ||
			    !same_as_file(ffd, offs[i], FSCRATCH, 16) ||
			    !same_as_file(ffd, offs[i], FDATA, 512)) {
				printf("# offset %llu: rc %d error %d status %u\n",
				       (unsigned long long)offs[i], rc, c[0].error, c[0].status);
				bad++;
			}
		}
		check(!bad, "file_read_nd_xrp_peek", "%d offsets wrong", bad);
	}
	{
		/* cq_sum: 8 blocks, stride 3, from 64 KiB, at file offsets. */
		uint32_t meta[2] = { 8, 3 };
		uint64_t sum = 0;
		uint8_t b;

		for (unsigned int k = 0; k < 8; k++)
			for (unsigned int i = 0; i < 512; i++)
				if (pread(ffd, &b, 1, (64 << 10) + k * 3 * 512 + i) == 1)
					sum += b;
		memcpy(FMETA, meta, sizeof(meta));
		memset(FSCRATCH, 0, 64);
		r[0] = fnd(VNDP_OP_READ_ND, cq, key, 64 << 10, 512);
		rc = run1(fd, r, c);
		check(rc == 0 && c[0].status == RB_NDP_S_OK &&
		      *(uint64_t *)FSCRATCH == sum, "file_read_nd_cq_sum", "rc %d status %u sum %llu want %llu", rc, c[0].status,
		      (unsigned long long)*(uint64_t *)FSCRATCH, (unsigned long long)sum);
		/* Stride 64 from 0: block 7 is at 224 KiB, block 8 past EOF. */
		meta[0] = 9;
		meta[1] = 64;
		memcpy(FMETA, meta, sizeof(meta));
		memset(FSCRATCH, 0, 64);
		r[0] = fnd(VNDP_OP_READ_ND, cq, key, 0, 512);
		rc = run1(fd, r, c);
		check(rc == 0 && c[0].status == RB_NDP_S_OUT_OF_RANGE, "file_program_past_eof_out_of_range",
		      "rc %d status %u", rc, c[0].status);
	}
	xioctl(fd, VNDP_IOC_INFO, &info);
	check(info.nd_requests >= nd0 + 6, "info_nd_requests_counts", "%llu then %llu",
	      (unsigned long long)nd0, (unsigned long long)info.nd_requests);

	/* Offsets past EOF, bad keys, other ops. */
	r[0] = fnd(VNDP_OP_READ_ND, peek, key, FSZ, 512);
	check(submit(fd, r, 1, NULL) == -EINVAL, "file_offset_past_eof_einval", NULL);
	r[0] = fnd(VNDP_OP_READ_ND, peek, key, FSZ - 512, 1024);
	check(submit(fd, r, 1, NULL) == -EINVAL, "file_len_past_eof_einval", NULL);
	r[0] = fnd(VNDP_OP_READ_ND, peek, key + 12345, 0, 512);
	check(submit(fd, r, 1, NULL) == -ENOENT, "file_unknown_key_enoent", NULL);
	r[0] = fnd(VNDP_OP_READ, peek, key, 0, 512);
	check(submit(fd, r, 1, NULL) == -EINVAL, "file_flag_plain_read_einval", NULL);
	{
		int fd2 = open_dev(dev, O_RDWR);
		struct vndp_dma_alloc d2 = { .len = 2 << 20 };

		xioctl(fd2, VNDP_IOC_DMA_ALLOC, &d2);
		r[0] = fnd(VNDP_OP_READ_ND, peek, key, 0, 512);
		rc = submit(fd2, r, 1, NULL);
		check(rc == -ENOENT, "file_foreign_key_enoent", "rc %d", rc);
		check(unreg_file(fd2, key) == -ENOENT, "unreg_file_foreign_enoent", NULL);
		close(fd2);
	}
	{
		/* The same file through a read-only fd: no WRITE_ND with it. */
		x = open(path, O_RDONLY);
		rc = reg_file(fd, x, &a2);
		close(x);       /* the registration holds the file */
		r[0] = fnd(VNDP_OP_WRITE_ND, cq, a2.key, 0, 512);
		r[0].data_len = 512;
		check(rc == 0 && a2.status == RB_NDP_S_OK && submit(fd, r, 1, NULL) == -EBADF,
		      "file_write_nd_read_only_fd_ebadf", "rc %d", rc);
		check(unreg_file(fd, a2.key) == 0, "unreg_file_second", NULL);
	}

	/* A hole: a program asking for it gets OUT_OF_RANGE. */
	hfd = open(hole, O_RDWR | O_CREAT | O_TRUNC, 0644);
	{
		uint8_t b4[4096];

		for (int i = 0; i < 4096; i++)
			b4[i] = pat(i, 2);
		rc = pwrite(hfd, b4, 4096, 0) == 4096 && pwrite(hfd, b4, 4096, 128 << 10) == 4096 ?
		     0 : -errno;
		fsync(hfd);
		rc = rc ? rc : reg_file(fd, hfd, &a2);
		printf("# hole file: %u extents\n", a2.n_extents);
		r[0] = fnd(VNDP_OP_READ_ND, peek, a2.key, 64 << 10, 512);
		rc = rc ? rc : run1(fd, r, c);
		check(rc == 0 && c[0].status == RB_NDP_S_OUT_OF_RANGE && a2.n_extents == 2,
		      "file_hole_out_of_range", "rc %d status %u extents %u", rc, c[0].status,
		      a2.n_extents);
		r[0] = fnd(VNDP_OP_READ_ND, peek, a2.key, 128 << 10, 512);
		rc = run1(fd, r, c);
		check(rc == 0 && c[0].status == RB_NDP_S_OK && !memcmp(FSCRATCH, b4, 16),
		      "file_after_hole", "rc %d status %u", rc, c[0].status);
	}

	/* Dirty pages: a buffered write, no fsync, is seen by READ_ND. */
	{
		uint8_t nb[512];

		memset(nb, 0x5c, sizeof(nb));
		rc = pwrite(ffd, nb, 512, 8192) == 512 ? 0 : -errno;
		r[0] = fnd(VNDP_OP_READ_ND, peek, key, 8192, 512);
		rc = rc ? rc : run1(fd, r, c);
		check(rc == 0 && c[0].status == RB_NDP_S_OK && !memcmp(FDATA, nb, 512),
		      "file_read_nd_sees_dirty_write", "rc %d status %u byte 0x%x", rc, c[0].status,
		      FDATA[0]);
	}
	/* WRITE_ND: a later normal read sees it, also after sync + drop_caches. */
	{
		uint8_t nb[512], rb[512];
		uint32_t meta[2] = { 1, 1 };
		int dc;

		memset(nb, 0xa7, sizeof(nb));
		if (pread(ffd, rb, 512, 12288) != 512)  /* cached before */
			printf("# pread: %s\n", strerror(errno));
		memcpy(FDATA, nb, 512);
		memcpy(FMETA, meta, sizeof(meta));
		r[0] = fnd(VNDP_OP_WRITE_ND, cq, key, 12288, 512);
		r[0].data_len = 512;
		rc = run1(fd, r, c);
		check(rc == 0 && c[0].error == 0 && c[0].status == RB_NDP_S_OK, "file_write_nd",
		      "rc %d error %d status %u", rc, c[0].error, c[0].status);
		check(pread(ffd, rb, 512, 12288) == 512 && !memcmp(rb, nb, 512),
		      "file_write_nd_seen_by_read", "byte 0x%x", rb[0]);
		sync();
		dc = open("/proc/sys/vm/drop_caches", O_WRONLY);
		if (dc >= 0) {
			ignore(write(dc, "3", 1));
			close(dc);
		}
		check(pread(ffd, rb, 512, 12288) == 512 && !memcmp(rb, nb, 512),
		      "file_write_nd_survives_sync_drop_caches", "byte 0x%x", rb[0]);
		r[0] = fnd(VNDP_OP_WRITE_ND, cq, key, FSZ, 512);
		r[0].data_len = 512;
		check(submit(fd, r, 1, NULL) == -EINVAL, "file_write_nd_past_eof_einval", NULL);
	}

	/*
	 * Reap, then write() the file from the same thread: no deadlock; and
	 * a write() with the request still in flight waits for it only.
	 */
	{
		uint8_t nb[512];
		int ok;

		memset(nb, 0x3d, sizeof(nb));
		alarm(20);
		r[0] = fnd(VNDP_OP_READ_ND, peek, key, 0, 512);
		rc = submit(fd, r, 1, NULL);
		rc = rc ? rc : reap(fd, c, 1, 1, 10000, &got);
		ok = rc == 0 && pwrite(ffd, nb, 512, 16384) == 512;
		check(ok, "reap_then_write_same_thread", "rc %d", rc);
		rc = submit(fd, r, 1, NULL);
		ok = rc == 0 && pwrite(ffd, nb, 512, 16384) == 512 && ftruncate(ffd, FSZ) == 0;
		rc = reap(fd, c, 1, 1, 10000, &got);
		check(ok && rc == 0, "write_with_request_in_flight_same_thread", "rc %d", rc);
		alarm(0);
	}

	/*
	 * Truncate, punch and rewrite racing file requests: blocked, or
	 * STALE_LAYOUT/OUT_OF_RANGE, never other bytes.
	 */
	{
		struct racer rr = { .path = path, .decoy = decoy };
		unsigned int n = 0, ok = 0, oor = 0, stale = 0, einval = 0, wrong = 0, other = 0;
		struct timespec t0;
		pthread_t th;

		/* The checks above left other bytes in the file (WRITE_ND's 0xa7
		 * at 12288, 0x3d at 16384): the race starts from the pattern it
		 * checks, or a request before the racer's first rewrite reads
		 * those bytes, rightly, and counts them wrong. */
		{
			static uint8_t whole[FSZ];
			for (size_t i = 0; i < FSZ; i++)
				whole[i] = pat(i, 1);
			if (pwrite(ffd, whole, FSZ, 0) != FSZ || fsync(ffd))
				printf("# rewriting the file before the race: %s\n", strerror(errno));
		}
		xioctl(fd, VNDP_IOC_INFO, &info);
		nd0 = info.nd_requests;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		pthread_create(&th, NULL, race_thread, &rr);
		while (ms_since(&t0) < 3000) {
			uint64_t off = (uint64_t)((n * 37) % 64) * 4096;

			memset(FDATA, 0, 512);
			r[0] = fnd(VNDP_OP_READ_ND, peek, key, off, 512);
			rc = run1(fd, r, c);
			n++;
			if (rc == -EINVAL) {
				einval++;       /* the file was smaller */
			} else if (rc || c[0].error) {
				other++;
			} else if (c[0].status == RB_NDP_S_OK) {
				int good = 1;

				for (int i = 0; i < 512 && good; i++)
					good = FDATA[i] == pat(off + i, 1);
				ok += good;
				wrong += !good;
				if (!good)
					printf("# wrong bytes at %llu: 0x%x...\n",
					       (unsigned long long)off, FDATA[0]);
			} else if (c[0].status == RB_NDP_S_OUT_OF_RANGE) {
				oor++;
			} else if (c[0].status == RB_NDP_S_STALE_LAYOUT) {
				stale++;
			} else {
				other++;
			}
		}
		__atomic_store_n(&rr.stop, 1, __ATOMIC_RELAXED);
		pthread_join(th, NULL);
		xioctl(fd, VNDP_IOC_INFO, &info);
		printf("# race: %u requests (%llu sent), %u rewrites: %u ok, %u out-of-range, %u stale, %u einval, %u wrong, %u other\n",
		       n, (unsigned long long)(info.nd_requests - nd0), rr.rounds, ok, oor, stale,
		       einval, wrong, other);
		check(!wrong && !other && ok > 0 && rr.rounds > 0, "file_race_never_wrong_data",
		      "%u wrong, %u other, %u ok", wrong, other, ok);
	}

	/* LIMIT: the device holds max_files in all. */
	{
		uint32_t keys[64];
		unsigned int nk = 0;
		int limit = 0;

		while (nk < 64) {
			rc = reg_file(fd, ffd, &a2);
			if (rc || a2.status != RB_NDP_S_OK) {
				limit = rc == 0 && a2.status == RB_NDP_S_LIMIT && a2.key == 0;
				break;
			}
			keys[nk++] = a2.key;
		}
		printf("# %u more files registered before LIMIT\n", nk);
		check(limit && nk < info.max_files, "reg_file_limit_status", "rc %d status %u after %u",
		      rc, a2.status, nk);
		while (nk)
			unreg_file(fd, keys[--nk]);
	}

	/* UNREG, then the key is gone. */
	check(unreg_file(fd, key) == 0, "unreg_file", NULL);
	check(unreg_file(fd, key) == -ENOENT, "unreg_file_twice_enoent", NULL);
	r[0] = fnd(VNDP_OP_READ_ND, peek, key, 0, 512);
	check(submit(fd, r, 1, NULL) == -ENOENT, "file_stale_key_enoent", NULL);
	/* The hole file stays registered for release to end. */
	close(hfd);
	close(ffd);
	munmap(dma, dma_len);
	close(fd);
	unlink(hole);
	unlink(decoy);
	free(elf);
}

/* ---- unbind with a file open ------------------------------------------- */

static int write_sysfs(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY), rc = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

struct stuck_load {
	int fd;
	void *elf;
	size_t len;
	int rc;
};

static void *stuck_load_thread(void *arg)
{
	struct stuck_load *s = arg;
	struct vndp_load l;

	s->rc = load(s->fd, s->elf, s->len, "xrp_peek", RB_NDP_PROG_XRP, &l, NULL, 0);
	return NULL;
}

/* A userfaultfd over len bytes at *area; -1 where the kernel has none. */
static int uffd_area(size_t len, void **area)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	int uffd = syscall(SYS_userfaultfd, O_CLOEXEC);

	if (uffd < 0)
		return -1;
	*area = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	reg.range.start = (uintptr_t)*area;
	reg.range.len = len;
	if (*area == MAP_FAILED || ioctl(uffd, UFFDIO_API, &api) ||
	    ioctl(uffd, UFFDIO_REGISTER, &reg)) {
		close(uffd);
		return -1;
	}
	return uffd;
}

/* The disk's name once DEV's virtio device VIRTIO is bound again. */
static int find_disk(const char *virtio, char *name, size_t len)
{
	char path[PATH_MAX + 64];

	for (int i = 0; i < 100; i++) {
		snprintf(path, sizeof(path), "/sys/bus/virtio/devices/%s/block", virtio);
		DIR *d = opendir(path);
		struct dirent *e;

		while (d && (e = readdir(d)))
			if (e->d_name[0] != '.') {
				snprintf(name, len, "/dev/virtio-ndp/%s", e->d_name);
				break;
			}
		if (d)
			closedir(d);
		if (d && access(name, F_OK) == 0)
			return 0;
		usleep(50000);
	}
	return -1;
}

static void unbind_checks(const char *dev, const char *obj)
{
	static const char unbind[] = "/sys/bus/virtio/drivers/virtio_ndp/unbind";
	static const char bind[] = "/sys/bus/virtio/drivers/virtio_ndp/bind";
	struct vndp_dma_alloc da = { .len = 1 << 20 };
	struct vndp_cpl c[2];
	struct vndp_req r[2];
	struct vndp_load l;
	struct stuck_load sl = { 0 };
	char path[PATH_MAX], link[PATH_MAX], dev2[PATH_MAX];
	const char *virtio;
	unsigned int nprog = 0, nreg = 0, got = 0, i;
	uint32_t forever = 0;
	size_t elf_len, uf_len = 0;
	void *elf = slurp(obj, &elf_len), *uf = NULL;
	int fd = open_dev(dev, O_RDWR), uffd, p[2], st = -1, rc, unbound = 0;
	pthread_t th;
	pid_t child, unbinder;
	struct timespec t0;
	struct pollfd pfd;
	ssize_t n;
	char go = 1;

	rc = xioctl(fd, VNDP_IOC_INFO, &info);
	snprintf(path, sizeof(path), "/sys/class/virtio-ndp/%s/device", info.disk);
	n = readlink(path, link, sizeof(link) - 1);
	if (rc || n <= 0 || !info.ndp) {
		check(0, "unbind_setup", "rc %d, %s: %s, ndp %u", rc, path, strerror(errno),
		      info.ndp);
		return;
	}
	link[n] = 0;
	virtio = strrchr(link, '/') ? strrchr(link, '/') + 1 : link;
	rc = xioctl(fd, VNDP_IOC_DMA_ALLOC, &da);
	dma = rc ? MAP_FAILED : mmap(NULL, da.len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (dma == MAP_FAILED || pipe(p)) {
		check(0, "unbind_setup", "dma: rc %d %s", rc, strerror(errno));
		return;
	}
	fill(dma, 4096, 5);

	/* Fill the device's tables: it keeps them across a reset. */
	while (nprog < info.max_programs && nprog < 64) {
		rc = load(fd, elf, elf_len, nprog ? "xrp_peek" : "xrp_forever", RB_NDP_PROG_XRP, &l,
			  NULL, 0);
		if (rc || l.status != RB_NDP_S_OK)
			break;
		if (!nprog)
			forever = l.handle;
		nprog++;
	}
	for (i = 0; i < 16; i++) {
		struct vndp_reg_mem m = { .dma_off = 65536 + i * 4096, .len = 4096 };

		if (xioctl(fd, VNDP_IOC_REG_MEM, &m) || m.status != RB_NDP_S_OK)
			break;
		nreg++;
	}
	printf("# %s is %s; %u programs and %u ranges fill the device's tables\n", info.disk,
	       virtio, nprog, nreg);
	check(nprog > 0 && nreg > 0, "unbind_tables_filled", "%u programs %u ranges", nprog, nreg);

	/* In flight at unbind: a long READ_ND and a plain READ. */
	r[0] = nd(VNDP_OP_READ_ND, forever, 0, 512);
	r[0].data_off = 0x80000;
	r[0].meta_off = 0x90000;
	r[0].scratch_off = 0xa0000;
	r[0].max_hops = info.max_hops;
	r[0].user_data = 77;
	r[1] = rw(VNDP_OP_READ, 0, 4096, 0xb0000);
	rc = submit(fd, r, 2, NULL);
	check(rc == 0, "unbind_requests_in_flight", "rc %d", rc);

	/* A child keeps the mapping (and so the file) past everything. */
	child = fork();
	if (child == 0) {
		uint8_t want[4096];

		close(fd);
		close(p[1]);
		if (read(p[0], &go, 1) != 1)
			_exit(2);
		fill(want, 4096, 5);
		_exit(memcmp(dma, want, 4096) ? 1 : 0);
	}
	close(p[0]);

	/* A LOAD whose object faults into user space and waits there. */
	uf_len = (elf_len + 4095) & ~(size_t)4095;
	uffd = uffd_area(uf_len, &uf);
	if (uffd >= 0) {
		struct uffd_msg msg;

		sl.fd = fd;
		sl.elf = uf;
		sl.len = elf_len;
		pthread_create(&th, NULL, stuck_load_thread, &sl);
		pfd.fd = uffd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 5000) != 1 || read(uffd, &msg, sizeof(msg)) != sizeof(msg))
			printf("# the LOAD did not fault\n");
	} else {
		printf("# no userfaultfd: %s\n", strerror(errno));
	}

	/* Unbind in a child: it must not wait for the user fault. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	unbinder = fork();
	if (unbinder == 0)
		_exit(write_sysfs(unbind, virtio) ? 1 : 0);
	while (unbinder > 0 && ms_since(&t0) < 8000) {
		if (waitpid(unbinder, &st, WNOHANG) == unbinder) {
			unbound = 1;
			break;
		}
		usleep(20000);
	}
	printf("# unbind took %ld ms\n", ms_since(&t0));
	check(unbound && WIFEXITED(st) && WEXITSTATUS(st) == 0, "unbind_while_open",
	      "%s", unbound ? "unbind failed" : "unbind still waiting after 8 s");
	if (uffd >= 0) {
		void *src = mmap(NULL, uf_len, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		struct uffdio_copy cp = { .dst = (uintptr_t)uf, .src = (uintptr_t)src,
					  .len = uf_len };

		memcpy(src, elf, elf_len);
		if (ioctl(uffd, UFFDIO_COPY, &cp))
			printf("# UFFDIO_COPY: %s\n", strerror(errno));
		pthread_join(th, NULL);
		check(sl.rc == -ENODEV, "load_stuck_in_user_fault_enodev", "rc %d", sl.rc);
		close(uffd);
	}
	if (!unbound && unbinder > 0)
		waitpid(unbinder, &st, 0);

	/* The file after its disk went away. */
	rc = reap(fd, c, 2, 2, 20000, &got);
	for (i = 0; i < got; i++)
		printf("# after unbind: %s status %u hops %u error %d\n",
		       c[i].user_data == 77 ? "READ_ND" : "READ", c[i].status, c[i].hops,
		       c[i].error);
	check(rc == 0 && got == 2, "reap_after_unbind", "rc %d got %u", rc, got);
	check(xioctl(fd, VNDP_IOC_INFO, &info) == -ENODEV, "info_after_unbind_enodev", NULL);
	r[1] = rw(VNDP_OP_READ, 0, 4096, 0xb0000);
	check(submit(fd, &r[1], 1, NULL) == -ENODEV, "submit_after_unbind_enodev", NULL);
	pfd.fd = fd;
	pfd.events = POLLIN;
	rc = poll(&pfd, 1, 1000);
	check(rc == 1 && (pfd.revents & POLLHUP), "poll_hup_after_unbind", "rc %d revents 0x%x",
	      rc, pfd.revents);
	{
		uint8_t want[4096];

		fill(want, 4096, 5);
		check(!memcmp(dma, want, 4096), "mapping_survives_unbind", NULL);
	}
	close(fd);
	munmap(dma, da.len);
	if (write(p[1], &go, 1) != 1)
		printf("# child gone\n");
	close(p[1]);
	st = -1;
	if (child > 0)
		waitpid(child, &st, 0);
	check(child > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "fork_child_mapping_after_unbind",
	      "status %d", st);

	/* Bound again: what the old file owned is gone from the device. */
	rc = write_sysfs(bind, virtio);
	check(rc == 0 && find_disk(virtio, dev2, sizeof(dev2)) == 0, "bind_again", "rc %d", rc);
	if (rc)
		return;
	fd = open_dev(dev2, O_RDWR);
	da.len = 1 << 20;
	rc = xioctl(fd, VNDP_IOC_DMA_ALLOC, &da);
	for (i = 0; i < nreg && !rc; i++) {
		struct vndp_reg_mem m = { .dma_off = i * 4096, .len = 4096 };

		rc = xioctl(fd, VNDP_IOC_REG_MEM, &m);
		rc = rc ? rc : (int)m.status;
	}
	check(rc == 0, "unbind_unregistered_memory", "range %u: %d", i, rc);
	for (i = 0, rc = 0; i < nprog && !rc; i++) {
		rc = load(fd, elf, elf_len, "xrp_peek", RB_NDP_PROG_XRP, &l, NULL, 0);
		rc = rc ? rc : (int)l.status;
	}
	check(rc == 0, "unbind_unloaded_programs", "program %u: %d", i, rc);
	close(fd);
	free(elf);
}

int main(int argc, char **argv)
{
	int fd;

	if (argc < 3) {
		fprintf(stderr, "usage: vndp_check plain|ndp|busy|hold|ro|unbind|files DEV [ARG]...\n");
		return 2;
	}
	if (!strcmp(argv[1], "hold")) {
		fd = open_dev(argv[2], O_RDONLY);
		sleep(argc > 3 ? atoi(argv[3]) : 5);
		close(fd);
		return 0;
	}
	if (!strcmp(argv[1], "ro")) {
		struct vndp_dma_alloc da = { .len = 4096 };
		struct vndp_req r = rw(VNDP_OP_WRITE, 0, 4096, 0);
		struct vndp_cpl c;

		fd = open_dev(argv[2], O_RDWR);
		check(xioctl(fd, VNDP_IOC_INFO, &info) == 0 && info.readonly == 1, "info_readonly",
		      NULL);
		xioctl(fd, VNDP_IOC_DMA_ALLOC, &da);
		check(submit(fd, &r, 1, NULL) == -EROFS, "write_readonly_erofs", NULL);
		r.op = VNDP_OP_READ;
		check(run1(fd, &r, &c) == 0 && c.error == 0, "read_readonly_disk", NULL);
		close(fd);
		return failed ? 1 : 0;
	}
	if (!strcmp(argv[1], "unbind") && argc > 3) {
		unbind_checks(argv[2], argv[3]);
		printf("vndp_check unbind %s: %d failed\n", argv[2], failed);
		return failed ? 1 : 0;
	}
	if (!strcmp(argv[1], "files") && argc > 4) {
		files_checks(argv[2], argv[3], argv[4]);
		printf("vndp_check files %s: %d failed\n", argv[2], failed);
		return failed ? 1 : 0;
	}
	if (!strcmp(argv[1], "busy") && argc > 3) {
		busy_checks(argv[2], argv[3]);
		return failed ? 1 : 0;
	}
	fd = open_dev(argv[2], O_RDWR);
	plain_checks(argv[2], fd);
	lifetime_checks(argv[2]);
	if (!strcmp(argv[1], "ndp") && argc > 3)
		ndp_checks(argv[2], fd, argv[3]);
	else
		no_ndp_checks(fd);
	munmap(dma, dma_len);
	close(fd);
	printf("vndp_check %s %s: %d failed\n", argv[1], argv[2], failed);
	return failed ? 1 : 0;
}
