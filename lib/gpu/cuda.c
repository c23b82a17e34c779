/* SPDX-License-Identifier: MIT */
/*
 * The CUDA driver API, loaded at run time: dlopen("libcuda.so.1"), every
 * entry point resolved with cuGetProcAddress at a version no newer than
 * the driver reports (or, on a driver older than 11.3, by its explicit
 * _v2 name: the plain names of the memory calls are the legacy 32-bit
 * ABI), the device's primary context, and the staging buffers of the data
 * path.  Without libcuda, or when cuInit fails, nothing here is usable and
 * every caller is told "no GPU"; nothing aborts.
 */
#include "gpu_internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct rb_gpu_cuda rb_gpu_cu;

/* The ABI these prototypes were written against (CUDA 12.0); an older
 * driver is asked for its own version. */
#define API_VERSION 12000

typedef rb_cu_result (*get_proc_fn)(const char *symbol, void **pfn, int version,
				    unsigned long long flags);

void rb_gpu_cu_err(char *err, size_t errlen, const char *call, rb_cu_result r)
{
	const char *s = NULL;

	if (rb_gpu_cu.api.get_error_string && rb_gpu_cu.api.get_error_string(r, &s))
		s = NULL;
	snprintf(err, errlen, "%s failed: %s (CUresult %d)", call, s ? s : "unknown error", r);
}

rb_cu_result rb_gpu_cu_enter(void)
{
	if (!rb_gpu_cu.ready)
		return 100; /* CUDA_ERROR_NO_DEVICE */
	return rb_gpu_cu.api.ctx_set_current(rb_gpu_cu.ctx);
}

bool rb_gpu_cuda_available(void)
{
	return rb_gpu_cu.ready;
}

const char *rb_gpu_cuda_name(void)
{
	return rb_gpu_cu.ready ? rb_gpu_cu.name : "";
}

/* One entry point: cuGetProcAddress(base, version) when the driver has it,
 * else dlsym of the explicit name (base + suffix). */
static void *resolve(get_proc_fn gp, int version, const char *base, const char *suffix)
{
	void *fn = NULL;
	char name[64];

	if (gp && gp(base, &fn, version, 0) == 0 && fn)
		return fn;
	snprintf(name, sizeof(name), "%s%s", base, suffix);
	return dlsym(rb_gpu_cu.lib, name);
}

int rb_gpu_cuda_open(int ordinal, char *err, size_t errlen)
{
	struct rb_cu_api *a = &rb_gpu_cu.api;
	rb_cu_result r;
	int n = 0;

	if (rb_gpu_cu.ready)
		return 0;
	rb_gpu_cu.lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!rb_gpu_cu.lib) {
		const char *why = dlerror();
		snprintf(err, errlen, "no GPU: cannot load libcuda.so.1 (%s)", why ? why : "not found");
		return -ENOENT;
	}
	a->init = (rb_cu_result(*)(unsigned))dlsym(rb_gpu_cu.lib, "cuInit");
	a->driver_get_version = (rb_cu_result(*)(int *))dlsym(rb_gpu_cu.lib, "cuDriverGetVersion");
	a->get_error_string =
		(rb_cu_result(*)(rb_cu_result, const char **))dlsym(rb_gpu_cu.lib, "cuGetErrorString");
	if (!a->init || !a->driver_get_version) {
		snprintf(err, errlen, "no GPU: libcuda.so.1 lacks cuInit/cuDriverGetVersion");
		goto fail_lib;
	}
	if ((r = a->init(0))) {
		rb_gpu_cu_err(err, errlen, "no GPU: cuInit", r);
		dlclose(rb_gpu_cu.lib);
		rb_gpu_cu.lib = NULL;
		memset(a, 0, sizeof(*a));
		return -ENODEV;
	}
	if ((r = a->driver_get_version(&rb_gpu_cu.driver_version))) {
		rb_gpu_cu_err(err, errlen, "no GPU: cuDriverGetVersion", r);
		goto fail_dev;
	}
	int version = rb_gpu_cu.driver_version < API_VERSION ? rb_gpu_cu.driver_version : API_VERSION;
	/* cuGetProcAddress exists from 11.3 on (its plain symbol is the
	 * four-argument form). */
	get_proc_fn gp = rb_gpu_cu.driver_version >= 11030
				 ? (get_proc_fn)dlsym(rb_gpu_cu.lib, "cuGetProcAddress")
				 : NULL;
#define R(field, base, suffix) \
	(*(void **)&a->field = resolve(gp, version, base, suffix))
	bool ok = R(device_get_count, "cuDeviceGetCount", "") && R(device_get, "cuDeviceGet", "") &&
		  R(device_get_name, "cuDeviceGetName", "") &&
		  R(primary_ctx_retain, "cuDevicePrimaryCtxRetain", "") &&
		  R(primary_ctx_release, "cuDevicePrimaryCtxRelease", "_v2") &&
		  R(ctx_set_current, "cuCtxSetCurrent", "") && R(mem_alloc, "cuMemAlloc", "_v2") &&
		  R(mem_free, "cuMemFree", "_v2") && R(memset_d8, "cuMemsetD8", "_v2") &&
		  R(memcpy_htod, "cuMemcpyHtoD", "_v2") && R(memcpy_dtoh, "cuMemcpyDtoH", "_v2") &&
		  R(memcpy_htod_async, "cuMemcpyHtoDAsync", "_v2") &&
		  R(mem_host_register, "cuMemHostRegister", "_v2") &&
		  R(mem_host_unregister, "cuMemHostUnregister", "") &&
		  R(stream_create, "cuStreamCreate", "") &&
		  R(stream_synchronize, "cuStreamSynchronize", "") &&
		  R(stream_destroy, "cuStreamDestroy", "_v2") && R(event_create, "cuEventCreate", "") &&
		  R(event_record, "cuEventRecord", "") &&
		  R(event_synchronize, "cuEventSynchronize", "") &&
		  R(event_destroy, "cuEventDestroy", "_v2");
#undef R
	if (!ok) {
		snprintf(err, errlen, "no GPU: libcuda.so.1 (driver %d) lacks an entry point the daemon needs",
			 rb_gpu_cu.driver_version);
		goto fail_lib;
	}
	if ((r = a->device_get_count(&n)) || ordinal < 0 || ordinal >= n) {
		if (r)
			rb_gpu_cu_err(err, errlen, "no GPU: cuDeviceGetCount", r);
		else
			snprintf(err, errlen, "no GPU: device %d asked for, the driver sees %d", ordinal, n);
		goto fail_dev;
	}
	if ((r = a->device_get(&rb_gpu_cu.dev, ordinal)) ||
	    (r = a->primary_ctx_retain(&rb_gpu_cu.ctx, rb_gpu_cu.dev))) {
		rb_gpu_cu_err(err, errlen, "no GPU: cuDeviceGet/cuDevicePrimaryCtxRetain", r);
		goto fail_dev;
	}
	if (a->device_get_name(rb_gpu_cu.name, (int)sizeof(rb_gpu_cu.name) - 1, rb_gpu_cu.dev))
		snprintf(rb_gpu_cu.name, sizeof(rb_gpu_cu.name), "CUDA device %d", ordinal);
	rb_gpu_cu.ready = true;
	if ((r = rb_gpu_cu_enter())) {
		rb_gpu_cu.ready = false;
		a->primary_ctx_release(rb_gpu_cu.dev);
		rb_gpu_cu_err(err, errlen, "no GPU: cuCtxSetCurrent", r);
		goto fail_dev;
	}
	return 0;
fail_dev:
	dlclose(rb_gpu_cu.lib);
	rb_gpu_cu.lib = NULL;
	memset(a, 0, sizeof(*a));
	return -ENODEV;
fail_lib:
	dlclose(rb_gpu_cu.lib);
	rb_gpu_cu.lib = NULL;
	memset(a, 0, sizeof(*a));
	return -ENOENT;
}

/* ---- stagers ------------------------------------------------------------------ */

struct rb_gpu_stager {
	struct rb_gpu_stager *next;
	uint8_t *buf; /* RB_GPU_STAGE_SLOTS * RB_GPU_CHUNK, pinned */
	rb_cu_stream stream;
	rb_cu_event ev[RB_GPU_STAGE_SLOTS];
	bool issued[RB_GPU_STAGE_SLOTS]; /* a copy was recorded since the last wait */
};

static pthread_mutex_t stage_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rb_gpu_stager *stage_free;
static struct rb_gpu_stager *stage_all[RB_GPU_MAX_STAGERS];
static unsigned stage_made;

#define STAGE_BYTES ((size_t)RB_GPU_STAGE_SLOTS * RB_GPU_CHUNK)

static void stager_destroy(struct rb_gpu_stager *s)
{
	struct rb_cu_api *a = &rb_gpu_cu.api;

	for (unsigned i = 0; i < RB_GPU_STAGE_SLOTS; i++)
		if (s->ev[i])
			a->event_destroy(s->ev[i]);
	if (s->stream)
		a->stream_destroy(s->stream);
	if (s->buf) {
		a->mem_host_unregister(s->buf);
		munmap(s->buf, STAGE_BYTES);
	}
	free(s);
}

static struct rb_gpu_stager *stager_make(char *err, size_t errlen)
{
	struct rb_cu_api *a = &rb_gpu_cu.api;
	struct rb_gpu_stager *s = calloc(1, sizeof(*s));
	rb_cu_result r;

	if (!s) {
		snprintf(err, errlen, "out of memory for a stager");
		return NULL;
	}
	void *p = mmap(NULL, STAGE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "cannot map %zu bytes of staging memory", STAGE_BYTES);
		free(s);
		return NULL;
	}
	if ((r = a->mem_host_register(p, STAGE_BYTES, 0))) {
		rb_gpu_cu_err(err, errlen, "cuMemHostRegister", r);
		munmap(p, STAGE_BYTES);
		free(s);
		return NULL;
	}
	s->buf = p;
	if ((r = a->stream_create(&s->stream, RB_CU_STREAM_NON_BLOCKING))) {
		rb_gpu_cu_err(err, errlen, "cuStreamCreate", r);
		s->stream = NULL;
		stager_destroy(s);
		return NULL;
	}
	for (unsigned i = 0; i < RB_GPU_STAGE_SLOTS; i++)
		if ((r = a->event_create(&s->ev[i], RB_CU_EVENT_DISABLE_TIMING))) {
			rb_gpu_cu_err(err, errlen, "cuEventCreate", r);
			s->ev[i] = NULL;
			stager_destroy(s);
			return NULL;
		}
	return s;
}

struct rb_gpu_stager *rb_gpu_stager_get(char *err, size_t errlen)
{
	struct rb_gpu_stager *s = NULL;
	rb_cu_result r = rb_gpu_cu_enter();

	if (r) {
		rb_gpu_cu_err(err, errlen, "no GPU: cuCtxSetCurrent", r);
		return NULL;
	}
	pthread_mutex_lock(&stage_lock);
	if (stage_free) {
		s = stage_free;
		stage_free = s->next;
	} else if (stage_made < RB_GPU_MAX_STAGERS) {
		s = stager_make(err, errlen);
		if (s)
			stage_all[stage_made++] = s;
	} else {
		snprintf(err, errlen, "all %u staging sets are in use by other GPU reads; retry",
			 RB_GPU_MAX_STAGERS);
	}
	pthread_mutex_unlock(&stage_lock);
	return s;
}

void rb_gpu_stager_put(struct rb_gpu_stager *s)
{
	char err[128];

	if (!s)
		return;
	rb_gpu_stager_sync(s, err, sizeof(err));
	pthread_mutex_lock(&stage_lock);
	s->next = stage_free;
	stage_free = s;
	pthread_mutex_unlock(&stage_lock);
}

uint8_t *rb_gpu_stager_slot(struct rb_gpu_stager *s, unsigned i)
{
	if (i >= RB_GPU_STAGE_SLOTS || rb_gpu_cu_enter())
		return NULL;
	if (s->issued[i]) {
		/* By the time a slot comes round again its copy (1 MiB over
		 * PCIe: tens of microseconds) has long finished: this rarely
		 * waits. */
		if (rb_gpu_cu.api.event_synchronize(s->ev[i]))
			return NULL;
		s->issued[i] = false;
	}
	return s->buf + (size_t)i * RB_GPU_CHUNK;
}

int rb_gpu_stager_copy(struct rb_gpu_stager *s, unsigned i, struct rb_gpu_region *r, uint64_t off,
		       size_t len, char *err, size_t errlen)
{
	struct rb_cu_api *a = &rb_gpu_cu.api;
	rb_cu_result cr;

	if (i >= RB_GPU_STAGE_SLOTS || len > RB_GPU_CHUNK || r->kind != RB_GPU_CUDA ||
	    !rb_gpu_range_ok(r->size, off, len)) {
		snprintf(err, errlen, "copy of %zu bytes to offset %llu of a %llu-byte region refused",
			 len, (unsigned long long)off, (unsigned long long)r->size);
		return -ERANGE;
	}
	if ((cr = rb_gpu_cu_enter()) ||
	    (cr = a->memcpy_htod_async(r->dptr + off, s->buf + (size_t)i * RB_GPU_CHUNK, len,
				       s->stream))) {
		rb_gpu_cu_err(err, errlen, "cuMemcpyHtoDAsync", cr);
		return -EIO;
	}
	if ((cr = a->event_record(s->ev[i], s->stream))) {
		rb_gpu_cu_err(err, errlen, "cuEventRecord", cr);
		return -EIO;
	}
	s->issued[i] = true;
	return 0;
}

int rb_gpu_stager_sync(struct rb_gpu_stager *s, char *err, size_t errlen)
{
	rb_cu_result r = rb_gpu_cu_enter();

	if (!r)
		r = rb_gpu_cu.api.stream_synchronize(s->stream);
	memset(s->issued, 0, sizeof(s->issued));
	if (r) {
		rb_gpu_cu_err(err, errlen, "cuStreamSynchronize", r);
		return -EIO;
	}
	return 0;
}

void rb_gpu_cuda_close(void)
{
	if (!rb_gpu_cu.ready)
		return;
	rb_gpu_cu_enter();
	pthread_mutex_lock(&stage_lock);
	for (unsigned i = 0; i < stage_made; i++)
		stager_destroy(stage_all[i]);
	stage_made = 0;
	stage_free = NULL;
	pthread_mutex_unlock(&stage_lock);
	rb_gpu_cu.api.primary_ctx_release(rb_gpu_cu.dev);
	rb_gpu_cu.ready = false;
	/* The library stays mapped: a thread may still hold a context. */
}
