/* SPDX-License-Identifier: MIT */
/*
 * End-to-end tests of virtio-ndp through the vhost-user transport: a real
 * rosenbridged serving two VMs' disks, librosen as the guest driver, and
 * clang-built programs.  A B+-tree lookup in one READ_ND must give the same
 * answers as a guest-driven walk; every hostile case must end with its own
 * status and leave the daemon serving.
 *
 * Usage: test_ndp DAEMON PROGS_DIR TEST_PROGS_DIR
 */
#include <rosen/guest.h>
#include <rosen/virtio_ndp.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../progs/bpfkv_prog.h"
#include "../unit/harness.h"

static char dir[256], kv_path[300], img_path[300], sock0[300], sock1[300], log_path[300];
static char fs_path[300], sock2[300];
static const char *daemon_bin, *progs_dir, *test_progs_dir;
static pid_t daemon_pid;
static struct rb_guest_dev *vm0, *vm1, *vm2; /* kv.db, img, fs (files) */
static uint8_t *img;                   /* the host's copy of vm1's image */
#define LEVELS 3
#define IMG_BYTES (4u << 20)

/* ---- fixtures --------------------------------------------------------------- */

static uint64_t ipow(uint64_t b, unsigned e)
{
	uint64_t r = 1;
	while (e--)
		r *= b;
	return r;
}

/* Writes a BPF-KV database (shared/reference/bpf-kv.md); returns #keys. */
static uint64_t build_kv(const char *path)
{
	FILE *f = fopen(path, "wb");
	uint64_t first[LEVELS], total = 0;

	for (unsigned l = 0; l < LEVELS; l++) {
		first[l] = total;
		total += ipow(BPFKV_FANOUT, l);
	}
	for (unsigned l = 0; l < LEVELS; l++) {
		uint64_t span = ipow(BPFKV_FANOUT, LEVELS - l), step = span / BPFKV_FANOUT;
		for (uint64_t j = 0; j < ipow(BPFKV_FANOUT, l); j++) {
			struct bpfkv_node n = {0};
			bool leaf = l == LEVELS - 1;
			n.type = leaf;
			n.next = j + 1 == ipow(BPFKV_FANOUT, l) ? 0 : (first[l] + j + 1) * 512;
			for (unsigned k = 0; k < BPFKV_FANOUT; k++) {
				n.key[k] = j * span + k * step;
				n.ptr[k] = BPFKV_PTR_TAG |
					   (leaf ? total * 512 + 64 * n.key[k]
						 : (first[l + 1] + j * BPFKV_FANOUT + k) * 512);
			}
			fwrite(&n, sizeof(n), 1, f);
		}
	}
	uint64_t keys = ipow(BPFKV_FANOUT, LEVELS);
	char v[64];
	for (uint64_t k = 0; k < keys; k++) {
		snprintf(v, sizeof(v), "%63llu", (unsigned long long)k);
		fwrite(v, 64, 1, f);
	}
	static const char pad[512];
	fwrite(pad, (512 - (keys * 64) % 512) % 512, 1, f);
	fclose(f);
	return keys;
}

static uint8_t *read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st))
		return NULL;
	uint8_t *b = malloc((size_t)st.st_size + 1);
	if (read(fd, b, (size_t)st.st_size) != st.st_size) {
		free(b);
		b = NULL;
	}
	close(fd);
	*len = (size_t)st.st_size;
	return b;
}

static int load(struct rb_guest_dev *d, const char *obj_dir, const char *obj, const char *section,
		uint32_t type, uint32_t *handle, char *log, size_t loglen)
{
	char path[512];
	size_t len;
	snprintf(path, sizeof(path), "%s/%s", obj_dir, obj);
	uint8_t *elf = read_file(path, &len);
	if (!elf)
		return -ENOENT;
	int rc = rb_guest_ndp_load(d, 0, elf, len, section, type, handle, log, loglen);
	free(elf);
	return rc;
}

static uint32_t must_load(struct rb_guest_dev *d, const char *section, uint32_t type)
{
	char log[1024];
	uint32_t h = 0;
	int rc = load(d, test_progs_dir, "ndp_progs.o", section, type, &h, log, sizeof(log));
	if (rc)
		fprintf(stderr, "    load %s: %s\n", section, rb_guest_errmsg());
	return rc ? UINT32_MAX : h;
}

static bool daemon_alive(void)
{
	return waitpid(daemon_pid, NULL, WNOHANG) == 0;
}

static bool log_contains(const char *needle)
{
	size_t len;
	uint8_t *b = read_file(log_path, &len);
	bool found = b && memmem(b, len, needle, strlen(needle));
	free(b);
	return found;
}

/* ---- tests -------------------------------------------------------------------- */

TEST(probe_finds_ndp_on_rosenbridged)
{
	struct rb_guest_info i;
	rb_guest_info(vm0, &i);
	CHECK(i.ndp);
	rb_guest_info(vm1, &i);
	CHECK(i.ndp);
}

TEST(load_rejects_garbage_with_a_log)
{
	char log[1024];
	uint32_t h;
	static const char junk[] = "this is not an ELF object";
	CHECK(rb_guest_ndp_load(vm0, 0, junk, sizeof(junk), "x", 3, &h, log, sizeof(log)) == -EINVAL);
	CHECK(strlen(log) > 0);
	CHECK_STR_CONTAINS(rb_guest_errmsg(), "rejected");
	CHECK(load(vm0, test_progs_dir, "ndp_progs.o", "no_such_section", 3, &h, log, sizeof(log)) == -EINVAL);
	CHECK_STR_CONTAINS(log, "no_such_section");
	CHECK(load(vm0, test_progs_dir, "ndp_progs.o", "xrp_peek", 9, &h, log, sizeof(log)) == -EINVAL);
	CHECK(daemon_alive());
}

TEST(load_limit_per_vm_and_unload)
{
	uint32_t h[RB_NDP_MAX_PROGRAMS + 1];
	unsigned n = 0;
	for (; n < RB_NDP_MAX_PROGRAMS; n++) {
		h[n] = must_load(vm1, "xrp_peek", RB_NDP_PROG_XRP);
		if (h[n] == UINT32_MAX)
			break;
	}
	CHECK_EQ_U64(n, RB_NDP_MAX_PROGRAMS);
	char log[256];
	uint32_t extra;
	CHECK(load(vm1, test_progs_dir, "ndp_progs.o", "xrp_peek", 3, &extra, log, sizeof(log)) == -ENOSPC);
	for (unsigned i = 0; i < n; i++)
		CHECK(rb_guest_ndp_unload(vm1, 0, h[i]) == 0);
	CHECK(rb_guest_ndp_unload(vm1, 0, h[0]) == -ENOENT);
}

/* Guest-driven walk: one read per level plus the value, as an
 * application without NDP does it. */
static bool walk(struct rb_guest_dev *d, uint64_t key, char value[64])
{
	uint8_t *buf = rb_guest_dma_alloc(d, 512);
	uint64_t off = 0;
	bool found = false;
	for (;;) {
		if (rb_guest_read(d, 0, buf, off, 512))
			break;
		struct bpfkv_node *n = (void *)buf;
		uint64_t next = bpfkv_node_child(n, key);
		if (n->type == BPFKV_NODE_LEAF) {
			if (next != BPFKV_NOT_FOUND && !rb_guest_read(d, 0, buf, next & ~511ull, 512)) {
				memcpy(value, buf + (next & 511), 64);
				found = true;
			}
			break;
		}
		off = next;
	}
	rb_guest_dma_free(d, buf);
	return found;
}

struct kv_scratch {
	uint64_t key, stage, value_off, found;
	char value[64];
};

TEST(btree_lookup_in_one_round_trip_matches_guest_walk)
{
	char log[1024];
	uint32_t h;
	REQUIRE(load(vm0, progs_dir, "bpfkv_xrp_lookup.o", "bpfkv_xrp_lookup", RB_NDP_PROG_XRP, &h, log,
		     sizeof(log)) == 0);
	uint64_t keys = ipow(BPFKV_FANOUT, LEVELS);
	uint64_t rng = 42;
	static uint8_t scratch[4096], data[4096];
	for (int i = 0; i < 300; i++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t key = i < 2 ? (i ? keys - 1 : 0) : i % 10 == 9 ? keys + rng % 1000 : (rng >> 11) % keys;
		memset(scratch, 0, sizeof(scratch));
		memcpy(scratch, &key, 8);
		struct rb_guest_nd nd = {.handle = h, .offset = 0, .io_len = 512, .scratch = scratch,
					 .scratch_len = 4096, .data = data, .data_len = 4096};
		struct rb_guest_nd_result res;
		REQUIRE(rb_guest_read_nd(vm0, 0, &nd, &res) == 0);
		struct kv_scratch *s = (void *)scratch;
		char want[64];
		bool found = walk(vm0, key, want);
		CHECK_EQ_U64(res.status, RB_NDP_S_OK);
		CHECK_EQ_U64(s->found, found);
		CHECK_EQ_U64(res.hops, found ? LEVELS + 1 : LEVELS);
		if (found && memcmp(s->value, want, 64)) {
			RT_FAIL_AT("key %llu: NDP value differs from the guest walk",
				   (unsigned long long)key);
			break;
		}
	}
	CHECK(rb_guest_ndp_unload(vm0, 0, h) == 0);
}

TEST(async_read_nd_many_in_flight_match_sync_answers)
{
	char log[1024];
	uint32_t h;
	REQUIRE(load(vm0, progs_dir, "bpfkv_xrp_lookup.o", "bpfkv_xrp_lookup", RB_NDP_PROG_XRP, &h, log,
		     sizeof(log)) == 0);
	enum { N = 16 };
	static uint8_t scratch[N][4096];
	struct rb_guest_nd_result res[N];
	uint64_t keys = ipow(BPFKV_FANOUT, LEVELS);
	for (int i = 0; i < N; i++) {
		uint64_t key = (uint64_t)i * 1777 % (keys + 50); /* some past the last key */
		memset(scratch[i], 0, 4096);
		memcpy(scratch[i], &key, 8);
		struct rb_guest_nd nd = {.handle = h, .offset = 0, .io_len = 512, .scratch = scratch[i],
					 .scratch_len = 4096};
		REQUIRE(rb_guest_submit_nd(vm0, 0, false, &nd, &res[i], (void *)(uintptr_t)(i + 1)) == 0);
	}
	CHECK_EQ_U64(rb_guest_inflight(vm0, 0), N);
	bool seen[N] = {false};
	for (int done = 0; done < N;) {
		struct rb_guest_cpl c[N];
		int n = rb_guest_wait(vm0, 0, c, N, 5000);
		REQUIRE(n > 0);
		for (int i = 0; i < n; i++) {
			int k = (int)(uintptr_t)c[i].user - 1;
			REQUIRE(k >= 0 && k < N && !seen[k]);
			CHECK_EQ_U64(c[i].status, 0);
			seen[k] = true;
			done++;
		}
	}
	for (int i = 0; i < N; i++) {
		struct kv_scratch *s = (void *)scratch[i];
		char want[64];
		bool found = walk(vm0, s->key, want);
		CHECK_EQ_U64(res[i].status, RB_NDP_S_OK);
		CHECK_EQ_U64(s->found, found);
		if (found)
			CHECK(memcmp(s->value, want, 64) == 0);
	}
	rb_guest_ndp_unload(vm0, 0, h);
}

static uint32_t run_xrp(struct rb_guest_dev *d, uint32_t h, uint64_t off, uint32_t hops,
			struct rb_guest_nd_result *res)
{
	static uint8_t scratch[4096], data[4096];
	struct rb_guest_nd nd = {.handle = h, .offset = off, .io_len = 512, .scratch = scratch,
				 .scratch_len = 4096, .data = data, .data_len = 4096, .max_hops = hops};
	memset(res, 0, sizeof(*res));
	if (rb_guest_read_nd(d, 0, &nd, res))
		return UINT32_MAX;
	return res->status;
}

TEST(unknown_handle_gives_no_program)
{
	struct rb_guest_nd_result r;
	CHECK_EQ_U64(run_xrp(vm1, 0xdead, 0, 0, &r), RB_NDP_S_NO_PROGRAM);
	CHECK_EQ_U64(r.hops, 0);
}

TEST(handle_of_another_vm_gives_no_program)
{
	struct rb_guest_nd_result r;
	uint32_t h = must_load(vm0, "xrp_peek", RB_NDP_PROG_XRP);
	REQUIRE(h != UINT32_MAX);
	CHECK_EQ_U64(run_xrp(vm0, h, 0, 0, &r), RB_NDP_S_OK);
	CHECK_EQ_U64(run_xrp(vm1, h, 0, 0, &r), RB_NDP_S_NO_PROGRAM);
	rb_guest_ndp_unload(vm0, 0, h);
}

TEST(io_outside_the_disk_gives_out_of_range)
{
	struct rb_guest_nd_result r;
	uint32_t h = must_load(vm1, "xrp_out_of_range", RB_NDP_PROG_XRP);
	REQUIRE(h != UINT32_MAX);
	CHECK_EQ_U64(run_xrp(vm1, h, 0, 0, &r), RB_NDP_S_OUT_OF_RANGE);
	CHECK_EQ_U64(r.hops, 1);
	/* The first I/O itself past the end. */
	CHECK_EQ_U64(run_xrp(vm1, h, IMG_BYTES, 0, &r), RB_NDP_S_OUT_OF_RANGE);
	CHECK_EQ_U64(r.hops, 0);
	rb_guest_ndp_unload(vm1, 0, h);
	CHECK(log_contains("leaves the"));
}

TEST(hop_limit_stops_the_chain)
{
	struct rb_guest_nd_result r;
	uint32_t h = must_load(vm1, "xrp_forever", RB_NDP_PROG_XRP);
	REQUIRE(h != UINT32_MAX);
	CHECK_EQ_U64(run_xrp(vm1, h, 0, 10, &r), RB_NDP_S_HOP_LIMIT);
	CHECK_EQ_U64(r.hops, 10);
	CHECK_EQ_U64(run_xrp(vm1, h, 0, 0, &r), RB_NDP_S_HOP_LIMIT);
	CHECK_EQ_U64(r.hops, RB_NDP_DEFAULT_HOPS);
	rb_guest_ndp_unload(vm1, 0, h);
}

TEST(verifier_rejects_unsafe_programs_at_load_with_its_log)
{
	/* Each would have faulted at run time; now LOAD refuses it and the
	 * guest gets the verifier's log: instruction, registers, reason. */
	static const struct {
		const char *section;
		uint32_t type;
		const char *reason;
	} bad[] = {
		{"xrp_fault", RB_NDP_PROG_XRP, "of the 4096-byte data"},
		{"cq_write_meta", RB_NDP_PROG_CQ, "the meta is read-only"},
		/* A cq program verified as xrp: wrong context. */
		{"cq_sum", RB_NDP_PROG_XRP, "is a number, not a pointer"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char log[4096] = "";
		uint32_t h = 0;
		int rc = load(vm1, test_progs_dir, "ndp_progs.o", bad[i].section, bad[i].type, &h, log,
			      sizeof(log));
		CHECK_EQ_U64(rc, -EINVAL);
		CHECK_STR_CONTAINS(log, bad[i].reason);
		CHECK_STR_CONTAINS(log, "registers");
		CHECK_STR_CONTAINS(log, "insn ");
	}
	CHECK(log_contains("rejected by the verifier"));
	CHECK_EQ_U64(rb_guest_ndp_unload(vm1, 0, 1), -ENOENT);
	CHECK(daemon_alive());
}

TEST(budget_and_bad_return_have_their_own_statuses)
{
	struct rb_guest_nd_result r;
	char log[1024] = "";
	uint32_t s = 0;
	/* Safe but endless: verified, and stopped by the budget. */
	REQUIRE(load(vm1, test_progs_dir, "ndp_progs.o", "xrp_spin", RB_NDP_PROG_XRP, &s, log,
		     sizeof(log)) == 0);
	CHECK_STR_CONTAINS(log, "verified in");
	uint32_t b = must_load(vm1, "cq_bad_return", RB_NDP_PROG_CQ);
	REQUIRE(s != UINT32_MAX && b != UINT32_MAX);
	CHECK_EQ_U64(run_xrp(vm1, s, 0, 0, &r), RB_NDP_S_BUDGET);
	static uint8_t data[512];
	struct rb_guest_nd nd = {.handle = b, .io_len = 512, .data = data, .data_len = 512};
	REQUIRE(rb_guest_read_nd(vm1, 0, &nd, &r) == 0);
	CHECK_EQ_U64(r.status, RB_NDP_S_FAULT);
	rb_guest_ndp_unload(vm1, 0, s);
	rb_guest_ndp_unload(vm1, 0, b);
	CHECK(daemon_alive());
}

TEST(cq_program_issues_several_ios_per_hop)
{
	uint32_t h = must_load(vm1, "cq_sum", RB_NDP_PROG_CQ);
	REQUIRE(h != UINT32_MAX);
	struct {
		uint32_t nblocks, stride;
	} meta = {9, 3};
	uint64_t scratch[2] = {0, 0};
	struct rb_guest_nd nd = {.handle = h, .offset = 512 * 4, .io_len = 512, .meta = &meta,
				 .meta_len = sizeof(meta), .scratch = scratch, .scratch_len = 16};
	struct rb_guest_nd_result r;
	REQUIRE(rb_guest_read_nd(vm1, 0, &nd, &r) == 0);
	CHECK_EQ_U64(r.status, RB_NDP_S_OK);
	uint64_t want = 0;
	for (unsigned i = 0; i < 9; i++)
		for (unsigned b = 0; b < 512; b++)
			want += img[(4 + i * 3) * 512 + b];
	CHECK_EQ_U64(scratch[0], want);
	CHECK_EQ_U64(scratch[1], 9);
	CHECK_EQ_U64(r.hops, 9);
	rb_guest_ndp_unload(vm1, 0, h);
}

TEST(helpers_describe_and_range_check_ios)
{
	uint32_t h = must_load(vm1, "cq_helpers", RB_NDP_PROG_CQ);
	REQUIRE(h != UINT32_MAX);
	int64_t scratch[8] = {0};
	struct rb_guest_nd nd = {.handle = h, .offset = 512 * 20, .io_len = 512, .scratch = scratch,
				 .scratch_len = sizeof(scratch)};
	struct rb_guest_nd_result r;
	REQUIRE(rb_guest_read_nd(vm1, 0, &nd, &r) == 0);
	CHECK_EQ_U64(r.status, RB_NDP_S_OK);
	CHECK_EQ_U64(r.hops, 4);
	CHECK_EQ_U64(scratch[0], 4);
	CHECK_EQ_U64(scratch[1], -ERANGE);
	CHECK_EQ_U64(scratch[2], -ERANGE);
	CHECK_EQ_U64(scratch[3], -EINVAL);
	for (int i = 0; i < 4; i++)
		CHECK_EQ_U64(scratch[4 + i], 512 * (20 + i));
	rb_guest_ndp_unload(vm1, 0, h);
}

/* Each helper with an out-buffer fills or zeroes it on every path: a
 * failing call must not leave what the buffer held before (the verifier
 * counts it written).  Failures return the codes rosen/prog.h documents. */
TEST(helper_failures_leave_no_stale_data)
{
	char log[1024];
	uint32_t h = 0;
	int rc = load(vm1, test_progs_dir, "helper_failures.o", "cq_helper_failures", RB_NDP_PROG_CQ,
		      &h, log, sizeof(log));
	if (rc)
		fprintf(stderr, "    load: %s\n", rb_guest_errmsg());
	REQUIRE(rc == 0);
	int64_t scratch[24];
	uint32_t key = 4242; /* never registered */
	memset(scratch, 0x5c, sizeof(scratch));
	struct rb_guest_nd nd = {.handle = h, .offset = 512 * 7, .io_len = 512, .meta = &key,
				 .meta_len = 4, .scratch = scratch, .scratch_len = sizeof(scratch)};
	struct rb_guest_nd_result r;
	REQUIRE(rb_guest_read_nd(vm1, 0, &nd, &r) == 0);
	REQUIRE(r.status == RB_NDP_S_OK);
	/* get_sqe of slots 5, 16 and 0xfffffffe (none exist): -EINVAL and a
	 * zeroed out-buffer on the stack... */
	for (int i = 0; i < 3; i++) {
		CHECK_EQ_U64(scratch[i * 3], -EINVAL);
		CHECK_EQ_U64(scratch[i * 3 + 1], 0);
		CHECK_EQ_U64(scratch[i * 3 + 2], 0);
	}
	/* ... and in scratch. */
	CHECK_EQ_U64(scratch[9], -EINVAL);
	CHECK_EQ_U64(scratch[10], 0);
	CHECK_EQ_U64(scratch[11], 0);
	/* new_sqe: slot 0, zeroed over the program's pattern; -ENOSPC at 17. */
	CHECK_EQ_U64(scratch[12], 0);
	CHECK_EQ_U64(scratch[13], 0);
	CHECK_EQ_U64(scratch[14], 0);
	CHECK_EQ_U64(scratch[15], -ENOSPC);
	/* set_sqe: bad slot -EINVAL; outside the disk, misaligned, too long
	 * -ERANGE; the slot unchanged. */
	CHECK_EQ_U64(scratch[16], -EINVAL);
	CHECK_EQ_U64(scratch[17], -ERANGE);
	CHECK_EQ_U64(scratch[18], -ERANGE);
	CHECK_EQ_U64(scratch[19], -ERANGE);
	CHECK_EQ_U64(scratch[20], 0);
	CHECK_EQ_U64(scratch[21], 0);
	/* disk_trans outside the disk: (u64)-ERANGE; mem_trans of an
	 * unknown key: NULL. */
	CHECK_EQ_U64(scratch[22], -ERANGE);
	CHECK_EQ_U64(scratch[23], 0);
	rb_guest_ndp_unload(vm1, 0, h);
}

TEST(registered_guest_memory_is_reachable_through_mem_trans)
{
	uint32_t h = must_load(vm1, "cq_mem_copy", RB_NDP_PROG_CQ);
	REQUIRE(h != UINT32_MAX);
	uint8_t *target = rb_guest_dma_alloc(vm1, 4096);
	uint32_t key = 0;
	REQUIRE(target);
	REQUIRE(rb_guest_ndp_reg_mem(vm1, 0, target, 4096, &key) == 0);
	static uint8_t data[512];
	struct rb_guest_nd nd = {.handle = h, .offset = 512 * 33, .io_len = 512, .meta = &key,
				 .meta_len = 4, .data = data, .data_len = 512};
	struct rb_guest_nd_result r;
	REQUIRE(rb_guest_read_nd(vm1, 0, &nd, &r) == 0);
	CHECK_EQ_U64(r.status, RB_NDP_S_OK);
	CHECK(memcmp(target, img + 512 * 33, 64) == 0); /* written by the program */
	/* Another key (not registered): refused, memory untouched. */
	memset(target, 0, 64);
	uint32_t bad = key + 1000;
	nd.meta = &bad;
	REQUIRE(rb_guest_read_nd(vm1, 0, &nd, &r) == 0);
	CHECK_EQ_U64(r.status, RB_NDP_S_OK);
	CHECK(target[0] == 0 && target[63] == 0);
	CHECK(rb_guest_ndp_unreg_mem(vm1, 0, key) == 0);
	CHECK(rb_guest_ndp_unreg_mem(vm1, 0, key) == -ENOENT);
	/* After unregistering, the program can no longer reach it. */
	nd.meta = &key;
	REQUIRE(rb_guest_read_nd(vm1, 0, &nd, &r) == 0);
	CHECK(target[0] == 0);
	rb_guest_dma_free(vm1, target);
	rb_guest_ndp_unload(vm1, 0, h);
}

TEST(registering_memory_the_guest_does_not_have_is_refused)
{
	uint32_t key;
	CHECK(rb_guest_ndp_reg_gpa(vm1, 0, 0x10, 4096, &key) == -EFAULT);
	CHECK(rb_guest_ndp_reg_gpa(vm1, 0, UINT64_MAX - 100, 4096, &key) == -EFAULT);
	CHECK(rb_guest_ndp_reg_gpa(vm1, 0, 0, 0, &key) == -EFAULT);
	/* The limit per VM. */
	uint8_t *b = rb_guest_dma_alloc(vm1, 4096);
	uint32_t keys[RB_NDP_MAX_REGIONS];
	for (unsigned i = 0; i < RB_NDP_MAX_REGIONS; i++)
		CHECK(rb_guest_ndp_reg_mem(vm1, 0, b, 4096, &keys[i]) == 0);
	CHECK(rb_guest_ndp_reg_mem(vm1, 0, b, 4096, &key) == -ENOSPC);
	for (unsigned i = 0; i < RB_NDP_MAX_REGIONS; i++)
		CHECK(rb_guest_ndp_unreg_mem(vm1, 0, keys[i]) == 0);
	rb_guest_dma_free(vm1, b);
}

TEST(sq_program_rewrites_the_first_io)
{
	uint32_t h = must_load(vm1, "sq_redirect", RB_NDP_PROG_SQ);
	REQUIRE(h != UINT32_MAX);
	uint64_t meta = 512 * 7;
	static uint8_t data[512];
	struct rb_guest_nd nd = {.handle = h, .offset = 0, .io_len = 512, .meta = &meta,
				 .meta_len = 8, .data = data, .data_len = 512};
	struct rb_guest_nd_result r;
	REQUIRE(rb_guest_read_nd(vm1, 0, &nd, &r) == 0);
	CHECK_EQ_U64(r.status, RB_NDP_S_OK);
	CHECK(memcmp(data, img + 512 * 7, 512) == 0);
	/* Redirected outside the disk: refused. */
	meta = (uint64_t)IMG_BYTES;
	REQUIRE(rb_guest_read_nd(vm1, 0, &nd, &r) == 0);
	CHECK_EQ_U64(r.status, RB_NDP_S_OUT_OF_RANGE);
	rb_guest_ndp_unload(vm1, 0, h);
}

TEST(write_nd_writes_then_runs_the_program)
{
	uint32_t h = must_load(vm1, "xrp_peek", RB_NDP_PROG_XRP);
	REQUIRE(h != UINT32_MAX);
	static uint8_t data[1024], scratch[4096];
	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 13 + 1);
	struct rb_guest_nd nd = {.handle = h, .offset = 512 * 100, .io_len = 1024, .scratch = scratch,
				 .scratch_len = 4096, .data = data, .data_len = 1024};
	struct rb_guest_nd_result r;
	REQUIRE(rb_guest_write_nd(vm1, 0, &nd, &r) == 0);
	CHECK_EQ_U64(r.status, RB_NDP_S_OK);
	CHECK(memcmp(scratch, data, 16) == 0);
	memcpy(img + 512 * 100, data, sizeof(data));
	size_t len;
	uint8_t *now = read_file(img_path, &len);
	REQUIRE(now);
	CHECK(memcmp(now + 512 * 100, data, sizeof(data)) == 0);
	free(now);
	rb_guest_ndp_unload(vm1, 0, h);
}

struct unload_arg {
	uint32_t handle;
	int rc;
};

static void *unload_later(void *arg)
{
	struct unload_arg *a = arg;
	struct timespec ts = {0, 2000000};
	nanosleep(&ts, NULL);
	a->rc = rb_guest_ndp_unload(vm1, 1, a->handle);
	return NULL;
}

TEST(unload_during_io_lets_the_request_finish)
{
	struct rb_guest_nd_result r;
	uint32_t h = must_load(vm1, "xrp_forever", RB_NDP_PROG_XRP);
	REQUIRE(h != UINT32_MAX);
	struct unload_arg a = {h, -1};
	pthread_t t;
	pthread_create(&t, NULL, unload_later, &a);
	uint32_t st = run_xrp(vm1, h, 0, 1024, &r);
	pthread_join(t, NULL);
	/* Either the request saw the program and ran to its hop limit, or the
	 * unload came first: never anything in between. */
	CHECK(st == RB_NDP_S_HOP_LIMIT || st == RB_NDP_S_NO_PROGRAM);
	if (st == RB_NDP_S_HOP_LIMIT)
		CHECK_EQ_U64(r.hops, 1024);
	CHECK_EQ_U64(a.rc, 0);
	CHECK_EQ_U64(run_xrp(vm1, h, 0, 0, &r), RB_NDP_S_NO_PROGRAM);
}

TEST(programs_belong_to_the_disk_and_survive_reconnects)
{
	struct rb_guest_nd_result r;
	uint32_t h = must_load(vm1, "xrp_peek", RB_NDP_PROG_XRP);
	REQUIRE(h != UINT32_MAX);
	rb_guest_close(vm1);
	struct rb_guest_opts o = {.num_queues = 2};
	vm1 = NULL;
	char uri[320];
	snprintf(uri, sizeof(uri), "vhost-user:%s", sock1);
	REQUIRE(rb_guest_open(uri, &o, &vm1) == 0);
	CHECK_EQ_U64(run_xrp(vm1, h, 0, 0, &r), RB_NDP_S_OK);
	rb_guest_ndp_unload(vm1, 0, h);
}

TEST(normal_io_still_served_after_all_of_it)
{
	uint8_t *b = rb_guest_dma_alloc(vm1, 4096);
	REQUIRE(b);
	memset(b, 0x3c, 4096);
	CHECK(rb_guest_write(vm1, 0, b, 8192, 4096) == 0);
	memset(b, 0, 4096);
	CHECK(rb_guest_read(vm1, 0, b, 8192, 4096) == 0);
	CHECK(b[0] == 0x3c && b[4095] == 0x3c);
	rb_guest_dma_free(vm1, b);
	CHECK(daemon_alive());
}

/* ---- files: NDP on a file's extent map --------------------------------------------- */

/*
 * vm2's disk holds kv.db as a deliberately fragmented "file": its 4 KiB
 * blocks lie shuffled over disk blocks 16.., and a marker pattern fills
 * every other byte of the disk, so a read that misses the map shows.
 * Disk blocks 1..15 hold the small test files below.
 */
#define FS_BYTES (8u << 20)
#define FS_BLOCK 4096u
#define MARKER "<ROSEN-MARKER!!>" /* 16 bytes */
static uint8_t *fsimg;                 /* the host's copy of vm2's image */
static uint8_t *kvf;                   /* kv.db as a file */
static uint64_t kv_len;
static struct rb_ndp_extent kv_ext[1024];
static unsigned kv_n;

/* Small files on disk blocks 1..: "holey" = file [0,4K) on block 2, a hole
 * [4K,8K), [8K,12K) on block 3, nothing mapped in [12K,20000): size 20000. */
#define HOLEY_SIZE 20000u
static const struct rb_ndp_extent holey_ext[] = {
	{0, 2 * FS_BLOCK, FS_BLOCK}, {2 * FS_BLOCK, 3 * FS_BLOCK, FS_BLOCK}};

static int build_fs(void)
{
	uint32_t perm[FS_BYTES / FS_BLOCK];
	uint64_t rng = 0x5eed;
	size_t len;

	kvf = read_file(kv_path, &len);
	if (!kvf || len % 512)
		return -1;
	kv_len = len;
	fsimg = malloc(FS_BYTES);
	for (size_t i = 0; i < FS_BYTES; i += 16)
		memcpy(fsimg + i, MARKER, 16);
	/* Blocks 1..15: each sector says where it is on the disk. */
	for (unsigned b = 1; b < 16; b++)
		for (unsigned sct = 0; sct < 8; sct++)
			memset(fsimg + b * FS_BLOCK + sct * 512, 0x80 + (int)(b * 8 + sct) % 128, 512);
	unsigned nb = (unsigned)((len + FS_BLOCK - 1) / FS_BLOCK), avail = FS_BYTES / FS_BLOCK - 16;
	if (nb > avail || nb > sizeof(kv_ext) / sizeof(kv_ext[0]))
		return -1;
	for (unsigned i = 0; i < avail; i++)
		perm[i] = 16 + i;
	for (unsigned i = avail - 1; i > 0; i--) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		unsigned j = (unsigned)((rng >> 33) % (i + 1));
		uint32_t t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	for (unsigned i = 0; i < nb; i++) {
		uint64_t fo = (uint64_t)i * FS_BLOCK, l = len - fo < FS_BLOCK ? len - fo : FS_BLOCK;
		kv_ext[i] = (struct rb_ndp_extent){fo, (uint64_t)perm[i] * FS_BLOCK, l};
		memcpy(fsimg + kv_ext[i].disk_off, kvf + fo, l);
	}
	kv_n = nb;
	FILE *f = fopen(fs_path, "wb");
	if (!f || fwrite(fsimg, 1, FS_BYTES, f) != FS_BYTES)
		return -1;
	return fclose(f);
}

static uint32_t reg_file(struct rb_guest_dev *d, const struct rb_ndp_extent *e, unsigned n,
			 uint64_t size)
{
	uint32_t key = 0;
	int rc = rb_guest_ndp_reg_file(d, 0, e, n, size, &key);
	if (rc)
		fprintf(stderr, "    reg_file: %s\n", rb_guest_errmsg());
	return rc ? 0 : key;
}

/* A file READ_ND with a 4096-byte data buffer and scratch. */
static uint32_t file_nd(struct rb_guest_dev *d, uint32_t h, uint32_t key, uint64_t off,
			uint32_t io_len, uint32_t hops, const void *meta, uint32_t meta_len,
			uint8_t data[4096], struct rb_guest_nd_result *res)
{
	static uint8_t scratch[4096];
	struct rb_guest_nd nd = {.handle = h, .offset = off, .io_len = io_len, .meta = meta,
				 .meta_len = meta_len, .scratch = scratch, .scratch_len = 4096,
				 .data = data, .data_len = 4096, .max_hops = hops,
				 .flags = RB_GUEST_ND_FILE, .file_key = key};
	memset(res, 0, sizeof(*res));
	memset(scratch, 0, sizeof(scratch));
	if (rb_guest_read_nd(d, 0, &nd, res))
		return UINT32_MAX;
	return res->status;
}

/* The daemon logs at most 10 guest-triggered lines a second per queue:
 * a test that looks for its lines starts a fresh window. */
static void fresh_log_window(void)
{
	struct timespec ts = {1, 100000000};
	nanosleep(&ts, NULL);
}

static bool has_marker(const void *p, size_t len)
{
	return memmem(p, len, "MARKER", 6) != NULL;
}

TEST(files_bpfkv_lookups_on_a_fragmented_file_with_unchanged_xrp_programs)
{
	char log[1024];
	uint32_t lookup, get;
	uint32_t key = reg_file(vm2, kv_ext, kv_n, kv_len);
	REQUIRE(key);
	REQUIRE(load(vm2, progs_dir, "bpfkv_xrp_lookup.o", "bpfkv_xrp_lookup", RB_NDP_PROG_XRP, &lookup,
		     log, sizeof(log)) == 0);
	REQUIRE(load(vm2, progs_dir, "bpfkv_xrp_get.o", "bpfkv_xrp_get", RB_NDP_PROG_XRP, &get, log,
		     sizeof(log)) == 0);
	uint64_t keys = ipow(BPFKV_FANOUT, LEVELS), rng = 99;
	static uint8_t scratch[4096], data[4096];
	unsigned bad = 0;
	/* One key per READ_ND (bpfkv_xrp_lookup): root at file offset 0. */
	for (int i = 0; i < 300; i++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t k = i < 2 ? (i ? keys - 1 : 0) : i % 10 == 9 ? keys + rng % 1000 : (rng >> 11) % keys;
		memset(scratch, 0, sizeof(scratch));
		memcpy(scratch, &k, 8);
		struct rb_guest_nd nd = {.handle = lookup, .offset = 0, .io_len = 512, .scratch = scratch,
					 .scratch_len = 4096, .data = data, .data_len = 4096,
					 .flags = RB_GUEST_ND_FILE, .file_key = key};
		struct rb_guest_nd_result res;
		REQUIRE(rb_guest_read_nd(vm2, 0, &nd, &res) == 0);
		struct kv_scratch *s = (void *)scratch;
		char want[65];
		snprintf(want, sizeof(want), "%63llu", (unsigned long long)k);
		bool found = k < keys;
		if (res.status != RB_NDP_S_OK || s->found != found ||
		    res.hops != (found ? LEVELS + 1 : LEVELS) || (found && memcmp(s->value, want, 64)) ||
		    has_marker(data, 512) || has_marker(s->value, 64)) {
			if (bad++ < 3)
				RT_FAIL_AT("key %llu: status %s, found %llu, hops %u, value '%.64s'",
					   (unsigned long long)k, rb_ndp_status_name(res.status),
					   (unsigned long long)s->found, res.hops, s->value);
		}
	}
	/* Batches of 32 keys (bpfkv_xrp_get, as bpfkv --mode ndp drives it). */
	for (int b = 0; b < 20; b++) {
		struct bpfkv_get_scratch *g = (void *)scratch;
		memset(scratch, 0, sizeof(scratch));
		g->n = BPFKV_BATCH_MAX;
		unsigned want_hops = 0;
		for (unsigned i = 0; i < BPFKV_BATCH_MAX; i++) {
			rng = rng * 6364136223846793005ull + 1442695040888963407ull;
			g->e[i].key = (rng >> 11) % (keys + keys / 16);
			want_hops += g->e[i].key < keys ? LEVELS + 1 : LEVELS;
		}
		struct rb_guest_nd nd = {.handle = get, .offset = 0, .io_len = 512, .scratch = scratch,
					 .scratch_len = BPFKV_GET_SCRATCH_LEN(BPFKV_BATCH_MAX),
					 .max_hops = RB_NDP_MAX_HOPS, .flags = RB_GUEST_ND_FILE,
					 .file_key = key};
		struct rb_guest_nd_result res;
		REQUIRE(rb_guest_read_nd(vm2, 0, &nd, &res) == 0);
		CHECK_EQ_U64(res.status, RB_NDP_S_OK);
		CHECK_EQ_U64(res.hops, want_hops);
		for (unsigned i = 0; i < BPFKV_BATCH_MAX; i++) {
			char want[65];
			snprintf(want, sizeof(want), "%63llu", (unsigned long long)g->e[i].key);
			bool found = g->e[i].key < keys;
			if (g->e[i].found != found || (found && memcmp(g->e[i].value, want, 64)) ||
			    has_marker(g->e[i].value, 64)) {
				if (bad++ < 3)
					RT_FAIL_AT("batch %d key %llu: found %llu, value '%.64s'", b,
						   (unsigned long long)g->e[i].key,
						   (unsigned long long)g->e[i].found, g->e[i].value);
			}
		}
	}
	CHECK_EQ_U64(bad, 0);
	/* The same request on the raw disk reads the marker at offset 0:
	 * the answers above came through the map. */
	uint64_t k0 = 5;
	memset(scratch, 0, sizeof(scratch));
	memcpy(scratch, &k0, 8);
	struct rb_guest_nd raw = {.handle = lookup, .offset = 0, .io_len = 512, .scratch = scratch,
				  .scratch_len = 4096, .data = data, .data_len = 4096};
	struct rb_guest_nd_result res;
	REQUIRE(rb_guest_read_nd(vm2, 0, &raw, &res) == 0);
	CHECK(has_marker(data, 512));
	rb_guest_ndp_unload(vm2, 0, lookup);
	rb_guest_ndp_unload(vm2, 0, get);
	CHECK(rb_guest_ndp_unreg_file(vm2, 0, key) == 0);
}

TEST(files_io_crossing_extents_is_split_into_consecutive_buffer_parts)
{
	uint32_t h = must_load(vm2, "xrp_peek", RB_NDP_PROG_XRP);
	uint32_t key = reg_file(vm2, kv_ext, kv_n, kv_len);
	REQUIRE(h != UINT32_MAX && key);
	static uint8_t data[4096];
	struct rb_guest_nd_result r;
	/* 4096 bytes from the middle of file block b into block b + 1. */
	static const uint64_t offs[] = {2048, 4096 - 512, 3 * 4096 + 1536, 4096 * 7 + 3584};
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		memset(data, 0, sizeof(data));
		CHECK_EQ_U64(file_nd(vm2, h, key, offs[i], 4096, 0, NULL, 0, data, &r), RB_NDP_S_OK);
		CHECK_EQ_U64(r.hops, 1);
		CHECK_EQ_U64(r.bytes, 4096);
		if (memcmp(data, kvf + offs[i], 4096))
			RT_FAIL_AT("4096 bytes at file offset %llu differ from the file",
				   (unsigned long long)offs[i]);
	}
	CHECK(rb_guest_ndp_unreg_file(vm2, 0, key) == 0);
	/* "Confetti": eight 512-byte extents, backwards on disk block 1: one
	 * 4096-byte read is eight disk I/Os, each landing in its place. */
	struct rb_ndp_extent conf[8];
	for (unsigned j = 0; j < 8; j++)
		conf[j] = (struct rb_ndp_extent){j * 512, FS_BLOCK + (7 - j) * 512, 512};
	key = reg_file(vm2, conf, 8, 4096);
	REQUIRE(key);
	memset(data, 0, sizeof(data));
	CHECK_EQ_U64(file_nd(vm2, h, key, 0, 4096, 0, NULL, 0, data, &r), RB_NDP_S_OK);
	CHECK_EQ_U64(r.hops, 1);
	for (unsigned j = 0; j < 8; j++)
		CHECK(memcmp(data + j * 512, fsimg + FS_BLOCK + (7 - j) * 512, 512) == 0);
	CHECK(rb_guest_ndp_unreg_file(vm2, 0, key) == 0);
	rb_guest_ndp_unload(vm2, 0, h);
}

TEST(files_holes_past_eof_and_outside_the_map_are_out_of_range)
{
	uint32_t peek = must_load(vm2, "xrp_peek", RB_NDP_PROG_XRP);
	uint32_t redir = must_load(vm2, "sq_redirect", RB_NDP_PROG_SQ);
	uint32_t oor = must_load(vm2, "xrp_out_of_range", RB_NDP_PROG_XRP);
	uint32_t key = reg_file(vm2, holey_ext, 2, HOLEY_SIZE);
	fresh_log_window();
	REQUIRE(peek != UINT32_MAX && redir != UINT32_MAX && oor != UINT32_MAX && key);
	static uint8_t data[4096];
	struct rb_guest_nd_result r;
	CHECK_EQ_U64(file_nd(vm2, peek, key, 512, 512, 0, NULL, 0, data, &r), RB_NDP_S_OK);
	CHECK(memcmp(data, fsimg + 2 * FS_BLOCK + 512, 512) == 0);
	/* The first I/O: in the hole, into it, outside the map, past EOF. */
	static const struct {
		uint64_t off;
		uint32_t len;
	} bad[] = {{4096, 512}, {3584, 1024}, {12288, 512}, {19968, 512}, {20480, 512}, {1ull << 50, 512}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ_U64(file_nd(vm2, peek, key, bad[i].off, bad[i].len, 0, NULL, 0, data, &r),
			     RB_NDP_S_OUT_OF_RANGE);
		CHECK_EQ_U64(r.hops, 0);
	}
	/* The last sector, partial in the file, is the file's. */
	struct rb_ndp_extent tail[] = {{0, 4 * FS_BLOCK, 1024}};
	uint32_t k2 = reg_file(vm2, tail, 1, 700);
	REQUIRE(k2);
	CHECK_EQ_U64(file_nd(vm2, peek, k2, 512, 512, 0, NULL, 0, data, &r), RB_NDP_S_OK);
	CHECK_EQ_U64(file_nd(vm2, peek, k2, 1024, 512, 0, NULL, 0, data, &r), RB_NDP_S_OUT_OF_RANGE);
	CHECK(rb_guest_ndp_unreg_file(vm2, 0, k2) == 0);
	/* What an sq program rewrites the I/O to is a file offset too. */
	uint64_t meta = 2 * FS_BLOCK + 1024;
	CHECK_EQ_U64(file_nd(vm2, redir, key, 0, 512, 0, &meta, 8, data, &r), RB_NDP_S_OK);
	CHECK(memcmp(data, fsimg + 3 * FS_BLOCK + 1024, 512) == 0);
	static const uint64_t bad_redirect[] = {4096, 12288, 20480, 2 * FS_BLOCK}; /* last: disk offset of ext 0 */
	for (size_t i = 0; i < 3; i++) {
		meta = bad_redirect[i];
		CHECK_EQ_U64(file_nd(vm2, redir, key, 0, 512, 0, &meta, 8, data, &r), RB_NDP_S_OUT_OF_RANGE);
	}
	/* A disk offset means the file's offset 8192: its data, not block 2's. */
	meta = bad_redirect[3];
	CHECK_EQ_U64(file_nd(vm2, redir, key, 0, 512, 0, &meta, 8, data, &r), RB_NDP_S_OK);
	CHECK(memcmp(data, fsimg + 3 * FS_BLOCK, 512) == 0);
	/* An xrp program asking for far past the file. */
	CHECK_EQ_U64(file_nd(vm2, oor, key, 0, 512, 0, NULL, 0, data, &r), RB_NDP_S_OUT_OF_RANGE);
	CHECK_EQ_U64(r.hops, 1);
	CHECK(log_contains("is not in the file's map"));
	CHECK(log_contains("goes past the file's size"));
	CHECK(rb_guest_ndp_unreg_file(vm2, 0, key) == 0);
	rb_guest_ndp_unload(vm2, 0, peek);
	rb_guest_ndp_unload(vm2, 0, redir);
	rb_guest_ndp_unload(vm2, 0, oor);
}

struct view_meta {
	uint64_t probe[4], stride, hops;
};
struct view_scratch {
	uint64_t hops, off[4], head[4];
	int64_t trans[4];
};

TEST(files_cq_programs_see_file_offsets_and_disk_trans_checks_the_map)
{
	char log[1024];
	uint32_t view = UINT32_MAX;
	if (load(vm2, test_progs_dir, "ndp_file_progs.o", "cq_file_view", RB_NDP_PROG_CQ, &view, log,
		 sizeof(log)))
		fprintf(stderr, "    load cq_file_view: %s\n", rb_guest_errmsg());
	uint32_t sum = must_load(vm2, "cq_sum", RB_NDP_PROG_CQ);
	uint32_t helpers = must_load(vm2, "cq_helpers", RB_NDP_PROG_CQ);
	uint32_t key = reg_file(vm2, kv_ext, kv_n, kv_len);
	uint32_t holey = reg_file(vm2, holey_ext, 2, HOLEY_SIZE);
	REQUIRE(view != UINT32_MAX && sum != UINT32_MAX && helpers != UINT32_MAX && key && holey);
	struct view_meta m = {{0, 5000, kv_len, 1ull << 50}, 4096, 4};
	struct view_scratch s = {0};
	struct rb_guest_nd nd = {.handle = view, .offset = 0, .io_len = 512, .meta = &m,
				 .meta_len = sizeof(m), .scratch = &s, .scratch_len = sizeof(s),
				 .flags = RB_GUEST_ND_FILE, .file_key = key};
	struct rb_guest_nd_result r;
	REQUIRE(rb_guest_read_nd(vm2, 0, &nd, &r) == 0);
	CHECK_EQ_U64(r.status, RB_NDP_S_OK);
	CHECK_EQ_U64(s.hops, 4);
	for (unsigned i = 0; i < 4; i++) {
		uint64_t head;
		memcpy(&head, kvf + i * 4096, 8);
		CHECK_EQ_U64(s.off[i], i * 4096);
		CHECK_EQ_U64(s.head[i], head);
	}
	CHECK_EQ_U64(s.trans[0], 0);
	CHECK_EQ_U64(s.trans[1], 5000);
	CHECK_EQ_U64(s.trans[2], -ERANGE);
	CHECK_EQ_U64(s.trans[3], -ERANGE);
	/* On the holey file: the hole and the unmapped tail are -ERANGE. */
	struct view_meta hm = {{4096 + 8, 2 * FS_BLOCK + 100, 12288, HOLEY_SIZE - 1}, 8192, 2};
	memset(&s, 0, sizeof(s));
	nd.meta = &hm;
	nd.file_key = holey;
	REQUIRE(rb_guest_read_nd(vm2, 0, &nd, &r) == 0);
	CHECK_EQ_U64(r.status, RB_NDP_S_OK);
	CHECK_EQ_U64(s.hops, 2);
	CHECK_EQ_U64(s.off[0], 0);
	CHECK_EQ_U64(s.off[1], 8192);
	CHECK(memcmp(&s.head[0], fsimg + 2 * FS_BLOCK, 8) == 0);
	CHECK(memcmp(&s.head[1], fsimg + 3 * FS_BLOCK, 8) == 0);
	CHECK_EQ_U64(s.trans[0], -ERANGE);
	CHECK_EQ_U64(s.trans[1], 2 * FS_BLOCK + 100);
	CHECK_EQ_U64(s.trans[2], -ERANGE);
	CHECK_EQ_U64(s.trans[3], -ERANGE);
	/* Two file I/Os per hop, each translated on its own. */
	struct {
		uint32_t nblocks, stride;
	} sm = {9, 5};
	uint64_t ss[2] = {0, 0};
	struct rb_guest_nd snd = {.handle = sum, .offset = 512 * 6, .io_len = 512, .meta = &sm,
				  .meta_len = sizeof(sm), .scratch = ss, .scratch_len = 16,
				  .flags = RB_GUEST_ND_FILE, .file_key = key};
	REQUIRE(rb_guest_read_nd(vm2, 0, &snd, &r) == 0);
	CHECK_EQ_U64(r.status, RB_NDP_S_OK);
	uint64_t want = 0;
	for (unsigned i = 0; i < 9; i++)
		for (unsigned b = 0; b < 512; b++)
			want += kvf[(6 + i * 5) * 512 + b];
	CHECK_EQ_U64(ss[0], want);
	CHECK_EQ_U64(ss[1], 9);
	CHECK_EQ_U64(r.hops, 9);
	/* The helpers: get_sqe shows file offsets, set_sqe checks the map. */
	int64_t hs[8] = {0};
	struct rb_guest_nd hnd = {.handle = helpers, .offset = 512 * 20, .io_len = 512, .scratch = hs,
				  .scratch_len = sizeof(hs), .flags = RB_GUEST_ND_FILE, .file_key = key};
	REQUIRE(rb_guest_read_nd(vm2, 0, &hnd, &r) == 0);
	CHECK_EQ_U64(r.status, RB_NDP_S_OK);
	CHECK_EQ_U64(hs[0], 4);
	CHECK_EQ_U64(hs[1], -ERANGE);
	CHECK_EQ_U64(hs[2], -ERANGE);
	for (int i = 0; i < 4; i++)
		CHECK_EQ_U64(hs[4 + i], 512 * (20 + i));
	/* set_sqe into the hole of the holey file: -ERANGE, and the program
	 * then fails (returns 9). */
	memset(hs, 0, sizeof(hs));
	hnd.offset = 4096 - 512;
	hnd.file_key = holey;
	REQUIRE(rb_guest_read_nd(vm2, 0, &hnd, &r) == 0);
	CHECK_EQ_U64(r.status, RB_NDP_S_FAULT);
	CHECK_EQ_U64(r.retval, 9);
	CHECK(rb_guest_ndp_unreg_file(vm2, 0, key) == 0);
	CHECK(rb_guest_ndp_unreg_file(vm2, 0, holey) == 0);
	rb_guest_ndp_unload(vm2, 0, view);
	rb_guest_ndp_unload(vm2, 0, sum);
	rb_guest_ndp_unload(vm2, 0, helpers);
}

TEST(files_unknown_stale_and_other_vms_keys_give_no_program)
{
	uint32_t h = must_load(vm2, "xrp_peek", RB_NDP_PROG_XRP);
	uint32_t h1 = must_load(vm1, "xrp_peek", RB_NDP_PROG_XRP);
	REQUIRE(h != UINT32_MAX && h1 != UINT32_MAX);
	static uint8_t data[4096];
	struct rb_guest_nd_result r;
	fresh_log_window();
	CHECK_EQ_U64(file_nd(vm2, h, 0xdead, 0, 512, 0, NULL, 0, data, &r), RB_NDP_S_NO_PROGRAM);
	CHECK_EQ_U64(r.hops, 0);
	CHECK(log_contains("no file with key 57005 on this disk"));
	/* Key 0 never names a file: a malformed request. */
	CHECK_EQ_U64(file_nd(vm2, h, 0, 0, 512, 0, NULL, 0, data, &r), RB_NDP_S_BAD_REQUEST);
	uint32_t key = reg_file(vm2, holey_ext, 2, HOLEY_SIZE);
	REQUIRE(key);
	CHECK_EQ_U64(file_nd(vm2, h, key, 0, 512, 0, NULL, 0, data, &r), RB_NDP_S_OK);
	CHECK_EQ_U64(file_nd(vm1, h1, key, 0, 512, 0, NULL, 0, data, &r), RB_NDP_S_NO_PROGRAM);
	CHECK(rb_guest_ndp_unreg_file(vm2, 0, key) == 0);
	CHECK(rb_guest_ndp_unreg_file(vm2, 0, key) == -ENOENT);
	CHECK_EQ_U64(file_nd(vm2, h, key, 0, 512, 0, NULL, 0, data, &r), RB_NDP_S_NO_PROGRAM);
	/* The slot comes back under a new key; the stale one stays dead. */
	uint32_t again = reg_file(vm2, holey_ext, 2, HOLEY_SIZE);
	REQUIRE(again);
	CHECK(again != key);
	CHECK_EQ_U64(file_nd(vm2, h, key, 0, 512, 0, NULL, 0, data, &r), RB_NDP_S_NO_PROGRAM);
	CHECK_EQ_U64(file_nd(vm2, h, again, 0, 512, 0, NULL, 0, data, &r), RB_NDP_S_OK);
	/* At most RB_NDP_MAX_FILES per VM. */
	uint32_t k[RB_NDP_MAX_FILES];
	k[0] = again;
	for (unsigned i = 1; i < RB_NDP_MAX_FILES; i++)
		CHECK((k[i] = reg_file(vm2, holey_ext, 2, HOLEY_SIZE)) != 0);
	uint32_t extra;
	CHECK(rb_guest_ndp_reg_file(vm2, 0, holey_ext, 2, HOLEY_SIZE, &extra) == -ENOSPC);
	for (unsigned i = 0; i < RB_NDP_MAX_FILES; i++)
		CHECK(rb_guest_ndp_unreg_file(vm2, 0, k[i]) == 0);
	/* A map the device refuses: -EINVAL, with the reason in its log. */
	struct rb_ndp_extent outside[] = {{0, FS_BYTES - 512, 4096}};
	fresh_log_window();
	CHECK(rb_guest_ndp_reg_file(vm2, 0, outside, 1, 4096, &extra) == -EINVAL);
	CHECK(log_contains("REG_FILE refused: extent 0"));
	rb_guest_ndp_unload(vm2, 0, h);
	rb_guest_ndp_unload(vm1, 0, h1);
}

struct unreg_arg {
	uint32_t key;
	int rc;
};

static void *unreg_later(void *arg)
{
	struct unreg_arg *a = arg;
	struct timespec ts = {0, 2000000};
	nanosleep(&ts, NULL);
	a->rc = rb_guest_ndp_unreg_file(vm2, 1, a->key);
	return NULL;
}

TEST(files_unreg_during_a_request_lets_it_finish_with_its_map)
{
	uint32_t h = must_load(vm2, "xrp_forever", RB_NDP_PROG_XRP);
	REQUIRE(h != UINT32_MAX);
	static uint8_t data[4096];
	struct rb_guest_nd_result r;
	for (int round = 0; round < 3; round++) {
		uint32_t key = reg_file(vm2, holey_ext, 2, HOLEY_SIZE);
		REQUIRE(key);
		struct unreg_arg a = {key, -1};
		pthread_t t;
		pthread_create(&t, NULL, unreg_later, &a);
		uint32_t st = file_nd(vm2, h, key, 0, 512, 1024, NULL, 0, data, &r);
		pthread_join(t, NULL);
		CHECK(st == RB_NDP_S_HOP_LIMIT || st == RB_NDP_S_NO_PROGRAM);
		if (st == RB_NDP_S_HOP_LIMIT)
			CHECK_EQ_U64(r.hops, 1024);
		CHECK(memcmp(data, fsimg + 2 * FS_BLOCK, 512) == 0 || st == RB_NDP_S_NO_PROGRAM);
		CHECK_EQ_U64(a.rc, 0);
		CHECK_EQ_U64(file_nd(vm2, h, key, 0, 512, 0, NULL, 0, data, &r), RB_NDP_S_NO_PROGRAM);
	}
	rb_guest_ndp_unload(vm2, 0, h);
	CHECK(daemon_alive());
}

TEST(files_write_nd_writes_only_blocks_the_file_has)
{
	uint32_t h = must_load(vm2, "xrp_peek", RB_NDP_PROG_XRP);
	/* [0, 4K) on disk block 5, [4K, 8K) on block 4: a write across
	 * both lands in two places; [8K, 12K) is a hole. */
	struct rb_ndp_extent e[] = {{0, 5 * FS_BLOCK, FS_BLOCK}, {FS_BLOCK, 4 * FS_BLOCK, FS_BLOCK}};
	uint32_t key = reg_file(vm2, e, 2, 3 * FS_BLOCK);
	REQUIRE(h != UINT32_MAX && key);
	static uint8_t data[2048], scratch[4096];
	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + 3);
	struct rb_guest_nd nd = {.handle = h, .offset = FS_BLOCK - 1024, .io_len = 2048,
				 .scratch = scratch, .scratch_len = 4096, .data = data,
				 .data_len = 2048, .flags = RB_GUEST_ND_FILE, .file_key = key};
	struct rb_guest_nd_result r;
	REQUIRE(rb_guest_write_nd(vm2, 0, &nd, &r) == 0);
	CHECK_EQ_U64(r.status, RB_NDP_S_OK);
	CHECK_EQ_U64(r.hops, 1);
	CHECK(memcmp(scratch, data, 16) == 0);
	memcpy(fsimg + 6 * FS_BLOCK - 1024, data, 1024);
	memcpy(fsimg + 4 * FS_BLOCK, data + 1024, 1024);
	/* Into the hole and past the end: nothing written. */
	nd.offset = 2 * FS_BLOCK - 1024;
	REQUIRE(rb_guest_write_nd(vm2, 0, &nd, &r) == 0);
	CHECK_EQ_U64(r.status, RB_NDP_S_OUT_OF_RANGE);
	CHECK_EQ_U64(r.hops, 0);
	nd.offset = 3 * FS_BLOCK;
	REQUIRE(rb_guest_write_nd(vm2, 0, &nd, &r) == 0);
	CHECK_EQ_U64(r.status, RB_NDP_S_OUT_OF_RANGE);
	size_t len;
	uint8_t *now = read_file(fs_path, &len);
	REQUIRE(now && len == FS_BYTES);
	CHECK(memcmp(now, fsimg, FS_BYTES) == 0);
	free(now);
	CHECK(rb_guest_ndp_unreg_file(vm2, 0, key) == 0);
	rb_guest_ndp_unload(vm2, 0, h);
}

/* ---- main ------------------------------------------------------------------------ */

static int start_daemon(void)
{
	daemon_pid = fork();
	if (daemon_pid == 0) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 2);
		execl(daemon_bin, daemon_bin, "--disk", kv_path, "--socket", sock0, "--cache",
		      "buffered", "--disk", img_path, "--socket", sock1, "--queues", "2", "--disk", fs_path,
		      "--socket", sock2, "--queues", "2", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		if (access(sock0, F_OK) == 0 && access(sock1, F_OK) == 0 && access(sock2, F_OK) == 0)
			return 0;
		struct timespec ts = {0, 10000000};
		nanosleep(&ts, NULL);
	}
	return -1;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: test_ndp DAEMON PROGS_DIR TEST_PROGS_DIR\n");
		return 2;
	}
	daemon_bin = argv[1];
	progs_dir = argv[2];
	test_progs_dir = argv[3];
	snprintf(dir, sizeof(dir), "/var/tmp/rosen-ndp-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(kv_path, sizeof(kv_path), "%s/kv.db", dir);
	snprintf(img_path, sizeof(img_path), "%s/img", dir);
	snprintf(sock0, sizeof(sock0), "%s/vm0.sock", dir);
	snprintf(sock1, sizeof(sock1), "%s/vm1.sock", dir);
	snprintf(log_path, sizeof(log_path), "%s/daemon.log", dir);
	snprintf(fs_path, sizeof(fs_path), "%s/fs", dir);
	snprintf(sock2, sizeof(sock2), "%s/vm2.sock", dir);
	build_kv(kv_path);
	if (build_fs()) {
		fprintf(stderr, "cannot lay out the fragmented file\n");
		printf("0 passed, 1 failed\n");
		return 1;
	}
	img = malloc(IMG_BYTES);
	for (size_t i = 0; i < IMG_BYTES; i++)
		img[i] = (uint8_t)((i * 2654435761u) >> 13);
	FILE *f = fopen(img_path, "wb");
	fwrite(img, 1, IMG_BYTES, f);
	fclose(f);
	if (start_daemon()) {
		fprintf(stderr, "rosenbridged did not start (log: %s)\n", log_path);
		printf("0 passed, 1 failed\n");
		return 1;
	}
	char u0[320], u1[320];
	snprintf(u0, sizeof(u0), "vhost-user:%s", sock0);
	snprintf(u1, sizeof(u1), "vhost-user:%s", sock1);
	struct rb_guest_opts o = {.num_queues = 1}, o2 = {.num_queues = 2};
	char u2[320];
	snprintf(u2, sizeof(u2), "vhost-user:%s", sock2);
	if (rb_guest_open(u0, &o, &vm0) || rb_guest_open(u1, &o2, &vm1) || rb_guest_open(u2, &o2, &vm2)) {
		fprintf(stderr, "cannot open the devices: %s\n", rb_guest_errmsg());
		kill(daemon_pid, SIGTERM);
		printf("0 passed, 1 failed\n");
		return 1;
	}
	int rc = rt_main(1, argv);
	rb_guest_close(vm0);
	rb_guest_close(vm1);
	rb_guest_close(vm2);
	kill(daemon_pid, SIGTERM);
	int status = 0;
	waitpid(daemon_pid, &status, 0);
	if (rc == 0) {
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd))
			fprintf(stderr, "could not remove %s\n", dir);
	} else {
		fprintf(stderr, "kept %s (daemon log: %s)\n", dir, log_path);
	}
	return rc;
}
