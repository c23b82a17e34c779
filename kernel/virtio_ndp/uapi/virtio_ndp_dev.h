/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * virtio_ndp.ko's user-space interface: one character device per disk,
 * /dev/virtio-ndp/<disk> (e.g. /dev/virtio-ndp/vndpa for /dev/vndpa: the
 * driver names its disks vndpa, vndpb, ... so they never collide with
 * virtio_blk's vdX), beside the ordinary block device.  An open file owns
 * what it creates: a DMA area (mmap), programs (LOAD), registered memory
 * (REG_MEM), requests in flight; all of it goes away when the file is
 * released.
 *
 * Buffers are never user pages: every request names its buffers by offset
 * into the file's DMA area, driver-allocated memory the device reads and
 * writes, mapped with mmap(fd, 0, len) after VNDP_IOC_DMA_ALLOC (MAP_SHARED
 * only; PROT_WRITE needs the file opened O_RDWR, as any shared mapping
 * does: meta and scratch are written there, so NDP users open O_RDWR).
 * The mapping holds the file: it may outlive close(), and fork() shares
 * it.  After the disk is removed, calls fail -ENODEV and poll() reports
 * POLLHUP; completions of requests that were in flight can still be
 * reaped.
 * The area is made of physically contiguous chunks of info.dma_chunk_bytes;
 * a buffer may span chunks, a REG_MEM region may not (the device registers
 * one contiguous guest-physical range).
 *
 * Requests are queued with VNDP_IOC_SUBMIT (up to VNDP_MAX_BATCH per call,
 * each copied once and all validated before any is queued) and reaped with
 * VNDP_IOC_REAP (many per call, optionally waiting); poll() reports
 * POLLIN while completions wait.  Errors are negative errnos; NDP outcomes
 * are enum rb_ndp_status values (rosen/virtio_ndp.h, the wire format).
 */
#ifndef _UAPI_VIRTIO_NDP_DEV_H
#define _UAPI_VIRTIO_NDP_DEV_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define VNDP_DEV_DIR "/dev/virtio-ndp"
#define VNDP_UAPI_VERSION 1

#define VNDP_MAX_BATCH 64u        /* requests per SUBMIT */
#define VNDP_MAX_INFLIGHT 256u    /* requests in flight per open file */
#define VNDP_DMA_MAX (64u << 20)  /* DMA area per open file */
#define VNDP_SECTION_MAX 64u      /* = RB_NDP_SECTION_MAX */

/* VNDP_IOC_INFO: what the disk is and what it can do. */
struct vndp_info {
	__u64 capacity_bytes;
	__u32 block_size;       /* logical block size */
	__u32 num_queues;       /* virtqueues the driver uses */
	__u32 readonly;         /* VIRTIO_BLK_F_RO */
	__u32 ndp;              /* 1: the device answered the NDP probe */
	__u32 ndp_version;      /* RB_NDP_VERSION the device speaks */
	__u32 prog_types;       /* bit n: enum rb_ndp_prog_type n */
	__u32 max_programs;     /* per VM (the device's limit) */
	__u32 max_elf_bytes;
	__u32 max_meta, max_scratch, max_data, max_hops;
	__u32 max_batch;        /* VNDP_MAX_BATCH */
	__u32 max_inflight;     /* VNDP_MAX_INFLIGHT */
	__u32 dma_chunk_bytes;  /* physically contiguous chunks of the DMA area */
	__u32 uapi_version;     /* VNDP_UAPI_VERSION */
	__u64 dma_max_bytes;    /* VNDP_DMA_MAX */
	__u64 features;         /* negotiated virtio feature bits */
	char disk[32];          /* the block device's name, e.g. "vndpa" */
	__u32 max_io_bytes;     /* largest READ/WRITE len (-E2BIG beyond) */
	__u32 ndp_caps;         /* RB_NDP_CAP_* the device reported */
	/* READ_ND/WRITE_ND sent to the device by this disk so far (every
	 * open file): device round trips.
	 */
	__u64 nd_requests;
	__u32 max_files;        /* registered files per VM (the device's limit) */
	__u32 reserved[3];
};

/* VNDP_IOC_DMA_ALLOC: once per open file, before mmap.  len in: bytes
 * wanted (at most dma_max_bytes, else -E2BIG); out: the area's size, len
 * rounded up to whole chunks, except that a last partial chunk is rounded
 * up to a power of two of pages only (chunk k always starts at
 * k * dma_chunk_bytes).  -EBUSY when the file has one already, -ENOMEM
 * when the guest has no contiguous memory left.  Zero-filled.
 */
struct vndp_dma_alloc {
	__u64 len;
	__u32 flags;            /* must be 0 */
	__u32 reserved;
};

/* VNDP_IOC_LOAD: an ELF object's section as a program of prog_type.  The
 * ioctl returns 0 when the device answered: status says how (RB_NDP_S_OK
 * with handle set, RB_NDP_S_REJECTED with the verifier's log, ...);
 * -errno for bad arguments (-EFAULT, -EINVAL, -E2BIG), -EOPNOTSUPP on a
 * device without NDP, -EIO when the device failed the request.  The
 * program belongs to this open file.
 */
struct vndp_load {
	__u64 elf_ptr;          /* user pointer to the object */
	__u32 elf_len;          /* <= info.max_elf_bytes */
	__u32 prog_type;        /* enum rb_ndp_prog_type */
	char section[VNDP_SECTION_MAX]; /* NUL-terminated */
	__u64 log_ptr;          /* user buffer for the log, or 0 */
	__u32 log_len;          /* its size (<= 65536) */
	__u32 flags;            /* must be 0 */
	__u32 handle;           /* out */
	__u32 status;           /* out: enum rb_ndp_status */
	__u32 log_written;      /* out: bytes of log copied, NUL included */
	__u32 reserved;
};

/* VNDP_IOC_UNLOAD: a program this file loaded.  -ENOENT for a handle it
 * does not own (another file's, or stale).
 */
struct vndp_unload {
	__u32 handle;
	__u32 flags;            /* must be 0 */
	__u32 status;           /* out */
	__u32 reserved;
};

/* VNDP_IOC_REG_MEM: [dma_off, dma_off + len) of this file's DMA area,
 * inside one chunk, registered with the device; programs reach it with
 * the mem_trans helper under `key`.  VNDP_IOC_UNREG_MEM: by key.
 */
struct vndp_reg_mem {
	__u64 dma_off;
	__u64 len;
	__u32 flags;            /* must be 0 */
	__u32 key;              /* out (UNREG_MEM: in) */
	__u32 status;           /* out */
	__u32 reserved;
};

enum vndp_op {
	VNDP_OP_READ = 1,       /* plain block I/O on the raw disk */
	VNDP_OP_WRITE = 2,
	VNDP_OP_FLUSH = 3,
	VNDP_OP_READ_ND = 4,    /* the program runs on every I/O, in the host */
	VNDP_OP_WRITE_ND = 5,
};

/* Request flags.  VNDP_REQ_F_FILE (READ_ND/WRITE_ND only): offset is a
 * byte offset in the file this open file registered as file_key
 * (VNDP_IOC_REG_FILE), and so is every offset the program sees and asks
 * for; the device translates them through the file's extent map.
 */
#define VNDP_REQ_F_FILE (1u << 0)
#define VNDP_REQ_F_KNOWN VNDP_REQ_F_FILE /* flags a request may carry */

/*
 * One request.  Offsets and lengths of disk I/O are multiples of 512 and
 * inside the disk.  Buffers are (offset, length) in the DMA area:
 *   READ / WRITE: data_off, len bytes.  FLUSH: nothing.
 *   READ_ND:  first I/O (offset, len), program `handle`; meta (read-only to
 *             the program), scratch (in and out), data (out: the data
 *             buffer's final contents, data_len bytes).
 *   WRITE_ND: the same; data holds the len bytes to write.
 * Raw writes (WRITE, WRITE_ND) need the file opened for writing, every op
 * but FLUSH for reading (-EBADF)
 * and are refused with -EBUSY while the disk or a partition of it is
 * mounted or otherwise claimed (an O_EXCL open); a plain WRITE to a
 * read-only disk is -EROFS (WRITE_ND: the device answers READ_ONLY).
 * Errors of SUBMIT: -EINVAL (op, flags, reserved fields, file_key without
 * VNDP_REQ_F_FILE, the flag on an op other than *_ND, misaligned or
 * outside the disk (a file request: past the file's size -- the
 * registered one or the current one, whichever is larger -- rounded up
 * to 512), a buffer outside the DMA area or no DMA area,
 * max_hops above info.max_hops), -E2BIG (len above max_io_bytes or
 * max_data, meta/scratch/data above their limits), -ENOENT (a handle or
 * file_key this file does not own), -EOPNOTSUPP (*_ND without NDP,
 * VNDP_REQ_F_FILE without RB_NDP_CAP_FILES), -EBADF (a file WRITE_ND whose
 * registered fd is not open for writing too), -EROFS, -EBUSY, -EFAULT.
 * READ and READ_ND first write back the disk's dirty page-cache pages;
 * WRITE and WRITE_ND write back, run, then drop the cached pages
 * (WRITE_ND: of the whole disk, its program may write anywhere).
 * File requests follow the same order on the file's own pages (and drop
 * all of them after a WRITE_ND); the raw-disk rules (-EBUSY while mounted)
 * do not apply to them: the file's locks protect it.  Their completion
 * may carry RB_NDP_S_STALE_LAYOUT (no stable map of the file could be
 * had), RB_NDP_S_OUT_OF_RANGE without a device round trip (the file
 * shrank below the request, or has no block left), or error -ENOENT (it
 * was unregistered after SUBMIT checked the key).  A file WRITE_ND only
 * overwrites blocks the file has (the device refuses holes and EOF).
 */
struct vndp_req {
	__u32 op;               /* enum vndp_op */
	__u32 flags;            /* VNDP_REQ_F_* */
	__u64 user_data;        /* given back in the completion */
	__u64 offset;           /* disk byte offset of the (first) I/O */
	__u32 len;              /* bytes of the (first) I/O */
	__u32 handle;           /* *_ND: the program */
	__u64 data_off;
	__u32 data_len;         /* *_ND: <= info.max_data */
	__u32 max_hops;         /* *_ND: 0 = the device's default */
	__u64 meta_off;
	__u32 meta_len;         /* <= info.max_meta */
	__u32 scratch_len;      /* <= info.max_scratch */
	__u64 scratch_off;
	__u32 file_key;         /* VNDP_REQ_F_FILE: the file; else 0 */
	__u32 reserved[5];
};

/* VNDP_IOC_SUBMIT: reqs[0..nr) all validated, then all queued (or none:
 * the ioctl fails with the first bad request's errno and its index in
 * `done`).  -EAGAIN when they would exceed VNDP_MAX_INFLIGHT.
 */
struct vndp_submit {
	__u64 reqs_ptr;         /* struct vndp_req[nr] */
	__u32 nr;               /* 1..VNDP_MAX_BATCH */
	__u32 flags;            /* must be 0 */
	__u32 done;             /* out: requests queued, or the bad one's index */
	__u32 reserved;
};

struct vndp_cpl {
	__u64 user_data;
	__s32 error;            /* 0, or -errno (-EIO: the device failed it) */
	__u32 status;           /* *_ND: enum rb_ndp_status */
	__u32 hops;             /* *_ND: storage I/Os the device performed */
	__u32 reserved;
	__u64 retval;           /* *_ND: the program's last return value */
	__u64 bytes;            /* bytes transferred / produced */
};

/* VNDP_IOC_REAP: up to max completions into cpls; with min > 0 waits
 * (interruptibly, at most timeout_ms; < 0 forever) until that many are
 * there.  got = how many were copied; -ETIMEDOUT when fewer than min
 * came in time (got may still be > 0: read it even then).  -EINVAL for
 * max == 0, min > max, or min above the requests outstanding (submitted,
 * not reaped: they could never come); -EINTR on a signal; -EFAULT leaves
 * the completions queued.
 */
struct vndp_reap {
	__u64 cpls_ptr;         /* struct vndp_cpl[max] */
	__u32 max;
	__u32 min;
	__s32 timeout_ms;
	__u32 got;              /* out */
};

/*
 * VNDP_IOC_REG_FILE: registers a regular file of an ext4 filesystem
 * mounted from this disk (or one of its partitions) for file requests;
 * the fd must be open for reading (file WRITE_NDs also need it open for
 * writing).  The driver writes back the file's dirty pages (delayed
 * allocation picks blocks at writeback), maps it with bmap() (holes,
 * unwritten extents and unmappable blocks are not readable by programs),
 * adds the partition's start, compresses the blocks into extents and
 * registers them with the device; key out.  ioctl 0 with status LIMIT
 * (key 0) when the device holds as many files as it takes.  While a file
 * request runs, the driver holds the file's inode shared (i_rwsem and
 * the mapping's invalidate_lock: truncate, hole punching, fallocate and
 * writes wait for it) and re-checks the map first (size, blocks, ctime,
 * mtime, i_version where counted), refreshing it when the file changed;
 * STALE_LAYOUT when it cannot get a stable map.  The registration holds
 * the file (and so its mount) and belongs to this open file: UNREG_FILE
 * (key in; fd ignored) or release ends it.  Errors: -EBADF (fd not open,
 * or not open for reading), -EINVAL (not a regular file: a directory, a
 * pipe, a device; or on no block device: tmpfs, proc), -EXDEV (on
 * another disk), -EOPNOTSUPP (a filesystem other than ext4 -- which also
 * rules out reflinked/shared blocks, ext4 has none --, stacked devices:
 * dm, md, loop; encrypted, DAX, inline-data or data-journalled files; a
 * file with no block a program could read: empty or all holes; no
 * RB_NDP_CAP_FILES), -E2BIG (more extents than the device takes), -EBUSY
 * (the file kept changing while it was mapped), -ENOSPC (64 files per
 * open file), -EINTR, -ENODEV.  UNREG_FILE: -ENOENT for a key this open
 * file does not own.
 */
struct vndp_reg_file {
	__s32 fd;               /* in (REG_FILE): an open file on this disk */
	__u32 flags;            /* must be 0 */
	__u32 key;              /* out (REG_FILE); in (UNREG_FILE) */
	__u32 status;           /* out: enum rb_ndp_status */
	__u64 size;             /* out: the file's size */
	__u32 n_extents;        /* out: extents registered */
	__u32 reserved;
};

#define VNDP_IOC_MAGIC 0xbe
#define VNDP_IOC_INFO _IOR(VNDP_IOC_MAGIC, 1, struct vndp_info)
#define VNDP_IOC_DMA_ALLOC _IOWR(VNDP_IOC_MAGIC, 2, struct vndp_dma_alloc)
#define VNDP_IOC_LOAD _IOWR(VNDP_IOC_MAGIC, 3, struct vndp_load)
#define VNDP_IOC_UNLOAD _IOWR(VNDP_IOC_MAGIC, 4, struct vndp_unload)
#define VNDP_IOC_REG_MEM _IOWR(VNDP_IOC_MAGIC, 5, struct vndp_reg_mem)
#define VNDP_IOC_UNREG_MEM _IOWR(VNDP_IOC_MAGIC, 6, struct vndp_reg_mem)
#define VNDP_IOC_SUBMIT _IOWR(VNDP_IOC_MAGIC, 7, struct vndp_submit)
#define VNDP_IOC_REAP _IOWR(VNDP_IOC_MAGIC, 8, struct vndp_reap)
#define VNDP_IOC_REG_FILE _IOWR(VNDP_IOC_MAGIC, 9, struct vndp_reg_file)
#define VNDP_IOC_UNREG_FILE _IOWR(VNDP_IOC_MAGIC, 10, struct vndp_reg_file)

#endif /* _UAPI_VIRTIO_NDP_DEV_H */
