/* SPDX-License-Identifier: MIT */
/*
 * A served VM disk: one rb_disk (lib/io) behind one vhost-user server
 * (lib/vhost).  This glue is the only place that knows both.
 */
#ifndef ROSENBRIDGED_DEVICE_H
#define ROSENBRIDGED_DEVICE_H

#include <rosen/io.h>
#include <rosen/vhost.h>

struct rb_device_opts {
	struct rb_disk_opts disk;
	const char *socket;
	char name[64];
};

struct rb_device;

int rb_device_new(const struct rb_device_opts *o, struct rb_workers *workers,
		  struct rb_device **out, char *err, size_t errlen);
/* Stops the rings (in-flight I/O completes), removes the socket. */
/* Shutdown with a successor expected: rb_disk_handover(). */
void rb_device_handover(struct rb_device *dev);
void rb_device_free(struct rb_device *dev);
/* Logs the disk's counters (I/Os by path, throttling), `when` first. */
void rb_device_log_stats(const struct rb_device *dev, const char *when);
/* The frontends its socket accepted so far (metrics). */
uint64_t rb_device_connects(const struct rb_device *dev);
int rb_device_poll_fd(const struct rb_device *dev);
void rb_device_handle(struct rb_device *dev);
/* Disconnects the VM if its guest memory shrank (--allow-unsealed-memory). */
void rb_device_check_memory(struct rb_device *dev);

/* Its name (in logs, metrics and the control socket), socket path and
 * disk, and whether a frontend is connected now. */
const char *rb_device_name(const struct rb_device *dev);
const char *rb_device_socket(const struct rb_device *dev);
struct rb_disk *rb_device_disk(struct rb_device *dev);
bool rb_device_connected(const struct rb_device *dev);
/* The frontend's guest memory (NULL: none connected). */
const struct rb_vhost_mem *rb_device_guest_mem(const struct rb_device *dev);

/*
 * disk_resize: the image's size read again and the new capacity announced
 * to the frontend (vhost-user config-change message, which QEMU passes on
 * to the guest as a config interrupt).  *announced says whether it went
 * out; note says why not.  0 or -errno with err.
 */
int rb_device_resize(struct rb_device *dev, uint64_t *old_sectors, uint64_t *new_sectors,
		     bool *announced, char *note, size_t notelen, char *err, size_t errlen);

#endif
