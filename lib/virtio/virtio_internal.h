/* SPDX-License-Identifier: MIT */
/*
 * What the files of lib/virtio share: the single-fetch copy from guest
 * memory and the error formatter.  Nothing outside lib/virtio includes it.
 */
#ifndef ROSEN_VIRTIO_INTERNAL_H
#define ROSEN_VIRTIO_INTERNAL_H

#include <rosen/virtio.h>

#include <string.h>

#define RB_UNLIKELY(x) __builtin_expect(!!(x), 0)

/*
 * Copies `len` bytes the guest may still be changing into local memory.
 * The compiler barrier keeps the compiler from dropping the local copy and
 * re-reading guest memory where the copy is used: the value we validate
 * must be the value we use (the double-fetch bugs of vhost-crypto).
 */
static inline void rb_virtio_copy_once(void *dst, const void *guest, size_t len)
{
	memcpy(dst, guest, len);
	__asm__ __volatile__("" ::: "memory");
}

/* inflight.c: the log updates of the data path (vq->inflight set). */
void rb_virtq_log_pop(struct rb_virtq *vq, uint16_t head);
void rb_virtq_log_batch(struct rb_virtq *vq, uint16_t head);
void rb_virtq_log_used(struct rb_virtq *vq, uint16_t head);

void rb_virtio_errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
