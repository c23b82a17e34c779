/* SPDX-License-Identifier: MIT */
/*
 * Helper registry and the services helpers get from a running program:
 * memory checks, stop and fail.  A helper must never dereference a program
 * pointer it has not checked with rb_bpf_call_mem_ok().
 */
#include "bpf_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool rb_bpf_mem_ok(const struct rb_bpf_call *call, uint64_t addr,
		   uint64_t len, bool write)
{
	if (addr >= call->stack_lo && addr <= call->stack_hi &&
	    len <= call->stack_hi - addr)
		return true;
	for (unsigned i = 0; i < call->n_spans; i++) {
		const struct rb_bpf_span *s = &call->spans[i];
		uint64_t o = addr - s->lo;

		if (write && !s->writable)
			continue;
		if (addr >= s->lo && o <= s->span && len <= s->span - o)
			return true;
	}
	return false;
}

struct rb_bpf_helpers *rb_bpf_helpers_new(void)
{
	return calloc(1, sizeof(struct rb_bpf_helpers));
}

void rb_bpf_helpers_free(struct rb_bpf_helpers *h)
{
	free(h);
}

int rb_bpf_helpers_register(struct rb_bpf_helpers *h, uint32_t id,
			    const char *name, rb_bpf_helper_fn fn)
{
	if (!h || id >= RB_BPF_MAX_HELPERS || !fn || !name || !name[0])
		return -EINVAL;
	if (h->slot[id].fn)
		return -EEXIST;
	snprintf(h->slot[id].name, sizeof(h->slot[id].name), "%s", name);
	h->slot[id].fn = fn;
	return 0;
}

const char *rb_bpf_helpers_name(const struct rb_bpf_helpers *h, uint32_t id)
{
	if (!h || id >= RB_BPF_MAX_HELPERS || !h->slot[id].fn)
		return NULL;
	return h->slot[id].name;
}

void *rb_bpf_call_user(const struct rb_bpf_call *call)
{
	return call->user;
}

bool rb_bpf_call_mem_ok(const struct rb_bpf_call *call, uint64_t addr,
			uint64_t len, bool write)
{
	return rb_bpf_mem_ok(call, addr, len, write);
}

void rb_bpf_call_stop(struct rb_bpf_call *call, uint64_t value)
{
	call->stop = true;
	call->stop_value = value;
}

void rb_bpf_call_fail(struct rb_bpf_call *call, const char *fmt, ...)
{
	va_list ap;

	if (call->failed)
		return; /* keep the first reason */
	call->failed = true;
	va_start(ap, fmt);
	vsnprintf(call->msg, sizeof(call->msg), fmt, ap);
	va_end(ap);
}

void rb_bpf_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}
