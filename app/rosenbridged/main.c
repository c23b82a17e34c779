/* SPDX-License-Identifier: MIT */
/*
 * rosenbridged: serves disk images to VMs as vhost-user-blk devices.  The
 * main thread runs the control path (vhost-user sockets, signals); worker
 * threads run the data path.  Bad input from one VM ends that VM's
 * connection with a log line; it never stops the daemon.
 */
#include <rosen/io.h>
#include <rosen/log.h>
#include <rosen/qos.h>
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

#include "device.h"
#include "gds.h"
#include "metrics.h"

#define MAX_DISKS 64

struct disk_arg {
	const char *disk;
	const char *socket;
	bool readonly;
	unsigned queues;
	enum rb_disk_cache cache;
	struct rb_qos_limits throttle; /* --throttle: nothing set = unlimited */
};

struct config {
	struct disk_arg disks[MAX_DISKS];
	unsigned ndisks;
	unsigned workers;
	enum rb_io_notify mode;
	bool uncharged_program_io;
	const char *throttle_file;
	unsigned stats_interval; /* seconds; 0: counters at shutdown only */
	unsigned worker_depth;   /* 0: no limit */
	unsigned io_timeout;     /* seconds; 0: never cancel */
	bool allow_unsealed_memory;
	unsigned ndp_inflight;   /* per queue; 0: the default */
	const char *metrics_listen; /* --metrics-listen; NULL: no HTTP endpoint */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rosenbridged --disk PATH --socket PATH [DISK OPTIONS]\n"
		"                    [--disk PATH --socket PATH [DISK OPTIONS]]...\n"
		"                    [--workers N] [--poll | --event] [--verbose]\n"
		"\n"
		"Serves each disk image (regular file or block device) as a vhost-user-blk\n"
		"device on its unix socket, for QEMU's vhost-user-blk-pci or any\n"
		"vhost-user frontend. One frontend per socket at a time; when it goes\n"
		"away the socket accepts the next one.\n"
		"\n"
		"Disk options (apply to the --disk they follow):\n"
		"  --socket PATH          unix socket to listen on (required)\n"
		"  --readonly             refuse writes, discards and write-zeroes\n"
		"  --queues N             virtqueues offered, 1..16 (default 4)\n"
		"  --cache direct|buffered\n"
		"                         direct: O_DIRECT where the filesystem allows it\n"
		"                         (default); buffered: through the host page cache.\n"
		"                         Either way a write the guest saw complete may sit\n"
		"                         in a cache (the page cache; with direct, the\n"
		"                         device's write cache and file metadata) until the\n"
		"                         guest FLUSHes: VIRTIO_BLK_F_FLUSH is offered in both\n"
		"                         modes, a FLUSH is an fdatasync of the image sent\n"
		"                         after the writes in flight on its queue completed,\n"
		"                         and only what a FLUSH answered OK covers is sure to\n"
		"                         survive a host crash or power loss\n"
		"  --throttle KEY=VALUE[,KEY=VALUE...]\n"
		"                         QEMU's throttling keys: iops-total, iops-read,\n"
		"                         iops-write, bps-total, bps-read, bps-write, each\n"
		"                         also -max and -max-length; iops-size; group=NAME\n"
		"                         (disks of one group share its budget). Every I/O\n"
		"                         is charged: the guest's and its NDP programs'\n"
		"                         (docs/throttling.md)\n"
		"Daemon options:\n"
		"  --workers N            I/O worker threads, 1..%u (default 1)\n"
		"  --worker-depth N       at most N storage I/Os in flight per worker, the\n"
		"                         slots shared fairly among the disks it serves, so\n"
		"                         a VM with many requests outstanding cannot crowd\n"
		"                         out one with few (default 0: no limit; the worker's\n"
		"                         own time is shared fairly either way;\n"
		"                         docs/throttling.md, \"Fairness on a worker\")\n"
		"  --io-timeout S         storage I/O that has not completed after S seconds\n"
		"                         is cancelled and its request fails (IOERR), so\n"
		"                         storage that never answers cannot hold a VM's\n"
		"                         queue or a drain forever (default 60; 0: never)\n"
		"  --poll                 workers poll the rings, sleeping after %u us idle\n"
		"                         (default)\n"
		"  --event                workers never poll: they sleep on kick eventfds\n"
		"  --verbose              debug logging\n"
		"  --throttle-file FILE   throttle limits as JSON (docs/throttling.md), by disk\n"
		"                         name (vm0, vm1, ...) and group; read again on\n"
		"                         SIGHUP (a bad file is refused, the limits stay)\n"
		"  --stats-interval S     log every disk's counters every S seconds (I/Os by\n"
		"                         path: guest / programs; throttling: waits, bucket\n"
		"                         levels); without it they are logged at shutdown\n"
		"  --ndp-inflight N       NDP requests (READ_ND/WRITE_ND) in flight per queue,\n"
		"                         1..%u (default %u); each holds ~%u KiB while it\n"
		"                         runs, freed when the frontend goes; more wait in\n"
		"                         the ring\n"
		"  --allow-unsealed-memory\n"
		"                         accept guest memory that is not a sealable memfd\n"
		"                         (hugetlbfs, /dev/shm files). A frontend could shrink\n"
		"                         it under the daemon; the fault is then confined to\n"
		"                         that VM (its memory reads as zeros, it is\n"
		"                         disconnected). Without it such memory is refused\n"
		"  --metrics-listen [ADDR:]PORT\n"
		"                         serve the metrics (Prometheus text format) at\n"
		"                         http://ADDR:PORT/metrics; ADDR defaults to 127.0.0.1.\n"
		"                         There is no authentication and the metrics show\n"
		"                         every VM's disk activity: another address (IPv4, or\n"
		"                         [IPv6]) must be named, and is logged as a warning\n"
		"                         (docs/metrics.md)\n"
		"  --gpu N                the CUDA GPU (ordinal N) GPU regions live on (REG_GPU's\n"
		"                         cuda target; docs/gds.md); without it, or without\n"
		"                         libcuda.so.1, those requests answer NO_GPU\n"
		"  --uncharged-program-io for the fairness experiment only (bench/fairness):\n"
		"                         NDP program hops are not charged to the throttle\n"
		"  --help                 this text\n"
		"\n"
		"Example, with QEMU (guest RAM must be shared with the daemon):\n"
		"  rosenbridged --disk vm0.img --socket /run/vm0.sock &\n"
		"  qemu-system-x86_64 ... \\\n"
		"    -object memory-backend-memfd,id=mem,size=1G,share=on -numa node,memdev=mem \\\n"
		"    -chardev socket,id=c0,path=/run/vm0.sock,reconnect=1 \\\n"
		"    -device vhost-user-blk-pci,chardev=c0,num-queues=2\n"
		"\n"
		"SIGINT/SIGTERM: in-flight I/O completes, sockets are removed, exit 0.\n"
		"A new daemon on the same disks and sockets takes over: QEMU with\n"
		"reconnect=N on the chardev comes back within N s and what was in flight\n"
		"is resubmitted (programs and registrations answer STATE_LOST, the guest\n"
		"loads them again); docs/robustness.md, \"Restart without loss\".\n",
		RB_IO_MAX_WORKERS, 1000u, RB_IO_NDP_INFLIGHT_MAX, RB_IO_NDP_INFLIGHT, 28u);
}

/* --gpu N (RosenGDS: gds.c). */
static unsigned gds_gpu;
static bool gds_gpu_set;

static int parse_uint(const char *opt, const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = s ? strtoul(s, &end, 10) : 0;
	if (!s || !*s || *end || errno || *s == '-' || v < lo || v > hi) {
		fprintf(stderr, "rosenbridged: %s needs a number in %u..%u, got '%s'\n", opt, lo, hi,
			s ? s : "");
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

static int parse_args(int argc, char **argv, struct config *c)
{
	struct disk_arg *cur = NULL;

	memset(c, 0, sizeof(*c));
	c->workers = 1;
	c->mode = RB_IO_POLL;
	c->io_timeout = 60;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool per_disk = !strcmp(a, "--socket") || !strcmp(a, "--readonly") ||
				!strcmp(a, "--queues") || !strcmp(a, "--cache") || !strcmp(a, "--throttle");

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			exit(0);
		}
		if (per_disk && !cur) {
			fprintf(stderr, "rosenbridged: %s must follow the --disk it applies to\n", a);
			return -1;
		}
		if (!strcmp(a, "--disk")) {
			if (!v) {
				fprintf(stderr, "rosenbridged: --disk needs a path\n");
				return -1;
			}
			if (c->ndisks == MAX_DISKS) {
				fprintf(stderr, "rosenbridged: at most %d disks\n", MAX_DISKS);
				return -1;
			}
			cur = &c->disks[c->ndisks++];
			cur->disk = v;
			cur->queues = 4;
			cur->cache = RB_DISK_CACHE_DIRECT;
			i++;
		} else if (!strcmp(a, "--socket")) {
			if (!v) {
				fprintf(stderr, "rosenbridged: --socket needs a path\n");
				return -1;
			}
			cur->socket = v;
			i++;
		} else if (!strcmp(a, "--readonly")) {
			cur->readonly = true;
		} else if (!strcmp(a, "--queues")) {
			if (parse_uint("--queues", v, 1, 16, &cur->queues))
				return -1;
			i++;
		} else if (!strcmp(a, "--cache")) {
			if (v && !strcmp(v, "direct")) {
				cur->cache = RB_DISK_CACHE_DIRECT;
			} else if (v && !strcmp(v, "buffered")) {
				cur->cache = RB_DISK_CACHE_BUFFERED;
			} else {
				fprintf(stderr, "rosenbridged: --cache takes direct or buffered, got '%s'\n",
					v ? v : "");
				return -1;
			}
			i++;
		} else if (!strcmp(a, "--throttle")) {
			char terr[256];
			if (!v || rb_qos_limits_parse(v, &cur->throttle, terr, sizeof(terr))) {
				fprintf(stderr, "rosenbridged: --throttle %s: %s\n", v ? v : "",
					v ? terr : "needs KEY=VALUE[,KEY=VALUE...]");
				return -1;
			}
			i++;
		} else if (!strcmp(a, "--throttle-file")) {
			if (!v) {
				fprintf(stderr, "rosenbridged: --throttle-file needs a path\n");
				return -1;
			}
			c->throttle_file = v;
			i++;
		} else if (!strcmp(a, "--stats-interval")) {
			if (parse_uint("--stats-interval", v, 1, 86400, &c->stats_interval))
				return -1;
			i++;
		} else if (!strcmp(a, "--ndp-inflight")) {
			if (parse_uint("--ndp-inflight", v, 1, RB_IO_NDP_INFLIGHT_MAX, &c->ndp_inflight))
				return -1;
			i++;
		} else if (!strcmp(a, "--metrics-listen")) {
			if (!v) {
				fprintf(stderr, "rosenbridged: --metrics-listen needs [ADDR:]PORT\n");
				return -1;
			}
			struct sockaddr_storage ss;
			socklen_t sslen;
			bool loopback;
			char merr[256];
			if (rb_metrics_http_parse_addr(v, &ss, &sslen, &loopback, merr, sizeof(merr))) {
				fprintf(stderr, "rosenbridged: --metrics-listen %s\n", merr);
				return -1;
			}
			c->metrics_listen = v;
			i++;
		} else if (!strcmp(a, "--allow-unsealed-memory")) {
			c->allow_unsealed_memory = true;
		} else if (!strcmp(a, "--gpu")) {
			if (parse_uint("--gpu", v, 0, 1023, &gds_gpu))
				return -1;
			gds_gpu_set = true;
			i++;
		} else if (!strcmp(a, "--uncharged-program-io")) {
			c->uncharged_program_io = true;
		} else if (!strcmp(a, "--workers")) {
			if (parse_uint("--workers", v, 1, RB_IO_MAX_WORKERS, &c->workers))
				return -1;
			i++;
		} else if (!strcmp(a, "--worker-depth")) {
			if (parse_uint("--worker-depth", v, 0, 65536, &c->worker_depth))
				return -1;
			i++;
		} else if (!strcmp(a, "--io-timeout")) {
			if (parse_uint("--io-timeout", v, 0, 3600, &c->io_timeout))
				return -1;
			i++;
		} else if (!strcmp(a, "--poll")) {
			c->mode = RB_IO_POLL;
		} else if (!strcmp(a, "--event")) {
			c->mode = RB_IO_EVENT;
		} else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
			rb_log_set_level(RB_LOG_DEBUG);
		} else {
			fprintf(stderr, "rosenbridged: unknown option '%s' (see --help)\n", a);
			return -1;
		}
	}
	if (c->ndisks == 0) {
		fprintf(stderr, "rosenbridged: no --disk given (see --help)\n");
		return -1;
	}
	for (unsigned i = 0; i < c->ndisks; i++) {
		if (!c->disks[i].socket) {
			fprintf(stderr, "rosenbridged: --disk %s has no --socket\n", c->disks[i].disk);
			return -1;
		}
		for (unsigned j = 0; j < i; j++) {
			if (!strcmp(c->disks[i].socket, c->disks[j].socket)) {
				fprintf(stderr, "rosenbridged: socket %s given twice\n", c->disks[i].socket);
				return -1;
			}
		}
	}
	return 0;
}

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
		char name[16];
		snprintf(name, sizeof(name), "vm%u", i);
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

struct metrics_ctx {
	struct rb_device *const *devs;
	const unsigned *ndevs;
	struct rb_workers *workers;
};

static int render_metrics(void *arg, char **text, size_t *len)
{
	const struct metrics_ctx *m = arg;

	return rb_metrics_render(m->devs, *m->ndevs, m->workers, text, len);
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct rb_workers *workers = NULL;
	struct rb_qos_registry *qos = NULL;
	uint64_t next_stats_ms = 0;
	struct rb_device *devs[MAX_DISKS] = {0};
	unsigned ndevs = 0;
	struct rb_metrics_http *http = NULL;
	char err[512];
	int ret = 1;
	sigset_t mask;
	int sfd = -1;

	if (parse_args(argc, argv, &cfg))
		return 2;
	if (throttle_file_apply(&cfg, err, sizeof(err))) {
		fprintf(stderr, "rosenbridged: --throttle-file %s\n", err);
		return 2;
	}

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
		return 1;
	}

	if (cfg.allow_unsealed_memory) {
		if (rb_vhost_allow_unsealed_memory(err, sizeof(err))) {
			rb_err("rosenbridged", "%s", err);
			goto out;
		}
		rb_warn("rosenbridged", "--allow-unsealed-memory: guest memory that can shrink is accepted; a VM that shrinks it is disconnected");
	}
	qos = rb_qos_registry_new();
	if (!qos) {
		rb_err("rosenbridged", "out of memory");
		goto out;
	}
	if (gds_gpu_set)
		rb_gds_setup((int)gds_gpu); /* a GPU that is not there: NO_GPU, not an exit */
	if (rb_workers_new(cfg.workers, cfg.mode, &workers, err, sizeof(err))) {
		rb_err("rosenbridged", "%s", err);
		goto out;
	}
	rb_workers_set_depth(workers, cfg.worker_depth);
	rb_workers_set_io_timeout(workers, cfg.io_timeout);
	for (unsigned i = 0; i < cfg.ndisks; i++) {
		const struct disk_arg *a = &cfg.disks[i];
		struct rb_device_opts o = {
			.disk = {.path = a->disk, .readonly = a->readonly, .cache = a->cache,
				 .queues = a->queues, .qos = qos, .throttle = &a->throttle,
				 .uncharged_program_io = cfg.uncharged_program_io,
				 .ndp_inflight = cfg.ndp_inflight},
			.socket = a->socket,
		};
		snprintf(o.name, sizeof(o.name), "vm%u", i);
		if (rb_device_new(&o, workers, &devs[i], err, sizeof(err))) {
			rb_err("rosenbridged", "%s", err);
			goto out;
		}
		ndevs++;
	}
	if (cfg.metrics_listen && rb_metrics_http_new(cfg.metrics_listen, &http, err, sizeof(err))) {
		rb_err("rosenbridged", "%s", err);
		goto out;
	}
	struct metrics_ctx mctx = {.devs = devs, .ndevs = &ndevs, .workers = workers};
	rb_info("rosenbridged", "serving %u disk%s with %u worker%s (%s)", ndevs,
		ndevs == 1 ? "" : "s", cfg.workers, cfg.workers == 1 ? "" : "s",
		cfg.mode == RB_IO_POLL ? "polling" : "event-driven");

	for (;;) {
		struct pollfd pfd[MAX_DISKS + 1 + RB_METRICS_HTTP_MAX_FDS];
		/* A VM whose memory shrank is noticed within a second even if
		 * its frontend sends nothing (before the poll set is built: it
		 * closes that VM's connection). */
		if (cfg.allow_unsealed_memory)
			for (unsigned i = 0; i < ndevs; i++)
				rb_device_check_memory(devs[i]);
		pfd[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
		for (unsigned i = 0; i < ndevs; i++)
			pfd[i + 1] = (struct pollfd){.fd = rb_device_poll_fd(devs[i]), .events = POLLIN};
		int timeout = -1;
		if (cfg.allow_unsealed_memory)
			timeout = 1000;
		if (cfg.stats_interval) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			uint64_t now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
			if (!next_stats_ms)
				next_stats_ms = now_ms + cfg.stats_interval * 1000ull;
			if (now_ms >= next_stats_ms) {
				for (unsigned i = 0; i < ndevs; i++)
					rb_device_log_stats(devs[i], "so far:");
				next_stats_ms = now_ms + cfg.stats_interval * 1000ull;
			}
			int t = (int)(next_stats_ms - now_ms);
			if (timeout < 0 || t < timeout)
				timeout = t;
		}
		/* The metrics endpoint's sockets, non-blocking, after the VMs'. */
		unsigned nhttp = http ? rb_metrics_http_poll_fds(http, pfd + ndevs + 1,
								 RB_METRICS_HTTP_MAX_FDS, &timeout)
				      : 0;
		int n = poll(pfd, ndevs + 1 + nhttp, timeout);
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
				throttle_file_reload(&cfg, qos);
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
		for (unsigned i = 0; i < ndevs; i++)
			if (pfd[i + 1].revents)
				rb_device_handle(devs[i]);
		if (http)
			rb_metrics_http_handle(http, pfd + ndevs + 1, nhttp, render_metrics, &mctx);
	}
out:
	rb_metrics_http_free(http);
	/* A successor may take over (an upgrade, a restart): NDP requests
	 * the shutdown cuts short, and LOADs still waiting (cancelled now,
	 * not verified one by one while the queues drain), are left in flight
	 * for it where the frontend keeps an inflight area. */
	for (unsigned i = 0; i < ndevs && ret == 0; i++)
		rb_device_handover(devs[i]);
	rb_workers_cancel_loads(workers);
	for (unsigned i = 0; i < ndevs; i++)
		rb_device_free(devs[i]);
	rb_workers_free(workers);
	if (qos)
		rb_qos_registry_free(qos);
	if (sfd >= 0)
		close(sfd);
	if (ret == 0)
		rb_info("rosenbridged", "stopped");
	return ret;
}
