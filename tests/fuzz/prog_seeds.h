/* SPDX-License-Identifier: MIT */
/*
 * Seeds in the program input format of fuzz_verifier and fuzz_jit_diff
 * (fuzz_verifier.c's header comment): the test and BPF-KV programs the
 * verifier accepts, and with `rejected` one rejected program per rule
 * (tests/programs/verifier_hostile.c, written as rejected_*).  Test code.
 */
#ifndef ROSEN_FUZZ_PROG_SEEDS_H
#define ROSEN_FUZZ_PROG_SEEDS_H

#include <rosen/bpf.h>

#include <stdbool.h>

#define FZ_PROG_HEADER 10u       /* type, flags, insn count, 3 section lengths */
#define FZ_PROG_MAX_INSNS 4096u
#define FZ_PROG_MAX_SECTION 4096u

/* Writes the seeds into dir; 0, or 1 when one could not be written. */
int fz_write_prog_seeds(const char *dir, const struct rb_bpf_helpers *helpers, bool rejected);

#endif
