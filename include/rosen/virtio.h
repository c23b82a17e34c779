/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueues, device side, and virtio-blk request parsing.
 * Everything the guest wrote is copied once into local memory, then
 * validated, then used: no field of a descriptor or request header is ever
 * read twice from guest memory.  Nothing here knows about vhost-user, io or
 * NDP; memory translation comes in through a callback.
 */
#ifndef ROSEN_VIRTIO_H
#define ROSEN_VIRTIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Split ring layout (virtio 1.x, little-endian host) ----------------- */

#define RB_VRING_DESC_F_NEXT 1
#define RB_VRING_DESC_F_WRITE 2
#define RB_VRING_DESC_F_INDIRECT 4
#define RB_VRING_USED_F_NO_NOTIFY 1
#define RB_VRING_AVAIL_F_NO_INTERRUPT 1
#define RB_VIRTQ_MAX_SIZE 32768u

struct rb_vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct rb_vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* [size], then uint16_t used_event */
};

struct rb_vring_used_elem {
	uint32_t id;
	uint32_t len;
};

struct rb_vring_used {
	uint16_t flags;
	uint16_t idx;
	struct rb_vring_used_elem ring[]; /* [size], then uint16_t avail_event */
};

/* Bytes each ring part occupies for a queue of `size` entries. */
static inline size_t rb_vring_desc_bytes(unsigned size) { return 16u * size; }
static inline size_t rb_vring_avail_bytes(unsigned size) { return 6u + 2u * size; }
static inline size_t rb_vring_used_bytes(unsigned size) { return 6u + 8u * size; }

/*
 * Inflight tracking of a split ring: a log of the heads the device popped
 * and has not given back, in memory that outlives the device process (the
 * vhost-user frontend's INFLIGHT_SHMFD region, one of these per queue; the
 * layout is QEMU docs/interop/vhost-user.rst, "Inflight I/O tracking").  A
 * device restarted after a crash resubmits the heads the log marks, in the
 * order they were first popped, and nothing else.  The frontend hands the
 * region in: every field is hostile, read once and checked.
 */
struct rb_vring_inflight_desc {
	uint8_t inflight;    /* 1: popped, not given back (head entries only) */
	uint8_t padding[5];
	uint16_t next;       /* links the last batch of used heads */
	uint64_t counter;    /* pop order */
};

struct rb_vring_inflight {
	uint64_t features;   /* 0 */
	uint16_t version;    /* RB_VRING_INFLIGHT_VERSION; 0: never used */
	uint16_t desc_num;   /* entries in desc[]: the region's queue size */
	uint16_t last_batch_head;
	uint16_t used_idx;   /* used->idx once the last batch is recorded */
	struct rb_vring_inflight_desc desc[];
};

#define RB_VRING_INFLIGHT_VERSION 1u
#define RB_VRING_INFLIGHT_ALIGN 64u

/* Bytes of one queue's region (what GET_INFLIGHT_FD lays out per queue:
 * the header and desc_num entries, rounded up to 64 bytes). */
static inline size_t rb_vring_inflight_bytes(unsigned desc_num)
{
	return (16u + 16u * (size_t)desc_num + RB_VRING_INFLIGHT_ALIGN - 1) &
	       ~(size_t)(RB_VRING_INFLIGHT_ALIGN - 1);
}

/* Virtio feature bits shared by every device type we serve. */
#define RB_VIRTIO_F_INDIRECT_DESC 28
#define RB_VIRTIO_F_EVENT_IDX 29
#define RB_VIRTIO_F_VERSION_1 32

/*
 * Guest-physical to host translation: returns a host pointer for
 * [gpa, gpa+len) when the whole range lies in one memory region, else NULL.
 * len 0 still needs a valid gpa.
 */
typedef void *(*rb_virtio_translate_fn)(void *ctx, uint64_t gpa, uint64_t len);

/* ---- Device-side virtqueue ---------------------------------------------- */

struct rb_virtq {
	/* Set up by the transport (already translated to host pointers). */
	struct rb_vring_desc *desc;
	struct rb_vring_avail *avail;
	struct rb_vring_used *used;
	uint16_t size;         /* power of two, 1..32768 */
	bool event_idx;        /* VIRTIO_F_EVENT_IDX negotiated */
	bool indirect;         /* VIRTIO_F_INDIRECT_DESC negotiated */
	rb_virtio_translate_fn translate;
	void *translate_ctx;

	/* Device state. */
	uint16_t last_avail;   /* next avail entry to consume */
	uint16_t used_idx;     /* shadow of used->idx */
	uint16_t signalled_used;
	bool signalled_used_valid;
	bool broken;           /* the driver violated the ring protocol */

	/* Inflight tracking (rb_virtq_inflight_start); NULL: none. */
	struct rb_vring_inflight *inflight;
	uint64_t inflight_counter;  /* the next pop's counter */
	const uint16_t *resubmit;   /* heads to pop before the avail ring */
	uint16_t n_resubmit;
	uint16_t resubmit_at;
};

/*
 * Maximum segments in one request chain (descriptors after indirection).
 * virtio-blk advertises seg_max = RB_VIRTQ_MAX_SEGS - 2 (header + status).
 */
#define RB_VIRTQ_MAX_SEGS 256u

/*
 * A popped chain: every descriptor copied, checked and translated.  The
 * device-readable segments come first (iov[0 .. n_read)), the writable ones
 * after (iov[n_read .. n_segs)): a chain in any other order is rejected.
 */
struct rb_virtq_chain {
	uint16_t head;      /* id to give back in rb_virtq_push() */
	unsigned n_segs;
	unsigned n_read;
	uint64_t read_bytes;
	uint64_t write_bytes;
	struct iovec iov[RB_VIRTQ_MAX_SEGS];
};

/*
 * Sets up a queue over rings the transport already translated.  Validates
 * size (power of two, <= 32768) and ring alignment; returns 0 or -EINVAL.
 */
int rb_virtq_init(struct rb_virtq *vq, uint16_t size, void *desc, void *avail,
		  void *used, uint16_t last_avail, bool event_idx, bool indirect,
		  rb_virtio_translate_fn translate, void *ctx);

/*
 * Attaches an inflight log to a queue rb_virtq_init() just set up (nothing
 * popped yet) and recovers from what it says.  A region never used
 * (version 0) is initialised and the queue starts at last_avail as usual.
 * Otherwise the log was written by an earlier device: the last batch of
 * used heads whose logging a crash cut short is completed, the heads still
 * marked are queued for resubmission in counter order (into `resubmit`,
 * which holds `size` entries, is owned by the caller and must stay valid
 * while the queue runs), and the queue resumes from used->idx: used_idx is
 * used->idx and last_avail is used->idx plus the heads in flight, so the
 * avail entries whose heads were popped (given back or resubmitted) are
 * skipped; the `last_avail` given to rb_virtq_init() is ignored.  Pops
 * return the resubmitted heads first.  The log is read once; a log that
 * cannot be trusted (unknown version, desc_num other than region_desc_num
 * or below size, a marked head >= size, an inflight byte other than 0/1, a
 * last batch longer than the queue or naming a head >= size) is refused
 * with -EINVAL and a message, and nothing is changed.  -ENOMEM too.
 */
int rb_virtq_inflight_start(struct rb_virtq *vq, struct rb_vring_inflight *region,
			    uint16_t region_desc_num, uint16_t *resubmit, char *err,
			    size_t errlen);

/* Number of chains the driver made available and we have not popped (and of
 * heads left to resubmit); 0 on a broken queue.  More than `size` means a
 * corrupt index: the next pop says so. */
uint16_t rb_virtq_pending(const struct rb_virtq *vq);

/*
 * Pops the next available chain into *chain (descriptors copied, checked and
 * translated).  Returns 1 when a chain was popped, 0 when the ring is empty,
 * or -EINVAL when the chain is malformed: then the avail entry is consumed,
 * chain->head is valid and chain->n_segs is 0; the caller gives the head
 * back with rb_virtq_push(vq, head, 0) and reports `err`.  A ring whose
 * avail index is itself corrupt (more than `size` ahead) or whose avail
 * entry names a head >= size marks the queue broken and returns -EIO; every
 * later pop returns -EIO too (the transport must reset the queue).
 * Zero-length descriptors are checked (address must translate) but not
 * stored, so every iovec of a popped chain has iov_len >= 1; they count
 * against RB_VIRTQ_MAX_SEGS like any other descriptor.  With an inflight
 * log, heads queued for resubmission come first, and every head taken
 * from the avail ring is marked in the log before it is returned.
 */
int rb_virtq_pop(struct rb_virtq *vq, struct rb_virtq_chain *chain,
		 char *err, size_t errlen);

/* Gives a chain back: used element {head, len}; publishes used->idx.
 * `head` must be one rb_virtq_pop() returned.  With an inflight log, the
 * log is updated around the publication so that a crash at any point
 * leaves it saying exactly which heads are still in flight. */
void rb_virtq_push(struct rb_virtq *vq, uint16_t head, uint32_t len);

/* After pushes: must the driver be interrupted (EVENT_IDX or NO_INTERRUPT)? */
bool rb_virtq_should_notify(struct rb_virtq *vq);

/*
 * Asks the driver to kick (enable) or not to kick (disable, while polling).
 * With EVENT_IDX, enabling writes avail_event = last_avail and disabling
 * writes nothing (the driver then kicks at most once more); without it, it
 * sets/clears NO_NOTIFY.  After enabling, callers must re-check
 * rb_virtq_pending() to close the race: chains already pending bring no kick.
 */
void rb_virtq_set_kicks(struct rb_virtq *vq, bool enable);

/* ---- Driver-side virtqueue (librosen) ------------------------------------ */

/*
 * The driver's view of a split ring it owns: it fills descriptors and the
 * avail ring and validates everything the device writes into the used
 * ring (ids in range and outstanding, lengths within the buffers).
 */
struct rb_virtq_drv {
	struct rb_vring_desc *desc;
	struct rb_vring_avail *avail;
	struct rb_vring_used *used;
	uint16_t size;
	bool event_idx;
	uint16_t free_head;
	uint16_t num_free;
	uint16_t avail_idx;    /* shadow of avail->idx */
	uint16_t kicked_idx;   /* avail_idx at the last kick decision */
	uint16_t last_used;
	bool broken;           /* the device returned garbage */
	uint16_t *next;        /* free list links */
	uint16_t *chain_len;   /* descriptors per outstanding head, 0 = free */
	uint32_t *writable;    /* device-writable bytes per outstanding head */
	void **cookie;
};

struct rb_virtq_buf {
	uint64_t addr; /* device address (guest-physical) */
	uint32_t len;
	bool write;    /* device-writable */
};

/* Lays out and zeroes a ring in memory the caller provides (desc 16-byte,
 * avail 2-byte, used 4-byte aligned).  0, -EINVAL or -ENOMEM. */
int rb_virtq_drv_init(struct rb_virtq_drv *q, uint16_t size, void *desc, void *avail,
		      void *used, bool event_idx);
void rb_virtq_drv_fini(struct rb_virtq_drv *q);

/* Adds one chain (readable buffers first) and publishes it.  -ENOSPC when
 * there are not enough free descriptors, -EINVAL for a bad chain. */
int rb_virtq_drv_add(struct rb_virtq_drv *q, const struct rb_virtq_buf *bufs, unsigned n,
		     void *cookie);

/* Must the device be kicked for what was added since the last call?
 * (EVENT_IDX's avail_event, or the device's NO_NOTIFY flag.) */
bool rb_virtq_drv_need_kick(struct rb_virtq_drv *q);

/* Takes one used element: 1 with *cookie and *len set, 0 when none, -EIO
 * when the device wrote an invalid element (the queue is then broken). */
int rb_virtq_drv_get(struct rb_virtq_drv *q, void **cookie, uint32_t *len, char *err,
		     size_t errlen);

/* Ask the device to interrupt (call) on completions, or not. */
void rb_virtq_drv_set_interrupts(struct rb_virtq_drv *q, bool enable);

/* ---- virtio-blk ----------------------------------------------------------- */

#define RB_VIRTIO_BLK_F_SIZE_MAX 1
#define RB_VIRTIO_BLK_F_SEG_MAX 2
#define RB_VIRTIO_BLK_F_RO 5
#define RB_VIRTIO_BLK_F_BLK_SIZE 6
#define RB_VIRTIO_BLK_F_FLUSH 9
#define RB_VIRTIO_BLK_F_TOPOLOGY 10
#define RB_VIRTIO_BLK_F_MQ 12
#define RB_VIRTIO_BLK_F_DISCARD 13
#define RB_VIRTIO_BLK_F_WRITE_ZEROES 14

enum {
	RB_VIRTIO_BLK_T_IN = 0,
	RB_VIRTIO_BLK_T_OUT = 1,
	RB_VIRTIO_BLK_T_FLUSH = 4,
	RB_VIRTIO_BLK_T_GET_ID = 8,
	RB_VIRTIO_BLK_T_DISCARD = 11,
	RB_VIRTIO_BLK_T_WRITE_ZEROES = 13,
};

enum {
	RB_VIRTIO_BLK_S_OK = 0,
	RB_VIRTIO_BLK_S_IOERR = 1,
	RB_VIRTIO_BLK_S_UNSUPP = 2,
};

#define RB_VIRTIO_BLK_SECTOR 512u
#define RB_VIRTIO_BLK_ID_BYTES 20u

struct rb_virtio_blk_outhdr {
	uint32_t type;
	uint32_t ioprio;
	uint64_t sector;
};

struct rb_virtio_blk_discard_wz {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags; /* bit 0: unmap (WRITE_ZEROES); others reserved */
};

/* virtio-blk config space (the fields up to write_zeroes_may_unmap). */
struct rb_virtio_blk_config {
	uint64_t capacity; /* in 512-byte sectors */
	uint32_t size_max;
	uint32_t seg_max;
	struct {
		uint16_t cylinders;
		uint8_t heads;
		uint8_t sectors;
	} geometry;
	uint32_t blk_size;
	uint8_t physical_block_exp;
	uint8_t alignment_offset;
	uint16_t min_io_size;
	uint32_t opt_io_size;
	uint8_t writeback;
	uint8_t unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
} __attribute__((packed));

/* A parsed, validated virtio-blk request.  The header and discard range
 * are local copies; data iovecs point into guest memory (translated). */
struct rb_blk_req {
	struct rb_virtio_blk_outhdr hdr;        /* local copy */
	uint8_t *status;                         /* last writable byte */
	struct iovec *iov;                       /* data: into the chain */
	unsigned iovcnt;
	uint64_t data_bytes;
	struct rb_virtio_blk_discard_wz range;   /* DISCARD / WRITE_ZEROES */
};

/*
 * Parses a chain as a virtio-blk request: gathers the 16-byte header (it may
 * span several readable segments, or share one with data), takes the status
 * byte (last byte of the last writable segment), and trims both off the
 * chain's iovecs in place so req->iov is exactly the data (the chain's own
 * counters are stale afterwards: use req).  Checks the data direction
 * against the type (IN and GET_ID: all writable; OUT, DISCARD,
 * WRITE_ZEROES: all readable), whole 512-byte sectors for IN/OUT, GET_ID's
 * 20-byte buffer, and for DISCARD/WRITE_ZEROES exactly one 16-byte range,
 * gathered into req->range (req->iov is then empty).  FLUSH ignores any
 * data buffers (req->iov empty).  Returns RB_VIRTIO_BLK_S_OK, or the status
 * to complete the request with (IOERR for a malformed request; UNSUPP for an
 * unknown type, an unknown range flag, or unmap on a DISCARD, as virtio 1.2
 * 5.2.6.2 requires) and a message in err; req->status is set whenever the
 * return is not -EINVAL.  Returns -EINVAL when there is no status byte to
 * write (the request can then only be given back with length 0).
 */
int rb_blk_req_parse(struct rb_virtq_chain *chain, struct rb_blk_req *req,
		     char *err, size_t errlen);

/*
 * Range check of a read/write/discard/write-zeroes against a disk of
 * `capacity_sectors`: no overflow of sector*512, sector*512 + bytes or
 * sector+count.  Returns true when [sector, sector + ceil(bytes/512)) is
 * inside the disk (a partial sector counts as touched).
 */
bool rb_blk_range_ok(uint64_t sector, uint64_t bytes, uint64_t capacity_sectors);

#ifdef __cplusplus
}
#endif
#endif /* ROSEN_VIRTIO_H */
