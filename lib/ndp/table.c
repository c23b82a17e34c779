/* SPDX-License-Identifier: MIT */
/*
 * A VM's program table: LOAD (parse the ELF, validate, keep), UNLOAD, and
 * reference-counted lookups for requests; the VM's registered memory and
 * registered files (extent maps, reference-counted like programs).  Programs belong to the disk, so
 * they outlive frontend reconnects; handles carry a generation so a stale
 * handle never reaches a newer program in the same slot, and the daemon's
 * epoch (epoch.c) so one from before a restart is told apart.
 */
#include "ndp_internal.h"

#include <rosen/log.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

struct rb_ndp_table {
	pthread_mutex_t lock;
	char name[64];
	/* What a guest's LOADs, UNLOADs and registrations log, per VM: 2,000
	 * rejected LOADs must not write 4,000 lines. */
	struct rb_log_limit log_limit;
	uint32_t generation;
	struct rb_ndp_prog *slot[RB_NDP_MAX_PROGRAMS];
	struct rb_bpf_helpers *helpers;
	struct {
		uint32_t key; /* 0: free */
		uint64_t gpa, len;
	} reg[RB_NDP_MAX_REGIONS];
	uint32_t next_key;
	/* Registered files: keys are (generation << FILE_SLOT_BITS) | slot,
	 * so a stale key does not name a newer file in its slot. */
	struct rb_ndp_file *file[RB_NDP_MAX_FILES];
	uint32_t file_generation;
	/* LOADs the verifier refused (not malformed objects): metrics. */
	_Atomic uint64_t verifier_rejections;
	struct rb_ndp_gpu_set *gpu; /* GPU regions (gpu.c): their own lock */
};

/* Handles and file keys: epoch (12 bits) | generation (16) | slot (4). */
#define SLOT_BITS 4u /* RB_NDP_MAX_PROGRAMS == 16 */
#define FILE_SLOT_BITS 4u
#define GEN_MASK 0xffffu
_Static_assert(RB_NDP_MAX_FILES == 1u << FILE_SLOT_BITS, "file keys name a slot in their low bits");
_Static_assert(RB_NDP_MAX_PROGRAMS == 1u << SLOT_BITS, "handles name a slot in their low bits");
_Static_assert(16 + SLOT_BITS == RB_NDP_ID_EPOCH_SHIFT, "the epoch sits above generation and slot");

/* Where a new table's generations start: anywhere, so that a daemon that
 * happens to share an earlier one's epoch does not hand out its handles. */
static uint32_t random_start(void)
{
	uint32_t v;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		v = (uint32_t)ts.tv_nsec ^ (uint32_t)(uintptr_t)&v;
	}
	return v;
}

/* A log line a guest's request triggers: rate-limited per VM. */
#define VM_LOG_BURST 50u /* a guest loading its 16 programs at start logs them all */
#define vm_log(t, level, ...)                                                   \
	do {                                                                    \
		if (rb_log_limit(&(t)->log_limit, VM_LOG_BURST, (t)->name))     \
			rb_log(level, (t)->name, __VA_ARGS__);                  \
	} while (0)

struct rb_ndp_table *rb_ndp_table_new(const char *vm_name)
{
	struct rb_ndp_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->helpers = rb_bpf_helpers_new();
	t->gpu = rb_ndp_gpu_set_new();
	if (!t->helpers || !t->gpu || rb_ndp_register_helpers(t->helpers)) {
		rb_ndp_gpu_set_free(t->gpu);
		rb_bpf_helpers_free(t->helpers);
		free(t);
		return NULL;
	}
	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->log_limit.lock, NULL);
	snprintf(t->name, sizeof(t->name), "%s", vm_name ? vm_name : "vm");
	t->generation = random_start();
	t->file_generation = random_start();
	t->next_key = random_start();
	return t;
}

void rb_ndp_table_free(struct rb_ndp_table *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < RB_NDP_MAX_PROGRAMS; i++)
		if (t->slot[i])
			rb_ndp_release(t->slot[i]);
	for (unsigned i = 0; i < RB_NDP_MAX_FILES; i++)
		rb_ndp_file_release(t->file[i]);
	rb_ndp_gpu_set_free(t->gpu); /* regions in use live until their reads end */
	rb_bpf_helpers_free(t->helpers);
	pthread_mutex_destroy(&t->lock);
	pthread_mutex_destroy(&t->log_limit.lock);
	free(t);
}

uint32_t rb_ndp_load(struct rb_ndp_table *t, uint32_t type, const void *elf, size_t len,
		     const char *section, uint32_t *handle, char *log, size_t loglen)
{
	struct rb_ndp_prog *p;
	struct rb_bpf_prog *bpf;
	unsigned free_slot = RB_NDP_MAX_PROGRAMS;

	if (type != RB_NDP_PROG_SQ && type != RB_NDP_PROG_CQ && type != RB_NDP_PROG_XRP) {
		snprintf(log, loglen, "unknown program type %u (sq=1, cq=2, xrp=3)", type);
		return RB_NDP_S_BAD_REQUEST;
	}
	if (len > RB_NDP_MAX_ELF_BYTES) {
		snprintf(log, loglen, "object of %zu bytes exceeds the %u-byte limit", len,
			 RB_NDP_MAX_ELF_BYTES);
		return RB_NDP_S_LIMIT;
	}
	pthread_mutex_lock(&t->lock);
	for (unsigned i = 0; i < RB_NDP_MAX_PROGRAMS; i++)
		if (!t->slot[i]) {
			free_slot = i;
			break;
		}
	pthread_mutex_unlock(&t->lock);
	if (free_slot == RB_NDP_MAX_PROGRAMS) {
		snprintf(log, loglen, "this VM already has %u programs loaded", RB_NDP_MAX_PROGRAMS);
		return RB_NDP_S_LIMIT;
	}
	/* Parse and validate outside the lock: it is the slow part. */
	if (rb_bpf_prog_load_elf(elf, len, section, t->helpers, &bpf, log, loglen)) {
		vm_log(t, RB_LOG_WARN, "LOAD of section '%s' (%s) rejected: %s", section, rb_ndp_prog_type_name(type), log);
		return RB_NDP_S_REJECTED;
	}
	/* Hostile until proven otherwise: the verifier proves every access
	 * in bounds for this type, so the compiled code needs no per-access
	 * checks.  A rejection goes back to the guest with the log. */
	struct rb_bpf_verify_stats vs = {0};
	struct rb_bpf_verify_opts vo = {
		.max_insns = RB_NDP_VERIFY_MAX_INSNS,
		.max_work = RB_NDP_VERIFY_MAX_WORK,
		.max_mem = RB_NDP_VERIFY_MAX_MEM,
		.max_cpu_ns = RB_NDP_VERIFY_MAX_CPU_NS,
	};
	int vrc = rb_bpf_verify_ex(bpf, rb_ndp_bpf_type(type), &vo, &vs, log, loglen);
	rb_debug(t->name,
		 "LOAD of section '%s': verifier %s after %llu instructions walked, %llu work units, %.1f MiB of state at peak, %.1f ms",
		 section, vrc ? "rejected it" : "accepted it", (unsigned long long)vs.insns_processed,
		 (unsigned long long)vs.work, vs.peak_mem / 1048576.0, vs.elapsed_ns / 1e6);
	if (vrc) {
		atomic_fetch_add_explicit(&t->verifier_rejections, 1, memory_order_relaxed);
		vm_log(t, RB_LOG_WARN, "LOAD of section '%s' (%s) rejected by the verifier: %s", section,
			rb_ndp_prog_type_name(type), log);
		rb_bpf_prog_free(bpf);
		return RB_NDP_S_REJECTED;
	}
	char jerr[256];
	if (rb_bpf_jit(bpf, RB_BPF_JIT_UNCHECKED, jerr, sizeof(jerr)))
		vm_log(t, RB_LOG_WARN, "LOAD of section '%s': not compiled (%s); it will be interpreted", section,
			jerr);
	p = calloc(1, sizeof(*p));
	if (!p) {
		rb_bpf_prog_free(bpf);
		snprintf(log, loglen, "out of memory");
		return RB_NDP_S_LIMIT;
	}
	atomic_init(&p->refs, 1);
	p->type = type;
	p->bpf = bpf;
	snprintf(p->section, sizeof(p->section), "%s", section);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	p->loaded_unix_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	pthread_mutex_lock(&t->lock);
	/* Another LOAD may have taken the slot meanwhile: look again. */
	free_slot = RB_NDP_MAX_PROGRAMS;
	for (unsigned i = 0; i < RB_NDP_MAX_PROGRAMS; i++)
		if (!t->slot[i]) {
			free_slot = i;
			break;
		}
	if (free_slot < RB_NDP_MAX_PROGRAMS) {
		t->generation++;
		p->handle = rb_ndp_id(((t->generation & GEN_MASK) << SLOT_BITS) | free_slot);
		t->slot[free_slot] = p;
	}
	pthread_mutex_unlock(&t->lock);
	if (free_slot == RB_NDP_MAX_PROGRAMS) {
		rb_ndp_release(p);
		snprintf(log, loglen, "this VM already has %u programs loaded", RB_NDP_MAX_PROGRAMS);
		return RB_NDP_S_LIMIT;
	}
	*handle = p->handle;
	snprintf(log, loglen,
		 "loaded section '%s' as a %s program: %zu instructions, verified in %.1f ms (%llu instructions walked), %s",
		 section, rb_ndp_prog_type_name(type), rb_bpf_prog_len(bpf), vs.elapsed_ns / 1e6,
		 (unsigned long long)vs.insns_processed,
		 rb_bpf_prog_is_jitted(bpf) ? "compiled to x86-64" : "interpreted");
	vm_log(t, RB_LOG_INFO, "program %u: %s", p->handle, log);
	return RB_NDP_S_OK;
}

struct rb_ndp_gpu_set *rb_ndp_table_gpu(struct rb_ndp_table *t)
{
	return t->gpu;
}

uint64_t rb_ndp_table_verifier_rejections(struct rb_ndp_table *t)
{
	return atomic_load_explicit(&t->verifier_rejections, memory_order_relaxed);
}

static struct rb_ndp_prog **find(struct rb_ndp_table *t, uint32_t handle)
{
	struct rb_ndp_prog **s = &t->slot[handle & ((1u << SLOT_BITS) - 1)];

	return *s && (*s)->handle == handle ? s : NULL;
}

uint32_t rb_ndp_unload(struct rb_ndp_table *t, uint32_t handle)
{
	struct rb_ndp_prog *p = NULL;

	pthread_mutex_lock(&t->lock);
	struct rb_ndp_prog **s = find(t, handle);
	if (s) {
		p = *s;
		*s = NULL;
	}
	pthread_mutex_unlock(&t->lock);
	if (!p)
		return rb_ndp_missing(handle, RB_NDP_S_NO_PROGRAM);
	vm_log(t, RB_LOG_INFO, "program %u unloaded", handle);
	rb_ndp_release(p);
	return RB_NDP_S_OK;
}

struct rb_ndp_prog *rb_ndp_acquire(struct rb_ndp_table *t, uint32_t handle)
{
	struct rb_ndp_prog *p = NULL;

	pthread_mutex_lock(&t->lock);
	struct rb_ndp_prog **s = find(t, handle);
	if (s) {
		p = *s;
		atomic_fetch_add(&p->refs, 1);
	}
	pthread_mutex_unlock(&t->lock);
	return p;
}

void rb_ndp_release(struct rb_ndp_prog *p)
{
	if (p && atomic_fetch_sub(&p->refs, 1) == 1) {
		rb_bpf_prog_free(p->bpf);
		free(p);
	}
}

uint32_t rb_ndp_prog_type(const struct rb_ndp_prog *p)
{
	return p->type;
}

void rb_ndp_prog_account(struct rb_ndp_prog *p, uint32_t runs, uint32_t hops, uint64_t insns)
{
	atomic_fetch_add_explicit(&p->requests, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&p->runs, runs, memory_order_relaxed);
	atomic_fetch_add_explicit(&p->hops, hops, memory_order_relaxed);
	atomic_fetch_add_explicit(&p->executed, insns, memory_order_relaxed);
}

unsigned rb_ndp_table_list(struct rb_ndp_table *t, struct rb_ndp_prog_info *out, unsigned max)
{
	unsigned n = 0;

	pthread_mutex_lock(&t->lock);
	for (unsigned i = 0; i < RB_NDP_MAX_PROGRAMS && n < max; i++) {
		const struct rb_ndp_prog *p = t->slot[i];
		if (!p)
			continue;
		struct rb_ndp_prog_info *o = &out[n++];
		memset(o, 0, sizeof(*o));
		o->handle = p->handle;
		o->type = p->type;
		snprintf(o->section, sizeof(o->section), "%s", p->section);
		o->insns = rb_bpf_prog_len(p->bpf);
		o->jitted = rb_bpf_prog_is_jitted(p->bpf);
		o->loaded_unix_ns = p->loaded_unix_ns;
		o->requests = atomic_load_explicit(&p->requests, memory_order_relaxed);
		o->runs = atomic_load_explicit(&p->runs, memory_order_relaxed);
		o->hops = atomic_load_explicit(&p->hops, memory_order_relaxed);
		o->executed = atomic_load_explicit(&p->executed, memory_order_relaxed);
	}
	pthread_mutex_unlock(&t->lock);
	return n;
}

unsigned rb_ndp_table_count(struct rb_ndp_table *t)
{
	unsigned n = 0;

	pthread_mutex_lock(&t->lock);
	for (unsigned i = 0; i < RB_NDP_MAX_PROGRAMS; i++)
		n += t->slot[i] != NULL;
	pthread_mutex_unlock(&t->lock);
	return n;
}

uint32_t rb_ndp_reg_mem(struct rb_ndp_table *t, uint64_t gpa, uint64_t len, uint32_t *key)
{
	uint32_t st = RB_NDP_S_LIMIT;

	pthread_mutex_lock(&t->lock);
	for (unsigned i = 0; i < RB_NDP_MAX_REGIONS; i++) {
		if (t->reg[i].key)
			continue;
		uint32_t k;
		bool taken;
		do { /* never the key of a registration still there */
			k = rb_ndp_id(++t->next_key);
			taken = false;
			for (unsigned j = 0; j < RB_NDP_MAX_REGIONS; j++)
				taken |= t->reg[j].key == k;
		} while (taken);
		t->reg[i].key = k;
		t->reg[i].gpa = gpa;
		t->reg[i].len = len;
		*key = k;
		st = RB_NDP_S_OK;
		break;
	}
	pthread_mutex_unlock(&t->lock);
	if (st == RB_NDP_S_OK)
		vm_log(t, RB_LOG_INFO, "guest memory 0x%llx+%llu registered as key %u",
			(unsigned long long)gpa, (unsigned long long)len, *key);
	return st;
}

uint32_t rb_ndp_unreg_mem(struct rb_ndp_table *t, uint32_t key)
{
	uint32_t st = rb_ndp_missing(key, RB_NDP_S_NO_MEMORY);

	pthread_mutex_lock(&t->lock);
	for (unsigned i = 0; key && i < RB_NDP_MAX_REGIONS; i++)
		if (t->reg[i].key == key) {
			t->reg[i].key = 0;
			st = RB_NDP_S_OK;
		}
	pthread_mutex_unlock(&t->lock);
	return st;
}

unsigned rb_ndp_regions(struct rb_ndp_table *t, uint32_t *keys, uint64_t *gpa, uint64_t *len)
{
	unsigned n = 0;

	pthread_mutex_lock(&t->lock);
	for (unsigned i = 0; i < RB_NDP_MAX_REGIONS; i++)
		if (t->reg[i].key) {
			keys[n] = t->reg[i].key;
			gpa[n] = t->reg[i].gpa;
			len[n] = t->reg[i].len;
			n++;
		}
	pthread_mutex_unlock(&t->lock);
	return n;
}

/* ---- registered files ------------------------------------------------------- */

uint32_t rb_ndp_reg_file(struct rb_ndp_table *t, const struct rb_ndp_reg_file *rf,
			 const struct rb_ndp_extent *ext, uint32_t *key)
{
	struct rb_ndp_file *f = malloc(sizeof(*f) + (size_t)rf->n_extents * sizeof(f->ext[0]));
	unsigned slot = RB_NDP_MAX_FILES;

	if (!f)
		return RB_NDP_S_LIMIT;
	atomic_init(&f->refs, 1);
	f->n = rf->n_extents;
	f->size = rf->file_size;
	memcpy(f->ext, ext, (size_t)rf->n_extents * sizeof(f->ext[0]));
	pthread_mutex_lock(&t->lock);
	for (unsigned i = 0; i < RB_NDP_MAX_FILES; i++)
		if (!t->file[i]) {
			slot = i;
			break;
		}
	if (slot < RB_NDP_MAX_FILES) {
		/* Never 0 ("no file" on the wire): the epoch is not 0. */
		t->file_generation++;
		f->key = rb_ndp_id(((t->file_generation & GEN_MASK) << FILE_SLOT_BITS) | slot);
		t->file[slot] = f;
		*key = f->key;
	}
	pthread_mutex_unlock(&t->lock);
	if (slot == RB_NDP_MAX_FILES) {
		free(f);
		return RB_NDP_S_LIMIT;
	}
	/* Not f: another queue may unregister it as soon as the lock is free. */
	vm_log(t, RB_LOG_INFO, "file of %llu bytes in %u extents registered as key %u",
		(unsigned long long)rf->file_size, rf->n_extents, *key);
	return RB_NDP_S_OK;
}

static struct rb_ndp_file **find_file(struct rb_ndp_table *t, uint32_t key)
{
	struct rb_ndp_file **s = &t->file[key & (RB_NDP_MAX_FILES - 1)];

	return key && *s && (*s)->key == key ? s : NULL;
}

uint32_t rb_ndp_unreg_file(struct rb_ndp_table *t, uint32_t key)
{
	struct rb_ndp_file *f = NULL;

	pthread_mutex_lock(&t->lock);
	struct rb_ndp_file **s = find_file(t, key);
	if (s) {
		f = *s;
		*s = NULL;
	}
	pthread_mutex_unlock(&t->lock);
	if (!f)
		return rb_ndp_missing(key, RB_NDP_S_NO_PROGRAM);
	vm_log(t, RB_LOG_INFO, "file %u unregistered", key);
	rb_ndp_file_release(f);
	return RB_NDP_S_OK;
}

struct rb_ndp_file *rb_ndp_file_acquire(struct rb_ndp_table *t, uint32_t key)
{
	struct rb_ndp_file *f = NULL;

	pthread_mutex_lock(&t->lock);
	struct rb_ndp_file **s = find_file(t, key);
	if (s) {
		f = *s;
		atomic_fetch_add(&f->refs, 1);
	}
	pthread_mutex_unlock(&t->lock);
	return f;
}

void rb_ndp_file_release(struct rb_ndp_file *f)
{
	if (f && atomic_fetch_sub(&f->refs, 1) == 1)
		free(f);
}

unsigned rb_ndp_file_count(struct rb_ndp_table *t)
{
	unsigned n = 0;

	pthread_mutex_lock(&t->lock);
	for (unsigned i = 0; i < RB_NDP_MAX_FILES; i++)
		n += t->file[i] != NULL;
	pthread_mutex_unlock(&t->lock);
	return n;
}
