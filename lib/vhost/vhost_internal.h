/* SPDX-License-Identifier: MIT */
/* What the files of lib/vhost share.  Nothing outside lib/vhost includes it. */
#ifndef ROSEN_VHOST_INTERNAL_H
#define ROSEN_VHOST_INTERNAL_H

#include <rosen/vhost.h>

#include <stdatomic.h>

#define RB_VHOST_USER_MAX_RING 32768u
/* A frontend may hand back a larger inflight area than the regions need
 * (alignment); not more than this. */
#define RB_VHOST_INFLIGHT_SLACK 65536u

void rb_vhost_errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Maps the regions of a validated table from their fds (fstat first: a
 * file shorter than offset + size is refused, it would SIGBUS later).
 * Does not close the fds.  0 or -errno with a message. */
int rb_vhost_mem_map(struct rb_vhost_mem *mem,
		     const struct rb_vhost_mem_table_desc *desc, const int *fds,
		     char *err, size_t errlen);
void rb_vhost_mem_unmap(struct rb_vhost_mem *mem);

/* sigbus.c: memory that can shrink (rb_vhost_allow_unsealed_memory()). */
bool rb_vhost_unsealed_allowed(void);
/* A SIGBUS in one of mem's mappings zero-fills it and sets *faulted. */
void rb_vhost_sigbus_watch(const struct rb_vhost_mem *mem, atomic_bool *faulted);
void rb_vhost_sigbus_unwatch(const struct rb_vhost_mem *mem);

/*
 * Tests and fuzzing (tests/fuzz/fuzz_vhost.c), not the daemon's path:
 * serves one message as if it had just been read from the connection
 * rb_vhost_server_handle() accepted: hdr unchecked yet, payload of
 * hdr->size bytes (only read once the header passed), fds owned by the
 * call (kept by a handler or closed).  Replies go to the connection.
 * Returns 0 while the connection stays, or the -errno that ended it (the
 * state is then reset and the connection closed, as after a bad message
 * from the socket); -ENOTCONN, changing nothing, when there is no
 * connection.
 */
struct rb_vhost_server;
int rb_vhost_server_handle_msg(struct rb_vhost_server *srv, const struct rb_vhost_msg_hdr *hdr,
			       const void *payload, const int *fds, unsigned nfds);

#endif
