/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the vhost-user backend (lib/vhost/server.c, msg.c,
 * mem.c): a hostile frontend's message sequences, fed one by one to the
 * server's message handler (rb_vhost_server_handle_msg(), the seam the
 * socket path goes through too) with file descriptors the input chooses
 * (eventfds, memfds sized to the memory table or not, sealed or not,
 * pipes, /dev/null, a regular file).  The server is a real one on a unix
 * socket with a connected client that reads every reply; the device
 * behind it is a stub that checks what the engine hands it.
 *
 * Bugs it looks for: a crash or sanitizer report; a ring handed to the
 * device whose tables are not mapped guest memory for their whole size
 * (the stub reads every byte), started twice or stopped when not started,
 * with blocking or closed notification fds; config reads outside the
 * config space; a reply that is not framed as the request's reply, or more
 * than one reply per message; any fd given to the server still open after
 * rb_vhost_server_free() (each one is either kept or closed).
 *
 * Input (little-endian; missing bytes are zero):
 *   [0] queues the device has (% 16 + 1); [1] bit 0: the device refuses
 *   to start rings
 *   then messages until the input ends, each:
 *     request  u8 (0xff: a u32 follows)
 *     flags    u8: bit 3 NEED_REPLY; bit 7: a raw u32 follows instead
 *     size     u16 (the header's size; payload bytes follow, at most 4096)
 *     payload
 *     fds      u8 (% 16), then one kind byte per fd (see make_fd())
 *   A message that ends the connection is followed by a reconnect.
 */
#include "fuzz_common.h"

#include "../../lib/vhost/vhost_internal.h"

#include <rosen/log.h>
#include <rosen/vhost.h>
#include <rosen/virtio.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#define T "fuzz_vhost"
#define MAX_MSGS 64u
#define MAX_MEMFD (4u << 20)

/* ---- the stub device ---------------------------------------------------------- */

static bool g_verbose; /* RB_FUZZ_VERBOSE: say when rings start, and what ends connections */

struct stub {
	unsigned nqueues;
	bool refuse;
	bool started[RB_VHOST_MAX_QUEUES];
	uint16_t last_avail[RB_VHOST_MAX_QUEUES];
};

static uint64_t st_features(void *dev)
{
	(void)dev;
	return (1ull << RB_VIRTIO_BLK_F_SEG_MAX) | (1ull << RB_VIRTIO_BLK_F_BLK_SIZE) |
	       (1ull << RB_VIRTIO_BLK_F_FLUSH) | (1ull << RB_VIRTIO_BLK_F_MQ);
}

static unsigned st_num_queues(void *dev)
{
	return ((struct stub *)dev)->nqueues;
}

static void st_get_config(void *dev, uint8_t *buf, uint32_t offset, uint32_t len)
{
	(void)dev;
	if (offset > RB_VHOST_CONFIG_SPACE_MAX || len > RB_VHOST_CONFIG_SPACE_MAX - offset)
		fz_bug(T, "config bytes [%u, +%u) asked for, outside the config space", offset, len);
	for (uint32_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(offset + i);
}

/* The whole ring must be mapped guest memory: read every byte of it. */
static void touch(const struct rb_vhost_ring *r, const void *p, size_t len, const char *what)
{
	volatile uint8_t sink = 0;

	bool in = false;
	for (unsigned i = 0; r->mem && i < r->mem->n && !in; i++) {
		uintptr_t a = (uintptr_t)p, lo = (uintptr_t)r->mem->r[i].host;
		in = a >= lo && a - lo <= r->mem->r[i].size && len <= r->mem->r[i].size - (a - lo);
	}
	if (!in)
		fz_bug(T, "ring %u: its %s table (%zu bytes at %p) is not inside one memory region",
		       r->index, what, len, p);
	for (size_t i = 0; i < len; i++)
		sink ^= ((const volatile uint8_t *)p)[i];
	(void)sink;
}

static int st_ring_start(void *dev, const struct rb_vhost_ring *r)
{
	struct stub *s = dev;

	if (r->index >= s->nqueues)
		fz_bug(T, "ring %u started on a %u-queue device", r->index, s->nqueues);
	if (s->started[r->index])
		fz_bug(T, "ring %u started twice", r->index);
	if (!r->size || r->size > RB_VIRTQ_MAX_SIZE || (r->size & (r->size - 1)))
		fz_bug(T, "ring %u started with size %u", r->index, r->size);
	touch(r, r->desc, rb_vring_desc_bytes(r->size), "descriptor");
	touch(r, r->avail, rb_vring_avail_bytes(r->size), "avail");
	touch(r, r->used, rb_vring_used_bytes(r->size), "used");
	int fds[2] = {r->kick_fd, r->call_fd};
	for (int i = 0; i < 2; i++) {
		if (fds[i] < 0)
			continue;
		int fl = fcntl(fds[i], F_GETFL);
		if (fl < 0 || !(fl & O_NONBLOCK))
			fz_bug(T, "ring %u started with %s fd %d %s", r->index, i ? "call" : "kick",
			       fds[i], fl < 0 ? "closed" : "blocking");
	}
	if (g_verbose)
		fprintf(stderr, "fuzz_vhost: ring %u started (size %u)%s\n", r->index, r->size,
			s->refuse ? ", refused" : "");
	if (s->refuse)
		return -EINVAL;
	s->started[r->index] = true;
	s->last_avail[r->index] = r->last_avail;
	return 0;
}

static uint16_t st_ring_stop(void *dev, unsigned index)
{
	struct stub *s = dev;

	if (index >= s->nqueues || !s->started[index])
		fz_bug(T, "ring %u stopped but never started", index);
	s->started[index] = false;
	return s->last_avail[index];
}

static const struct rb_vhost_dev_ops stub_ops = {
	.features = st_features,
	.num_queues = st_num_queues,
	.get_config = st_get_config,
	.ring_start = st_ring_start,
	.ring_stop = st_ring_stop,
};

/* ---- fds --------------------------------------------------------------------------- */

#define MAX_CREATED 256u
static int g_created[MAX_CREATED];
static unsigned g_n_created;

/* The size a memory table asks region i's file to have, or 0. */
static uint64_t table_needs(uint32_t req, const uint8_t *payload, uint32_t size, unsigned i)
{
	struct rb_vhost_mem_region_desc r;

	if (req != RB_VHOST_USER_SET_MEM_TABLE || size < 8 + 32 * (i + 1))
		return 0;
	memcpy(&r, payload + 8 + 32 * i, sizeof(r));
	if (r.mmap_offset + r.size < r.size)
		return 0;
	return r.mmap_offset + r.size;
}

static int memfd_of(uint64_t size, unsigned flags, bool seal)
{
	int fd = memfd_create("fuzz-guest", MFD_CLOEXEC | flags);

	if (fd < 0)
		return -1;
	if (size > MAX_MEMFD)
		size = MAX_MEMFD;
	if (ftruncate(fd, (off_t)size) < 0 ||
	    (seal && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Kinds: 0 eventfd; 1 memfd sized as the table asks (sealable); 2 the
 * same, already sealed; 3 memfd of a size from the input; 4 memfd that
 * cannot be sealed; 5 /dev/null; 6 a pipe's read end; 7 a regular file
 * sized as the table asks (unsealable, like hugetlbfs).
 */
static int make_fd(struct fz *f, uint32_t req, const uint8_t *payload, uint32_t size, unsigned i)
{
	uint8_t kind = fz_u8(f) % 8;
	uint64_t need = table_needs(req, payload, size, i);
	int fd = -1;

	switch (kind) {
	case 0:
		fd = eventfd(0, EFD_CLOEXEC);
		break;
	case 1:
	case 2:
		fd = memfd_of(need, MFD_ALLOW_SEALING, kind == 2);
		break;
	case 3:
		fd = memfd_of((uint64_t)fz_u16(f) * 64, MFD_ALLOW_SEALING, false);
		break;
	case 4:
		fd = memfd_of(need, 0, false);
		break;
	case 5:
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		break;
	case 6: {
		int p[2];
		if (pipe2(p, O_CLOEXEC) == 0) {
			close(p[1]);
			fd = p[0];
		}
		break;
	}
	case 7:
		fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fd >= 0 && ftruncate(fd, (off_t)(need < MAX_MEMFD ? need : MAX_MEMFD)) < 0) {
			close(fd);
			fd = -1;
		}
		break;
	}
	if (fd >= 0 && g_n_created < MAX_CREATED)
		g_created[g_n_created++] = fd;
	return fd;
}

/* ---- the connection ------------------------------------------------------------------ */

static char g_path[108];

static int connect_client(struct rb_vhost_server *srv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (c < 0)
		return -1;
	memcpy(sa.sun_path, g_path, sizeof(g_path));
	if (connect(c, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(c);
		return -1;
	}
	rb_vhost_server_handle(srv); /* accepts */
	if (!rb_vhost_server_connected(srv)) {
		close(c);
		return -1;
	}
	return c;
}

/* Reads what the server sent for one message: at most one reply, framed
 * as the reply to `req` with a size that fits what it answers. */
static void drain(int c, uint32_t req)
{
	uint8_t buf[2 * (RB_VHOST_USER_HDR_SIZE + RB_VHOST_USER_MAX_PAYLOAD)];
	size_t have = 0;
	ssize_t n;

	while ((n = recv(c, buf + have, sizeof(buf) - have, MSG_DONTWAIT)) > 0)
		have += (size_t)n;
	if (have == 0)
		return;
	struct rb_vhost_msg_hdr h;
	if (have < sizeof(h))
		fz_bug(T, "a reply of %zu bytes to request %u", have, req);
	memcpy(&h, buf, sizeof(h));
	if (h.request != req || h.flags != (RB_VHOST_USER_VERSION | RB_VHOST_USER_FLAG_REPLY) ||
	    h.size > RB_VHOST_USER_MAX_PAYLOAD)
		fz_bug(T, "reply {request %u, flags 0x%x, size %u} to request %u", h.request, h.flags,
		       h.size, req);
	if (have != sizeof(h) + h.size)
		fz_bug(T, "%zu bytes sent for request %u, one reply of %u", have, req,
		       (unsigned)sizeof(h) + h.size);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static uint8_t payload[RB_VHOST_USER_MAX_PAYLOAD];
	struct fz f = {d, n, 0};
	struct stub dev = {0};
	struct rb_vhost_server *srv;
	char err[256];

	dev.nqueues = fz_u8(&f) % RB_VHOST_MAX_QUEUES + 1;
	dev.refuse = fz_u8(&f) & 1;
	g_n_created = 0;
	if (rb_vhost_server_new(g_path, &stub_ops, &dev, "fuzz", &srv, err, sizeof(err)))
		fz_bug(T, "no server: %s", err);
	int c = connect_client(srv);
	for (unsigned m = 0; m < MAX_MSGS && fz_left(&f) && c >= 0; m++) {
		struct rb_vhost_msg_hdr h;
		uint8_t rq = fz_u8(&f), fl = fz_u8(&f);
		int fds[16];

		h.request = rq == 0xff ? fz_u32(&f) : rq;
		h.flags = fl & 0x80 ? fz_u32(&f)
				    : RB_VHOST_USER_VERSION | (fl & RB_VHOST_USER_FLAG_NEED_REPLY);
		h.size = fz_u16(&f);
		fz_bytes(&f, payload, h.size < sizeof(payload) ? h.size : sizeof(payload));
		unsigned nfds = fz_u8(&f) % 16, got = 0;
		for (unsigned i = 0; i < nfds; i++) {
			int fd = make_fd(&f, h.request, payload, h.size, i);
			if (fd >= 0)
				fds[got++] = fd;
		}
		int rc = rb_vhost_server_handle_msg(srv, &h, payload, fds, got);
		drain(c, h.request);
		if (rc) {
			if (g_verbose)
				fprintf(stderr, "fuzz_vhost: request %u ended the connection: %s\n",
					h.request, strerror(-rc));
			if (rb_vhost_server_connected(srv))
				fz_bug(T, "request %u ended the connection (%d), still connected",
				       h.request, rc);
			for (unsigned q = 0; q < dev.nqueues; q++)
				if (dev.started[q])
					fz_bug(T, "ring %u still running after the connection ended", q);
			close(c);
			c = connect_client(srv);
		}
	}
	if (c >= 0)
		close(c);
	rb_vhost_server_free(srv);
	for (unsigned q = 0; q < dev.nqueues; q++)
		if (dev.started[q])
			fz_bug(T, "ring %u still running after rb_vhost_server_free()", q);
	/* Every fd handed over was kept by the server or closed; the server is
	 * gone, so all of them must be closed now. */
	for (unsigned i = 0; i < g_n_created; i++)
		if (fcntl(g_created[i], F_GETFD) >= 0)
			fz_bug(T, "fd %d handed to the server is still open after it was freed",
			       g_created[i]);
	return 0;
}

/* ---- seeds ---------------------------------------------------------------------------- */

static void msg(struct fz_buf *b, uint32_t req, bool need_reply, const void *p, uint16_t size,
		const uint8_t *fd_kinds, unsigned nfds)
{
	FZ_PUT(b, uint8_t, req < 0xff ? req : 0xff);
	if (req >= 0xff)
		FZ_PUT(b, uint32_t, req);
	FZ_PUT(b, uint8_t, need_reply ? RB_VHOST_USER_FLAG_NEED_REPLY : 0);
	FZ_PUT(b, uint16_t, size);
	fz_put(b, p, size);
	FZ_PUT(b, uint8_t, nfds);
	fz_put(b, fd_kinds, nfds);
}

static void u64msg(struct fz_buf *b, uint32_t req, uint64_t v, bool ack)
{
	msg(b, req, ack, &v, 8, NULL, 0);
}

/* What QEMU 7.2's vhost-user-blk sends for one queue, up to a running
 * ring, then a stop (GET_VRING_BASE). */
static void qemu_start(struct fz_buf *b, uint8_t mem_kind, bool ack)
{
	const uint16_t qsize = 16;
	const uint64_t base = 0x100000000ull;
	struct rb_vhost_mem_table_desc t = {.nregions = 1,
					    .regions = {{0, 0x10000, base, 0}}};
	struct rb_vhost_vring_state num = {0, qsize}, vb = {0, 0}, en = {0, 1};
	struct rb_vhost_vring_addr a = {0, 0, base, base + 0x2000, base + 0x1000, 0};
	uint8_t cfg[12 + 60] = {0};
	uint8_t ev = 0;

	FZ_PUT(b, uint8_t, 0); /* one queue */
	FZ_PUT(b, uint8_t, 0);
	msg(b, RB_VHOST_USER_GET_FEATURES, false, NULL, 0, NULL, 0);
	msg(b, RB_VHOST_USER_GET_PROTOCOL_FEATURES, false, NULL, 0, NULL, 0);
	u64msg(b, RB_VHOST_USER_SET_PROTOCOL_FEATURES,
	       (1ull << RB_VHOST_USER_PROTOCOL_F_MQ) | (1ull << RB_VHOST_USER_PROTOCOL_F_REPLY_ACK) |
		       (1ull << RB_VHOST_USER_PROTOCOL_F_CONFIG), false);
	msg(b, RB_VHOST_USER_GET_QUEUE_NUM, false, NULL, 0, NULL, 0);
	cfg[4] = 60; /* size */
	msg(b, RB_VHOST_USER_GET_CONFIG, false, cfg, sizeof(cfg), NULL, 0);
	msg(b, RB_VHOST_USER_SET_OWNER, ack, NULL, 0, NULL, 0);
	u64msg(b, RB_VHOST_USER_SET_FEATURES,
	       (1ull << RB_VIRTIO_F_VERSION_1) | (1ull << RB_VHOST_USER_F_PROTOCOL_FEATURES) |
		       (1ull << RB_VIRTIO_F_EVENT_IDX), ack);
	msg(b, RB_VHOST_USER_SET_MEM_TABLE, ack, &t, 8 + 32, &mem_kind, 1);
	msg(b, RB_VHOST_USER_SET_VRING_NUM, ack, &num, sizeof(num), NULL, 0);
	msg(b, RB_VHOST_USER_SET_VRING_BASE, ack, &vb, sizeof(vb), NULL, 0);
	msg(b, RB_VHOST_USER_SET_VRING_ADDR, ack, &a, sizeof(a), NULL, 0);
	u64msg(b, RB_VHOST_USER_SET_VRING_KICK, 0, ack);
	b->len--; /* the fd count of u64msg: one eventfd instead */
	FZ_PUT(b, uint8_t, 1);
	FZ_PUT(b, uint8_t, ev);
	u64msg(b, RB_VHOST_USER_SET_VRING_CALL, 0, ack);
	b->len--;
	FZ_PUT(b, uint8_t, 1);
	FZ_PUT(b, uint8_t, ev);
	msg(b, RB_VHOST_USER_SET_VRING_ENABLE, ack, &en, sizeof(en), NULL, 0);
	msg(b, RB_VHOST_USER_GET_VRING_BASE, false, &vb, sizeof(vb), NULL, 0);
}

static int write_seeds(const char *dir)
{
	struct fz_buf b = {0};
	int bad = 0;
	static const struct {
		const char *name;
		uint8_t mem_kind;
		bool ack;
	} runs[] = {
		{"qemu_start", 1, false},
		{"qemu_start_reply_ack", 1, true},
		{"qemu_start_sealed_memfd", 2, true},
		{"qemu_start_unsealable_memfd", 4, false},
		{"qemu_start_regular_file", 7, false},
		{"qemu_start_memfd_too_small", 3, false},
	};

	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		b.len = 0;
		qemu_start(&b, runs[i].mem_kind, runs[i].ack);
		bad |= fz_write_seed(dir, runs[i].name, b.p, b.len);
	}
	/* A ring running, then the table changes under it, then a reset. */
	b.len = 0;
	qemu_start(&b, 1, true);
	b.len -= 1 + 1 + 2 + 8 + 1; /* not the GET_VRING_BASE */
	struct rb_vhost_mem_table_desc t2 = {.nregions = 2,
					     .regions = {{0, 0x10000, 0x100000000ull, 0},
							 {0x20000, 0x1000, 0x200000000ull, 0}}};
	uint8_t two[2] = {1, 2};
	msg(&b, RB_VHOST_USER_SET_MEM_TABLE, true, &t2, 8 + 64, two, 2);
	msg(&b, RB_VHOST_USER_RESET_DEVICE, true, NULL, 0, NULL, 0);
	bad |= fz_write_seed(dir, "table_change_then_reset", b.p, b.len);
	free(b.p);
	return bad;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("RB_FUZZ_WRITE_SEEDS");

	(void)argc, (void)argv;
	g_verbose = getenv("RB_FUZZ_VERBOSE") != NULL;
	/* Protocol errors are the point: silent, unless asked. */
	rb_log_set_level(g_verbose ? RB_LOG_DEBUG : RB_LOG_OFF);
	snprintf(g_path, sizeof(g_path), "/tmp/fuzz_vhost.%d.sock", (int)getpid());
	if (dir)
		exit(write_seeds(dir));
	return 0;
}
