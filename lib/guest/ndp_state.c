/* SPDX-License-Identifier: MIT */
/*
 * What librosen loaded and registered on a device (program objects, memory
 * ranges, file maps), so that when the device restarts and answers
 * STATE_LOST it can do all of it again and retry, the application none the
 * wiser.  The application keeps the handles and keys it was first given;
 * requests carry the device's current ones.  Never trusts what the device
 * answers beyond "it worked, here is the new id".
 */
#include "guest_internal.h"

#include <rosen/virtio_ndp.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rec {
	uint32_t user;     /* what the application holds */
	uint32_t dev;      /* what the device knows now (0: not restored) */
	/* programs */
	uint32_t type;
	char section[RB_NDP_SECTION_MAX];
	void *elf;         /* our copy; also the file map of a file */
	size_t len;        /* ELF bytes, memory bytes, or extents of a file */
	/* memory */
	uint64_t gpa;
	const void *buf;   /* direct transports register by buffer */
	/* files */
	uint64_t file_size;
};

enum kind { PROG, MEM, FILES, NKINDS };

struct rb_guest_ndp_state {
	pthread_mutex_t lock;
	struct rec *r[NKINDS];
	unsigned n[NKINDS], cap[NKINDS];
	unsigned gen;       /* restores done */
	uint32_t synthetic; /* user ids made up when a device id collides */
};

/* The device's records, or NULL before the first LOAD/REG (other queues'
 * threads may read the pointer meanwhile: published with a release). */
static struct rb_guest_ndp_state *peek(struct rb_guest_dev *d)
{
	return __atomic_load_n(&d->ndps, __ATOMIC_ACQUIRE);
}

static struct rb_guest_ndp_state *state(struct rb_guest_dev *d)
{
	static pthread_mutex_t once = PTHREAD_MUTEX_INITIALIZER;
	struct rb_guest_ndp_state *s;

	pthread_mutex_lock(&once);
	s = peek(d);
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (s) {
			pthread_mutex_init(&s->lock, NULL);
			__atomic_store_n(&d->ndps, s, __ATOMIC_RELEASE);
		}
	}
	pthread_mutex_unlock(&once);
	return s;
}

void rb_guest_ndp_state_free(struct rb_guest_dev *d)
{
	struct rb_guest_ndp_state *s = d->ndps;

	if (!s)
		return;
	for (int k = 0; k < NKINDS; k++) {
		for (unsigned i = 0; i < s->n[k]; i++)
			free(s->r[k][i].elf);
		free(s->r[k]);
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
	d->ndps = NULL;
}

static struct rec *find_user(struct rb_guest_ndp_state *s, enum kind k, uint32_t user)
{
	for (unsigned i = 0; i < s->n[k]; i++)
		if (s->r[k][i].user == user)
			return &s->r[k][i];
	return NULL;
}

/* Adds a record for a device id just given; sets *user to the id the
 * application gets (the device's, unless a record already answers to it:
 * after a restart a device may hand out again a value an application still
 * holds; then a value no device gives out, epoch field 0xfff). */
static int note(struct rb_guest_dev *d, enum kind k, const struct rec *r, uint32_t *user)
{
	struct rb_guest_ndp_state *s = state(d);

	if (!s)
		return -ENOMEM;
	pthread_mutex_lock(&s->lock);
	if (s->n[k] == s->cap[k]) {
		unsigned cap = s->cap[k] ? 2 * s->cap[k] : 8;
		struct rec *n = realloc(s->r[k], cap * sizeof(*n));
		if (!n) {
			pthread_mutex_unlock(&s->lock);
			return -ENOMEM;
		}
		s->r[k] = n;
		s->cap[k] = cap;
	}
	struct rec *e = &s->r[k][s->n[k]++];
	*e = *r;
	while (find_user(s, k, e->user) != e)
		e->user = 0xfff00000u | (++s->synthetic & 0xfffffu);
	*user = e->user;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

int rb_guest_ndp_note_prog(struct rb_guest_dev *d, uint32_t *handle, uint32_t type,
			   const void *elf, size_t len, const char *section)
{
	struct rec r = {.user = *handle, .dev = *handle, .type = type, .len = len};

	r.elf = malloc(len ? len : 1);
	if (!r.elf)
		return -ENOMEM;
	memcpy(r.elf, elf, len);
	snprintf(r.section, sizeof(r.section), "%s", section);
	int rc = note(d, PROG, &r, handle);
	if (rc)
		free(r.elf);
	return rc;
}

int rb_guest_ndp_note_mem(struct rb_guest_dev *d, uint32_t *key, uint64_t gpa, const void *buf,
			  uint64_t len)
{
	struct rec r = {.user = *key, .dev = *key, .gpa = gpa, .buf = buf, .len = len};

	return note(d, MEM, &r, key);
}

int rb_guest_ndp_note_file(struct rb_guest_dev *d, uint32_t *key, const struct rb_ndp_extent *ext,
			   unsigned n, uint64_t file_size)
{
	struct rec r = {.user = *key, .dev = *key, .len = n, .file_size = file_size};

	r.elf = malloc(n ? n * sizeof(*ext) : 1);
	if (!r.elf)
		return -ENOMEM;
	memcpy(r.elf, ext, n * sizeof(*ext));
	int rc = note(d, FILES, &r, key);
	if (rc)
		free(r.elf);
	return rc;
}

/* The device's current id for what the application calls `user`, and
 * whether librosen knows it (else the value goes to the device as it is). */
static uint32_t dev_id(struct rb_guest_dev *d, enum kind k, uint32_t user, bool forget)
{
	struct rb_guest_ndp_state *s = peek(d);
	uint32_t dev = user;

	if (!s)
		return user;
	pthread_mutex_lock(&s->lock);
	struct rec *e = find_user(s, k, user);
	if (e) {
		dev = e->dev;
		if (forget) {
			free(e->elf);
			*e = s->r[k][--s->n[k]];
		}
	}
	pthread_mutex_unlock(&s->lock);
	return dev;
}

uint32_t rb_guest_ndp_dev_handle(struct rb_guest_dev *d, uint32_t user, bool forget)
{
	return dev_id(d, PROG, user, forget);
}

uint32_t rb_guest_ndp_dev_mem(struct rb_guest_dev *d, uint32_t user, bool forget)
{
	return dev_id(d, MEM, user, forget);
}

uint32_t rb_guest_ndp_dev_file(struct rb_guest_dev *d, uint32_t user, bool forget)
{
	return dev_id(d, FILES, user, forget);
}

unsigned rb_guest_ndp_generation(struct rb_guest_dev *d)
{
	struct rb_guest_ndp_state *s = peek(d);
	unsigned g = 0;

	if (s) {
		pthread_mutex_lock(&s->lock);
		g = s->gen;
		pthread_mutex_unlock(&s->lock);
	}
	return g;
}

/*
 * The device answered STATE_LOST to a request sent at restore generation
 * `gen`: it restarted and forgot everything.  Unless another thread has
 * restored since, loads every program and registers every range and file
 * again (on queue q, idle), in the order they were first made.  0, or the
 * first error (what could be restored is; the rest answers STATE_LOST
 * again and is retried at the next one).
 */
int rb_guest_ndp_restore(struct rb_guest_dev *d, unsigned q, unsigned gen)
{
	struct rb_guest_ndp_state *s = peek(d);
	int first = 0;

	if (!s) {
		rb_guest_seterr("the device lost its programs (it restarted) and librosen loaded none");
		return -ESTALE;
	}
	pthread_mutex_lock(&s->lock);
	if (s->gen != gen) { /* another thread restored after we sent */
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	/* A kernel driver counts what each open file owns: the lost ids go
	 * first (the device answers STATE_LOST, the driver forgets them). */
	if (d->t->direct) {
		for (unsigned i = 0; i < s->n[MEM]; i++)
			d->t->direct->unreg_mem(d, s->r[MEM][i].dev);
		for (unsigned i = 0; i < s->n[PROG]; i++)
			d->t->direct->unload(d, s->r[PROG][i].dev);
	}
	for (unsigned i = 0; i < s->n[MEM]; i++) {
		struct rec *e = &s->r[MEM][i];
		int rc = rb_guest_ndp_send_reg_mem(d, q, e->gpa, e->buf, e->len, &e->dev);
		if (rc && !first)
			first = rc;
	}
	for (unsigned i = 0; i < s->n[FILES]; i++) {
		struct rec *e = &s->r[FILES][i];
		int rc = rb_guest_ndp_send_reg_file(d, q, e->elf, (unsigned)e->len, e->file_size,
						    &e->dev);
		if (rc && !first)
			first = rc;
	}
	for (unsigned i = 0; i < s->n[PROG]; i++) {
		struct rec *e = &s->r[PROG][i];
		int rc = rb_guest_ndp_send_load(d, q, e->elf, e->len, e->section, e->type, &e->dev,
						NULL, 0);
		if (rc && !first)
			first = rc;
	}
	s->gen++;
	pthread_mutex_unlock(&s->lock);
	return first;
}
