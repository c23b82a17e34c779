/* SPDX-License-Identifier: MIT */
/*
 * NDP requests in the worker: PROBE, LOAD, UNLOAD, REG/UNREG_MEM,
 * REG/UNREG_FILE, and READ_ND/WRITE_ND
 * whose whole chain of dependent I/Os runs here: the program decides the
 * next I/O, it is range-checked (lib/ndp), submitted through the same
 * submission point as every other I/O, and the program runs again on
 * completion, without a trip back to the guest.  Every request ends with a
 * status in its result and is given back exactly once.
 */
#include "io_internal.h"

#include <rosen/log.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct rb_io_ndp {
	uint8_t data[RB_NDP_MAX_DATA];       /* first: 4096-aligned for O_DIRECT */
	struct rb_io_ndp *pool_next;
	uint8_t scratch[RB_NDP_MAX_SCRATCH];
	uint8_t meta[RB_NDP_MAX_META]; /* zero-padded: programs see 4096 bytes */
	struct rb_ndp_exec x;
	unsigned pending; /* I/Os of the current round still in flight */
	int first_err;
	int round_res;    /* a deferred round's result, for its program run */
	unsigned retries; /* of the current round (RB_IO_MAX_RETRIES) */
	uint64_t got;     /* bytes the current round transferred */
	bool write_first; /* WRITE_ND: the first I/O writes the guest's data */
	/* Metrics, accumulated per request and counted when it completes:
	 * bytes its rounds moved (read, written), and, for the one request
	 * in RB_IO_PROG_SAMPLE_EVERY that is timed, its programs' run time. */
	uint64_t io_bytes[2];
	bool timed;
	uint64_t prog_ns;
	/* A GPU read (RB_NDP_IO_F_GPU): done in rounds of up to RB_GDS_ROUND
	 * storage reads of at most RB_GPU_CHUNK bytes, straight into a host
	 * region, or into a stager's pinned slots whose contents are then
	 * copied to the device asynchronously while the next round reads
	 * (the rounds alternate between the two halves of the slots). */
	bool gds;
	uint64_t gds_pos;   /* bytes of the read done by earlier rounds */
	unsigned gds_round; /* rounds done */
	struct rb_gpu_stager *stager;
	struct rb_ndp_req r; /* large: last */
};

#define RB_GDS_ROUND 4u
_Static_assert(2 * RB_GDS_ROUND == RB_GPU_STAGE_SLOTS, "two halves of the stager's slots");
_Static_assert(RB_GDS_ROUND <= RB_NDP_MAX_NEXT_IOS, "a round fits the executor's I/O slots");

#define outcome rb_ndp_io_outcome
#define finish rb_ndp_io_finish

#define NDP_STATE_BYTES ((sizeof(struct rb_io_ndp) + 4095) & ~(size_t)4095)

/* The outcome of an NDP request answered with virtio status OK: its NDP
 * status (enum rb_ndp_status), for metrics. */
void rb_ndp_io_outcome(struct rb_io_req *req, uint32_t ndp_status)
{
	req->rstatus = ndp_status == RB_NDP_S_OK ? RB_IO_RS_OK
		       : ndp_status < RB_IO_NR_RSTATUS - RB_IO_RS_NDP + 1
			       ? (uint8_t)(RB_IO_RS_NDP + ndp_status - 1)
			       : RB_IO_RS_IOERR;
}

/* What an ND request holds beyond its program and file: its GPU region
 * and stager. */
static void release_gpu(struct rb_io_ndp *n)
{
	rb_gpu_stager_put(n->stager); /* waits for its copies first */
	n->stager = NULL;
	rb_gpu_region_put(n->x.dest);
	n->x.dest = NULL;
	n->gds = false;
}

/* Writes the virtio status byte, gives the chain back, frees the state. */
void rb_ndp_io_finish(struct rb_io_req *req, uint8_t *status, uint8_t st, uint32_t used)
{
	if (status)
		*status = st;
	rb_io_write_end(req->q->worker, req); /* a WRITE_ND ended in its write */
	if (!status)
		req->rstatus = RB_IO_RS_MALFORMED;
	else if (st != RB_VIRTIO_BLK_S_OK)
		req->rstatus = rb_io_rs_virtio(st);
	if (req->ndp) {
		if (req->ndp->x.prog)
			rb_ndp_release(req->ndp->x.prog);
		req->ndp->x.prog = NULL;
		rb_ndp_file_release(req->ndp->x.file);
		req->ndp->x.file = NULL;
		release_gpu(req->ndp);
		/* Back to the queue's pool, for its next NDP request. */
		req->ndp->pool_next = req->q->ndp_pool;
		req->q->ndp_pool = req->ndp;
		req->ndp = NULL;
	}
	rb_io_req_finish(req, status ? used : 0);
}

/* ---- control requests: PROBE, LOAD, UNLOAD, REG/UNREG_MEM, REG/UNREG_FILE ---------------------------------- */

static void do_probe(struct rb_io_req *req)
{
	struct rb_virtq_chain *c = &req->chain;
	struct iovec *w = c->iov + c->n_read;
	unsigned nw = c->n_segs - c->n_read;
	struct rb_ndp_probe p = {
		.magic = RB_NDP_MAGIC, .version = RB_NDP_VERSION,
		.max_programs = RB_NDP_MAX_PROGRAMS, .max_elf_bytes = RB_NDP_MAX_ELF_BYTES,
		.max_meta = RB_NDP_MAX_META, .max_scratch = RB_NDP_MAX_SCRATCH,
		.max_data = RB_NDP_MAX_DATA, .max_hops = RB_NDP_MAX_HOPS,
		.prog_types = (1u << RB_NDP_PROG_SQ) | (1u << RB_NDP_PROG_CQ) | (1u << RB_NDP_PROG_XRP),
		.caps = RB_NDP_CAP_FILES | RB_NDP_CAP_GDS |
			(rb_gpu_cuda_available() ? RB_NDP_CAP_CUDA : 0),
		.max_files = RB_NDP_MAX_FILES,
		.max_extents = RB_NDP_MAX_EXTENTS,
	};

	if (nw == 0) {
		rb_io_guest_log(req->q, "NDP PROBE without a status byte");
		finish(req, NULL, 0, 0);
		return;
	}
	uint8_t *status = (uint8_t *)w[nw - 1].iov_base + w[nw - 1].iov_len - 1;
	if (c->write_bytes != sizeof(p) + 1) {
		rb_io_guest_log(req->q, "NDP PROBE: %llu writable bytes, expected %zu",
				(unsigned long long)c->write_bytes, sizeof(p) + 1);
		finish(req, status, RB_VIRTIO_BLK_S_IOERR, 1);
		return;
	}
	rb_iov_scatter(w, nw, 0, &p, sizeof(p));
	finish(req, status, RB_VIRTIO_BLK_S_OK, sizeof(p) + 1);
}

/*
 * LOAD runs off the worker: parsing, verifying and compiling a program costs
 * milliseconds for a real program and, for a hostile one, up to the
 * verifier's bounds (RB_NDP_VERIFY_*).  The worker copies the request out
 * of guest memory and queues it on the daemon's one loader thread
 * (loader.c); the loader's answer reaches the worker as an ordinary
 * io_uring completion (a read of an eventfd the loader writes), so the
 * request stays in flight like any I/O: resets and GET_VRING_BASE wait for
 * it, and stopping the queue answers it at once if it is still queued.
 */
struct rb_io_load {
	uint64_t efd_value; /* the completion's read lands here */
	struct rb_load_job job;
};

/* Writes the result and log into the guest's buffers and completes. */
static void load_reply(struct rb_io_req *req, struct rb_ndp_load_result res, char *log)
{
	struct rb_virtq_chain *c = &req->chain;
	struct iovec *w = c->iov + c->n_read;
	unsigned nw = c->n_segs - c->n_read;
	uint8_t *status = (uint8_t *)w[nw - 1].iov_base + w[nw - 1].iov_len - 1;
	size_t log_cap = (size_t)c->write_bytes - sizeof(res) - 1;
	size_t n = strlen(log) + 1;

	if (n > log_cap)
		n = log_cap;
	res.log_len = (uint32_t)n;
	outcome(req, res.status);
	rb_iov_scatter(w, nw, 0, &res, sizeof(res));
	if (n) {
		if (n <= strlen(log))
			log[n - 1] = 0; /* truncated, still NUL-terminated */
		rb_iov_scatter(w, nw, sizeof(res), log, n);
	}
	finish(req, status, RB_VIRTIO_BLK_S_OK, (uint32_t)(sizeof(res) + n + 1));
}

static void load_free(struct rb_io_load *l)
{
	if (l->job.efd >= 0)
		close(l->job.efd);
	free((void *)l->job.elf);
	free(l);
}

void rb_ndp_load_done(struct rb_worker *w, struct rb_io_req *req, int res)
{
	struct rb_io_load *l = req->load;

	rb_loader_sync(w->pool->loader);
	struct rb_ndp_load_result r = {.status = l->job.status, .handle = l->job.handle};

	(void)res; /* the eventfd read cannot fail short of a bug */
	req->load = NULL;
	atomic_fetch_sub(&req->q->disk->loads_pending, 1);
	if (l->job.cancelled && rb_io_handing_over(req->q)) {
		load_free(l); /* the next daemon verifies it */
		rb_io_req_abandon(req);
		return;
	}
	if (r.status != RB_NDP_S_OK)
		r.handle = 0;
	load_reply(req, r, l->job.log);
	load_free(l);
}

/* Queues the LOAD on the loader.  RB_NDP_S_OK when it is in flight (its
 * answer, a refusal included, comes through rb_ndp_load_done()), or the
 * status to answer now with `log` filled. */
static uint32_t load_queue(struct rb_worker *w, struct rb_io_req *req, struct rb_io_load *l,
			   char *log, size_t loglen)
{
	struct rb_disk *d = req->q->disk;

	if (atomic_fetch_add(&d->loads_pending, 1) >= RB_NDP_LOADS_PER_VM) {
		atomic_fetch_sub(&d->loads_pending, 1);
		snprintf(log, loglen,
			 "%u LOADs of this VM are already queued or being verified (at most %u per VM); retry when one completes",
			 RB_NDP_LOADS_PER_VM, RB_NDP_LOADS_PER_VM);
		rb_io_guest_log(req->q, "NDP LOAD refused (limit): %s", log);
		return RB_NDP_S_LIMIT;
	}
	l->job.efd = eventfd(0, EFD_CLOEXEC);
	struct io_uring_sqe *sqe = l->job.efd >= 0 ? rb_io_submit_point(w, req) : NULL;
	if (!sqe) {
		atomic_fetch_sub(&d->loads_pending, 1);
		snprintf(log, loglen, "the device is out of resources for a LOAD (%s); retry later",
			 l->job.efd < 0 ? "eventfd" : "submission queue");
		rb_io_guest_log(req->q, "NDP LOAD refused: %s", log);
		return RB_NDP_S_LIMIT;
	}
	req->load = l;
	if (rb_loader_submit(w->pool->loader, &l->job)) {
		/* The sqe is taken: the refusal completes through it, as a
		 * no-op, on the same path as an answer from the loader. */
		l->job.status = RB_NDP_S_LIMIT;
		snprintf(l->job.log, sizeof(l->job.log),
			 "the device's LOAD queue is full (%u LOADs of all VMs queued or being verified); retry later",
			 RB_NDP_LOADS_QUEUED);
		rb_io_guest_log(req->q, "NDP LOAD refused (limit): %s", l->job.log);
		io_uring_prep_nop(sqe);
		return RB_NDP_S_OK;
	}
	io_uring_prep_read(sqe, l->job.efd, &l->efd_value, sizeof(l->efd_value), 0);
	return RB_NDP_S_OK;
}

static void do_load(struct rb_worker *w, struct rb_io_req *req)
{
	struct rb_disk *d = req->q->disk;
	struct rb_virtq_chain *c = &req->chain;
	struct iovec *wv = c->iov + c->n_read;
	unsigned nw = c->n_segs - c->n_read;
	struct rb_ndp_load_result res = {0};
	const size_t fixed = 16 + sizeof(struct rb_ndp_load);
	char log[RB_NDP_LOG_MAX];

	if (nw == 0 || c->write_bytes < sizeof(res) + 1) {
		rb_io_guest_log(req->q, "NDP LOAD without room for its result");
		finish(req, nw ? (uint8_t *)wv[nw - 1].iov_base + wv[nw - 1].iov_len - 1 : NULL,
		       RB_VIRTIO_BLK_S_IOERR, 1);
		return;
	}
	log[0] = 0;
	struct rb_io_load *l = calloc(1, sizeof(*l));
	if (!l) {
		snprintf(log, sizeof(log), "out of memory");
		res.status = RB_NDP_S_LIMIT;
		load_reply(req, res, log);
		return;
	}
	l->job.efd = -1;
	struct rb_ndp_load ld;
	uint8_t *elf = NULL;
	if (c->read_bytes < fixed) {
		snprintf(log, sizeof(log), "LOAD request of %llu bytes is truncated",
			 (unsigned long long)c->read_bytes);
		res.status = RB_NDP_S_BAD_REQUEST;
	} else {
		rb_iov_gather(c->iov, c->n_read, 16, &ld, sizeof(ld));
		ld.section[sizeof(ld.section) - 1] = 0;
		if (ld.elf_len > RB_NDP_MAX_ELF_BYTES) {
			snprintf(log, sizeof(log), "object of %u bytes exceeds the %u-byte limit",
				 ld.elf_len, RB_NDP_MAX_ELF_BYTES);
			res.status = RB_NDP_S_LIMIT;
		} else if (c->read_bytes != fixed + ld.elf_len) {
			snprintf(log, sizeof(log), "LOAD announces %u object bytes but carries %llu",
				 ld.elf_len, (unsigned long long)(c->read_bytes - fixed));
			res.status = RB_NDP_S_BAD_REQUEST;
		} else if (!(elf = malloc(ld.elf_len ? ld.elf_len : 1))) {
			snprintf(log, sizeof(log), "out of memory");
			res.status = RB_NDP_S_LIMIT;
		} else {
			/* One copy out of guest memory; the loader reads only it. */
			rb_iov_gather(c->iov, c->n_read, fixed, elf, ld.elf_len);
			l->job.owner = req->q;
			l->job.vm = d->name;
			l->job.table = d->progs;
			l->job.prog_type = ld.prog_type;
			l->job.elf = elf;
			l->job.elf_len = ld.elf_len;
			memcpy(l->job.section, ld.section, sizeof(l->job.section));
			res.status = load_queue(w, req, l, log, sizeof(log));
			if (res.status == RB_NDP_S_OK)
				return;
		}
	}
	load_free(l); /* and elf, once the job holds it */
	load_reply(req, res, log);
}

static void do_unload(struct rb_io_req *req)
{
	struct rb_virtq_chain *c = &req->chain;
	struct iovec *w = c->iov + c->n_read;
	unsigned nw = c->n_segs - c->n_read;
	struct rb_ndp_unload u;
	uint32_t st;

	if (nw == 0) {
		finish(req, NULL, 0, 0);
		return;
	}
	uint8_t *status = (uint8_t *)w[nw - 1].iov_base + w[nw - 1].iov_len - 1;
	if (c->read_bytes != 16 + sizeof(u) || c->write_bytes != sizeof(st) + 1) {
		rb_io_guest_log(req->q, "NDP UNLOAD with wrong lengths");
		finish(req, status, RB_VIRTIO_BLK_S_IOERR, 1);
		return;
	}
	rb_iov_gather(c->iov, c->n_read, 16, &u, sizeof(u));
	st = rb_ndp_unload(req->q->disk->progs, u.handle);
	outcome(req, st);
	rb_iov_scatter(w, nw, 0, &st, sizeof(st));
	finish(req, status, RB_VIRTIO_BLK_S_OK, sizeof(st) + 1);
}

static void do_reg_mem(struct rb_io_req *req, bool reg)
{
	struct rb_virtq_chain *c = &req->chain;
	struct rb_virtq *vq = &req->q->vq;
	struct iovec *w = c->iov + c->n_read;
	unsigned nw = c->n_segs - c->n_read;
	struct rb_ndp_reg_result res = {0};
	size_t in_len = reg ? sizeof(struct rb_ndp_reg_mem) : sizeof(struct rb_ndp_unreg_mem);
	size_t out_len = reg ? sizeof(res) : sizeof(uint32_t);

	if (nw == 0) {
		finish(req, NULL, 0, 0);
		return;
	}
	uint8_t *status = (uint8_t *)w[nw - 1].iov_base + w[nw - 1].iov_len - 1;
	if (c->read_bytes != 16 + in_len || c->write_bytes != out_len + 1) {
		rb_io_guest_log(req->q, "NDP %s with wrong lengths", reg ? "REG_MEM" : "UNREG_MEM");
		finish(req, status, RB_VIRTIO_BLK_S_IOERR, 1);
		return;
	}
	if (reg) {
		struct rb_ndp_reg_mem m;
		rb_iov_gather(c->iov, c->n_read, 16, &m, sizeof(m));
		/* Only memory the guest has, as its own memory table says. */
		if (m.len == 0 || m.len > RB_NDP_MAX_REGION_BYTES ||
		    !vq->translate(vq->translate_ctx, m.gpa, m.len)) {
			rb_io_guest_log(req->q, "REG_MEM of 0x%llx+%llu: not memory this guest has",
					(unsigned long long)m.gpa, (unsigned long long)m.len);
			res.status = RB_NDP_S_NO_MEMORY;
		} else {
			res.status = rb_ndp_reg_mem(req->q->disk->progs, m.gpa, m.len, &res.key);
		}
		outcome(req, res.status);
		rb_iov_scatter(w, nw, 0, &res, sizeof(res));
	} else {
		struct rb_ndp_unreg_mem u;
		rb_iov_gather(c->iov, c->n_read, 16, &u, sizeof(u));
		uint32_t st = rb_ndp_unreg_mem(req->q->disk->progs, u.key);
		outcome(req, st);
		rb_iov_scatter(w, nw, 0, &st, sizeof(st));
	}
	finish(req, status, RB_VIRTIO_BLK_S_OK, (uint32_t)(out_len + 1));
}

/*
 * REG_FILE: parse (lengths, one copy of the map out of guest memory),
 * validate (rb_ndp_file_check, pure), act (the VM's file table).  Every
 * refusal answers a status through the result and says why in the log.
 */
static void do_reg_file(struct rb_io_req *req)
{
	struct rb_disk *d = req->q->disk;
	struct rb_virtq_chain *c = &req->chain;
	struct iovec *w = c->iov + c->n_read;
	unsigned nw = c->n_segs - c->n_read;
	struct rb_ndp_reg_result res = {0};
	struct rb_ndp_reg_file rf;
	const size_t fixed = 16 + sizeof(rf);
	struct rb_ndp_extent *ext = NULL;
	char err[256];

	if (nw == 0) {
		rb_io_guest_log(req->q, "NDP REG_FILE without a status byte");
		finish(req, NULL, 0, 0);
		return;
	}
	uint8_t *status = (uint8_t *)w[nw - 1].iov_base + w[nw - 1].iov_len - 1;
	if (c->write_bytes != sizeof(res) + 1) {
		rb_io_guest_log(req->q, "NDP REG_FILE: %llu writable bytes, expected %zu",
				(unsigned long long)c->write_bytes, sizeof(res) + 1);
		finish(req, status, RB_VIRTIO_BLK_S_IOERR, 1);
		return;
	}
	res.status = RB_NDP_S_BAD_REQUEST;
	if (c->read_bytes < fixed) {
		rb_io_guest_log(req->q, "REG_FILE refused: request of %llu bytes is truncated (at least %zu)",
				(unsigned long long)c->read_bytes, fixed);
		goto reply;
	}
	rb_iov_gather(c->iov, c->n_read, 16, &rf, sizeof(rf));
	if (rf.n_extents == 0 || rf.n_extents > RB_NDP_MAX_EXTENTS) {
		rb_io_guest_log(req->q, "REG_FILE refused: %u extents (1..%u)", rf.n_extents,
				RB_NDP_MAX_EXTENTS);
		goto reply;
	}
	if (c->read_bytes != fixed + (uint64_t)rf.n_extents * sizeof(*ext)) {
		rb_io_guest_log(req->q,
				"REG_FILE refused: it announces %u extents (%llu bytes) but carries %llu bytes of extents",
				rf.n_extents, (unsigned long long)rf.n_extents * sizeof(*ext),
				(unsigned long long)(c->read_bytes - fixed));
		goto reply;
	}
	ext = malloc((size_t)rf.n_extents * sizeof(*ext));
	if (!ext) {
		rb_io_guest_log(req->q, "REG_FILE refused: out of memory for %u extents", rf.n_extents);
		res.status = RB_NDP_S_LIMIT;
		goto reply;
	}
	/* One copy out of guest memory: checked and kept from it only. */
	rb_iov_gather(c->iov, c->n_read, fixed, ext, (size_t)rf.n_extents * sizeof(*ext));
	if (rb_ndp_file_check(&rf, ext, rb_io_capacity(d) * RB_VIRTIO_BLK_SECTOR, err,
			      sizeof(err))) {
		rb_io_guest_log(req->q, "REG_FILE refused: %s", err);
		goto reply;
	}
	res.status = rb_ndp_reg_file(d->progs, &rf, ext, &res.key);
	if (res.status != RB_NDP_S_OK)
		rb_io_guest_log(req->q, "REG_FILE refused (limit): this VM already has %u files registered",
				RB_NDP_MAX_FILES);
reply:
	free(ext);
	if (res.status != RB_NDP_S_OK)
		res.key = 0;
	outcome(req, res.status);
	rb_iov_scatter(w, nw, 0, &res, sizeof(res));
	finish(req, status, RB_VIRTIO_BLK_S_OK, sizeof(res) + 1);
}

static void do_unreg_file(struct rb_io_req *req)
{
	struct rb_virtq_chain *c = &req->chain;
	struct iovec *w = c->iov + c->n_read;
	unsigned nw = c->n_segs - c->n_read;
	struct rb_ndp_unreg_file u;
	uint32_t st;

	if (nw == 0) {
		rb_io_guest_log(req->q, "NDP UNREG_FILE without a status byte");
		finish(req, NULL, 0, 0);
		return;
	}
	uint8_t *status = (uint8_t *)w[nw - 1].iov_base + w[nw - 1].iov_len - 1;
	if (c->read_bytes != 16 + sizeof(u) || c->write_bytes != sizeof(st) + 1) {
		rb_io_guest_log(req->q, "NDP UNREG_FILE with wrong lengths");
		finish(req, status, RB_VIRTIO_BLK_S_IOERR, 1);
		return;
	}
	rb_iov_gather(c->iov, c->n_read, 16, &u, sizeof(u));
	st = rb_ndp_unreg_file(req->q->disk->progs, u.key);
	if (st != RB_NDP_S_OK)
		rb_io_guest_log(req->q, "UNREG_FILE: no file with key %u on this disk%s", u.key,
				st == RB_NDP_S_STATE_LOST ? " (a key from before the daemon restarted)" : "");
	outcome(req, st);
	rb_iov_scatter(w, nw, 0, &st, sizeof(st));
	finish(req, status, RB_VIRTIO_BLK_S_OK, sizeof(st) + 1);
}

/* Grants the VM's registered memory to this request's program runs. */
static void map_registrations(struct rb_io_req *req, struct rb_ndp_exec *x)
{
	uint32_t keys[RB_NDP_MAX_REGIONS];
	uint64_t gpa[RB_NDP_MAX_REGIONS], len[RB_NDP_MAX_REGIONS];
	struct rb_virtq *vq = &req->q->vq;
	unsigned n = rb_ndp_regions(req->q->disk->progs, keys, gpa, len);

	x->n_mem = 0;
	for (unsigned i = 0; i < n; i++) {
		/* Translated now, in the memory table of this request's ring. */
		uint8_t *host = vq->translate(vq->translate_ctx, gpa[i], len[i]);
		if (!host)
			continue;
		x->mem_key[x->n_mem] = keys[i];
		x->mem_host[x->n_mem] = host;
		x->mem_len[x->n_mem] = len[i];
		x->n_mem++;
	}
}

/* ---- READ_ND / WRITE_ND ------------------------------------------------------- */

/*
 * Counts a finished ND request: its hops and bytes, its instructions, and
 * its programs' run time.  A timed request adds what its clock reads
 * measured; the others convert their exact instruction count at the rate
 * the timed requests of their queue measured so far (nanoseconds per
 * instruction, program runs and the executor's checks around them), so
 * the total only ever grows.  Nothing here reads a clock.
 */
static void account(struct rb_io_queue *q, struct rb_io_ndp *n)
{
	struct rb_io_qstats *st = &q->st;
	uint64_t insns = n->x.insns, ns;

	rb_io_count(&st->ndp_requests, 1);
	rb_io_count(&st->ndp_hops, n->x.hops);
	rb_io_count(&st->ndp_bytes_read, n->io_bytes[0]);
	rb_io_count(&st->ndp_bytes_written, n->io_bytes[1]);
	if (!insns) {
		if (n->timed)
			q->prog_sample_left = 0; /* nothing ran: time the next one */
		return;
	}
	rb_io_count(&st->prog_insns, insns);
	if (n->timed) {
		q->sampled_ns += n->prog_ns;
		q->sampled_insns += insns;
		rb_io_count(&st->prog_sampled, 1);
		ns = n->prog_ns;
		/* Requests that ended before the queue's first sample. */
		if (q->unconverted_insns)
			ns += (uint64_t)((double)q->unconverted_insns * (double)q->sampled_ns /
					 (double)q->sampled_insns);
		q->unconverted_insns = 0;
	} else if (q->sampled_insns) {
		ns = (uint64_t)((double)insns * (double)q->sampled_ns / (double)q->sampled_insns);
	} else {
		q->unconverted_insns += insns;
		return;
	}
	rb_io_count(&st->prog_run_ns, ns);
}

/* Completes an ND request: data, scratch and result into the guest's
 * buffers, then the status byte. */
static void nd_complete(struct rb_io_req *req)
{
	struct rb_io_ndp *n = req->ndp;
	struct rb_ndp_req *r = &n->r;
	struct rb_ndp_result res = {
		.status = n->x.status, .hops = n->x.hops, .retval = n->x.retval, .bytes = n->x.bytes};
	size_t at = 0;
	uint32_t used = 0;

	if (n->x.status != RB_NDP_S_OK && n->x.msg[0])
		rb_io_guest_log(req->q, "NDP request ended with %s: %s", rb_ndp_status_name(n->x.status),
				n->x.msg);
	if (r->type == RB_NDP_T_READ_ND) {
		rb_iov_scatter(r->wiov, r->wiovcnt, 0, n->data, r->io.data_len);
		at += r->io.data_len;
	}
	rb_iov_scatter(r->wiov, r->wiovcnt, at, n->scratch, r->io.scratch_len);
	at += r->io.scratch_len;
	rb_iov_scatter(r->wiov, r->wiovcnt, at, &res, sizeof(res));
	used = (uint32_t)(at + sizeof(res) + 1);
	account(req->q, n);
	outcome(req, n->x.status);
	/* Per program, once per request (program_list). */
	if (n->x.prog)
		rb_ndp_prog_account(n->x.prog, n->x.runs, n->x.hops, n->x.insns);
	finish(req, r->status, RB_VIRTIO_BLK_S_OK, used);
}

static void nd_submit_charged(struct rb_worker *w, struct rb_io_req *req);

/* The queue stops before the chain finished.  A daemon handing its disks
 * over (rb_disk_handover) leaves it in flight for the next one, where it
 * reruns from its start; otherwise it ends now, IO_ERROR. */
static void nd_stopped(struct rb_io_req *req)
{
	if (rb_io_handing_over(req->q)) {
		struct rb_io_ndp *n = req->ndp;
		rb_ndp_release(n->x.prog);
		n->x.prog = NULL;
		rb_ndp_file_release(n->x.file);
		n->x.file = NULL;
		release_gpu(n);
		n->pool_next = req->q->ndp_pool; /* as finish() does */
		req->q->ndp_pool = n;
		req->ndp = NULL;
		rb_io_req_abandon(req);
		return;
	}
	rb_ndp_exec_stopped(&req->ndp->x);
	nd_complete(req);
}

/* Issues the I/Os the executor queued (one step: the request's first I/O,
 * or a hop its program asked for), after charging them to the VM's
 * throttle group; completes the request on failure. */
static void nd_submit(struct rb_worker *w, struct rb_io_req *req)
{
	rb_io_throttle_new_step(req);
	req->ndp->retries = 0;
	nd_submit_charged(w, req);
}

/* Where chunk i of the current GPU round lands: the host region itself,
 * or a stager slot (NULL when that slot's last copy failed). */
static uint8_t *gds_buf(struct rb_io_ndp *n, unsigned i)
{
	uint64_t at = n->gds_pos + (uint64_t)i * RB_GPU_CHUNK;

	if (!n->stager)
		return rb_gpu_region_host(n->x.dest) + n->x.dest_off + at;
	return rb_gpu_stager_slot(n->stager, (n->gds_round % 2) * RB_GDS_ROUND + i);
}

/* Submits the I/Os of the current round (admitted already). */
static void nd_issue(struct rb_worker *w, struct rb_io_req *req)
{
	struct rb_io_ndp *n = req->ndp;
	struct rb_disk *d = req->q->disk;

	n->pending = 0;
	n->first_err = 0;
	n->got = 0;
	for (unsigned i = 0; i < n->x.n_io; i++) {
		uint8_t *buf = n->gds ? gds_buf(n, i) : n->data + n->x.data_off[i];
		/* A page-cache hit is read at once; its result comes back
		 * through reap() (the program runs there, not here).  GPU
		 * reads go through their staging (gds.c): io_uring only. */
		if (!n->write_first && !n->gds) {
			struct iovec iov = {buf, n->x.io_len[i]};
			if (rb_io_read_inline(w, req, d->fd, &iov, 1, n->x.io_off[i], n->x.io_len[i])) {
				n->pending++;
				continue;
			}
		}
		struct io_uring_sqe *sqe = buf ? rb_io_submit_point(w, req) : NULL;
		if (!sqe) {
			rb_io_unadmit(w, req, n->x.n_io - i);
			/* Nothing of this round is in flight yet only if i == 0.
			 * (No buffer: a stager slot whose last copy failed.) */
			n->first_err = buf ? -EBUSY : -EIO;
			if (n->pending == 0)
				rb_ndp_io_done(w, req, n->first_err);
			return;
		}
		int fd = d->fd;
		if (n->gds && d->direct &&
		    (((uintptr_t)buf | n->x.io_off[i] | n->x.io_len[i]) & (d->dio_align - 1)))
			fd = d->fd_buffered; /* a region offset O_DIRECT cannot take */
		if (n->write_first) {
			io_uring_prep_write(sqe, fd, buf, n->x.io_len[i], n->x.io_off[i]);
		} else {
			io_uring_prep_read(sqe, fd, buf, n->x.io_len[i], n->x.io_off[i]);
		}
		n->pending++;
	}
}

static void nd_submit_charged(struct rb_worker *w, struct rb_io_req *req)
{
	struct rb_io_ndp *n = req->ndp;
	struct rb_disk *d = req->q->disk;
	/* The first step is the guest's own I/O; later ones are the
	 * program's, charged the same (unless the fairness experiment's
	 * --uncharged-program-io says otherwise). */
	bool program = n->x.hops > 0;
	bool charged = d->qos && rb_qos_disk_limited(d->qos) && !(program && d->uncharged_program_io);

	/* An unthrottled disk on an uncontended worker without a depth
	 * limit has nothing to check. */
	if (charged || w->contended || w->depth_now) {
		bool wr[RB_NDP_MAX_NEXT_IOS];
		uint64_t by[RB_NDP_MAX_NEXT_IOS];
		for (unsigned i = 0; i < n->x.n_io && i < RB_NDP_MAX_NEXT_IOS; i++) {
			wr[i] = n->write_first;
			by[i] = n->x.io_len[i];
		}
		/* (Uncharged hops still take their turn on the worker.) */
		if (!rb_io_throttle(w, req, n->x.n_io, wr, by, charged, nd_submit_charged))
			return;
	}
	if (program) {
		rb_io_count(&req->q->st.prog_ios, n->x.n_io);
		for (unsigned i = 0; i < n->x.n_io; i++)
			rb_io_count(&req->q->st.prog_bytes, n->x.io_len[i]);
	} else {
		rb_io_count(&req->q->st.guest_ios, n->x.n_io);
	}
	nd_issue(w, req);
}

/* NDP state from q's pool, a new one while fewer than ndp_inflight
 * exist, else NULL (the request waits for one). */
static struct rb_io_ndp *ndp_state_get(struct rb_io_queue *q)
{
	struct rb_io_ndp *n = q->ndp_pool;

	if (n) {
		q->ndp_pool = n->pool_next;
		return n;
	}
	if (q->ndp_allocated >= q->disk->ndp_inflight)
		return NULL;
	/* Its own pages (zeroed by the kernel): later requests of this queue
	 * see only what this VM's earlier requests left, never another VM's
	 * data, and freeing gives the memory back to the system, not to a
	 * heap that keeps it. */
	void *p = mmap(NULL, NDP_STATE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	q->ndp_allocated++;
	return p;
}

static void nd_begin(struct rb_worker *w, struct rb_io_req *req, struct rb_io_ndp *n);

/* ---- GPU reads (RosenGDS: docs/gds.md) ----------------------------------------- */

/* Queues the next round of a GPU read as the executor's I/Os and submits
 * it through the same throttle and submission point as every read. */
static void gds_round(struct rb_worker *w, struct rb_io_req *req)
{
	struct rb_io_ndp *n = req->ndp;
	struct rb_ndp_exec *x = &n->x;
	uint64_t at = n->gds_pos;

	x->n_io = 0;
	while (x->n_io < RB_GDS_ROUND && at < x->gpu_len) {
		uint64_t left = x->gpu_len - at;
		uint32_t len = left < RB_GPU_CHUNK ? (uint32_t)left : RB_GPU_CHUNK;
		x->io_off[x->n_io] = x->gpu_off + at;
		x->io_len[x->n_io] = len;
		x->data_off[x->n_io] = 0;
		x->n_io++;
		at += len;
	}
	nd_submit(w, req);
}

/* The executor accepted a GPU read (x->dest, gpu_off, gpu_len checked). */
static void gds_start(struct rb_worker *w, struct rb_io_req *req)
{
	struct rb_io_ndp *n = req->ndp;
	struct rb_ndp_exec *x = &n->x;

	n->gds = true;
	if (rb_gpu_region_kind(x->dest) == RB_GPU_CUDA) {
		char err[200];
		n->stager = rb_gpu_stager_get(err, sizeof(err));
		if (!n->stager) {
			snprintf(x->msg, sizeof(x->msg), "GPU read: %s", err);
			x->status = rb_gpu_cuda_available() ? RB_NDP_S_LIMIT : RB_NDP_S_NO_GPU;
			nd_complete(req);
			return;
		}
	}
	gds_round(w, req);
}

/* A round of a GPU read finished (round: 0 or the first -errno, retries
 * done): CUDA: its slots' copies go to the stream; then the next round,
 * or the end of the request once the copies are done. */
static void gds_round_done(struct rb_worker *w, struct rb_io_req *req, int round)
{
	struct rb_io_ndp *n = req->ndp;
	struct rb_ndp_exec *x = &n->x;
	char err[200];
	uint64_t at = n->gds_pos;

	for (unsigned i = 0; round == 0 && n->stager && i < x->n_io; i++) {
		if (rb_gpu_stager_copy(n->stager, (n->gds_round % 2) * RB_GDS_ROUND + i, x->dest,
				       x->dest_off + at, x->io_len[i], err, sizeof(err))) {
			rb_io_storage_log(req->q, "GPU read: %s", err);
			round = -EIO;
		}
		at += x->io_len[i];
	}
	if (round == 0) {
		for (unsigned i = 0; i < x->n_io; i++)
			n->gds_pos += x->io_len[i];
		n->gds_round++;
		if (n->gds_pos < x->gpu_len) {
			gds_round(w, req);
			return;
		}
		if (n->stager && rb_gpu_stager_sync(n->stager, err, sizeof(err))) {
			rb_io_storage_log(req->q, "GPU read: %s", err);
			round = -EIO;
		}
	}
	rb_ndp_exec_gpu_done(x, round);
	nd_complete(req);
}

/* A READ_ND/WRITE_ND popped from the ring: it starts with state from the
 * pool, or waits for one behind the queue's older waiters. */
static void nd_start(struct rb_worker *w, struct rb_io_req *req)
{
	struct rb_io_queue *q = req->q;
	struct rb_io_ndp *n = q->nwait_head ? NULL : ndp_state_get(q);

	if (n) {
		nd_begin(w, req, n);
		return;
	}
	if (!q->nwait_head && q->ndp_allocated < q->disk->ndp_inflight) {
		rb_err(q->disk->name, "out of memory for an NDP request");
		req->rstatus = RB_IO_RS_MALFORMED; /* given back without a status */
		rb_io_req_finish(req, 0);
		return;
	}
	req->park_next = NULL;
	if (q->nwait_tail)
		q->nwait_tail->park_next = req;
	else
		q->nwait_head = req;
	q->nwait_tail = req;
}

static void nd_begin(struct rb_worker *w, struct rb_io_req *req, struct rb_io_ndp *n)
{
	struct rb_disk *d = req->q->disk;
	char err[256];
	bool can_reply;

	memset(&n->x, 0, sizeof(n->x));
	n->pending = 0;
	n->first_err = 0;
	n->got = 0;
	n->write_first = false;
	n->io_bytes[0] = n->io_bytes[1] = 0;
	n->timed = false;
	n->prog_ns = 0;
	n->gds = false;
	n->gds_pos = 0;
	n->gds_round = 0;
	n->stager = NULL;
	req->ndp = n;
	/* n->r.type is this request's only when the parser got that far. */
	int perr = rb_ndp_req_parse(&req->chain, &n->r, &can_reply, err, sizeof(err));
	if (perr || (n->r.type != RB_NDP_T_READ_ND && n->r.type != RB_NDP_T_WRITE_ND)) {
		rb_io_guest_log(req->q, "malformed NDP request: %s",
				perr ? err : "type changed under us");
		if (!can_reply) {
			/* No room for a result: a status byte alone says IOERR. */
			struct rb_virtq_chain *c = &req->chain;
			uint8_t *status = NULL;
			if (c->n_segs > c->n_read)
				status = (uint8_t *)c->iov[c->n_segs - 1].iov_base +
					 c->iov[c->n_segs - 1].iov_len - 1;
			finish(req, status, RB_VIRTIO_BLK_S_IOERR, 1);
			return;
		}
		n->x.status = RB_NDP_S_BAD_REQUEST;
		outcome(req, RB_NDP_S_BAD_REQUEST);
		/* Only the result struct is certain to exist: answer through it. */
		struct rb_ndp_result res = {.status = RB_NDP_S_BAD_REQUEST};
		size_t wb = 0;
		for (unsigned i = 0; i < n->r.wiovcnt; i++)
			wb += n->r.wiov[i].iov_len;
		rb_iov_scatter(n->r.wiov, n->r.wiovcnt, wb - 1 - sizeof(res), &res, sizeof(res));
		finish(req, n->r.status, RB_VIRTIO_BLK_S_OK, (uint32_t)wb);
		return;
	}
	struct rb_ndp_exec *x = &n->x;
	x->prog = rb_ndp_acquire(d->progs, n->r.io.handle);
	if (!x->prog) {
		x->status = rb_ndp_missing(n->r.io.handle, RB_NDP_S_NO_PROGRAM);
		snprintf(x->msg, sizeof(x->msg),
			 x->status == RB_NDP_S_STATE_LOST
				 ? "handle %u is from before the daemon restarted: its program is gone (load it again)"
				 : "no program with handle %u on this disk",
			 n->r.io.handle);
		nd_complete(req);
		return;
	}
	/* One request in RB_IO_PROG_SAMPLE_EVERY has its program runs timed
	 * (rb_disk_metrics); the rest read no clock. */
	if (req->q->prog_sample_left == 0) {
		n->timed = true;
		req->q->prog_sample_left = RB_IO_PROG_SAMPLE_EVERY - 1;
	} else {
		req->q->prog_sample_left--;
	}
	if (n->r.io.flags & RB_NDP_IO_F_FILE) {
		/* Held until the request completes: an UNREG_FILE meanwhile
		 * (another queue) does not free the map under it. */
		x->file = rb_ndp_file_acquire(d->progs, n->r.io.file_key);
		if (!x->file) {
			x->status = rb_ndp_missing(n->r.io.file_key, RB_NDP_S_NO_PROGRAM);
			snprintf(x->msg, sizeof(x->msg),
				 x->status == RB_NDP_S_STATE_LOST
					 ? "file key %u is from before the daemon restarted: its map is gone (register it again)"
					 : "no file with key %u on this disk (never registered, unregistered, or another VM's)",
				 n->r.io.file_key);
			nd_complete(req);
			return;
		}
	}
	x->capacity_bytes = rb_io_capacity(d) * RB_VIRTIO_BLK_SECTOR;
	x->table = d->progs;
	x->gpu = n->r.io.flags & RB_NDP_IO_F_GPU;
	map_registrations(req, x);
	x->max_hops = n->r.io.max_hops;
	/* A fixed-size metadata region (what the verifier assumes), zero
	 * beyond what the guest sent. */
	memcpy(n->meta, n->r.meta, n->r.io.meta_len);
	memset(n->meta + n->r.io.meta_len, 0, RB_NDP_MAX_META - n->r.io.meta_len);
	x->meta = n->meta;
	x->meta_len = n->r.io.meta_len;
	x->data = n->data;
	x->scratch = n->scratch;
	x->scratch_len = n->r.io.scratch_len;
	memcpy(n->scratch, n->r.scratch_in, n->r.io.scratch_len);
	if (n->r.type == RB_NDP_T_WRITE_ND) {
		if (d->readonly) {
			x->status = RB_NDP_S_READ_ONLY;
			snprintf(x->msg, sizeof(x->msg), "WRITE_ND on a read-only disk");
			nd_complete(req);
			return;
		}
		memcpy(n->data, n->r.wdata, n->r.io.data_len);
		n->write_first = true;
	}
	n->retries = 0;
	if (n->r.sector > UINT64_MAX / RB_VIRTIO_BLK_SECTOR) {
		x->status = RB_NDP_S_OUT_OF_RANGE;
		snprintf(x->msg, sizeof(x->msg), "first I/O at sector %llu overflows",
			 (unsigned long long)n->r.sector);
		nd_complete(req);
		return;
	}
	uint64_t t0 = n->timed ? rb_io_now_ns() : 0;
	int step = rb_ndp_exec_start(x, n->r.sector * RB_VIRTIO_BLK_SECTOR, n->r.io.io_len);
	if (n->timed)
		n->prog_ns += rb_io_now_ns() - t0;
	if (x->insns) {
		rb_io_clock_stale(w);
		req->q->ndp_credit -= (int64_t)x->insns + RB_IO_NDP_HOP_COST;
	}
	if (step == RB_NDP_STEP_DONE) {
		nd_complete(req);
		return;
	}
	if (x->gpu) {
		gds_start(w, req);
		return;
	}
	if (n->write_first)
		rb_io_write_begin(req); /* flushes after it wait for its write */
	nd_submit(w, req);
}

/* Runs the program on a finished round, charged to the queue's credit,
 * and goes on with the request. */
static void nd_step(struct rb_worker *w, struct rb_io_req *req, int round)
{
	struct rb_io_ndp *n = req->ndp;
	uint64_t before = n->x.insns;
	uint64_t t0 = n->timed ? rb_io_now_ns() : 0;
	int step = rb_ndp_exec_io_done(&n->x, round);

	if (n->timed)
		n->prog_ns += rb_io_now_ns() - t0;
	rb_io_clock_stale(w);

	req->q->ndp_credit -= (int64_t)(n->x.insns - before) + RB_IO_NDP_HOP_COST;
	if (step == RB_NDP_STEP_DONE) {
		nd_complete(req);
		return;
	}
	nd_submit(w, req);
}

static void defer_push(struct rb_worker *w, struct rb_io_req *req)
{
	struct rb_io_queue *q = req->q;

	req->next_deferred = NULL;
	if (q->defer_tail)
		q->defer_tail->next_deferred = req;
	else
		q->defer_head = req;
	q->defer_tail = req;
	w->ndp_deferred++;
}

static struct rb_io_req *defer_pop(struct rb_worker *w, struct rb_io_queue *q)
{
	struct rb_io_req *req = q->defer_head;

	q->defer_head = req->next_deferred;
	if (!q->defer_head)
		q->defer_tail = NULL;
	req->next_deferred = NULL;
	w->ndp_deferred--;
	return req;
}

unsigned rb_ndp_io_run_deferred(struct rb_worker *w, struct rb_io_queue *q)
{
	unsigned n = 0;

	while (q->defer_head && q->ndp_credit > 0) {
		struct rb_io_req *req = defer_pop(w, q);
		if (q->stopping) {
			nd_stopped(req);
		} else {
			nd_step(w, req, req->ndp->round_res);
		}
		n++;
	}
	return n;
}

void rb_ndp_io_stop_deferred(struct rb_worker *w, struct rb_io_queue *q)
{
	while (q->defer_head) {
		struct rb_io_req *req = defer_pop(w, q);
		nd_stopped(req);
	}
}

void rb_ndp_io_done(struct rb_worker *w, struct rb_io_req *req, int res)
{
	struct rb_io_ndp *n = req->ndp;

	if (res < 0 && !n->first_err)
		n->first_err = res;
	if (res > 0)
		n->got += (uint64_t)res;
	if (n->pending)
		n->pending--;
	if (n->pending)
		return;
	/* A short transfer is an error too: the program must not see stale
	 * bytes as if the device had returned them. */
	int round = n->first_err;
	uint64_t want = 0;
	for (unsigned i = 0; i < n->x.n_io; i++)
		want += n->x.io_len[i];
	/* EAGAIN/EINTR or a short round (something arrived, not all): the
	 * whole round again, without charging it twice or running the
	 * program; reads land in the same place, writes write the same
	 * bytes.  A round that moved nothing is the end of the image. */
	bool again = round == -EAGAIN || round == -EINTR || (!round && n->got && n->got != want);
	if (again && n->retries < RB_IO_MAX_RETRIES && !req->q->stopping) {
		n->retries++;
		rb_debug(req->q->disk->name, "queue %u: NDP round of %u I/O%s: %s; submitting it again (retry %u of %u)",
			 req->q->index, n->x.n_io, n->x.n_io == 1 ? "" : "s",
			 round ? strerror(-round) : "short transfer", n->retries, RB_IO_MAX_RETRIES);
		nd_issue(w, req);
		return;
	}
	if (!round && n->got != want) {
		rb_io_storage_log(req->q, "NDP %s round: %llu of %llu bytes%s; the request ends with IO_ERROR",
				  n->write_first ? "write" : "read", (unsigned long long)n->got,
				  (unsigned long long)want,
				  n->got ? " after retries" : " (end of the image: truncated under the daemon?)");
		round = -EIO;
	} else if (round < 0 && round != -EBUSY) {
		rb_io_storage_log(req->q, "NDP %s round failed: %s; the request ends with IO_ERROR",
				  n->write_first ? "write" : "read", strerror(-round));
	}
	if (n->write_first)
		rb_io_write_end(w, req);
	n->io_bytes[n->write_first] += n->got;
	n->write_first = false;
	/* A drain does not wait for a chain to run out of hops: it ends at
	 * the first hop after the queue began to stop. */
	if (req->q->stopping) {
		nd_stopped(req);
		return;
	}
	if (n->gds) { /* no program runs between the rounds of a GPU read */
		gds_round_done(w, req, round);
		return;
	}
	/* No credit left this round, or older chains of the queue waiting
	 * (FIFO: none overtakes another): the program runs in a later round. */
	if (req->q->defer_head || req->q->ndp_credit <= 0) {
		n->round_res = round;
		defer_push(w, req);
		return;
	}
	nd_step(w, req, round);
}

void rb_ndp_io_start(struct rb_worker *w, struct rb_io_req *req, uint32_t type)
{
	req->ndp = NULL;
	req->rstatus = RB_IO_RS_OK; /* until an NDP status or finish() says otherwise */
	switch (type) {
	case RB_NDP_T_PROBE:
		do_probe(req);
		return;
	case RB_NDP_T_LOAD:
		do_load(w, req);
		return;
	case RB_NDP_T_UNLOAD:
		do_unload(req);
		return;
	case RB_NDP_T_READ_ND:
	case RB_NDP_T_WRITE_ND:
		nd_start(w, req);
		return;
	case RB_NDP_T_REG_MEM:
	case RB_NDP_T_UNREG_MEM:
		do_reg_mem(req, type == RB_NDP_T_REG_MEM);
		return;
	case RB_NDP_T_REG_FILE:
		do_reg_file(req);
		return;
	case RB_NDP_T_UNREG_FILE:
		do_unreg_file(req);
		return;
	case RB_NDP_T_REG_GPU:
	case RB_NDP_T_UNREG_GPU:
	case RB_NDP_T_GPU_SUM:
		rb_gds_ctl(req, type);
		return;
	}
	struct rb_virtq_chain *c = &req->chain;
	unsigned nw = c->n_segs - c->n_read;
	uint8_t *status = nw ? (uint8_t *)c->iov[c->n_segs - 1].iov_base +
				       c->iov[c->n_segs - 1].iov_len - 1
			     : NULL;
	rb_io_guest_log(req->q, "NDP request type 0x%x is not supported", type);
	finish(req, status, RB_VIRTIO_BLK_S_UNSUPP, 1);
}

unsigned rb_ndp_io_run_waiting(struct rb_worker *w, struct rb_io_queue *q)
{
	unsigned n = 0;

	while (q->nwait_head) {
		struct rb_io_ndp *st = ndp_state_get(q);
		if (!st)
			break; /* (out of memory: the next round tries again) */
		struct rb_io_req *req = q->nwait_head;
		q->nwait_head = req->park_next;
		if (!q->nwait_head)
			q->nwait_tail = NULL;
		nd_begin(w, req, st);
		n++;
	}
	return n;
}

void rb_ndp_io_stop_waiting(struct rb_io_queue *q)
{
	while (q->nwait_head) {
		struct rb_io_req *req = q->nwait_head;
		struct rb_virtq_chain *c = &req->chain;
		q->nwait_head = req->park_next;
		if (!q->nwait_head)
			q->nwait_tail = NULL;
		if (rb_io_handing_over(q)) { /* the next daemon runs it */
			rb_io_req_abandon(req);
			continue;
		}
		/* Never started: the status byte (the chain's last) says so. */
		uint8_t *status = c->n_segs > c->n_read
					  ? (uint8_t *)c->iov[c->n_segs - 1].iov_base +
						    c->iov[c->n_segs - 1].iov_len - 1
					  : NULL;
		finish(req, status, RB_VIRTIO_BLK_S_IOERR, 1);
	}
}

void rb_ndp_io_free_cache(struct rb_io_queue *q)
{
	while (q->ndp_pool) {
		struct rb_io_ndp *n = q->ndp_pool;
		q->ndp_pool = n->pool_next;
		munmap(n, NDP_STATE_BYTES);
		q->ndp_allocated--;
	}
}
