/* SPDX-License-Identifier: MIT */
/*
 * Reading a disk's metrics: the counters its queues' workers keep (struct
 * rb_io_qstats), added up on the caller's thread, plus what its program
 * table and throttle group count.  Read-only: it never writes a counter
 * and never waits for a worker (only the throttle group's short lock).
 */
#include "io_internal.h"

#include <string.h>

const uint64_t rb_io_lat_bound_ns[RB_IO_LAT_BUCKETS] = {
	10000,	   25000,     50000,	 100000,     250000,	 500000,     1000000,
	2500000,   5000000,   10000000,	 25000000,   50000000,	 100000000,  250000000,
	500000000, 1000000000, 2500000000, 5000000000, 10000000000,
};

/* How many bounds lie below 2^k: a latency in [2^k, 2^(k+1)) is in
 * bucket octave[k] or the next (bounds are at least 2x apart, so an
 * octave holds at most one).  Checked against the bounds by test_io. */
const uint8_t rb_io_lat_octave[64] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2,
	3, 4, 5, 6, 7, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 16,
	17, 18, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19,
	19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19,
};

const char *rb_io_rtype_name(unsigned t)
{
	static const char *const names[RB_IO_NR_RTYPES] = {
		[RB_IO_RT_READ] = "read",
		[RB_IO_RT_WRITE] = "write",
		[RB_IO_RT_FLUSH] = "flush",
		[RB_IO_RT_DISCARD] = "discard",
		[RB_IO_RT_WRITE_ZEROES] = "write_zeroes",
		[RB_IO_RT_GET_ID] = "get_id",
		[RB_IO_RT_NDP_PROBE] = "ndp_probe",
		[RB_IO_RT_NDP_LOAD] = "ndp_load",
		[RB_IO_RT_NDP_UNLOAD] = "ndp_unload",
		[RB_IO_RT_READ_ND] = "read_nd",
		[RB_IO_RT_WRITE_ND] = "write_nd",
		[RB_IO_RT_REG_MEM] = "reg_mem",
		[RB_IO_RT_UNREG_MEM] = "unreg_mem",
		[RB_IO_RT_REG_FILE] = "reg_file",
		[RB_IO_RT_UNREG_FILE] = "unreg_file",
		[RB_IO_RT_REG_GPU] = "reg_gpu",
		[RB_IO_RT_UNREG_GPU] = "unreg_gpu",
		[RB_IO_RT_GPU_SUM] = "gpu_sum",
		[RB_IO_RT_OTHER] = "other",
	};

	return t < RB_IO_NR_RTYPES ? names[t] : "?";
}

const char *rb_io_rstatus_name(unsigned s)
{
	switch (s) {
	case RB_IO_RS_OK: return "ok";
	case RB_IO_RS_IOERR: return "ioerr";
	case RB_IO_RS_UNSUPP: return "unsupp";
	case RB_IO_RS_MALFORMED: return "malformed";
	}
	if (s < RB_IO_NR_RSTATUS)
		return rb_ndp_status_name(s - RB_IO_RS_NDP + 1);
	return "?";
}

void rb_disk_metrics(const struct rb_disk *d, struct rb_disk_metrics *m)
{
	memset(m, 0, sizeof(*m));
	for (unsigned i = 0; i < d->nqueues; i++) {
		const struct rb_io_qstats *q = &d->queues[i].st;
#define LOAD(x) atomic_load_explicit(&q->x, memory_order_relaxed)
		for (unsigned t = 0; t < RB_IO_NR_RTYPES; t++) {
			for (unsigned s = 0; s < RB_IO_NR_RSTATUS; s++)
				m->requests[t][s] += LOAD(req[t][s]);
			for (unsigned b = 0; b <= RB_IO_LAT_BUCKETS; b++)
				m->latency[t][b] += LOAD(lat[t][b]);
			m->latency_sum_ns[t] += LOAD(lat_sum_ns[t]);
		}
		m->bytes_read += LOAD(bytes_read) + LOAD(ndp_bytes_read);
		m->bytes_written += LOAD(bytes_written) + LOAD(ndp_bytes_written);
		m->ndp_hops += LOAD(ndp_hops);
		m->prog_insns += LOAD(prog_insns);
		m->prog_run_ns += LOAD(prog_run_ns);
		m->prog_sampled_requests += LOAD(prog_sampled);
		m->inflight += LOAD(inflight);
		m->inline_hits += LOAD(inline_hits);
		m->inline_misses += LOAD(inline_misses);
#undef LOAD
	}
	m->verifier_rejections = rb_ndp_table_verifier_rejections(d->progs);
	if (d->qos) {
		struct rb_qos_counters c;
		rb_qos_disk_stats(d->qos, &c);
		m->throttled_ns = c.parked_ns;
	}
}
