/* SPDX-License-Identifier: MIT */
/*
 * What librosen's files share: the device and queue state, the DMA memory
 * allocator, and the transport interface.  A transport (vhost-user, pci)
 * brings the device up to the point where queues can be described to it;
 * everything above (requests, completions, DMA buffers) is common.
 * Nothing outside lib/guest includes it.
 */
#ifndef ROSEN_GUEST_INTERNAL_H
#define ROSEN_GUEST_INTERNAL_H

#include <rosen/guest.h>
#include <rosen/virtio.h>

#include <pthread.h>

#define RB_GUEST_MAX_QUEUES 16u
#define RB_GUEST_PAGE 4096u

/* What the device sees of one request: header and status, in DMA memory. */
struct rb_guest_req_hdr {
	struct rb_virtio_blk_outhdr hdr;
	uint8_t status;
	uint8_t pad[15];
};

struct rb_guest_nd_pending; /* ndp.c: an asynchronous READ_ND/WRITE_ND */

struct rb_guest_req {
	void *user;
	enum rb_guest_op op;
	struct rb_guest_req_hdr *dma; /* this request's header/status */
	struct rb_guest_nd_pending *nd; /* NDP requests carry their own layout */
	struct rb_guest_req *next_free;
};

struct rb_guest_queue {
	struct rb_virtq_drv vq;
	void *ring;          /* DMA memory holding desc, avail, used */
	size_t ring_bytes;
	uint64_t desc_addr, avail_addr, used_addr; /* device addresses */
	struct rb_guest_req *reqs;
	struct rb_guest_req_hdr *hdrs; /* DMA memory, one per request */
	struct rb_guest_req *free;
	unsigned inflight;
	uint8_t *ndp_stage;          /* DMA staging for NDP requests (ndp.c) */
	/* Transport notification handles. */
	int kick_fd;                 /* vhost-user: eventfd (-1: none) */
	int call_fd;                 /* vhost-user: eventfd (-1: none) */
	volatile uint16_t *notify;   /* pci: queue notify register */
	/* rb_guest_poll() finding nothing with requests in flight: when it
	 * last asked the transport whether the device is still there. */
	unsigned empty_polls;
	uint64_t checked_ms;
	/* NDP requests answered STATE_LOST, off the ring, to be sent again
	 * once programs are restored (ndp.c); counted in inflight. */
	struct rb_guest_req *retry;
	unsigned n_retry;
};

#define RB_GUEST_CHECK_MS 100

struct rb_guest_dev;

/*
 * A transport whose rings someone else drives (the guest kernel's
 * virtio_ndp driver) takes whole requests instead: the common code checks
 * the arguments, then hands the request down.  Completions come back
 * through poll/wait; `q` is kept as the caller's bookkeeping.
 */
struct rb_guest_direct {
	int (*submit)(struct rb_guest_dev *dev, unsigned q, enum rb_guest_op op, void *buf,
		      uint64_t offset, size_t len, void *user);
	int (*submit_nd)(struct rb_guest_dev *dev, unsigned q, bool write,
			 const struct rb_guest_nd *nd, struct rb_guest_nd_result *res, void *user);
	int (*poll)(struct rb_guest_dev *dev, unsigned q, struct rb_guest_cpl *cpl, unsigned max);
	int (*wait)(struct rb_guest_dev *dev, unsigned q, struct rb_guest_cpl *cpl, unsigned max,
		    int timeout_ms);
	int (*load)(struct rb_guest_dev *dev, const void *elf, size_t elf_len, const char *section,
		    uint32_t prog_type, uint32_t *handle, char *log, size_t loglen);
	int (*unload)(struct rb_guest_dev *dev, uint32_t handle);
	int (*reg_mem)(struct rb_guest_dev *dev, const void *buf, size_t len, uint32_t *key);
	int (*unreg_mem)(struct rb_guest_dev *dev, uint32_t key);
	uint64_t (*nd_requests)(const struct rb_guest_dev *dev);
};

struct rb_guest_transport {
	const char *name;
	/*
	 * Brings the device up: connect/map, negotiate features (the common
	 * code's rb_guest_wanted_features()), read the config space into
	 * dev->cfg and dev->max_queues, provide DMA memory with
	 * rb_guest_dma_init(), set up dev->nq queues with rb_guest_queues_alloc()
	 * and describe them to the device, then start it.  On error: set the
	 * message with rb_guest_seterr(), clean up, return -errno.
	 */
	int (*open)(struct rb_guest_dev *dev, const char *addr);
	void (*close)(struct rb_guest_dev *dev);
	void (*kick)(struct rb_guest_dev *dev, unsigned q);
	/* Sleeps until the device signals queue q (event mode); -ENOTSUP when
	 * the transport cannot (the caller then polls). */
	int (*wait)(struct rb_guest_dev *dev, unsigned q, int timeout_ms);
	/* Device address of [p, p+len) in DMA memory, or UINT64_MAX when the
	 * range is not DMA memory or not contiguous for the device. */
	uint64_t (*dma_addr)(struct rb_guest_dev *dev, const void *p, size_t len);
	/* NULL, or: is the device still there?  Called while waiting for
	 * completions that do not come (every RB_GUEST_CHECK_MS).  0: it is
	 * (or it went away and the transport set it up again: requests in
	 * flight complete from the new backend); -errno: gone for good (the
	 * message says why).  Safe from several queues' threads at once. */
	int (*check)(struct rb_guest_dev *dev);
	/* NULL, or the request layer of a kernel-driven device (open then
	 * only fills cfg, features, nq, ndp and the DMA memory). */
	const struct rb_guest_direct *direct;
};

struct rb_guest_dev {
	const struct rb_guest_transport *t;
	void *tp; /* the transport's private state */
	struct rb_guest_opts opts;
	uint64_t features;
	struct rb_virtio_blk_config cfg;
	unsigned max_queues;
	unsigned nq;
	uint16_t qsize;
	bool ndp;
	uint32_t ndp_caps; /* PROBE's RB_NDP_CAP_* (kernel: from the driver's INFO) */
	struct rb_guest_ndp_state *ndps; /* ndp_state.c: what to restore */
	bool closing; /* rb_guest_close(): no more reconnecting */
	/* DMA memory: [dma_base, dma_base + dma_size), 4 KiB pages. */
	uint8_t *dma_base;
	size_t dma_size;
	pthread_mutex_t dma_lock;
	uint32_t *dma_pages; /* per page: 0 free, else pages in the block at its head */
	uint8_t *dma_used;   /* per page: 1 when part of an allocated block */
	struct rb_guest_queue q[RB_GUEST_MAX_QUEUES];
};

extern const struct rb_guest_transport rb_guest_vhost_user;
extern const struct rb_guest_transport rb_guest_pci;
extern const struct rb_guest_transport rb_guest_kernel;
extern const struct rb_guest_transport rb_guest_file;

void rb_guest_seterr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Features librosen drives: from what the device offers, keep the ones we
 * implement (VERSION_1, EVENT_IDX, MQ, RO, BLK_SIZE, FLUSH, SEG_MAX, ...). */
uint64_t rb_guest_wanted_features(uint64_t offered);

/* Makes [base, base+size) the device's DMA memory (page-aligned). */
int rb_guest_dma_init(struct rb_guest_dev *dev, void *base, size_t size);
void rb_guest_dma_fini(struct rb_guest_dev *dev);

/* Allocates rings and request headers for dev->nq queues of dev->qsize in
 * DMA memory, initialises the driver rings, fills q->*_addr.  Notification
 * handles stay for the transport to fill. */
int rb_guest_queues_alloc(struct rb_guest_dev *dev);
void rb_guest_queues_free(struct rb_guest_dev *dev);

/* guest.c: asks the transport whether the device is still there (at most
 * every RB_GUEST_CHECK_MS per queue); 0, or -errno when it is gone. */
int rb_guest_check(struct rb_guest_dev *dev, unsigned q, bool now);
/* guest.c: kicks queue q if the notification mode and the device want it. */
void rb_guest_kick_if_needed(struct rb_guest_dev *dev, unsigned q);
/* ndp.c: finishes an asynchronous NDP request: copies results back to the
 * caller's buffers; returns the transport status for the completion. */
int rb_guest_nd_finish(struct rb_guest_dev *dev, struct rb_guest_req *req, uint32_t *len);

/* ndp.c: asks the device whether it speaks virtio-ndp; sets dev->ndp. */
int rb_guest_ndp_probe(struct rb_guest_dev *dev);

/*
 * After a device restart (STATE_LOST).  ndp.c: the requests as the device
 * sees them (no record kept), for restores; an asynchronous request that
 * came back STATE_LOST (rb_guest_nd_finish() returned -ESTALE) is parked
 * with rb_guest_nd_park() and sent again by rb_guest_nd_retry() once the
 * queue has nothing else on its ring.
 */
int rb_guest_ndp_send_load(struct rb_guest_dev *dev, unsigned q, const void *elf, size_t elf_len,
			   const char *section, uint32_t prog_type, uint32_t *handle, char *log,
			   size_t loglen);
int rb_guest_ndp_send_reg_mem(struct rb_guest_dev *dev, unsigned q, uint64_t gpa, const void *buf,
			      uint64_t len, uint32_t *key);
int rb_guest_ndp_send_reg_file(struct rb_guest_dev *dev, unsigned q, const struct rb_ndp_extent *ext,
			       unsigned n, uint64_t file_size, uint32_t *key);
void rb_guest_nd_park(struct rb_guest_dev *dev, unsigned q, struct rb_guest_req *req);
int rb_guest_nd_retry(struct rb_guest_dev *dev, unsigned q);

/* ndp_state.c: what was loaded and registered, by the ids the application
 * holds.  note_* records (and may change *id to one the application can
 * tell apart); dev_* translates (forget: drops the record). */
int rb_guest_ndp_note_prog(struct rb_guest_dev *dev, uint32_t *handle, uint32_t type,
			   const void *elf, size_t len, const char *section);
int rb_guest_ndp_note_mem(struct rb_guest_dev *dev, uint32_t *key, uint64_t gpa, const void *buf,
			  uint64_t len);
int rb_guest_ndp_note_file(struct rb_guest_dev *dev, uint32_t *key, const struct rb_ndp_extent *ext,
			   unsigned n, uint64_t file_size);
uint32_t rb_guest_ndp_dev_handle(struct rb_guest_dev *dev, uint32_t user, bool forget);
uint32_t rb_guest_ndp_dev_mem(struct rb_guest_dev *dev, uint32_t user, bool forget);
uint32_t rb_guest_ndp_dev_file(struct rb_guest_dev *dev, uint32_t user, bool forget);
unsigned rb_guest_ndp_generation(struct rb_guest_dev *dev);
int rb_guest_ndp_restore(struct rb_guest_dev *dev, unsigned q, unsigned gen);
/* One NDP request staged in DMA memory: a header of `type` at `sector`,
 * then `in`; the device's writable part (out_len bytes) copied to `out`.
 * 0 with *vstatus the virtio status byte, or -errno (-ENOTSUP: no NDP, or
 * a kernel-driven transport). */
int rb_guest_ndp_xfer(struct rb_guest_dev *dev, unsigned q, uint32_t type, uint64_t sector,
		      const void *in, size_t in_len, void *out, size_t out_len, uint8_t *vstatus);
void rb_guest_ndp_state_free(struct rb_guest_dev *dev);

#endif
