/* SPDX-License-Identifier: MIT */
/*
 * The NDP executor: a VM's program table (LOAD/UNLOAD, reference-counted so
 * requests in flight keep their program), the hooks that run a program on
 * the data of a request (sq, cq, xrp), and the parsing of NDP requests.
 * It does no I/O itself: it tells the caller which I/Os to issue next, and
 * range-checks every one against the VM's disk first.  Programs are
 * untrusted: they run in the eBPF engine under a budget with every memory
 * access checked against the buffers of their own request.
 */
#ifndef ROSEN_NDP_H
#define ROSEN_NDP_H

#include <rosen/bpf.h>
#include <rosen/gpu.h>
#include <rosen/virtio.h>
#include <rosen/virtio_ndp.h>
#include <rosen/xrp.h>
#include <rosen/prog.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RB_NDP_BUDGET 1000000u /* instructions per program run */
/*
 * Instructions per request, summed over every run of its program (the sq
 * hook and each cq/xrp hop): a request over it ends with RB_NDP_S_BUDGET.
 * 16 full runs: a lookup that runs a few thousand instructions per hop
 * never meets it, and no request holds more than ~16 ms of a worker's CPU
 * however many hops it may take.  Daemon policy, not a wire limit (PROBE
 * does not report it); docs/virtio-ndp.md states the number.
 */
#define RB_NDP_REQUEST_BUDGET (16u * RB_NDP_BUDGET)

/*
 * What one LOAD may cost the host.  A guest's program is proved safe on the
 * host's CPU and memory, so each verification is bounded on every axis
 * (rb_bpf_verify_opts); over any bound the LOAD is REJECTED as too complex,
 * with a log naming the limit.  BPF-KV's range program, the largest shipped
 * one, walks ~21,000 instructions and ~3.2 million work units (~12 ms).
 */
#define RB_NDP_VERIFY_MAX_INSNS 250000u          /* instructions walked: 12x range */
#define RB_NDP_VERIFY_MAX_WORK 16000000u         /* work units: 5x range */
#define RB_NDP_VERIFY_MAX_MEM (64ull << 20)      /* bytes of verifier state */
#define RB_NDP_VERIFY_MAX_CPU_NS 1000000000ull   /* CPU time of the loader thread */

/*
 * How many LOADs may wait.  Every LOAD of every VM is verified on one
 * low-priority daemon thread, first come first served: at most
 * RB_NDP_LOADS_PER_VM of one VM and RB_NDP_LOADS_QUEUED of all VMs may be
 * queued or running at once; a LOAD over either answers LIMIT at once.
 * With the bounds above, the last LOAD of a full queue waits at most ~16 s
 * of loader CPU.
 */
#define RB_NDP_LOADS_PER_VM 2u
#define RB_NDP_LOADS_QUEUED 16u

/* ---- handles and keys: the daemon instance's epoch ------------------------- */

/*
 * Every handle and key the daemon gives out carries its instance's epoch in
 * bits 31..20 (RB_NDP_ID_EPOCH_SHIFT), so that after a restart (programs and
 * registrations are not kept) a request naming one from before answers
 * RB_NDP_S_STATE_LOST and the guest knows to load or register again,
 * while a value no instance ever gave out still answers NO_PROGRAM.  The
 * epoch is 1 + (the start time in 1/64 s) mod 4094: two daemons started
 * less than 64 s apart (and more than 1/64 s) never share one; further
 * apart they share one with probability 1/4094, and each table's handle
 * generations also start at a random value, so even then an old handle
 * names a new program only by a 1-in-65536 chance more.
 */
uint32_t rb_ndp_epoch(void);
/* id with this instance's epoch in its top 12 bits (low: the low 20 bits). */
uint32_t rb_ndp_id(uint32_t low);
enum rb_ndp_id_kind {
	RB_NDP_ID_NEVER,   /* epoch field 0 or 0xfff: never given out */
	RB_NDP_ID_CURRENT, /* this instance's */
	RB_NDP_ID_EARLIER, /* another instance's: lost in a restart */
};
enum rb_ndp_id_kind rb_ndp_id_kind(uint32_t id);
/* The status for a handle or key the table does not hold: STATE_LOST for
 * another instance's, else `absent` (NO_PROGRAM, NO_MEMORY). */
uint32_t rb_ndp_missing(uint32_t id, uint32_t absent);

/* ---- program table (one per VM disk) ------------------------------------- */

struct rb_ndp_table;
struct rb_ndp_prog;

struct rb_ndp_table *rb_ndp_table_new(const char *vm_name);
/* Drops the table's references; programs still in use live until released. */
void rb_ndp_table_free(struct rb_ndp_table *t);

/* LOAD.  Returns an enum rb_ndp_status; on RB_NDP_S_OK *handle is set.
 * log receives the loader's message (always NUL-terminated).  Thread-safe. */
uint32_t rb_ndp_load(struct rb_ndp_table *t, uint32_t prog_type, const void *elf, size_t len,
		     const char *section, uint32_t *handle, char *log, size_t loglen);
/* UNLOAD: RB_NDP_S_OK, RB_NDP_S_NO_PROGRAM, or RB_NDP_S_STATE_LOST (a
 * handle of an earlier daemon).  Requests in flight finish with the
 * program; new ones no longer find it. */
uint32_t rb_ndp_unload(struct rb_ndp_table *t, uint32_t handle);
/* A reference to a loaded program, or NULL (unknown handle). */
struct rb_ndp_prog *rb_ndp_acquire(struct rb_ndp_table *t, uint32_t handle);
void rb_ndp_release(struct rb_ndp_prog *p);
uint32_t rb_ndp_prog_type(const struct rb_ndp_prog *p);
unsigned rb_ndp_table_count(struct rb_ndp_table *t);
/* LOADs the verifier refused (RB_NDP_S_REJECTED after a proof failed or a
 * verification bound was hit; a malformed object is not counted).  Any
 * thread. */
uint64_t rb_ndp_table_verifier_rejections(struct rb_ndp_table *t);

/*
 * What a request did with its program, added once when the request ends
 * (never per run or hop: the hop path pays nothing for these figures).
 * Thread-safe (relaxed atomics).
 */
void rb_ndp_prog_account(struct rb_ndp_prog *p, uint32_t runs, uint32_t hops, uint64_t insns);

/* A loaded program as an operator sees it (rosenctl program-list). */
struct rb_ndp_prog_info {
	uint32_t handle;
	uint32_t type;              /* enum rb_ndp_prog_type */
	char section[RB_NDP_SECTION_MAX];
	uint64_t insns;             /* size: eBPF instructions */
	bool jitted;                /* compiled to x86-64, else interpreted */
	uint64_t loaded_unix_ns;    /* CLOCK_REALTIME at LOAD */
	/* Since LOAD, counted at the end of each request that used it. */
	uint64_t requests, runs, hops, executed;
};
/* Copies out the table's programs (at most max, RB_NDP_MAX_PROGRAMS is
 * enough), in slot order.  Returns how many. */
unsigned rb_ndp_table_list(struct rb_ndp_table *t, struct rb_ndp_prog_info *out, unsigned max);

/* ---- program types ------------------------------------------------------------ */

/* What the verifier proves a program of `prog_type` (enum rb_ndp_prog_type)
 * against: its context, the buffers it may touch and the helpers it may
 * call; NULL for an unknown type. */
const struct rb_bpf_type *rb_ndp_bpf_type(uint32_t prog_type);
/* "sq", "cq", "xrp" (or "?"), and back (0 for an unknown name). */
const char *rb_ndp_prog_type_name(uint32_t prog_type);
uint32_t rb_ndp_prog_type_parse(const char *name);
/* Registers the NDP helpers (rosen/prog.h, ids 200..205): for tools that
 * load NDP programs outside a table. */
int rb_ndp_register_helpers(struct rb_bpf_helpers *h);

/* ---- memory registration (per VM) ------------------------------------------- */

/* Registers a guest-physical range (the caller checked it translates).
 * RB_NDP_S_OK with *key, or RB_NDP_S_LIMIT. */
uint32_t rb_ndp_reg_mem(struct rb_ndp_table *t, uint64_t gpa, uint64_t len, uint32_t *key);
/* RB_NDP_S_OK, RB_NDP_S_NO_MEMORY (unknown key) or RB_NDP_S_STATE_LOST. */
uint32_t rb_ndp_unreg_mem(struct rb_ndp_table *t, uint32_t key);
/* Copies out the VM's registrations (at most RB_NDP_MAX_REGIONS). */
unsigned rb_ndp_regions(struct rb_ndp_table *t, uint32_t *keys, uint64_t *gpa, uint64_t *len);

/* ---- registered files (per VM) ------------------------------------------------ */

/* A file's extent map, registered by REG_FILE and reference-counted like a
 * program: a request holds its file until it completes. */
struct rb_ndp_file;

/*
 * Checks a REG_FILE's map (rf and its rf->n_extents extents) against a disk
 * of disk_bytes: flags 0, 1..RB_NDP_MAX_EXTENTS extents, each non-empty and
 * in whole 512-byte sectors, sorted by file offset without overlaps, not
 * overlapping another on the disk, inside the disk and inside the file's
 * size rounded up to 512.  0, or -EINVAL (-ENOMEM) with err saying which
 * extent broke which rule.  No side effects.
 */
int rb_ndp_file_check(const struct rb_ndp_reg_file *rf, const struct rb_ndp_extent *ext,
		      uint64_t disk_bytes, char *err, size_t errlen);
/*
 * Translates [off, off + len) of a file whose checked map is ext[0..n) into
 * at most `max` disk pieces (disk_off[i], piece_len[i]), in file order, one
 * per extent touched (extents adjacent on the disk too make one piece).
 * Returns the number of pieces, or -EFBIG (past file_size rounded up to 512,
 * or len 0), -ENXIO (a part in a hole or past the map's last extent),
 * -E2BIG (more than max pieces).  O(log n + pieces), no allocation.
 */
int rb_ndp_file_translate(const struct rb_ndp_extent *ext, uint32_t n, uint64_t file_size,
			  uint64_t off, uint64_t len, uint64_t *disk_off, uint32_t *piece_len,
			  unsigned max);

/* Keeps a copy of a map rb_ndp_file_check() accepted.  RB_NDP_S_OK with
 * *key (never 0), RB_NDP_S_LIMIT (RB_NDP_MAX_FILES registered, or no
 * memory). */
uint32_t rb_ndp_reg_file(struct rb_ndp_table *t, const struct rb_ndp_reg_file *rf,
			 const struct rb_ndp_extent *ext, uint32_t *key);
/* RB_NDP_S_OK, RB_NDP_S_NO_PROGRAM (unknown key) or RB_NDP_S_STATE_LOST
 * (a key of an earlier daemon).  Requests in flight
 * finish with the map they hold; new ones no longer find it. */
uint32_t rb_ndp_unreg_file(struct rb_ndp_table *t, uint32_t key);
/* A reference to a registered file, or NULL (unknown or stale key). */
struct rb_ndp_file *rb_ndp_file_acquire(struct rb_ndp_table *t, uint32_t key);
void rb_ndp_file_release(struct rb_ndp_file *f);
unsigned rb_ndp_file_count(struct rb_ndp_table *t);

/* ---- GPU regions (per VM; RosenGDS, docs/gds.md) ----------------------------- */

/* Checks a REG_GPU: flags 0, target HOST or CUDA, size a multiple of 512 in
 * 512..RB_NDP_MAX_GPU_REGION_BYTES.  0, or -EINVAL with err saying which
 * rule it broke.  No side effects. */
int rb_ndp_gpu_reg_check(const struct rb_ndp_reg_gpu *rg, char *err, size_t errlen);
/* Checks a GPU_SUM: reserved 0, len 1..RB_NDP_MAX_GPU_READ, offset + len
 * not wrapping.  0 or -EINVAL with err.  No side effects. */
int rb_ndp_gpu_sum_check(const struct rb_ndp_gpu_sum *gs, char *err, size_t errlen);
/* Allocates a region rb_ndp_gpu_reg_check() accepted, accounted to the VM:
 * RB_NDP_S_OK with *key (never 0), RB_NDP_S_LIMIT (RB_NDP_MAX_GPU_REGIONS
 * regions or RB_NDP_MAX_GPU_BYTES bytes already, or no memory),
 * RB_NDP_S_NO_GPU (CUDA target, no GPU); err says why when not OK. */
uint32_t rb_ndp_reg_gpu(struct rb_ndp_table *t, const struct rb_ndp_reg_gpu *rg, uint32_t *key,
			char *err, size_t errlen);
/* RB_NDP_S_OK, RB_NDP_S_NO_MEMORY (unknown key) or RB_NDP_S_STATE_LOST.
 * Reads running into the region finish into it; new ones no longer find it. */
uint32_t rb_ndp_unreg_gpu(struct rb_ndp_table *t, uint32_t key);
/* A reference to the VM's region `key` (rb_gpu_region_put), or NULL. */
struct rb_gpu_region *rb_ndp_gpu_acquire(struct rb_ndp_table *t, uint32_t key);
/* Regions the VM holds, and their bytes (may be NULL). */
unsigned rb_ndp_gpu_count(struct rb_ndp_table *t, uint64_t *bytes);

/* ---- requests ---------------------------------------------------------------- */

/* Gathered, validated form of a READ_ND/WRITE_ND request.  Everything the
 * guest sent is copied here once; the writable part is located but not
 * touched until the request completes. */
struct rb_ndp_req {
	uint32_t type;       /* RB_NDP_T_* */
	uint64_t sector;
	struct rb_ndp_io io;
	uint8_t *meta;       /* into buf */
	uint8_t *scratch_in; /* into buf */
	uint8_t *wdata;      /* WRITE_ND data, into buf */
	/* Writable part: data | scratch out | result | status. */
	struct iovec *wiov;
	unsigned wiovcnt;
	uint8_t *status;
	uint8_t buf[16 + sizeof(struct rb_ndp_io) + RB_NDP_MAX_META + RB_NDP_MAX_SCRATCH +
		    RB_NDP_MAX_DATA];
};

/* Byte-wise copy into a scatter list at `offset` (bounded by the list). */
size_t rb_iov_scatter(const struct iovec *iov, unsigned n, size_t offset, const void *src,
		      size_t len);
/* Byte-wise copy out of a scatter list. */
size_t rb_iov_gather(const struct iovec *iov, unsigned n, size_t offset, void *dst, size_t len);

/*
 * Parses a READ_ND/WRITE_ND chain.  0 when valid; otherwise -EINVAL with a
 * message, and *can_reply tells whether the result struct and status byte
 * could be located (then the caller answers BAD_REQUEST through them).
 */
int rb_ndp_req_parse(struct rb_virtq_chain *chain, struct rb_ndp_req *r, bool *can_reply,
		     char *err, size_t errlen);

/* ---- execution of one request ------------------------------------------------- */

struct rb_ndp_exec {
	struct rb_ndp_prog *prog;
	uint64_t capacity_bytes;   /* the VM's disk */
	/* A file request's map (NULL: offsets are disk offsets).  Every
	 * offset a program sees or asks for is then a file offset, translated
	 * into io_off/io_len pieces here and nowhere else. */
	struct rb_ndp_file *file;
	uint32_t max_hops;
	uint32_t hops;
	uint32_t runs;             /* program runs so far (sq hook, each cq/xrp hop) */
	uint64_t insns;            /* instructions run so far, all runs together */
	uint32_t status;           /* enum rb_ndp_status once done */
	uint64_t retval;
	uint64_t bytes;            /* data bytes produced */
	const uint8_t *meta;       /* RB_NDP_MAX_META bytes, zero past meta_len */
	uint32_t meta_len;
	uint8_t *data;             /* RB_NDP_MAX_DATA bytes, 4096-aligned */
	uint8_t *scratch;          /* RB_NDP_MAX_SCRATCH bytes */
	uint32_t scratch_len;
	union {
		struct bpf_xrp xrp;
		struct rb_ndp_ctx ctx;
	} c;
	/* Registered guest memory, translated for this request: granted to
	 * the program and reachable with the mem_trans helper. */
	unsigned n_mem;
	uint32_t mem_key[RB_NDP_MAX_REGIONS];
	uint8_t *mem_host[RB_NDP_MAX_REGIONS];
	uint64_t mem_len[RB_NDP_MAX_REGIONS];
	/* A GPU read (RB_NDP_IO_F_GPU): its sq program names the destination
	 * with the gpu_target helper, which looks it up in `table` and holds
	 * it here (the caller puts it with rb_gpu_region_put when the request
	 * ends); dest_err is the status of the helper's last refusal.  On
	 * RB_NDP_STEP_IO the read is [gpu_off, gpu_off + gpu_len) of the disk
	 * into [dest_off, dest_off + gpu_len) of dest, checked; the caller
	 * performs it and calls rb_ndp_exec_gpu_done(). */
	bool gpu;
	struct rb_ndp_table *table;
	struct rb_gpu_region *dest;
	uint32_t dest_key;
	uint64_t dest_off;
	uint32_t dest_err;
	uint64_t gpu_off;
	uint32_t gpu_len;
	/* I/Os to issue next (disk offsets): each lands in data at
	 * data_off[i].  They serve the program's n_req I/Os of this round,
	 * the first at ctx_off (a file offset on a file request); a program
	 * I/O crossing extents becomes several disk I/Os. */
	unsigned n_req;
	uint64_t ctx_off;
	unsigned n_io;
	uint64_t io_off[RB_NDP_MAX_NEXT_IOS];
	uint32_t io_len[RB_NDP_MAX_NEXT_IOS];
	uint32_t data_off[RB_NDP_MAX_NEXT_IOS];
	char msg[320];             /* why it failed, for the log */
};

enum rb_ndp_step {
	RB_NDP_STEP_DONE = 0, /* status/retval/bytes are final */
	RB_NDP_STEP_IO = 1,   /* issue n_io I/Os, then call rb_ndp_exec_io_done() */
};

/* Begins a request whose first I/O is [off, off + len): runs the sq hook for
 * sq programs.  Returns an enum rb_ndp_step. */
int rb_ndp_exec_start(struct rb_ndp_exec *x, uint64_t off, uint32_t len);
/* All n_io I/Os finished (res = 0, or the first -errno): runs the cq/xrp
 * hook.  Returns an enum rb_ndp_step. */
int rb_ndp_exec_io_done(struct rb_ndp_exec *x, int res);
/* The GPU read finished (res = 0, or the first -errno): ends the request.
 * Returns RB_NDP_STEP_DONE. */
int rb_ndp_exec_gpu_done(struct rb_ndp_exec *x, int res);
/* All n_io I/Os finished but the device is stopping the request's queue:
 * counts the round's hops, runs nothing, and ends the request with
 * RB_NDP_S_IO_ERROR ("the queue stopped").  Returns RB_NDP_STEP_DONE. */
int rb_ndp_exec_stopped(struct rb_ndp_exec *x);

#ifdef __cplusplus
}
#endif
#endif /* ROSEN_NDP_H */
