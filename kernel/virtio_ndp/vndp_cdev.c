// SPDX-License-Identifier: (GPL-2.0 OR MIT)
/*
 * virtio_ndp's char device, /dev/virtio-ndp/<disk>: per-open-file state,
 * the DMA area (allocation, mmap, scatterlists over it), INFO and the ioctl
 * dispatch.  A file never holds a kernel lock across a return to user space
 * and never touches user memory while holding its own mutex (mmap runs
 * under mmap_lock and must not wait for it).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/virtio_config.h>

#include "vndp.h"

#ifdef MAX_PAGE_ORDER
#define VNDP_ORDER_MAX MAX_PAGE_ORDER
#else
#define VNDP_ORDER_MAX (MAX_ORDER - 1)
#endif

static unsigned int chunk_order = 10;
module_param(chunk_order, uint, 0444);
MODULE_PARM_DESC(chunk_order,
		 "DMA area chunks are 2^chunk_order pages, physically contiguous (default 10: 4 MiB)");

static struct class *vndp_class;
static dev_t vndp_devt;

static unsigned int vndp_chunk_shift(void)
{
	return PAGE_SHIFT + min_t(unsigned int, chunk_order, VNDP_ORDER_MAX);
}

/* ---- the DMA area ------------------------------------------------------- */

bool vndp_dma_range_ok(const struct vndp_dma *dma, u64 off, u64 len)
{
	return dma && len <= dma->size && off <= dma->size - len;
}

/*
 * Appends scatterlist entries for [off, off + len) of the area to sg (which
 * has room for max): one per physically contiguous piece, none longer than
 * seg_bytes.  Returns the number used or -E2BIG.  The range must be valid.
 */
int vndp_dma_sg(struct vndp_dma *dma, u64 off, u64 len, unsigned int seg_bytes,
		struct scatterlist *sg, unsigned int max)
{
	u64 chunk_bytes = 1ull << dma->chunk_shift;
	unsigned int n = 0;

	while (len) {
		unsigned int ci = off >> dma->chunk_shift;
		u64 coff = off & (chunk_bytes - 1);
		u64 piece = min3(len, chunk_bytes - coff, (u64)seg_bytes);
		struct page *page = dma->chunk[ci].page + (coff >> PAGE_SHIFT);

		if (n == max)
			return -E2BIG;
		sg_set_page(&sg[n++], page, piece, coff & ~PAGE_MASK);
		off += piece;
		len -= piece;
	}
	return n;
}

static void vndp_dma_free(struct vndp_dma *dma)
{
	unsigned int i;

	if (!dma)
		return;
	for (i = 0; i < dma->nchunks; i++)
		if (dma->chunk[i].page)
			__free_pages(dma->chunk[i].page, dma->chunk[i].order);
	kfree(dma);
}

static struct vndp_dma *vndp_dma_alloc(u64 len)
{
	unsigned int shift = vndp_chunk_shift();
	u64 chunk_bytes = 1ull << shift, size = PAGE_ALIGN(len), left;
	unsigned int i, nchunks = DIV_ROUND_UP_ULL(size, chunk_bytes);
	struct vndp_dma *dma;

	dma = kzalloc(struct_size(dma, chunk, nchunks), GFP_KERNEL_ACCOUNT);
	if (!dma)
		return NULL;
	dma->nchunks = nchunks;
	dma->chunk_shift = shift;
	for (i = 0, left = size; i < nchunks; i++) {
		/* The last chunk may be smaller: a power of two of pages. */
		unsigned int order = get_order(min(left, chunk_bytes));

		/* Zeroed: the pages go to user space and to the device. */
		dma->chunk[i].page = alloc_pages(GFP_KERNEL_ACCOUNT | __GFP_ZERO |
						 __GFP_NOWARN, order);
		if (!dma->chunk[i].page) {
			vndp_dma_free(dma);
			return NULL;
		}
		dma->chunk[i].order = order;
		dma->size += PAGE_SIZE << order;
		left -= min(left, chunk_bytes);
	}
	return dma;
}

static long vndp_ioc_dma_alloc(struct vndp_file *f, void __user *arg)
{
	struct vndp_dma_alloc a;
	struct vndp_dma *dma;
	long err = 0;

	if (copy_from_user(&a, arg, sizeof(a)))
		return -EFAULT;
	if (a.flags || a.reserved || !a.len)
		return -EINVAL;
	if (a.len > VNDP_DMA_MAX)
		return -E2BIG;
	mutex_lock(&f->lock);
	if (f->dma) {
		err = -EBUSY;
		goto out;
	}
	dma = vndp_dma_alloc(a.len);
	if (!dma) {
		err = -ENOMEM;
		goto out;
	}
	/* Published once; readers (mmap, SUBMIT) load it with acquire. */
	smp_store_release(&f->dma, dma);
	a.len = dma->size;
out:
	mutex_unlock(&f->lock);
	if (!err && copy_to_user(arg, &a, sizeof(a)))
		err = -EFAULT;
	return err;
}

static int vndp_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct vndp_file *f = file->private_data;
	/* Pairs with smp_store_release() in vndp_ioc_dma_alloc(). */
	struct vndp_dma *dma = smp_load_acquire(&f->dma);
	unsigned long addr = vma->vm_start, len = vma->vm_end - vma->vm_start;
	u64 off = (u64)vma->vm_pgoff << PAGE_SHIFT;

	if (!dma)
		return -ENXIO;
	/*
	 * Private mappings of these pages would copy on write.  VM_MAYSHARE,
	 * not VM_SHARED: a MAP_SHARED mapping of a file opened read-only has
	 * only the former (and no VM_MAYWRITE, so mprotect cannot add write).
	 */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	if (!vndp_dma_range_ok(dma, off, len))
		return -EINVAL;
	while (len) {
		unsigned int ci = off >> dma->chunk_shift;
		u64 coff = off & ((1ull << dma->chunk_shift) - 1);
		u64 piece = min_t(u64, len, (PAGE_SIZE << dma->chunk[ci].order) - coff);
		int err;

		err = remap_pfn_range(vma, addr, page_to_pfn(dma->chunk[ci].page) +
				      (coff >> PAGE_SHIFT), piece, vma->vm_page_prot);
		if (err)
			return err;
		addr += piece;
		off += piece;
		len -= piece;
	}
	return 0;
}

/* ---- INFO --------------------------------------------------------------- */

static long vndp_ioc_info(struct vndp_file *f, void __user *arg)
{
	struct vndp_disk *vd = f->vd;
	struct vndp_info info;

	memset(&info, 0, sizeof(info));
	down_read(&vd->gate);
	if (vd->dead) {
		up_read(&vd->gate);
		return -ENODEV;
	}
	info.capacity_bytes = (u64)get_capacity(vd->disk) << SECTOR_SHIFT;
	info.block_size = queue_logical_block_size(vd->disk->queue);
	info.num_queues = vd->num_vqs;
	info.readonly = virtio_has_feature(vd->vdev, VIRTIO_BLK_F_RO);
	info.features = vd->vdev->features;
	up_read(&vd->gate);

	info.ndp = vd->ndp;
	if (vd->ndp) {
		info.ndp_version = vd->probe.version;
		info.prog_types = vd->probe.prog_types;
		info.max_programs = vd->probe.max_programs;
		info.max_elf_bytes = vd->probe.max_elf_bytes;
		info.max_meta = vd->probe.max_meta;
		info.max_scratch = vd->probe.max_scratch;
		info.max_data = vd->probe.max_data;
		info.max_hops = vd->probe.max_hops;
		info.ndp_caps = vd->probe.caps;
		info.max_files = vd->probe.max_files;
	}
	info.nd_requests = atomic64_read(&vd->nd_requests);
	info.max_batch = VNDP_MAX_BATCH;
	info.max_inflight = VNDP_MAX_INFLIGHT;
	info.dma_chunk_bytes = 1u << vndp_chunk_shift();
	info.uapi_version = VNDP_UAPI_VERSION;
	info.dma_max_bytes = VNDP_DMA_MAX;
	info.max_io_bytes = vd->io_max;
	strscpy(info.disk, vd->name, sizeof(info.disk));
	return copy_to_user(arg, &info, sizeof(info)) ? -EFAULT : 0;
}

/* ---- file operations ---------------------------------------------------- */

static long vndp_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct vndp_file *f = file->private_data;
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case VNDP_IOC_INFO:
		return vndp_ioc_info(f, argp);
	case VNDP_IOC_DMA_ALLOC:
		return vndp_ioc_dma_alloc(f, argp);
	case VNDP_IOC_LOAD:
		return vndp_ioc_load(f, argp);
	case VNDP_IOC_UNLOAD:
		return vndp_ioc_unload(f, argp);
	case VNDP_IOC_REG_MEM:
		return vndp_ioc_reg_mem(f, argp);
	case VNDP_IOC_UNREG_MEM:
		return vndp_ioc_unreg_mem(f, argp);
	case VNDP_IOC_SUBMIT:
		return vndp_ioc_submit(f, argp);
	case VNDP_IOC_REAP:
		return vndp_ioc_reap(f, argp);
	case VNDP_IOC_REG_FILE:
		return vndp_ioc_reg_file(f, argp);
	case VNDP_IOC_UNREG_FILE:
		return vndp_ioc_unreg_file(f, argp);
	}
	return -ENOTTY;
}

static __poll_t vndp_poll(struct file *file, poll_table *wait)
{
	struct vndp_file *f = file->private_data;
	__poll_t mask = 0;
	unsigned long flags;

	poll_wait(file, &f->wq, wait);
	spin_lock_irqsave(&f->cpl_lock, flags);
	if (!list_empty(&f->done))
		mask |= EPOLLIN | EPOLLRDNORM;
	spin_unlock_irqrestore(&f->cpl_lock, flags);
	/* The disk is gone (remove wakes us): nothing new will come. */
	if (READ_ONCE(f->vd->dead))
		mask |= EPOLLHUP;
	return mask;
}

static int vndp_open(struct inode *inode, struct file *file)
{
	struct vndp_disk *vd = container_of(inode->i_cdev, struct vndp_disk, cdev);
	struct vndp_file *f;

	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	down_read(&vd->gate);
	if (vd->dead) {
		up_read(&vd->gate);
		kfree(f);
		return -ENODEV;
	}
	get_device(&vd->cdev_dev);
	f->vd = vd;
	f->mode = file->f_mode;
	mutex_init(&f->lock);
	INIT_LIST_HEAD(&f->progs);
	INIT_LIST_HEAD(&f->keys);
	INIT_LIST_HEAD(&f->files);
	spin_lock_init(&f->cpl_lock);
	INIT_LIST_HEAD(&f->done);
	init_waitqueue_head(&f->wq);
	spin_lock(&vd->files_lock);
	list_add(&f->node, &vd->files);
	spin_unlock(&vd->files_lock);
	up_read(&vd->gate);

	file->private_data = f;
	return nonseekable_open(inode, file);
}

/*
 * The last reference is gone: no mapping of the area remains (a mapping
 * holds the file), no ioctl runs.  Requests still in flight finish first;
 * then what the file owns on the device goes, then the memory.
 */
static int vndp_release(struct inode *inode, struct file *file)
{
	struct vndp_file *f = file->private_data;
	bool registered;

	vndp_submit_release(f);
	registered = vndp_ndp_release(f);
	if (registered)
		pr_warn("%s: memory still registered with the device: %llu bytes of DMA area leaked\n",
			f->vd->name, f->dma->size);
	else
		vndp_dma_free(f->dma);
	vndp_disk_put(f->vd);
	mutex_destroy(&f->lock);
	kfree(f);
	return 0;
}

static const struct file_operations vndp_fops = {
	.owner = THIS_MODULE,
	.open = vndp_open,
	.release = vndp_release,
	.unlocked_ioctl = vndp_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = vndp_mmap,
	.poll = vndp_poll,
	.llseek = no_llseek,
};

/* ---- per-disk set-up and tear-down -------------------------------------- */

int vndp_cdev_add(struct vndp_disk *vd)
{
	vd->cdev_dev.class = vndp_class;
	vd->cdev_dev.parent = &vd->vdev->dev;
	vd->cdev_dev.devt = MKDEV(MAJOR(vndp_devt), vd->index);
	cdev_init(&vd->cdev, &vndp_fops);
	vd->cdev.owner = THIS_MODULE;
	return cdev_device_add(&vd->cdev, &vd->cdev_dev);
}

void vndp_cdev_del(struct vndp_disk *vd)
{
	/* After this no char-device call starts a request. */
	down_write(&vd->gate);
	WRITE_ONCE(vd->dead, true);
	vndp_ndp_remove(vd);
	up_write(&vd->gate);
	cdev_device_del(&vd->cdev, &vd->cdev_dev);
}

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
static char *vndp_devnode(const struct device *dev, umode_t *mode)
#else
static char *vndp_devnode(struct device *dev, umode_t *mode)
#endif
{
	return kasprintf(GFP_KERNEL, "virtio-ndp/%s", dev_name(dev));
}

int vndp_cdev_init(void)
{
	int err;

	err = alloc_chrdev_region(&vndp_devt, 0, VNDP_MAX_DISKS, VNDP_NAME);
	if (err)
		return err;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
	vndp_class = class_create("virtio-ndp");
#else
	vndp_class = class_create(THIS_MODULE, "virtio-ndp");
#endif
	if (IS_ERR(vndp_class)) {
		unregister_chrdev_region(vndp_devt, VNDP_MAX_DISKS);
		return PTR_ERR(vndp_class);
	}
	vndp_class->devnode = vndp_devnode;
	return 0;
}

void vndp_cdev_exit(void)
{
	class_destroy(vndp_class);
	unregister_chrdev_region(vndp_devt, VNDP_MAX_DISKS);
}
