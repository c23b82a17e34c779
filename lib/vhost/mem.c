/* SPDX-License-Identifier: MIT */
/*
 * Guest memory: maps the frontend's memory regions and translates
 * guest-physical and frontend-virtual addresses to host pointers.  A
 * translation succeeds only when the whole [addr, addr + len) range lies in
 * one region; it never returns a pointer the caller could overrun.
 */
#include "vhost_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void rb_vhost_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static inline void *region_ptr(const struct rb_vhost_mem_region *r, uint64_t base,
			       uint64_t addr, uint64_t len)
{
	uint64_t off = addr - base;

	if (addr < base || off >= r->size || len > r->size - off)
		return NULL;
	return r->host + off;
}

void *rb_vhost_gpa_to_host(const struct rb_vhost_mem *mem, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < mem->n; i++) {
		void *p = region_ptr(&mem->r[i], mem->r[i].gpa, gpa, len);
		if (p)
			return p;
	}
	return NULL;
}

void *rb_vhost_uva_to_host(const struct rb_vhost_mem *mem, uint64_t uva, uint64_t len)
{
	for (unsigned i = 0; i < mem->n; i++) {
		void *p = region_ptr(&mem->r[i], mem->r[i].uva, uva, len);
		if (p)
			return p;
	}
	return NULL;
}

int rb_vhost_mem_map(struct rb_vhost_mem *mem,
		     const struct rb_vhost_mem_table_desc *desc, const int *fds,
		     char *err, size_t errlen)
{
	memset(mem, 0, sizeof(*mem));
	for (unsigned i = 0; i < desc->nregions; i++) {
		const struct rb_vhost_mem_region_desc *d = &desc->regions[i];
		struct rb_vhost_mem_region *r = &mem->r[i];
		struct stat st;

		if (fstat(fds[i], &st) < 0) {
			rb_vhost_errf(err, errlen, "region %u: fstat: %s", i, strerror(errno));
			goto fail;
		}
		if (!S_ISREG(st.st_mode)) {
			rb_vhost_errf(err, errlen, "region %u: fd is not a memory file (memfd, hugetlbfs or shm)", i);
			goto fail;
		}
		if ((uint64_t)st.st_size < d->mmap_offset + d->size) {
			rb_vhost_errf(err, errlen,
				      "region %u: file has %lld bytes, the table needs offset %llu + size %llu",
				      i, (long long)st.st_size, (unsigned long long)d->mmap_offset,
				      (unsigned long long)d->size);
			goto fail;
		}
		/* A frontend that shrinks its memory file after we map it would
		 * make our next access to guest memory raise SIGBUS and take
		 * down every VM: memory must be sealed against shrinking (QEMU's
		 * memory-backend-memfd seals it by default; we add the seal
		 * when the memfd allows it).  Memory that cannot be sealed (a
		 * memfd without MFD_ALLOW_SEALING, /dev/shm and hugetlbfs files,
		 * files elsewhere) is refused unless the operator accepted it
		 * (--allow-unsealed-memory: a fault is then confined to the VM,
		 * sigbus.c). */
		int seals = fcntl(fds[i], F_GET_SEALS);
		bool sealed = seals >= 0 && ((seals & F_SEAL_SHRINK) ||
					     fcntl(fds[i], F_ADD_SEALS, F_SEAL_SHRINK) == 0);
		if (!sealed) {
			if (!rb_vhost_unsealed_allowed()) {
				rb_vhost_errf(err, errlen,
					      "region %u: guest memory can shrink under the daemon and cannot be sealed against it; refused (use QEMU's memory-backend-memfd, or start rosenbridged with --allow-unsealed-memory for hugetlbfs or /dev/shm backends)",
					      i);
				goto fail;
			}
			mem->unsealed = true;
		}
		/* Map from an offset aligned to the file's page size (hugetlbfs
		 * reports its huge page size in st_blksize). */
		uint64_t align = (uint64_t)sysconf(_SC_PAGESIZE);
		if ((uint64_t)st.st_blksize > align && !(st.st_blksize & (st.st_blksize - 1)))
			align = (uint64_t)st.st_blksize;
		uint64_t start = d->mmap_offset & ~(align - 1);
		size_t len = (size_t)(d->mmap_offset - start + d->size);
		void *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fds[i], (off_t)start);
		if (base == MAP_FAILED) {
			rb_vhost_errf(err, errlen, "region %u: mmap of %zu bytes: %s", i, len,
				      strerror(errno));
			goto fail;
		}
		r->gpa = d->gpa;
		r->size = d->size;
		r->uva = d->uva;
		r->mmap_base = base;
		r->mmap_len = len;
		r->host = (uint8_t *)base + (d->mmap_offset - start);
		mem->n = i + 1;
	}
	return 0;
fail:
	rb_vhost_mem_unmap(mem);
	return -EINVAL;
}

void rb_vhost_mem_unmap(struct rb_vhost_mem *mem)
{
	for (unsigned i = 0; i < mem->n; i++)
		munmap(mem->r[i].mmap_base, mem->r[i].mmap_len);
	memset(mem, 0, sizeof(*mem));
}
