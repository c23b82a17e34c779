// SPDX-License-Identifier: (GPL-2.0 OR MIT)
/*
 * virtio_ndp.ko: a virtio-blk driver (device id 2) that also gives every
 * disk a char device for NDP (near-data processing) requests.  Module
 * set-up and tear-down only; the rest lives in vndp_*.c.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/workqueue.h>

#include "vndp.h"

/* Completion work of raw writes (page-cache invalidation, unclaim). */
struct workqueue_struct *vndp_wq;

static int __init vndp_init(void)
{
	int err;

	vndp_wq = alloc_workqueue("virtio_ndp", WQ_MEM_RECLAIM, 0);
	if (!vndp_wq)
		return -ENOMEM;
	err = vndp_blk_init();
	if (err)
		goto out_wq;
	err = vndp_cdev_init();
	if (err)
		goto out_blk;
	err = register_virtio_driver(&vndp_virtio_driver);
	if (err)
		goto out_cdev;
	return 0;

out_cdev:
	vndp_cdev_exit();
out_blk:
	vndp_blk_exit();
out_wq:
	destroy_workqueue(vndp_wq);
	return err;
}

static void __exit vndp_exit(void)
{
	unregister_virtio_driver(&vndp_virtio_driver);
	vndp_cdev_exit();
	vndp_blk_exit();
	/* Drains work items a released file's last write may have left. */
	destroy_workqueue(vndp_wq);
}

module_init(vndp_init);
module_exit(vndp_exit);

MODULE_DESCRIPTION("virtio-blk disks with a near-data-processing char device");
MODULE_AUTHOR("RosenBridge");
MODULE_LICENSE("Dual MIT/GPL");
