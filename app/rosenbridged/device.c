/* SPDX-License-Identifier: MIT */
/*
 * Glue between the vhost-user server and the disk: virtio-blk features and
 * config space for the frontend, and rings handed to the disk's queues as
 * virtqueues that translate guest-physical addresses through the frontend's
 * memory table.
 */
#include "device.h"

#include <rosen/log.h>
#include <rosen/vhost.h>
#include <rosen/virtio.h>

#include <errno.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <stdlib.h>
#include <string.h>

struct rb_device {
	char name[64];
	char *socket;
	struct rb_disk *disk;
	struct rb_vhost_server *srv;
	/* Per ring: the heads its inflight log gave to resubmit (the ring
	 * reads them while it runs; replaced only while it is stopped). */
	uint16_t *resubmit[RB_VHOST_MAX_QUEUES];
	unsigned resubmit_cap[RB_VHOST_MAX_QUEUES];
};

static uint64_t dev_features(void *opaque)
{
	struct rb_device *d = opaque;

	return rb_disk_blk_features(d->disk);
}

static unsigned dev_num_queues(void *opaque)
{
	struct rb_device *d = opaque;

	return rb_disk_num_queues(d->disk);
}

static void dev_get_config(void *opaque, uint8_t *buf, uint32_t offset, uint32_t len)
{
	struct rb_device *d = opaque;
	struct rb_virtio_blk_config cfg;

	rb_disk_blk_config(d->disk, &cfg);
	/* Bytes past our config struct read as zero (buf is pre-zeroed). */
	if (offset < sizeof(cfg)) {
		size_t n = sizeof(cfg) - offset < len ? sizeof(cfg) - offset : len;
		memcpy(buf, (const uint8_t *)&cfg + offset, n);
	}
}

static void *translate(void *ctx, uint64_t gpa, uint64_t len)
{
	return rb_vhost_gpa_to_host(ctx, gpa, len);
}

static int dev_ring_start(void *opaque, const struct rb_vhost_ring *r)
{
	struct rb_device *d = opaque;
	struct rb_virtq vq;
	int rc;

	rc = rb_virtq_init(&vq, r->size, r->desc, r->avail, r->used, r->last_avail,
			   r->features & (1ull << RB_VIRTIO_F_EVENT_IDX),
			   r->features & (1ull << RB_VIRTIO_F_INDIRECT_DESC), translate,
			   (void *)r->mem);
	if (rc)
		return rc;
	if (r->inflight) {
		char err[256];
		unsigned i = r->index;
		if (d->resubmit_cap[i] < r->size) {
			uint16_t *b = realloc(d->resubmit[i], sizeof(*b) * r->size);
			if (!b)
				return -ENOMEM;
			d->resubmit[i] = b;
			d->resubmit_cap[i] = r->size;
		}
		rc = rb_virtq_inflight_start(&vq, r->inflight, r->inflight_desc_num, d->resubmit[i],
					     err, sizeof(err));
		if (rc) {
			rb_err(d->name, "ring %u: %s", i, rc == -ENOMEM ? "out of memory" : err);
			return rc;
		}
		if (vq.n_resubmit)
			rb_info(d->name, "ring %u: resubmitting %u request%s in flight when the last daemon stopped (used index %u)",
				i, vq.n_resubmit, vq.n_resubmit == 1 ? "" : "s", vq.used_idx);
	}
	rc = rb_disk_queue_start(d->disk, r->index, &vq, r->kick_fd, r->call_fd);
	/*
	 * A ring that was used before (a reconnect, a new call fd): one call,
	 * in case the guest missed one.  QEMU 7.2 starts a ring with its
	 * masked notifier as the call fd and discards what was signalled
	 * there before it hands us the guest's (vhost_virtqueue_start, then
	 * the unmask): a request completed in between, a resubmitted one
	 * most likely, would never interrupt the guest.  A spurious call only
	 * makes the driver look at the used ring.
	 */
	if (!rc && r->call_fd >= 0 && vq.used_idx)
		eventfd_write(r->call_fd, 1);
	return rc;
}

static uint16_t dev_ring_stop(void *opaque, unsigned index)
{
	struct rb_device *d = opaque;

	return rb_disk_queue_stop(d->disk, index);
}

static const struct rb_vhost_dev_ops blk_ops = {
	.features = dev_features,
	.num_queues = dev_num_queues,
	.get_config = dev_get_config,
	.ring_start = dev_ring_start,
	.ring_stop = dev_ring_stop,
};

int rb_device_new(const struct rb_device_opts *o, struct rb_workers *workers,
		  struct rb_device **out, char *err, size_t errlen)
{
	struct rb_device *d = calloc(1, sizeof(*d));
	struct rb_disk_opts dopts = o->disk;
	int rc;

	*out = NULL;
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(d->name, sizeof(d->name), "%s", o->name);
	d->socket = strdup(o->socket);
	if (!d->socket) {
		free(d);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	dopts.name = d->name;
	rc = rb_disk_open(&dopts, workers, &d->disk, err, errlen);
	if (rc) {
		free(d->socket);
		free(d);
		return rc;
	}
	rc = rb_vhost_server_new(o->socket, &blk_ops, d, d->name, &d->srv, err, errlen);
	if (rc) {
		rb_disk_free(d->disk);
		free(d->socket);
		free(d);
		return rc;
	}
	rb_info(d->name, "listening on %s", o->socket);
	*out = d;
	return 0;
}

void rb_device_log_stats(const struct rb_device *d, const char *when)
{
	struct rb_disk_stats s;
	rb_disk_stats(d->disk, &s);
	rb_info(d->name, "%s %llu reads (%llu MiB), %llu writes (%llu MiB), %llu flushes, %llu discards, %llu write-zeroes; %llu errors, %llu malformed requests",
		when, (unsigned long long)s.reads, (unsigned long long)(s.bytes_read >> 20),
		(unsigned long long)s.writes, (unsigned long long)(s.bytes_written >> 20),
		(unsigned long long)s.flushes, (unsigned long long)s.discards,
		(unsigned long long)s.write_zeroes, (unsigned long long)s.errors,
		(unsigned long long)s.bad_chains);
	rb_info(d->name, "storage I/Os: %llu by the guest, %llu by its programs (%llu MiB) in %llu NDP requests, %llu hops",
		(unsigned long long)s.guest_ios, (unsigned long long)s.program_ios,
		(unsigned long long)(s.program_bytes >> 20), (unsigned long long)s.ndp_requests,
		(unsigned long long)s.ndp_hops);
	if (s.throttled) {
		static const char *const names[6] = {"bps-total", "bps-read", "bps-write",
						      "iops-total", "iops-read", "iops-write"};
		char lv[256] = "";
		size_t at = 0;
		for (int i = 0; i < 6; i++)
			if (s.bucket_level[i] >= 0 && at < sizeof(lv))
				at += (size_t)snprintf(lv + at, sizeof(lv) - at, " %s=%.0f", names[i],
						       s.bucket_level[i]);
		rb_info(d->name, "throttle group '%s': %llu I/Os waited, %.3f s in all; bucket levels:%s",
			s.throttle_group, (unsigned long long)s.throttle_delayed, s.throttle_wait_ns / 1e9,
			lv[0] ? lv : " (none limited)");
	}
}

void rb_device_handover(struct rb_device *d)
{
	rb_disk_handover(d->disk);
}

void rb_device_free(struct rb_device *d)
{
	if (!d)
		return;
	rb_vhost_server_free(d->srv);
	rb_device_log_stats(d, "served");
	rb_disk_free(d->disk);
	for (unsigned i = 0; i < RB_VHOST_MAX_QUEUES; i++)
		free(d->resubmit[i]);
	free(d->socket);
	free(d);
}

uint64_t rb_device_connects(const struct rb_device *d)
{
	return rb_vhost_server_connects(d->srv);
}

bool rb_device_connected(const struct rb_device *d)
{
	return rb_vhost_server_connected(d->srv);
}

int rb_device_poll_fd(const struct rb_device *d)
{
	return rb_vhost_server_poll_fd(d->srv);
}

void rb_device_handle(struct rb_device *d)
{
	rb_vhost_server_handle(d->srv);
}

void rb_device_check_memory(struct rb_device *d)
{
	rb_vhost_server_check_memory(d->srv);
}

const char *rb_device_socket(const struct rb_device *d)
{
	return d->socket;
}

struct rb_disk *rb_device_disk(struct rb_device *d)
{
	return d->disk;
}

const char *rb_device_name(const struct rb_device *d)
{
	return d->name;
}

const struct rb_vhost_mem *rb_device_guest_mem(const struct rb_device *d)
{
	return rb_vhost_server_mem(d->srv);
}

int rb_device_resize(struct rb_device *d, uint64_t *old_sectors, uint64_t *new_sectors,
		     bool *announced, char *note, size_t notelen, char *err, size_t errlen)
{
	int rc = rb_disk_resize(d->disk, old_sectors, new_sectors, err, errlen);

	*announced = false;
	note[0] = 0;
	if (rc)
		return rc;
	/* Announced even when the size did not change: a frontend that
	 * missed an earlier announcement reads the config space again. */
	rc = rb_vhost_server_config_changed(d->srv, note, notelen);
	*announced = rc == 0;
	if (rc == 0)
		rb_info(d->name, "capacity %llu sectors announced to the frontend",
			(unsigned long long)*new_sectors);
	else if (rc != -ENOTCONN)
		rb_warn(d->name, "capacity %llu sectors not announced: %s",
			(unsigned long long)*new_sectors, note);
	return 0;
}
