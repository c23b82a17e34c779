/* SPDX-License-Identifier: MIT */
/*
 * The running daemon: its workers, throttle groups and served disks, which
 * change at run time (control socket: disk_add, disk_remove).  Control
 * thread only: the main loop and the control methods run there, one after
 * the other, so nothing here takes a lock.
 */
#ifndef ROSENBRIDGED_DAEMON_H
#define ROSENBRIDGED_DAEMON_H

#include "config.h"
#include "device.h"

#include <rosen/rpc.h>

struct daemon {
	const struct config *cfg;
	struct rb_workers *workers;
	struct rb_qos_registry *qos;
	struct rb_device *devs[MAX_DISKS];
	unsigned ndevs;
	struct rb_rpc_server *rpc;
	uint64_t started_ms; /* CLOCK_MONOTONIC */
};

/*
 * Serves one more disk: a's name (given, or the first free vmN), socket and
 * image must be new to the daemon; a name that is an existing throttle
 * group's is refused unless the disk joins that group by name.
 * *out_name gets the name.  0 or -errno with err.
 */
int daemon_add_disk(struct daemon *d, const struct disk_arg *a, char *out_name, size_t namelen,
		    char *err, size_t errlen);
/* Stops serving disk i: rings drained, frontend disconnected, socket removed. */
void daemon_remove_disk(struct daemon *d, unsigned i);
/* The disk named `name` (its index in *index), or NULL. */
struct rb_device *daemon_find(struct daemon *d, const char *name, unsigned *index);

/* control_rpc.c: the control socket's methods on this daemon. */
int control_rpc_register(struct daemon *d);

#endif
