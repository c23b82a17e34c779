/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for what a guest reaches in lib/ndp: READ_ND/WRITE_ND
 * parsing (wire.c), the run of a request's program hop by hop with the
 * storage results the input chooses (exec.c: every I/O a program asks for
 * must be range-checked, and on a file request translated through the
 * file's map), REG_FILE maps (file.c: check and translate) and a VM's
 * table of programs, registered memory and files (table.c: LOAD, UNLOAD,
 * stale handles and keys, references that outlive an UNREG).  A request's
 * segments are heap buffers of their own (ASan sees one byte past), its
 * data, scratch and metadata buffers and the registered guest memory sit
 * between PROT_NONE guard pages (the JIT'd programs run unchecked).
 *
 * Input (little-endian; missing bytes are zero):
 *   [0..7]  disk capacity in 512-byte sectors (% 2^40)
 *   [8]     number of requests (at most 48)
 *   then the requests, each an op byte (% 8) and its fields (see the
 *   cases of one_request()).
 *
 * Programs: the test and BPF-KV programs of tests/programs and progs/ are
 * loaded once, into a table of their own, and named by io.handle when its
 * top bit is clear (handle % count); a handle with the top bit set names a
 * program this input LOADed into its own table.
 */
#include "fuzz_common.h"

#include "../../lib/ndp/ndp_internal.h"

#include <rosen/log.h>
#include <rosen/ndp.h>

#include <errno.h>

#define T "fuzz_ndp"

#define MAX_SEGS 16u
#define MAX_EXT 64u
#define MAX_ROUNDS 40u
#define GMEM_GPA 0x100000ull
#define GMEM_LEN 0x10000u

static const struct {
	const char *path, *section;
	uint32_t type;
} progs[] = {
	{TEST_PROGS_DIR "/ndp_progs.o", "cq_sum", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/ndp_progs.o", "sq_redirect", RB_NDP_PROG_SQ},
	{TEST_PROGS_DIR "/ndp_progs.o", "cq_bad_return", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/ndp_progs.o", "xrp_out_of_range", RB_NDP_PROG_XRP},
	{TEST_PROGS_DIR "/ndp_progs.o", "xrp_forever", RB_NDP_PROG_XRP},
	{TEST_PROGS_DIR "/ndp_progs.o", "xrp_peek", RB_NDP_PROG_XRP},
	{TEST_PROGS_DIR "/ndp_progs.o", "cq_helpers", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/ndp_progs.o", "cq_mem_copy", RB_NDP_PROG_CQ},
	{TEST_PROGS_DIR "/ndp_file_progs.o", "cq_file_view", RB_NDP_PROG_CQ},
	{PROGS_DIR "/bpfkv_get.o", "bpfkv_get", RB_NDP_PROG_CQ},
	{PROGS_DIR "/bpfkv_range.o", "bpfkv_range", RB_NDP_PROG_CQ},
	{PROGS_DIR "/bpfkv_xrp_get.o", "bpfkv_xrp_get", RB_NDP_PROG_XRP},
	{PROGS_DIR "/bpfkv_xrp_lookup.o", "bpfkv_xrp_lookup", RB_NDP_PROG_XRP},
	{PROGS_DIR "/bpfkv_xrp_range.o", "bpfkv_xrp_range", RB_NDP_PROG_XRP},
};
#define N_PROGS (sizeof(progs) / sizeof(progs[0]))

static bool g_verbose;                     /* RB_FUZZ_VERBOSE: say what each request did */
static struct rb_ndp_table *g_progs;       /* loaded once */
static uint32_t g_handle[N_PROGS];
static unsigned g_n_handles;
static void *g_small_elf;                  /* what LOAD ops load: ndp_progs.o */
static size_t g_small_len;
static struct fz_guarded g_data, g_scratch, g_meta, g_gmem;

/* ---- one chain ------------------------------------------------------------------- */

struct chain {
	struct rb_virtq_chain c;
	uint8_t *seg[MAX_SEGS];
	size_t len[MAX_SEGS];
	unsigned n;
};

/* [n_segs - 1][n_read][u16 len - 1 per segment], then the bytes. */
static void chain_build(struct fz *f, struct chain *ch)
{
	ch->n = fz_u8(f) % MAX_SEGS + 1;
	unsigned nr = fz_u8(f) % (ch->n + 1);

	memset(&ch->c, 0, sizeof(ch->c));
	for (unsigned i = 0; i < ch->n; i++)
		ch->len[i] = fz_u16(f) % 12288 + 1;
	for (unsigned i = 0; i < ch->n; i++) {
		ch->seg[i] = malloc(ch->len[i]);
		if (!ch->seg[i])
			abort();
		fz_bytes(f, ch->seg[i], ch->len[i]);
		ch->c.iov[i] = (struct iovec){ch->seg[i], ch->len[i]};
		if (i < nr)
			ch->c.read_bytes += ch->len[i];
		else
			ch->c.write_bytes += ch->len[i];
	}
	ch->c.n_segs = ch->n;
	ch->c.n_read = nr;
}

static void chain_free(struct chain *ch)
{
	for (unsigned i = 0; i < ch->n; i++)
		free(ch->seg[i]);
	ch->n = 0;
}

static bool inside(const void *p, size_t len, const void *lo, size_t span)
{
	uintptr_t a = (uintptr_t)p, l = (uintptr_t)lo;

	return a >= l && a - l <= span && len <= span - (a - l);
}

/* ---- a request's program run --------------------------------------------------- */

/* Every I/O the executor queued: inside the data buffer one after the
 * other, whole sectors, inside the disk and, on a file request, inside the
 * disk range of one of the file's extents. */
static void check_ios(const struct rb_ndp_exec *x)
{
	uint32_t at = 0;

	if (x->n_io == 0 || x->n_io > RB_NDP_MAX_NEXT_IOS || x->n_req == 0 || x->n_req > x->n_io)
		fz_bug(T, "%u I/Os for %u program I/Os", x->n_io, x->n_req);
	for (unsigned k = 0; k < x->n_io; k++) {
		uint64_t off = x->io_off[k], len = x->io_len[k];
		if (x->data_off[k] != at || len == 0 || len % 512 || off % 512 ||
		    len > RB_NDP_MAX_DATA - at)
			fz_bug(T, "I/O %u: %llu bytes at %llu landing at %u (expected %u)", k,
			       (unsigned long long)len, (unsigned long long)off, x->data_off[k], at);
		if (off > x->capacity_bytes || len > x->capacity_bytes - off)
			fz_bug(T, "I/O %u: %llu bytes at %llu leave the %llu-byte disk", k,
			       (unsigned long long)len, (unsigned long long)off,
			       (unsigned long long)x->capacity_bytes);
		if (x->file) {
			bool in = false;
			for (uint32_t e = 0; e < x->file->n && !in; e++) {
				const struct rb_ndp_extent *ex = &x->file->ext[e];
				in = off >= ex->disk_off && off - ex->disk_off < ex->len &&
				     len <= ex->len - (off - ex->disk_off);
			}
			/* Pieces adjacent on the disk are merged: check each sector. */
			for (uint64_t s = 0; !in && s < len; s += 512) {
				bool sec = false;
				for (uint32_t e = 0; e < x->file->n && !sec; e++) {
					const struct rb_ndp_extent *ex = &x->file->ext[e];
					sec = off + s >= ex->disk_off && off + s - ex->disk_off < ex->len;
				}
				if (!sec)
					fz_bug(T, "I/O %u: disk sector at %llu is in no extent of file %u",
					       k, (unsigned long long)(off + s), x->file->key);
			}
		}
		at += (uint32_t)len;
	}
}

static void run_request(struct fz *f, struct rb_ndp_table *t, struct rb_ndp_req *r, uint64_t cap)
{
	struct rb_ndp_exec x;
	uint32_t h = r->io.handle;

	memset(&x, 0, sizeof(x));
	if (h & 0x80000000u)
		x.prog = rb_ndp_acquire(t, h & 0x7fffffffu);
	else if (g_n_handles)
		x.prog = rb_ndp_acquire(g_progs, g_handle[h % g_n_handles]);
	if (!x.prog)
		return;
	if (r->io.flags & RB_NDP_IO_F_FILE) {
		x.file = rb_ndp_file_acquire(t, r->io.file_key);
		if (!x.file) {
			if (g_verbose)
				fprintf(stderr, "fuzz_ndp: no file %u\n", r->io.file_key);
			goto out;
		}
	}
	x.capacity_bytes = cap * 512;
	/* The VM's registered memory, translated as lib/io does. */
	uint32_t keys[RB_NDP_MAX_REGIONS];
	uint64_t gpa[RB_NDP_MAX_REGIONS], len[RB_NDP_MAX_REGIONS];
	unsigned nm = rb_ndp_regions(t, keys, gpa, len);
	for (unsigned i = 0; i < nm; i++) {
		if (gpa[i] < GMEM_GPA || gpa[i] - GMEM_GPA >= GMEM_LEN ||
		    len[i] > GMEM_LEN - (gpa[i] - GMEM_GPA))
			continue;
		x.mem_key[x.n_mem] = keys[i];
		x.mem_host[x.n_mem] = g_gmem.p + (gpa[i] - GMEM_GPA);
		x.mem_len[x.n_mem] = len[i];
		x.n_mem++;
	}
	x.max_hops = r->io.max_hops;
	memcpy(g_meta.p, r->meta, r->io.meta_len);
	memset(g_meta.p + r->io.meta_len, 0, RB_NDP_MAX_META - r->io.meta_len);
	x.meta = g_meta.p;
	x.meta_len = r->io.meta_len;
	x.data = g_data.p;
	x.scratch = g_scratch.p;
	x.scratch_len = r->io.scratch_len;
	memcpy(g_scratch.p, r->scratch_in, r->io.scratch_len);
	if (r->type == RB_NDP_T_WRITE_ND)
		memcpy(g_data.p, r->wdata, r->io.data_len);
	if (r->sector > UINT64_MAX / 512)
		goto out;
	/* Meta is read-only to programs: make it so. */
	mprotect(g_meta.body, g_meta.body_len, PROT_READ);
	int step = rb_ndp_exec_start(&x, r->sector * 512, r->io.io_len);
	for (unsigned round = 0; step == RB_NDP_STEP_IO; round++) {
		check_ios(&x);
		uint8_t how = fz_u8(f);
		/* What the disk returned: the input's bytes. */
		for (unsigned k = 0; k < x.n_io; k++)
			fz_bytes(f, g_data.p + x.data_off[k], x.io_len[k] < 64 ? x.io_len[k] : 64);
		if (round >= MAX_ROUNDS || how == 0xff)
			step = rb_ndp_exec_stopped(&x);
		else
			step = rb_ndp_exec_io_done(&x, how == 0xfe ? -EIO : 0);
	}
	mprotect(g_meta.body, g_meta.body_len, PROT_READ | PROT_WRITE);
	if (g_verbose)
		fprintf(stderr, "fuzz_ndp: program %u: %s after %u hops, %llu instructions%s%s\n",
			x.prog->handle, rb_ndp_status_name(x.status), x.hops,
			(unsigned long long)x.insns, x.msg[0] ? ": " : "", x.msg);
	if (step != RB_NDP_STEP_DONE || x.n_io)
		fz_bug(T, "the request did not end (step %d, %u I/Os queued)", step, x.n_io);
	if (x.status > RB_NDP_S_STALE_LAYOUT || x.hops > x.max_hops || x.bytes > RB_NDP_MAX_DATA ||
	    x.insns > RB_NDP_REQUEST_BUDGET)
		fz_bug(T, "ended with status %u after %u of %u hops, %llu bytes, %llu instructions",
		       x.status, x.hops, x.max_hops, (unsigned long long)x.bytes,
		       (unsigned long long)x.insns);
	/* What lib/io writes back (nd_complete). */
	size_t at = 0;
	struct rb_ndp_result res = {.status = x.status, .hops = x.hops, .retval = x.retval,
				    .bytes = x.bytes};
	if (r->type == RB_NDP_T_READ_ND) {
		rb_iov_scatter(r->wiov, r->wiovcnt, 0, g_data.p, r->io.data_len);
		at += r->io.data_len;
	}
	rb_iov_scatter(r->wiov, r->wiovcnt, at, g_scratch.p, r->io.scratch_len);
	at += r->io.scratch_len;
	if (rb_iov_scatter(r->wiov, r->wiovcnt, at, &res, sizeof(res)) != sizeof(res))
		fz_bug(T, "no room for the result after a parse that found room");
	*r->status = 0;
out:
	rb_ndp_file_release(x.file);
	rb_ndp_release(x.prog);
}

static void nd_request(struct fz *f, struct rb_ndp_table *t, uint64_t cap)
{
	static struct rb_ndp_req r;
	struct chain ch;
	bool can_reply;
	char err[512];

	chain_build(f, &ch);
	int rc = rb_ndp_req_parse(&ch.c, &r, &can_reply, err, sizeof(err));
	uint64_t rd = ch.c.read_bytes, wr = ch.c.write_bytes;
	unsigned nr = ch.c.n_read;
	if (rc == 0 && !can_reply)
		fz_bug(T, "a parsed request without room for its reply");
	if (can_reply) {
		if (nr == ch.n || r.status != ch.seg[ch.n - 1] + ch.len[ch.n - 1] - 1)
			fz_bug(T, "the status byte is not the last writable byte");
		if (r.wiov != &ch.c.iov[nr] || r.wiovcnt != ch.n - nr)
			fz_bug(T, "the writable part is not the chain's writable segments");
	}
	if (g_verbose)
		fprintf(stderr, "fuzz_ndp: ND request: %s\n", rc ? err : "parsed");
	if (rc) {
		if (!err[0])
			fz_bug(T, "a refusal without a message");
		if (can_reply) {
			/* lib/io answers BAD_REQUEST through the result struct. */
			struct rb_ndp_result res = {.status = RB_NDP_S_BAD_REQUEST};
			if (wr < sizeof(res) + 1)
				fz_bug(T, "can_reply with %llu writable bytes", (unsigned long long)wr);
			rb_iov_scatter(r.wiov, r.wiovcnt, wr - 1 - sizeof(res), &res, sizeof(res));
		}
		goto out;
	}
	/* Accepted: lengths add up exactly, every part inside r.buf. */
	bool write = r.type == RB_NDP_T_WRITE_ND;
	uint64_t fixed = 16 + sizeof(struct rb_ndp_io);
	if (rd != fixed + r.io.meta_len + r.io.scratch_len + (write ? r.io.data_len : 0) ||
	    wr != (write ? 0 : r.io.data_len) + r.io.scratch_len + sizeof(struct rb_ndp_result) + 1)
		fz_bug(T, "accepted lengths %llu/%llu that do not add up", (unsigned long long)rd,
		       (unsigned long long)wr);
	if (!inside(r.meta, r.io.meta_len, r.buf, sizeof(r.buf)) ||
	    !inside(r.scratch_in, r.io.scratch_len, r.buf, sizeof(r.buf)) ||
	    (write && !inside(r.wdata, r.io.data_len, r.buf, sizeof(r.buf))))
		fz_bug(T, "a part of the request lies outside its buffer");
	if (r.io.io_len == 0 || r.io.io_len % 512 || r.io.io_len > RB_NDP_MAX_DATA ||
	    r.io.max_hops > RB_NDP_MAX_HOPS || (write && r.io.data_len != r.io.io_len))
		fz_bug(T, "accepted limits: io_len %u, hops %u", r.io.io_len, r.io.max_hops);
	/* lib/io runs only READ_ND and WRITE_ND (and re-checks the type). */
	if (r.type == RB_NDP_T_READ_ND || write)
		run_request(f, t, &r, cap);
out:
	chain_free(&ch);
}

/* ---- files ------------------------------------------------------------------------- */

/* Checks rb_ndp_file_translate() against a reference that walks the
 * extents one by one, merging pieces adjacent on the disk too. */
static void check_translate(const struct rb_ndp_file *file, uint64_t off, uint64_t len, unsigned max)
{
	uint64_t doff[RB_NDP_MAX_NEXT_IOS], rd[RB_NDP_MAX_NEXT_IOS], rl[RB_NDP_MAX_NEXT_IOS];
	uint32_t dlen[RB_NDP_MAX_NEXT_IOS];
	int np = rb_ndp_file_translate(file->ext, file->n, file->size, off, len, doff, dlen, max);
	uint64_t end_max = (file->size + 511) / 512 * 512;
	int want = 0;
	unsigned rn = 0;

	if (len > UINT32_MAX)
		want = -E2BIG;
	else if (len == 0 || off > end_max || len > end_max - off)
		want = -EFBIG;
	for (uint64_t p = off, left = len; !want && left;) {
		const struct rb_ndp_extent *e = NULL;
		for (uint32_t i = 0; i < file->n && !e; i++)
			if (p >= file->ext[i].file_off && p - file->ext[i].file_off < file->ext[i].len)
				e = &file->ext[i];
		if (!e) {
			want = -ENXIO;
			break;
		}
		uint64_t in = p - e->file_off, c = e->len - in < left ? e->len - in : left;
		if (rn && rd[rn - 1] + rl[rn - 1] == e->disk_off + in) {
			rl[rn - 1] += c;
		} else if (rn == max) {
			want = -E2BIG;
			break;
		} else {
			rd[rn] = e->disk_off + in;
			rl[rn] = c;
			rn++;
		}
		p += c;
		left -= c;
		if (!left)
			want = (int)rn;
	}
	if (np != want)
		fz_bug(T, "translate of [%llu, +%llu) in a %llu-byte file of %u extents: %d, the reference says %d",
		       (unsigned long long)off, (unsigned long long)len, (unsigned long long)file->size,
		       file->n, np, want);
	for (int i = 0; i < np; i++)
		if (doff[i] != rd[i] || dlen[i] != rl[i])
			fz_bug(T, "translate piece %d: %llu+%u, the reference says %llu+%llu", i,
			       (unsigned long long)doff[i], dlen[i], (unsigned long long)rd[i],
			       (unsigned long long)rl[i]);
}

static void reg_file(struct fz *f, struct rb_ndp_table *t, uint64_t cap, uint32_t *keys,
		     unsigned *nk)
{
	static struct rb_ndp_extent ext[MAX_EXT];
	struct rb_ndp_reg_file rf;
	char err[512];
	uint32_t key;

	fz_bytes(f, &rf, sizeof(rf));
	/* Mostly small maps of sector-aligned numbers, sometimes anything. */
	bool raw = rf.flags & 0x80000000u;
	if (!raw) {
		rf.flags = 0;
		rf.n_extents = rf.n_extents % MAX_EXT + 1;
		rf.file_size %= 1ull << 32;
	}
	unsigned n = rf.n_extents <= MAX_EXT ? rf.n_extents : MAX_EXT;
	uint64_t fo = 0, dof = 0;
	for (unsigned i = 0; i < n; i++) {
		fz_bytes(f, &ext[i], sizeof(ext[i]));
		if (!raw) {
			/* Gaps and lengths in sectors, disk places anywhere. */
			fo += (ext[i].file_off % 8) * 512;
			ext[i].file_off = fo;
			ext[i].len = (ext[i].len % 16 + 1) * 512;
			fo += ext[i].len;
			dof = ext[i].disk_off & 0x80 ? dof + ext[i].len + (ext[i].disk_off % 4) * 512
						     : (ext[i].disk_off % (cap * 512 + 1)) / 512 * 512;
			ext[i].disk_off = dof;
		}
	}
	if (rf.n_extents > MAX_EXT)
		return;
	int rc = rb_ndp_file_check(&rf, ext, cap * 512, err, sizeof(err));
	if (g_verbose)
		fprintf(stderr, "fuzz_ndp: REG_FILE of %u extents: %s\n", rf.n_extents, rc ? err : "ok");
	if (rc) {
		if (!err[0])
			fz_bug(T, "a refused map without a message");
		return;
	}
	/* The rules, checked again the slow way. */
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = i + 1; j < n; j++)
			if (ext[i].disk_off < ext[j].disk_off + ext[j].len &&
			    ext[j].disk_off < ext[i].disk_off + ext[i].len)
				fz_bug(T, "accepted a map whose extents %u and %u overlap on the disk", i,
				       j);
	if (rb_ndp_reg_file(t, &rf, ext, &key) != RB_NDP_S_OK) {
		if (rb_ndp_file_count(t) < RB_NDP_MAX_FILES)
			fz_bug(T, "REG_FILE refused with %u files registered", rb_ndp_file_count(t));
		return;
	}
	if (!key)
		fz_bug(T, "REG_FILE gave key 0");
	for (unsigned i = 0; i < *nk; i++)
		if (keys[i] == key)
			fz_bug(T, "REG_FILE gave key %u twice", key);
	if (*nk < 64)
		keys[(*nk)++] = key;
}

/* ---- GPU regions (RosenGDS) ------------------------------------------------------- */

/* REG_GPU's and GPU_SUM's checks against the rules the header states, and
 * a region registered (host target, at most 1 MiB: an input stays fast),
 * counted against the VM's limits and maybe unregistered. */
static void gpu_region(struct fz *f, struct rb_ndp_table *t)
{
	uint32_t v = fz_u32(f);
	struct rb_ndp_reg_gpu rg = {
		.size = v & 1 ? (uint64_t)fz_u32(f) << (v >> 28) : (uint64_t)fz_u16(f) * 512,
		.target = fz_u8(f) % 4,
		.flags = v & 2 ? fz_u32(f) : 0,
	};
	char err[256];
	uint32_t key = 0;
	uint64_t bytes = 0;

	if (rb_ndp_gpu_reg_check(&rg, err, sizeof(err)) == 0) {
		if (rg.size == 0 || rg.size % 512 || rg.size > RB_NDP_MAX_GPU_REGION_BYTES || rg.flags ||
		    (rg.target != RB_NDP_GPU_HOST && rg.target != RB_NDP_GPU_CUDA))
			fz_bug(T, "REG_GPU of %llu bytes, target %u, flags %u accepted",
			       (unsigned long long)rg.size, rg.target, rg.flags);
		if (rg.size <= (1u << 20)) {
			uint32_t st = rb_ndp_reg_gpu(t, &rg, &key, err, sizeof(err));
			if (st == RB_NDP_S_OK && !key)
				fz_bug(T, "REG_GPU gave key 0");
			if (st == RB_NDP_S_OK && rg.target == RB_NDP_GPU_CUDA)
				fz_bug(T, "a CUDA region without a GPU");
			unsigned n = rb_ndp_gpu_count(t, &bytes);
			if (n > RB_NDP_MAX_GPU_REGIONS || bytes > RB_NDP_MAX_GPU_BYTES)
				fz_bug(T, "%u GPU regions, %llu bytes", n, (unsigned long long)bytes);
			if (st == RB_NDP_S_OK && (v & 4) && rb_ndp_unreg_gpu(t, key) != RB_NDP_S_OK)
				fz_bug(T, "UNREG_GPU of a key just given refused");
		}
	} else if (!err[0]) {
		fz_bug(T, "a REG_GPU refusal without a message");
	}
	struct rb_ndp_gpu_sum gs = {.key = key, .reserved = v & 8 ? fz_u32(f) : 0,
				    .offset = v & 16 ? fz_u64(f) : fz_u32(f), .len = v & 32 ? fz_u64(f) : fz_u32(f)};
	err[0] = 0;
	if (rb_ndp_gpu_sum_check(&gs, err, sizeof(err)) == 0) {
		if (gs.reserved || gs.len == 0 || gs.len > RB_NDP_MAX_GPU_READ || gs.offset + gs.len < gs.offset)
			fz_bug(T, "GPU_SUM at %llu, %llu bytes accepted", (unsigned long long)gs.offset,
			       (unsigned long long)gs.len);
	} else if (!err[0]) {
		fz_bug(T, "a GPU_SUM refusal without a message");
	}
}

/* ---- the sequence ------------------------------------------------------------------ */

static void one_request(struct fz *f, struct rb_ndp_table *t, uint64_t cap, uint32_t *handles,
			unsigned *nh, uint32_t *fkeys, unsigned *nf)
{
	uint8_t op = fz_u8(f) % 9;
	char log[RB_NDP_LOG_MAX];

	if (g_verbose)
		fprintf(stderr, "fuzz_ndp: op %u\n", op);
	switch (op) {
	case 0: /* READ_ND / WRITE_ND */
	case 7:
		nd_request(f, t, cap);
		break;
	case 1: { /* LOAD a tiny program into this input's table, as some type */
		uint8_t v = fz_u8(f);
		uint32_t type = v % 4, h;
		/* Verification is the slow part (milliseconds under ASan): a few
		 * tiny programs are enough for handles, types and stale handles. */
		if (*nh >= 4)
			break;
		uint32_t st = rb_ndp_load(t, type, g_small_elf, g_small_len,
					  v & 4 ? "sq_redirect" : "cq_bad_return", &h, log, sizeof(log));
		if (st == RB_NDP_S_OK) {
			for (unsigned i = 0; i < *nh; i++)
				if (handles[i] == h)
					fz_bug(T, "LOAD gave handle %u twice", h);
			handles[(*nh)++] = h;
		}
		if (rb_ndp_table_count(t) > RB_NDP_MAX_PROGRAMS)
			fz_bug(T, "%u programs loaded", rb_ndp_table_count(t));
		break;
	}
	case 2: { /* UNLOAD: a handle it got, or any number */
		uint32_t v = fz_u32(f);
		uint32_t h = (v & 1) && *nh ? handles[(v >> 1) % *nh] : v;
		unsigned before = rb_ndp_table_count(t);
		uint32_t st = rb_ndp_unload(t, h);
		if ((st == RB_NDP_S_OK) != (rb_ndp_table_count(t) == before - 1))
			fz_bug(T, "UNLOAD %u answered %u, programs %u -> %u", h, st, before,
			       rb_ndp_table_count(t));
		break;
	}
	case 3: { /* REG_MEM (lib/io refuses memory the guest lacks; any range here) */
		uint64_t gpa = GMEM_GPA + fz_u32(f) % (2 * GMEM_LEN), len = fz_u32(f) % (2 * GMEM_LEN);
		uint32_t key;
		if (len && rb_ndp_reg_mem(t, gpa, len, &key) == RB_NDP_S_OK && !key)
			fz_bug(T, "REG_MEM gave key 0");
		break;
	}
	case 4: { /* UNREG_MEM */
		uint32_t keys[RB_NDP_MAX_REGIONS];
		uint64_t g[RB_NDP_MAX_REGIONS], l[RB_NDP_MAX_REGIONS];
		uint32_t v = fz_u32(f);
		unsigned n = rb_ndp_regions(t, keys, g, l);
		rb_ndp_unreg_mem(t, (v & 1) && n ? keys[(v >> 1) % n] : v);
		if (rb_ndp_regions(t, keys, g, l) > RB_NDP_MAX_REGIONS)
			fz_bug(T, "more than %u regions", RB_NDP_MAX_REGIONS);
		break;
	}
	case 5:
		reg_file(f, t, cap, fkeys, nf);
		break;
	case 8:
		gpu_region(f, t);
		break;
	case 6: { /* UNREG_FILE, or translate through a file still held */
		uint32_t v = fz_u32(f);
		uint32_t key = (v & 1) && *nf ? fkeys[(v >> 1) % *nf] : v;
		struct rb_ndp_file *file = rb_ndp_file_acquire(t, key);
		if (v & 2) {
			unsigned before = rb_ndp_file_count(t);
			uint32_t st = rb_ndp_unreg_file(t, key);
			if ((st == RB_NDP_S_OK) != (file != NULL) ||
			    rb_ndp_file_count(t) != before - (st == RB_NDP_S_OK))
				fz_bug(T, "UNREG_FILE %u answered %u", key, st);
		}
		/* A reference taken before an UNREG still reads the map. */
		if (file) {
			uint64_t off = fz_u32(f) * 8ull, len = fz_u16(f) * 8ull;
			if (v & 4) {
				off = off / 512 * 512;
				len = (len / 512 + 1) * 512;
			}
			check_translate(file, off, len, fz_u8(f) % RB_NDP_MAX_NEXT_IOS + 1);
			rb_ndp_file_release(file);
		}
		break;
	}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct fz f = {d, n, 0};
	uint32_t handles[4], fkeys[64];
	unsigned nh = 0, nf = 0;
	uint64_t cap = fz_u64(&f) % (1ull << 40);
	unsigned nreq = fz_u8(&f) % 49;
	struct rb_ndp_table *t = rb_ndp_table_new("fuzz");

	if (!t)
		return 0;
	for (unsigned i = 0; i < nreq && fz_left(&f); i++)
		one_request(&f, t, cap, handles, &nh, fkeys, &nf);
	rb_ndp_table_free(t);
	return 0;
}

/* ---- set-up and seeds ------------------------------------------------------------- */

static void put_chain(struct fz_buf *b, const uint16_t *lens, unsigned n, unsigned nr,
		      const void *bytes, size_t blen)
{
	size_t total = 0;

	FZ_PUT(b, uint8_t, n - 1);
	FZ_PUT(b, uint8_t, nr);
	for (unsigned i = 0; i < n; i++) {
		FZ_PUT(b, uint16_t, lens[i] - 1);
		total += lens[i];
	}
	uint8_t *p = calloc(1, total);
	memcpy(p, bytes, blen < total ? blen : total);
	fz_put(b, p, total);
	free(p);
}

/* A READ_ND of program `prog` (index into progs[]) with meta and scratch. */
static void put_read_nd(struct fz_buf *b, uint32_t prog, uint64_t sector, const void *meta,
			uint32_t meta_len, uint32_t scratch_len, uint32_t flags, uint32_t file_key)
{
	struct {
		struct rb_virtio_blk_outhdr h;
		struct rb_ndp_io io;
		uint8_t meta[64];
	} req = {{RB_NDP_T_READ_ND, 0, sector},
		 {prog, 512, meta_len, scratch_len, 512, 0, flags, file_key}, {0}};

	memcpy(req.meta, meta, meta_len);
	FZ_PUT(b, uint8_t, 0); /* op: ND request */
	uint16_t lens[] = {(uint16_t)(48 + meta_len + scratch_len), 512,
			   (uint16_t)(scratch_len + sizeof(struct rb_ndp_result) + 1)};
	put_chain(b, lens, 3, 1, &req, 48 + meta_len);
	/* Three rounds of disk results: "ok" and the first bytes. */
	for (int i = 0; i < 3; i++) {
		FZ_PUT(b, uint8_t, 0);
		FZ_PUT(b, uint64_t, 0x0102030405060708ull * (i + 1));
	}
}

static int write_seeds(const char *dir)
{
	struct fz_buf b = {0};
	int bad = 0;

	/* Each persistent program once, on a 1 GiB disk. */
	for (uint32_t p = 0; p < N_PROGS; p++) {
		char name[96];
		uint32_t meta[4] = {4, 1, 0, 0};
		b.len = 0;
		FZ_PUT(&b, uint64_t, 1u << 21);
		FZ_PUT(&b, uint8_t, 3);
		/* REG_MEM 4 KiB of guest memory first (cq_mem_copy's key). */
		FZ_PUT(&b, uint8_t, 3);
		FZ_PUT(&b, uint32_t, 0);
		FZ_PUT(&b, uint32_t, 4096);
		meta[0] = strcmp(progs[p].section, "cq_mem_copy") ? 4 : 1; /* its key: 1 */
		put_read_nd(&b, p, 8, meta, sizeof(meta), 64, 0, 0);
		snprintf(name, sizeof(name), "read_nd_%s", progs[p].section);
		bad |= fz_write_seed(dir, name, b.p, b.len);
	}
	/* A file: REG_FILE of three extents, a file request through it, then
	 * a translate after UNREG_FILE. */
	b.len = 0;
	FZ_PUT(&b, uint64_t, 1u << 21);
	FZ_PUT(&b, uint8_t, 3);
	FZ_PUT(&b, uint8_t, 5);
	/* In reg_file()'s sector units: n_extents - 1; per extent a file gap,
	 * a disk place (0x80: after the previous one, plus a gap) and a
	 * length - 1.  Here: 8 sectors at disk 4096, 8 one sector further on,
	 * 8 right after those (one disk piece with them). */
	struct rb_ndp_reg_file rf = {3 * 4096, 2, 0};
	fz_put(&b, &rf, sizeof(rf));
	struct rb_ndp_extent ext[3] = {{0, 4096, 7}, {0, 0x80 | 1, 7}, {0, 0x80, 7}};
	fz_put(&b, ext, sizeof(ext));
	uint32_t view[8] = {3, 0, 512, 0, 4096, 0, 8192, 0};
	uint32_t file_view = 0;
	while (strcmp(progs[file_view].section, "cq_file_view"))
		file_view++;
	put_read_nd(&b, file_view, 1, view, sizeof(view), 128, RB_NDP_IO_F_FILE, 16);
	FZ_PUT(&b, uint8_t, 6);
	FZ_PUT(&b, uint32_t, 1 | 2 | 4);
	FZ_PUT(&b, uint32_t, 64);
	FZ_PUT(&b, uint16_t, 1024);
	FZ_PUT(&b, uint8_t, 15);
	bad |= fz_write_seed(dir, "file_request", b.p, b.len);
	/* LOAD, UNLOAD, LOAD again, a request naming the stale handle. */
	b.len = 0;
	FZ_PUT(&b, uint64_t, 1u << 21);
	FZ_PUT(&b, uint8_t, 4);
	FZ_PUT(&b, uint8_t, 1);
	FZ_PUT(&b, uint8_t, RB_NDP_PROG_CQ);
	FZ_PUT(&b, uint8_t, 2);
	FZ_PUT(&b, uint32_t, 1);
	FZ_PUT(&b, uint8_t, 1);
	FZ_PUT(&b, uint8_t, RB_NDP_PROG_CQ);
	uint32_t meta[2] = {2, 1};
	put_read_nd(&b, 0x80000000u | (1u << 4), 8, meta, sizeof(meta), 16, 0, 0);
	bad |= fz_write_seed(dir, "load_unload_stale", b.p, b.len);
	free(b.p);
	return bad;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("RB_FUZZ_WRITE_SEEDS");
	char log[RB_NDP_LOG_MAX];

	(void)argc, (void)argv;
	g_verbose = getenv("RB_FUZZ_VERBOSE") != NULL;
	/* Refusals are the point: silent, unless asked. */
	rb_log_set_level(g_verbose ? RB_LOG_INFO : RB_LOG_OFF);
	if (fz_guard_alloc(&g_data, RB_NDP_MAX_DATA, true, 4096) ||
	    fz_guard_alloc(&g_scratch, RB_NDP_MAX_SCRATCH, true, 8) ||
	    fz_guard_alloc(&g_meta, RB_NDP_MAX_META, true, 8) ||
	    fz_guard_alloc(&g_gmem, GMEM_LEN, true, 8))
		abort();
	g_progs = rb_ndp_table_new("fuzz-programs");
	if (!g_progs)
		abort();
	for (unsigned i = 0; i < N_PROGS; i++) {
		size_t len;
		void *elf = fz_slurp(progs[i].path, &len);
		uint32_t h;
		if (!elf || rb_ndp_load(g_progs, progs[i].type, elf, len, progs[i].section, &h, log,
					sizeof(log)) != RB_NDP_S_OK) {
			fprintf(stderr, "fuzz_ndp: %s %s not loaded: %s\n", progs[i].path,
				progs[i].section, elf ? log : "cannot read");
			abort();
		}
		g_handle[i] = h;
		g_n_handles++;
		free(elf);
	}
	g_small_elf = fz_slurp(TEST_PROGS_DIR "/ndp_progs.o", &g_small_len);
	if (!g_small_elf)
		abort();
	if (dir)
		exit(write_seeds(dir));
	return 0;
}
