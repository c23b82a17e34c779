/* SPDX-License-Identifier: MIT */
/*
 * Test builds only (meson -Dfault_hooks=true; the asan build): sees every
 * storage SQE just before it goes to the kernel and its CQE before the
 * worker handles it, to trace the order of writes and flushes and to turn
 * results into storage errors (EIO, ENOSPC, EAGAIN, short transfers) that
 * LD_PRELOAD cannot reach inside io_uring.  Never built into a release.
 */
#include "io_internal.h"

#include <rosen/log.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum fault_op { OP_READ, OP_WRITE, OP_FLUSH, OP_DISCARD, OP_ANY };
enum fault_kind { K_NONE, K_EIO, K_ENOSPC, K_EAGAIN, K_SHORT, K_HANG };

#define MAX_RULES 16

struct rule {
	enum fault_op op;
	enum fault_kind kind;
	unsigned skip;  /* matching I/Os let through first */
	unsigned count; /* I/Os to hit after them; 0: every one */
	char vm[32];    /* only this disk ("vm0"); empty: any */
	unsigned seen, hit;
};

/*
 * What an SQE's CQE must know: kept by request, oldest first (user_data
 * stays the request, so cancelling by it still works).  The SQEs a request
 * has in flight at once are all of one kind (a virtio-blk request has one;
 * an NDP round reads or writes), so whichever of them completes first
 * takes the oldest tag.
 */
struct tag {
	struct tag *next;
	struct rb_io_req *req;
	uint64_t seq; /* a write's number (req->wr_seq) */
	bool write;
	enum fault_kind kind;
};

#define TAG_BUCKETS 1024
static struct tag *tags[TAG_BUCKETS];

static unsigned bucket(const struct rb_io_req *req)
{
	return (unsigned)(((uintptr_t)req >> 6) * 2654435761u) % TAG_BUCKETS;
}

/* The lock is held. */
static void tag_add(struct tag *t)
{
	struct tag **p = &tags[bucket(t->req)];

	while (*p)
		p = &(*p)->next;
	t->next = NULL;
	*p = t;
}

static struct tag *tag_take(const struct rb_io_req *req)
{
	for (struct tag **p = &tags[bucket(req)]; *p; p = &(*p)->next) {
		if ((*p)->req == req) {
			struct tag *t = *p;
			*p = t->next;
			return t;
		}
	}
	return NULL;
}

/* Whether a write of q numbered below `seq` is in flight (lock held). */
static bool older_write_in_flight(const struct rb_io_queue *q, uint64_t seq)
{
	for (unsigned b = 0; b < TAG_BUCKETS; b++)
		for (const struct tag *t = tags[b]; t; t = t->next)
			if (t->write && t->req->q == q && t->seq < seq)
				return true;
	return false;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct rule rules[MAX_RULES];
static unsigned n_rules;
static struct rb_io_fault_stats stats;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;
/* "hang": the I/O becomes a read of a pipe nobody writes, which only a
 * cancel ends (the watchdog's test). */
static int hang_pipe[2] = {-1, -1};
static uint8_t hang_buf[8];

/* ---- rules ---------------------------------------------------------------------- */

static int parse_rule(char *s, struct rule *r, char *err, size_t errlen)
{
	static const char *const ops[] = {"read", "write", "flush", "discard", "any"};
	static const char *const kinds[] = {"", "eio", "enospc", "eagain", "short", "hang"};
	char *save = NULL, *tok = strtok_r(s, ":", &save);
	unsigned i;

	memset(r, 0, sizeof(*r));
	r->count = 1;
	for (i = 0; tok && i < 5 && strcmp(tok, ops[i]); i++)
		;
	if (!tok || i == 5) {
		snprintf(err, errlen, "fault rule '%s': the operation must be read, write, flush, discard or any",
			 tok ? tok : "");
		return -EINVAL;
	}
	r->op = (enum fault_op)i;
	tok = strtok_r(NULL, ":", &save);
	for (i = 1; tok && i < 6 && strcmp(tok, kinds[i]); i++)
		;
	if (!tok || i == 6) {
		snprintf(err, errlen, "fault rule: the fault must be eio, enospc, eagain, short or hang, not '%s'",
			 tok ? tok : "");
		return -EINVAL;
	}
	r->kind = (enum fault_kind)i;
	while ((tok = strtok_r(NULL, ":", &save))) {
		char *eq = strchr(tok, '=');
		char *end = NULL;
		if (!eq) {
			snprintf(err, errlen, "fault rule: '%s' is not KEY=VALUE", tok);
			return -EINVAL;
		}
		*eq++ = 0;
		if (!strcmp(tok, "vm")) {
			snprintf(r->vm, sizeof(r->vm), "%s", eq);
			continue;
		}
		unsigned long v = strtoul(eq, &end, 10);
		if (!*eq || *end || v > 1000000000ul) {
			snprintf(err, errlen, "fault rule: %s=%s is not a number", tok, eq);
			return -EINVAL;
		}
		if (!strcmp(tok, "skip")) {
			r->skip = (unsigned)v;
		} else if (!strcmp(tok, "count")) {
			r->count = (unsigned)v;
		} else {
			snprintf(err, errlen, "fault rule: unknown key '%s' (skip, count, vm)", tok);
			return -EINVAL;
		}
	}
	return 0;
}

static pthread_once_t hang_once = PTHREAD_ONCE_INIT;

static void hang_init(void)
{
	if (pipe2(hang_pipe, O_CLOEXEC))
		hang_pipe[0] = hang_pipe[1] = -1;
}

int rb_io_fault_set(const char *spec, char *err, size_t errlen)
{
	struct rule nr[MAX_RULES];
	unsigned n = 0;
	char buf[1024], *save = NULL;

	if (!spec)
		spec = "";
	if (strlen(spec) >= sizeof(buf)) {
		snprintf(err, errlen, "fault spec longer than %zu bytes", sizeof(buf) - 1);
		return -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%s", spec);
	for (char *r = strtok_r(buf, ", \n", &save); r; r = strtok_r(NULL, ", \n", &save)) {
		if (n == MAX_RULES) {
			snprintf(err, errlen, "more than %u fault rules", MAX_RULES);
			return -EINVAL;
		}
		int rc = parse_rule(r, &nr[n], err, errlen);
		if (rc)
			return rc;
		n++;
	}
	for (unsigned i = 0; i < n; i++)
		if (nr[i].kind == K_HANG) /* its pipe: made when first asked for */
			pthread_once(&hang_once, hang_init);
	pthread_mutex_lock(&lock);
	memcpy(rules, nr, sizeof(nr[0]) * n);
	n_rules = n;
	pthread_mutex_unlock(&lock);
	return 0;
}

static void load_env(void)
{
	const char *spec = getenv("ROSEN_FAULTS");
	char err[256];


	if (spec && *spec) {
		if (rb_io_fault_set(spec, err, sizeof(err)))
			rb_err("faults", "ROSEN_FAULTS refused: %s", err);
		else
			rb_warn("faults", "fault injection armed: %s", spec);
	}
}

int rb_io_fault_reload(char *msg, size_t len)
{
	const char *path = getenv("ROSEN_FAULTS_FILE");
	char spec[1024] = "";
	int rc;

	if (!path) {
		snprintf(msg, len, "ROSEN_FAULTS_FILE is not set");
		return -ENOENT;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(msg, len, "%s: %s", path, strerror(-rc));
		return rc;
	}
	ssize_t n = read(fd, spec, sizeof(spec) - 1);
	close(fd);
	spec[n > 0 ? n : 0] = 0;
	rc = rb_io_fault_set(spec, msg, len);
	if (!rc)
		snprintf(msg, len, "fault injection armed: %s", spec[0] ? spec : "(none)");
	return rc;
}

void rb_io_fault_get_stats(struct rb_io_fault_stats *s)
{
	pthread_mutex_lock(&lock);
	*s = stats;
	pthread_mutex_unlock(&lock);
}

/* ASan's count of live heap bytes (absent without a sanitizer). */
extern size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));

long long rb_io_test_allocated_bytes(void)
{
	return __sanitizer_get_current_allocated_bytes
		       ? (long long)__sanitizer_get_current_allocated_bytes()
		       : -1;
}

/* ---- the hooks ---------------------------------------------------------------- */

static int classify(const struct io_uring_sqe *sqe, const struct rb_disk *d)
{
	bool disk_fd = sqe->fd == d->fd || sqe->fd == d->fd_buffered;

	if (!disk_fd)
		return -1; /* a LOAD's eventfd read */
	switch (sqe->opcode) {
	case IORING_OP_READ:
	case IORING_OP_READV:
		return OP_READ;
	case IORING_OP_WRITE:
	case IORING_OP_WRITEV:
		return OP_WRITE;
	case IORING_OP_FSYNC:
		return OP_FLUSH;
	case IORING_OP_FALLOCATE:
		return OP_DISCARD;
	}
	return -1;
}

/* The fault for one I/O, by the first rule that takes it. */
static enum fault_kind match(enum fault_op op, const struct rb_disk *d)
{
	for (unsigned i = 0; i < n_rules; i++) {
		struct rule *r = &rules[i];
		if (r->op != OP_ANY && r->op != op)
			continue;
		if (r->vm[0] && strcmp(r->vm, d->name))
			continue;
		if (r->seen++ < r->skip)
			continue;
		if (r->count && r->hit >= r->count)
			continue;
		r->hit++;
		return r->kind;
	}
	return K_NONE;
}

void rb_io_fault_sqes(struct rb_worker *w)
{
	struct io_uring_sq *sq = &w->ring.sq;

	pthread_once(&env_once, load_env);
	for (unsigned i = sq->sqe_head; i != sq->sqe_tail; i++) {
		struct io_uring_sqe *sqe = &sq->sqes[i & sq->ring_mask];
		struct rb_io_req *req = (struct rb_io_req *)(uintptr_t)sqe->user_data;
		if (!req)
			continue; /* the watchdog's cancels */
		struct rb_io_queue *q = req->q;
		int op = classify(sqe, q->disk);
		if (op < 0)
			continue;
		struct tag *t = malloc(sizeof(*t));
		if (!t)
			continue; /* untraced: the test sees the count missing */
		t->req = req;
		t->write = op == OP_WRITE || op == OP_DISCARD;
		t->seq = req->wr_active ? req->wr_seq : UINT64_MAX;
		pthread_mutex_lock(&lock);
		if (t->write) {
			stats.write_sqes++;
		} else if (op == OP_READ) {
			stats.read_sqes++;
		} else if (op == OP_FLUSH) {
			/* The fdatasync answers its leader and riders: every
			 * write any of them covers must have completed. */
			uint64_t covers = req->wr_seq;
			for (const struct rb_io_req *r = q->fl_riders; r; r = r->fl_next)
				if (r->wr_seq > covers)
					covers = r->wr_seq;
			stats.flush_sqes++;
			if (sqe->fsync_flags & IORING_FSYNC_DATASYNC)
				stats.flush_datasync++;
			if (older_write_in_flight(q, covers))
				stats.flush_overtakes++;
		}
		t->kind = match((enum fault_op)op, q->disk);
		tag_add(t);
		pthread_mutex_unlock(&lock);
		if (t->kind == K_HANG && hang_pipe[0] >= 0)
			io_uring_prep_read(sqe, hang_pipe[0], hang_buf, sizeof(hang_buf), (uint64_t)-1);
	}
}

bool rb_io_fault_inline_ok(struct rb_worker *w)
{
	bool ok;

	(void)w;
	pthread_once(&env_once, load_env);
	pthread_mutex_lock(&lock);
	/* With a rule armed every read goes to io_uring, where the rules
	 * act; otherwise an inline read is traced as a read submitted. */
	ok = n_rules == 0;
	if (ok)
		stats.read_sqes++;
	pthread_mutex_unlock(&lock);
	return ok;
}

void rb_io_fault_cqe(struct rb_worker *w, struct io_uring_cqe *cqe)
{
	struct rb_io_req *req = (struct rb_io_req *)(uintptr_t)cqe->user_data;

	(void)w;
	if (!req)
		return;
	pthread_mutex_lock(&lock);
	struct tag *t = tag_take(req);
	if (t && t->kind != K_NONE)
		stats.injected++;
	pthread_mutex_unlock(&lock);
	if (!t)
		return;
	if (t->kind != K_NONE) {
		int was = cqe->res;
		switch (t->kind) {
		case K_EIO:
			cqe->res = -EIO;
			break;
		case K_ENOSPC:
			cqe->res = -ENOSPC;
			break;
		case K_EAGAIN:
			cqe->res = -EAGAIN;
			break;
		case K_HANG: /* it ended: cancelled (or the pipe failed) */
			break;
		case K_SHORT:
			/* Fewer bytes, never none (that is the end of the file):
			 * half, in whole sectors where there are two. */
			if (cqe->res >= 1024)
				cqe->res = (cqe->res / 2) & ~511;
			else if (cqe->res > 1)
				cqe->res /= 2;
			break;
		case K_NONE:
			break;
		}
		rb_debug(req->q->disk->name, "fault injected: result %d became %d", was, cqe->res);
	}
	free(t);
}
