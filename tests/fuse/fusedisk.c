/* SPDX-License-Identifier: MIT */
/*
 * A disk image with a volatile write cache, as a FUSE file, for the
 * durability and fault tests: writes land in a cache that fsync/fdatasync
 * makes durable and "crash" forgets; reads, writes and syncs can be made
 * to fail, come back short or wait.  Test tool only: it keeps the image in
 * memory and trusts whoever writes its control file.
 *
 * usage: fusedisk SIZE MOUNTPOINT
 *   MOUNTPOINT/disk.img  SIZE bytes, zero at start (truncate() resizes it)
 *   MOUNTPOINT/ctl       write commands, one per line:
 *     crash                 forget every write no fsync/fdatasync covered
 *     fail OP ERR [N [SKIP]] OP read|write|fsync, ERR eio|enospc|eagain|short
 *                           (short: half the bytes): N of them (default 1;
 *                           0: every one) after letting SKIP through
 *     delay OP MS [N]       OP waits MS ms before it runs, the next N times
 *     clear                 no faults, no delays
 *   reading ctl: "reads=N writes=N fsyncs=N fdatasyncs=N dirty=N size=N"
 *   (dirty: bytes written since the last sync).
 * Runs in the foreground, multithreaded (a delayed write does not hold up
 * an fsync: what io_uring does to a real file), until SIGTERM/SIGINT.
 */
#define FUSE_USE_VERSION 31
#include <fuse3/fuse.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { OP_READ, OP_WRITE, OP_FSYNC, N_OPS };
enum { F_NONE, F_EIO, F_ENOSPC, F_EAGAIN, F_SHORT };

struct rule {
	int fault;
	unsigned skip; /* let through first */
	unsigned left; /* 0 with `always` */
	bool always;
	unsigned delay_ms, delay_left;
	bool delay_always;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *cur, *dur; /* what reads see; what survives a crash */
static size_t cap, size, dur_size;
static uint64_t n_reads, n_writes, n_fsyncs, n_fdatasyncs, dirty;
static struct rule rules[N_OPS];

/* Takes the op's fault and delay for this call. */
static int take(int op, unsigned *delay_ms)
{
	struct rule *r = &rules[op];
	int f = F_NONE;

	*delay_ms = 0;
	if (r->delay_ms && (r->delay_always || r->delay_left)) {
		*delay_ms = r->delay_ms;
		if (!r->delay_always && --r->delay_left == 0)
			r->delay_ms = 0;
	}
	if (r->fault && r->skip) {
		r->skip--;
	} else if (r->fault && (r->always || r->left)) {
		f = r->fault;
		if (!r->always && --r->left == 0)
			r->fault = F_NONE;
	}
	return f;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int fault_errno(int f)
{
	return f == F_EIO ? -EIO : f == F_ENOSPC ? -ENOSPC : f == F_EAGAIN ? -EAGAIN : 0;
}

static int stats_text(char *buf, size_t len)
{
	return snprintf(buf, len, "reads=%llu writes=%llu fsyncs=%llu fdatasyncs=%llu dirty=%llu size=%zu\n",
			(unsigned long long)n_reads, (unsigned long long)n_writes,
			(unsigned long long)n_fsyncs, (unsigned long long)n_fdatasyncs,
			(unsigned long long)dirty, size);
}

static int parse_op(const char *s)
{
	return !strcmp(s, "read") ? OP_READ : !strcmp(s, "write") ? OP_WRITE
					      : !strcmp(s, "fsync") ? OP_FSYNC : -1;
}

/* One control command; the lock is held. */
static int command(char *line)
{
	char a[16] = "", b[16] = "", c[16] = "", d[16] = "", e[16] = "";
	int n = sscanf(line, "%15s %15s %15s %15s %15s", a, b, c, d, e);

	if (n <= 0)
		return 0;
	if (!strcmp(a, "crash")) {
		memcpy(cur, dur, cap);
		size = dur_size;
		dirty = 0;
		return 0;
	}
	if (!strcmp(a, "clear")) {
		memset(rules, 0, sizeof(rules));
		return 0;
	}
	int op = parse_op(b);
	unsigned count = n >= 4 ? (unsigned)strtoul(d, NULL, 10) : 1;
	if (op < 0 || n < 3)
		return -EINVAL;
	struct rule *r = &rules[op];
	if (!strcmp(a, "fail")) {
		int f = !strcmp(c, "eio") ? F_EIO : !strcmp(c, "enospc") ? F_ENOSPC
				: !strcmp(c, "eagain") ? F_EAGAIN : !strcmp(c, "short") ? F_SHORT : -1;
		if (f < 0)
			return -EINVAL;
		r->fault = f;
		r->skip = n >= 5 ? (unsigned)strtoul(e, NULL, 10) : 0;
		r->always = count == 0;
		r->left = count;
		return 0;
	}
	if (!strcmp(a, "delay")) {
		r->delay_ms = (unsigned)strtoul(c, NULL, 10);
		r->delay_always = count == 0;
		r->delay_left = count;
		return 0;
	}
	return -EINVAL;
}

/* ---- the filesystem --------------------------------------------------------------- */

static void *fd_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	cfg->direct_io = 1; /* no page cache: every read and write comes here */
	cfg->entry_timeout = cfg->attr_timeout = cfg->negative_timeout = 0;
	return NULL;
}

static int fd_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	(void)fi;
	memset(st, 0, sizeof(*st));
	if (!strcmp(path, "/")) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	pthread_mutex_lock(&lock);
	if (!strcmp(path, "/disk.img")) {
		st->st_mode = S_IFREG | 0644;
		st->st_size = (off_t)size;
	} else if (!strcmp(path, "/ctl")) {
		char buf[256];
		st->st_mode = S_IFREG | 0644;
		st->st_size = stats_text(buf, sizeof(buf));
	} else {
		pthread_mutex_unlock(&lock);
		return -ENOENT;
	}
	st->st_nlink = 1;
	st->st_blksize = 4096;
	st->st_blocks = (st->st_size + 511) / 512;
	pthread_mutex_unlock(&lock);
	return 0;
}

static int fd_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)off, (void)fi, (void)flags;
	if (strcmp(path, "/"))
		return -ENOENT;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	fill(buf, "disk.img", NULL, 0, 0);
	fill(buf, "ctl", NULL, 0, 0);
	return 0;
}

static int fd_open(const char *path, struct fuse_file_info *fi)
{
	if (strcmp(path, "/disk.img") && strcmp(path, "/ctl"))
		return -ENOENT;
	fi->direct_io = 1;
	return 0;
}

static int fd_read(const char *path, char *buf, size_t len, off_t off, struct fuse_file_info *fi)
{
	unsigned delay;
	(void)fi;
	if (!strcmp(path, "/ctl")) {
		char text[256];
		pthread_mutex_lock(&lock);
		int n = stats_text(text, sizeof(text));
		pthread_mutex_unlock(&lock);
		if (off >= n)
			return 0;
		size_t c = (size_t)(n - off) < len ? (size_t)(n - off) : len;
		memcpy(buf, text + off, c);
		return (int)c;
	}
	pthread_mutex_lock(&lock);
	int f = take(OP_READ, &delay);
	pthread_mutex_unlock(&lock);
	if (delay)
		sleep_ms(delay);
	if (fault_errno(f))
		return fault_errno(f);
	pthread_mutex_lock(&lock);
	n_reads++;
	size_t c = 0;
	if ((size_t)off < size)
		c = size - (size_t)off < len ? size - (size_t)off : len;
	if (f == F_SHORT && c > 1)
		c = c >= 1024 ? (c / 2) & ~(size_t)511 : c / 2;
	memcpy(buf, cur + off, c);
	pthread_mutex_unlock(&lock);
	return (int)c;
}

static int fd_write(const char *path, const char *buf, size_t len, off_t off,
		    struct fuse_file_info *fi)
{
	unsigned delay;
	(void)fi;
	if (!strcmp(path, "/ctl")) {
		char text[512];
		size_t c = len < sizeof(text) - 1 ? len : sizeof(text) - 1;
		memcpy(text, buf, c);
		text[c] = 0;
		int rc = 0;
		pthread_mutex_lock(&lock);
		char *save = NULL;
		for (char *l = strtok_r(text, "\n", &save); l && !rc; l = strtok_r(NULL, "\n", &save))
			rc = command(l);
		pthread_mutex_unlock(&lock);
		return rc ? rc : (int)len;
	}
	pthread_mutex_lock(&lock);
	int f = take(OP_WRITE, &delay);
	pthread_mutex_unlock(&lock);
	if (delay)
		sleep_ms(delay);
	if (fault_errno(f))
		return fault_errno(f);
	if ((size_t)off >= cap || len > cap - (size_t)off)
		return -EFBIG;
	if (f == F_SHORT && len > 1)
		len = len >= 1024 ? (len / 2) & ~(size_t)511 : len / 2;
	pthread_mutex_lock(&lock);
	n_writes++;
	memcpy(cur + off, buf, len);
	if ((size_t)off + len > size)
		size = (size_t)off + len;
	dirty += len;
	pthread_mutex_unlock(&lock);
	return (int)len;
}

static int fd_truncate(const char *path, off_t len, struct fuse_file_info *fi)
{
	(void)fi;
	if (strcmp(path, "/disk.img"))
		return strcmp(path, "/ctl") ? -ENOENT : 0;
	if (len < 0 || (size_t)len > cap)
		return -EFBIG;
	pthread_mutex_lock(&lock);
	/* Metadata is journaled here: a truncate is durable at once. */
	if ((size_t)len < size) {
		memset(cur + len, 0, size - (size_t)len);
		memset(dur + len, 0, cap - (size_t)len);
	}
	size = dur_size = (size_t)len;
	pthread_mutex_unlock(&lock);
	return 0;
}

static int fd_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	unsigned delay;
	(void)fi;
	if (strcmp(path, "/disk.img"))
		return 0;
	pthread_mutex_lock(&lock);
	int f = take(OP_FSYNC, &delay);
	pthread_mutex_unlock(&lock);
	if (delay)
		sleep_ms(delay);
	if (fault_errno(f))
		return fault_errno(f);
	pthread_mutex_lock(&lock);
	memcpy(dur, cur, cap);
	dur_size = size;
	dirty = 0;
	if (datasync)
		n_fdatasyncs++;
	else
		n_fsyncs++;
	pthread_mutex_unlock(&lock);
	return 0;
}

/* close(): not a sync (a disk does not persist on close either). */
static int fd_flush(const char *path, struct fuse_file_info *fi)
{
	(void)path, (void)fi;
	return 0;
}

static int fd_fallocate(const char *path, int mode, off_t off, off_t len, struct fuse_file_info *fi)
{
	(void)fi;
	if (strcmp(path, "/disk.img"))
		return -EOPNOTSUPP;
	if (!(mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)))
		return -EOPNOTSUPP;
	if (off < 0 || len < 0 || (size_t)off > cap || (size_t)len > cap - (size_t)off)
		return -EFBIG;
	pthread_mutex_lock(&lock);
	memset(cur + off, 0, (size_t)len);
	dirty += (uint64_t)len;
	pthread_mutex_unlock(&lock);
	return 0;
}

static const struct fuse_operations ops = {
	.init = fd_init,
	.getattr = fd_getattr,
	.readdir = fd_readdir,
	.open = fd_open,
	.read = fd_read,
	.write = fd_write,
	.truncate = fd_truncate,
	.fsync = fd_fsync,
	.flush = fd_flush,
	.fallocate = fd_fallocate,
};

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: fusedisk SIZE MOUNTPOINT [fuse options]\n");
		return 2;
	}
	size = dur_size = (size_t)strtoull(argv[1], NULL, 0);
	cap = size * 2;
	cur = calloc(1, cap);
	dur = calloc(1, cap);
	if (!size || !cur || !dur) {
		fprintf(stderr, "fusedisk: bad size or out of memory\n");
		return 2;
	}
	char *fargv[16];
	int fargc = 0;
	fargv[fargc++] = argv[0];
	fargv[fargc++] = "-f";
	fargv[fargc++] = "-o";
	fargv[fargc++] = "max_threads=16";
	for (int i = 3; i < argc && fargc < 14; i++)
		fargv[fargc++] = argv[i];
	fargv[fargc++] = argv[2];
	fargv[fargc] = NULL;
	int rc = fuse_main(fargc, fargv, &ops, NULL);
	free(cur);
	free(dur);
	return rc;
}
