/* SPDX-License-Identifier: MIT */
/*
 * The metadata of a RosenGDS read (progs/gds_map.c), shared by the program
 * and its clients (rosen-io gds-read, bench/gds): the guest names its
 * destination by a "phony" buffer address, as it would name a buffer in
 * its GPU's memory, and a small table maps phony address ranges to
 * (GPU region key, offset in the region).  Little-endian, fixed layout.
 */
#ifndef ROSEN_GDS_MAP_H
#define ROSEN_GDS_MAP_H

#ifdef __bpf__
#include <linux/types.h>
#else
#include <stdint.h>
typedef uint64_t __u64;
typedef uint32_t __u32;
#endif

#define GDS_MAP_MAX 16u

struct gds_map_entry {
	__u64 phony;      /* first phony address of the range */
	__u64 len;        /* bytes of the range */
	__u64 region_off; /* where `phony` lies in the region */
	__u32 key;        /* the GPU region (REG_GPU key) */
	__u32 reserved;
};

struct gds_map_meta {
	__u64 dest;       /* the read's destination, a phony address */
	__u32 n;          /* entries used, 0..GDS_MAP_MAX */
	__u32 reserved;
	struct gds_map_entry e[GDS_MAP_MAX];
};

_Static_assert(sizeof(struct gds_map_entry) == 32, "gds_map_entry is 32 bytes");
_Static_assert(sizeof(struct gds_map_meta) == 16 + 32 * GDS_MAP_MAX, "gds_map_meta is 528 bytes");

#endif
