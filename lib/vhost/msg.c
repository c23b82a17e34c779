/* SPDX-License-Identifier: MIT */
/*
 * Pure validators of vhost-user messages: each takes the raw payload the
 * frontend sent, checks every field and returns a clean copy.  They have no
 * side effects (no fds closed, nothing mapped), so they can be unit-tested
 * and fuzzed alone.  Nothing that fails here ever reaches the handlers.
 */
#include "vhost_internal.h"

#include <rosen/virtio.h>

#include <errno.h>
#include <string.h>

int rb_vhost_check_hdr(const struct rb_vhost_msg_hdr *hdr, char *err, size_t errlen)
{
	if ((hdr->flags & 0x3) != RB_VHOST_USER_VERSION) {
		rb_vhost_errf(err, errlen, "request %u: protocol version %u, expected 1",
			      hdr->request, hdr->flags & 0x3);
		return -EPROTO;
	}
	if (hdr->flags & RB_VHOST_USER_FLAG_REPLY) {
		rb_vhost_errf(err, errlen, "request %u: a frontend message must not carry the reply flag",
			      hdr->request);
		return -EPROTO;
	}
	if (hdr->size > RB_VHOST_USER_MAX_PAYLOAD) {
		rb_vhost_errf(err, errlen, "request %u: payload of %u bytes exceeds %u",
			      hdr->request, hdr->size, RB_VHOST_USER_MAX_PAYLOAD);
		return -EMSGSIZE;
	}
	return 0;
}

static bool add_overflows(uint64_t a, uint64_t b)
{
	return a + b < a;
}

int rb_vhost_check_mem_table(const void *payload, uint32_t size, unsigned nfds,
			     struct rb_vhost_mem_table_desc *out, char *err,
			     size_t errlen)
{
	uint32_t n;

	if (size < 8) {
		rb_vhost_errf(err, errlen, "SET_MEM_TABLE: payload of %u bytes is truncated", size);
		return -EINVAL;
	}
	memcpy(&n, payload, sizeof(n));
	if (n == 0 || n > RB_VHOST_MAX_MEM_REGIONS) {
		rb_vhost_errf(err, errlen, "SET_MEM_TABLE: %u regions (must be 1..%u)", n,
			      RB_VHOST_MAX_MEM_REGIONS);
		return -EINVAL;
	}
	if (size < 8 + n * sizeof(struct rb_vhost_mem_region_desc)) {
		rb_vhost_errf(err, errlen, "SET_MEM_TABLE: payload of %u bytes is too short for %u regions",
			      size, n);
		return -EINVAL;
	}
	if (nfds != n) {
		rb_vhost_errf(err, errlen, "SET_MEM_TABLE: %u regions but %u file descriptors", n, nfds);
		return -EINVAL;
	}
	memset(out, 0, sizeof(*out));
	memcpy(out, payload, 8 + n * sizeof(struct rb_vhost_mem_region_desc));
	out->nregions = n;
	for (unsigned i = 0; i < n; i++) {
		const struct rb_vhost_mem_region_desc *r = &out->regions[i];

		if (r->size == 0) {
			rb_vhost_errf(err, errlen, "SET_MEM_TABLE: region %u has size 0", i);
			return -EINVAL;
		}
		if (add_overflows(r->gpa, r->size) || add_overflows(r->uva, r->size) ||
		    add_overflows(r->mmap_offset, r->size)) {
			rb_vhost_errf(err, errlen,
				      "SET_MEM_TABLE: region %u (gpa 0x%llx uva 0x%llx offset 0x%llx size 0x%llx) overflows",
				      i, (unsigned long long)r->gpa, (unsigned long long)r->uva,
				      (unsigned long long)r->mmap_offset,
				      (unsigned long long)r->size);
			return -EINVAL;
		}
		for (unsigned j = 0; j < i; j++) {
			const struct rb_vhost_mem_region_desc *o = &out->regions[j];
			if (r->gpa < o->gpa + o->size && o->gpa < r->gpa + r->size) {
				rb_vhost_errf(err, errlen,
					      "SET_MEM_TABLE: regions %u and %u overlap in guest-physical space",
					      j, i);
				return -EINVAL;
			}
		}
	}
	return 0;
}

static const char *state_req_name(uint32_t request)
{
	switch (request) {
	case RB_VHOST_USER_SET_VRING_NUM: return "SET_VRING_NUM";
	case RB_VHOST_USER_SET_VRING_BASE: return "SET_VRING_BASE";
	case RB_VHOST_USER_GET_VRING_BASE: return "GET_VRING_BASE";
	case RB_VHOST_USER_SET_VRING_ENABLE: return "SET_VRING_ENABLE";
	}
	return "vring state";
}

int rb_vhost_check_vring_state(uint32_t request, const void *payload,
			       uint32_t size, unsigned nqueues,
			       struct rb_vhost_vring_state *out, char *err,
			       size_t errlen)
{
	const char *name = state_req_name(request);

	if (size != sizeof(*out)) {
		rb_vhost_errf(err, errlen, "%s: payload of %u bytes, expected %zu", name,
			      size, sizeof(*out));
		return -EINVAL;
	}
	memcpy(out, payload, sizeof(*out));
	if (out->index >= nqueues) {
		rb_vhost_errf(err, errlen, "%s: ring %u does not exist (%u rings)", name,
			      out->index, nqueues);
		return -EINVAL;
	}
	switch (request) {
	case RB_VHOST_USER_SET_VRING_NUM:
		if (out->num == 0 || out->num > RB_VHOST_USER_MAX_RING ||
		    (out->num & (out->num - 1))) {
			rb_vhost_errf(err, errlen,
				      "SET_VRING_NUM: ring %u size %u is not a power of two in 1..%u",
				      out->index, out->num, RB_VHOST_USER_MAX_RING);
			return -EINVAL;
		}
		break;
	case RB_VHOST_USER_SET_VRING_BASE:
		if (out->num > 0xffff) {
			rb_vhost_errf(err, errlen, "SET_VRING_BASE: ring %u base %u exceeds 16 bits",
				      out->index, out->num);
			return -EINVAL;
		}
		break;
	case RB_VHOST_USER_SET_VRING_ENABLE:
		if (out->num > 1) {
			rb_vhost_errf(err, errlen, "SET_VRING_ENABLE: ring %u value %u is not 0 or 1",
				      out->index, out->num);
			return -EINVAL;
		}
		break;
	}
	return 0;
}

int rb_vhost_check_vring_addr(const void *payload, uint32_t size,
			      unsigned nqueues, struct rb_vhost_vring_addr *out,
			      char *err, size_t errlen)
{
	if (size != sizeof(*out)) {
		rb_vhost_errf(err, errlen, "SET_VRING_ADDR: payload of %u bytes, expected %zu",
			      size, sizeof(*out));
		return -EINVAL;
	}
	memcpy(out, payload, sizeof(*out));
	if (out->index >= nqueues) {
		rb_vhost_errf(err, errlen, "SET_VRING_ADDR: ring %u does not exist (%u rings)",
			      out->index, nqueues);
		return -EINVAL;
	}
	return 0;
}

int rb_vhost_check_vring_fd(const void *payload, uint32_t size, unsigned nfds,
			    unsigned nqueues, unsigned *index, bool *has_fd,
			    char *err, size_t errlen)
{
	uint64_t v;

	if (size != sizeof(v)) {
		rb_vhost_errf(err, errlen, "vring fd message: payload of %u bytes, expected 8", size);
		return -EINVAL;
	}
	memcpy(&v, payload, sizeof(v));
	/* Bits 0-7 are the index, bit 8 "no fd"; anything else is garbage and
	 * must not be silently truncated away (CVE-2020-10723's lesson). */
	if (v & ~(uint64_t)(RB_VHOST_USER_VRING_IDX_MASK | RB_VHOST_USER_VRING_NOFD)) {
		rb_vhost_errf(err, errlen, "vring fd message: reserved bits set in 0x%llx",
			      (unsigned long long)v);
		return -EINVAL;
	}
	*index = (unsigned)(v & RB_VHOST_USER_VRING_IDX_MASK);
	*has_fd = !(v & RB_VHOST_USER_VRING_NOFD);
	if (*index >= nqueues) {
		rb_vhost_errf(err, errlen, "vring fd message: ring %u does not exist (%u rings)",
			      *index, nqueues);
		return -EINVAL;
	}
	if (nfds != (*has_fd ? 1u : 0u)) {
		rb_vhost_errf(err, errlen, "vring fd message for ring %u: %u fds, expected %u",
			      *index, nfds, *has_fd ? 1u : 0u);
		return -EINVAL;
	}
	return 0;
}

int rb_vhost_check_config(const void *payload, uint32_t size,
			  struct rb_vhost_config_hdr *out, char *err,
			  size_t errlen)
{
	if (size < sizeof(*out)) {
		rb_vhost_errf(err, errlen, "CONFIG: payload of %u bytes is truncated", size);
		return -EINVAL;
	}
	memcpy(out, payload, sizeof(*out));
	if (out->size > RB_VHOST_CONFIG_SPACE_MAX ||
	    out->offset > RB_VHOST_CONFIG_SPACE_MAX - out->size) {
		rb_vhost_errf(err, errlen, "CONFIG: offset %u + size %u is outside the %u-byte config space",
			      out->offset, out->size, RB_VHOST_CONFIG_SPACE_MAX);
		return -EINVAL;
	}
	if (size - sizeof(*out) < out->size) {
		rb_vhost_errf(err, errlen, "CONFIG: %u data bytes announced, %zu sent", out->size,
			      size - sizeof(*out));
		return -EINVAL;
	}
	return 0;
}

int rb_vhost_check_inflight(uint32_t request, const void *payload, uint32_t size,
			    unsigned nfds, unsigned nqueues,
			    struct rb_vhost_inflight_desc *out, char *err, size_t errlen)
{
	const char *name = request == RB_VHOST_USER_GET_INFLIGHT_FD ? "GET_INFLIGHT_FD"
								      : "SET_INFLIGHT_FD";
	bool set = request == RB_VHOST_USER_SET_INFLIGHT_FD;

	if (size != sizeof(*out)) {
		rb_vhost_errf(err, errlen, "%s: payload of %u bytes, expected %zu", name, size,
			      sizeof(*out));
		return -EINVAL;
	}
	memcpy(out, payload, sizeof(*out));
	if (nfds != (set ? 1u : 0u)) {
		rb_vhost_errf(err, errlen, "%s: %u file descriptors, expected %u", name, nfds,
			      set ? 1u : 0u);
		return -EINVAL;
	}
	if (out->num_queues == 0 || out->num_queues > nqueues) {
		rb_vhost_errf(err, errlen, "%s: %u queues (the device has %u)", name,
			      out->num_queues, nqueues);
		return -EINVAL;
	}
	if (out->queue_size == 0 || out->queue_size > RB_VHOST_USER_MAX_RING ||
	    (out->queue_size & (out->queue_size - 1))) {
		rb_vhost_errf(err, errlen, "%s: queue size %u is not a power of two in 1..%u", name,
			      out->queue_size, RB_VHOST_USER_MAX_RING);
		return -EINVAL;
	}
	if (!set)
		return 0;
	/* At most 16 queues of 32768 entries: no overflow in 64 bits. */
	uint64_t need = (uint64_t)out->num_queues * rb_vring_inflight_bytes(out->queue_size);
	if (out->mmap_size < need || out->mmap_size - need > RB_VHOST_INFLIGHT_SLACK) {
		rb_vhost_errf(err, errlen,
			      "SET_INFLIGHT_FD: %llu bytes for %u queues of %u entries (they take %llu)",
			      (unsigned long long)out->mmap_size, out->num_queues, out->queue_size,
			      (unsigned long long)need);
		return -EINVAL;
	}
	if (add_overflows(out->mmap_offset, out->mmap_size) || out->mmap_offset > INT64_MAX) {
		rb_vhost_errf(err, errlen, "SET_INFLIGHT_FD: offset 0x%llx + size 0x%llx overflows",
			      (unsigned long long)out->mmap_offset,
			      (unsigned long long)out->mmap_size);
		return -EINVAL;
	}
	return 0;
}

int rb_vhost_check_backend_req_fd(uint32_t size, unsigned nfds, bool negotiated, char *err,
				  size_t errlen)
{
	if (!negotiated) {
		rb_vhost_errf(err, errlen,
			      "SET_BACKEND_REQ_FD without the BACKEND_REQ protocol feature negotiated");
		return -EINVAL;
	}
	if (size != 0 && size != sizeof(uint64_t)) {
		rb_vhost_errf(err, errlen, "SET_BACKEND_REQ_FD: payload of %u bytes, expected 0 or 8",
			      size);
		return -EINVAL;
	}
	if (nfds != 1) {
		rb_vhost_errf(err, errlen, "SET_BACKEND_REQ_FD: %u fds, expected 1", nfds);
		return -EINVAL;
	}
	return 0;
}
