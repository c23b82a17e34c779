/* SPDX-License-Identifier: MIT */
/*
 * librosen's `kernel:/dev/virtio-ndp/<disk>` transport: inside a guest whose
 * disk is driven by the virtio_ndp kernel driver (kernel/virtio_ndp), the
 * library talks to the driver's character device instead of a virtqueue.
 * The kernel owns the rings; requests go down whole (SUBMIT), completions
 * come back in batches (REAP), and buffers live in the DMA area the driver
 * lets us mmap.  It never hands the driver a pointer outside that area.
 *
 * `file:PATH` is the same with a file on that disk's filesystem as the
 * device: the file is registered with the driver (REG_FILE), NDP requests
 * name it and use file offsets, plain reads and writes go through the
 * file itself (the guest's normal path).
 */
#include "guest_internal.h"

#include "virtio_ndp_dev.h"

#include <rosen/virtio_ndp.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

/* One request in flight: what the completion must deliver, and where. */
struct kreq {
	unsigned q;
	void *user;
	bool nd, write;
	uint8_t *stage; /* NDP: meta, scratch, data in the DMA area */
	uint32_t meta_len, scratch_len, data_len;
	void *scratch, *data;
	struct rb_guest_nd_result *res;
	struct kreq *next; /* in a queue's list of completions not yet polled */
	struct vndp_cpl cpl;
};

struct kdev {
	int fd;
	int file_fd;       /* file: the registered file (-1: a raw disk) */
	uint32_t file_key;
	uint64_t file_size;
	struct vndp_info info;
	void *area;
	size_t area_len;
	pthread_mutex_t lock; /* the completion lists below (REAP may return any queue's) */
	struct kreq *done_head[RB_GUEST_MAX_QUEUES], *done_tail[RB_GUEST_MAX_QUEUES];
};

static struct kdev *kd(const struct rb_guest_dev *d)
{
	return d->tp;
}

/* ---- requests ---------------------------------------------------------------------- */

static int k_errno(const char *what, int err)
{
	rb_guest_seterr("%s: %s", what, strerror(err));
	return -err;
}

static uint64_t area_off(const struct rb_guest_dev *d, const void *p)
{
	return (uint64_t)((const uint8_t *)p - d->dma_base);
}

static bool in_area(const struct rb_guest_dev *d, const void *p, size_t len)
{
	const uint8_t *b = p;
	return b >= d->dma_base && len <= d->dma_size && (size_t)(b - d->dma_base) <= d->dma_size - len;
}

/* Queues one request; on failure the caller still owns r. */
static int k_submit_one(struct rb_guest_dev *d, struct kreq *r, struct vndp_req *req)
{
	struct kdev *k = kd(d);
	struct vndp_submit s = {.reqs_ptr = (uint64_t)(uintptr_t)req, .nr = 1};

	req->user_data = (uint64_t)(uintptr_t)r;
	if (ioctl(k->fd, VNDP_IOC_SUBMIT, &s) < 0) {
		int e = errno;
		if (e == EAGAIN) {
			rb_guest_seterr("queue %u is full (%u requests in flight)", r->q, d->q[r->q].inflight);
			return -EAGAIN;
		}
		return k_errno("the driver refused the request", e);
	}
	d->q[r->q].inflight++;
	return 0;
}

/* A request that is already complete (file: plain I/O) joins its queue's
 * completion list like one the driver returned. */
static void complete_now(struct rb_guest_dev *d, struct kreq *r, int error, uint64_t bytes)
{
	struct kdev *k = kd(d);

	r->cpl.error = error;
	r->cpl.bytes = bytes;
	d->q[r->q].inflight++;
	pthread_mutex_lock(&k->lock);
	r->next = NULL;
	if (k->done_tail[r->q])
		k->done_tail[r->q]->next = r;
	else
		k->done_head[r->q] = r;
	k->done_tail[r->q] = r;
	pthread_mutex_unlock(&k->lock);
}

/* file: plain reads and writes are the file's own (page cache, the
 * guest's normal path); they complete at once. */
static int file_io(struct rb_guest_dev *d, struct kreq *r, enum rb_guest_op op, void *buf,
		   uint64_t offset, size_t len)
{
	struct kdev *k = kd(d);
	ssize_t n = 0;
	size_t done = 0;

	if (op == RB_GUEST_OP_FLUSH) {
		complete_now(d, r, fsync(k->file_fd) ? -errno : 0, 0);
		return 0;
	}
	while (done < len) {
		n = op == RB_GUEST_OP_READ ? pread(k->file_fd, (uint8_t *)buf + done, len - done, (off_t)(offset + done))
					   : pwrite(k->file_fd, (uint8_t *)buf + done, len - done, (off_t)(offset + done));
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	if (n < 0) {
		complete_now(d, r, -errno, done);
	} else {
		/* Past the end of the file reads as zeros, like a disk. */
		if (op == RB_GUEST_OP_READ && done < len)
			memset((uint8_t *)buf + done, 0, len - done);
		complete_now(d, r, 0, len);
	}
	return 0;
}

static int k_submit(struct rb_guest_dev *d, unsigned q, enum rb_guest_op op, void *buf,
		    uint64_t offset, size_t len, void *user)
{
	struct vndp_req req = {.offset = offset, .len = (uint32_t)len};

	req.op = op == RB_GUEST_OP_READ ? VNDP_OP_READ : op == RB_GUEST_OP_WRITE ? VNDP_OP_WRITE
										: VNDP_OP_FLUSH;
	if (op != RB_GUEST_OP_FLUSH) {
		if (!in_area(d, buf, len)) {
			rb_guest_seterr("buffer %p+%zu is not DMA memory from rb_guest_dma_alloc()", buf, len);
			return -EFAULT;
		}
		req.data_off = area_off(d, buf);
	}
	struct kreq *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->q = q;
	r->user = user;
	if (kd(d)->file_fd >= 0)
		return file_io(d, r, op, buf, offset, len);
	int rc = k_submit_one(d, r, &req);
	if (rc)
		free(r);
	return rc;
}

static int k_submit_nd(struct rb_guest_dev *d, unsigned q, bool write, const struct rb_guest_nd *nd,
		       struct rb_guest_nd_result *res, void *user)
{
	struct kreq *r = calloc(1, sizeof(*r));
	size_t stage_len = (size_t)nd->meta_len + nd->scratch_len + nd->data_len;

	if (!r)
		return -ENOMEM;
	r->stage = rb_guest_dma_alloc(d, stage_len ? stage_len : 1);
	if (!r->stage) {
		free(r);
		return -ENOMEM;
	}
	r->q = q;
	r->user = user;
	r->nd = true;
	r->write = write;
	r->meta_len = nd->meta_len;
	r->scratch_len = nd->scratch_len;
	r->data_len = nd->data_len;
	r->scratch = nd->scratch;
	r->data = nd->data;
	r->res = res;
	uint8_t *meta = r->stage, *scratch = meta + nd->meta_len, *data = scratch + nd->scratch_len;
	if (nd->meta_len)
		memcpy(meta, nd->meta, nd->meta_len);
	if (nd->scratch_len)
		memcpy(scratch, nd->scratch, nd->scratch_len);
	if (write && nd->data_len)
		memcpy(data, nd->data, nd->data_len);
	struct vndp_req req = {
		.op = write ? VNDP_OP_WRITE_ND : VNDP_OP_READ_ND, .offset = nd->offset,
		.len = nd->io_len, .handle = nd->handle, .data_off = area_off(d, data),
		.data_len = nd->data_len, .max_hops = nd->max_hops, .meta_off = area_off(d, meta),
		.meta_len = nd->meta_len, .scratch_off = area_off(d, scratch),
		.scratch_len = nd->scratch_len,
	};
	if (kd(d)->file_fd >= 0) {
		req.flags = VNDP_REQ_F_FILE;
		req.file_key = kd(d)->file_key;
	}
	int rc = k_submit_one(d, r, &req);
	if (rc) {
		rb_guest_dma_free(d, r->stage);
		free(r);
	}
	return rc;
}

/* A completion for the caller; frees r. */
static void deliver(struct rb_guest_dev *d, struct kreq *r, struct rb_guest_cpl *out)
{
	out->user = r->user;
	out->status = r->cpl.error == -EOPNOTSUPP ? -ENOTSUP : r->cpl.error;
	out->len = (uint32_t)r->cpl.bytes;
	if (r->nd) {
		if (r->cpl.error == 0) {
			uint8_t *scratch = r->stage + r->meta_len, *data = scratch + r->scratch_len;
			if (r->scratch_len)
				memcpy(r->scratch, scratch, r->scratch_len);
			if (!r->write && r->data_len && r->data)
				memcpy(r->data, data, r->data_len);
			r->res->status = r->cpl.status;
			r->res->hops = r->cpl.hops;
			r->res->retval = r->cpl.retval;
			r->res->bytes = r->cpl.bytes;
		}
		rb_guest_dma_free(d, r->stage);
	}
	d->q[r->q].inflight--;
	free(r);
}

/* Reaps what the driver has (waiting up to timeout_ms for one when
 * wait), sorting completions into their queues' lists. */
static int reap(struct rb_guest_dev *d, bool wait, int timeout_ms)
{
	struct kdev *k = kd(d);
	struct vndp_cpl cpl[64];
	struct vndp_reap rp = {.cpls_ptr = (uint64_t)(uintptr_t)cpl, .max = 64, .min = wait ? 1 : 0,
			       .timeout_ms = timeout_ms};

	if (ioctl(k->fd, VNDP_IOC_REAP, &rp) < 0 && errno != ETIMEDOUT && errno != EINTR)
		return k_errno("reaping completions", errno);
	for (unsigned i = 0; i < rp.got && i < 64; i++) {
		struct kreq *r = (struct kreq *)(uintptr_t)cpl[i].user_data;
		r->cpl = cpl[i];
		r->next = NULL;
		if (k->done_tail[r->q])
			k->done_tail[r->q]->next = r;
		else
			k->done_head[r->q] = r;
		k->done_tail[r->q] = r;
	}
	return (int)rp.got;
}

static int take(struct rb_guest_dev *d, unsigned q, struct rb_guest_cpl *cpl, unsigned max)
{
	struct kdev *k = kd(d);
	unsigned n = 0;

	while (n < max && k->done_head[q]) {
		struct kreq *r = k->done_head[q];
		k->done_head[q] = r->next;
		if (!k->done_head[q])
			k->done_tail[q] = NULL;
		deliver(d, r, &cpl[n++]);
	}
	return (int)n;
}

static int k_poll(struct rb_guest_dev *d, unsigned q, struct rb_guest_cpl *cpl, unsigned max)
{
	struct kdev *k = kd(d);
	int n, rc = 0;

	pthread_mutex_lock(&k->lock);
	n = take(d, q, cpl, max);
	if (n == 0 && d->q[q].inflight) {
		rc = reap(d, false, 0);
		n = take(d, q, cpl, max);
	}
	pthread_mutex_unlock(&k->lock);
	return rc < 0 ? rc : n;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits for a completion of queue q.  Poll mode spins on REAP; event mode
 * sleeps in poll(2) on the file (without the lock, so other queues' threads
 * keep going) and then reaps. */
static int k_wait(struct rb_guest_dev *d, unsigned q, struct rb_guest_cpl *cpl, unsigned max,
		  int timeout_ms)
{
	uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		int n = k_poll(d, q, cpl, max);
		if (n != 0)
			return n;
		if (!d->q[q].inflight) {
			rb_guest_seterr("queue %u has nothing in flight", q);
			return -ETIMEDOUT;
		}
		uint64_t now = now_ms();
		if (now >= deadline)
			break;
		if (d->opts.notify == RB_GUEST_NOTIFY_EVENT) {
			struct pollfd p = {.fd = kd(d)->fd, .events = POLLIN};
			uint64_t left = deadline - now;
			poll(&p, 1, deadline == UINT64_MAX ? -1 : (int)(left > 1000 ? 1000 : left));
		}
	}
	rb_guest_seterr("queue %u: no completion within %d ms", q, timeout_ms);
	return -ETIMEDOUT;
}

/* ---- NDP control ----------------------------------------------------------------- */

static int k_load(struct rb_guest_dev *d, const void *elf, size_t elf_len, const char *section,
		  uint32_t prog_type, uint32_t *handle, char *log, size_t loglen)
{
	struct vndp_load ld = {.elf_ptr = (uint64_t)(uintptr_t)elf, .elf_len = (uint32_t)elf_len,
			       .prog_type = prog_type, .log_ptr = (uint64_t)(uintptr_t)log,
			       .log_len = log ? (uint32_t)(loglen > 65536 ? 65536 : loglen) : 0};

	if (strlen(section) >= sizeof(ld.section)) {
		rb_guest_seterr("section name too long");
		return -EINVAL;
	}
	strcpy(ld.section, section);
	if (ioctl(kd(d)->fd, VNDP_IOC_LOAD, &ld) < 0)
		return k_errno("LOAD", errno);
	if (ld.status == RB_NDP_S_OK) {
		*handle = ld.handle;
		return 0;
	}
	rb_guest_seterr("program not loaded (%s)%s%s", rb_ndp_status_name(ld.status),
			log && log[0] ? ": " : "", log ? log : "");
	return ld.status == RB_NDP_S_LIMIT ? -ENOSPC : -EINVAL;
}

static int k_unload(struct rb_guest_dev *d, uint32_t handle)
{
	struct vndp_unload u = {.handle = handle};

	if (ioctl(kd(d)->fd, VNDP_IOC_UNLOAD, &u) < 0) {
		if (errno == ENOENT) {
			rb_guest_seterr("no program with handle %u (loaded through this open file)", handle);
			return -ENOENT;
		}
		return k_errno("UNLOAD", errno);
	}
	/* STATE_LOST: the device restarted, the program is gone anyway (and
	 * the driver no longer counts it as this file's). */
	if (u.status != RB_NDP_S_OK && u.status != RB_NDP_S_STATE_LOST) {
		rb_guest_seterr("no program with handle %u", handle);
		return -ENOENT;
	}
	return 0;
}

static int k_reg_mem(struct rb_guest_dev *d, const void *buf, size_t len, uint32_t *key)
{
	struct vndp_reg_mem m = {.len = len};

	if (!in_area(d, buf, len)) {
		rb_guest_seterr("buffer %p+%zu is not DMA memory from rb_guest_dma_alloc()", buf, len);
		return -EFAULT;
	}
	m.dma_off = area_off(d, buf);
	if (ioctl(kd(d)->fd, VNDP_IOC_REG_MEM, &m) < 0)
		return k_errno("REG_MEM", errno);
	if (m.status != RB_NDP_S_OK) {
		rb_guest_seterr("memory not registered (%s)", rb_ndp_status_name(m.status));
		return m.status == RB_NDP_S_LIMIT ? -ENOSPC : -EFAULT;
	}
	*key = m.key;
	return 0;
}

static int k_unreg_mem(struct rb_guest_dev *d, uint32_t key)
{
	struct vndp_reg_mem m = {.key = key};

	if (ioctl(kd(d)->fd, VNDP_IOC_UNREG_MEM, &m) < 0)
		return k_errno("UNREG_MEM", errno);
	if (m.status != RB_NDP_S_OK && m.status != RB_NDP_S_STATE_LOST) {
		rb_guest_seterr("no registered memory with key %u", key);
		return -ENOENT;
	}
	return 0;
}

static uint64_t k_nd_requests(const struct rb_guest_dev *d)
{
	struct vndp_info info;

	return ioctl(kd(d)->fd, VNDP_IOC_INFO, &info) ? 0 : info.nd_requests;
}

static const struct rb_guest_direct kernel_direct = {
	.submit = k_submit,
	.submit_nd = k_submit_nd,
	.poll = k_poll,
	.wait = k_wait,
	.load = k_load,
	.unload = k_unload,
	.reg_mem = k_reg_mem,
	.unreg_mem = k_unreg_mem,
	.nd_requests = k_nd_requests,
};

/* ---- open / close ---------------------------------------------------------------- */

static void k_close(struct rb_guest_dev *d)
{
	struct kdev *k = kd(d);

	if (!k)
		return;
	if (k->file_fd >= 0)
		close(k->file_fd); /* the registration ends with the char device */
	for (unsigned q = 0; q < RB_GUEST_MAX_QUEUES; q++) {
		while (k->done_head[q]) {
			struct kreq *r = k->done_head[q];
			k->done_head[q] = r->next;
			free(r);
		}
	}
	rb_guest_dma_fini(d);
	if (k->area)
		munmap(k->area, k->area_len);
	/* Closing the file unloads this file's programs and memory and ends
	 * whatever is still in flight (the driver's release). */
	close(k->fd);
	pthread_mutex_destroy(&k->lock);
	free(k);
	d->tp = NULL;
}

static int k_open(struct rb_guest_dev *d, const char *path)
{
	struct kdev *k = calloc(1, sizeof(*k));
	int rc;

	if (!k)
		return -ENOMEM;
	pthread_mutex_init(&k->lock, NULL);
	d->tp = k;
	k->file_fd = -1;
	k->fd = open(path, O_RDWR | O_CLOEXEC);
	if (k->fd < 0 && (errno == EACCES || errno == EROFS))
		k->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (k->fd < 0) {
		rc = -errno;
		rb_guest_seterr("%s: %s (is virtio_ndp loaded and the disk bound to it? docs/guest-driver.md)",
				path, strerror(errno));
		pthread_mutex_destroy(&k->lock);
		free(k);
		d->tp = NULL;
		return rc;
	}
	if (ioctl(k->fd, VNDP_IOC_INFO, &k->info) < 0) {
		rc = k_errno("INFO", errno);
		goto fail;
	}
	if (k->info.uapi_version != VNDP_UAPI_VERSION) {
		rb_guest_seterr("%s speaks driver interface version %u, librosen %u", path,
				k->info.uapi_version, VNDP_UAPI_VERSION);
		rc = -EPROTO;
		goto fail;
	}
	size_t want = d->opts.dma_bytes;
	if (want > k->info.dma_max_bytes)
		want = k->info.dma_max_bytes;
	struct vndp_dma_alloc a = {.len = want};
	if (ioctl(k->fd, VNDP_IOC_DMA_ALLOC, &a) < 0) {
		rc = k_errno("allocating the DMA area", errno);
		goto fail;
	}
	k->area_len = a.len;
	k->area = mmap(NULL, k->area_len, PROT_READ | PROT_WRITE, MAP_SHARED, k->fd, 0);
	if (k->area == MAP_FAILED) {
		k->area = NULL;
		rc = k_errno("mapping the DMA area", errno);
		goto fail;
	}
	rc = rb_guest_dma_init(d, k->area, k->area_len);
	if (rc) {
		rb_guest_seterr("DMA area of %zu bytes unusable", k->area_len);
		goto fail;
	}
	d->features = k->info.features;
	d->cfg.capacity = k->info.capacity_bytes / RB_VIRTIO_BLK_SECTOR;
	d->cfg.blk_size = k->info.block_size;
	d->max_queues = k->info.num_queues;
	d->nq = k->info.num_queues;
	if (d->opts.num_queues && d->opts.num_queues < d->nq)
		d->nq = d->opts.num_queues;
	if (d->nq > RB_GUEST_MAX_QUEUES)
		d->nq = RB_GUEST_MAX_QUEUES;
	d->qsize = (uint16_t)(k->info.max_inflight > 32768 ? 32768 : k->info.max_inflight);
	d->ndp = k->info.ndp;
	d->ndp_caps = k->info.ndp_caps;
	return 0;
fail:
	k_close(d);
	return rc;
}

static uint64_t k_dma_addr(struct rb_guest_dev *d, const void *p, size_t len)
{
	return in_area(d, p, len) ? area_off(d, p) : UINT64_MAX;
}

static void k_kick(struct rb_guest_dev *d, unsigned q)
{
	(void)d, (void)q;
}

static int k_wait_unused(struct rb_guest_dev *d, unsigned q, int timeout_ms)
{
	(void)d, (void)q, (void)timeout_ms;
	return -ENOTSUP;
}

/* ---- file:PATH ------------------------------------------------------------------ */

/* The char device of the disk holding the file: st_dev names the block
 * device (a partition or the whole disk); its sysfs path names the disk. */
static int disk_of(dev_t dev, char *out, size_t outlen)
{
	char link[128], target[512];
	ssize_t n;

	snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major(dev), minor(dev));
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = 0;
	/* .../block/vndpa or .../block/vndpa/vndpa1 */
	char *blk = strstr(target, "/block/");
	if (!blk)
		return -ENODEV;
	blk += 7;
	char *slash = strchr(blk, '/');
	if (slash)
		*slash = 0;
	snprintf(out, outlen, "%s/%s", VNDP_DEV_DIR, blk);
	return 0;
}

static int f_open(struct rb_guest_dev *d, const char *path)
{
	struct stat st;
	char cdev[256];
	int fd = open(path, O_RDWR | O_CLOEXEC), rc;

	if (fd < 0 && (errno == EACCES || errno == EROFS))
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		rb_guest_seterr("%s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		rb_guest_seterr("%s: not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	rc = disk_of(st.st_dev, cdev, sizeof(cdev));
	if (rc || access(cdev, F_OK)) {
		rb_guest_seterr("%s is not on a disk driven by virtio_ndp (no %s; docs/guest-driver.md)", path,
				rc ? "block device in sysfs" : cdev);
		close(fd);
		return rc ? rc : -ENODEV;
	}
	rc = k_open(d, cdev);
	if (rc) {
		close(fd);
		return rc;
	}
	struct kdev *k = kd(d);
	struct vndp_reg_file rf = {.fd = fd};
	if (ioctl(k->fd, VNDP_IOC_REG_FILE, &rf) < 0) {
		rc = -errno;
		rb_guest_seterr("%s: the driver did not register the file: %s", path, strerror(errno));
		close(fd);
		k_close(d);
		return rc;
	}
	if (rf.status != RB_NDP_S_OK) {
		rb_guest_seterr("%s: the device did not register the file (%s)", path,
				rb_ndp_status_name(rf.status));
		close(fd);
		k_close(d);
		return rf.status == RB_NDP_S_LIMIT ? -ENOSPC : -EIO;
	}
	k->file_fd = fd;
	k->file_key = rf.key;
	k->file_size = rf.size;
	/* The device is the file: its size, in whole sectors. */
	d->cfg.capacity = (rf.size + RB_VIRTIO_BLK_SECTOR - 1) / RB_VIRTIO_BLK_SECTOR;
	return 0;
}

const struct rb_guest_transport rb_guest_file = {
	.name = "file",
	.open = f_open,
	.close = k_close,
	.kick = k_kick,
	.wait = k_wait_unused,
	.dma_addr = k_dma_addr,
	.direct = &kernel_direct,
};

const struct rb_guest_transport rb_guest_kernel = {
	.name = "kernel",
	.open = k_open,
	.close = k_close,
	.kick = k_kick,
	.wait = k_wait_unused,
	.dma_addr = k_dma_addr,
	.direct = &kernel_direct,
};
