/* SPDX-License-Identifier: MIT */
/*
 * Regions: host memory the daemon maps for a VM (zeroed pages of its own,
 * so a region never shows what another VM or an earlier region held), or
 * device memory of the CUDA GPU.  Every access through this file is
 * checked against the region's size first.
 */
#include "gpu_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

bool rb_gpu_range_ok(uint64_t size, uint64_t off, uint64_t len)
{
	return len > 0 && off <= size && len <= size - off;
}

int rb_gpu_region_new(uint32_t kind, uint64_t size, struct rb_gpu_region **out, char *err,
		      size_t errlen)
{
	struct rb_gpu_region *r;

	*out = NULL;
	if (size == 0 || (kind != RB_GPU_HOST && kind != RB_GPU_CUDA) || size > SIZE_MAX / 2) {
		snprintf(err, errlen, "region of %llu bytes of kind %u: no such region",
			 (unsigned long long)size, kind);
		return -EINVAL;
	}
	if (kind == RB_GPU_CUDA && !rb_gpu_cuda_available()) {
		snprintf(err, errlen, "no GPU: the daemon has no CUDA device (rosenbridged --gpu N)");
		return -ENODEV;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	atomic_init(&r->refs, 1);
	r->kind = kind;
	r->size = size;
	if (kind == RB_GPU_HOST) {
		r->map_len = (size_t)((size + 4095) & ~(uint64_t)4095);
		void *p = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED) {
			snprintf(err, errlen, "cannot map %llu bytes of host memory: %s",
				 (unsigned long long)size, strerror(errno));
			free(r);
			return -ENOMEM;
		}
		r->host = p;
	} else {
		rb_cu_result cr = rb_gpu_cu_enter();
		if (!cr)
			cr = rb_gpu_cu.api.mem_alloc(&r->dptr, (size_t)size);
		if (cr) {
			rb_gpu_cu_err(err, errlen, "cuMemAlloc", cr);
			free(r);
			return -ENOMEM;
		}
		/* Zeroed like host regions: no earlier tenant's bytes. */
		cr = rb_gpu_cu.api.memset_d8(r->dptr, 0, (size_t)size);
		if (cr) {
			rb_gpu_cu_err(err, errlen, "cuMemsetD8", cr);
			rb_gpu_cu.api.mem_free(r->dptr);
			free(r);
			return -ENOMEM;
		}
	}
	*out = r;
	return 0;
}

void rb_gpu_region_get(struct rb_gpu_region *r)
{
	atomic_fetch_add(&r->refs, 1);
}

void rb_gpu_region_put(struct rb_gpu_region *r)
{
	if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	if (r->kind == RB_GPU_HOST) {
		munmap(r->host, r->map_len);
	} else if (!rb_gpu_cu_enter()) {
		rb_gpu_cu.api.mem_free(r->dptr);
	}
	free(r);
}

bool rb_gpu_region_shared(const struct rb_gpu_region *r)
{
	return atomic_load(&r->refs) > 1;
}

uint64_t rb_gpu_region_size(const struct rb_gpu_region *r)
{
	return r->size;
}

uint32_t rb_gpu_region_kind(const struct rb_gpu_region *r)
{
	return r->kind;
}

uint8_t *rb_gpu_region_host(const struct rb_gpu_region *r)
{
	return r->kind == RB_GPU_HOST ? r->host : NULL;
}

#define BOUNCE (1u << 20)

int rb_gpu_region_sum(struct rb_gpu_region *r, uint64_t off, uint64_t len, uint32_t *crc,
		      char *err, size_t errlen)
{
	*crc = 0;
	if (!rb_gpu_range_ok(r->size, off, len)) {
		snprintf(err, errlen, "%llu bytes at offset %llu leave the %llu-byte region",
			 (unsigned long long)len, (unsigned long long)off, (unsigned long long)r->size);
		return -ERANGE;
	}
	if (r->kind == RB_GPU_HOST) {
		*crc = rb_gpu_crc32(0, r->host + off, (size_t)len);
		return 0;
	}
	uint8_t *bounce = malloc(BOUNCE);
	rb_cu_result cr = bounce ? rb_gpu_cu_enter() : 0;
	uint32_t c = 0;

	if (!bounce) {
		snprintf(err, errlen, "out of memory for the device-to-host copy");
		return -EIO;
	}
	for (uint64_t at = 0; !cr && at < len; at += BOUNCE) {
		size_t n = len - at < BOUNCE ? (size_t)(len - at) : BOUNCE;
		cr = rb_gpu_cu.api.memcpy_dtoh(bounce, r->dptr + off + at, n);
		if (!cr)
			c = rb_gpu_crc32(c, bounce, n);
	}
	free(bounce);
	if (cr) {
		rb_gpu_cu_err(err, errlen, "cuMemcpyDtoH", cr);
		return -EIO;
	}
	*crc = c;
	return 0;
}

int rb_gpu_region_write(struct rb_gpu_region *r, uint64_t off, const void *src, size_t len,
			char *err, size_t errlen)
{
	if (!rb_gpu_range_ok(r->size, off, len)) {
		snprintf(err, errlen, "%zu bytes at offset %llu leave the %llu-byte region", len,
			 (unsigned long long)off, (unsigned long long)r->size);
		return -ERANGE;
	}
	if (r->kind == RB_GPU_HOST) {
		memcpy(r->host + off, src, len);
		return 0;
	}
	rb_cu_result cr = rb_gpu_cu_enter();
	if (!cr)
		cr = rb_gpu_cu.api.memcpy_htod(r->dptr + off, src, len);
	if (cr) {
		rb_gpu_cu_err(err, errlen, "cuMemcpyHtoD", cr);
		return -EIO;
	}
	return 0;
}
