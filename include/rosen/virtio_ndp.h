/* SPDX-License-Identifier: MIT */
/*
 * virtio-ndp wire format, shared by guest (librosen) and host (rosenbridged).
 * NDP requests ride the virtio-blk queues with request types in a vendor
 * range no virtio-blk type uses; a plain virtio-blk backend answers them
 * UNSUPP, which is how the capability probe tells the two apart.
 * All fields little-endian.  Described in docs/virtio-ndp.md.
 */
#ifndef ROSEN_VIRTIO_NDP_H
#define ROSEN_VIRTIO_NDP_H

/* One copy for user space and the guest kernel driver (kernel/virtio_ndp):
 * fixed-width types from <linux/types.h> in the kernel, <stdint.h> here. */
#ifdef __KERNEL__
#include <linux/types.h>
typedef __u32 rb_ndp_u32;
typedef __u64 rb_ndp_u64;
#else
#include <stdint.h>
typedef uint32_t rb_ndp_u32;
typedef uint64_t rb_ndp_u64;
#endif

/* Request types (struct rb_virtio_blk_outhdr.type). */
#define RB_NDP_T_BASE 0x52420000u /* "RB" << 16: far above virtio-blk's */
enum {
	RB_NDP_T_PROBE = RB_NDP_T_BASE + 1,
	RB_NDP_T_LOAD = RB_NDP_T_BASE + 2,
	RB_NDP_T_UNLOAD = RB_NDP_T_BASE + 3,
	RB_NDP_T_READ_ND = RB_NDP_T_BASE + 4,
	RB_NDP_T_WRITE_ND = RB_NDP_T_BASE + 5,
	RB_NDP_T_REG_MEM = RB_NDP_T_BASE + 6,
	RB_NDP_T_UNREG_MEM = RB_NDP_T_BASE + 7,
	RB_NDP_T_REG_FILE = RB_NDP_T_BASE + 8,   /* version 2 */
	RB_NDP_T_UNREG_FILE = RB_NDP_T_BASE + 9, /* version 2 */
	RB_NDP_T_REG_GPU = RB_NDP_T_BASE + 10,   /* version 4 */
	RB_NDP_T_UNREG_GPU = RB_NDP_T_BASE + 11, /* version 4 */
	RB_NDP_T_GPU_SUM = RB_NDP_T_BASE + 12,   /* version 4 */
};

#define RB_NDP_MAGIC 0x5044534eu /* "NDSP" */
/* 2: files (REG_FILE/UNREG_FILE, RB_NDP_IO_F_FILE, STALE_LAYOUT, caps).
 * 3: STATE_LOST: handles and keys name the device instance that gave them
 *    out; one from an instance that has since restarted answers STATE_LOST
 *    (load / register again), never NO_PROGRAM. */
/* 4: RosenGDS: REG_GPU/UNREG_GPU/GPU_SUM, RB_NDP_IO_F_GPU (a READ_ND of up
 *    to 64 MiB into a registered GPU or host region), NO_GPU, caps GDS/CUDA. */
#define RB_NDP_VERSION 4u

/* Program types, named "sq", "cq" and "xrp" everywhere. */
enum rb_ndp_prog_type {
	RB_NDP_PROG_SQ = 1,  /* before submission: may rewrite the I/O */
	RB_NDP_PROG_CQ = 2,  /* on each completion: OK or RESUBMIT next I/Os */
	RB_NDP_PROG_XRP = 3, /* XRP-compatible completion hook (struct bpf_xrp) */
};

/* Limits (also reported by PROBE). */
#define RB_NDP_MAX_PROGRAMS 16u        /* per VM */
#define RB_NDP_MAX_ELF_BYTES (1u << 20)
#define RB_NDP_MAX_META 4096u
#define RB_NDP_MAX_SCRATCH 4096u
#define RB_NDP_MAX_DATA 4096u          /* per-request data buffer */
#define RB_NDP_MAX_HOPS 1024u
#define RB_NDP_DEFAULT_HOPS 64u
#define RB_NDP_MAX_NEXT_IOS 16u        /* next I/Os per hop (cq type) */
#define RB_NDP_SECTION_MAX 64u
#define RB_NDP_LOG_MAX 4096u

/* PROBE: device-writable reply. */
struct rb_ndp_probe {
	rb_ndp_u32 magic;
	rb_ndp_u32 version;
	rb_ndp_u32 max_programs;
	rb_ndp_u32 max_elf_bytes;
	rb_ndp_u32 max_meta;
	rb_ndp_u32 max_scratch;
	rb_ndp_u32 max_data;
	rb_ndp_u32 max_hops;
	rb_ndp_u32 prog_types; /* bit n: enum rb_ndp_prog_type n supported */
	rb_ndp_u32 caps;       /* RB_NDP_CAP_* */
	rb_ndp_u32 max_files;  /* registered files per VM */
	rb_ndp_u32 max_extents; /* extents per registered file */
	rb_ndp_u32 reserved[4];
};

/* Capabilities (rb_ndp_probe.caps). */
#define RB_NDP_CAP_FILES (1u << 0) /* REG_FILE, file requests */
#define RB_NDP_CAP_GDS (1u << 1)   /* REG_GPU (host target), UNREG_GPU, GPU_SUM,
                                    * RB_NDP_IO_F_GPU reads (version 4) */
#define RB_NDP_CAP_CUDA (1u << 2)  /* REG_GPU's CUDA target: the device has a
                                    * GPU (rosenbridged --gpu N, libcuda found) */

/*
 * LOAD: readable = header, struct rb_ndp_load, then elf_len bytes of ELF;
 * writable = struct rb_ndp_load_result, then log_cap bytes for the loader /
 * verifier log (NUL-terminated text), then the status byte.
 */
struct rb_ndp_load {
	rb_ndp_u32 prog_type; /* enum rb_ndp_prog_type */
	rb_ndp_u32 elf_len;
	char section[RB_NDP_SECTION_MAX]; /* NUL-terminated */
};

struct rb_ndp_load_result {
	rb_ndp_u32 handle;  /* valid when status == RB_NDP_S_OK */
	rb_ndp_u32 status;  /* enum rb_ndp_status */
	rb_ndp_u32 log_len; /* bytes of log written after this struct */
	rb_ndp_u32 reserved;
};

/* UNLOAD: readable = header, struct rb_ndp_unload; writable = a u32
 * enum rb_ndp_status, then the status byte.
 * PROBE: readable = header; writable = struct rb_ndp_probe, status byte. */
struct rb_ndp_unload {
	rb_ndp_u32 handle;
	rb_ndp_u32 reserved;
};

/*
 * READ_ND / WRITE_ND: header.sector = first sector of the first I/O.
 * readable = header, struct rb_ndp_io, meta_len bytes of metadata,
 *            scratch_len bytes of scratch (in), [WRITE_ND: data_len bytes]
 * writable = [READ_ND: data_len bytes of data], scratch_len bytes of
 *            scratch (out), struct rb_ndp_result, status byte.
 */
struct rb_ndp_io {
	rb_ndp_u32 handle;
	rb_ndp_u32 io_len;      /* bytes of the first I/O (multiple of 512) */
	rb_ndp_u32 meta_len;
	rb_ndp_u32 scratch_len;
	rb_ndp_u32 data_len;
	rb_ndp_u32 max_hops;    /* 0: RB_NDP_DEFAULT_HOPS */
	rb_ndp_u32 flags;       /* RB_NDP_IO_F_*; unknown bits: BAD_REQUEST */
	rb_ndp_u32 file_key;    /* RB_NDP_IO_F_FILE: the registered file; else 0 */
};

/*
 * A file request (RB_NDP_IO_F_FILE): header.sector * 512 is a byte offset
 * in the file registered as file_key, and so is every offset a program
 * sees and asks for (xrp next_addr, cq/sq next_off, ctx offset).  The
 * device translates each I/O through the file's extent map, exactly once;
 * an I/O crossing an extent boundary is split into several disk I/Os whose
 * data land one after the other in the buffer; one in a hole, past the
 * file's size (rounded up to 512) or outside its map ends the request with
 * OUT_OF_RANGE.  hops counts the program's I/Os, not the disk I/Os a split
 * made of them.  On a file request disk_trans only checks: it returns the
 * (file) offset when the map holds its sector, -ERANGE otherwise.  An
 * unknown or stale file_key (or another VM's) ends the request with
 * NO_PROGRAM, like an unknown handle; file_key 0 never names a file (with
 * the flag: BAD_REQUEST).
 */
#define RB_NDP_IO_F_FILE (1u << 0)
/*
 * A GPU read (RB_NDP_IO_F_GPU, READ_ND only, version 4): the first I/O is
 * io_len bytes, 512..RB_NDP_MAX_GPU_READ (a multiple of 512), at byte
 * header.sector * 512 of the disk, and its data land in a registered GPU
 * or host region (REG_GPU), never in the request: data_len must be 0.  The
 * program must be an sq program; it names the destination with the
 * rb_ndp_gpu_target helper (include/rosen/prog.h) and may rewrite the read
 * (next_off[0]/next_len[0], n_next 1, same limits).  The device performs
 * it as many storage reads of at most 1 MiB; result.bytes is io_len and
 * hops is 1.  Not with RB_NDP_IO_F_FILE (BAD_REQUEST).  A program that
 * asks for the read without a destination ends the request with the
 * status of the helper's last refusal (NO_MEMORY: unknown key, another
 * VM's; STATE_LOST; OUT_OF_RANGE), or FAULT when it never asked.
 */
#define RB_NDP_IO_F_GPU (1u << 1)
#define RB_NDP_IO_F_KNOWN (RB_NDP_IO_F_FILE | RB_NDP_IO_F_GPU)

/*
 * REG_FILE: readable = header, struct rb_ndp_reg_file, then exactly
 * n_extents struct rb_ndp_extent sorted by file_off, not overlapping in the
 * file or on the disk, each non-empty, inside the disk and inside file_size
 * rounded up to 512, offsets and lengths multiples of 512 (holes between
 * extents are allowed); writable = struct rb_ndp_reg_result (status, and
 * the key, never 0, when OK), status byte.  A map breaking a rule:
 * BAD_REQUEST; RB_NDP_MAX_FILES already registered: LIMIT.  Files belong to
 * the VM's disk, like programs.  The map is
 * the guest's statement of the file's layout: the device trusts it only
 * as far as the VM's own disk (every I/O is still range-checked against
 * the disk), so a wrong map can only misdirect the VM's own reads.
 * UNREG_FILE: readable = header, struct rb_ndp_unreg_file; writable = u32
 * NDP status (OK, or NO_PROGRAM for an unknown key), status byte.
 * Requests already running with the file finish with its map.
 */
#define RB_NDP_MAX_FILES 16u        /* registered files per VM */
#define RB_NDP_MAX_EXTENTS 16384u   /* extents per file */

struct rb_ndp_reg_file {
	rb_ndp_u64 file_size; /* bytes; I/O past it is OUT_OF_RANGE */
	rb_ndp_u32 n_extents; /* 1..RB_NDP_MAX_EXTENTS */
	rb_ndp_u32 flags;     /* none defined: must be 0 */
};

struct rb_ndp_extent {
	rb_ndp_u64 file_off;
	rb_ndp_u64 disk_off;
	rb_ndp_u64 len;
};

struct rb_ndp_unreg_file {
	rb_ndp_u32 key;
	rb_ndp_u32 reserved;
};

/*
 * REG_MEM: readable = header, struct rb_ndp_reg_mem; writable = struct
 * rb_ndp_reg_result, status byte.  Registers [gpa, gpa + len) of the guest's
 * memory (it must be memory the guest has) and returns a key; programs of
 * this VM reach it with the mem_trans helper.  UNREG_MEM: readable = header,
 * struct rb_ndp_unreg_mem; writable = u32 NDP status, status byte.
 */
#define RB_NDP_MAX_REGIONS 4u /* registered regions per VM */
#define RB_NDP_MAX_REGION_BYTES (1u << 30)

struct rb_ndp_reg_mem {
	rb_ndp_u64 gpa;
	rb_ndp_u64 len;
};

struct rb_ndp_reg_result {
	rb_ndp_u32 status; /* enum rb_ndp_status */
	rb_ndp_u32 key;
};

struct rb_ndp_unreg_mem {
	rb_ndp_u32 key;
	rb_ndp_u32 reserved;
};

/*
 * REG_GPU (version 4): readable = header, struct rb_ndp_reg_gpu; writable =
 * struct rb_ndp_reg_result, status byte.  The device allocates a region of
 * `size` bytes (a multiple of 512, 512..RB_NDP_MAX_GPU_REGION_BYTES),
 * zeroed, on the VM's behalf, in host memory (RB_NDP_GPU_HOST: always
 * there) or in the device's GPU memory (RB_NDP_GPU_CUDA: NO_GPU when the
 * device has none), accounted to the VM and freed by UNREG_GPU or with
 * the disk.  A bad size, target or flags: BAD_REQUEST; over
 * RB_NDP_MAX_GPU_REGIONS regions or RB_NDP_MAX_GPU_BYTES bytes for the
 * VM, or no memory: LIMIT.  In a real deployment the GPU is the VM's
 * (VFIO) and the device maps its memory; here the device allocates it
 * (docs/gds.md).  UNREG_GPU: readable = header, struct rb_ndp_unreg_gpu;
 * writable = u32 NDP status (OK, NO_MEMORY: unknown key, STATE_LOST),
 * status byte; reads already running into the region finish into it.
 */
#define RB_NDP_MAX_GPU_REGIONS 8u                 /* regions per VM */
#define RB_NDP_MAX_GPU_REGION_BYTES (256u << 20)  /* bytes per region */
#define RB_NDP_MAX_GPU_BYTES (512ull << 20)       /* bytes of all regions of a VM */
#define RB_NDP_MAX_GPU_READ (64u << 20)           /* bytes per GPU read, GPU_SUM */

enum rb_ndp_gpu_target {
	RB_NDP_GPU_HOST = 1, /* host memory the device allocates */
	RB_NDP_GPU_CUDA = 2, /* device memory of the daemon's CUDA GPU */
};

struct rb_ndp_reg_gpu {
	rb_ndp_u64 size;   /* bytes, multiple of 512 */
	rb_ndp_u32 target; /* enum rb_ndp_gpu_target */
	rb_ndp_u32 flags;  /* none defined: must be 0 */
};

struct rb_ndp_unreg_gpu {
	rb_ndp_u32 key;
	rb_ndp_u32 reserved;
};

/*
 * GPU_SUM (version 4): readable = header, struct rb_ndp_gpu_sum; writable =
 * struct rb_ndp_gpu_sum_result, status byte.  The CRC-32 (ISO-HDLC: the
 * one zlib's crc32() and Python's zlib.crc32 compute) of [offset, offset +
 * len) of a region, read back from the device's memory (CUDA: after a
 * device-to-host copy), so a client can check what landed.  len
 * 1..RB_NDP_MAX_GPU_READ (else BAD_REQUEST); the range must lie in the
 * region (else OUT_OF_RANGE); unknown key: NO_MEMORY; STATE_LOST.
 */
struct rb_ndp_gpu_sum {
	rb_ndp_u32 key;
	rb_ndp_u32 reserved; /* must be 0 */
	rb_ndp_u64 offset;
	rb_ndp_u64 len;
};

struct rb_ndp_gpu_sum_result {
	rb_ndp_u32 status; /* enum rb_ndp_status */
	rb_ndp_u32 reserved;
	rb_ndp_u64 sum;    /* the CRC-32 when status is OK, else 0 */
};

struct rb_ndp_result {
	rb_ndp_u32 status;  /* enum rb_ndp_status */
	rb_ndp_u32 hops;    /* storage I/Os performed */
	rb_ndp_u64 retval;  /* the program's last return value */
	rb_ndp_u64 bytes;   /* data bytes produced */
};

/* Outcomes the guest can tell apart (rb_ndp_result.status, load status). */
enum rb_ndp_status {
	RB_NDP_S_OK = 0,
	RB_NDP_S_BAD_REQUEST = 1, /* malformed NDP request */
	RB_NDP_S_NO_PROGRAM = 2,  /* unknown handle or file key (or another VM's) */
	RB_NDP_S_HOP_LIMIT = 3,   /* more I/Os than max_hops */
	RB_NDP_S_BUDGET = 4,      /* instruction budget exhausted */
	RB_NDP_S_FAULT = 5,       /* the program faulted */
	RB_NDP_S_IO_ERROR = 6,    /* a storage I/O failed */
	RB_NDP_S_OUT_OF_RANGE = 7, /* I/O outside the disk (or the file's map) */
	RB_NDP_S_REJECTED = 8,    /* LOAD: the program was rejected (see log) */
	RB_NDP_S_LIMIT = 9,       /* LOAD: too many or too large programs;
	                           * REG_MEM/REG_FILE: too many registered */
	RB_NDP_S_WRONG_TYPE = 10, /* the program's type does not fit the request */
	RB_NDP_S_NO_MEMORY = 11,  /* REG_MEM: not memory the guest has */
	RB_NDP_S_READ_ONLY = 12,  /* WRITE_ND on a read-only disk */
	RB_NDP_S_STALE_LAYOUT = 13, /* file request: the guest driver could not
	                             * get a stable map of the file's layout */
	RB_NDP_S_STATE_LOST = 14, /* the handle or key was given out by the
	                           * device before it restarted: programs and
	                           * registrations did not survive; load or
	                           * register again and retry (version 3) */
	RB_NDP_S_NO_GPU = 15,     /* REG_GPU with the CUDA target: the device
	                           * has no GPU (version 4) */
};

/*
 * Handles and keys (program handles, memory and file keys; version 3):
 * bits 31..20 are the epoch of the device instance that gave them out,
 * 1..0xffe and different for every start of the device; the rest is the
 * device's.  Values whose epoch field is 0 or 0xfff are never given out
 * (0 is never a handle or key).  Opaque to the guest; stated here so a
 * driver can tell "lost in a restart" from "never valid" in its own logs.
 */
#define RB_NDP_ID_EPOCH_SHIFT 20u
#define RB_NDP_ID_EPOCH_MAX 0xffeu

static inline const char *rb_ndp_status_name(rb_ndp_u32 s)
{
	switch (s) {
	case RB_NDP_S_OK: return "ok";
	case RB_NDP_S_BAD_REQUEST: return "bad-request";
	case RB_NDP_S_NO_PROGRAM: return "no-program";
	case RB_NDP_S_HOP_LIMIT: return "hop-limit";
	case RB_NDP_S_BUDGET: return "budget";
	case RB_NDP_S_FAULT: return "fault";
	case RB_NDP_S_IO_ERROR: return "io-error";
	case RB_NDP_S_OUT_OF_RANGE: return "out-of-range";
	case RB_NDP_S_REJECTED: return "rejected";
	case RB_NDP_S_LIMIT: return "limit";
	case RB_NDP_S_WRONG_TYPE: return "wrong-type";
	case RB_NDP_S_NO_MEMORY: return "no-memory";
	case RB_NDP_S_READ_ONLY: return "read-only";
	case RB_NDP_S_STALE_LAYOUT: return "stale-layout";
	case RB_NDP_S_STATE_LOST: return "state-lost";
	case RB_NDP_S_NO_GPU: return "no-gpu";
	}
	return "unknown";
}

/* The wire layouts, checked wherever the header is compiled as C. */
#ifndef __cplusplus
_Static_assert(sizeof(struct rb_ndp_probe) == 64, "rb_ndp_probe is 64 bytes");
_Static_assert(sizeof(struct rb_ndp_io) == 32, "rb_ndp_io is 32 bytes");
_Static_assert(sizeof(struct rb_ndp_reg_file) == 16, "rb_ndp_reg_file is 16 bytes");
_Static_assert(sizeof(struct rb_ndp_extent) == 24, "rb_ndp_extent is 24 bytes");
_Static_assert(sizeof(struct rb_ndp_unreg_file) == 8, "rb_ndp_unreg_file is 8 bytes");
_Static_assert(sizeof(struct rb_ndp_reg_gpu) == 16, "rb_ndp_reg_gpu is 16 bytes");
_Static_assert(sizeof(struct rb_ndp_unreg_gpu) == 8, "rb_ndp_unreg_gpu is 8 bytes");
_Static_assert(sizeof(struct rb_ndp_gpu_sum) == 24, "rb_ndp_gpu_sum is 24 bytes");
_Static_assert(sizeof(struct rb_ndp_gpu_sum_result) == 16, "rb_ndp_gpu_sum_result is 16 bytes");
#endif

#endif /* ROSEN_VIRTIO_NDP_H */
