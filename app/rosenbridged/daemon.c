/* SPDX-License-Identifier: MIT */
/*
 * The set of served disks, at start and at run time.  Every disk passes the
 * same checks however it came (flag, config file, disk_add): a valid and
 * unique name, its own socket and image.
 */
#include "daemon.h"

#include <rosen/log.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rb_device *daemon_find(struct daemon *d, const char *name, unsigned *index)
{
	for (unsigned i = 0; i < d->ndevs; i++) {
		if (!strcmp(rb_device_name(d->devs[i]), name)) {
			if (index)
				*index = i;
			return d->devs[i];
		}
	}
	return NULL;
}

/* Two paths naming one file (a symlink, "./a" and "a"). */
static bool same_file(const char *a, const char *b)
{
	char ra[PATH_MAX], rb[PATH_MAX];

	if (!strcmp(a, b))
		return true;
	return realpath(a, ra) && realpath(b, rb) && !strcmp(ra, rb);
}

int daemon_add_disk(struct daemon *d, const struct disk_arg *a, char *out_name, size_t namelen,
		    char *err, size_t errlen)
{
	char name[RB_QOS_NAME_MAX];
	int rc;

	if (d->ndevs == MAX_DISKS) {
		snprintf(err, errlen, "the daemon serves %d disks already (the most it takes)", MAX_DISKS);
		return -ENOSPC;
	}
	if (disk_arg_check(a, "disk", err, errlen))
		return -EINVAL;
	snprintf(name, sizeof(name), "%s", a->name);
	for (unsigned n = 0; !name[0]; n++) {
		snprintf(name, sizeof(name), "vm%u", n);
		if (daemon_find(d, name, NULL))
			name[0] = 0;
	}
	if (daemon_find(d, name, NULL)) {
		snprintf(err, errlen, "a disk named '%s' exists already", name);
		return -EEXIST;
	}
	for (unsigned i = 0; i < d->ndevs; i++) {
		const char *other = rb_device_name(d->devs[i]);
		if (same_file(a->socket, rb_device_socket(d->devs[i]))) {
			snprintf(err, errlen, "socket %s is disk '%s''s already", a->socket, other);
			return -EEXIST;
		}
		if (same_file(a->disk, rb_disk_path(rb_device_disk(d->devs[i])))) {
			snprintf(err, errlen, "image %s is served as disk '%s' already", a->disk, other);
			return -EEXIST;
		}
	}
	/* A disk without a named group gets its own, named after it: a group
	 * of that name that other disks joined is not this disk's. */
	if (!a->throttle.group[0]) {
		struct rb_qos_group *g = rb_qos_group_find(d->qos, name);
		if (g) {
			rb_qos_group_put(g);
			snprintf(err, errlen,
				 "'%s' is the name of a throttle group other disks joined (a disk's own group carries its name): choose another name",
				 name);
			return -EEXIST;
		}
	}
	struct rb_device_opts o = {
		.disk = {.path = a->disk, .readonly = a->readonly, .cache = a->cache,
			 .queues = a->queues, .qos = d->qos, .throttle = &a->throttle,
			 .uncharged_program_io = d->cfg->uncharged_program_io,
			 .ndp_inflight = d->cfg->ndp_inflight,
			 .no_inline_reads = d->cfg->no_inline_reads},
		.socket = a->socket,
	};
	snprintf(o.name, sizeof(o.name), "%s", name);
	rc = rb_device_new(&o, d->workers, &d->devs[d->ndevs], err, errlen);
	if (rc)
		return rc;
	d->ndevs++;
	if (out_name)
		snprintf(out_name, namelen, "%s", name);
	return 0;
}

void daemon_remove_disk(struct daemon *d, unsigned i)
{
	if (i >= d->ndevs)
		return;
	rb_device_free(d->devs[i]);
	/* The order of the rest stays (disk_list shows them as added). */
	memmove(&d->devs[i], &d->devs[i + 1], (d->ndevs - i - 1) * sizeof(d->devs[0]));
	d->ndevs--;
	d->devs[d->ndevs] = NULL;
}
