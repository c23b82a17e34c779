/* SPDX-License-Identifier: MIT */
/*
 * Guest memory that can shrink (--allow-unsealed-memory): a frontend that
 * hands a regular file (hugetlbfs, /dev/shm) as guest RAM and truncates it
 * makes the daemon's next access to it raise SIGBUS, which would kill every
 * VM the daemon serves.  Sealable memfds are sealed against shrinking
 * instead (mem.c); this is for memory that cannot be.
 *
 * The SIGBUS handler looks the faulting address up in a lock-free table of
 * the watched mappings.  Found: it maps anonymous zero pages over that whole
 * mapping (so the access that faulted, and every later one, reads zeros
 * and writes nowhere the guest sees), sets the VM's flag and returns; the
 * control thread then logs it and disconnects that VM only
 * (rb_vhost_server_check_memory()).  Not found: a real bug; the default
 * action runs (the daemon dies with a core, as it should).
 */
#include "vhost_internal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define WATCH_SLOTS (RB_VHOST_MAX_MEM_REGIONS * 64)

struct watch {
	_Atomic uintptr_t start; /* 0: free */
	_Atomic size_t len;
	atomic_bool *faulted;
};

static struct watch watches[WATCH_SLOTS];
static atomic_bool allowed;

/* The mapping containing addr, from a signal handler: no locks. */
static struct watch *find(uintptr_t addr)
{
	for (unsigned i = 0; i < WATCH_SLOTS; i++) {
		uintptr_t s = atomic_load_explicit(&watches[i].start, memory_order_acquire);
		if (s && addr >= s && addr - s < atomic_load_explicit(&watches[i].len, memory_order_relaxed))
			return &watches[i];
	}
	return NULL;
}

static void on_sigbus(int sig, siginfo_t *si, void *uctx)
{
	struct watch *w = find((uintptr_t)si->si_addr);
	int saved = errno;

	(void)uctx;
	if (w) {
		/* The raw syscall: mmap is not on the async-signal-safe list,
		 * the system call itself is. */
		long r = syscall(SYS_mmap, (void *)atomic_load(&w->start), atomic_load(&w->len),
				 PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (r != -1) {
			atomic_store(w->faulted, true);
			errno = saved;
			return; /* the access is retried, on the zero pages */
		}
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

int rb_vhost_allow_unsealed_memory(char *err, size_t errlen)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, NULL)) {
		snprintf(err, errlen, "sigaction(SIGBUS): %s", strerror(errno));
		return -errno;
	}
	atomic_store(&allowed, true);
	return 0;
}

bool rb_vhost_unsealed_allowed(void)
{
	return atomic_load(&allowed);
}

/* Writers (control threads) take the lock; the handler only reads, and a
 * slot becomes visible by its start, stored last. */
static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;

void rb_vhost_sigbus_watch(const struct rb_vhost_mem *mem, atomic_bool *faulted)
{
	pthread_mutex_lock(&watch_lock);
	for (unsigned r = 0, i = 0; r < mem->n && i < WATCH_SLOTS; i++) {
		struct watch *w = &watches[i];
		if (atomic_load_explicit(&w->start, memory_order_relaxed))
			continue;
		w->faulted = faulted;
		atomic_store_explicit(&w->len, mem->r[r].mmap_len, memory_order_relaxed);
		atomic_store_explicit(&w->start, (uintptr_t)mem->r[r].mmap_base, memory_order_release);
		r++;
	}
	pthread_mutex_unlock(&watch_lock);
}

void rb_vhost_sigbus_unwatch(const struct rb_vhost_mem *mem)
{
	pthread_mutex_lock(&watch_lock);
	for (unsigned r = 0; r < mem->n; r++) {
		for (unsigned i = 0; i < WATCH_SLOTS; i++) {
			struct watch *w = &watches[i];
			if (atomic_load_explicit(&w->start, memory_order_relaxed) !=
			    (uintptr_t)mem->r[r].mmap_base)
				continue;
			atomic_store_explicit(&w->start, 0, memory_order_release);
			atomic_store_explicit(&w->len, 0, memory_order_relaxed);
			break;
		}
	}
	pthread_mutex_unlock(&watch_lock);
}
