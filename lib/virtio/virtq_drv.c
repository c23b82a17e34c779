/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueue, driver side (for librosen): fill descriptors and the
 * avail ring, decide when to kick, and take used elements back.  The device
 * is not trusted: a used element with an id out of range, an id that is not
 * outstanding, or a length larger than the chain's writable bytes breaks
 * the queue instead of corrupting the driver's state.
 */
#include "virtio_internal.h"

#include <errno.h>
#include <stdlib.h>

static inline uint16_t *used_event(struct rb_virtq_drv *q)
{
	return &q->avail->ring[q->size];
}

static inline uint16_t *avail_event(struct rb_virtq_drv *q)
{
	return (uint16_t *)&q->used->ring[q->size];
}

int rb_virtq_drv_init(struct rb_virtq_drv *q, uint16_t size, void *desc, void *avail,
		      void *used, bool event_idx)
{
	memset(q, 0, sizeof(*q));
	if (size == 0 || (size & (size - 1)) || size > RB_VIRTQ_MAX_SIZE ||
	    ((uintptr_t)desc & 15) || ((uintptr_t)avail & 1) || ((uintptr_t)used & 3))
		return -EINVAL;
	q->desc = desc;
	q->avail = avail;
	q->used = used;
	q->size = size;
	q->event_idx = event_idx;
	q->next = calloc(size, sizeof(*q->next));
	q->chain_len = calloc(size, sizeof(*q->chain_len));
	q->writable = calloc(size, sizeof(*q->writable));
	q->cookie = calloc(size, sizeof(*q->cookie));
	if (!q->next || !q->chain_len || !q->writable || !q->cookie) {
		rb_virtq_drv_fini(q);
		return -ENOMEM;
	}
	memset(desc, 0, rb_vring_desc_bytes(size));
	memset(avail, 0, rb_vring_avail_bytes(size) + 2);
	memset(used, 0, rb_vring_used_bytes(size) + 2);
	for (unsigned i = 0; i < size; i++)
		q->next[i] = (uint16_t)(i + 1);
	q->num_free = size;
	return 0;
}

void rb_virtq_drv_fini(struct rb_virtq_drv *q)
{
	free(q->next);
	free(q->chain_len);
	free(q->writable);
	free(q->cookie);
	q->next = q->chain_len = NULL;
	q->writable = NULL;
	q->cookie = NULL;
}

int rb_virtq_drv_add(struct rb_virtq_drv *q, const struct rb_virtq_buf *bufs, unsigned n,
		     void *cookie)
{
	uint32_t writable = 0;
	bool seen_write = false;

	if (n == 0 || n > q->size || q->broken)
		return -EINVAL;
	if (n > q->num_free)
		return -ENOSPC;
	for (unsigned i = 0; i < n; i++) {
		if (bufs[i].write)
			seen_write = true;
		else if (seen_write)
			return -EINVAL; /* readable after writable */
		if (bufs[i].write)
			writable += bufs[i].len;
	}
	uint16_t head = q->free_head, d = head;
	for (unsigned i = 0; i < n; i++) {
		struct rb_vring_desc *desc = &q->desc[d];
		desc->addr = bufs[i].addr;
		desc->len = bufs[i].len;
		desc->flags = (uint16_t)((bufs[i].write ? RB_VRING_DESC_F_WRITE : 0) |
					 (i + 1 < n ? RB_VRING_DESC_F_NEXT : 0));
		uint16_t nx = q->next[d];
		desc->next = i + 1 < n ? nx : 0;
		if (i + 1 < n)
			d = nx;
		else
			q->free_head = nx;
	}
	q->num_free = (uint16_t)(q->num_free - n);
	q->chain_len[head] = (uint16_t)n;
	q->writable[head] = writable;
	q->cookie[head] = cookie;
	q->avail->ring[q->avail_idx % q->size] = head;
	q->avail_idx++;
	/* The device must see the descriptors before the index. */
	__atomic_store_n(&q->avail->idx, q->avail_idx, __ATOMIC_RELEASE);
	return 0;
}

bool rb_virtq_drv_need_kick(struct rb_virtq_drv *q)
{
	uint16_t old = q->kicked_idx, now = q->avail_idx;
	bool kick;

	if (old == now)
		return false;
	/* Order the avail index store before reading the device's wishes. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (q->event_idx) {
		uint16_t ev = __atomic_load_n(avail_event(q), __ATOMIC_ACQUIRE);
		kick = (uint16_t)(now - ev - 1) < (uint16_t)(now - old);
	} else {
		kick = !(__atomic_load_n(&q->used->flags, __ATOMIC_ACQUIRE) &
			 RB_VRING_USED_F_NO_NOTIFY);
	}
	q->kicked_idx = now;
	return kick;
}

int rb_virtq_drv_get(struct rb_virtq_drv *q, void **cookie, uint32_t *len, char *err,
		     size_t errlen)
{
	if (q->broken) {
		rb_virtio_errf(err, errlen, "queue is broken");
		return -EIO;
	}
	uint16_t used_idx = __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE);
	if (used_idx == q->last_used)
		return 0;
	uint16_t outstanding = (uint16_t)(q->size - q->num_free);
	if ((uint16_t)(used_idx - q->last_used) > outstanding) {
		q->broken = true;
		rb_virtio_errf(err, errlen, "device published %u used elements, only %u were outstanding",
			       (uint16_t)(used_idx - q->last_used), outstanding);
		return -EIO;
	}
	struct rb_vring_used_elem e;
	rb_virtio_copy_once(&e, &q->used->ring[q->last_used % q->size], sizeof(e));
	if (e.id >= q->size || q->chain_len[e.id] == 0) {
		q->broken = true;
		rb_virtio_errf(err, errlen, "device returned id %u, which is not an outstanding request", e.id);
		return -EIO;
	}
	if (e.len > q->writable[e.id]) {
		q->broken = true;
		rb_virtio_errf(err, errlen, "device claims %u bytes written into a %u-byte buffer", e.len,
			       q->writable[e.id]);
		return -EIO;
	}
	q->last_used++;
	/* Give the chain's descriptors back to the free list. */
	uint16_t n = q->chain_len[e.id], tail = (uint16_t)e.id;
	for (uint16_t i = 1; i < n; i++)
		tail = q->next[tail];
	q->next[tail] = q->free_head;
	q->free_head = (uint16_t)e.id;
	q->num_free = (uint16_t)(q->num_free + n);
	q->chain_len[e.id] = 0;
	*cookie = q->cookie[e.id];
	*len = e.len;
	return 1;
}

void rb_virtq_drv_set_interrupts(struct rb_virtq_drv *q, bool enable)
{
	if (q->event_idx) {
		/* Interrupt at the next used element, or (almost) never. */
		__atomic_store_n(used_event(q), enable ? q->last_used : (uint16_t)(q->last_used - 1),
				 __ATOMIC_RELEASE);
	} else {
		__atomic_store_n(&q->avail->flags, enable ? 0 : RB_VRING_AVAIL_F_NO_INTERRUPT,
				 __ATOMIC_RELEASE);
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}
