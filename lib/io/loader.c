/* SPDX-License-Identifier: MIT */
/*
 * The daemon's one LOAD thread: every VM's NDP LOAD (ELF parse, verifier,
 * JIT) runs here, one at a time, at nice 19, from a bounded FIFO.  A LOAD
 * is guest input that costs host CPU and memory; it must never run on an
 * I/O worker, and the number waiting is capped so no guest can queue
 * unbounded work.  It knows nothing of rings: each job ends with a write
 * to the job's eventfd, which its worker reads through io_uring.
 */
#include "io_internal.h"

#include <rosen/log.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

/*
 * nice 19 rather than SCHED_IDLE: both yield to the workers and the vCPU
 * threads, but SCHED_IDLE's weight (3, against 1024 for a nice-0 thread)
 * all but starves the loader on a busy host, and a LOAD in progress holds
 * up its queue's stop (reset, disconnect, shutdown) until it ends.  nice 19
 * (weight 15) keeps it making progress; the verifier's CPU-time bound then
 * ends a hostile LOAD after a bounded share of one core.
 */
#define LOADER_NICE 19

struct rb_loader {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct rb_load_job *head, *tail; /* FIFO: fair between VMs by arrival */
	unsigned jobs;                   /* queued + running */
	unsigned max_jobs;
	bool closed; /* shutting down: no new jobs */
	bool stop;
	pthread_t thread;
	bool started;
};

/* Hands the job back to its submitter; the job is not touched after.
 * Called with l->lock held: the submitter's rb_loader_sync() after its
 * read of efd orders everything done to the job, and the write to efd
 * itself, before it reads the result and closes efd. */
static void job_done(struct rb_load_job *j)
{
	int efd = j->efd;

	eventfd_write(efd, 1);
}

static void run_job(struct rb_load_job *j)
{
	uint64_t start = rb_io_now_us();

	j->status = rb_ndp_load(j->table, j->prog_type, j->elf, j->elf_len, j->section, &j->handle,
				j->log, sizeof(j->log));
	rb_debug(j->vm, "LOAD of section '%s' waited %.1f ms in the loader queue, took %.1f ms",
		 j->section, (double)(start - j->queued_us) / 1e3,
		 (double)(rb_io_now_us() - start) / 1e3);
}

static void *loader_main(void *arg)
{
	struct rb_loader *l = arg;

	pthread_setname_np(pthread_self(), "rb-loader");
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), LOADER_NICE) < 0)
		rb_warn("loader", "cannot lower the LOAD thread's priority (%s); LOADs compete with I/O at normal priority",
			strerror(errno));
	pthread_mutex_lock(&l->lock);
	for (;;) {
		while (!l->head && !l->stop)
			pthread_cond_wait(&l->cond, &l->lock);
		struct rb_load_job *j = l->head;
		if (!j)
			break; /* stop, and nothing left */
		l->head = j->next;
		if (!l->head)
			l->tail = NULL;
		pthread_mutex_unlock(&l->lock);
		run_job(j);
		pthread_mutex_lock(&l->lock);
		l->jobs--;
		job_done(j);
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

void rb_loader_sync(struct rb_loader *l)
{
	pthread_mutex_lock(&l->lock);
	pthread_mutex_unlock(&l->lock);
}

int rb_loader_submit(struct rb_loader *l, struct rb_load_job *j)
{
	pthread_mutex_lock(&l->lock);
	if (l->jobs >= l->max_jobs || l->closed || l->stop) {
		pthread_mutex_unlock(&l->lock);
		return -EAGAIN;
	}
	j->next = NULL;
	j->queued_us = rb_io_now_us();
	if (l->tail)
		l->tail->next = j;
	else
		l->head = j;
	l->tail = j;
	l->jobs++;
	pthread_cond_signal(&l->cond);
	pthread_mutex_unlock(&l->lock);
	return 0;
}

unsigned rb_loader_cancel(struct rb_loader *l, const void *owner)
{
	struct rb_load_job *gone = NULL, **pp;
	unsigned n = 0;

	pthread_mutex_lock(&l->lock);
	if (!owner)
		l->closed = true;
	l->tail = NULL;
	for (pp = &l->head; *pp;) {
		struct rb_load_job *j = *pp;
		if (owner && j->owner != owner) {
			l->tail = j;
			pp = &j->next;
			continue;
		}
		*pp = j->next;
		j->next = gone;
		gone = j;
		l->jobs--;
		n++;
	}
	while (gone) {
		struct rb_load_job *j = gone;
		gone = j->next;
		j->status = RB_NDP_S_LIMIT;
		j->cancelled = true;
		j->handle = 0;
		snprintf(j->log, sizeof(j->log),
			 "the queue stopped (device reset, disconnect or daemon shutdown) before this LOAD was verified; nothing was loaded");
		rb_info(j->vm, "LOAD of section '%s' answered unverified: its queue stopped while it waited",
			j->section);
		job_done(j);
	}
	pthread_mutex_unlock(&l->lock);
	return n;
}

/* ---- set-up and tear-down ------------------------------------------------ */

int rb_loader_new(unsigned max_jobs, struct rb_loader **out, char *err, size_t errlen)
{
	struct rb_loader *l = calloc(1, sizeof(*l));
	int rc;

	*out = NULL;
	if (!l) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	l->max_jobs = max_jobs;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
	rc = pthread_create(&l->thread, NULL, loader_main, l);
	if (rc) {
		snprintf(err, errlen, "LOAD thread: pthread_create: %s", strerror(rc));
		pthread_cond_destroy(&l->cond);
		pthread_mutex_destroy(&l->lock);
		free(l);
		return -rc;
	}
	l->started = true;
	*out = l;
	return 0;
}

void rb_loader_free(struct rb_loader *l)
{
	if (!l)
		return;
	/* Every queue is stopped by now, so nothing is queued; a job that
	 * still were would be run before the thread ends, not dropped. */
	pthread_mutex_lock(&l->lock);
	l->stop = true;
	pthread_cond_signal(&l->cond);
	pthread_mutex_unlock(&l->lock);
	if (l->started)
		pthread_join(l->thread, NULL);
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->lock);
	free(l);
}
