// SPDX-License-Identifier: (GPL-2.0 OR MIT)
/*
 * virtio_ndp's registered files: the extent map of an ext4 file on this
 * disk (built with bmap() only, so it never names a block that is not the
 * file's), and the inode's locks held shared for each file request's life.
 * A map is trusted only while the inode looks as it did when it was built.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blkdev.h>
#include <linux/delay.h>
#include <linux/fileattr.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/iversion.h>
#include <linux/major.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "vndp.h"

/* Map rebuilds one request may try before it gives up (STALE_LAYOUT). */
#define VNDP_FILE_RETRIES 4

/* ---- the hot path: a file request's locks and map check ----------------- */

static void vndp_fsnap_take(struct inode *inode, struct vndp_fsnap *s)
{
	s->size = i_size_read(inode);
	s->blocks = READ_ONCE(inode->i_blocks);
	s->ctime = inode->i_ctime;
	s->mtime = inode->i_mtime;
	/* Counted only on filesystems mounted with it (ext4: -o iversion). */
	s->iversion = IS_I_VERSION(inode) ? inode_query_iversion(inode) : 0;
}

static bool vndp_fsnap_eq(const struct vndp_fsnap *a,
			  const struct vndp_fsnap *b)
{
	return a->size == b->size && a->blocks == b->blocks &&
	       timespec64_equal(&a->ctime, &b->ctime) &&
	       timespec64_equal(&a->mtime, &b->mtime) &&
	       a->iversion == b->iversion;
}

static void vndp_rf_put_final(struct kref *ref)
{
	struct vndp_regfile *rf = container_of(ref, struct vndp_regfile, ref);

	fput(rf->filp);
	kvfree(rf->ext);
	mutex_destroy(&rf->lock);
	kfree(rf);
}

static void vndp_rf_put(struct vndp_regfile *rf)
{
	kref_put(&rf->ref, vndp_rf_put_final);
}

/* f->lock held. */
static struct vndp_regfile *vndp_rf_find(struct vndp_file *f, u32 key)
{
	struct vndp_regfile *rf;

	list_for_each_entry(rf, &f->files, node)
		if (rf->key == key)
			return rf;
	return NULL;
}

/*
 * SUBMIT's check of a file request (f->lock held): the key is this file's,
 * the range is inside the file (its registered size, or its size now when
 * it grew: the check under the inode's locks refreshes the map first and
 * has the last word), and a WRITE_ND's file is open for writing.
 */
int vndp_file_req_check(struct vndp_file *f, const struct vndp_req *r)
{
	struct vndp_regfile *rf = vndp_rf_find(f, r->file_key);
	u64 end;

	if (!rf)
		return -ENOENT;
	spin_lock(&rf->slock);
	end = max_t(u64, rf->size, i_size_read(file_inode(rf->filp)));
	spin_unlock(&rf->slock);
	end = round_up(end, SECTOR_SIZE);
	if (r->offset > end || r->len > end - r->offset)
		return -EINVAL;
	if (r->op == VNDP_OP_WRITE_ND && !(rf->filp->f_mode & FMODE_WRITE))
		return -EBADF;
	return 0;
}

/* i_rwsem, then invalidate_lock, as truncate and hole punching take them. */
static void vndp_inode_lock(struct inode *inode)
{
	down_read_non_owner(&inode->i_rwsem);
	down_read_non_owner(&inode->i_mapping->invalidate_lock);
}

static void vndp_inode_unlock(struct inode *inode)
{
	up_read_non_owner(&inode->i_mapping->invalidate_lock);
	up_read_non_owner(&inode->i_rwsem);
}

static int vndp_rf_refresh(struct vndp_disk *vd, struct vndp_regfile *rf);

/*
 * Before a file request is queued (the disk's gate held): takes the
 * inode's locks shared, writes the file's dirty pages back and checks the
 * map against the inode, refreshing it when the file changed.  Returns
 * true with the locks held (released by vndp_file_done()) and the request
 * pointed at the device's key; false when the request was completed here
 * (STALE_LAYOUT, OUT_OF_RANGE, or an error).
 */
bool vndp_file_start(struct vndp_kreq *k)
{
	struct vndp_file *f = k->f;
	struct vndp_regfile *rf;
	struct vndp_fsnap now;
	struct inode *inode;
	u32 status = RB_NDP_S_STALE_LAYOUT, dev_key = 0;
	int tries, err = 0;
	bool same;
	u64 end;

	mutex_lock(&f->lock);
	rf = vndp_rf_find(f, k->req.file_key);
	if (rf)
		kref_get(&rf->ref);
	mutex_unlock(&f->lock);
	if (!rf) {
		/* Unregistered since SUBMIT checked it. */
		k->blk_err = -ENOENT;
		goto complete;
	}
	inode = file_inode(rf->filp);
	for (tries = 0; tries < VNDP_FILE_RETRIES; tries++) {
		vndp_inode_lock(inode);
		/* Direct-I/O order, and delayed allocation picks blocks now. */
		err = filemap_write_and_wait(inode->i_mapping);
		if (err)
			break;
		vndp_fsnap_take(inode, &now);
		spin_lock(&rf->slock);
		same = !rf->dead && vndp_fsnap_eq(&now, &rf->snap);
		dev_key = rf->dev_key;
		spin_unlock(&rf->slock);
		if (same)
			break;
		vndp_inode_unlock(inode);
		err = vndp_rf_refresh(f->vd, rf);
		if (err && err != -EAGAIN)
			goto fail;
	}
	if (tries == VNDP_FILE_RETRIES)
		goto fail;      /* STALE_LAYOUT */
	if (err) {
		vndp_inode_unlock(inode);
		goto fail;
	}
	end = round_up(now.size, SECTOR_SIZE);
	if (!dev_key || k->req.offset > end || k->req.len > end - k->req.offset) {
		/* Shrunk below the request, or no block left to read. */
		vndp_inode_unlock(inode);
		status = RB_NDP_S_OUT_OF_RANGE;
		goto fail;
	}
	k->io.flags = vndp_le32(RB_NDP_IO_F_FILE);
	k->io.file_key = vndp_le32(dev_key);
	k->file = get_file(rf->filp);
	vndp_rf_put(rf);
	return true;

fail:
	vndp_rf_put(rf);
	k->blk_err = err == -EAGAIN ? 0 : err;
	k->res.status = vndp_le32(status);
complete:
	return false;
}

/*
 * The device answered a file request STATE_LOST: it restarted and forgot
 * its file maps.  Forget the key it had for this file and the inode
 * snapshot, so that the next vndp_file_start() builds the map again and
 * registers it anew (the device's key is never reused for it).
 */
void vndp_file_lost(struct vndp_kreq *k)
{
	struct vndp_file *f = k->f;
	struct vndp_regfile *rf;

	mutex_lock(&f->lock);
	rf = vndp_rf_find(f, k->req.file_key);
	if (rf) {
		spin_lock(&rf->slock);
		if (rf->dev_key == vndp_le32(k->io.file_key)) {
			rf->dev_key = 0;
			memset(&rf->snap, 0, sizeof(rf->snap));
		}
		spin_unlock(&rf->slock);
	}
	mutex_unlock(&f->lock);
}

/*
 * Process context, after the device answered a file request: a WRITE_ND's
 * new bytes replace whatever the page cache holds (whole file: the
 * program may have written anywhere in it), then the locks go.
 */
void vndp_file_done(struct vndp_kreq *k)
{
	struct inode *inode = file_inode(k->file);

	if (k->req.op == VNDP_OP_WRITE_ND)
		invalidate_inode_pages2(inode->i_mapping);
	vndp_inode_unlock(inode);
	fput(k->file);
	k->file = NULL;
}

/* ---- building a map ----------------------------------------------------- */

struct vndp_fmap {
	struct vndp_fsnap snap;
	struct rb_ndp_extent *ext;      /* little-endian, kvmalloc'd */
	u32 n;
};

static bool vndp_ts_within(const struct timespec64 *t,
			   const struct timespec64 *lo,
			   const struct timespec64 *hi)
{
	return timespec64_compare(t, lo) >= 0 && timespec64_compare(t, hi) <= 0;
}

/*
 * Maps the file block by block with bmap() (0: a hole, an unwritten
 * extent, or nothing bmap can name: not readable), adds the partition's
 * start and merges runs into extents.  -EAGAIN when the file changed while
 * it was mapped, -E2BIG beyond max extents.
 */
static int vndp_fmap_once(struct inode *inode, u64 part, u32 max,
			  struct vndp_fmap *m)
{
	unsigned int bits = inode->i_blkbits;
	struct vndp_fsnap after;
	struct timespec64 t0, t1;
	u64 nblocks, b, end;
	u32 n = 0;
	int err;

	err = filemap_write_and_wait(inode->i_mapping);
	if (err)
		return err;
	t0 = current_time(inode);
	vndp_fsnap_take(inode, &m->snap);
	end = round_up(m->snap.size, SECTOR_SIZE);
	nblocks = DIV_ROUND_UP_ULL(m->snap.size, 1ull << bits);
	m->ext = kvmalloc_array(max_t(u64, 1, min_t(u64, nblocks, max)),
				sizeof(*m->ext), GFP_KERNEL_ACCOUNT);
	if (!m->ext)
		return -ENOMEM;
	for (b = 0; b < nblocks; b++) {
		u64 fo = b << bits, d, len;
		sector_t blk = b;

		if (fatal_signal_pending(current))
			return -EINTR;
		cond_resched();
		if (bmap(inode, &blk))
			return -EOPNOTSUPP;
		if (!blk)
			continue;
		d = part + ((u64)blk << bits);
		len = min_t(u64, 1ull << bits, end - fo);
		if (n && le64_to_cpu(m->ext[n - 1].file_off) +
			 le64_to_cpu(m->ext[n - 1].len) == fo &&
		    le64_to_cpu(m->ext[n - 1].disk_off) +
			 le64_to_cpu(m->ext[n - 1].len) == d) {
			le64_add_cpu(&m->ext[n - 1].len, len);
			continue;
		}
		if (n == max)
			return -E2BIG;
		m->ext[n].file_off = cpu_to_le64(fo);
		m->ext[n].disk_off = cpu_to_le64(d);
		m->ext[n].len = cpu_to_le64(len);
		n++;
	}
	m->n = n;
	vndp_fsnap_take(inode, &after);
	t1 = current_time(inode);
	if (!vndp_fsnap_eq(&m->snap, &after))
		return -EAGAIN;
	/*
	 * Timestamps are coarse: a change later in the tick that stamped
	 * the file would look like no change at all.  A file stamped while
	 * it was being mapped is mapped again once that tick is over.
	 */
	if (vndp_ts_within(&m->snap.ctime, &t0, &t1) ||
	    vndp_ts_within(&m->snap.mtime, &t0, &t1))
		return -EAGAIN;
	return 0;
}

static int vndp_fmap_build(struct vndp_disk *vd, struct file *filp,
			   struct vndp_fmap *m)
{
	struct inode *inode = file_inode(filp);
	u64 part = (u64)get_start_sect(inode->i_sb->s_bdev) << SECTOR_SHIFT;
	int tries, err = -EAGAIN;

	for (tries = 0; tries < VNDP_FILE_RETRIES && err == -EAGAIN; tries++) {
		if (tries)
			schedule_timeout_interruptible(2);
		kvfree(m->ext);
		m->ext = NULL;
		err = vndp_fmap_once(inode, part, vd->probe.max_extents, m);
	}
	if (err) {
		kvfree(m->ext);
		m->ext = NULL;
	}
	return err;
}

/*
 * A new map for rf (the file changed): built without the inode's locks,
 * then given to the device in place of the old one (UNREG, then REG: the
 * device holds few files), unless it is the same map.  The gate is held.
 */
static int vndp_rf_refresh(struct vndp_disk *vd, struct vndp_regfile *rf)
{
	struct vndp_fmap m = {};
	u32 st, key = 0, old;
	int err;

	mutex_lock(&rf->lock);
	err = -ENOENT;
	if (READ_ONCE(rf->dead))
		goto out;
	err = vndp_fmap_build(vd, rf->filp, &m);
	if (err == -E2BIG || err == -EOPNOTSUPP)
		err = -EAGAIN;  /* no usable map now: STALE_LAYOUT */
	if (err)
		goto out;
	if (m.n == rf->n && rf->dev_key &&
	    !memcmp(m.ext, rf->ext, m.n * sizeof(*m.ext))) {
		spin_lock(&rf->slock);
		rf->snap = m.snap;
		rf->size = m.snap.size;
		spin_unlock(&rf->slock);
		goto out;
	}
	old = rf->dev_key;
	spin_lock(&rf->slock);
	rf->dev_key = 0;
	spin_unlock(&rf->slock);
	/* Requests still running on the old map keep it on the device. */
	if (old && vndp_send_unreg_file(vd, old, &st))
		pr_warn("%s: could not unregister file key %u\n", vd->name, old);
	if (m.n) {
		err = vndp_send_reg_file(vd, m.snap.size, m.ext, m.n, &st, &key);
		if (!err && st != RB_NDP_S_OK)
			err = -EAGAIN;
		if (err) {
			key = 0;
			goto out;
		}
	}
	kvfree(rf->ext);
	rf->ext = m.ext;
	rf->n = m.n;
	m.ext = NULL;
	spin_lock(&rf->slock);
	rf->snap = m.snap;
	rf->size = m.snap.size;
	rf->dev_key = key;
	spin_unlock(&rf->slock);
out:
	mutex_unlock(&rf->lock);
	kvfree(m.ext);
	return err;
}

/* ---- REG_FILE / UNREG_FILE ---------------------------------------------- */

/* Block drivers that stack on other disks: their layout is not ours. */
static bool vndp_disk_stacked(struct gendisk *disk)
{
	return disk->major == LOOP_MAJOR || disk->major == MD_MAJOR ||
	       !strncmp(disk->disk_name, "dm-", 3) ||
	       !strncmp(disk->disk_name, "md", 2) ||
	       !strncmp(disk->disk_name, "loop", 4);
}

/* Why filp cannot be registered on vd, or 0. */
static int vndp_file_refuse(struct vndp_disk *vd, struct file *filp)
{
	struct inode *inode = file_inode(filp);
	struct super_block *sb = inode->i_sb;
	struct fileattr fa = {};
	int err;

	if (!S_ISREG(inode->i_mode) || !sb->s_bdev)
		return -EINVAL;         /* directory, pipe, device; tmpfs */
	if (!(filp->f_mode & FMODE_READ))
		return -EBADF;
	if (sb->s_bdev->bd_disk != vd->disk)
		return vndp_disk_stacked(sb->s_bdev->bd_disk) ? -EOPNOTSUPP :
								-EXDEV;
	/* ext4 only: also what rules out reflinked (shared) blocks. */
	if (strcmp(sb->s_type->name, "ext4"))
		return -EOPNOTSUPP;
	if (IS_ENCRYPTED(inode) || IS_DAX(inode))
		return -EOPNOTSUPP;
	/* FS_IOC_GETFLAGS' view: inline data lives in the inode, journalled
	 * data reaches its blocks only at checkpoint.
	 */
	err = vfs_fileattr_get(filp->f_path.dentry, &fa);
	if (err)
		return err == -ENOIOCTLCMD ? -EOPNOTSUPP : err;
	if (fa.flags & (FS_INLINE_DATA_FL | FS_JOURNAL_DATA_FL | FS_ENCRYPT_FL |
			FS_DAX_FL))
		return -EOPNOTSUPP;
	return 0;
}

static int vndp_enter_files(struct vndp_disk *vd)
{
	down_read(&vd->gate);
	if (vd->dead) {
		up_read(&vd->gate);
		return -ENODEV;
	}
	if (!vd->ndp || !(vd->probe.caps & RB_NDP_CAP_FILES)) {
		up_read(&vd->gate);
		return -EOPNOTSUPP;
	}
	return 0;
}

long vndp_ioc_reg_file(struct vndp_file *f, void __user *arg)
{
	struct vndp_disk *vd = f->vd;
	struct vndp_regfile *rf;
	struct vndp_reg_file a;
	struct vndp_fmap m = {};
	struct fd fd;
	long err;

	if (copy_from_user(&a, arg, sizeof(a)))
		return -EFAULT;
	if (a.flags || a.reserved)
		return -EINVAL;
	fd = fdget(a.fd);
	if (!fd.file)
		return -EBADF;
	err = vndp_file_refuse(vd, fd.file);
	if (err)
		goto out_fd;
	err = vndp_enter_files(vd);
	if (err)
		goto out_fd;
	rf = kzalloc(sizeof(*rf), GFP_KERNEL_ACCOUNT);
	err = -ENOMEM;
	if (!rf)
		goto out_gate;
	mutex_lock(&f->lock);
	err = f->nfiles < VNDP_MAX_OWNED ? 0 : -ENOSPC;
	if (!err)
		f->nfiles++;    /* reserved */
	mutex_unlock(&f->lock);
	if (err)
		goto out_free;
	err = vndp_fmap_build(vd, fd.file, &m);
	if (err == -EAGAIN)
		err = -EBUSY;   /* changing faster than it can be mapped */
	if (!err && !m.n)
		err = -EOPNOTSUPP; /* no block a program could read */
	if (err)
		goto out_unreserve;
	err = vndp_send_reg_file(vd, m.snap.size, m.ext, m.n, &a.status,
				 &a.key);
	if (err)
		goto out_unreserve;
	if (a.status != RB_NDP_S_OK) {
		a.key = 0;
		goto out_unreserve;     /* LIMIT: the device holds enough */
	}
	kref_init(&rf->ref);
	mutex_init(&rf->lock);
	spin_lock_init(&rf->slock);
	rf->filp = get_file(fd.file);
	rf->key = a.key;
	rf->dev_key = a.key;
	rf->snap = m.snap;
	rf->size = m.snap.size;
	rf->n = m.n;
	rf->ext = m.ext;
	m.ext = NULL;
	a.size = rf->size;
	a.n_extents = rf->n;
	mutex_lock(&f->lock);
	list_add(&rf->node, &f->files);
	mutex_unlock(&f->lock);
	rf = NULL;
	goto out_free;

out_unreserve:
	mutex_lock(&f->lock);
	f->nfiles--;
	mutex_unlock(&f->lock);
out_free:
	kvfree(m.ext);
	kfree(rf);
out_gate:
	up_read(&vd->gate);
out_fd:
	fdput(fd);
	if (!err && copy_to_user(arg, &a, sizeof(a)))
		err = -EFAULT;
	return err;
}

/* Gives rf's device key back; the gate is held. */
static void vndp_rf_unreg(struct vndp_disk *vd, struct vndp_regfile *rf,
			  bool live, u32 *status)
{
	u32 key;

	mutex_lock(&rf->lock);
	spin_lock(&rf->slock);
	key = rf->dev_key;
	rf->dev_key = 0;
	rf->dead = true;
	spin_unlock(&rf->slock);
	*status = RB_NDP_S_OK;
	if (live && key && vndp_send_unreg_file(vd, key, status))
		pr_warn("%s: could not unregister file key %u\n", vd->name, key);
	mutex_unlock(&rf->lock);
}

long vndp_ioc_unreg_file(struct vndp_file *f, void __user *arg)
{
	struct vndp_disk *vd = f->vd;
	struct vndp_regfile *rf;
	struct vndp_reg_file a;
	long err;

	if (copy_from_user(&a, arg, sizeof(a)))
		return -EFAULT;
	if (a.flags || a.reserved)
		return -EINVAL;
	err = vndp_enter_files(vd);
	if (err)
		return err;
	mutex_lock(&f->lock);
	rf = vndp_rf_find(f, a.key);
	if (rf) {
		list_del(&rf->node);
		f->nfiles--;
	}
	mutex_unlock(&f->lock);
	if (rf) {
		vndp_rf_unreg(vd, rf, true, &a.status);
		vndp_rf_put(rf);
	}
	up_read(&vd->gate);
	if (!rf)
		return -ENOENT;
	return copy_to_user(arg, &a, sizeof(a)) ? -EFAULT : 0;
}

/*
 * Release or remove (the gate held, no request of f being submitted):
 * every file f registered goes, from the device too while it is live.
 */
void vndp_files_drop(struct vndp_file *f, bool live)
{
	struct vndp_regfile *rf, *t;
	u32 st;

	list_for_each_entry_safe(rf, t, &f->files, node) {
		list_del(&rf->node);
		vndp_rf_unreg(f->vd, rf, live, &st);
		vndp_rf_put(rf);
	}
	f->nfiles = 0;
}
