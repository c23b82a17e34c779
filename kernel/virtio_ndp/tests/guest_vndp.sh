#!/bin/sh
# Runs inside the e2e guest (tests/e2e/guest/mkinitramfs.sh): disk A
# (rosenbridged, NDP) and disk B (qemu-storage-daemon, no NDP) are moved
# from virtio_blk to virtio_ndp, then block I/O and the char device.
. /lib/e2e.sh

dev_of() { # the virtioN whose virtio_blk disk is $1
  for d in /sys/bus/virtio/devices/virtio*; do
    [ -e "$d/block/$1" ] && { basename "$d"; return; }
  done
}
wait_dev /dev/vda
wait_dev /dev/vdb
wait_dev /dev/vdc
A=$(dev_of vda)
B=$(dev_of vdb)
C=$(dev_of vdc)
echo "# vda is $A, vdb is $B, vdc is $C (read-only)"
run insmod /lib/virtio_ndp.ko
ls /sys/bus/virtio/drivers/
if [ -e /sys/bus/virtio/devices/$A/driver_override ]; then
  echo "# virtio bus has driver_override"
else
  echo "# virtio bus has no driver_override (6.1): unbind + bind"
fi
for v in $A $B $C; do
  run sh -c "echo $v > /sys/bus/virtio/drivers/virtio_blk/unbind"
  run sh -c "echo $v > /sys/bus/virtio/drivers/virtio_ndp/bind"
done
wait_dev /dev/vndpa
wait_dev /dev/vndpb
wait_dev /dev/vndpc
dmesg | grep -i virtio_ndp
check chardev_a test -c /dev/virtio-ndp/vndpa
check chardev_b test -c /dev/virtio-ndp/vndpb
check sysfs_ro_a test "$(cat /sys/block/vndpa/ro)" = 0
check sysfs_ro_c test "$(cat /sys/block/vndpc/ro)" = 1
check ro_c vndp_check ro /dev/virtio-ndp/vndpc
check blk_write_ro_refused sh -c '! blkcheck write /dev/vndpc 0 4K 1'
echo "# queues: $(ls /sys/block/vndpa/mq)"
# Disk B holds an ext4 made on the host (when the ext4 modules are here).
if [ -e /lib/modules/ext4.ko ]; then
  for m in crc16 crc32c_generic mbcache jbd2 ext4; do insmod /lib/modules/$m.ko; done
  mkdir -p /mnt
  check mount mount -t ext4 /dev/vndpb /mnt
  check fs_write sh -c 'dd if=/dev/urandom of=/mnt/f bs=64k count=32 2>/dev/null && sync && cp /mnt/f /tmp/f'
  check fs_busy vndp_check busy /dev/virtio-ndp/vndpb /dev/vndpb
  check umount umount /mnt
  check mount_again mount -t ext4 /dev/vndpb /mnt
  check fs_read_back cmp /mnt/f /tmp/f
  check umount_again umount /mnt
fi
check blk_write blkcheck write /dev/vndpa 8M 2M 7
check blk_verify blkcheck verify /dev/vndpa 8M 2M 7
check blk_flush blkcheck flush /dev/vndpa
check blk_discard blkcheck discard /dev/vndpa 8M 64K
check blk_zeroout blkcheck zeroout /dev/vndpa 9M 64K
check blk_zeros blkcheck zeros /dev/vndpa 9M 64K
check blk_verify_rest blkcheck verify /dev/vndpa 0x980000 512K 7
check blk_b_write blkcheck write /dev/vndpb 1M 1M 9
check blk_b_verify blkcheck verify /dev/vndpb 1M 1M 9
check ndp_a vndp_check ndp /dev/virtio-ndp/vndpa /lib/rosen/ndp_progs.o
check plain_b vndp_check plain /dev/virtio-ndp/vndpb
check busy_a vndp_check busy /dev/virtio-ndp/vndpa /dev/vndpa
# rmmod is refused while a char device is open, works after.
vndp_check hold /dev/virtio-ndp/vndpa 3 &
usleep 500000
check rmmod_refused_while_open sh -c '! rmmod virtio_ndp'
wait
check rmmod rmmod virtio_ndp
check gone sh -c '! test -e /dev/vndpa'
check insmod_again insmod /lib/virtio_ndp.ko
wait_dev /dev/vndpa
wait_dev /dev/vndpb
check again_verify blkcheck verify /dev/vndpa 0x980000 512K 7
check again_ndp_info vndp_check plain /dev/virtio-ndp/vndpb
# Back to virtio_blk.
check rebind_blk sh -c "echo $B > /sys/bus/virtio/drivers/virtio_ndp/unbind && echo $B > /sys/bus/virtio/drivers/virtio_blk/bind"
i=0; while [ ! -e /sys/bus/virtio/devices/$B/block ] && [ $i -lt 50 ]; do usleep 100000; i=$((i+1)); done
check blk_again ls /sys/bus/virtio/devices/$B/block
check rmmod_final rmmod virtio_ndp
dmesg | grep -E "BUG|WARNING|Oops|virtio_ndp|vndp" | tail -40
dmesg | grep -qE "BUG|WARNING|Oops" && fail "kernel warnings"
finish
