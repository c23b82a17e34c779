/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/*
 * virtio_ndp internals shared by its files: the per-disk state (block side,
 * NDP capability, char device) and the per-open-file state.  Nothing here
 * is user-visible; the user interface is uapi/virtio_ndp_dev.h.
 */
#ifndef VNDP_H
#define VNDP_H

#include <linux/blk-mq.h>
#include <linux/atomic.h>
#include <linux/blkdev.h>
#include <linux/cdev.h>
#include <linux/device.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/kref.h>
#include <linux/scatterlist.h>
#include <linux/spinlock.h>
#include <linux/version.h>
#include <linux/virtio.h>
#include <linux/virtio_blk.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include <rosen/virtio_ndp.h>
#include "uapi/virtio_ndp_dev.h"

#define VNDP_NAME "virtio_ndp"
#define VNDP_DISK_PREFIX "vndp"
#define VNDP_PART_SHIFT 4
#define VNDP_MAX_DISKS 256
#define VNDP_LOG_MAX 65536u     /* LOAD: largest log buffer we pass on */
#define VNDP_MAX_OWNED 64u      /* programs / keys a file may own */

/* One virtqueue and the lock that serialises adding to it. */
struct vndp_vq {
	struct virtqueue *vq;
	spinlock_t lock;        /* adding to vq, kick_prepare, get_buf */
	char name[16];
} ____cacheline_aligned_in_smp;

struct vndp_disk {
	struct virtio_device *vdev;
	struct gendisk *disk;
	struct blk_mq_tag_set tag_set;
	struct vndp_vq *vqs;
	unsigned int num_vqs;
	unsigned int sg_elems;  /* data segments per request */
	unsigned int seg_bytes; /* largest segment (VIRTIO_BLK_F_SIZE_MAX) */
	unsigned int io_max;    /* largest plain char-device I/O, bytes */
	unsigned int ring;      /* descriptors per chain: the smallest ring */
	int index;
	char name[DISK_NAME_LEN];
	struct work_struct config_work;

	/* The NDP capability, read once at probe. */
	bool ndp;
	struct rb_ndp_probe probe;
	atomic64_t nd_requests; /* READ_ND/WRITE_ND sent (INFO) */

	/*
	 * The char device.  cdev_dev's refcount keeps this struct alive for
	 * open files after remove; its release frees it.
	 */
	struct device cdev_dev;
	struct cdev cdev;
	/* Held for read while a char-device call uses the queue; remove
	 * takes it for write to set dead, so no new request starts after.
	 */
	struct rw_semaphore gate;
	bool dead;
	/*
	 * Open files (struct vndp_file.node): added and removed under gate
	 * for read plus files_lock, walked by remove under gate for write.
	 * The device keeps programs and registered memory across a reset,
	 * so remove gives back what open files own while it still can.
	 */
	struct list_head files;
	spinlock_t files_lock;  /* files, between concurrent open/release */
};

/* Per-request driver data (blk-mq pdu). */
struct vndp_cmd {
	struct virtio_blk_outhdr hdr;
	struct virtio_blk_discard_write_zeroes range;
	u8 status;
	/* Passthrough (REQ_OP_DRV_*): the caller's device-readable and
	 * device-writable lists (header included, status excluded).
	 */
	struct scatterlist *pt_out;
	struct scatterlist *pt_in;
	struct scatterlist sg[];
};

/* A file's DMA area: chunks of physically contiguous zeroed pages. */
struct vndp_dma {
	u64 size;
	unsigned int nchunks;
	unsigned int chunk_shift;       /* all chunks but the last are this big */
	struct {
		struct page *page;
		unsigned int order;
	} chunk[];
};

struct vndp_owned {
	struct list_head node;
	u32 id;                 /* program handle or memory key */
};

struct vndp_file {
	struct vndp_disk *vd;
	struct list_head node;  /* in vd->files */
	fmode_t mode;
	struct mutex lock;      /* ioctls that change the lists or the area */
	struct vndp_dma *dma;   /* set once by DMA_ALLOC, freed at release */
	struct list_head progs; /* struct vndp_owned, under lock */
	struct list_head keys;
	struct list_head files; /* struct vndp_regfile, under lock */
	unsigned int nprogs, nkeys, nfiles;
	bool dma_pinned;        /* an UNREG failed: never free the area */

	spinlock_t cpl_lock;    /* done, active, outstanding */
	struct list_head done;  /* struct vndp_kreq, completed, not reaped */
	unsigned int active;    /* queued to the device, not completed */
	unsigned int outstanding; /* submitted, not reaped */
	wait_queue_head_t wq;
};

/* What says a file's layout may have changed (vndp_file.c). */
struct vndp_fsnap {
	loff_t size;
	blkcnt_t blocks;
	struct timespec64 ctime, mtime;
	u64 iversion;
};

/*
 * A file registered by an open char-device file (REG_FILE).  key is the
 * user's name for it (the device's first key); dev_key is the device's
 * current one, which changes when the map is refreshed.
 */
struct vndp_regfile {
	struct list_head node;  /* in vndp_file.files, under its lock */
	struct kref ref;        /* the list's, and each SUBMIT using it */
	struct file *filp;      /* held: the inode and its mount stay */
	u32 key;
	/* Serialises map refreshes; never taken under the inode's locks
	 * (a refresh calls bmap(), which takes i_rwsem itself).
	 */
	struct mutex lock;
	/* dev_key, snap, size, dead: read under the inode's locks. */
	spinlock_t slock;
	u32 dev_key;            /* 0: no block registered (all holes) */
	bool dead;              /* unregistered: no refresh may register */
	struct vndp_fsnap snap; /* the inode when the map was built */
	u64 size;               /* the registered size */
	u32 n;                  /* extents, little-endian, kvmalloc'd */
	struct rb_ndp_extent *ext;
};

/* One SUBMIT'ed request, from validation until REAP. */
struct vndp_kreq {
	struct list_head node;
	struct vndp_file *f;
	struct work_struct work;
	struct vndp_req req;            /* the validated copy */
	struct vndp_cpl cpl;
	struct block_device *claim;     /* raw write: exclusive claim */
	struct file *file;      /* file request: holds its inode's locks */
	int blk_err;
	unsigned int lost_retries; /* STATE_LOST answers re-registered for */
	/* Wire structures the device reads or writes (kmalloc'd with us). */
	struct virtio_blk_outhdr hdr;
	struct rb_ndp_io io;
	struct rb_ndp_result res;
	unsigned int nout, nin;
	struct scatterlist *out, *in;
	struct scatterlist sg[];
};

extern struct workqueue_struct *vndp_wq;

/* vndp_blk.c */
extern struct virtio_driver vndp_virtio_driver;
int vndp_blk_init(void);
void vndp_blk_exit(void);
int vndp_exec_sync(struct vndp_disk *vd, struct scatterlist *out,
		   struct scatterlist *in, bool write);
int vndp_exec_async(struct vndp_disk *vd, struct scatterlist *out,
		    struct scatterlist *in, bool write, rq_end_io_fn *end_io,
		    void *data);
struct address_space *vndp_mapping(struct vndp_disk *vd);

/* vndp_cdev.c */
int vndp_cdev_init(void);
void vndp_cdev_exit(void);
int vndp_cdev_add(struct vndp_disk *vd);
void vndp_cdev_del(struct vndp_disk *vd);
void vndp_disk_put(struct vndp_disk *vd);
int vndp_dma_sg(struct vndp_dma *dma, u64 off, u64 len, unsigned int seg_bytes,
		struct scatterlist *sg, unsigned int max);
bool vndp_dma_range_ok(const struct vndp_dma *dma, u64 off, u64 len);

/* vndp_ndp.c: NDP control requests */
int vndp_ndp_probe(struct vndp_disk *vd);
long vndp_ioc_load(struct vndp_file *f, void __user *arg);
long vndp_ioc_unload(struct vndp_file *f, void __user *arg);
long vndp_ioc_reg_mem(struct vndp_file *f, void __user *arg);
long vndp_ioc_unreg_mem(struct vndp_file *f, void __user *arg);
bool vndp_ndp_release(struct vndp_file *f);
void vndp_ndp_remove(struct vndp_disk *vd);
int vndp_send_reg_file(struct vndp_disk *vd, u64 size,
		       struct rb_ndp_extent *ext, u32 n, u32 *status, u32 *key);
int vndp_send_unreg_file(struct vndp_disk *vd, u32 key, u32 *status);

/* vndp_file.c: registered files, file requests' locks and maps */
long vndp_ioc_reg_file(struct vndp_file *f, void __user *arg);
long vndp_ioc_unreg_file(struct vndp_file *f, void __user *arg);
int vndp_file_req_check(struct vndp_file *f, const struct vndp_req *r);
bool vndp_file_start(struct vndp_kreq *k);
void vndp_file_done(struct vndp_kreq *k);
void vndp_file_lost(struct vndp_kreq *k);
void vndp_files_drop(struct vndp_file *f, bool live);

/* vndp_submit.c: SUBMIT / REAP */
long vndp_ioc_submit(struct vndp_file *f, void __user *arg);
long vndp_ioc_reap(struct vndp_file *f, void __user *arg);
void vndp_submit_release(struct vndp_file *f);

static inline u32 vndp_le32(u32 v)
{
	/* The NDP wire format is little-endian; this is its own inverse. */
	return (__force u32)cpu_to_le32(v);
}

static inline u64 vndp_le64(u64 v)
{
	return (__force u64)cpu_to_le64(v);
}

static inline int vndp_blk_errno(u8 status)
{
	switch (status) {
	case VIRTIO_BLK_S_OK:
		return 0;
	case VIRTIO_BLK_S_UNSUPP:
		return -EOPNOTSUPP;
	default:
		return -EIO;
	}
}

#endif /* VNDP_H */
