/* SPDX-License-Identifier: MIT */
/*
 * Device side of the split virtqueue (virtio 1.2, 2.7): pop chains, push
 * them back, decide when to interrupt.  Whatever the driver wrote, it must
 * never read a guest field twice, touch a buffer not translated for its
 * whole length, or walk a chain further than the ring or table allows.
 */
#include "virtio_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

/* read_bytes/write_bytes add at most RB_VIRTQ_MAX_SEGS 32-bit lengths, so
 * the sums cannot overflow; this keeps that true if the limit ever grows. */
_Static_assert(RB_VIRTQ_MAX_SEGS <= UINT64_MAX / UINT32_MAX,
	       "segment byte counts could overflow uint64_t");
_Static_assert(sizeof(struct rb_vring_desc) == 16, "descriptor layout");
_Static_assert(sizeof(struct rb_vring_used_elem) == 8, "used element layout");

/* Where the event-index words live: after the last entry of each ring. */
static inline uint16_t *used_event(const struct rb_virtq *vq)
{
	return &vq->avail->ring[vq->size];
}

static inline uint16_t *avail_event(const struct rb_virtq *vq)
{
	return (uint16_t *)&vq->used->ring[vq->size];
}

/* State of one chain walk; `table_at` is the descriptor that holds the
 * indirect table being walked, or -1 while in the ring itself. */
struct walk {
	struct rb_virtq *vq;
	struct rb_virtq_chain *chain;
	bool seen_write;
	int table_at;
	unsigned n_desc; /* descriptors visited, empty ones included */
	char *err;
	size_t errlen;
};

/* Fills the message with where in the chain it went wrong, then `fmt`, and
 * returns -EINVAL. */
static int __attribute__((format(printf, 3, 4)))
walk_fail(const struct walk *w, unsigned idx, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!w->err || !w->errlen)
		return -EINVAL;
	if (w->table_at >= 0)
		n = snprintf(w->err, w->errlen,
			     "chain %u: indirect descriptor %u (table in descriptor %d): ",
			     w->chain->head, idx, w->table_at);
	else
		n = snprintf(w->err, w->errlen, "chain %u: descriptor %u: ",
			     w->chain->head, idx);
	if (n >= 0 && (size_t)n < w->errlen) {
		va_start(ap, fmt);
		vsnprintf(w->err + n, w->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/*
 * Checks one buffer descriptor (a local copy) and appends it to the chain.
 * Zero-length buffers carry no bytes and are not stored, but their address
 * must still translate: an address nobody checks because "the length is 0"
 * is how CVE-2020-10725 crashed DPDK.
 */
static int add_seg(struct walk *w, unsigned idx, const struct rb_vring_desc *d)
{
	struct rb_virtq_chain *c = w->chain;
	bool write = d->flags & RB_VRING_DESC_F_WRITE;
	void *host;

	/* Every descriptor counts against the segment limit, empty ones too:
	 * otherwise a ring of 32768 chains, each a loop of 32768 empty
	 * descriptors, costs 2^30 steps per refill of the worker every VM on
	 * it shares (found by tests/fuzz/fuzz_virtq).  A driver that keeps to
	 * seg_max never sends more. */
	if (++w->n_desc > RB_VIRTQ_MAX_SEGS)
		return walk_fail(w, idx, "more than %u segments in one chain",
				 RB_VIRTQ_MAX_SEGS);
	if (!write && w->seen_write)
		return walk_fail(w, idx,
				 "device-readable buffer after a device-writable one");
	w->seen_write |= write;
	host = w->vq->translate(w->vq->translate_ctx, d->addr, d->len);
	if (!host)
		return walk_fail(w, idx,
				 "buffer [0x%" PRIx64 ", +%" PRIu32
				 ") is not inside one guest memory region",
				 d->addr, d->len);
	if (d->len == 0)
		return 0;
	c->iov[c->n_segs].iov_base = host;
	c->iov[c->n_segs].iov_len = d->len;
	c->n_segs++;
	if (write) {
		c->write_bytes += d->len;
	} else {
		c->read_bytes += d->len;
		c->n_read++;
	}
	return 0;
}

/*
 * Walks the indirect table that descriptor `at` (a local copy) points to.
 * The table is translated once for its whole length, then each entry is
 * copied once as the walk reaches it.  The walk ends within
 * min(entries, RB_VIRTQ_MAX_SEGS) steps: a longer chain must revisit an
 * entry (a loop) or exceed the segment limit anyway.
 */
static int walk_indirect(struct walk *w, unsigned at,
			 const struct rb_vring_desc *ind)
{
	const unsigned char *table;
	struct rb_vring_desc d;
	uint32_t n, limit, i = 0;

	if (!w->vq->indirect)
		return walk_fail(w, at,
				 "INDIRECT flag, but VIRTIO_F_INDIRECT_DESC was not negotiated");
	if (ind->flags & RB_VRING_DESC_F_NEXT)
		return walk_fail(w, at, "both INDIRECT and NEXT flags");
	if (ind->len == 0 || ind->len % sizeof(struct rb_vring_desc))
		return walk_fail(w, at,
				 "indirect table of %" PRIu32
				 " bytes (needs a non-zero multiple of 16)",
				 ind->len);
	table = w->vq->translate(w->vq->translate_ctx, ind->addr, ind->len);
	if (!table)
		return walk_fail(w, at,
				 "indirect table [0x%" PRIx64 ", +%" PRIu32
				 ") is not inside one guest memory region",
				 ind->addr, ind->len);
	n = ind->len / sizeof(struct rb_vring_desc);
	limit = n < RB_VIRTQ_MAX_SEGS ? n : RB_VIRTQ_MAX_SEGS;
	w->table_at = (int)at;
	/* The WRITE flag of the descriptor holding the table means nothing
	 * (virtio 1.2, 2.7.5.3.2): each entry carries its own. */
	for (uint32_t step = 0; step < limit; step++) {
		int rc;

		rb_virtio_copy_once(&d, table + (size_t)i * sizeof(d), sizeof(d));
		if (d.flags & RB_VRING_DESC_F_INDIRECT)
			return walk_fail(w, i, "nested INDIRECT flag");
		rc = add_seg(w, i, &d);
		if (rc)
			return rc;
		if (!(d.flags & RB_VRING_DESC_F_NEXT))
			return 0;
		if (d.next >= n)
			return walk_fail(w, i, "next %u is outside the %" PRIu32
					 "-entry table", d.next, n);
		i = d.next;
	}
	return walk_fail(w, i,
			 "chain does not end within %" PRIu32
			 " entries (a loop, or more than %u segments)",
			 limit, RB_VIRTQ_MAX_SEGS);
}

/*
 * Walks the chain from `head` in the descriptor ring.  A chain of more than
 * `size` descriptors must revisit one, so `size` steps bound every walk,
 * loops included; add_seg() ends it sooner, after RB_VIRTQ_MAX_SEGS
 * descriptors (empty ones too).  An INDIRECT descriptor ends the ring part of the chain
 * (it may not have NEXT), so there is at most one table per chain.
 */
static int walk_chain(struct walk *w, uint16_t head)
{
	struct rb_virtq *vq = w->vq;
	struct rb_vring_desc d;
	uint16_t i = head;

	for (uint32_t step = 0; step < vq->size; step++) {
		int rc;

		rb_virtio_copy_once(&d, &vq->desc[i], sizeof(d));
		if (d.flags & RB_VRING_DESC_F_INDIRECT)
			return walk_indirect(w, i, &d);
		rc = add_seg(w, i, &d);
		if (rc)
			return rc;
		if (!(d.flags & RB_VRING_DESC_F_NEXT))
			return 0;
		if (d.next >= vq->size)
			return walk_fail(w, i, "next %u is outside the %u-entry ring",
					 d.next, vq->size);
		i = d.next;
	}
	return walk_fail(w, i, "chain is longer than the queue (%u): a loop",
			 vq->size);
}

int rb_virtq_pop(struct rb_virtq *vq, struct rb_virtq_chain *chain,
		 char *err, size_t errlen)
{
	struct walk w = {vq, chain, false, -1, 0, err, errlen};
	uint16_t avail_idx, ahead, head;
	int rc;

	if (RB_UNLIKELY(vq->broken)) {
		rb_virtio_errf(err, errlen, "virtqueue is broken: the driver "
			       "corrupted its avail ring earlier");
		return -EIO;
	}
	/* Heads an earlier device had in flight go first (already logged). */
	if (RB_UNLIKELY(vq->resubmit_at < vq->n_resubmit)) {
		head = vq->resubmit[vq->resubmit_at++];
		goto walk;
	}
	/* Acquire: the ring entry and descriptors the driver wrote before it
	 * published this index are visible once we see the index. */
	avail_idx = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
	ahead = (uint16_t)(avail_idx - vq->last_avail);
	if (ahead == 0)
		return 0;
	if (RB_UNLIKELY(ahead > vq->size)) {
		vq->broken = true;
		rb_virtio_errf(err, errlen,
			       "avail idx %u is %u entries past the last consumed "
			       "(%u) in a %u-entry queue",
			       avail_idx, ahead, vq->last_avail, vq->size);
		return -EIO;
	}
	head = __atomic_load_n(&vq->avail->ring[vq->last_avail & (vq->size - 1)],
			       __ATOMIC_RELAXED);
	/* A head we cannot even give back leaves no way to complete the
	 * entry: the ring is as corrupt as a bad avail index. */
	if (RB_UNLIKELY(head >= vq->size)) {
		vq->broken = true;
		rb_virtio_errf(err, errlen,
			       "avail entry %u names head %u in a %u-entry queue",
			       vq->last_avail, head, vq->size);
		return -EIO;
	}
	vq->last_avail++;
	/* Logged before anything is done for it: a crash from here on
	 * resubmits it, a crash before re-pops it from the avail ring. */
	if (vq->inflight)
		rb_virtq_log_pop(vq, head);
walk:
	chain->head = head;
	chain->n_segs = 0;
	chain->n_read = 0;
	chain->read_bytes = 0;
	chain->write_bytes = 0;
	rc = walk_chain(&w, head);
	if (RB_UNLIKELY(rc)) {
		/* Nothing of a bad chain may be used; only the head goes back. */
		chain->n_segs = 0;
		chain->n_read = 0;
		chain->read_bytes = 0;
		chain->write_bytes = 0;
		return rc;
	}
	return 1;
}

void rb_virtq_push(struct rb_virtq *vq, uint16_t head, uint32_t len)
{
	struct rb_vring_used_elem *e =
		&vq->used->ring[vq->used_idx & (vq->size - 1)];

	if (vq->inflight)
		rb_virtq_log_batch(vq, head);
	__atomic_store_n(&e->id, head, __ATOMIC_RELAXED);
	__atomic_store_n(&e->len, len, __ATOMIC_RELAXED);
	vq->used_idx++;
	/* Release: the element is visible before the index that covers it. */
	__atomic_store_n(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
	if (vq->inflight)
		rb_virtq_log_used(vq, head);
	/* After 65536 pushes without a notify check, signalled_used is
	 * ambiguous (it equals used_idx again): the next check must notify. */
	if (vq->used_idx == vq->signalled_used)
		vq->signalled_used_valid = false;
}

bool rb_virtq_should_notify(struct rb_virtq *vq)
{
	uint16_t old = vq->signalled_used, new = vq->used_idx, event;
	bool valid = vq->signalled_used_valid;

	/* The used index we published must be visible before we read what
	 * the driver asked for; otherwise the driver can read an old index,
	 * ask to be woken, and we read its old request: both then sleep. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	vq->signalled_used = new;
	vq->signalled_used_valid = true;
	if (!vq->event_idx)
		return !(__atomic_load_n(&vq->avail->flags, __ATOMIC_ACQUIRE) &
			 RB_VRING_AVAIL_F_NO_INTERRUPT);
	if (!valid)
		return true;
	event = __atomic_load_n(used_event(vq), __ATOMIC_ACQUIRE);
	/* vring_need_event: did [old, new) step over the driver's event? */
	return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

/*
 * With EVENT_IDX, enabling writes avail_event = last_avail: "kick me when
 * you publish entry last_avail".  Disabling writes nothing: the value left
 * behind lies at or behind the driver's index, so the driver kicks at most
 * once more and then never until 65536 entries later; writing it on every
 * poll would only bounce a cache line shared with the guest.  Without
 * EVENT_IDX the used ring's NO_NOTIFY flag does the job; it is the only
 * flag defined there, so the whole word is written.
 */
void rb_virtq_set_kicks(struct rb_virtq *vq, bool enable)
{
	if (vq->event_idx) {
		if (enable)
			__atomic_store_n(avail_event(vq), vq->last_avail,
					 __ATOMIC_RELAXED);
	} else {
		__atomic_store_n(&vq->used->flags,
				 enable ? 0 : RB_VRING_USED_F_NO_NOTIFY,
				 __ATOMIC_RELAXED);
	}
	/* The request must be visible before the caller re-reads avail->idx
	 * (the race rb_virtq_pending() closes). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

uint16_t rb_virtq_pending(const struct rb_virtq *vq)
{
	if (vq->broken)
		return 0;
	if (vq->resubmit_at < vq->n_resubmit)
		return (uint16_t)(vq->n_resubmit - vq->resubmit_at);
	/* More than `size` means a corrupt index: the next pop says so. */
	return (uint16_t)(__atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE) -
			  vq->last_avail);
}

/* ---- Set-up ------------------------------------------------------------- */

/*
 * used_idx starts at last_avail: the transport hands over a drained queue
 * (vhost-user replies to GET_VRING_BASE only after in-flight requests are
 * done), so every entry before last_avail has been used.
 */
int rb_virtq_init(struct rb_virtq *vq, uint16_t size, void *desc, void *avail,
		  void *used, uint16_t last_avail, bool event_idx, bool indirect,
		  rb_virtio_translate_fn translate, void *ctx)
{
	if (!vq || !desc || !avail || !used || !translate)
		return -EINVAL;
	if (size == 0 || size > RB_VIRTQ_MAX_SIZE || (size & (size - 1)))
		return -EINVAL;
	/* Alignments the split ring requires (virtio 1.2, 2.7). */
	if ((uintptr_t)desc % 16 || (uintptr_t)avail % 2 || (uintptr_t)used % 4)
		return -EINVAL;
	memset(vq, 0, sizeof(*vq));
	vq->desc = desc;
	vq->avail = avail;
	vq->used = used;
	vq->size = size;
	vq->event_idx = event_idx;
	vq->indirect = indirect;
	vq->translate = translate;
	vq->translate_ctx = ctx;
	vq->last_avail = last_avail;
	vq->used_idx = last_avail;
	vq->signalled_used = last_avail;
	vq->signalled_used_valid = false;
	return 0;
}

void rb_virtio_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}
