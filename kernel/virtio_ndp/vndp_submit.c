// SPDX-License-Identifier: (GPL-2.0 OR MIT)
/*
 * virtio_ndp's data path for the char device: SUBMIT copies a batch of
 * requests once, validates all of them, then queues them as passthrough
 * requests whose buffers are the file's DMA area; completions wait on the
 * file's list for REAP (or poll).  Raw writes are claimed exclusively for
 * their lifetime and refused while anything else holds the disk; file
 * requests hold their inode's locks instead (vndp_file.c).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blkdev.h>
#include <linux/pagemap.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/virtio_config.h>
#include <linux/xarray.h>

#include "vndp.h"

static bool vndp_op_is_write(u32 op)
{
	return op == VNDP_OP_WRITE || op == VNDP_OP_WRITE_ND;
}

static bool vndp_op_is_nd(u32 op)
{
	return op == VNDP_OP_READ_ND || op == VNDP_OP_WRITE_ND;
}

/* ---- validation: pure checks of one request ----------------------------- */

static bool vndp_buf_ok(const struct vndp_dma *dma, u64 off, u32 len)
{
	return !len || vndp_dma_range_ok(dma, off, len);
}

static bool vndp_owns_prog(struct vndp_file *f, u32 handle)
{
	struct vndp_owned *o;

	list_for_each_entry(o, &f->progs, node)
		if (o->id == handle)
			return true;
	return false;
}

/* f->lock held (the program list). */
static int vndp_req_check(struct vndp_file *f, const struct vndp_dma *dma,
			  const struct vndp_req *r)
{
	struct vndp_disk *vd = f->vd;
	u64 cap = (u64)get_capacity(vd->disk) << SECTOR_SHIFT;
	u32 align = max_t(u32, SECTOR_SIZE,
			  queue_logical_block_size(vd->disk->queue));
	unsigned int i;
	int err;

	for (i = 0; i < ARRAY_SIZE(r->reserved); i++)
		if (r->reserved[i])
			return -EINVAL;
	if (r->flags & ~VNDP_REQ_F_KNOWN)
		return -EINVAL;
	if (!(r->flags & VNDP_REQ_F_FILE) && r->file_key)
		return -EINVAL;
	if (r->op < VNDP_OP_READ || r->op > VNDP_OP_WRITE_ND)
		return -EINVAL;
	if ((r->flags & VNDP_REQ_F_FILE) && !vndp_op_is_nd(r->op))
		return -EINVAL;
	if (vndp_op_is_write(r->op) && !(f->mode & FMODE_WRITE))
		return -EBADF;
	if (r->op == VNDP_OP_FLUSH)
		return 0;
	/* Everything else reads the disk (a program's results included). */
	if (!(f->mode & FMODE_READ))
		return -EBADF;
	if (r->op == VNDP_OP_WRITE && get_disk_ro(vd->disk))
		return -EROFS;
	if (vndp_op_is_nd(r->op) && !vd->ndp)
		return -EOPNOTSUPP;
	if ((r->flags & VNDP_REQ_F_FILE) &&
	    !(vd->probe.caps & RB_NDP_CAP_FILES))
		return -EOPNOTSUPP;
	if (!r->len || r->len % align || r->offset % align)
		return -EINVAL;
	if (r->flags & VNDP_REQ_F_FILE) {
		/* Offsets are the file's, inside its registered size. */
		err = vndp_file_req_check(f, r);
		if (err)
			return err;
	} else if (r->offset > cap || r->len > cap - r->offset) {
		return -EINVAL;
	}
	if (!vndp_op_is_nd(r->op)) {
		if (r->len > vd->io_max)
			return -E2BIG;
		return vndp_buf_ok(dma, r->data_off, r->len) ? 0 : -EINVAL;
	}
	if (r->len > vd->probe.max_data || r->data_len > vd->probe.max_data ||
	    r->meta_len > vd->probe.max_meta ||
	    r->scratch_len > vd->probe.max_scratch)
		return -E2BIG;
	if (r->max_hops > vd->probe.max_hops)
		return -EINVAL;
	if (!vndp_buf_ok(dma, r->data_off, r->data_len) ||
	    !vndp_buf_ok(dma, r->meta_off, r->meta_len) ||
	    !vndp_buf_ok(dma, r->scratch_off, r->scratch_len))
		return -EINVAL;
	if (!vndp_owns_prog(f, r->handle))
		return -ENOENT;
	return 0;
}

/* ---- building a request ------------------------------------------------- */

/* Scatterlist entries [off, off + len) of the area may need at most. */
static unsigned int vndp_segs_max(struct vndp_disk *vd, u64 len,
				  unsigned int chunk_shift)
{
	if (!len)
		return 0;
	return div_u64(len, min_t(u64, vd->seg_bytes, 1ull << chunk_shift)) +
	       (len >> chunk_shift) + 3;
}

static int vndp_add_dma(struct vndp_kreq *k, struct vndp_dma *dma, u64 off,
			u32 len, unsigned int *n, unsigned int max)
{
	int used;

	if (!len)
		return 0;
	used = vndp_dma_sg(dma, off, len, k->f->vd->seg_bytes, k->sg + *n,
			   max - *n);
	if (used < 0)
		return used;
	*n += used;
	return 0;
}

static struct vndp_kreq *vndp_kreq_build(struct vndp_file *f,
					 struct vndp_dma *dma,
					 const struct vndp_req *r)
{
	struct vndp_disk *vd = f->vd;
	unsigned int shift = dma ? dma->chunk_shift : PAGE_SHIFT;
	unsigned int max, n = 0, nout;
	bool nd = vndp_op_is_nd(r->op), wr = r->op == VNDP_OP_WRITE_ND;
	struct vndp_kreq *k;
	u32 type;
	int err = 0;

	max = 4 + vndp_segs_max(vd, nd ? r->data_len : r->len, shift) +
	      vndp_segs_max(vd, r->meta_len, shift) +
	      2 * vndp_segs_max(vd, r->scratch_len, shift);
	k = kzalloc(struct_size(k, sg, max), GFP_KERNEL_ACCOUNT);
	if (!k)
		return ERR_PTR(-ENOMEM);
	k->f = f;
	k->req = *r;
	sg_init_table(k->sg, max);

	switch (r->op) {
	case VNDP_OP_READ:
		type = VIRTIO_BLK_T_IN;
		break;
	case VNDP_OP_WRITE:
		type = VIRTIO_BLK_T_OUT;
		break;
	case VNDP_OP_FLUSH:
		type = VIRTIO_BLK_T_FLUSH;
		break;
	case VNDP_OP_READ_ND:
		type = RB_NDP_T_READ_ND;
		break;
	default:
		type = RB_NDP_T_WRITE_ND;
		break;
	}
	k->hdr.type = cpu_to_virtio32(vd->vdev, type);
	k->hdr.sector = cpu_to_virtio64(vd->vdev, r->op == VNDP_OP_FLUSH ?
					0 : r->offset >> SECTOR_SHIFT);

	/* Device-readable part. */
	sg_set_buf(&k->sg[n++], &k->hdr, sizeof(k->hdr));
	if (nd) {
		k->io.handle = vndp_le32(r->handle);
		k->io.io_len = vndp_le32(r->len);
		k->io.meta_len = vndp_le32(r->meta_len);
		k->io.scratch_len = vndp_le32(r->scratch_len);
		k->io.data_len = vndp_le32(r->data_len);
		k->io.max_hops = vndp_le32(r->max_hops);
		sg_set_buf(&k->sg[n++], &k->io, sizeof(k->io));
		err = vndp_add_dma(k, dma, r->meta_off, r->meta_len, &n, max);
		if (!err)
			err = vndp_add_dma(k, dma, r->scratch_off, r->scratch_len,
					   &n, max);
		if (!err && wr)
			err = vndp_add_dma(k, dma, r->data_off, r->data_len,
					   &n, max);
	} else if (r->op == VNDP_OP_WRITE) {
		err = vndp_add_dma(k, dma, r->data_off, r->len, &n, max);
	}
	if (err)
		goto fail;
	nout = n;
	sg_mark_end(&k->sg[nout - 1]);

	/* Device-writable part (the status byte is the queue's). */
	if (nd) {
		if (!wr)
			err = vndp_add_dma(k, dma, r->data_off, r->data_len,
					   &n, max);
		if (!err)
			err = vndp_add_dma(k, dma, r->scratch_off, r->scratch_len,
					   &n, max);
		if (!err && n < max)
			sg_set_buf(&k->sg[n++], &k->res, sizeof(k->res));
		else if (!err)
			err = -E2BIG;
	} else if (r->op == VNDP_OP_READ) {
		err = vndp_add_dma(k, dma, r->data_off, r->len, &n, max);
	}
	if (err)
		goto fail;
	/*
	 * Data segments beyond what the device takes in one request, or a
	 * chain (with the status byte) longer than the ring.
	 */
	if (n - 1 > vd->sg_elems + 2 || n + 1 > vd->ring) {
		err = -E2BIG;
		goto fail;
	}
	k->out = k->sg;
	k->in = n > nout ? k->sg + nout : NULL;
	if (k->in)
		sg_mark_end(&k->sg[n - 1]);
	return k;
fail:
	kfree(k);
	return ERR_PTR(err);
}

/* ---- completion --------------------------------------------------------- */

static void vndp_kreq_complete(struct vndp_kreq *k)
{
	struct vndp_file *f = k->f;
	struct vndp_cpl *c = &k->cpl;
	unsigned long flags;

	c->user_data = k->req.user_data;
	c->error = k->blk_err;
	if (!c->error && vndp_op_is_nd(k->req.op)) {
		c->status = vndp_le32(k->res.status);
		c->hops = vndp_le32(k->res.hops);
		c->retval = vndp_le64(k->res.retval);
		c->bytes = vndp_le64(k->res.bytes);
	} else if (!c->error && k->req.op != VNDP_OP_FLUSH) {
		c->bytes = k->req.len;
	}
	/* Release waits for active == 0 and then takes this lock once, so
	 * nothing here touches f after the unlock.
	 */
	spin_lock_irqsave(&f->cpl_lock, flags);
	list_add_tail(&k->node, &f->done);
	f->active--;
	wake_up(&f->wq);
	spin_unlock_irqrestore(&f->cpl_lock, flags);
}

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 10, 0)
#define vndp_bdev_mapping(bdev) ((bdev)->bd_mapping)
#else
#define vndp_bdev_mapping(bdev) ((bdev)->bd_inode->i_mapping)
#endif

static void vndp_unclaim(struct block_device *bdev, struct vndp_disk *vd)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
	blkdev_put(bdev, vd);
#else
	blkdev_put(bdev, FMODE_READ | FMODE_EXCL);
#endif
}

/* Process context after a raw write: direct-I/O order, then unclaim. */
static void vndp_write_done_work(struct work_struct *work)
{
	struct vndp_kreq *k = container_of(work, struct vndp_kreq, work);
	struct address_space *mapping = vndp_bdev_mapping(k->claim);

	if (k->req.op == VNDP_OP_WRITE)
		invalidate_inode_pages2_range(mapping,
					      k->req.offset >> PAGE_SHIFT,
					      (k->req.offset + k->req.len - 1) >>
					      PAGE_SHIFT);
	else /* the program may have written anywhere */
		invalidate_inode_pages2(mapping);
	vndp_unclaim(k->claim, k->f->vd);
	k->claim = NULL;
	vndp_kreq_complete(k);
}

/* Times a file request answered STATE_LOST is sent again after its map
 * was registered anew (a restart of the device in between: again).
 */
#define VNDP_LOST_RETRIES 2

static void vndp_kreq_finish(struct vndp_kreq *k);
static enum rq_end_io_ret vndp_kreq_end_io(struct request *rq,
					   blk_status_t err);

/*
 * The device restarted (STATE_LOST) under a file request: its map is
 * registered again and the request sent again, from its start.  The
 * program handle may be lost too: the retry then answers STATE_LOST again
 * and the caller (librosen) loads the program again.  Process context,
 * the inode's locks released.  True when the request is on its way again
 * (it completes later); false: complete it now, as it stands.
 */
static bool vndp_file_retry(struct vndp_kreq *k)
{
	struct vndp_disk *vd = k->f->vd;
	int err;

	if (k->blk_err || vndp_le32(k->res.status) != RB_NDP_S_STATE_LOST ||
	    k->lost_retries >= VNDP_LOST_RETRIES)
		return false;
	k->lost_retries++;
	vndp_file_lost(k);
	down_read(&vd->gate);
	if (vd->dead) {
		up_read(&vd->gate);
		return false;
	}
	memset(&k->res, 0, sizeof(k->res));
	if (!vndp_file_start(k)) {
		/* Completed here (STALE_LAYOUT, OUT_OF_RANGE, an error). */
		up_read(&vd->gate);
		return false;
	}
	atomic64_inc(&vd->nd_requests);
	err = vndp_exec_async(vd, k->out, k->in, vndp_op_is_write(k->req.op),
			      vndp_kreq_end_io, k);
	up_read(&vd->gate);
	if (err) {
		/* The queue is going away: it completes with the error. */
		k->blk_err = err;
		vndp_kreq_finish(k);
	}
	return true;
}

/* Process context after a file request: invalidate, unlock, complete. */
static void vndp_file_done_work(struct work_struct *work)
{
	struct vndp_kreq *k = container_of(work, struct vndp_kreq, work);

	vndp_file_done(k);
	if (vndp_file_retry(k))
		return;
	vndp_kreq_complete(k);
}

/* Raw writes and file requests finish in process context. */
static void vndp_kreq_finish(struct vndp_kreq *k)
{
	if (k->claim || k->file)
		queue_work(vndp_wq, &k->work);
	else
		vndp_kreq_complete(k);
}

static enum rq_end_io_ret vndp_kreq_end_io(struct request *rq,
					   blk_status_t err)
{
	struct vndp_kreq *k = rq->end_io_data;

	k->blk_err = blk_status_to_errno(err);
	vndp_kreq_finish(k);
	return RQ_END_IO_FREE;
}

/* ---- raw-disk safety ---------------------------------------------------- */

static bool vndp_parts_claimed(struct gendisk *disk)
{
	struct block_device *part;
	unsigned long idx;

	/* Index 0 is the whole disk, which we hold ourselves. */
	xa_for_each_start(&disk->part_tbl, idx, part, 1)
		if (READ_ONCE(part->bd_holder))
			return true;
	return false;
}

/*
 * An exclusive claim on the whole disk, held by the disk (so this driver's
 * files share it) until the write completes: fails while a filesystem or
 * anyone else holds the disk or a partition, and keeps them out meanwhile.
 */
static struct block_device *vndp_claim(struct vndp_disk *vd)
{
	struct block_device *bdev;

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
	bdev = blkdev_get_by_dev(disk_devt(vd->disk), BLK_OPEN_READ, vd, NULL);
#else
	bdev = blkdev_get_by_dev(disk_devt(vd->disk), FMODE_READ | FMODE_EXCL,
				 vd);
#endif
	if (IS_ERR(bdev))
		return bdev;
	if (vndp_parts_claimed(vd->disk)) {
		vndp_unclaim(bdev, vd);
		return ERR_PTR(-EBUSY);
	}
	return bdev;
}

/* ---- SUBMIT ------------------------------------------------------------- */

static void vndp_kreqs_free(struct vndp_disk *vd, struct vndp_kreq **k,
			    unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (k[i] && k[i]->claim)
			vndp_unclaim(k[i]->claim, vd);
		kfree(k[i]);
	}
}

/*
 * Everything that can fail, before anything is queued: checks, request
 * building, claims, write-back.  *bad = index of the failing request.
 */
static int vndp_submit_prepare(struct vndp_file *f, const struct vndp_req *r,
			       unsigned int nr, struct vndp_kreq **k,
			       unsigned int *bad)
{
	struct vndp_disk *vd = f->vd;
	/* Pairs with smp_store_release() in vndp_ioc_dma_alloc(). */
	struct vndp_dma *dma = smp_load_acquire(&f->dma);
	struct address_space *mapping = vndp_mapping(vd);
	bool reads = false;
	unsigned int i;
	int err = 0;

	mutex_lock(&f->lock);
	for (i = 0; i < nr && !err; i++)
		err = vndp_req_check(f, dma, &r[i]);
	mutex_unlock(&f->lock);
	if (err) {
		*bad = i - 1;
		return err;
	}
	for (i = 0; i < nr; i++) {
		*bad = i;
		k[i] = vndp_kreq_build(f, dma, &r[i]);
		if (IS_ERR(k[i])) {
			err = PTR_ERR(k[i]);
			k[i] = NULL;
			return err;
		}
		if (r[i].flags & VNDP_REQ_F_FILE) {
			/* Locked, checked and written back when queued. */
			INIT_WORK(&k[i]->work, vndp_file_done_work);
			continue;
		}
		if (!vndp_op_is_write(r[i].op)) {
			reads |= r[i].op != VNDP_OP_FLUSH;
			continue;
		}
		INIT_WORK(&k[i]->work, vndp_write_done_work);
		k[i]->claim = vndp_claim(vd);
		if (IS_ERR(k[i]->claim)) {
			err = PTR_ERR(k[i]->claim);
			k[i]->claim = NULL;
			return err;
		}
		/* Direct-I/O order: the cache's dirty pages go first. */
		if (r[i].op == VNDP_OP_WRITE)
			err = filemap_write_and_wait_range(mapping, r[i].offset,
							   r[i].offset + r[i].len - 1);
		else
			err = filemap_write_and_wait(mapping);
		if (err)
			return err;
	}
	*bad = 0;
	/* Reads see what was written through the page cache; hops may go
	 * anywhere, so the whole disk.
	 */
	return reads ? filemap_write_and_wait(mapping) : 0;
}

long vndp_ioc_submit(struct vndp_file *f, void __user *arg)
{
	struct vndp_submit __user *uarg = arg;
	struct vndp_disk *vd = f->vd;
	struct vndp_kreq **k = NULL;
	struct vndp_req *r = NULL;
	struct vndp_submit s;
	unsigned int i, bad = 0;
	unsigned long flags;
	long err;

	if (copy_from_user(&s, arg, sizeof(s)))
		return -EFAULT;
	if (s.flags || s.reserved || !s.nr)
		return -EINVAL;
	if (s.nr > VNDP_MAX_BATCH)
		return -E2BIG;
	r = kmalloc_array(s.nr, sizeof(*r), GFP_KERNEL);
	k = kcalloc(s.nr, sizeof(*k), GFP_KERNEL);
	if (!r || !k) {
		err = -ENOMEM;
		goto out_free;
	}
	/* The one copy of the requests; only it is read from here on. */
	if (copy_from_user(r, u64_to_user_ptr(s.reqs_ptr), s.nr * sizeof(*r))) {
		err = -EFAULT;
		goto out_free;
	}

	spin_lock_irqsave(&f->cpl_lock, flags);
	if (f->outstanding + s.nr > VNDP_MAX_INFLIGHT) {
		spin_unlock_irqrestore(&f->cpl_lock, flags);
		err = -EAGAIN;
		goto out_free;
	}
	f->outstanding += s.nr;
	spin_unlock_irqrestore(&f->cpl_lock, flags);

	down_read(&vd->gate);
	if (vd->dead) {
		err = -ENODEV;
		goto out_unreserve;
	}
	err = vndp_submit_prepare(f, r, s.nr, k, &bad);
	if (err) {
		vndp_kreqs_free(vd, k, s.nr);
		goto out_unreserve;
	}
	for (i = 0; i < s.nr; i++) {
		spin_lock_irqsave(&f->cpl_lock, flags);
		f->active++;
		spin_unlock_irqrestore(&f->cpl_lock, flags);
		/*
		 * A file request takes its inode's locks only now, one at a
		 * time: an earlier one of the batch is already on its way
		 * to release them, so a truncate queued between the two
		 * cannot wait for a request that is never sent.  What goes
		 * wrong here is the request's completion, not SUBMIT's error.
		 */
		if ((r[i].flags & VNDP_REQ_F_FILE) && !vndp_file_start(k[i])) {
			vndp_kreq_complete(k[i]);
			continue;
		}
		if (vndp_op_is_nd(r[i].op))
			atomic64_inc(&vd->nd_requests);
		err = vndp_exec_async(vd, k[i]->out, k[i]->in,
				      vndp_op_is_write(r[i].op) ||
				      r[i].op == VNDP_OP_FLUSH,
				      vndp_kreq_end_io, k[i]);
		if (err) {
			/* Only when the queue is going away: the request
			 * still completes, with the error.
			 */
			k[i]->blk_err = err;
			vndp_kreq_finish(k[i]);
		}
	}
	up_read(&vd->gate);
	kfree(k);
	kfree(r);
	return put_user(s.nr, &uarg->done) ? -EFAULT : 0;

out_unreserve:
	up_read(&vd->gate);
	spin_lock_irqsave(&f->cpl_lock, flags);
	f->outstanding -= s.nr;
	spin_unlock_irqrestore(&f->cpl_lock, flags);
	if (put_user(bad, &uarg->done))
		err = -EFAULT;
out_free:
	kfree(k);
	kfree(r);
	return err;
}

/* ---- REAP --------------------------------------------------------------- */

static unsigned int vndp_ndone(struct vndp_file *f)
{
	unsigned long flags;
	unsigned int n = 0;
	struct list_head *p;

	spin_lock_irqsave(&f->cpl_lock, flags);
	list_for_each(p, &f->done)
		if (++n == VNDP_MAX_INFLIGHT)
			break;
	spin_unlock_irqrestore(&f->cpl_lock, flags);
	return n;
}

long vndp_ioc_reap(struct vndp_file *f, void __user *arg)
{
	struct vndp_reap __user *uarg = arg;
	struct vndp_kreq *k, *t;
	struct vndp_cpl *cpls;
	struct vndp_reap a;
	unsigned long flags;
	unsigned int n = 0;
	LIST_HEAD(got);
	long err = 0;

	if (copy_from_user(&a, arg, sizeof(a)))
		return -EFAULT;
	if (!a.max || a.min > a.max)
		return -EINVAL;
	a.max = min(a.max, VNDP_MAX_INFLIGHT);
	a.min = min(a.min, a.max);
	spin_lock_irqsave(&f->cpl_lock, flags);
	/* More than can ever come would wait forever. */
	if (a.min > f->outstanding)
		err = -EINVAL;
	spin_unlock_irqrestore(&f->cpl_lock, flags);
	if (err)
		return err;
	if (a.min) {
		long tmo = a.timeout_ms < 0 ? MAX_SCHEDULE_TIMEOUT :
			   msecs_to_jiffies(a.timeout_ms);

		tmo = wait_event_interruptible_timeout(f->wq,
						       vndp_ndone(f) >= a.min,
						       tmo);
		if (tmo < 0)
			return -EINTR;
	}
	cpls = kmalloc_array(a.max, sizeof(*cpls), GFP_KERNEL);
	if (!cpls)
		return -ENOMEM;
	spin_lock_irqsave(&f->cpl_lock, flags);
	list_for_each_entry_safe(k, t, &f->done, node) {
		if (n == a.max)
			break;
		list_move_tail(&k->node, &got);
		cpls[n++] = k->cpl;
	}
	spin_unlock_irqrestore(&f->cpl_lock, flags);

	if (n && copy_to_user(u64_to_user_ptr(a.cpls_ptr), cpls,
			      n * sizeof(*cpls))) {
		/* Nothing is lost: they wait again, in order. */
		spin_lock_irqsave(&f->cpl_lock, flags);
		list_splice(&got, &f->done);
		spin_unlock_irqrestore(&f->cpl_lock, flags);
		kfree(cpls);
		return -EFAULT;
	}
	kfree(cpls);
	list_for_each_entry_safe(k, t, &got, node)
		kfree(k);
	spin_lock_irqsave(&f->cpl_lock, flags);
	f->outstanding -= n;
	spin_unlock_irqrestore(&f->cpl_lock, flags);

	if (put_user(n, &uarg->got))
		return -EFAULT;
	return n < a.min ? -ETIMEDOUT : 0;
}

/* Release: every request has completed before the file's memory goes. */
void vndp_submit_release(struct vndp_file *f)
{
	struct vndp_kreq *k, *t;
	unsigned long flags;

	wait_event(f->wq, READ_ONCE(f->active) == 0);
	spin_lock_irqsave(&f->cpl_lock, flags);
	list_for_each_entry_safe(k, t, &f->done, node)
		kfree(k);
	INIT_LIST_HEAD(&f->done);
	f->outstanding = 0;
	spin_unlock_irqrestore(&f->cpl_lock, flags);
}
