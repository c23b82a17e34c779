// SPDX-License-Identifier: (GPL-2.0 OR MIT)
/*
 * virtio_ndp's block side: a virtio-blk device (id 2) as a blk-mq disk, and
 * the passthrough requests (REQ_OP_DRV_*) the char device sends through the
 * same queues.  Probe and remove mirror each other; nothing here ever trusts
 * a length from the device beyond what virtio core checks.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/idr.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>

#include "vndp.h"

static DEFINE_IDA(vndp_ida);
static int vndp_major;

/* ---- hot path: queueing and completing requests ------------------------ */

static blk_status_t vndp_blk_status(u8 status)
{
	switch (status) {
	case VIRTIO_BLK_S_OK:
		return BLK_STS_OK;
	case VIRTIO_BLK_S_UNSUPP:
		return BLK_STS_NOTSUPP;
	default:
		return BLK_STS_IOERR;
	}
}

static void vndp_kick(struct vndp_vq *q)
{
	unsigned long flags;
	bool notify;

	spin_lock_irqsave(&q->lock, flags);
	notify = virtqueue_kick_prepare(q->vq);
	spin_unlock_irqrestore(&q->lock, flags);
	if (notify)
		virtqueue_notify(q->vq);
}

static void vndp_commit_rqs(struct blk_mq_hw_ctx *hctx)
{
	struct vndp_disk *vd = hctx->queue->queuedata;

	vndp_kick(&vd->vqs[hctx->queue_num]);
}

/* Header (and the discard/write-zeroes range) of a block-layer request. */
static int vndp_prep_blk(struct vndp_disk *vd, struct request *rq,
			 struct vndp_cmd *cmd, u32 *type)
{
	u32 flags = 0;

	switch (req_op(rq)) {
	case REQ_OP_READ:
		*type = VIRTIO_BLK_T_IN;
		break;
	case REQ_OP_WRITE:
		*type = VIRTIO_BLK_T_OUT;
		break;
	case REQ_OP_FLUSH:
		*type = VIRTIO_BLK_T_FLUSH;
		break;
	case REQ_OP_DISCARD:
		*type = VIRTIO_BLK_T_DISCARD;
		break;
	case REQ_OP_WRITE_ZEROES:
		*type = VIRTIO_BLK_T_WRITE_ZEROES;
		if (!(rq->cmd_flags & REQ_NOUNMAP))
			flags = VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
		break;
	default:
		return -EOPNOTSUPP;
	}
	cmd->hdr.type = cpu_to_virtio32(vd->vdev, *type);
	cmd->hdr.ioprio = cpu_to_virtio32(vd->vdev, req_get_ioprio(rq));
	cmd->hdr.sector = cpu_to_virtio64(vd->vdev, *type == VIRTIO_BLK_T_FLUSH ?
					  0 : blk_rq_pos(rq));
	/* One range per request: max_discard_segments is 1. */
	cmd->range.sector = cpu_to_le64(blk_rq_pos(rq));
	cmd->range.num_sectors = cpu_to_le32(blk_rq_sectors(rq));
	cmd->range.flags = cpu_to_le32(flags);
	return 0;
}

static blk_status_t vndp_queue_rq(struct blk_mq_hw_ctx *hctx,
				  const struct blk_mq_queue_data *bd)
{
	struct vndp_disk *vd = hctx->queue->queuedata;
	struct vndp_vq *q = &vd->vqs[hctx->queue_num];
	struct request *rq = bd->rq;
	struct vndp_cmd *cmd = blk_mq_rq_to_pdu(rq);
	struct scatterlist hdr, range, status, *sgs[4];
	unsigned int nout = 0, nin = 0;
	unsigned long flags;
	bool notify;
	u32 type;
	int err;

	if (req_op(rq) == REQ_OP_DRV_IN || req_op(rq) == REQ_OP_DRV_OUT) {
		sgs[nout++] = cmd->pt_out;
		if (cmd->pt_in)
			sgs[nout + nin++] = cmd->pt_in;
	} else {
		if (vndp_prep_blk(vd, rq, cmd, &type))
			return BLK_STS_NOTSUPP;
		sg_init_one(&hdr, &cmd->hdr, sizeof(cmd->hdr));
		sgs[nout++] = &hdr;
		if (type == VIRTIO_BLK_T_DISCARD ||
		    type == VIRTIO_BLK_T_WRITE_ZEROES) {
			sg_init_one(&range, &cmd->range, sizeof(cmd->range));
			sgs[nout++] = &range;
		} else if (blk_rq_nr_phys_segments(rq)) {
			sg_init_table(cmd->sg, vd->sg_elems);
			if (blk_rq_map_sg(hctx->queue, rq, cmd->sg)) {
				if (type == VIRTIO_BLK_T_OUT)
					sgs[nout++] = cmd->sg;
				else
					sgs[nout + nin++] = cmd->sg;
			}
		}
	}
	cmd->status = 0xff; /* overwritten by the device */
	sg_init_one(&status, &cmd->status, sizeof(cmd->status));
	sgs[nout + nin++] = &status;

	blk_mq_start_request(rq);
	spin_lock_irqsave(&q->lock, flags);
	err = virtqueue_add_sgs(q->vq, sgs, nout, nin, rq, GFP_ATOMIC);
	if (err) {
		virtqueue_kick(q->vq);
		spin_unlock_irqrestore(&q->lock, flags);
		if (err == -ENOSPC || err == -ENOMEM) {
			/* Ring full: retried when a completion frees room. */
			blk_mq_stop_hw_queue(hctx);
			return BLK_STS_DEV_RESOURCE;
		}
		return BLK_STS_IOERR;
	}
	notify = bd->last && virtqueue_kick_prepare(q->vq);
	spin_unlock_irqrestore(&q->lock, flags);
	if (notify)
		virtqueue_notify(q->vq);
	return BLK_STS_OK;
}

static void vndp_complete_rq(struct request *rq)
{
	struct vndp_cmd *cmd = blk_mq_rq_to_pdu(rq);

	blk_mq_end_request(rq, vndp_blk_status(cmd->status));
}

static void vndp_vq_done(struct virtqueue *vq)
{
	struct vndp_disk *vd = vq->vdev->priv;
	struct vndp_vq *q = &vd->vqs[vq->index];
	struct request *rq;
	unsigned long flags;
	unsigned int len;

	spin_lock_irqsave(&q->lock, flags);
	do {
		virtqueue_disable_cb(vq);
		while ((rq = virtqueue_get_buf(vq, &len)) != NULL)
			blk_mq_complete_request(rq);
		if (unlikely(virtqueue_is_broken(vq)))
			break;
	} while (!virtqueue_enable_cb(vq));
	spin_unlock_irqrestore(&q->lock, flags);
	blk_mq_start_stopped_hw_queues(vd->disk->queue, true);
}

static const struct blk_mq_ops vndp_mq_ops = {
	.queue_rq = vndp_queue_rq,
	.commit_rqs = vndp_commit_rqs,
	.complete = vndp_complete_rq,
};

/* ---- passthrough requests for the char device -------------------------- */

static struct request *vndp_pt_alloc(struct vndp_disk *vd,
				     struct scatterlist *out,
				     struct scatterlist *in, bool write)
{
	struct request *rq;
	struct vndp_cmd *cmd;

	rq = blk_mq_alloc_request(vd->disk->queue,
				  write ? REQ_OP_DRV_OUT : REQ_OP_DRV_IN, 0);
	if (IS_ERR(rq))
		return rq;
	cmd = blk_mq_rq_to_pdu(rq);
	cmd->pt_out = out;
	cmd->pt_in = in;
	return rq;
}

/*
 * Sends one driver-built request and waits for it.  out and in are
 * terminated scatterlists of kernel memory (never the stack); in may be
 * NULL.  Returns the virtio status byte, or -errno when nothing was sent.
 */
int vndp_exec_sync(struct vndp_disk *vd, struct scatterlist *out,
		   struct scatterlist *in, bool write)
{
	struct request *rq;
	int status;

	rq = vndp_pt_alloc(vd, out, in, write);
	if (IS_ERR(rq))
		return PTR_ERR(rq);
	blk_execute_rq(rq, false);
	status = ((struct vndp_cmd *)blk_mq_rq_to_pdu(rq))->status;
	blk_mq_free_request(rq);
	return status;
}

/* Queues one driver-built request; end_io runs on completion (any
 * context) and must return RQ_END_IO_FREE.
 */
int vndp_exec_async(struct vndp_disk *vd, struct scatterlist *out,
		    struct scatterlist *in, bool write, rq_end_io_fn *end_io,
		    void *data)
{
	struct request *rq;

	rq = vndp_pt_alloc(vd, out, in, write);
	if (IS_ERR(rq))
		return PTR_ERR(rq);
	rq->end_io = end_io;
	rq->end_io_data = data;
	blk_execute_rq_nowait(rq, false);
	return 0;
}

struct address_space *vndp_mapping(struct vndp_disk *vd)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 10, 0)
	return vd->disk->part0->bd_mapping;
#else
	return vd->disk->part0->bd_inode->i_mapping;
#endif
}

/* ---- configuration ------------------------------------------------------ */

static void vndp_config_work(struct work_struct *work)
{
	struct vndp_disk *vd = container_of(work, struct vndp_disk, config_work);
	u64 capacity;

	virtio_cread(vd->vdev, struct virtio_blk_config, capacity, &capacity);
	if (set_capacity_and_notify(vd->disk, capacity))
		dev_info(&vd->vdev->dev, "%s: capacity now %llu sectors\n",
			 vd->name, capacity);
}

static void vndp_config_changed(struct virtio_device *vdev)
{
	struct vndp_disk *vd = vdev->priv;

	queue_work(system_freezable_wq, &vd->config_work);
}

struct vndp_limits {
	unsigned int lbs;
	unsigned int max_segments;
	unsigned int max_seg_size;
	unsigned int discard_sectors;
	unsigned int discard_granularity;
	unsigned int write_zeroes_sectors;
};

static void vndp_read_limits(struct vndp_disk *vd, struct vndp_limits *lim)
{
	struct virtio_device *vdev = vd->vdev;
	u32 v;

	memset(lim, 0, sizeof(*lim));
	lim->lbs = SECTOR_SIZE;
	if (!virtio_cread_feature(vdev, VIRTIO_BLK_F_BLK_SIZE,
				  struct virtio_blk_config, blk_size, &v) &&
	    v >= SECTOR_SIZE && v <= PAGE_SIZE && is_power_of_2(v))
		lim->lbs = v;
	lim->max_segments = vd->sg_elems;
	lim->max_seg_size = vd->seg_bytes;
	if (virtio_has_feature(vdev, VIRTIO_BLK_F_DISCARD)) {
		virtio_cread(vdev, struct virtio_blk_config, max_discard_sectors,
			     &v);
		lim->discard_sectors = v ? v : UINT_MAX;
		virtio_cread(vdev, struct virtio_blk_config,
			     discard_sector_alignment, &v);
		lim->discard_granularity = v ? v << SECTOR_SHIFT : lim->lbs;
	}
	if (virtio_has_feature(vdev, VIRTIO_BLK_F_WRITE_ZEROES)) {
		virtio_cread(vdev, struct virtio_blk_config,
			     max_write_zeroes_sectors, &v);
		lim->write_zeroes_sectors = v ? v : UINT_MAX;
	}
}

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 9, 0)
static void vndp_apply_limits(struct request_queue *q,
			      const struct vndp_limits *lim)
{
	blk_queue_logical_block_size(q, lim->lbs);
	blk_queue_physical_block_size(q, lim->lbs);
	blk_queue_io_min(q, lim->lbs);
	blk_queue_max_segments(q, lim->max_segments);
	blk_queue_max_segment_size(q, lim->max_seg_size);
	blk_queue_max_hw_sectors(q, UINT_MAX);
	if (lim->discard_sectors) {
		blk_queue_max_discard_sectors(q, lim->discard_sectors);
		blk_queue_max_discard_segments(q, 1);
		q->limits.discard_granularity = lim->discard_granularity;
	}
	if (lim->write_zeroes_sectors)
		blk_queue_max_write_zeroes_sectors(q, lim->write_zeroes_sectors);
}
#else
static void vndp_to_queue_limits(const struct vndp_limits *lim,
				 struct queue_limits *ql)
{
	ql->logical_block_size = lim->lbs;
	ql->physical_block_size = lim->lbs;
	ql->io_min = lim->lbs;
	ql->max_segments = lim->max_segments;
	ql->max_segment_size = lim->max_seg_size;
	ql->max_hw_sectors = UINT_MAX;
	ql->max_hw_discard_sectors = lim->discard_sectors;
	ql->max_discard_segments = 1;
	ql->discard_granularity = lim->discard_granularity;
	ql->max_write_zeroes_sectors = lim->write_zeroes_sectors;
}
#endif

/* ---- set-up and tear-down ----------------------------------------------- */

static int vndp_init_vqs(struct vndp_disk *vd)
{
	struct virtio_device *vdev = vd->vdev;
	vq_callback_t **callbacks;
	struct virtqueue **vqs;
	const char **names;
	unsigned int i;
	u16 num = 1;
	int err;

	if (virtio_has_feature(vdev, VIRTIO_BLK_F_MQ))
		virtio_cread(vdev, struct virtio_blk_config, num_queues, &num);
	num = clamp_t(u16, num, 1, min_t(unsigned int, nr_cpu_ids, 64));

	vd->vqs = kcalloc(num, sizeof(*vd->vqs), GFP_KERNEL);
	vqs = kcalloc(num, sizeof(*vqs), GFP_KERNEL);
	callbacks = kcalloc(num, sizeof(*callbacks), GFP_KERNEL);
	names = kcalloc(num, sizeof(*names), GFP_KERNEL);
	err = -ENOMEM;
	if (!vd->vqs || !vqs || !callbacks || !names)
		goto out;
	for (i = 0; i < num; i++) {
		spin_lock_init(&vd->vqs[i].lock);
		snprintf(vd->vqs[i].name, sizeof(vd->vqs[i].name), "req.%u", i);
		callbacks[i] = vndp_vq_done;
		names[i] = vd->vqs[i].name;
	}
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0)
	{
		struct virtqueue_info *info = kcalloc(num, sizeof(*info),
						      GFP_KERNEL);

		if (!info)
			goto out;
		for (i = 0; i < num; i++) {
			info[i].name = names[i];
			info[i].callback = callbacks[i];
		}
		err = virtio_find_vqs(vdev, num, vqs, info, NULL);
		kfree(info);
	}
#else
	err = virtio_find_vqs(vdev, num, vqs, callbacks, names, NULL);
#endif
	if (err)
		goto out;
	for (i = 0; i < num; i++)
		vd->vqs[i].vq = vqs[i];
	vd->num_vqs = num;
out:
	kfree(names);
	kfree(callbacks);
	kfree(vqs);
	if (err) {
		kfree(vd->vqs);
		vd->vqs = NULL;
	}
	return err;
}

static void vndp_del_vqs(struct vndp_disk *vd)
{
	vd->vdev->config->del_vqs(vd->vdev);
	kfree(vd->vqs);
	vd->vqs = NULL;
}

/* Segment limits: the device's, and a chain no longer than the ring. */
static void vndp_read_seg_limits(struct vndp_disk *vd)
{
	unsigned int i, ring = virtqueue_get_vring_size(vd->vqs[0].vq);
	u32 v;

	for (i = 1; i < vd->num_vqs; i++)
		ring = min(ring, virtqueue_get_vring_size(vd->vqs[i].vq));
	/* No chain may be longer than the ring, indirect or not. */
	vd->ring = ring;
	if (virtio_cread_feature(vd->vdev, VIRTIO_BLK_F_SEG_MAX,
				 struct virtio_blk_config, seg_max, &v) || !v)
		v = 1;
	vd->sg_elems = min3(v, ring > 2 ? ring - 2 : 1u, 254u);
	if (virtio_cread_feature(vd->vdev, VIRTIO_BLK_F_SIZE_MAX,
				 struct virtio_blk_config, size_max, &v) ||
	    v < PAGE_SIZE)
		v = U32_MAX & PAGE_MASK;
	vd->seg_bytes = v;
	/* The char device's plain I/O: 1 MiB, less when segments are few. */
	vd->io_max = min_t(u64, SZ_1M, (u64)(vd->sg_elems > 2 ?
			   vd->sg_elems - 2 : 1) * min_t(u32, v, SZ_1M));
	vd->io_max = round_down(vd->io_max, PAGE_SIZE);
}

static void vndp_disk_name(int index, char *buf)
{
	/* vndpa .. vndpz, then vndpaa ..; never a virtio_blk vdX name. */
	if (index < 26)
		snprintf(buf, DISK_NAME_LEN, VNDP_DISK_PREFIX "%c", 'a' + index);
	else
		snprintf(buf, DISK_NAME_LEN, VNDP_DISK_PREFIX "%c%c",
			 'a' + index / 26 - 1, 'a' + index % 26);
}

static const struct block_device_operations vndp_bdev_ops = {
	.owner = THIS_MODULE,
};

static void vndp_cdev_dev_release(struct device *dev)
{
	struct vndp_disk *vd = container_of(dev, struct vndp_disk, cdev_dev);

	ida_free(&vndp_ida, vd->index);
	kfree(vd);
}

void vndp_disk_put(struct vndp_disk *vd)
{
	put_device(&vd->cdev_dev);
}

static int vndp_probe(struct virtio_device *vdev)
{
	struct vndp_limits lim;
	struct vndp_disk *vd;
	u64 capacity;
	int index, err;

	if (!vdev->config->get) {
		dev_err(&vdev->dev, "config space access is not supported\n");
		return -EINVAL;
	}
	index = ida_alloc_max(&vndp_ida, VNDP_MAX_DISKS - 1, GFP_KERNEL);
	if (index < 0)
		return index;
	vd = kzalloc(sizeof(*vd), GFP_KERNEL);
	if (!vd) {
		ida_free(&vndp_ida, index);
		return -ENOMEM;
	}
	/* From here on put_device() frees vd and the index. */
	device_initialize(&vd->cdev_dev);
	vd->cdev_dev.release = vndp_cdev_dev_release;
	vd->index = index;
	vd->vdev = vdev;
	vdev->priv = vd;
	init_rwsem(&vd->gate);
	INIT_LIST_HEAD(&vd->files);
	spin_lock_init(&vd->files_lock);
	INIT_WORK(&vd->config_work, vndp_config_work);
	vndp_disk_name(index, vd->name);
	err = dev_set_name(&vd->cdev_dev, "%s", vd->name);
	if (err)
		goto out_put;

	err = vndp_init_vqs(vd);
	if (err)
		goto out_put;
	vndp_read_seg_limits(vd);

	vd->tag_set.ops = &vndp_mq_ops;
	vd->tag_set.nr_hw_queues = vd->num_vqs;
	vd->tag_set.queue_depth = min(virtqueue_get_vring_size(vd->vqs[0].vq),
				      128u);
	vd->tag_set.numa_node = NUMA_NO_NODE;
	vd->tag_set.flags = BLK_MQ_F_SHOULD_MERGE;
	vd->tag_set.cmd_size = sizeof(struct vndp_cmd) +
			       sizeof(struct scatterlist) * vd->sg_elems;
	vd->tag_set.driver_data = vd;
	err = blk_mq_alloc_tag_set(&vd->tag_set);
	if (err)
		goto out_del_vqs;

	vndp_read_limits(vd, &lim);
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 9, 0)
	{
		struct queue_limits ql = {};

		vndp_to_queue_limits(&lim, &ql);
		vd->disk = blk_mq_alloc_disk(&vd->tag_set, &ql, vd);
	}
#else
	vd->disk = blk_mq_alloc_disk(&vd->tag_set, vd);
#endif
	if (IS_ERR(vd->disk)) {
		err = PTR_ERR(vd->disk);
		goto out_free_tags;
	}
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 9, 0)
	vndp_apply_limits(vd->disk->queue, &lim);
	if (virtio_has_feature(vdev, VIRTIO_BLK_F_FLUSH))
		blk_queue_write_cache(vd->disk->queue, true, false);
#else
	/* 6.9+: a volatile write cache is a queue limit feature flag. */
#endif
	vd->disk->major = vndp_major;
	vd->disk->first_minor = index << VNDP_PART_SHIFT;
	vd->disk->minors = 1 << VNDP_PART_SHIFT;
	vd->disk->fops = &vndp_bdev_ops;
	vd->disk->private_data = vd;
	strscpy(vd->disk->disk_name, vd->name, DISK_NAME_LEN);
	virtio_cread(vdev, struct virtio_blk_config, capacity, &capacity);
	set_capacity(vd->disk, capacity);
	if (virtio_has_feature(vdev, VIRTIO_BLK_F_RO))
		set_disk_ro(vd->disk, true);

	virtio_device_ready(vdev);
	err = vndp_ndp_probe(vd);
	if (err)
		dev_info(&vdev->dev, "%s: NDP probe failed (%d): plain disk\n",
			 vd->name, err);

	err = device_add_disk(&vdev->dev, vd->disk, NULL);
	if (err)
		goto out_reset;
	err = vndp_cdev_add(vd);
	if (err)
		goto out_del_disk;
	dev_info(&vdev->dev, "%s: %llu sectors of %u bytes, %u queue%s, %s%s\n",
		 vd->name, capacity, lim.lbs, vd->num_vqs,
		 vd->num_vqs == 1 ? "" : "s", vd->ndp ? "NDP" : "no NDP",
		 virtio_has_feature(vdev, VIRTIO_BLK_F_RO) ? ", read-only" : "");
	return 0;

out_del_disk:
	del_gendisk(vd->disk);
out_reset:
	virtio_reset_device(vdev);
	put_disk(vd->disk);
out_free_tags:
	blk_mq_free_tag_set(&vd->tag_set);
out_del_vqs:
	vndp_del_vqs(vd);
out_put:
	vdev->priv = NULL;
	vndp_disk_put(vd);
	return err;
}

static void vndp_remove(struct virtio_device *vdev)
{
	struct vndp_disk *vd = vdev->priv;

	/* Char side first: no new request after this, open files see dead. */
	vndp_cdev_del(vd);
	flush_work(&vd->config_work);
	/* Waits for every request in flight, passthrough ones included. */
	del_gendisk(vd->disk);
	virtio_reset_device(vdev);
	put_disk(vd->disk);
	blk_mq_free_tag_set(&vd->tag_set);
	vndp_del_vqs(vd);
	vdev->priv = NULL;
	/* Open files keep vd (not the disk) until they are released. */
	vndp_disk_put(vd);
}

static const struct virtio_device_id vndp_id_table[] = {
	{ VIRTIO_ID_BLOCK, VIRTIO_DEV_ANY_ID },
	{ 0 },
};
MODULE_DEVICE_TABLE(virtio, vndp_id_table);

static unsigned int vndp_features[] = {
	VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_SIZE_MAX, VIRTIO_BLK_F_RO,
	VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_MQ,
	VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_WRITE_ZEROES,
};

struct virtio_driver vndp_virtio_driver = {
	.feature_table = vndp_features,
	.feature_table_size = ARRAY_SIZE(vndp_features),
	.driver.name = VNDP_NAME,
	.driver.owner = THIS_MODULE,
	.id_table = vndp_id_table,
	.probe = vndp_probe,
	.remove = vndp_remove,
	.config_changed = vndp_config_changed,
};

int vndp_blk_init(void)
{
	vndp_major = register_blkdev(0, VNDP_DISK_PREFIX);
	return vndp_major < 0 ? vndp_major : 0;
}

void vndp_blk_exit(void)
{
	unregister_blkdev(vndp_major, VNDP_DISK_PREFIX);
}
