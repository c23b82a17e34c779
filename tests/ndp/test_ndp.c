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

#include "../../progs/bpfkv_node.h"
#include "../unit/harness.h"

static char dir[256], kv_path[300], img_path[300], sock0[300], sock1[300], log_path[300];
static const char *daemon_bin, *progs_dir, *test_progs_dir;
static pid_t daemon_pid;
static struct rb_guest_dev *vm0, *vm1; /* vm0 serves kv.db, vm1 serves img */
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

/* ---- main ------------------------------------------------------------------------ */

static int start_daemon(void)
{
	daemon_pid = fork();
	if (daemon_pid == 0) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 2);
		execl(daemon_bin, daemon_bin, "--disk", kv_path, "--socket", sock0, "--cache",
		      "buffered", "--disk", img_path, "--socket", sock1, "--queues", "2", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		if (access(sock0, F_OK) == 0 && access(sock1, F_OK) == 0)
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
	build_kv(kv_path);
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
	if (rb_guest_open(u0, &o, &vm0) || rb_guest_open(u1, &o2, &vm1)) {
		fprintf(stderr, "cannot open the devices: %s\n", rb_guest_errmsg());
		kill(daemon_pid, SIGTERM);
		printf("0 passed, 1 failed\n");
		return 1;
	}
	int rc = rt_main(1, argv);
	rb_guest_close(vm0);
	rb_guest_close(vm1);
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
