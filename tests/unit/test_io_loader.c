/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of lib/io/loader.c, the daemon's one LOAD thread: the queue's
 * order and cap, cancelling a stopped queue's jobs and everything at
 * shutdown (on a loader whose thread is not started, so nothing races the
 * test), then a real thread running real LOADs once each at nice 19.
 * Includes the file under test to reach its internals.
 */
#include "../../lib/io/loader.c"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>

#include "harness.h"

/* A loader with no thread: jobs stay queued until the test looks. */
static struct rb_loader *idle_loader(unsigned max_jobs)
{
	struct rb_loader *l = calloc(1, sizeof(*l));

	REQUIRE(l);
	l->max_jobs = max_jobs;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
	return l;
}

static void job_init(struct rb_load_job *j, const void *owner)
{
	memset(j, 0, sizeof(*j));
	j->owner = owner;
	j->vm = "test";
	j->status = 0xffffffffu;
	j->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	REQUIRE(j->efd >= 0);
}

/* 1 once the loader handed the job back, 0 while it has not. */
static int handed_back(struct rb_load_job *j)
{
	eventfd_t v = 0;

	return eventfd_read(j->efd, &v) == 0 ? (int)v : 0;
}

TEST(queue_is_fifo_and_capped)
{
	struct rb_loader *l = idle_loader(3);
	struct rb_load_job j[4];

	for (int i = 0; i < 4; i++)
		job_init(&j[i], &j[i]);
	for (int i = 0; i < 3; i++)
		CHECK_EQ_U64(rb_loader_submit(l, &j[i]), 0);
	CHECK_EQ_U64(rb_loader_submit(l, &j[3]), -EAGAIN);
	CHECK(l->head == &j[0] && j[0].next == &j[1] && j[1].next == &j[2] && l->tail == &j[2]);
	CHECK_EQ_U64(l->jobs, 3);
	CHECK(!handed_back(&j[3])); /* refused: the submitter still owns it */
	rb_loader_cancel(l, NULL);
	for (int i = 0; i < 4; i++)
		close(j[i].efd);
	rb_loader_free(l);
}

TEST(cancel_answers_only_the_stopped_queues_jobs)
{
	struct rb_loader *l = idle_loader(16);
	int qa, qb; /* two queues */
	struct rb_load_job j[5];
	const void *owner[5] = {&qa, &qb, &qa, &qb, &qa};

	for (int i = 0; i < 5; i++) {
		job_init(&j[i], owner[i]);
		REQUIRE(rb_loader_submit(l, &j[i]) == 0);
	}
	CHECK_EQ_U64(rb_loader_cancel(l, &qa), 3);
	for (int i = 0; i < 5; i += 2) {
		CHECK_EQ_U64(handed_back(&j[i]), 1);
		CHECK_EQ_U64(j[i].status, RB_NDP_S_LIMIT);
		CHECK_EQ_U64(j[i].handle, 0);
		CHECK_STR_CONTAINS(j[i].log, "queue stopped");
	}
	/* qb's jobs wait on, in order, and the queue takes more after them. */
	CHECK(!handed_back(&j[1]) && !handed_back(&j[3]));
	CHECK(l->head == &j[1] && j[1].next == &j[3] && l->tail == &j[3]);
	CHECK_EQ_U64(l->jobs, 2);
	job_init(&j[0], &qa);
	CHECK_EQ_U64(rb_loader_submit(l, &j[0]), 0);
	CHECK(j[3].next == &j[0] && l->tail == &j[0]);
	/* Nothing of a queue with no jobs. */
	CHECK_EQ_U64(rb_loader_cancel(l, &owner), 0);
	rb_loader_cancel(l, NULL);
	for (int i = 0; i < 5; i++)
		close(j[i].efd);
	rb_loader_free(l);
}

TEST(shutdown_answers_everything_and_takes_no_more)
{
	struct rb_loader *l = idle_loader(16);
	int q;
	struct rb_load_job j[3];

	for (int i = 0; i < 3; i++) {
		job_init(&j[i], &q);
		REQUIRE(rb_loader_submit(l, &j[i]) == 0);
	}
	CHECK_EQ_U64(rb_loader_cancel(l, NULL), 3);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ_U64(handed_back(&j[i]), 1);
		CHECK_EQ_U64(j[i].status, RB_NDP_S_LIMIT);
	}
	CHECK(!l->head && !l->tail);
	CHECK_EQ_U64(l->jobs, 0);
	job_init(&j[0], &q);
	CHECK_EQ_U64(rb_loader_submit(l, &j[0]), -EAGAIN);
	for (int i = 0; i < 3; i++)
		close(j[i].efd);
	rb_loader_free(l);
}

/* The nice value of the thread named rb-loader, or -100. */
static int loader_nice(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int nice = -100;

	while (d && (e = readdir(d))) {
		char path[300], buf[512];
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		bool ours = fgets(buf, sizeof(buf), f) && !strcmp(buf, "rb-loader\n");
		fclose(f);
		if (!ours)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/stat", e->d_name);
		f = fopen(path, "r");
		if (f && fgets(buf, sizeof(buf), f)) {
			char *p = strrchr(buf, ')');
			int field = 3; /* the state, just after "(comm) " */
			for (p = p ? p + 2 : buf; *p && field < 19; p++)
				field += *p == ' ';
			nice = atoi(p);
		}
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return nice;
}

static char err_buf[256];

TEST(thread_runs_each_job_once_at_nice_19)
{
	struct rb_loader *l;
	struct rb_ndp_table *t = rb_ndp_table_new("test");
	struct rt_blob elf = rt_read_file(TEST_PROGS_DIR "/ndp_progs.o");
	static struct rb_load_job j[6];
	int q;

	REQUIRE(t);
	REQUIRE(rb_loader_new(16, &l, err_buf, sizeof(err_buf)) == 0);
	for (int i = 0; i < 6; i++) {
		job_init(&j[i], &q);
		j[i].table = t;
		j[i].prog_type = RB_NDP_PROG_XRP;
		j[i].elf = elf.p;
		j[i].elf_len = i % 2 ? 7 : elf.len; /* odd ones: a truncated object */
		snprintf(j[i].section, sizeof(j[i].section), "xrp_peek");
		REQUIRE(rb_loader_submit(l, &j[i]) == 0);
	}
	for (int i = 0; i < 6; i++) {
		struct pollfd p = {.fd = j[i].efd, .events = POLLIN};
		CHECK_EQ_U64(poll(&p, 1, 10000), 1);
		CHECK_EQ_U64(handed_back(&j[i]), 1);
		CHECK_EQ_U64(j[i].status, i % 2 ? RB_NDP_S_REJECTED : RB_NDP_S_OK);
		if (i % 2 == 0)
			CHECK(j[i].handle != 0);
	}
	CHECK_EQ_U64(loader_nice(), LOADER_NICE);
	CHECK_EQ_U64(rb_ndp_table_count(t), 3);
	rb_loader_free(l);
	for (int i = 0; i < 6; i++) {
		CHECK(!handed_back(&j[i])); /* once, not twice */
		close(j[i].efd);
	}
	rb_ndp_table_free(t);
	free(elf.p);
}

TEST_MAIN()
