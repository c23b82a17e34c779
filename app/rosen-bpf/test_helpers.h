/* SPDX-License-Identifier: MIT */
/* The helpers of the bpf_conformance plugin contract (ids 0..5). */
#ifndef ROSEN_BPF_TEST_HELPERS_H
#define ROSEN_BPF_TEST_HELPERS_H

#include <rosen/bpf.h>

/* Registers gather_bytes (0), memfrob (1), no_op (2), sqrti (3),
 * strcmp_ext (4) and unwind (5).  Returns 0 or -errno. */
int rosen_bpf_register_test_helpers(struct rb_bpf_helpers *h);

#endif
