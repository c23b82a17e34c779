/* SPDX-License-Identifier: MIT */
/*
 * Inflight tracking of split rings (vhost-user, "Inflight I/O tracking"):
 * the log updates of the data path, and the recovery from a log an earlier
 * device left behind.  The log lives in memory the frontend may write at
 * any time: recovery reads each field once into a local copy, checks the
 * whole log, and only then changes anything; a log it cannot trust is
 * refused whole, never half-used.
 */
#include "virtio_internal.h"

#include <errno.h>
#include <stdlib.h>

_Static_assert(sizeof(struct rb_vring_inflight_desc) == 16, "inflight entry layout");
_Static_assert(sizeof(struct rb_vring_inflight) == 16, "inflight header layout");

/*
 * The order of these stores is what makes the log right after a crash at
 * any instruction: release stores keep the compiler from moving them (x86
 * keeps stores in order).  The frontend reads the log only after we are
 * gone, so nothing stronger is needed.
 */
#define LOG_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

void rb_virtq_log_pop(struct rb_virtq *vq, uint16_t head)
{
	struct rb_vring_inflight_desc *d = &vq->inflight->desc[head];

	LOG_STORE(&d->counter, vq->inflight_counter++);
	LOG_STORE(&d->inflight, 1);
}

/* Before the used element is published: a batch of one head. */
void rb_virtq_log_batch(struct rb_virtq *vq, uint16_t head)
{
	struct rb_vring_inflight *log = vq->inflight;

	LOG_STORE(&log->desc[head].next,
		  __atomic_load_n(&log->last_batch_head, __ATOMIC_RELAXED));
	LOG_STORE(&log->last_batch_head, head);
}

/* After used->idx covers the batch: a crash between the two stores leaves
 * used_idx behind used->idx, and recovery clears the batch again. */
void rb_virtq_log_used(struct rb_virtq *vq, uint16_t head)
{
	LOG_STORE(&vq->inflight->desc[head].inflight, 0);
	LOG_STORE(&vq->inflight->used_idx, vq->used_idx);
}

/* ---- recovery ------------------------------------------------------------- */

struct pending {
	uint64_t counter;
	uint16_t head;
};

/* Submission order; equal counters (only a broken log has them) in head
 * order, so the order is still total and the same on every recovery. */
static int cmp_pending(const void *a, const void *b)
{
	const struct pending *x = a, *y = b;

	if (x->counter != y->counter)
		return x->counter < y->counter ? -1 : 1;
	return (x->head > y->head) - (x->head < y->head);
}

static int fresh_log(struct rb_virtq *vq, struct rb_vring_inflight *log, uint16_t desc_num)
{
	/* Never used: whatever else it holds means nothing. */
	memset(log->desc, 0, (size_t)desc_num * sizeof(log->desc[0]));
	LOG_STORE(&log->features, 0);
	LOG_STORE(&log->desc_num, desc_num);
	LOG_STORE(&log->last_batch_head, 0);
	LOG_STORE(&log->used_idx, vq->used_idx);
	LOG_STORE(&log->version, RB_VRING_INFLIGHT_VERSION);
	vq->inflight = log;
	vq->inflight_counter = 1;
	vq->resubmit = NULL;
	vq->n_resubmit = vq->resubmit_at = 0;
	return 0;
}

int rb_virtq_inflight_start(struct rb_virtq *vq, struct rb_vring_inflight *log,
			    uint16_t region_desc_num, uint16_t *resubmit, char *err,
			    size_t errlen)
{
	struct rb_vring_inflight hdr;
	struct pending *p = NULL;
	uint8_t *flag = NULL;
	unsigned n = 0;
	uint16_t used, batch, h;
	int rc = -EINVAL;

	if (!vq || !log || !resubmit)
		return -EINVAL;
	if (region_desc_num < vq->size) {
		rb_virtio_errf(err, errlen, "inflight region has %u entries for a %u-entry queue",
			       region_desc_num, vq->size);
		return -EINVAL;
	}
	rb_virtio_copy_once(&hdr, log, sizeof(hdr));
	if (hdr.version == 0)
		return fresh_log(vq, log, region_desc_num);
	if (hdr.version != RB_VRING_INFLIGHT_VERSION) {
		rb_virtio_errf(err, errlen, "inflight region version %u (expected 0 or %u)",
			       hdr.version, RB_VRING_INFLIGHT_VERSION);
		return -EINVAL;
	}
	if (hdr.desc_num != region_desc_num) {
		rb_virtio_errf(err, errlen, "inflight region says %u entries, the frontend %u",
			       hdr.desc_num, region_desc_num);
		return -EINVAL;
	}
	/* The driver's used index: the log's used_idx lags it by the last
	 * batch when a crash came between publishing and logging it. */
	used = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
	batch = (uint16_t)(used - hdr.used_idx);
	if (batch > vq->size) {
		rb_virtio_errf(err, errlen,
			       "used index %u is %u entries past the inflight log's %u in a %u-entry queue",
			       used, batch, hdr.used_idx, vq->size);
		return -EINVAL;
	}
	/* The batch's heads, into resubmit[] for now (at most size of them). */
	h = hdr.last_batch_head;
	for (uint16_t k = 0; k < batch; k++) {
		uint16_t next;

		if (h >= vq->size) {
			rb_virtio_errf(err, errlen,
				       "inflight log's last batch names head %u in a %u-entry queue",
				       h, vq->size);
			return -EINVAL;
		}
		resubmit[k] = h;
		rb_virtio_copy_once(&next, &log->desc[h].next, sizeof(next));
		h = next;
	}
	flag = malloc(region_desc_num);
	if (!flag)
		return -ENOMEM;
	for (unsigned i = 0; i < region_desc_num; i++) {
		rb_virtio_copy_once(&flag[i], &log->desc[i].inflight, 1);
		if (flag[i] > 1 || (flag[i] && i >= vq->size)) {
			rb_virtio_errf(err, errlen,
				       flag[i] > 1 ? "inflight log entry %u has inflight byte %u (not 0 or 1)"
						   : "inflight log marks head %u, outside the %u-entry queue",
				       i, flag[i] > 1 ? flag[i] : vq->size);
			goto out;
		}
	}
	for (uint16_t k = 0; k < batch; k++)
		flag[resubmit[k]] = 0;
	for (unsigned i = 0; i < vq->size; i++)
		n += flag[i];
	if (n) {
		p = malloc(n * sizeof(*p));
		if (!p) {
			rc = -ENOMEM;
			goto out;
		}
		n = 0;
		for (unsigned i = 0; i < vq->size; i++) {
			if (!flag[i])
				continue;
			p[n].head = (uint16_t)i;
			rb_virtio_copy_once(&p[n].counter, &log->desc[i].counter, sizeof(p[n].counter));
			n++;
		}
		qsort(p, n, sizeof(*p), cmp_pending);
	}
	/* Trusted from here: finish the interrupted batch, then resume. */
	for (uint16_t k = 0; k < batch; k++)
		LOG_STORE(&log->desc[resubmit[k]].inflight, 0);
	LOG_STORE(&log->used_idx, used);
	vq->inflight_counter = 1;
	for (unsigned i = 0; i < n; i++) {
		resubmit[i] = p[i].head;
		if (p[i].counter >= vq->inflight_counter)
			vq->inflight_counter = p[i].counter + 1;
	}
	vq->inflight = log;
	vq->resubmit = resubmit;
	vq->n_resubmit = (uint16_t)n; /* n <= size <= 32768 */
	vq->resubmit_at = 0;
	vq->used_idx = used;
	vq->last_avail = (uint16_t)(used + n);
	vq->signalled_used = used;
	vq->signalled_used_valid = false;
	rc = 0;
out:
	free(p);
	free(flag);
	return rc;
}
