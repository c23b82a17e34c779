/* SPDX-License-Identifier: MIT */
/*
 * vhost-user server: the socket, one frontend at a time, and the handlers of
 * the control messages.  Payloads are validated by msg.c before any handler
 * acts; every received fd is either kept or closed; any protocol violation
 * ends the connection with a log line and the socket accepts the next
 * frontend.  Rings are handed to the device only when fully described.
 */
#include "vhost_internal.h"

#include <rosen/log.h>
#include <rosen/virtio.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

struct vring_state {
	uint32_t num;
	uint16_t base;
	struct rb_vhost_vring_addr addr;
	bool addr_set;
	bool kick_set;  /* SET_VRING_KICK received since the last stop */
	int kick_fd;
	int call_fd;
	bool enabled;
	bool started;   /* handed to the device */
};

struct rb_vhost_server {
	char *path;
	char name[64];
	int listen_fd;
	int conn_fd;
	int backend_fd; /* the backend channel (SET_BACKEND_REQ_FD); -1: none */
	const struct rb_vhost_dev_ops *ops;
	void *dev;
	unsigned nqueues;
	uint64_t features;          /* negotiated */
	uint64_t protocol_features; /* negotiated */
	struct rb_vhost_mem mem;
	struct vring_state vr[RB_VHOST_MAX_QUEUES];
	/* SET_INFLIGHT_FD: the frontend's inflight area, mapped. */
	struct {
		void *map;
		size_t map_len;
		uint8_t *base;      /* queue 0's region */
		unsigned nq;
		uint16_t qsize;
	} ifl;
	atomic_bool mem_faulted; /* set by the SIGBUS handler (sigbus.c) */
	struct msg *msg; /* the one message being served: no allocation per message */
	_Atomic uint64_t connects; /* frontends accepted (metrics) */
};

struct msg {
	struct rb_vhost_msg_hdr hdr;
	uint8_t payload[RB_VHOST_USER_MAX_PAYLOAD];
	int fds[RB_VHOST_USER_MAX_FDS];
	unsigned nfds;
};

#define PROTOCOL_FEATURES                                                   \
	((1ull << RB_VHOST_USER_PROTOCOL_F_MQ) |                            \
	 (1ull << RB_VHOST_USER_PROTOCOL_F_REPLY_ACK) |                     \
	 (1ull << RB_VHOST_USER_PROTOCOL_F_BACKEND_REQ) |                   \
	 (1ull << RB_VHOST_USER_PROTOCOL_F_CONFIG) |                        \
	 (1ull << RB_VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD))

static uint64_t offered_features(const struct rb_vhost_server *s)
{
	return s->ops->features(s->dev) | (1ull << RB_VIRTIO_F_VERSION_1) |
	       (1ull << RB_VIRTIO_F_INDIRECT_DESC) | (1ull << RB_VIRTIO_F_EVENT_IDX) |
	       (1ull << RB_VHOST_USER_F_PROTOCOL_FEATURES);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void close_msg_fds(struct msg *m)
{
	for (unsigned i = 0; i < m->nfds; i++)
		close_fd(&m->fds[i]);
	m->nfds = 0;
}

/* ---- rings ----------------------------------------------------------------- */

static bool ring_ready(const struct rb_vhost_server *s, const struct vring_state *v)
{
	return v->num && v->addr_set && v->kick_set && v->enabled && s->mem.n;
}

static void ring_stop(struct rb_vhost_server *s, unsigned i)
{
	struct vring_state *v = &s->vr[i];

	if (!v->started)
		return;
	v->base = s->ops->ring_stop(s->dev, i);
	v->started = false;
	rb_debug(s->name, "ring %u stopped at avail index %u", i, v->base);
}

/* Starts the ring if it is fully described.  Returns -EINVAL when its
 * addresses do not translate (a protocol violation). */
static int ring_maybe_start(struct rb_vhost_server *s, unsigned i)
{
	struct vring_state *v = &s->vr[i];
	struct rb_vhost_ring r;

	if (v->started || !ring_ready(s, v))
		return 0;
	r.index = i;
	r.size = (uint16_t)v->num; /* num <= 32768 was validated */
	r.last_avail = v->base;
	r.desc = rb_vhost_uva_to_host(&s->mem, v->addr.desc_uva, rb_vring_desc_bytes(v->num));
	/* rb_vring_*_bytes() already count the event-index words. */
	r.avail = rb_vhost_uva_to_host(&s->mem, v->addr.avail_uva, rb_vring_avail_bytes(v->num));
	r.used = rb_vhost_uva_to_host(&s->mem, v->addr.used_uva, rb_vring_used_bytes(v->num));
	if (!r.desc || !r.avail || !r.used) {
		rb_err(s->name, "ring %u: %s table at 0x%llx is not inside guest memory", i,
		       !r.desc ? "descriptor" : !r.avail ? "avail" : "used",
		       (unsigned long long)(!r.desc ? v->addr.desc_uva
					    : !r.avail ? v->addr.avail_uva : v->addr.used_uva));
		return -EINVAL;
	}
	r.kick_fd = v->kick_fd;
	r.call_fd = v->call_fd;
	r.features = s->features;
	r.mem = &s->mem;
	r.inflight = NULL;
	r.inflight_desc_num = 0;
	if (s->ifl.base && i < s->ifl.nq &&
	    (s->protocol_features & (1ull << RB_VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD))) {
		if (v->num > s->ifl.qsize) {
			rb_err(s->name, "ring %u: %u entries, but its inflight region was made for %u",
			       i, v->num, s->ifl.qsize);
			return -EINVAL;
		}
		r.inflight = s->ifl.base + (size_t)i * rb_vring_inflight_bytes(s->ifl.qsize);
		r.inflight_desc_num = s->ifl.qsize;
	}
	int rc = s->ops->ring_start(s->dev, &r);
	if (rc) {
		rb_err(s->name, "ring %u: device refused to start it: %s", i, strerror(-rc));
		return rc;
	}
	v->started = true;
	rb_debug(s->name, "ring %u started: size %u, avail index %u, %s", i, v->num, v->base,
		 v->kick_fd >= 0 ? "kicks" : "no kicks");
	return 0;
}

static void stop_all_rings(struct rb_vhost_server *s)
{
	for (unsigned i = 0; i < s->nqueues; i++)
		ring_stop(s, i);
}

static int start_all_rings(struct rb_vhost_server *s)
{
	for (unsigned i = 0; i < s->nqueues; i++) {
		int rc = ring_maybe_start(s, i);
		if (rc)
			return rc;
	}
	return 0;
}

static void inflight_unmap(struct rb_vhost_server *s)
{
	if (s->ifl.map)
		munmap(s->ifl.map, s->ifl.map_len);
	memset(&s->ifl, 0, sizeof(s->ifl));
}

static void unmap_mem(struct rb_vhost_server *s)
{
	if (s->mem.unsealed)
		rb_vhost_sigbus_unwatch(&s->mem);
	rb_vhost_mem_unmap(&s->mem);
}

static void reset_state(struct rb_vhost_server *s)
{
	stop_all_rings(s);
	inflight_unmap(s);
	for (unsigned i = 0; i < RB_VHOST_MAX_QUEUES; i++) {
		struct vring_state *v = &s->vr[i];
		close_fd(&v->kick_fd);
		close_fd(&v->call_fd);
		memset(v, 0, sizeof(*v));
		v->kick_fd = v->call_fd = -1;
	}
	unmap_mem(s);
	close_fd(&s->backend_fd);
	s->features = 0;
	s->protocol_features = 0;
}

/* ---- message i/o ----------------------------------------------------------- */

/* Reads exactly len bytes (the socket has a receive timeout). */
static int read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = recv(fd, p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		/* The receive timeout expiring is not a refusal (-EAGAIN to
		 * the handlers): the stream lost its framing, so it ends. */
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
		if (n == 0)
			return -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int recv_msg(struct rb_vhost_server *s, struct msg *m)
{
	char cbuf[CMSG_SPACE(sizeof(int) * RB_VHOST_USER_MAX_FDS)];
	struct iovec iov = {&m->hdr, sizeof(m->hdr)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf)};
	ssize_t n;
	char err[256];

	m->nfds = 0;
	do {
		n = recvmsg(s->conn_fd, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	/* Keep every fd that came, even on a short read, so none leaks. */
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < cnt; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (m->nfds < RB_VHOST_USER_MAX_FDS)
				m->fds[m->nfds++] = fd;
			else
				close(fd);
		}
	}
	if (n == 0)
		return -ECONNRESET;
	if (n < 0)
		return -errno;
	if (mh.msg_flags & MSG_CTRUNC) {
		rb_err(s->name, "message carried more than %u file descriptors", RB_VHOST_USER_MAX_FDS);
		return -EPROTO;
	}
	if ((size_t)n < sizeof(m->hdr)) {
		int rc = read_full(s->conn_fd, (uint8_t *)&m->hdr + n, sizeof(m->hdr) - (size_t)n);
		if (rc) {
			rb_err(s->name, "message header truncated after %zd of %zu bytes: %s", n,
			       sizeof(m->hdr), strerror(-rc));
			return rc;
		}
	}
	if (rb_vhost_check_hdr(&m->hdr, err, sizeof(err))) {
		rb_err(s->name, "%s", err);
		return -EPROTO;
	}
	if (m->hdr.size) {
		int rc = read_full(s->conn_fd, m->payload, m->hdr.size);
		if (rc) {
			rb_err(s->name, "request %u: payload of %u bytes not received: %s",
			       m->hdr.request, m->hdr.size, strerror(-rc));
			return rc;
		}
	}
	return 0;
}

static int send_reply(struct rb_vhost_server *s, const struct msg *req, const void *payload,
		      uint32_t size)
{
	struct rb_vhost_msg_hdr hdr = {
		.request = req->hdr.request,
		.flags = RB_VHOST_USER_VERSION | RB_VHOST_USER_FLAG_REPLY,
		.size = size,
	};
	struct iovec iov[2] = {{&hdr, sizeof(hdr)}, {(void *)payload, size}};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = size ? 2 : 1};
	ssize_t n;

	do {
		n = sendmsg(s->conn_fd, &mh, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t)(sizeof(hdr) + size)) {
		rb_err(s->name, "reply to request %u not sent: %s", req->hdr.request,
		       n < 0 ? strerror(errno) : "short write");
		return -EIO;
	}
	return 0;
}

/* A reply that carries one file descriptor (GET_INFLIGHT_FD). */
static int send_reply_fd(struct rb_vhost_server *s, const struct msg *req, const void *payload,
			 uint32_t size, int fd)
{
	struct rb_vhost_msg_hdr hdr = {
		.request = req->hdr.request,
		.flags = RB_VHOST_USER_VERSION | RB_VHOST_USER_FLAG_REPLY,
		.size = size,
	};
	struct iovec iov[2] = {{&hdr, sizeof(hdr)}, {(void *)payload, size}};
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	ssize_t n;

	memset(cbuf, 0, sizeof(cbuf));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	do {
		n = sendmsg(s->conn_fd, &mh, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t)(sizeof(hdr) + size)) {
		rb_err(s->name, "reply to request %u not sent: %s", req->hdr.request,
		       n < 0 ? strerror(errno) : "short write");
		return -EIO;
	}
	return 0;
}

static int send_u64(struct rb_vhost_server *s, const struct msg *req, uint64_t v)
{
	return send_reply(s, req, &v, sizeof(v));
}

/* ---- handlers ---------------------------------------------------------------- */

/* Each returns 0 (done; REPLY_ACK sends success), 1 (a reply was sent),
 * -EAGAIN (refused, connection stays; REPLY_ACK sends failure), or another
 * -errno (protocol violation: the connection is closed). */

static int h_set_features(struct rb_vhost_server *s, struct msg *m)
{
	uint64_t f;

	if (m->hdr.size != sizeof(f)) {
		rb_err(s->name, "SET_FEATURES: payload of %u bytes, expected 8", m->hdr.size);
		return -EINVAL;
	}
	memcpy(&f, m->payload, sizeof(f));
	if (f & ~offered_features(s)) {
		rb_err(s->name, "SET_FEATURES: 0x%llx includes features never offered (0x%llx)",
		       (unsigned long long)f, (unsigned long long)(f & ~offered_features(s)));
		return -EINVAL;
	}
	if (f == s->features)
		return 0;
	/* Rings read the negotiated features when they start. */
	stop_all_rings(s);
	s->features = f;
	rb_debug(s->name, "features 0x%llx", (unsigned long long)f);
	return start_all_rings(s);
}

static int h_set_mem_table(struct rb_vhost_server *s, struct msg *m)
{
	struct rb_vhost_mem_table_desc desc;
	struct rb_vhost_mem mem;
	char err[256];
	int rc;

	rc = rb_vhost_check_mem_table(m->payload, m->hdr.size, m->nfds, &desc, err, sizeof(err));
	if (!rc)
		rc = rb_vhost_mem_map(&mem, &desc, m->fds, err, sizeof(err));
	close_msg_fds(m); /* the mappings keep the memory */
	if (rc) {
		rb_err(s->name, "SET_MEM_TABLE: %s", err);
		return -EINVAL;
	}
	/* Running rings translate through the old table: stop them first. */
	stop_all_rings(s);
	unmap_mem(s);
	s->mem = mem;
	if (mem.unsealed)
		rb_vhost_sigbus_watch(&s->mem, &s->mem_faulted);
	uint64_t total = 0;
	for (unsigned i = 0; i < mem.n; i++)
		total += mem.r[i].size;
	rb_info(s->name, "guest memory: %u region%s, %llu MiB", mem.n, mem.n == 1 ? "" : "s",
		(unsigned long long)(total >> 20));
	if (mem.unsealed)
		rb_warn(s->name, "guest memory is not a sealable memfd (--allow-unsealed-memory): if the frontend shrinks it, this VM is disconnected");
	return start_all_rings(s);
}

static int h_vring_state(struct rb_vhost_server *s, struct msg *m)
{
	struct rb_vhost_vring_state st;
	char err[256];

	if (rb_vhost_check_vring_state(m->hdr.request, m->payload, m->hdr.size, s->nqueues, &st,
				       err, sizeof(err))) {
		rb_err(s->name, "%s", err);
		return -EINVAL;
	}
	struct vring_state *v = &s->vr[st.index];
	switch (m->hdr.request) {
	case RB_VHOST_USER_SET_VRING_NUM:
	case RB_VHOST_USER_SET_VRING_BASE:
		if (v->started) {
			rb_warn(s->name, "ring %u: %s while the ring runs; refused", st.index,
				m->hdr.request == RB_VHOST_USER_SET_VRING_NUM ? "SET_VRING_NUM"
									     : "SET_VRING_BASE");
			return -EAGAIN;
		}
		if (m->hdr.request == RB_VHOST_USER_SET_VRING_NUM)
			v->num = st.num;
		else
			v->base = (uint16_t)st.num;
		return 0;
	case RB_VHOST_USER_SET_VRING_ENABLE:
		v->enabled = st.num;
		if (!v->enabled) {
			ring_stop(s, st.index);
			return 0;
		}
		return ring_maybe_start(s, st.index);
	case RB_VHOST_USER_GET_VRING_BASE: {
		/* Stops the ring: in-flight requests complete first (the device
		 * drains), and it stays stopped until the next SET_VRING_KICK. */
		ring_stop(s, st.index);
		v->kick_set = false;
		close_fd(&v->kick_fd);
		struct rb_vhost_vring_state reply = {st.index, v->base};
		return send_reply(s, m, &reply, sizeof(reply)) ? -EIO : 1;
	}
	}
	return -EINVAL;
}

static int h_set_vring_addr(struct rb_vhost_server *s, struct msg *m)
{
	struct rb_vhost_vring_addr a;
	char err[256];

	if (rb_vhost_check_vring_addr(m->payload, m->hdr.size, s->nqueues, &a, err, sizeof(err))) {
		rb_err(s->name, "%s", err);
		return -EINVAL;
	}
	if (s->vr[a.index].started) {
		rb_warn(s->name, "ring %u: SET_VRING_ADDR while the ring runs; refused", a.index);
		return -EAGAIN;
	}
	s->vr[a.index].addr = a;
	s->vr[a.index].addr_set = true;
	return 0;
}

static int h_vring_fd(struct rb_vhost_server *s, struct msg *m)
{
	unsigned idx;
	bool has_fd;
	char err[256];

	if (rb_vhost_check_vring_fd(m->payload, m->hdr.size, m->nfds, s->nqueues, &idx, &has_fd,
				    err, sizeof(err))) {
		rb_err(s->name, "%s", err);
		return -EINVAL;
	}
	int fd = has_fd ? m->fds[0] : -1;
	m->nfds = 0; /* ownership moves to the ring state (or is closed below) */
	/* Workers read kicks and write calls on these fds: a blocking one
	 * would let the frontend stall a worker, and with it every VM on it
	 * and the control thread (a call eventfd whose counter is full
	 * blocks its writer forever). */
	if (fd >= 0 && m->hdr.request != RB_VHOST_USER_SET_VRING_ERR) {
		int fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
			rb_err(s->name, "ring %u: cannot make the notification fd non-blocking: %s", idx,
			       strerror(errno));
			close_fd(&fd);
			return -EINVAL;
		}
	}
	struct vring_state *v = &s->vr[idx];
	switch (m->hdr.request) {
	case RB_VHOST_USER_SET_VRING_ERR:
		close_fd(&fd); /* we never report ring errors through it */
		return 0;
	case RB_VHOST_USER_SET_VRING_CALL:
		ring_stop(s, idx);
		close_fd(&v->call_fd);
		v->call_fd = fd;
		return ring_maybe_start(s, idx);
	case RB_VHOST_USER_SET_VRING_KICK:
		ring_stop(s, idx);
		close_fd(&v->kick_fd);
		v->kick_fd = fd;
		v->kick_set = true;
		/* Without PROTOCOL_FEATURES a ring is enabled by its kick. */
		if (!(s->features & (1ull << RB_VHOST_USER_F_PROTOCOL_FEATURES)))
			v->enabled = true;
		return ring_maybe_start(s, idx);
	}
	close_fd(&fd);
	return -EINVAL;
}

static int h_get_config(struct rb_vhost_server *s, struct msg *m)
{
	struct rb_vhost_config_hdr c;
	char err[256];

	if (rb_vhost_check_config(m->payload, m->hdr.size, &c, err, sizeof(err))) {
		rb_err(s->name, "GET_CONFIG: %s", err);
		return -EINVAL;
	}
	/* The reply has exactly the size asked for. */
	uint8_t *data = m->payload + sizeof(c);
	memset(data, 0, c.size);
	s->ops->get_config(s->dev, data, c.offset, c.size);
	return send_reply(s, m, m->payload, (uint32_t)sizeof(c) + c.size) ? -EIO : 1;
}

/*
 * GET_INFLIGHT_FD: a fresh zeroed memfd for the frontend to keep, sealed so
 * that nobody can resize it.  Nothing of it is kept here (the frontend
 * hands it back with SET_INFLIGHT_FD), so repeated GETs leak nothing.
 */
static int h_get_inflight(struct rb_vhost_server *s, struct msg *m)
{
	struct rb_vhost_inflight_desc d;
	char err[256];
	int fd, rc;

	if (rb_vhost_check_inflight(m->hdr.request, m->payload, m->hdr.size, m->nfds, s->nqueues,
				    &d, err, sizeof(err))) {
		rb_err(s->name, "%s", err);
		return -EINVAL;
	}
	d.mmap_size = (uint64_t)d.num_queues * rb_vring_inflight_bytes(d.queue_size);
	d.mmap_offset = 0;
	d.padding = 0;
	fd = memfd_create("rosenbridged-inflight", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || ftruncate(fd, (off_t)d.mmap_size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		rb_err(s->name, "GET_INFLIGHT_FD: cannot create %llu bytes of shared memory: %s",
		       (unsigned long long)d.mmap_size, strerror(errno));
		if (fd >= 0)
			close(fd);
		/* QEMU takes a size of 0 as "no inflight tracking". */
		memset(&d, 0, sizeof(d));
		return send_reply(s, m, &d, sizeof(d)) ? -EIO : 1;
	}
	rb_debug(s->name, "inflight area of %llu bytes for %u queues of %u entries",
		 (unsigned long long)d.mmap_size, d.num_queues, d.queue_size);
	rc = send_reply_fd(s, m, &d, sizeof(d), fd);
	close(fd);
	return rc ? -EIO : 1;
}

/*
 * SET_INFLIGHT_FD: maps the area the frontend keeps across our restarts.
 * It must be a file that cannot shrink under us (sealed, as ours are): an
 * access past a truncated end would raise SIGBUS in a worker.  What the
 * regions say is checked when each ring starts (rb_virtq_inflight_start).
 */
static int h_set_inflight(struct rb_vhost_server *s, struct msg *m)
{
	struct rb_vhost_inflight_desc d;
	struct stat st;
	char err[256];

	if (rb_vhost_check_inflight(m->hdr.request, m->payload, m->hdr.size, m->nfds, s->nqueues,
				    &d, err, sizeof(err))) {
		rb_err(s->name, "%s", err);
		return -EINVAL;
	}
	for (unsigned i = 0; i < s->nqueues; i++)
		if (s->vr[i].started) {
			rb_warn(s->name, "SET_INFLIGHT_FD while ring %u runs; refused", i);
			return -EAGAIN;
		}
	int fd = m->fds[0];
	size_t need = (size_t)d.num_queues * rb_vring_inflight_bytes(d.queue_size);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rb_err(s->name, "SET_INFLIGHT_FD: the fd is not a memory file");
		return -EINVAL;
	}
	if ((uint64_t)st.st_size < d.mmap_offset + need) {
		rb_err(s->name, "SET_INFLIGHT_FD: file has %lld bytes, the regions need offset %llu + %zu",
		       (long long)st.st_size, (unsigned long long)d.mmap_offset, need);
		return -EINVAL;
	}
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || (!(seals & F_SEAL_SHRINK) && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0)) {
		rb_err(s->name, "SET_INFLIGHT_FD: the area could shrink under us (not a memfd sealed against shrinking: use the one GET_INFLIGHT_FD gave)");
		return -EINVAL;
	}
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t start = d.mmap_offset & ~(page - 1);
	size_t len = (size_t)(d.mmap_offset - start) + need;
	void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)start);
	if (map == MAP_FAILED) {
		rb_err(s->name, "SET_INFLIGHT_FD: mmap of %zu bytes: %s", len, strerror(errno));
		return -EINVAL;
	}
	close_msg_fds(m); /* the mapping keeps the memory */
	inflight_unmap(s);
	s->ifl.map = map;
	s->ifl.map_len = len;
	s->ifl.base = (uint8_t *)map + (d.mmap_offset - start);
	s->ifl.nq = d.num_queues;
	s->ifl.qsize = d.queue_size;
	rb_debug(s->name, "inflight area: %u queues of %u entries", d.num_queues, d.queue_size);
	return 0;
}

static int h_set_backend_req_fd(struct rb_vhost_server *s, struct msg *m)
{
	char err[256];
	bool negotiated = s->protocol_features & (1ull << RB_VHOST_USER_PROTOCOL_F_BACKEND_REQ);

	if (rb_vhost_check_backend_req_fd(m->hdr.size, m->nfds, negotiated, err, sizeof(err))) {
		rb_err(s->name, "%s", err);
		return -EINVAL;
	}
	close_fd(&s->backend_fd);
	s->backend_fd = m->fds[0];
	m->nfds = 0; /* kept */
	rb_debug(s->name, "backend channel set up");
	return 0;
}

static int dispatch(struct rb_vhost_server *s, struct msg *m)
{
	switch (m->hdr.request) {
	case RB_VHOST_USER_GET_FEATURES:
		return send_u64(s, m, offered_features(s)) ? -EIO : 1;
	case RB_VHOST_USER_SET_FEATURES:
		return h_set_features(s, m);
	case RB_VHOST_USER_SET_OWNER:
		return 0;
	case RB_VHOST_USER_RESET_OWNER:
	case RB_VHOST_USER_RESET_DEVICE:
		stop_all_rings(s);
		inflight_unmap(s); /* a reset device starts with a new area */
		for (unsigned i = 0; i < s->nqueues; i++) {
			s->vr[i].kick_set = false;
			s->vr[i].enabled = false;
			s->vr[i].base = 0;
		}
		s->features = 0;
		return 0;
	case RB_VHOST_USER_SET_MEM_TABLE:
		return h_set_mem_table(s, m);
	case RB_VHOST_USER_SET_VRING_NUM:
	case RB_VHOST_USER_SET_VRING_BASE:
	case RB_VHOST_USER_GET_VRING_BASE:
	case RB_VHOST_USER_SET_VRING_ENABLE:
		return h_vring_state(s, m);
	case RB_VHOST_USER_SET_VRING_ADDR:
		return h_set_vring_addr(s, m);
	case RB_VHOST_USER_SET_VRING_KICK:
	case RB_VHOST_USER_SET_VRING_CALL:
	case RB_VHOST_USER_SET_VRING_ERR:
		return h_vring_fd(s, m);
	case RB_VHOST_USER_GET_PROTOCOL_FEATURES:
		return send_u64(s, m, PROTOCOL_FEATURES) ? -EIO : 1;
	case RB_VHOST_USER_SET_PROTOCOL_FEATURES: {
		uint64_t f;
		if (m->hdr.size != sizeof(f)) {
			rb_err(s->name, "SET_PROTOCOL_FEATURES: payload of %u bytes", m->hdr.size);
			return -EINVAL;
		}
		memcpy(&f, m->payload, sizeof(f));
		if (f & ~PROTOCOL_FEATURES) {
			rb_err(s->name, "SET_PROTOCOL_FEATURES: 0x%llx was never offered",
			       (unsigned long long)f);
			return -EINVAL;
		}
		s->protocol_features = f;
		return 0;
	}
	case RB_VHOST_USER_GET_QUEUE_NUM:
		return send_u64(s, m, s->nqueues) ? -EIO : 1;
	case RB_VHOST_USER_GET_CONFIG:
		return h_get_config(s, m);
	case RB_VHOST_USER_GET_INFLIGHT_FD:
		return h_get_inflight(s, m);
	case RB_VHOST_USER_SET_INFLIGHT_FD:
		return h_set_inflight(s, m);
	case RB_VHOST_USER_SET_BACKEND_REQ_FD:
		return h_set_backend_req_fd(s, m);
	case RB_VHOST_USER_SET_CONFIG: {
		struct rb_vhost_config_hdr c;
		char err[256];
		if (rb_vhost_check_config(m->payload, m->hdr.size, &c, err, sizeof(err))) {
			rb_err(s->name, "SET_CONFIG: %s", err);
			return -EINVAL;
		}
		/* Nothing in our config space is writable (no CONFIG_WCE). */
		rb_warn(s->name, "SET_CONFIG of %u bytes at offset %u: the config space is read-only; refused",
			c.size, c.offset);
		return -EAGAIN;
	}
	}
	rb_warn(s->name, "request %u is not supported; refused", m->hdr.request);
	return -EAGAIN;
}

bool rb_vhost_server_check_memory(struct rb_vhost_server *s)
{
	if (!atomic_load(&s->mem_faulted))
		return false;
	atomic_store(&s->mem_faulted, false);
	if (s->conn_fd < 0)
		return false;
	rb_err(s->name, "guest memory shrank under the daemon (SIGBUS in a region of this VM; it now reads as zeros): disconnecting the frontend");
	reset_state(s);
	close_fd(&s->conn_fd);
	return true;
}

/* Acts on one received message (header checked, payload read, fds kept in
 * m) and answers it; returns what dispatch() did.  Closes every fd no
 * handler kept. */
static int handle_one(struct rb_vhost_server *s, struct msg *m)
{
	rb_debug(s->name, "request %u size %u fds %u", m->hdr.request, m->hdr.size, m->nfds);
	int rc = dispatch(s, m);
	bool need_ack = (m->hdr.flags & RB_VHOST_USER_FLAG_NEED_REPLY) &&
			(s->protocol_features & (1ull << RB_VHOST_USER_PROTOCOL_F_REPLY_ACK));
	if (rc != 1 && need_ack && (rc == 0 || rc == -EAGAIN)) {
		if (send_u64(s, m, rc == 0 ? 0 : 1))
			rc = -EIO;
	}
	if (m->nfds) {
		rb_warn(s->name, "request %u carried %u unexpected file descriptors; closed",
			m->hdr.request, m->nfds);
	}
	close_msg_fds(m);
	return rc;
}

/* A protocol violation (or the frontend leaving) ends the connection;
 * the socket accepts the next frontend. */
static void end_if_fatal(struct rb_vhost_server *s, int rc)
{
	if (rc < 0 && rc != -EAGAIN) {
		if (rc == -ECONNRESET)
			rb_info(s->name, "frontend disconnected");
		else
			rb_err(s->name, "closing the connection after a protocol error");
		reset_state(s);
		close_fd(&s->conn_fd);
	}
}

static void serve_one(struct rb_vhost_server *s)
{
	struct msg *m = s->msg;
	int rc;

	if (rb_vhost_server_check_memory(s))
		return;
	rc = recv_msg(s, m);
	if (rc == 0)
		rc = handle_one(s, m);
	close_msg_fds(m);
	end_if_fatal(s, rc);
}

int rb_vhost_server_handle_msg(struct rb_vhost_server *s, const struct rb_vhost_msg_hdr *hdr,
			       const void *payload, const int *fds, unsigned nfds)
{
	struct msg *m = malloc(sizeof(*m));
	char err[256];
	int rc;

	if (!m) {
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		return -ENOMEM;
	}
	/* What recv_msg() would have made of the same bytes and fds. */
	m->hdr = *hdr;
	m->nfds = 0;
	for (unsigned i = 0; i < nfds; i++) {
		if (m->nfds < RB_VHOST_USER_MAX_FDS)
			m->fds[m->nfds++] = fds[i];
		else
			close(fds[i]);
	}
	if (nfds > RB_VHOST_USER_MAX_FDS) {
		rb_err(s->name, "message carried more than %u file descriptors", RB_VHOST_USER_MAX_FDS);
		rc = -EPROTO;
	} else if (s->conn_fd < 0) {
		rc = -ENOTCONN;
	} else if (rb_vhost_check_hdr(&m->hdr, err, sizeof(err))) {
		rb_err(s->name, "%s", err);
		rc = -EPROTO;
	} else {
		memcpy(m->payload, payload, m->hdr.size);
		rc = handle_one(s, m);
	}
	close_msg_fds(m);
	free(m);
	if (rc != -ENOTCONN)
		end_if_fatal(s, rc);
	return rc < 0 && rc != -EAGAIN ? rc : 0;
}

/* ---- socket --------------------------------------------------------------- */

static int make_listener(const char *path, int *out, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		rb_vhost_errf(err, errlen, "socket path %s is longer than %zu bytes", path,
			      sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			rb_vhost_errf(err, errlen, "%s exists and is not a socket", path);
			return -ENOTSOCK;
		}
		/* A socket file: in use if someone accepts on it, else stale. */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			rb_vhost_errf(err, errlen, "socket %s is in use by another process", path);
			return -EADDRINUSE;
		}
		if (probe >= 0)
			close(probe);
		unlink(path);
	}
	/* Non-blocking: a readiness that went away (the client gave up)
	 * must not leave the control thread, shared by every VM, in accept. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rb_vhost_errf(err, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
		int e = errno;
		rb_vhost_errf(err, errlen, "cannot listen on %s: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	*out = fd;
	return 0;
}

static void accept_one(struct rb_vhost_server *s)
{
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0) {
		if (errno != EINTR && errno != EAGAIN)
			rb_err(s->name, "accept: %s", strerror(errno));
		return;
	}
	/* A frontend that stalls mid-message must not stall the control
	 * thread (shared by every VM): give it a second per message. */
	struct timeval tv = {.tv_sec = 1};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	s->conn_fd = fd;
	atomic_fetch_add_explicit(&s->connects, 1, memory_order_relaxed);
	rb_info(s->name, "frontend connected on %s", s->path);
}

int rb_vhost_server_new(const char *path, const struct rb_vhost_dev_ops *ops, void *dev,
			const char *name, struct rb_vhost_server **out, char *err,
			size_t errlen)
{
	struct rb_vhost_server *s = calloc(1, sizeof(*s));
	int rc;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->path = strdup(path);
	s->msg = malloc(sizeof(*s->msg));
	if (!s->path || !s->msg) {
		free(s->path);
		free(s->msg);
		free(s);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(s->name, sizeof(s->name), "%s", name ? name : "vhost");
	s->ops = ops;
	s->dev = dev;
	s->nqueues = ops->num_queues(dev);
	if (s->nqueues == 0 || s->nqueues > RB_VHOST_MAX_QUEUES) {
		rb_vhost_errf(err, errlen, "%u queues (must be 1..%u)", s->nqueues, RB_VHOST_MAX_QUEUES);
		free(s->path);
		free(s->msg);
		free(s);
		return -EINVAL;
	}
	s->conn_fd = -1;
	s->backend_fd = -1;
	for (unsigned i = 0; i < RB_VHOST_MAX_QUEUES; i++)
		s->vr[i].kick_fd = s->vr[i].call_fd = -1;
	rc = make_listener(path, &s->listen_fd, err, errlen);
	if (rc) {
		free(s->path);
		free(s->msg);
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void rb_vhost_server_free(struct rb_vhost_server *s)
{
	if (!s)
		return;
	reset_state(s);
	close_fd(&s->conn_fd);
	close_fd(&s->listen_fd);
	unlink(s->path);
	free(s->path);
	free(s->msg);
	free(s);
}

int rb_vhost_server_poll_fd(const struct rb_vhost_server *s)
{
	return s->conn_fd >= 0 ? s->conn_fd : s->listen_fd;
}

void rb_vhost_server_handle(struct rb_vhost_server *s)
{
	if (s->conn_fd < 0)
		accept_one(s);
	else
		serve_one(s);
}

bool rb_vhost_server_connected(const struct rb_vhost_server *s)
{
	return s->conn_fd >= 0;
}

uint64_t rb_vhost_server_connects(const struct rb_vhost_server *s)
{
	return atomic_load_explicit(&s->connects, memory_order_relaxed);
}

int rb_vhost_server_config_changed(struct rb_vhost_server *s, char *err, size_t errlen)
{
	if (s->conn_fd < 0) {
		rb_vhost_errf(err, errlen, "no frontend is connected");
		return -ENOTCONN;
	}
	if (s->backend_fd < 0) {
		rb_vhost_errf(err, errlen,
			      "the frontend gave no backend channel (BACKEND_REQ not negotiated): it sees the new size when it reads the config space again (guest reboot or reconnect)");
		return -ENOTSUP;
	}
	/* No NEED_REPLY: nothing here waits for the frontend, which may be
	 * busy sending us a message at this very moment. */
	struct rb_vhost_msg_hdr hdr = {
		.request = RB_VHOST_USER_BACKEND_CONFIG_CHANGE_MSG,
		.flags = RB_VHOST_USER_VERSION,
		.size = 0,
	};
	ssize_t n;
	do {
		n = send(s->backend_fd, &hdr, sizeof(hdr), MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(hdr)) {
		rb_vhost_errf(err, errlen, "backend channel: %s; closed",
			      n < 0 ? strerror(errno) : "short write");
		rb_warn(s->name, "%s", err);
		close_fd(&s->backend_fd);
		return -EIO;
	}
	rb_debug(s->name, "config change announced on the backend channel");
	return 0;
}

const struct rb_vhost_mem *rb_vhost_server_mem(const struct rb_vhost_server *s)
{
	return s->conn_fd >= 0 && s->mem.n ? &s->mem : NULL;
}
