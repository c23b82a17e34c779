/* SPDX-License-Identifier: MIT */
/*
 * DMA targets for RosenGDS (docs/gds.md): regions the daemon allocates on a
 * VM's behalf, in host memory (always there) or in the memory of the
 * daemon's CUDA GPU (the driver API loaded at run time with dlopen, so the
 * daemon builds and runs without CUDA), the staging buffers that carry a
 * storage read into device memory, and the CRC-32 a client checks them by.
 * It knows nothing of virtio or NDP; it never trusts a length it did not
 * check against a region's size.
 */
#ifndef ROSEN_GPU_H
#define ROSEN_GPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum rb_gpu_kind {
	RB_GPU_HOST = 1, /* host memory (mmap, zeroed) */
	RB_GPU_CUDA = 2, /* device memory of the CUDA GPU (cuMemAlloc) */
};

/* ---- the daemon's CUDA GPU (one per process) ----------------------------- */

/*
 * Loads libcuda.so.1, initialises the driver and retains the primary
 * context of device `ordinal`.  0, or -ENOENT (no libcuda.so.1, or an entry
 * point missing), -ENODEV (cuInit or the device failed: no GPU), with err
 * saying which.  Without it every CUDA request answers "no GPU".
 */
int rb_gpu_cuda_open(int ordinal, char *err, size_t errlen);
/* Whether rb_gpu_cuda_open() succeeded; the device's name ("" if none). */
bool rb_gpu_cuda_available(void);
const char *rb_gpu_cuda_name(void);
/* Releases the primary context (regions and stagers must be gone). */
void rb_gpu_cuda_close(void);

/* ---- regions ---------------------------------------------------------------- */

struct rb_gpu_region;

/*
 * A zeroed region of `size` bytes of `kind` (reference count 1).  0, or
 * -EINVAL (size 0 or kind unknown), -ENODEV (RB_GPU_CUDA without a GPU),
 * -ENOMEM, with err saying why.
 */
int rb_gpu_region_new(uint32_t kind, uint64_t size, struct rb_gpu_region **out, char *err,
		      size_t errlen);
void rb_gpu_region_get(struct rb_gpu_region *r);
/* Drops a reference; the last frees the memory.  NULL: nothing. */
void rb_gpu_region_put(struct rb_gpu_region *r);
/* Whether a reference other than the caller's one is held. */
bool rb_gpu_region_shared(const struct rb_gpu_region *r);
uint64_t rb_gpu_region_size(const struct rb_gpu_region *r);
uint32_t rb_gpu_region_kind(const struct rb_gpu_region *r);
/* RB_GPU_HOST: the region's memory (page-aligned); RB_GPU_CUDA: NULL. */
uint8_t *rb_gpu_region_host(const struct rb_gpu_region *r);

/* [off, off + len) is non-empty and inside a region of `size` bytes
 * (no overflow).  Pure. */
bool rb_gpu_range_ok(uint64_t size, uint64_t off, uint64_t len);

/* CRC-32 (ISO-HDLC: zlib's crc32(), Python's zlib.crc32), continued from
 * crc (0 to start).  Pure. */
uint32_t rb_gpu_crc32(uint32_t crc, const void *buf, size_t len);

/* The CRC-32 of [off, off + len) of r, read back from its memory (CUDA:
 * device-to-host copies, through a bounce buffer).  0, or -ERANGE (outside
 * the region), -EIO (a CUDA call failed: err says which). */
int rb_gpu_region_sum(struct rb_gpu_region *r, uint64_t off, uint64_t len, uint32_t *crc,
		      char *err, size_t errlen);

/* Copies len bytes from host memory into [off, off + len) of r,
 * synchronously (tests, tools; the data path uses a stager).  0, -ERANGE,
 * -EIO. */
int rb_gpu_region_write(struct rb_gpu_region *r, uint64_t off, const void *src, size_t len,
			char *err, size_t errlen);

/* ---- staging for CUDA regions --------------------------------------------- */

/*
 * What carries a storage read into device memory (cuFile's compatibility
 * mode does the same; peer-to-peer DMA from a file into a GPU BAR is not
 * possible with io_uring): RB_GPU_STAGE_SLOTS pinned (cuMemHostRegister)
 * buffers of RB_GPU_CHUNK bytes, a stream and an event per slot.  Storage
 * reads land in a slot, an asynchronous host-to-device copy on the stream
 * moves it on, and the slot is reused once its event says the copy is
 * done, so reads and copies of a large request overlap.  At most
 * RB_GPU_MAX_STAGERS exist in the process; a stager belongs to one
 * request at a time.
 */
#define RB_GPU_CHUNK (1u << 20)
#define RB_GPU_STAGE_SLOTS 8u
#define RB_GPU_MAX_STAGERS 8u

struct rb_gpu_stager;

/* A free stager (made on first use), or NULL: none free, no GPU, or a CUDA
 * call failed (err says which). */
struct rb_gpu_stager *rb_gpu_stager_get(char *err, size_t errlen);
/* Waits for its copies, then gives it back. */
void rb_gpu_stager_put(struct rb_gpu_stager *s);
/* Slot i's buffer, once the copy last issued from it is done (waits).
 * NULL when that copy failed. */
uint8_t *rb_gpu_stager_slot(struct rb_gpu_stager *s, unsigned i);
/* Queues the copy of len bytes of slot i to [off, off + len) of r.  0,
 * -ERANGE, -EIO. */
int rb_gpu_stager_copy(struct rb_gpu_stager *s, unsigned i, struct rb_gpu_region *r, uint64_t off,
		       size_t len, char *err, size_t errlen);
/* Waits for every copy queued.  0, or -EIO (a copy failed). */
int rb_gpu_stager_sync(struct rb_gpu_stager *s, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* ROSEN_GPU_H */
