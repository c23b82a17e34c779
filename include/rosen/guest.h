/* SPDX-License-Identifier: MIT */
/*
 * librosen: what an application uses to reach a virtio-blk / virtio-ndp
 * device from user space, the same API over two transports:
 *   vhost-user:/path/to.sock   the process is the vhost-user frontend and
 *                              the virtio driver ("virtio-user")
 *   pci:0000:00:05.0           a virtio-pci device inside a VM, bound to
 *                              uio_pci_generic (see docs/librosen.md)
 * Each queue belongs to one thread at a time: calls on different queues may
 * run concurrently, calls on one queue may not.  Every error is a negative
 * errno; rb_guest_errmsg() then says what happened, for a person.
 */
#ifndef ROSEN_GUEST_H
#define ROSEN_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum rb_guest_notify {
	RB_GUEST_NOTIFY_POLL = 0, /* skip kicks the device declined; poll used rings */
	RB_GUEST_NOTIFY_EVENT,    /* kick on every submission; sleep on the call fd */
};

struct rb_guest_opts {
	unsigned num_queues;  /* 0: all the device offers (at most 16) */
	unsigned queue_size;  /* power of two; 0: 256 */
	enum rb_guest_notify notify;
	size_t dma_bytes;     /* DMA memory for buffers; 0: 64 MiB */
	/* vhost-user: when the backend goes away (crash, restart, upgrade),
	 * how long to keep trying to set the device up with the next one on
	 * the same socket, in ms (0: 30000; < 0: never).  Needs a backend
	 * with INFLIGHT_SHMFD (rosenbridged): its requests in flight are then
	 * resubmitted, none lost, none completed twice. */
	int reconnect_ms;
};

struct rb_guest_dev;

/* Opens a device by URI.  0 or -errno (see rb_guest_errmsg()). */
int rb_guest_open(const char *uri, const struct rb_guest_opts *opts,
		  struct rb_guest_dev **out);
void rb_guest_close(struct rb_guest_dev *dev);

/* The message of the last error on this thread. */
const char *rb_guest_errmsg(void);

struct rb_guest_info {
	uint64_t capacity_bytes;
	uint32_t block_size;
	unsigned num_queues;  /* queues set up (<= what the device offers) */
	unsigned max_queues;  /* queues the device offers */
	unsigned queue_size;
	uint64_t features;    /* negotiated virtio features */
	bool ndp;             /* the device answers the NDP capability probe */
	bool readonly;
	const char *transport; /* "vhost-user", "pci", "kernel" or "file" */
	/* kernel/file transports: READ_ND/WRITE_ND requests the guest driver
	 * has sent to the device for this disk so far (every user): device
	 * round trips; 0 elsewhere. */
	uint64_t nd_requests;
};
void rb_guest_info(const struct rb_guest_dev *dev, struct rb_guest_info *info);

/* Buffers for I/O must come from here (memory the device can reach).
 * Page-aligned, zeroed; NULL when the DMA memory is exhausted. */
void *rb_guest_dma_alloc(struct rb_guest_dev *dev, size_t len);
void rb_guest_dma_free(struct rb_guest_dev *dev, void *buf);

/* Synchronous I/O on queue q.  offset and len are multiples of 512 and
 * inside the device; buf is DMA memory.  0, or -EINVAL (arguments),
 * -EFAULT (buf is not DMA memory), -EIO/-ENOTSUP (device status), -EPROTO
 * (the device broke the virtio protocol), -ETIMEDOUT. */
int rb_guest_read(struct rb_guest_dev *dev, unsigned q, void *buf, uint64_t offset,
		  size_t len);
int rb_guest_write(struct rb_guest_dev *dev, unsigned q, const void *buf,
		   uint64_t offset, size_t len);
int rb_guest_flush(struct rb_guest_dev *dev, unsigned q);

/* ---- Asynchronous interface: submit many, poll completions ------------- */

enum rb_guest_op { RB_GUEST_OP_READ, RB_GUEST_OP_WRITE, RB_GUEST_OP_FLUSH };

struct rb_guest_cpl {
	void *user;   /* as given to rb_guest_submit() */
	int status;   /* 0, -EIO or -ENOTSUP */
	uint32_t len; /* bytes the device wrote (reads) */
};

/* Queues one request; -EAGAIN when the queue is full (poll first). */
int rb_guest_submit(struct rb_guest_dev *dev, unsigned q, enum rb_guest_op op, void *buf,
		    uint64_t offset, size_t len, void *user);
/* Returns up to max completions without waiting (0 when none), or -EPROTO
 * when the device returned something invalid (the queue is then dead). */
int rb_guest_poll(struct rb_guest_dev *dev, unsigned q, struct rb_guest_cpl *cpl,
		  unsigned max);
/* Like rb_guest_poll() but waits for at least one completion: spins in
 * poll mode, sleeps on the call fd in event mode.  timeout_ms < 0: forever.
 * -ETIMEDOUT when nothing came. */
int rb_guest_wait(struct rb_guest_dev *dev, unsigned q, struct rb_guest_cpl *cpl,
		  unsigned max, int timeout_ms);
/* Requests submitted and not yet completed on queue q. */
unsigned rb_guest_inflight(const struct rb_guest_dev *dev, unsigned q);

/* ---- NDP: programs next to the storage (virtio-ndp) ------------------------ */

/* Program types: 1 sq, 2 cq, 3 xrp (enum rb_ndp_prog_type). */

/*
 * Loads a clang-built eBPF object's section as a program of `prog_type` into
 * the device (it belongs to the VM's disk until unloaded).  0 with *handle
 * set; -ENOTSUP when the device does not speak NDP; -EINVAL when it was
 * rejected (log says why); -ENOSPC at the VM's program limit.  log (may be
 * NULL) receives the device's load log.
 */
int rb_guest_ndp_load(struct rb_guest_dev *dev, unsigned q, const void *elf, size_t elf_len,
		      const char *section, uint32_t prog_type, uint32_t *handle, char *log,
		      size_t loglen);
/* 0, -ENOENT (no such handle), -ENOTSUP. */
int rb_guest_ndp_unload(struct rb_guest_dev *dev, unsigned q, uint32_t handle);

/* Registers DMA memory (from rb_guest_dma_alloc) with the device: programs
 * of this VM reach it through the mem_trans helper with the returned key.
 * 0, -EFAULT (not DMA memory), -ENOSPC (limit), -ENOTSUP. */
int rb_guest_ndp_reg_mem(struct rb_guest_dev *dev, unsigned q, const void *buf, size_t len,
			 uint32_t *key);
/* The same by guest-physical address (what the device checks: it refuses
 * memory the guest does not have with -EFAULT). */
int rb_guest_ndp_reg_gpa(struct rb_guest_dev *dev, unsigned q, uint64_t gpa, uint64_t len,
			 uint32_t *key);
int rb_guest_ndp_unreg_mem(struct rb_guest_dev *dev, unsigned q, uint32_t key);

struct rb_ndp_extent; /* rosen/virtio_ndp.h */

/*
 * Registers a file's layout: n extents (struct rb_ndp_extent of
 * rosen/virtio_ndp.h: file_off, disk_off, len; sorted by file_off, in whole
 * 512-byte sectors, disjoint in the file and on the disk, inside the disk
 * and within file_size rounded up to 512).  READ_ND/WRITE_ND with
 * RB_GUEST_ND_FILE and the returned key then work in file offsets.  0 with
 * *key set; -EINVAL (the device refused the map: its log says why),
 * -ENOSPC (RB_NDP_MAX_FILES registered), -ENOTSUP (no file support: an
 * older device, or the kernel: transport for now).
 */
int rb_guest_ndp_reg_file(struct rb_guest_dev *dev, unsigned q, const struct rb_ndp_extent *ext,
			  unsigned n, uint64_t file_size, uint32_t *key);
/* 0, -ENOENT (no such key), -ENOTSUP.  Requests already running with the
 * file finish with its map. */
int rb_guest_ndp_unreg_file(struct rb_guest_dev *dev, unsigned q, uint32_t key);

struct rb_guest_nd {
	uint32_t handle;
	uint64_t offset;        /* first I/O: byte offset, multiple of 512 */
	uint32_t io_len;        /* first I/O: bytes, multiple of 512, <= 4096 */
	const void *meta;       /* read-only to the program */
	uint32_t meta_len;      /* <= 4096 */
	void *scratch;          /* in and out */
	uint32_t scratch_len;   /* <= 4096 */
	void *data;             /* READ_ND: the data buffer's final contents;
				 * WRITE_ND: the io_len bytes to write */
	uint32_t data_len;      /* <= 4096 */
	uint32_t max_hops;      /* 0: 64 */
	/* RB_GUEST_ND_FILE: offset and every offset the program sees or asks
	 * for are offsets in the file registered as file_key
	 * (rb_guest_ndp_reg_file); 0: disk offsets, file_key 0. */
	uint32_t flags;
	uint32_t file_key;
};

#define RB_GUEST_ND_FILE (1u << 0)

struct rb_guest_nd_result {
	uint32_t status;  /* enum rb_ndp_status (rosen/virtio_ndp.h) */
	uint32_t hops;    /* storage I/Os the device performed */
	uint64_t retval;  /* the program's last return value */
	uint64_t bytes;
};

/* READ_ND / WRITE_ND, synchronous: one round trip to the device whatever
 * the number of hops.  Plain buffers (copied to and from DMA memory).
 * 0 when the request reached the device (res->status says how it ended),
 * or -errno for transport problems. */
int rb_guest_read_nd(struct rb_guest_dev *dev, unsigned q, const struct rb_guest_nd *nd,
		     struct rb_guest_nd_result *res);
int rb_guest_write_nd(struct rb_guest_dev *dev, unsigned q, const struct rb_guest_nd *nd,
		      struct rb_guest_nd_result *res);

/*
 * Asynchronous READ_ND (write = false) / WRITE_ND: queued like
 * rb_guest_submit(); its completion (rb_guest_poll/wait, with `user`) comes
 * after *res, nd->data and nd->scratch hold the results.  nd's buffers and
 * res must stay valid until then.  -EAGAIN when the queue is full.
 */
int rb_guest_submit_nd(struct rb_guest_dev *dev, unsigned q, bool write,
		       const struct rb_guest_nd *nd, struct rb_guest_nd_result *res, void *user);

/* ---- RosenGDS: storage into GPU memory (docs/gds.md) ---------------------- */

#define RB_GUEST_GPU_HOST 1u /* a host-memory region the device allocates */
#define RB_GUEST_GPU_CUDA 2u /* a region in the device's CUDA GPU memory */

/*
 * Has the device allocate a zeroed GPU region of `size` bytes (a multiple
 * of 512, at most 256 MiB; 8 regions and 512 MiB per VM) on `target`.
 * 0 with *key set; -ENODEV (the device has no GPU: NO_GPU), -ENOSPC (the
 * VM's limits, or no memory), -EINVAL (size or target refused), -ENOTSUP
 * (no RosenGDS in the device, or a kernel-driven transport).  Regions do
 * not survive a device restart (their keys then answer -ESTALE).
 */
int rb_guest_ndp_reg_gpu(struct rb_guest_dev *dev, unsigned q, uint32_t target, uint64_t size,
			 uint32_t *key);
/* 0, -ENOENT (no such region), -ESTALE (from before a device restart). */
int rb_guest_ndp_unreg_gpu(struct rb_guest_dev *dev, unsigned q, uint32_t key);
/* The CRC-32 (zlib's) of [offset, offset + len) of a region, as the device
 * reads it back (len 1..64 MiB).  0, -ENOENT, -ESTALE, -ERANGE (outside the
 * region), -EINVAL, -EIO. */
int rb_guest_ndp_gpu_sum(struct rb_guest_dev *dev, unsigned q, uint32_t key, uint64_t offset,
			 uint64_t len, uint32_t *crc);

struct rb_guest_gds {
	uint32_t handle;     /* an sq program that names the destination
			      * (progs/gds_map.c) */
	uint64_t offset;     /* disk byte offset, multiple of 512 */
	uint32_t len;        /* bytes, multiple of 512, 512..64 MiB */
	const void *meta;    /* what the program reads (gds_map: struct
			      * gds_map_meta), <= 4096 bytes */
	uint32_t meta_len;
};

/* A GPU read: one READ_ND whose data go to the region the program names,
 * never through this process.  0 when the request reached the device
 * (res->status says how it ended: OK, hops 1, bytes len), or -errno. */
int rb_guest_read_gds(struct rb_guest_dev *dev, unsigned q, const struct rb_guest_gds *g,
		      struct rb_guest_nd_result *res);

#ifdef __cplusplus
}
#endif
#endif /* ROSEN_GUEST_H */
