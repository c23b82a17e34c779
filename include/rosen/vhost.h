/* SPDX-License-Identifier: MIT */
/*
 * vhost-user backend (server) protocol engine: one listening socket, one
 * frontend at a time, the control messages QEMU 7.2 sends to a
 * vhost-user-blk backend.  It knows nothing about virtio-blk or NDP: a
 * device plugs in through struct rb_vhost_dev_ops.  It never trusts a
 * message: every payload is checked by a pure validation function before
 * anything acts on it, and a bad message closes the connection with a log
 * line, never the daemon.
 */
#ifndef ROSEN_VHOST_H
#define ROSEN_VHOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Wire format (QEMU docs/interop/vhost-user.rst) ---------------------- */

enum rb_vhost_req {
	RB_VHOST_USER_GET_FEATURES = 1,
	RB_VHOST_USER_SET_FEATURES = 2,
	RB_VHOST_USER_SET_OWNER = 3,
	RB_VHOST_USER_RESET_OWNER = 4,
	RB_VHOST_USER_SET_MEM_TABLE = 5,
	RB_VHOST_USER_SET_LOG_BASE = 6,
	RB_VHOST_USER_SET_LOG_FD = 7,
	RB_VHOST_USER_SET_VRING_NUM = 8,
	RB_VHOST_USER_SET_VRING_ADDR = 9,
	RB_VHOST_USER_SET_VRING_BASE = 10,
	RB_VHOST_USER_GET_VRING_BASE = 11,
	RB_VHOST_USER_SET_VRING_KICK = 12,
	RB_VHOST_USER_SET_VRING_CALL = 13,
	RB_VHOST_USER_SET_VRING_ERR = 14,
	RB_VHOST_USER_GET_PROTOCOL_FEATURES = 15,
	RB_VHOST_USER_SET_PROTOCOL_FEATURES = 16,
	RB_VHOST_USER_GET_QUEUE_NUM = 17,
	RB_VHOST_USER_SET_VRING_ENABLE = 18,
	RB_VHOST_USER_SET_BACKEND_REQ_FD = 21, /* formerly SET_SLAVE_REQ_FD */
	RB_VHOST_USER_GET_CONFIG = 24,
	RB_VHOST_USER_SET_CONFIG = 25,
	RB_VHOST_USER_GET_INFLIGHT_FD = 31,
	RB_VHOST_USER_SET_INFLIGHT_FD = 32,
	RB_VHOST_USER_RESET_DEVICE = 34,
	RB_VHOST_USER_GET_MAX_MEM_SLOTS = 36,
};

#define RB_VHOST_USER_VERSION 0x1u
#define RB_VHOST_USER_FLAG_REPLY (1u << 2)
#define RB_VHOST_USER_FLAG_NEED_REPLY (1u << 3)
#define RB_VHOST_USER_HDR_SIZE 12u
#define RB_VHOST_USER_MAX_PAYLOAD 4096u
#define RB_VHOST_USER_MAX_FDS 8u
#define RB_VHOST_USER_VRING_IDX_MASK 0xffu
#define RB_VHOST_USER_VRING_NOFD (1u << 8)

/* Virtio feature bit 30: the backend speaks GET/SET_PROTOCOL_FEATURES. */
#define RB_VHOST_USER_F_PROTOCOL_FEATURES 30

enum {
	RB_VHOST_USER_PROTOCOL_F_MQ = 0,
	RB_VHOST_USER_PROTOCOL_F_REPLY_ACK = 3,
	RB_VHOST_USER_PROTOCOL_F_BACKEND_REQ = 5, /* formerly SLAVE_REQ */
	RB_VHOST_USER_PROTOCOL_F_CONFIG = 9,
	RB_VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD = 12,
};

/* Requests the backend sends on the backend channel (SET_BACKEND_REQ_FD). */
enum rb_vhost_backend_req {
	RB_VHOST_USER_BACKEND_CONFIG_CHANGE_MSG = 2, /* no payload: re-read GET_CONFIG */
};

#define RB_VHOST_MAX_MEM_REGIONS 8u
#define RB_VHOST_MAX_QUEUES 16u
#define RB_VHOST_CONFIG_SPACE_MAX 256u

struct rb_vhost_msg_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
} __attribute__((packed));

struct rb_vhost_vring_state {
	uint32_t index;
	uint32_t num;
} __attribute__((packed));

struct rb_vhost_vring_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc_uva;
	uint64_t used_uva;
	uint64_t avail_uva;
	uint64_t log_gpa;
} __attribute__((packed));

struct rb_vhost_mem_region_desc {
	uint64_t gpa;
	uint64_t size;
	uint64_t uva;
	uint64_t mmap_offset;
} __attribute__((packed));

struct rb_vhost_mem_table_desc {
	uint32_t nregions;
	uint32_t padding;
	struct rb_vhost_mem_region_desc regions[RB_VHOST_MAX_MEM_REGIONS];
} __attribute__((packed));

struct rb_vhost_config_hdr {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
} __attribute__((packed));

/* GET_INFLIGHT_FD / SET_INFLIGHT_FD (QEMU's VhostUserInflight is not
 * packed: 24 bytes on the wire). */
struct rb_vhost_inflight_desc {
	uint64_t mmap_size;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
	uint32_t padding;
} __attribute__((packed));

/* ---- Pure validators (no side effects; tested and fuzzed alone) -------- */

/* Header: version 1, no REPLY flag from a frontend, size <= max payload. */
int rb_vhost_check_hdr(const struct rb_vhost_msg_hdr *hdr, char *err, size_t errlen);

/* SET_MEM_TABLE: 1..8 regions, exactly that many fds, sizes non-zero, no
 * overflow of gpa/uva/mmap_offset + size, regions not overlapping in gpa. */
int rb_vhost_check_mem_table(const void *payload, uint32_t size, unsigned nfds,
			     struct rb_vhost_mem_table_desc *out, char *err,
			     size_t errlen);

/* SET_VRING_NUM/BASE/ENABLE, GET_VRING_BASE: index < nqueues; for NUM a
 * power of two in 1..32768; for BASE <= 0xffff; for ENABLE 0 or 1. */
int rb_vhost_check_vring_state(uint32_t request, const void *payload,
			       uint32_t size, unsigned nqueues,
			       struct rb_vhost_vring_state *out, char *err,
			       size_t errlen);

/* SET_VRING_ADDR: index < nqueues, size exact. */
int rb_vhost_check_vring_addr(const void *payload, uint32_t size,
			      unsigned nqueues, struct rb_vhost_vring_addr *out,
			      char *err, size_t errlen);

/* SET_VRING_KICK/CALL/ERR: u64 payload, index < nqueues, an fd iff the
 * NOFD bit is clear.  Returns the queue index in *index. */
int rb_vhost_check_vring_fd(const void *payload, uint32_t size, unsigned nfds,
			    unsigned nqueues, unsigned *index, bool *has_fd,
			    char *err, size_t errlen);

/* GET_CONFIG/SET_CONFIG: offset + size within the config space and the
 * payload, without overflow. */
int rb_vhost_check_config(const void *payload, uint32_t size,
			  struct rb_vhost_config_hdr *out, char *err,
			  size_t errlen);

/* GET_INFLIGHT_FD / SET_INFLIGHT_FD: size exact, num_queues 1..nqueues,
 * queue_size a power of two in 1..32768; for GET no fd (mmap_size and
 * mmap_offset are ignored); for SET exactly one fd, mmap_size at least
 * num_queues regions of queue_size entries (rb_vring_inflight_bytes) and
 * at most 64 KiB more, offset + size without overflow. */
int rb_vhost_check_inflight(uint32_t request, const void *payload, uint32_t size,
			    unsigned nfds, unsigned nqueues,
			    struct rb_vhost_inflight_desc *out, char *err, size_t errlen);
/* SET_BACKEND_REQ_FD: only once BACKEND_REQ was negotiated, exactly one
 * fd, a payload of 0 bytes (QEMU) or one u64 (ignored). */
int rb_vhost_check_backend_req_fd(uint32_t size, unsigned nfds, bool negotiated, char *err,
				  size_t errlen);

/* ---- Guest memory -------------------------------------------------------- */

struct rb_vhost_mem_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t uva;
	uint8_t *host;      /* mapping of [gpa, gpa + size) */
	void *mmap_base;
	size_t mmap_len;
};

struct rb_vhost_mem {
	unsigned n;
	struct rb_vhost_mem_region r[RB_VHOST_MAX_MEM_REGIONS];
	bool unsealed; /* a region is a file that could shrink under us */
};

/*
 * rosenbridged --allow-unsealed-memory: accept guest memory that is not a
 * sealable memfd (hugetlbfs, /dev/shm files), which a frontend could
 * truncate under the daemon.  Installs a SIGBUS handler that confines such
 * a fault to its VM: its memory reads as zeros from then on and the server
 * disconnects it (rb_vhost_server_check_memory()).  Without it such memory
 * is refused at SET_MEM_TABLE.  Call once at start.  0 or -errno.
 */
int rb_vhost_allow_unsealed_memory(char *err, size_t errlen);

/* Host pointer for [gpa, gpa+len) when the whole range lies in one region. */
void *rb_vhost_gpa_to_host(const struct rb_vhost_mem *mem, uint64_t gpa,
			   uint64_t len);
/* Same for frontend virtual addresses (ring addresses). */
void *rb_vhost_uva_to_host(const struct rb_vhost_mem *mem, uint64_t uva,
			   uint64_t len);

/* ---- Devices plug in here -------------------------------------------------- */

/* A ring ready to serve: host addresses checked for the whole ring size. */
struct rb_vhost_ring {
	unsigned index;
	uint16_t size;
	uint16_t last_avail;
	void *desc, *avail, *used;
	int kick_fd;              /* -1: frontend does not kick (poll) */
	int call_fd;              /* -1: frontend does not want interrupts */
	uint64_t features;        /* negotiated virtio features */
	const struct rb_vhost_mem *mem;
	/* INFLIGHT_SHMFD: this ring's region of the frontend's inflight
	 * memory (struct rb_vring_inflight, inflight_desc_num >= size
	 * entries, mapped for its whole size), or NULL: no tracking.  Its
	 * contents are the frontend's: the device must check them. */
	void *inflight;
	uint16_t inflight_desc_num;
};

struct rb_vhost_dev_ops {
	/* Virtio device features the device offers (the engine adds
	 * VERSION_1, INDIRECT_DESC, EVENT_IDX and PROTOCOL_FEATURES). */
	uint64_t (*features)(void *dev);
	unsigned (*num_queues)(void *dev);
	/* Fill buf with config space bytes [offset, offset + len). */
	void (*get_config)(void *dev, uint8_t *buf, uint32_t offset, uint32_t len);
	/* Start serving a ring (resuming from its inflight log, if any).
	 * 0 or -errno. */
	int (*ring_start)(void *dev, const struct rb_vhost_ring *ring);
	/* Stop serving a ring: wait for its in-flight requests, return the
	 * next avail index to resume from. */
	uint16_t (*ring_stop)(void *dev, unsigned index);
};

struct rb_vhost_server;

/*
 * Listens on a unix socket at `path`.  Fails with -EADDRINUSE when another
 * process listens there, replaces a stale socket file, -ENOTSOCK when the
 * path exists and is not a socket.
 */
int rb_vhost_server_new(const char *path, const struct rb_vhost_dev_ops *ops,
			void *dev, const char *name, struct rb_vhost_server **out,
			char *err, size_t errlen);

/* Stops every ring (draining), disconnects, removes the socket file. */
void rb_vhost_server_free(struct rb_vhost_server *srv);

/* The fd to poll for input: the listening socket, or the connection. */
int rb_vhost_server_poll_fd(const struct rb_vhost_server *srv);

/* Handles what is readable on the poll fd: accepts a frontend or serves
 * one message.  Errors are logged and end the connection, never more. */
void rb_vhost_server_handle(struct rb_vhost_server *srv);

bool rb_vhost_server_connected(const struct rb_vhost_server *srv);
/* Frontends accepted on the socket since it was created (metrics). */
uint64_t rb_vhost_server_connects(const struct rb_vhost_server *srv);

/*
 * Tells the frontend that the config space changed (a resized disk):
 * VHOST_USER_BACKEND_CONFIG_CHANGE_MSG on the backend channel, without
 * waiting for an answer (QEMU then reads GET_CONFIG again and interrupts
 * the guest).  0: sent; -ENOTCONN: no frontend; -ENOTSUP: the frontend
 * gave no backend channel (it did not negotiate BACKEND_REQ); -EIO: the
 * channel failed (it is closed).  err says which.
 */
int rb_vhost_server_config_changed(struct rb_vhost_server *srv, char *err, size_t errlen);

/* Guest memory of the connected frontend (NULL when none): control
 * thread only, valid until the next message is served. */
const struct rb_vhost_mem *rb_vhost_server_mem(const struct rb_vhost_server *srv);

/* Disconnects the frontend, with a log line, if its guest memory shrank
 * under the daemon (a SIGBUS confined by --allow-unsealed-memory).  Called
 * on every message and periodically by the daemon.  true: it did. */
bool rb_vhost_server_check_memory(struct rb_vhost_server *srv);

/* ---- Frontend (client) side, for librosen's vhost-user transport ---------- */

struct rb_vhost_client;

int rb_vhost_client_connect(const char *path, struct rb_vhost_client **out, char *err,
			    size_t errlen);
void rb_vhost_client_close(struct rb_vhost_client *c);

/*
 * Sends one request (payload and fds) and, when reply_size is not 0, reads
 * a reply that must carry the same request code, the reply flag and exactly
 * reply_size bytes.  With need_ack, asks for a REPLY_ACK and fails unless
 * the backend acknowledged with 0.  0 or -errno with a message.
 */
int rb_vhost_client_request(struct rb_vhost_client *c, uint32_t request, const void *payload,
			    uint32_t size, const int *fds, unsigned nfds, void *reply,
			    uint32_t reply_size, bool need_ack, char *err, size_t errlen);

/* Sends a request without fds and reads a reply of exactly reply_size
 * bytes and at most one fd (-1 when none came): GET_INFLIGHT_FD. */
int rb_vhost_client_request_fd(struct rb_vhost_client *c, uint32_t request, const void *payload,
			       uint32_t size, void *reply, uint32_t reply_size, int *reply_fd,
			       char *err, size_t errlen);

/* True when the backend closed the connection (it is gone: crashed,
 * killed or stopped).  Does not block. */
bool rb_vhost_client_hung_up(const struct rb_vhost_client *c);

#ifdef __cplusplus
}
#endif
#endif /* ROSEN_VHOST_H */
