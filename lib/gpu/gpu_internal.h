/* SPDX-License-Identifier: MIT */
/*
 * What the files of lib/gpu share: the few CUDA driver API types and entry
 * points the daemon uses, declared here from the public driver API
 * documentation (no CUDA header is needed to build), and the region.
 * Nothing outside lib/gpu includes it.
 */
#ifndef ROSEN_GPU_INTERNAL_H
#define ROSEN_GPU_INTERNAL_H

#include <rosen/gpu.h>

#include <stdatomic.h>

typedef int rb_cu_result;               /* CUresult: 0 is CUDA_SUCCESS */
typedef int rb_cu_device;               /* CUdevice */
typedef struct rb_cu_ctx *rb_cu_ctx;    /* CUcontext (opaque) */
typedef struct rb_cu_stream *rb_cu_stream;
typedef struct rb_cu_event *rb_cu_event;
typedef unsigned long long rb_cu_dptr;  /* CUdeviceptr (64-bit, the _v2 ABI) */

#define RB_CU_STREAM_NON_BLOCKING 0x1u
#define RB_CU_EVENT_DISABLE_TIMING 0x2u

/* The entry points, resolved once by rb_gpu_cuda_open(). */
struct rb_cu_api {
	rb_cu_result (*init)(unsigned flags);
	rb_cu_result (*driver_get_version)(int *v);
	rb_cu_result (*device_get_count)(int *n);
	rb_cu_result (*device_get)(rb_cu_device *d, int ordinal);
	rb_cu_result (*device_get_name)(char *name, int len, rb_cu_device d);
	rb_cu_result (*primary_ctx_retain)(rb_cu_ctx *ctx, rb_cu_device d);
	rb_cu_result (*primary_ctx_release)(rb_cu_device d);
	rb_cu_result (*ctx_set_current)(rb_cu_ctx ctx);
	rb_cu_result (*mem_alloc)(rb_cu_dptr *p, size_t bytes);
	rb_cu_result (*mem_free)(rb_cu_dptr p);
	rb_cu_result (*memset_d8)(rb_cu_dptr p, unsigned char v, size_t n);
	rb_cu_result (*memcpy_htod)(rb_cu_dptr dst, const void *src, size_t n);
	rb_cu_result (*memcpy_dtoh)(void *dst, rb_cu_dptr src, size_t n);
	rb_cu_result (*memcpy_htod_async)(rb_cu_dptr dst, const void *src, size_t n, rb_cu_stream s);
	rb_cu_result (*mem_host_register)(void *p, size_t bytes, unsigned flags);
	rb_cu_result (*mem_host_unregister)(void *p);
	rb_cu_result (*stream_create)(rb_cu_stream *s, unsigned flags);
	rb_cu_result (*stream_synchronize)(rb_cu_stream s);
	rb_cu_result (*stream_destroy)(rb_cu_stream s);
	rb_cu_result (*event_create)(rb_cu_event *e, unsigned flags);
	rb_cu_result (*event_record)(rb_cu_event e, rb_cu_stream s);
	rb_cu_result (*event_synchronize)(rb_cu_event e);
	rb_cu_result (*event_destroy)(rb_cu_event e);
	rb_cu_result (*get_error_string)(rb_cu_result r, const char **s);
};

/* The process's GPU: set by rb_gpu_cuda_open(), read-only afterwards. */
struct rb_gpu_cuda {
	bool ready;
	void *lib;
	struct rb_cu_api api;
	rb_cu_device dev;
	rb_cu_ctx ctx;
	int driver_version;
	char name[128];
};
extern struct rb_gpu_cuda rb_gpu_cu;

/* Makes the primary context current on the calling thread (cheap, and
 * needed once per thread before any other call).  0 or the CUresult. */
rb_cu_result rb_gpu_cu_enter(void);
/* "cuX failed: NAME (code)" into err. */
void rb_gpu_cu_err(char *err, size_t errlen, const char *call, rb_cu_result r);

struct rb_gpu_region {
	atomic_uint refs;
	uint32_t kind;
	uint64_t size;
	uint8_t *host;   /* RB_GPU_HOST */
	size_t map_len;
	rb_cu_dptr dptr; /* RB_GPU_CUDA */
};

#endif
