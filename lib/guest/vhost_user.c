/* SPDX-License-Identifier: MIT */
/*
 * librosen's vhost-user transport ("virtio-user"): the process is both the
 * vhost-user frontend and the virtio driver.  Its DMA memory is one memfd
 * shared with the backend, described with guest-physical address = the
 * process's own virtual address, so buffers need no translation.  Works
 * with rosenbridged and with qemu-storage-daemon's vhost-user-blk export.
 * Like QEMU, it keeps the backend's inflight area (INFLIGHT_SHMFD) and,
 * when the backend goes away, connects to the next one on the same socket
 * and hands it back, so requests in flight are resubmitted, not lost.
 */
#include "guest_internal.h"

#include <rosen/vhost.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define WANTED_PROTOCOL                                                     \
	((1ull << RB_VHOST_USER_PROTOCOL_F_MQ) |                            \
	 (1ull << RB_VHOST_USER_PROTOCOL_F_REPLY_ACK) |                     \
	 (1ull << RB_VHOST_USER_PROTOCOL_F_CONFIG) |                        \
	 (1ull << RB_VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD))

#define RECONNECT_MS_DEFAULT 30000

struct vu {
	struct rb_vhost_client *c;
	char path[108];
	int memfd;
	void *mem;
	size_t mem_size;
	uint64_t protocol;
	bool has_protocol; /* VHOST_USER_F_PROTOCOL_FEATURES negotiated */
	bool ack;
	/* The backend's inflight area (INFLIGHT_SHMFD), kept across its
	 * restarts; -1 when the backend does not track in-flight requests. */
	int ifl_fd;
	uint64_t ifl_size, ifl_off;
	/* Reconnecting: one thread at a time; `gone` once it failed. */
	pthread_mutex_t lock;
	bool gone;
	unsigned reconnects;
};

static int req(struct rb_guest_dev *d, uint32_t code, const void *payload, uint32_t size,
	       const int *fds, unsigned nfds, void *reply, uint32_t reply_size, bool ack)
{
	struct vu *v = d->tp;
	char err[256];
	int rc = rb_vhost_client_request(v->c, code, payload, size, fds, nfds, reply, reply_size,
					 ack && v->ack, err, sizeof(err));
	if (rc)
		rb_guest_seterr("vhost-user: %s", err);
	return rc;
}

static int req_u64(struct rb_guest_dev *d, uint32_t code, uint64_t *val, bool get)
{
	return get ? req(d, code, NULL, 0, NULL, 0, val, sizeof(*val), false)
		   : req(d, code, val, sizeof(*val), NULL, 0, NULL, 0, true);
}

static int vring_state(struct rb_guest_dev *d, uint32_t code, unsigned q, uint32_t num)
{
	struct rb_vhost_vring_state s = {q, num};
	return req(d, code, &s, sizeof(s), NULL, 0, NULL, 0, true);
}

static int vring_fd(struct rb_guest_dev *d, uint32_t code, unsigned q, int fd)
{
	uint64_t v = q | (fd < 0 ? RB_VHOST_USER_VRING_NOFD : 0);
	return req(d, code, &v, sizeof(v), fd < 0 ? NULL : &fd, fd < 0 ? 0 : 1, NULL, 0, true);
}

static void vu_close(struct rb_guest_dev *d)
{
	struct vu *v = d->tp;

	if (!v)
		return;
	/* Stop the rings so the backend drains before the memory goes. */
	if (v->c) {
		for (unsigned i = 0; i < d->nq; i++) {
			struct rb_vhost_vring_state s = {i, 0}, r;
			if (d->q[i].kick_fd >= 0)
				req(d, RB_VHOST_USER_GET_VRING_BASE, &s, sizeof(s), NULL, 0, &r,
				    sizeof(r), false);
		}
		rb_vhost_client_close(v->c);
	}
	for (unsigned i = 0; i < RB_GUEST_MAX_QUEUES; i++) {
		if (d->q[i].kick_fd >= 0)
			close(d->q[i].kick_fd);
		if (d->q[i].call_fd >= 0)
			close(d->q[i].call_fd);
		d->q[i].kick_fd = d->q[i].call_fd = -1;
	}
	rb_guest_queues_free(d);
	rb_guest_dma_fini(d);
	if (v->mem)
		munmap(v->mem, v->mem_size);
	if (v->memfd >= 0)
		close(v->memfd);
	if (v->ifl_fd >= 0)
		close(v->ifl_fd);
	pthread_mutex_destroy(&v->lock);
	free(v);
	d->tp = NULL;
}

/*
 * Features, protocol features, owner, config.  `again`: a backend that
 * replaced the one we set the device up with must offer at least what we
 * use (the device, its queues and its inflight area stay as they are).
 */
static int negotiate(struct rb_guest_dev *d, const char *path, bool again)
{
	struct vu *v = d->tp;
	uint64_t offered, f, qnum = 1, had = v->protocol;
	int rc;

	if ((rc = req_u64(d, RB_VHOST_USER_GET_FEATURES, &offered, true)))
		return rc;
	if (!(offered & (1ull << RB_VIRTIO_F_VERSION_1))) {
		rb_guest_seterr("vhost-user %s: the backend does not offer VIRTIO_F_VERSION_1", path);
		return -ENOTSUP;
	}
	if (again && (rb_guest_wanted_features(offered) & d->features) != d->features) {
		rb_guest_seterr("vhost-user %s: the new backend offers features 0x%llx, the device uses 0x%llx",
				path, (unsigned long long)offered, (unsigned long long)d->features);
		return -ENOTSUP;
	}
	v->has_protocol = false;
	v->protocol = 0;
	v->ack = false;
	if (offered & (1ull << RB_VHOST_USER_F_PROTOCOL_FEATURES)) {
		uint64_t p;
		v->has_protocol = true;
		if ((rc = req_u64(d, RB_VHOST_USER_GET_PROTOCOL_FEATURES, &p, true)))
			return rc;
		v->protocol = p & WANTED_PROTOCOL;
		if ((rc = req_u64(d, RB_VHOST_USER_SET_PROTOCOL_FEATURES, &v->protocol, false)))
			return rc;
		v->ack = v->protocol & (1ull << RB_VHOST_USER_PROTOCOL_F_REPLY_ACK);
	}
	if (again && (had & ~v->protocol)) {
		rb_guest_seterr("vhost-user %s: the new backend lacks protocol features 0x%llx",
				path, (unsigned long long)(had & ~v->protocol));
		return -ENOTSUP;
	}
	if (!(v->protocol & (1ull << RB_VHOST_USER_PROTOCOL_F_CONFIG))) {
		rb_guest_seterr("vhost-user %s: the backend has no CONFIG protocol feature (needed for the disk size)",
				path);
		return -ENOTSUP;
	}
	if ((v->protocol & (1ull << RB_VHOST_USER_PROTOCOL_F_MQ)) &&
	    (rc = req_u64(d, RB_VHOST_USER_GET_QUEUE_NUM, &qnum, true)))
		return rc;
	if ((rc = req(d, RB_VHOST_USER_SET_OWNER, NULL, 0, NULL, 0, NULL, 0, false)))
		return rc;
	if (again) {
		if (qnum < d->nq) {
			rb_guest_seterr("vhost-user %s: the new backend has %llu queues, the device uses %u",
					path, (unsigned long long)qnum, d->nq);
			return -ENOTSUP;
		}
		f = d->features | (offered & (1ull << RB_VHOST_USER_F_PROTOCOL_FEATURES));
		return req_u64(d, RB_VHOST_USER_SET_FEATURES, &f, false);
	}

	uint8_t cfg[sizeof(struct rb_vhost_config_hdr) + sizeof(d->cfg)] = {0};
	struct rb_vhost_config_hdr *ch = (void *)cfg;
	ch->offset = 0;
	ch->size = sizeof(d->cfg);
	if ((rc = req(d, RB_VHOST_USER_GET_CONFIG, cfg, sizeof(cfg), NULL, 0, cfg, sizeof(cfg), false)))
		return rc;
	memcpy(&d->cfg, cfg + sizeof(*ch), sizeof(d->cfg));

	f = rb_guest_wanted_features(offered);
	d->features = f;
	d->max_queues = (f & (1ull << RB_VIRTIO_BLK_F_MQ)) && d->cfg.num_queues ? d->cfg.num_queues : 1;
	if (qnum < d->max_queues)
		d->max_queues = (unsigned)qnum;
	if (d->max_queues > RB_GUEST_MAX_QUEUES)
		d->max_queues = RB_GUEST_MAX_QUEUES;
	d->nq = d->opts.num_queues ? d->opts.num_queues : d->max_queues;
	if (d->nq > d->max_queues) {
		rb_guest_seterr("vhost-user %s: %u queues asked, the device offers %u", path,
				d->opts.num_queues, d->max_queues);
		return -EINVAL;
	}
	d->qsize = (uint16_t)d->opts.queue_size;
	/* The protocol-features bit must be acknowledged for the backend to
	 * keep rings disabled until SET_VRING_ENABLE. */
	f |= offered & (1ull << RB_VHOST_USER_F_PROTOCOL_FEATURES);
	return req_u64(d, RB_VHOST_USER_SET_FEATURES, &f, false);
}

static int setup_memory(struct rb_guest_dev *d)
{
	struct vu *v = d->tp;
	size_t size = (d->opts.dma_bytes + RB_GUEST_PAGE - 1) & ~(size_t)(RB_GUEST_PAGE - 1);

	v->memfd = memfd_create("librosen-dma", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	/* Sealed against resizing: the backend refuses memory that could
	 * shrink under it. */
	if (v->memfd < 0 || ftruncate(v->memfd, (off_t)size) < 0 ||
	    fcntl(v->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0) {
		rb_guest_seterr("cannot create %zu bytes of shared memory: %s", size, strerror(errno));
		return -errno;
	}
	v->mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, v->memfd, 0);
	if (v->mem == MAP_FAILED) {
		v->mem = NULL;
		rb_guest_seterr("cannot map %zu bytes of shared memory: %s", size, strerror(errno));
		return -errno;
	}
	v->mem_size = size;
	return rb_guest_dma_init(d, v->mem, size);
}

/*
 * Describes memory and rings to the backend: CALL fds, the memory table,
 * the inflight area, then per ring NUM, BASE, ADDR, KICK (the ring starts)
 * and ENABLE.  A first backend starts every ring at 0; a backend that
 * replaces a dead one gets each ring's used index, as QEMU 7.2 does, and
 * finds in the inflight area what the dead one had in flight.
 */
static int setup_rings(struct rb_guest_dev *d, bool again)
{
	struct vu *v = d->tp;
	int rc;

	for (unsigned i = 0; i < d->nq; i++)
		if ((rc = vring_fd(d, RB_VHOST_USER_SET_VRING_CALL, i, d->q[i].call_fd)))
			return rc;
	struct rb_vhost_mem_table_desc mt = {.nregions = 1};
	mt.regions[0] = (struct rb_vhost_mem_region_desc){
		.gpa = (uint64_t)(uintptr_t)v->mem, .size = v->mem_size,
		.uva = (uint64_t)(uintptr_t)v->mem, .mmap_offset = 0};
	if ((rc = req(d, RB_VHOST_USER_SET_MEM_TABLE, &mt, 8 + sizeof(mt.regions[0]), &v->memfd, 1,
		      NULL, 0, true)))
		return rc;
	if (v->ifl_fd >= 0) {
		struct rb_vhost_inflight_desc in = {.mmap_size = v->ifl_size, .mmap_offset = v->ifl_off,
						    .num_queues = (uint16_t)d->nq, .queue_size = d->qsize};
		if ((rc = req(d, RB_VHOST_USER_SET_INFLIGHT_FD, &in, sizeof(in), &v->ifl_fd, 1, NULL, 0,
			      true)))
			return rc;
	}
	for (unsigned i = 0; i < d->nq; i++) {
		struct rb_guest_queue *q = &d->q[i];
		struct rb_vhost_vring_addr a = {
			.index = i, .desc_uva = q->desc_addr, .used_uva = q->used_addr,
			.avail_uva = q->avail_addr};
		uint16_t base = again ? __atomic_load_n(&q->vq.used->idx, __ATOMIC_ACQUIRE) : 0;
		if ((rc = vring_state(d, RB_VHOST_USER_SET_VRING_NUM, i, d->qsize)) ||
		    (rc = vring_state(d, RB_VHOST_USER_SET_VRING_BASE, i, base)) ||
		    (rc = req(d, RB_VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0, NULL, 0, true)) ||
		    (rc = vring_fd(d, RB_VHOST_USER_SET_VRING_KICK, i, q->kick_fd)))
			return rc;
		/* With protocol features, rings start disabled. */
		if (v->has_protocol && (rc = vring_state(d, RB_VHOST_USER_SET_VRING_ENABLE, i, 1)))
			return rc;
	}
	return 0;
}

/* GET_INFLIGHT_FD, once per device (QEMU asks once per VM boot too). */
static int get_inflight(struct rb_guest_dev *d)
{
	struct vu *v = d->tp;
	struct rb_vhost_inflight_desc in = {.num_queues = (uint16_t)d->nq, .queue_size = d->qsize};
	char err[256];
	int fd, rc;

	if (!(v->protocol & (1ull << RB_VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD)))
		return 0;
	rc = rb_vhost_client_request_fd(v->c, RB_VHOST_USER_GET_INFLIGHT_FD, &in, sizeof(in), &in,
					sizeof(in), &fd, err, sizeof(err));
	if (rc) {
		rb_guest_seterr("vhost-user: %s", err);
		return rc;
	}
	if (in.mmap_size == 0) { /* the backend could not make one: no tracking */
		if (fd >= 0)
			close(fd);
		v->protocol &= ~(1ull << RB_VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD);
		return 0;
	}
	if (fd < 0) {
		rb_guest_seterr("vhost-user: GET_INFLIGHT_FD answered %llu bytes without a file descriptor",
				(unsigned long long)in.mmap_size);
		return -EPROTO;
	}
	v->ifl_fd = fd;
	v->ifl_size = in.mmap_size;
	v->ifl_off = in.mmap_offset;
	return 0;
}

static int vu_open(struct rb_guest_dev *d, const char *path)
{
	struct vu *v = calloc(1, sizeof(*v));
	char err[256];
	int rc;

	if (!v) {
		rb_guest_seterr("out of memory");
		return -ENOMEM;
	}
	v->memfd = -1;
	v->ifl_fd = -1;
	pthread_mutex_init(&v->lock, NULL);
	snprintf(v->path, sizeof(v->path), "%s", path);
	d->tp = v;
	rc = rb_vhost_client_connect(path, &v->c, err, sizeof(err));
	if (rc) {
		rb_guest_seterr("%s", err);
		goto fail;
	}
	if ((rc = negotiate(d, path, false)) || (rc = setup_memory(d)) ||
	    (rc = rb_guest_queues_alloc(d)))
		goto fail;
	for (unsigned i = 0; i < d->nq; i++) {
		d->q[i].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		d->q[i].call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (d->q[i].kick_fd < 0 || d->q[i].call_fd < 0) {
			rb_guest_seterr("eventfd: %s", strerror(errno));
			rc = -errno;
			goto fail;
		}
	}
	if ((rc = get_inflight(d)) || (rc = setup_rings(d, false)))
		goto fail;
	return 0;
fail:
	vu_close(d);
	return rc ? rc : -EIO;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * The backend went away: connect to the next one on the same socket (an
 * upgrade, or a restart after a crash) and set the device up again.  Only
 * with an inflight area: without one the new backend could not tell which
 * requests the old one had finished out of order, and would complete some
 * twice.  Requests in flight stay where they are and complete from the new
 * backend; those not yet taken from the rings are served as usual.
 */
static int reconnect(struct rb_guest_dev *d)
{
	struct vu *v = d->tp;
	int ms = d->opts.reconnect_ms ? d->opts.reconnect_ms : RECONNECT_MS_DEFAULT;
	uint64_t deadline = mono_ms() + (uint64_t)(ms > 0 ? ms : 0);
	char err[256] = "";
	int rc = -ENOTCONN;

	rb_vhost_client_close(v->c);
	v->c = NULL;
	if (ms < 0 || v->ifl_fd < 0) {
		v->gone = true;
		rb_guest_seterr("vhost-user %s: the backend went away%s", v->path,
				ms < 0 ? " (reconnecting is off)"
				       : " and did not track requests in flight (no INFLIGHT_SHMFD): "
					 "cannot reconnect without losing or repeating some");
		return -ENOTCONN;
	}
	do {
		if (rb_vhost_client_connect(v->path, &v->c, err, sizeof(err)) == 0) {
			rc = negotiate(d, v->path, true);
			if (!rc)
				rc = setup_rings(d, true);
			if (!rc) {
				v->reconnects++;
				for (unsigned i = 0; i < d->nq; i++)
					eventfd_write(d->q[i].kick_fd, 1);
				return 0;
			}
			snprintf(err, sizeof(err), "%s", rb_guest_errmsg());
			rb_vhost_client_close(v->c);
			v->c = NULL;
			if (rc == -ENOTSUP)
				break; /* a backend that cannot serve this device */
		}
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	} while (mono_ms() < deadline);
	v->gone = true;
	rb_guest_seterr("vhost-user %s: the backend went away and no new one could be set up within %d ms%s%s",
			v->path, ms, err[0] ? ": " : "", err);
	return -ENOTCONN;
}

static int vu_check(struct rb_guest_dev *d)
{
	struct vu *v = d->tp;
	int rc = 0;

	pthread_mutex_lock(&v->lock);
	if (v->gone) {
		rb_guest_seterr("vhost-user %s: the backend is gone", v->path);
		rc = -ENOTCONN;
	} else if (!v->c || rb_vhost_client_hung_up(v->c)) {
		rc = reconnect(d);
	}
	pthread_mutex_unlock(&v->lock);
	return rc;
}

static void vu_kick(struct rb_guest_dev *d, unsigned q)
{
	eventfd_write(d->q[q].kick_fd, 1);
}

static int vu_wait(struct rb_guest_dev *d, unsigned q, int timeout_ms)
{
	struct pollfd p = {.fd = d->q[q].call_fd, .events = POLLIN};
	int n = poll(&p, 1, timeout_ms);
	eventfd_t val;

	if (n < 0)
		return errno == EINTR ? -EINTR : -errno;
	if (n == 0)
		return -ETIMEDOUT;
	eventfd_read(d->q[q].call_fd, &val);
	return 0;
}

static uint64_t vu_dma_addr(struct rb_guest_dev *d, const void *p, size_t len)
{
	const uint8_t *b = p;

	if (b < d->dma_base || len > d->dma_size || (size_t)(b - d->dma_base) > d->dma_size - len)
		return UINT64_MAX;
	return (uint64_t)(uintptr_t)p; /* guest-physical = our virtual address */
}

const struct rb_guest_transport rb_guest_vhost_user = {
	.name = "vhost-user",
	.open = vu_open,
	.close = vu_close,
	.kick = vu_kick,
	.wait = vu_wait,
	.dma_addr = vu_dma_addr,
	.check = vu_check,
};
