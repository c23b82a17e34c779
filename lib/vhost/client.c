/* SPDX-License-Identifier: MIT */
/*
 * vhost-user frontend (client) messages, for a process that drives a
 * vhost-user backend itself (librosen's "virtio-user" transport).  Replies
 * are checked as strictly as the server checks requests: code, flags and
 * size must be exactly what was asked for.
 */
#include "vhost_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

struct rb_vhost_client {
	int fd;
};

int rb_vhost_client_connect(const char *path, struct rb_vhost_client **out, char *err,
			    size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct rb_vhost_client *c;

	*out = NULL;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		rb_vhost_errf(err, errlen, "socket path %s is too long", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		rb_vhost_errf(err, errlen, "cannot connect to vhost-user socket %s: %s", path,
			      strerror(e));
		if (c->fd >= 0)
			close(c->fd);
		free(c);
		return -e;
	}
	/* A backend that never answers must not hang the application. */
	struct timeval tv = {.tv_sec = 10};
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	*out = c;
	return 0;
}

void rb_vhost_client_close(struct rb_vhost_client *c)
{
	if (!c)
		return;
	close(c->fd);
	free(c);
}

static int recv_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = recv(fd, p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads the reply header; with `fd`, keeps the one fd that may come with
 * it (anything else that came is closed). */
static int recv_hdr(int sock, struct rb_vhost_msg_hdr *hdr, int *fd)
{
	char cbuf[CMSG_SPACE(sizeof(int) * RB_VHOST_USER_MAX_FDS)];
	struct iovec iov = {hdr, sizeof(*hdr)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf)};
	ssize_t n;

	if (!fd)
		return recv_full(sock, hdr, sizeof(*hdr));
	*fd = -1;
	do {
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t cnt = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < cnt; i++) {
			int f;
			memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (*fd < 0)
				*fd = f;
			else
				close(f);
		}
	}
	if (n <= 0)
		return n < 0 ? -errno : -ECONNRESET;
	if ((size_t)n < sizeof(*hdr))
		return recv_full(sock, (uint8_t *)hdr + n, sizeof(*hdr) - (size_t)n);
	return 0;
}

static int read_reply_fd(struct rb_vhost_client *c, uint32_t request, void *reply, uint32_t size,
			 int *fd, char *err, size_t errlen)
{
	struct rb_vhost_msg_hdr hdr;
	uint8_t junk[RB_VHOST_USER_MAX_PAYLOAD];
	int rc = recv_hdr(c->fd, &hdr, fd);

	if (rc) {
		rb_vhost_errf(err, errlen, "no reply to request %u: %s", request,
			      rc == -EAGAIN ? "timed out" : strerror(-rc));
		return rc;
	}
	if (hdr.request != request || (hdr.flags & 0x3) != RB_VHOST_USER_VERSION ||
	    !(hdr.flags & RB_VHOST_USER_FLAG_REPLY) || hdr.size != size) {
		rb_vhost_errf(err, errlen,
			      "bad reply to request %u: request %u flags 0x%x size %u (expected size %u)",
			      request, hdr.request, hdr.flags, hdr.size, size);
		if (hdr.size <= sizeof(junk))
			recv_full(c->fd, junk, hdr.size);
		if (fd && *fd >= 0) {
			close(*fd);
			*fd = -1;
		}
		return -EPROTO;
	}
	rc = recv_full(c->fd, reply, size);
	if (rc)
		rb_vhost_errf(err, errlen, "truncated reply to request %u", request);
	return rc;
}

static int read_reply(struct rb_vhost_client *c, uint32_t request, void *reply, uint32_t size,
		      char *err, size_t errlen)
{
	return read_reply_fd(c, request, reply, size, NULL, err, errlen);
}

bool rb_vhost_client_hung_up(const struct rb_vhost_client *c)
{
	/* A backend never writes on its own: anything readable is the end of
	 * the stream (or garbage we would not understand either). */
	struct pollfd p = {.fd = c->fd, .events = POLLIN | POLLRDHUP};

	return poll(&p, 1, 0) != 0;
}

int rb_vhost_client_request_fd(struct rb_vhost_client *c, uint32_t request, const void *payload,
			       uint32_t size, void *reply, uint32_t reply_size, int *reply_fd,
			       char *err, size_t errlen)
{
	int rc = rb_vhost_client_request(c, request, payload, size, NULL, 0, NULL, 0, false, err,
					 errlen);

	*reply_fd = -1;
	if (rc)
		return rc;
	rc = read_reply_fd(c, request, reply, reply_size, reply_fd, err, errlen);
	if (rc && *reply_fd >= 0) {
		close(*reply_fd);
		*reply_fd = -1;
	}
	return rc;
}

int rb_vhost_client_request(struct rb_vhost_client *c, uint32_t request, const void *payload,
			    uint32_t size, const int *fds, unsigned nfds, void *reply,
			    uint32_t reply_size, bool need_ack, char *err, size_t errlen)
{
	struct rb_vhost_msg_hdr hdr = {
		.request = request,
		.flags = RB_VHOST_USER_VERSION | (need_ack ? RB_VHOST_USER_FLAG_NEED_REPLY : 0),
		.size = size,
	};
	struct iovec iov[2] = {{&hdr, sizeof(hdr)}, {(void *)payload, size}};
	char cbuf[CMSG_SPACE(sizeof(int) * RB_VHOST_USER_MAX_FDS)];
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = size ? 2 : 1};
	ssize_t n;

	if (nfds > RB_VHOST_USER_MAX_FDS || size > RB_VHOST_USER_MAX_PAYLOAD)
		return -EINVAL;
	if (nfds) {
		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	do {
		n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t)(sizeof(hdr) + size)) {
		int e = n < 0 ? errno : EIO;
		rb_vhost_errf(err, errlen, "cannot send request %u: %s", request, strerror(e));
		return -e;
	}
	if (reply_size) {
		int rc = read_reply(c, request, reply, reply_size, err, errlen);
		if (rc)
			return rc;
	}
	if (need_ack) {
		uint64_t ack;
		int rc = read_reply(c, request, &ack, sizeof(ack), err, errlen);
		if (rc)
			return rc;
		if (ack) {
			rb_vhost_errf(err, errlen, "backend refused request %u", request);
			return -EREMOTEIO;
		}
	}
	return 0;
}
