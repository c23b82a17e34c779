/* SPDX-License-Identifier: MIT */
/*
 * rosenbridged: serves disk images to VMs as vhost-user-blk devices.  The
 * main thread runs the control path (vhost-user sockets, signals, the
 * control socket); worker threads run the data path.  Bad input from one
 * VM or one control client ends that connection with a log line; it never
 * stops the daemon.
 */
#include <rosen/io.h>
#include <rosen/log.h>
#include <rosen/qos.h>
#include <rosen/rpc.h>
#include <rosen/vhost.h>

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "device.h"
#include "gds.h"
#include "metrics.h"

/* The limits of the --throttle-file for the disks: a disk named there and
 * given --throttle too is refused (one source per disk). */
static int throttle_file_apply(struct config *cfg, char *err, size_t errlen)
{
	struct rb_qos_config q;

	if (!cfg->throttle_file)
		return 0;
	if (rb_qos_config_parse_file(cfg->throttle_file, &q, err, errlen))
		return -1;
	for (unsigned i = 0; i < cfg->ndisks; i++) {
		const char *name = cfg->disks[i].name;
		const struct rb_qos_target *t = rb_qos_config_disk(&q, name);
		if (!t)
			continue;
		struct rb_qos_limits *l = &cfg->disks[i].throttle;
		if (rb_qos_limits_any(l) || l->group[0]) {
			snprintf(err, errlen, "%s: disk %s has --throttle and an entry in the file: give one",
				 cfg->throttle_file, name);
			rb_qos_config_free(&q);
			return -1;
		}
		*l = t->limits;
	}
	rb_qos_config_free(&q);
	return 0;
}

/* SIGHUP: the file read again and applied group by group through
 * rb_qos_set_limits() (what the control socket will call); a bad file
 * changes nothing.  Every disk has a group (its own, named after it, if
 * it names none), so a disk started without limits can be given some;
 * a named group that no disk joined at start is not created by a reload. */
static void throttle_file_reload(const struct config *cfg, struct rb_qos_registry *reg)
{
	struct rb_qos_config q;
	char err[512];
	unsigned changed = 0;

	if (!cfg->throttle_file) {
		rb_info("rosenbridged", "SIGHUP: no --throttle-file to read");
		return;
	}
	if (rb_qos_config_parse_file(cfg->throttle_file, &q, err, sizeof(err))) {
		rb_err("rosenbridged", "SIGHUP: throttle file refused, the limits stay as they were: %s", err);
		return;
	}
	for (size_t i = 0; i < q.n; i++) {
		const struct rb_qos_target *t = &q.t[i];
		const char *gname = t->kind == RB_QOS_TARGET_GROUP ? t->name : t->limits.group;
		struct rb_qos_group *g = rb_qos_group_find(reg, gname);
		if (!g) {
			rb_warn("rosenbridged", "SIGHUP: throttle group '%s' has no disk here (a disk joins a group at start: --throttle group=NAME)",
				gname);
			continue;
		}
		char lim[256];
		rb_qos_limits_format(&t->limits, lim, sizeof(lim));
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		if (rb_qos_set_limits(g, &t->limits, (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec,
				      err, sizeof(err)))
			rb_err("rosenbridged", "SIGHUP: group '%s': %s", gname, err);
		else
			changed++, rb_info("rosenbridged", "SIGHUP: throttle group '%s': %s", gname,
					   lim[0] ? lim : "no limits");
		rb_qos_group_put(g);
	}
	rb_qos_config_free(&q);
	rb_info("rosenbridged", "SIGHUP: %s read, %u group(s) set", cfg->throttle_file, changed);
}

#ifdef RB_FAULT_HOOKS
/* Test builds only: SIGUSR1 reads ROSEN_FAULTS_FILE into the fault hooks;
 * SIGUSR2 logs one "test report" line: live heap bytes (ASan's count),
 * open fds and the I/O trace (tests/vhost/test_vanish.py, test_faults.py). */
static void test_signal(int sig)
{
	char msg[1200];

	if (sig == SIGUSR1) {
		if (rb_io_fault_reload(msg, sizeof(msg)))
			rb_err("faults", "%s", msg);
		else
			rb_warn("faults", "%s", msg);
		return;
	}
	struct rb_io_fault_stats st;
	unsigned fds = 0;
	DIR *dir = opendir("/proc/self/fd");
	if (dir) {
		while (readdir(dir))
			fds++;
		closedir(dir);
		fds = fds >= 3 ? fds - 3 : 0; /* ".", ".." and the dir's own fd */
	}
	rb_io_fault_get_stats(&st);
	rb_info("rosenbridged", "test report: allocated=%lld fds=%u reads=%llu writes=%llu flushes=%llu datasync=%llu overtakes=%llu injected=%llu",
		rb_io_test_allocated_bytes(), fds, (unsigned long long)st.read_sqes,
		(unsigned long long)st.write_sqes, (unsigned long long)st.flush_sqes,
		(unsigned long long)st.flush_datasync, (unsigned long long)st.flush_overtakes,
		(unsigned long long)st.injected);
}
#endif

/* The HTTP endpoint's renderer: the disks served at that moment. */
static int render_metrics(void *arg, char **text, size_t *len)
{
	const struct daemon *dm = arg;

	return rb_metrics_render(dm->devs, dm->ndevs, dm->workers, text, len);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	static struct config cfg;
	struct daemon dm = {0};
	struct rb_metrics_http *http = NULL;
	uint64_t next_stats_ms = 0;
	char err[512];
	int ret = 1;
	sigset_t mask;
	int sfd = -1;

	if (config_parse_args(argc, argv, &cfg)) {
		config_free(&cfg);
		return 2;
	}
	if (cfg.log_level >= 0)
		rb_log_set_level((enum rb_log_level)cfg.log_level);
	if (cfg.log_format >= 0)
		rb_log_set_format((enum rb_log_format)cfg.log_format);
	if (throttle_file_apply(&cfg, err, sizeof(err))) {
		fprintf(stderr, "rosenbridged: --throttle-file %s\n", err);
		config_free(&cfg);
		return 2;
	}
	if (cfg.check_only) {
		printf("config OK: %u disk%s%s%s\n", cfg.ndisks, cfg.ndisks == 1 ? "" : "s",
		       cfg.control ? ", control socket " : "", cfg.control ? cfg.control : "");
		config_free(&cfg);
		return 0;
	}
	dm.cfg = &cfg;
	dm.started_ms = now_ms();

	/* Signals arrive through a signalfd in the control loop; workers
	 * inherit the blocked mask, so only the control thread sees them. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGPIPE);
#ifdef RB_FAULT_HOOKS
	/* Test builds: SIGUSR1 re-arms faults, SIGUSR2 reports (test_report). */
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGUSR2);
#endif
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0) {
		rb_err("rosenbridged", "signalfd: %s", strerror(errno));
		config_free(&cfg);
		return 1;
	}

	/* The control socket before any thread starts: it is created under
	 * a umask, which is the whole process's. */
	if (cfg.control) {
		if (rb_rpc_server_new(cfg.control, &dm.rpc, err, sizeof(err))) {
			rb_err("rosenbridged", "%s", err);
			goto out;
		}
	}
	if (cfg.allow_unsealed_memory) {
		if (rb_vhost_allow_unsealed_memory(err, sizeof(err))) {
			rb_err("rosenbridged", "%s", err);
			goto out;
		}
		rb_warn("rosenbridged", "--allow-unsealed-memory: guest memory that can shrink is accepted; a VM that shrinks it is disconnected");
	}
	dm.qos = rb_qos_registry_new();
	if (!dm.qos) {
		rb_err("rosenbridged", "out of memory");
		goto out;
	}
	if (cfg.gpu >= 0)
		rb_gds_setup(cfg.gpu); /* a GPU that is not there: NO_GPU, not an exit */
	if (rb_workers_new(cfg.workers, cfg.mode, &dm.workers, err, sizeof(err))) {
		rb_err("rosenbridged", "%s", err);
		goto out;
	}
	rb_workers_set_depth(dm.workers, cfg.worker_depth);
	rb_workers_set_io_timeout(dm.workers, cfg.io_timeout);
	for (unsigned i = 0; i < cfg.ndisks; i++) {
		if (daemon_add_disk(&dm, &cfg.disks[i], NULL, 0, err, sizeof(err))) {
			rb_err(cfg.disks[i].name, "%s", err);
			goto out;
		}
	}
	if (dm.rpc) {
		if (control_rpc_register(&dm)) {
			rb_err("rosenbridged", "control socket: cannot register its methods");
			goto out;
		}
		rb_info("rosenbridged", "control socket %s", cfg.control);
	}
	if (cfg.metrics_listen &&
	    rb_metrics_http_new(cfg.metrics_listen, &http, err, sizeof(err))) {
		rb_err("rosenbridged", "%s", err);
		goto out;
	}
	rb_info("rosenbridged", "serving %u disk%s with %u worker%s (%s)", dm.ndevs,
		dm.ndevs == 1 ? "" : "s", cfg.workers, cfg.workers == 1 ? "" : "s",
		cfg.mode == RB_IO_POLL ? "polling" : "event-driven");

	for (;;) {
		struct pollfd pfd[1 + MAX_DISKS + 1 + RB_RPC_MAX_CLIENTS + RB_METRICS_HTTP_MAX_FDS];
		struct rb_device *polled[MAX_DISKS];
		unsigned npolled = dm.ndevs;
		/* A VM whose memory shrank is noticed within a second even if
		 * its frontend sends nothing (before the poll set is built: it
		 * closes that VM's connection). */
		if (cfg.allow_unsealed_memory)
			for (unsigned i = 0; i < dm.ndevs; i++)
				rb_device_check_memory(dm.devs[i]);
		pfd[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
		/* The set is rebuilt every time round: disks come and go
		 * (disk_add, disk_remove) between two polls. */
		for (unsigned i = 0; i < npolled; i++) {
			polled[i] = dm.devs[i];
			pfd[i + 1] = (struct pollfd){.fd = rb_device_poll_fd(dm.devs[i]), .events = POLLIN};
		}
		unsigned nrpc = dm.rpc ? rb_rpc_server_pollfds(dm.rpc, pfd + 1 + npolled,
							       1 + RB_RPC_MAX_CLIENTS) : 0;
		int timeout = -1;
		if (cfg.allow_unsealed_memory)
			timeout = 1000;
		if (cfg.stats_interval) {
			uint64_t now = now_ms();
			if (!next_stats_ms)
				next_stats_ms = now + cfg.stats_interval * 1000ull;
			if (now >= next_stats_ms) {
				for (unsigned i = 0; i < dm.ndevs; i++)
					rb_device_log_stats(dm.devs[i], "so far:");
				next_stats_ms = now + cfg.stats_interval * 1000ull;
			}
			int t = (int)(next_stats_ms - now);
			if (timeout < 0 || t < timeout)
				timeout = t;
		}
		/* The metrics endpoint's sockets, non-blocking, last. */
		struct pollfd *hpfd = pfd + 1 + npolled + nrpc;
		unsigned nhttp = http ? rb_metrics_http_poll_fds(http, hpfd, RB_METRICS_HTTP_MAX_FDS,
								 &timeout)
				      : 0;
		int n = poll(pfd, 1 + npolled + nrpc + nhttp, timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rb_err("rosenbridged", "poll: %s", strerror(errno));
			goto out;
		}
		if (pfd[0].revents) {
			struct signalfd_siginfo si;
			ssize_t got = read(sfd, &si, sizeof(si));
			if (got == sizeof(si) && si.ssi_signo == SIGHUP) {
				throttle_file_reload(&cfg, dm.qos);
#ifdef RB_FAULT_HOOKS
			} else if (got == sizeof(si) && (si.ssi_signo == SIGUSR1 || si.ssi_signo == SIGUSR2)) {
				test_signal((int)si.ssi_signo);
#endif
			} else if (got == sizeof(si) && si.ssi_signo != SIGPIPE) {
				rb_info("rosenbridged", "%s: finishing in-flight I/O and shutting down",
					strsignal((int)si.ssi_signo));
				ret = 0;
				goto out;
			}
		}
		/* Disks first, the control socket last: only its methods add
		 * or remove disks, so every polled disk still exists here. */
		for (unsigned i = 0; i < npolled; i++)
			if (pfd[i + 1].revents)
				rb_device_handle(polled[i]);
		if (http)
			rb_metrics_http_handle(http, hpfd, nhttp, render_metrics, &dm);
		if (nrpc)
			rb_rpc_server_handle(dm.rpc, pfd + 1 + npolled, nrpc);
	}
out:
	/* No new control requests while the disks go. */
	rb_rpc_server_free(dm.rpc);
	dm.rpc = NULL;
	rb_metrics_http_free(http);
	/* A successor may take over (an upgrade, a restart): NDP requests
	 * the shutdown cuts short, and LOADs still waiting (cancelled now,
	 * not verified one by one while the queues drain), are left in flight
	 * for it where the frontend keeps an inflight area. */
	for (unsigned i = 0; i < dm.ndevs && ret == 0; i++)
		rb_device_handover(dm.devs[i]);
	if (dm.workers)
		rb_workers_cancel_loads(dm.workers);
	while (dm.ndevs)
		daemon_remove_disk(&dm, 0);
	rb_workers_free(dm.workers);
	if (dm.qos)
		rb_qos_registry_free(dm.qos);
	if (sfd >= 0)
		close(sfd);
	config_free(&cfg);
	if (ret == 0)
		rb_info("rosenbridged", "stopped");
	return ret;
}
