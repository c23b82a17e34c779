/* SPDX-License-Identifier: MIT */
/*
 * "Accepted => safe and blind": runs a program the verifier accepted in
 * ways it must not be able to tell apart (its regions, stack and helper
 * memory at other host addresses, other garbage in every register and
 * stack byte it never wrote) and reports any fault or any difference.
 * Shared by tests/unit/test_bpf_soundness.c and tests/fuzz/.  Test code:
 * never linked into the daemon.
 */
#ifndef ROSEN_TEST_SOUNDNESS_H
#define ROSEN_TEST_SOUNDNESS_H

#include <rosen/bpf.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The NDP helper ids with deterministic stand-ins that keep exactly the
 * contract their prototypes declare (no more: an out-buffer the prototype
 * does not call `filled` is left alone on failure), every other id
 * registered as a helper that fails the run (so that the verifier, not the
 * loader, must refuse it). */
struct rb_bpf_helpers *sd_helpers(void);

struct sd_stats {
	uint64_t runs;      /* sd_check() calls */
	uint64_t ok;        /* ... whose program exited normally */
	uint64_t budget;    /* ... that ran out of budget */
	uint64_t helpers;   /* helper calls seen */
};

/*
 * Checks one program of NDP type `type` (enum rb_ndp_prog_type) that the
 * verifier accepted.  `a` and `b` are the same program loaded twice (so
 * their .data/.bss live at different addresses; b may be NULL: then `a`
 * serves both runs).  Region contents come from `seed` and, when given,
 * from `fill` (the fuzzer's bytes); they hold both runs' region, stack and
 * context addresses, values next to them, 0 and boundary values, so that a
 * leaked address is stored or compared somewhere.  Two runs in the
 * interpreter's debug mode (reads of stack bytes never written fault),
 * then, with `jit`, the unchecked JIT on the first run's inputs.
 * Returns 0 when both runs kept to their memory and agreed on status, r0,
 * every region's bytes, the context's number fields and the program's
 * data sections (and the JIT agreed on r0 and memory, or on BUDGET);
 * otherwise 1 with the reason in `why`.
 */
int sd_check(struct rb_bpf_prog *a, struct rb_bpf_prog *b, uint32_t type, uint64_t seed,
	     const uint8_t *fill, size_t fill_len, bool jit, struct sd_stats *st, char *why,
	     size_t whylen);

/* The budget of each run: large enough for the corpus, small enough to
 * keep a fuzz iteration short. */
#define SD_BUDGET 100000u

#endif
