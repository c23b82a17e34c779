/* SPDX-License-Identifier: MIT */
/*
 * librosen's `pci:BDF` transport: drives a modern virtio-pci block device
 * inside a VM from user space, once the admin has bound it to
 * uio_pci_generic (scripts/uio-bind.sh).  BARs are mapped through sysfs, DMA
 * memory comes from 2 MiB hugepages translated with /proc/self/pagemap, and
 * queues are polled with interrupts off.  It never binds or unbinds drivers,
 * and never uses a value read from config space or a BAR before checking it.
 */
#include "guest_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#endif
#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB (21 << MAP_HUGE_SHIFT)
#endif

#define SYSFS_PCI "/sys/bus/pci/devices"

#define HP_SHIFT 21u
#define HP_SIZE (1ul << HP_SHIFT)

/* PCI configuration space (type 0 header). */
#define PCI_CFG_SIZE 256u
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_STATUS 0x06
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_SUBSYSTEM_ID 0x2e
#define PCI_CAPABILITY_LIST 0x34
#define PCI_CAP_ID_VNDR 0x09
#define PCI_NUM_BARS 6u
#define PCI_MAX_CAPS 48u /* (256 - 64) / 4: more means the list loops */

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEV_BLK_MODERN 0x1042
#define VIRTIO_PCI_DEV_BLK_TRANSITIONAL 0x1001
#define VIRTIO_ID_BLOCK 2

/* struct virtio_pci_cap and its cfg_type values. */
#define VIRTIO_PCI_CAP_LEN 16u
#define VIRTIO_PCI_NOTIFY_CAP_LEN 20u
enum { CAP_COMMON = 1, CAP_NOTIFY = 2, CAP_ISR = 3, CAP_DEVICE = 4, CAP_NTYPES = 5 };

/* struct virtio_pci_common_cfg: offsets. */
#define COMMON_DFSELECT 0x00
#define COMMON_DF 0x04
#define COMMON_GFSELECT 0x08
#define COMMON_GF 0x0c
#define COMMON_MSIX 0x10
#define COMMON_NUMQ 0x12
#define COMMON_STATUS 0x14
#define COMMON_CFGGENERATION 0x15
#define COMMON_Q_SELECT 0x16
#define COMMON_Q_SIZE 0x18
#define COMMON_Q_MSIX 0x1a
#define COMMON_Q_ENABLE 0x1c
#define COMMON_Q_NOFF 0x1e
#define COMMON_Q_DESCLO 0x20
#define COMMON_Q_DESCHI 0x24
#define COMMON_Q_AVAILLO 0x28
#define COMMON_Q_AVAILHI 0x2c
#define COMMON_Q_USEDLO 0x30
#define COMMON_Q_USEDHI 0x34
#define COMMON_MIN_LEN 0x38

#define VIRTIO_NO_VECTOR 0xffff

#define STATUS_ACKNOWLEDGE 1
#define STATUS_DRIVER 2
#define STATUS_DRIVER_OK 4
#define STATUS_FEATURES_OK 8
#define STATUS_NEEDS_RESET 0x40
#define STATUS_FAILED 0x80

#define VIRTIO_F_VERSION_1 32

#define RESET_TIMEOUT_MS 1000

struct pci_region {
	volatile uint8_t *p; /* NULL: the device has no such structure */
	uint32_t len;
};

struct virtio_cap_loc {
	bool found;
	uint8_t bar;
	uint8_t pos; /* where in config space, for messages */
	uint32_t offset, length;
	uint32_t notify_mult; /* CAP_NOTIFY only */
};

struct rb_pci {
	char bdf[16];
	int cfg_fd;
	uint8_t *bar[PCI_NUM_BARS];
	size_t bar_map_len[PCI_NUM_BARS];
	uint64_t bar_size[PCI_NUM_BARS]; /* 0: absent or not a memory BAR */
	struct pci_region common, notify, isr, device;
	uint32_t notify_mult;
	bool started; /* device_status was written: reset it on the way out */
	/* DMA memory: hp_count hugepages, hp_phys[i] the physical address of
	 * the i-th (each one contiguous, the whole not). */
	uint8_t *dma;
	size_t dma_size;
	uint64_t *hp_phys;
	size_t hp_count;
	bool dma_inited;
};

/* ---- MMIO accessors ------------------------------------------------------
 * One access of exactly the register's width: QEMU (and real devices)
 * decode common-config registers by access size.  Offsets were checked
 * against the region length when it was mapped. */

static inline uint8_t rd8(const struct pci_region *r, unsigned off)
{
	return *(volatile uint8_t *)(r->p + off);
}

static inline uint16_t rd16(const struct pci_region *r, unsigned off)
{
	return *(volatile uint16_t *)(r->p + off);
}

static inline uint32_t rd32(const struct pci_region *r, unsigned off)
{
	return *(volatile uint32_t *)(r->p + off);
}

static inline void wr8(const struct pci_region *r, unsigned off, uint8_t v)
{
	*(volatile uint8_t *)(r->p + off) = v;
}

static inline void wr16(const struct pci_region *r, unsigned off, uint16_t v)
{
	*(volatile uint16_t *)(r->p + off) = v;
}

static inline void wr32(const struct pci_region *r, unsigned off, uint32_t v)
{
	*(volatile uint32_t *)(r->p + off) = v;
}

/* ---- Hot path ------------------------------------------------------------ */

static void pci_kick(struct rb_guest_dev *dev, unsigned q)
{
	/* The ring writes must reach memory before the device hears of them;
	 * x86 keeps stores in order, other CPUs need the fence. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	*dev->q[q].notify = (uint16_t)q;
}

static uint64_t pci_dma_addr(struct rb_guest_dev *dev, const void *p, size_t len)
{
	const struct rb_pci *pci = dev->tp;
	uintptr_t a = (uintptr_t)p, base = (uintptr_t)pci->dma;
	size_t off, last;

	if (a < base || a - base >= pci->dma_size)
		return UINT64_MAX;
	off = a - base;
	if (len > pci->dma_size - off)
		return UINT64_MAX;
	/* Hugepages are contiguous one by one, not with each other. */
	last = len ? off + len - 1 : off;
	if ((off >> HP_SHIFT) != (last >> HP_SHIFT))
		return UINT64_MAX;
	return pci->hp_phys[off >> HP_SHIFT] + (off & (HP_SIZE - 1));
}

static int pci_wait(struct rb_guest_dev *dev, unsigned q, int timeout_ms)
{
	(void)dev;
	(void)q;
	(void)timeout_ms;
	return -ENOTSUP; /* interrupts stay off (NO_VECTOR): callers poll */
}

/* ---- Pure validators ----------------------------------------------------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * "DDDD:BB:DD.F" (or "BB:DD.F", domain 0) into its canonical lower-case
 * sysfs name.  Strict, because the name becomes part of a path.
 */
static int pci_parse_bdf(const char *s, char out[16])
{
	static const char shape[] = "hhhh:hh:hh.h";
	char buf[16];
	size_t n = strlen(s);

	if (n == 7) {
		memcpy(buf, "0000:", 5);
		memcpy(buf + 5, s, 8);
	} else if (n == 12) {
		memcpy(buf, s, 13);
	} else {
		return -EINVAL;
	}
	for (unsigned i = 0; i < 12; i++) {
		if (shape[i] == 'h') {
			if (hexval(buf[i]) < 0)
				return -EINVAL;
			if (buf[i] >= 'A' && buf[i] <= 'F')
				buf[i] = (char)(buf[i] - 'A' + 'a');
		} else if (buf[i] != shape[i]) {
			return -EINVAL;
		}
	}
	/* device 0-31, function 0-7 */
	if (hexval(buf[8]) > 1 || hexval(buf[11]) > 7)
		return -EINVAL;
	memcpy(out, buf, 13);
	return 0;
}

/* One line "0xSTART 0xEND 0xFLAGS" of sysfs `resource`: size of a memory
 * BAR, 0 when it is absent or an I/O BAR (which cannot be mapped). */
static uint64_t pci_parse_resource_line(const char *line)
{
	unsigned long long start, end, flags;

	if (sscanf(line, "%llx %llx %llx", &start, &end, &flags) != 3)
		return 0;
	if (!(flags & 0x200) || end <= start) /* IORESOURCE_MEM */
		return 0;
	return (uint64_t)(end - start) + 1;
}

static bool pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/*
 * Reads the virtio_pci_cap at cfg[pos] (cfg is the whole 256-byte space).
 * 1 with *loc filled for the structures we use, 0 for one to skip (other
 * cfg_type, or a BAR number the spec reserves), -EINVAL when malformed.
 */
static int pci_parse_virtio_cap(const uint8_t *cfg, unsigned pos, struct virtio_cap_loc *loc,
				char *err, size_t errlen)
{
	unsigned cap_len, type;

	if (pos + VIRTIO_PCI_CAP_LEN > PCI_CFG_SIZE) {
		snprintf(err, errlen, "virtio capability at 0x%02x runs past config space", pos);
		return -EINVAL;
	}
	cap_len = cfg[pos + 2];
	type = cfg[pos + 3];
	if (type == 0 || type >= CAP_NTYPES)
		return 0; /* PCI_CFG (5), shared memory (8), future types */
	if (cfg[pos + 4] >= PCI_NUM_BARS)
		return 0; /* the spec says to ignore reserved BAR values */
	if (cap_len < VIRTIO_PCI_CAP_LEN || pos + cap_len > PCI_CFG_SIZE ||
	    (type == CAP_NOTIFY && cap_len < VIRTIO_PCI_NOTIFY_CAP_LEN)) {
		snprintf(err, errlen, "virtio capability type %u at 0x%02x has length %u", type, pos,
			 cap_len);
		return -EINVAL;
	}
	memset(loc, 0, sizeof(*loc));
	loc->found = true;
	loc->pos = (uint8_t)pos;
	loc->bar = cfg[pos + 4];
	memcpy(&loc->offset, cfg + pos + 8, 4);
	memcpy(&loc->length, cfg + pos + 12, 4);
	if (type == CAP_NOTIFY)
		memcpy(&loc->notify_mult, cfg + pos + 16, 4);
	return 1;
}

/*
 * Walks the capability list for the first virtio structure of each type we
 * use (the spec: the first one the driver understands wins).  The list
 * comes from the device, so the walk is bounded and every pointer checked.
 */
static int pci_walk_caps(const uint8_t *cfg, struct virtio_cap_loc found[CAP_NTYPES], char *err,
			 size_t errlen)
{
	unsigned pos, n = 0;

	memset(found, 0, sizeof(*found) * CAP_NTYPES);
	if (!(cfg[PCI_STATUS] & PCI_STATUS_CAP_LIST)) {
		snprintf(err, errlen, "the device has no PCI capability list");
		return -ENODEV;
	}
	for (pos = cfg[PCI_CAPABILITY_LIST] & ~3u; pos; pos = cfg[pos + 1] & ~3u) {
		struct virtio_cap_loc loc;
		int rc;

		if (pos < 0x40 || pos + 2 > PCI_CFG_SIZE) {
			snprintf(err, errlen, "capability pointer 0x%02x is outside the capability area",
				 pos);
			return -EINVAL;
		}
		if (++n > PCI_MAX_CAPS) {
			snprintf(err, errlen, "the capability list loops");
			return -EINVAL;
		}
		if (cfg[pos] != PCI_CAP_ID_VNDR)
			continue;
		rc = pci_parse_virtio_cap(cfg, pos, &loc, err, errlen);
		if (rc < 0)
			return rc;
		if (rc > 0 && !found[cfg[pos + 3]].found)
			found[cfg[pos + 3]] = loc;
	}
	return 0;
}

static const char *cap_name(unsigned type)
{
	static const char *const names[CAP_NTYPES] = {"?", "common", "notify", "ISR", "device"};
	return type < CAP_NTYPES ? names[type] : "?";
}

/*
 * Checks that a structure lies inside a mappable BAR, is long enough to
 * hold what we access, and is aligned for the widest access we make.
 */
static int pci_check_region(unsigned type, const struct virtio_cap_loc *loc,
			    const uint64_t bar_size[PCI_NUM_BARS], char *err, size_t errlen)
{
	static const uint32_t min_len[CAP_NTYPES] = {0, COMMON_MIN_LEN, 2, 1, 8};
	static const uint32_t align[CAP_NTYPES] = {1, 4, 2, 1, 4};
	uint64_t size = bar_size[loc->bar];

	if (!size) {
		snprintf(err, errlen, "the %s structure is in BAR %u, which is not a memory BAR",
			 cap_name(type), loc->bar);
		return -EINVAL;
	}
	if ((uint64_t)loc->offset + loc->length > size) {
		snprintf(err, errlen,
			 "the %s structure (BAR %u, offset 0x%x, length 0x%x) overruns the BAR (0x%" PRIx64
			 " bytes)",
			 cap_name(type), loc->bar, loc->offset, loc->length, size);
		return -EINVAL;
	}
	if (loc->length < min_len[type] || (loc->offset & (align[type] - 1))) {
		snprintf(err, errlen, "the %s structure (offset 0x%x, length 0x%x) is %s",
			 cap_name(type), loc->offset, loc->length,
			 loc->length < min_len[type] ? "too short" : "misaligned");
		return -EINVAL;
	}
	/* Zero, or an even power of two (spec 4.1.4.4). */
	if (type == CAP_NOTIFY && loc->notify_mult && (!pow2(loc->notify_mult) || loc->notify_mult < 2)) {
		snprintf(err, errlen, "notify_off_multiplier %u is not 0 or an even power of two",
			 loc->notify_mult);
		return -EINVAL;
	}
	return 0;
}

/* Offset of queue q's notify register in the notify region, or -1 when it
 * falls outside (queue_notify_off comes from the device). */
static int64_t pci_notify_offset(uint16_t notify_off, uint32_t mult, uint32_t region_len)
{
	uint64_t off = (uint64_t)notify_off * mult;

	if (off + 2 > region_len)
		return -1;
	return (int64_t)off;
}

/*
 * Pagemap entries of one hugepage (HP_SIZE / 4096 of them) into its physical
 * address: every page present, PFNs visible (root) and consecutive.
 */
static int pci_hp_phys(const uint64_t *ent, size_t n, uint64_t *phys, char *err, size_t errlen)
{
	const uint64_t pfn_mask = (1ull << 55) - 1;
	uint64_t pfn0 = ent[0] & pfn_mask;

	for (size_t i = 0; i < n; i++) {
		if (!(ent[i] >> 63)) {
			snprintf(err, errlen, "page %zu of a hugepage is not present", i);
			return -EFAULT;
		}
		if ((ent[i] & pfn_mask) == 0) {
			snprintf(err, errlen,
				 "/proc/self/pagemap hides physical addresses: run as root (CAP_SYS_ADMIN)");
			return -EPERM;
		}
		if ((ent[i] & pfn_mask) != pfn0 + i) {
			snprintf(err, errlen, "a hugepage is not physically contiguous");
			return -EFAULT;
		}
	}
	*phys = pfn0 << 12;
	if (*phys & (HP_SIZE - 1)) {
		snprintf(err, errlen, "hugepage at physical 0x%" PRIx64 " is not 2 MiB aligned", *phys);
		return -EFAULT;
	}
	return 0;
}

/* ---- sysfs --------------------------------------------------------------- */

static int sysfs_path(char *buf, size_t len, const char *bdf, const char *file)
{
	int n = snprintf(buf, len, SYSFS_PCI "/%s/%s", bdf, file);
	return n > 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

static int pci_check_driver(const char *bdf)
{
	char path[PATH_MAX], link[PATH_MAX];
	const char *drv;
	ssize_t n;

	if (sysfs_path(path, sizeof(path), bdf, "") < 0)
		return -ENAMETOOLONG;
	if (access(path, F_OK) < 0) {
		int e = errno;
		rb_guest_seterr("pci:%s: no such PCI device (%s: %s)", bdf, path, strerror(e));
		return -e;
	}
	if (sysfs_path(path, sizeof(path), bdf, "driver") < 0)
		return -ENAMETOOLONG;
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0) {
		rb_guest_seterr("pci:%s: the device is bound to no driver; bind it to "
				"uio_pci_generic first: scripts/uio-bind.sh %s",
				bdf, bdf);
		return -ENODEV;
	}
	link[n] = 0;
	drv = strrchr(link, '/');
	drv = drv ? drv + 1 : link;
	if (strcmp(drv, "uio_pci_generic") != 0) {
		rb_guest_seterr("pci:%s: the device is bound to %s, not uio_pci_generic; "
				"rebind it: scripts/uio-bind.sh %s",
				bdf, drv, bdf);
		return -EBUSY;
	}
	return 0;
}

static int pci_read_bar_sizes(struct rb_pci *pci)
{
	char path[PATH_MAX], line[128];
	FILE *f;

	if (sysfs_path(path, sizeof(path), pci->bdf, "resource") < 0)
		return -ENAMETOOLONG;
	f = fopen(path, "re");
	if (!f) {
		int e = errno;
		rb_guest_seterr("pci:%s: cannot read %s: %s", pci->bdf, path, strerror(e));
		return -e;
	}
	for (unsigned i = 0; i < PCI_NUM_BARS && fgets(line, sizeof(line), f); i++)
		pci->bar_size[i] = pci_parse_resource_line(line);
	fclose(f);
	return 0;
}

static int pci_map_bar(struct rb_pci *pci, unsigned bar)
{
	char path[PATH_MAX], name[16];
	size_t len;
	void *p;
	int fd;

	if (pci->bar[bar])
		return 0;
	/* The BAR size comes from the kernel, not the device: a size_t that
	 * still fits any sane BAR.  Round up: mmap covers whole pages. */
	if (pci->bar_size[bar] > SIZE_MAX / 2) {
		rb_guest_seterr("pci:%s: BAR %u is too large to map", pci->bdf, bar);
		return -EINVAL;
	}
	len = (size_t)((pci->bar_size[bar] + RB_GUEST_PAGE - 1) & ~(uint64_t)(RB_GUEST_PAGE - 1));
	snprintf(name, sizeof(name), "resource%u", bar);
	if (sysfs_path(path, sizeof(path), pci->bdf, name) < 0)
		return -ENAMETOOLONG;
	fd = open(path, O_RDWR | O_CLOEXEC | O_SYNC);
	if (fd < 0) {
		int e = errno;
		rb_guest_seterr("pci:%s: cannot open %s: %s%s", pci->bdf, path, strerror(e),
				e == EACCES || e == EPERM ? " (run as root)" : "");
		return -e;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		int e = errno;
		rb_guest_seterr("pci:%s: cannot mmap %s (%zu bytes): %s", pci->bdf, path, len,
				strerror(e));
		return -e;
	}
	pci->bar[bar] = p;
	pci->bar_map_len[bar] = len;
	return 0;
}

static int cfg_rw16(struct rb_pci *pci, unsigned off, uint16_t *v, bool write)
{
	ssize_t n = write ? pwrite(pci->cfg_fd, v, 2, off) : pread(pci->cfg_fd, v, 2, off);
	int e = n < 0 ? errno : EIO;

	if (n != 2) {
		rb_guest_seterr("pci:%s: %s config space at 0x%x failed: %s", pci->bdf,
				write ? "writing" : "reading", off, n < 0 ? strerror(e) : "short");
		return -e;
	}
	return 0;
}

/*
 * uio_pci_generic enables memory decoding but not bus mastering; without
 * it the device may not touch guest memory (QEMU even stops the device).
 */
static int pci_enable_bus_master(struct rb_pci *pci)
{
	uint16_t cmd;
	int rc = cfg_rw16(pci, PCI_COMMAND, &cmd, false);

	if (rc < 0)
		return rc;
	if ((cmd & (PCI_COMMAND_MASTER | PCI_COMMAND_MEMORY)) ==
	    (PCI_COMMAND_MASTER | PCI_COMMAND_MEMORY))
		return 0;
	cmd |= PCI_COMMAND_MASTER | PCI_COMMAND_MEMORY;
	rc = cfg_rw16(pci, PCI_COMMAND, &cmd, true);
	if (rc < 0)
		return rc;
	rc = cfg_rw16(pci, PCI_COMMAND, &cmd, false);
	if (rc < 0)
		return rc;
	if (!(cmd & PCI_COMMAND_MASTER)) {
		rb_guest_seterr("pci:%s: the bus master bit does not stick (command 0x%04x)", pci->bdf,
				cmd);
		return -EIO;
	}
	return 0;
}

/* Reads config space, checks the ids, finds and maps the virtio structures. */
static int pci_probe(struct rb_pci *pci)
{
	struct virtio_cap_loc caps[CAP_NTYPES];
	struct pci_region *regions[CAP_NTYPES] = {NULL, &pci->common, &pci->notify, &pci->isr,
						  &pci->device};
	uint8_t cfg[PCI_CFG_SIZE];
	char path[PATH_MAX], err[200];
	uint16_t vendor, device, subsys;
	ssize_t n;
	int rc;

	if (sysfs_path(path, sizeof(path), pci->bdf, "config") < 0)
		return -ENAMETOOLONG;
	pci->cfg_fd = open(path, O_RDWR | O_CLOEXEC);
	if (pci->cfg_fd < 0) {
		int e = errno;
		rb_guest_seterr("pci:%s: cannot open %s: %s%s", pci->bdf, path, strerror(e),
				e == EACCES ? " (run as root)" : "");
		return -e;
	}
	/* Two drivers resetting one device under each other's rings would
	 * corrupt both: one process at a time (released when it dies). */
	if (flock(pci->cfg_fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		rb_guest_seterr("pci:%s: %s", pci->bdf,
				e == EWOULDBLOCK ? "the device is in use by another librosen user"
						 : strerror(e));
		return e == EWOULDBLOCK ? -EBUSY : -e;
	}
	n = pread(pci->cfg_fd, cfg, sizeof(cfg), 0);
	if (n != (ssize_t)sizeof(cfg)) {
		int e = n < 0 ? errno : EACCES;

		/* Non-root readers get only the first 64 bytes. */
		rb_guest_seterr("pci:%s: reading config space: %s", pci->bdf,
				n < 0 ? strerror(e) : "only the first bytes are readable (run as root)");
		return -e;
	}
	memcpy(&vendor, cfg + PCI_VENDOR_ID, 2);
	memcpy(&device, cfg + PCI_DEVICE_ID, 2);
	memcpy(&subsys, cfg + PCI_SUBSYSTEM_ID, 2);
	if (vendor != VIRTIO_PCI_VENDOR ||
	    (device != VIRTIO_PCI_DEV_BLK_MODERN &&
	     !(device == VIRTIO_PCI_DEV_BLK_TRANSITIONAL && subsys == VIRTIO_ID_BLOCK))) {
		rb_guest_seterr("pci:%s: %04x:%04x is not a virtio-blk device (want 1af4:1042, "
				"or QEMU's -device vhost-user-blk-pci,disable-legacy=on)",
				pci->bdf, vendor, device);
		return -ENODEV;
	}

	rc = pci_walk_caps(cfg, caps, err, sizeof(err));
	if (rc < 0) {
		rb_guest_seterr("pci:%s: %s", pci->bdf, err);
		return rc;
	}
	for (unsigned t = CAP_COMMON; t < CAP_NTYPES; t++) {
		if (!caps[t].found) {
			if (t == CAP_ISR)
				continue; /* we poll: never read */
			rb_guest_seterr("pci:%s: no virtio %s capability: not a modern virtio-pci "
					"device (QEMU: disable-modern=off / disable-legacy=on)",
					pci->bdf, cap_name(t));
			return -ENODEV;
		}
	}
	rc = pci_read_bar_sizes(pci);
	if (rc < 0)
		return rc;
	for (unsigned t = CAP_COMMON; t < CAP_NTYPES; t++) {
		if (!caps[t].found)
			continue;
		rc = pci_check_region(t, &caps[t], pci->bar_size, err, sizeof(err));
		if (rc < 0) {
			rb_guest_seterr("pci:%s: capability at 0x%02x: %s", pci->bdf, caps[t].pos, err);
			return rc;
		}
		rc = pci_map_bar(pci, caps[t].bar);
		if (rc < 0)
			return rc;
		regions[t]->p = pci->bar[caps[t].bar] + caps[t].offset;
		regions[t]->len = caps[t].length;
	}
	pci->notify_mult = caps[CAP_NOTIFY].notify_mult;
	return pci_enable_bus_master(pci);
}

/* ---- Device initialisation (virtio 1.x, 3.1.1) --------------------------- */

static int pci_reset(struct rb_pci *pci)
{
	struct timespec ts = {0, 1000000};

	wr8(&pci->common, COMMON_STATUS, 0);
	/* The reset is done when the status reads back 0. */
	for (int i = 0; i < RESET_TIMEOUT_MS; i++) {
		if (rd8(&pci->common, COMMON_STATUS) == 0)
			return 0;
		nanosleep(&ts, NULL);
	}
	rb_guest_seterr("pci:%s: the device did not finish its reset within %d ms", pci->bdf,
			RESET_TIMEOUT_MS);
	return -ETIMEDOUT;
}

static void pci_set_status(struct rb_pci *pci, uint8_t bits)
{
	wr8(&pci->common, COMMON_STATUS, rd8(&pci->common, COMMON_STATUS) | bits);
}

static int pci_negotiate(struct rb_guest_dev *dev, struct rb_pci *pci)
{
	const struct pci_region *c = &pci->common;
	uint64_t offered, wanted;

	wr32(c, COMMON_DFSELECT, 0);
	offered = rd32(c, COMMON_DF);
	wr32(c, COMMON_DFSELECT, 1);
	offered |= (uint64_t)rd32(c, COMMON_DF) << 32;
	wanted = rb_guest_wanted_features(offered) & offered;
	if (!(wanted & (1ull << VIRTIO_F_VERSION_1))) {
		rb_guest_seterr("pci:%s: the device does not offer VIRTIO_F_VERSION_1 (features "
				"0x%" PRIx64 "): not a virtio 1.x device",
				pci->bdf, offered);
		return -ENOTSUP;
	}
	wr32(c, COMMON_GFSELECT, 0);
	wr32(c, COMMON_GF, (uint32_t)wanted);
	wr32(c, COMMON_GFSELECT, 1);
	wr32(c, COMMON_GF, (uint32_t)(wanted >> 32));
	pci_set_status(pci, STATUS_FEATURES_OK);
	if (!(rd8(c, COMMON_STATUS) & STATUS_FEATURES_OK)) {
		rb_guest_seterr("pci:%s: the device refused features 0x%" PRIx64
				" (offered 0x%" PRIx64 "): FEATURES_OK did not stick",
				pci->bdf, wanted, offered);
		return -ENOTSUP;
	}
	dev->features = wanted;
	return 0;
}

/* Device config into dev->cfg, consistent per config_generation.  Fields
 * beyond the device's structure stay zero. */
static int pci_read_config(struct rb_guest_dev *dev, struct rb_pci *pci)
{
	const struct pci_region *d = &pci->device;
	uint32_t n = d->len < sizeof(dev->cfg) ? d->len : (uint32_t)sizeof(dev->cfg);
	uint8_t buf[sizeof(dev->cfg)];

	for (int tries = 0;; tries++) {
		uint8_t gen = rd8(&pci->common, COMMON_CFGGENERATION);

		memset(buf, 0, sizeof(buf));
		for (uint32_t i = 0; i < n;) {
			if (i + 4 <= n) {
				uint32_t v = rd32(d, i);
				memcpy(buf + i, &v, 4);
				i += 4;
			} else {
				buf[i] = rd8(d, i);
				i++;
			}
		}
		if (rd8(&pci->common, COMMON_CFGGENERATION) == gen)
			break;
		if (tries == 100) {
			rb_guest_seterr("pci:%s: the device config keeps changing while read",
					pci->bdf);
			return -EIO;
		}
	}
	memcpy(&dev->cfg, buf, sizeof(buf));
	return 0;
}

static int pci_pick_queues(struct rb_guest_dev *dev, struct rb_pci *pci)
{
	const struct pci_region *c = &pci->common;
	unsigned dev_nq = rd16(c, COMMON_NUMQ), want_nq, want_qs, qs;

	if (dev_nq == 0) {
		rb_guest_seterr("pci:%s: the device has no virtqueues", pci->bdf);
		return -EIO;
	}
	/* Like the vhost-user transport: a zero num_queues means one, and no
	 * more than the device has virtqueues or librosen can drive. */
	dev->max_queues = 1;
	if ((dev->features & (1ull << RB_VIRTIO_BLK_F_MQ)) && dev->cfg.num_queues)
		dev->max_queues = dev->cfg.num_queues;
	if (dev->max_queues > dev_nq)
		dev->max_queues = dev_nq;
	if (dev->max_queues > RB_GUEST_MAX_QUEUES)
		dev->max_queues = RB_GUEST_MAX_QUEUES;
	want_nq = dev->opts.num_queues ? dev->opts.num_queues : dev->max_queues;
	if (want_nq > dev->max_queues) {
		rb_guest_seterr("pci:%s: %u queues asked for, the device offers %u", pci->bdf, want_nq,
				dev->max_queues);
		return -EINVAL;
	}
	want_qs = dev->opts.queue_size ? dev->opts.queue_size : 256;
	if (!pow2(want_qs) || want_qs > RB_VIRTQ_MAX_SIZE) {
		rb_guest_seterr("pci:%s: queue_size %u is not a power of two <= %u", pci->bdf, want_qs,
				RB_VIRTQ_MAX_SIZE);
		return -EINVAL;
	}
	/* Each queue's size register holds the device's maximum. */
	qs = want_qs;
	for (unsigned i = 0; i < want_nq; i++) {
		unsigned max;

		wr16(c, COMMON_Q_SELECT, (uint16_t)i);
		max = rd16(c, COMMON_Q_SIZE);
		if (max == 0) {
			rb_guest_seterr("pci:%s: virtqueue %u is not available (size 0)", pci->bdf, i);
			return -EIO;
		}
		while (max & (max - 1))
			max &= max - 1; /* split rings here: powers of two */
		if (max < qs)
			qs = max;
	}
	dev->nq = want_nq;
	dev->qsize = (uint16_t)qs;
	return 0;
}

static int pci_dma_map(struct rb_guest_dev *dev, struct rb_pci *pci)
{
	size_t bytes = dev->opts.dma_bytes ? dev->opts.dma_bytes : 64ul << 20;
	char err[160];
	uint64_t *ent;
	int fd, rc = 0;

	if (bytes > SIZE_MAX - HP_SIZE) {
		rb_guest_seterr("pci:%s: dma_bytes %zu is too large", pci->bdf, bytes);
		return -EINVAL;
	}
	bytes = (bytes + HP_SIZE - 1) & ~(HP_SIZE - 1);
	pci->hp_count = bytes >> HP_SHIFT;
	pci->dma = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB | MAP_POPULATE |
				MAP_LOCKED,
			-1, 0);
	if (pci->dma == MAP_FAILED) {
		int e = errno;
		pci->dma = NULL;
		rb_guest_seterr("pci:%s: cannot get %zu MiB of DMA memory in 2 MiB hugepages (%s); "
				"reserve them as root: echo %zu > /proc/sys/vm/nr_hugepages (or more "
				"if others use hugepages; see HugePages_Free in /proc/meminfo)",
				pci->bdf, bytes >> 20, strerror(e), pci->hp_count);
		return -e;
	}
	pci->dma_size = bytes;
	pci->hp_phys = calloc(pci->hp_count, sizeof(*pci->hp_phys));
	ent = malloc((HP_SIZE / RB_GUEST_PAGE) * sizeof(*ent));
	if (!pci->hp_phys || !ent) {
		free(ent);
		rb_guest_seterr("pci:%s: out of memory", pci->bdf);
		return -ENOMEM;
	}
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		free(ent);
		rb_guest_seterr("pci:%s: cannot open /proc/self/pagemap: %s", pci->bdf, strerror(-rc));
		return rc;
	}
	for (size_t i = 0; i < pci->hp_count && rc == 0; i++) {
		uintptr_t va = (uintptr_t)pci->dma + i * HP_SIZE;
		size_t want = (HP_SIZE / RB_GUEST_PAGE) * sizeof(*ent);
		ssize_t n = pread(fd, ent, want, (off_t)(va / RB_GUEST_PAGE * sizeof(*ent)));

		if (n != (ssize_t)want) {
			rc = n < 0 ? -errno : -EIO;
			rb_guest_seterr("pci:%s: reading /proc/self/pagemap: %s", pci->bdf,
					n < 0 ? strerror(errno) : "short read");
			break;
		}
		rc = pci_hp_phys(ent, HP_SIZE / RB_GUEST_PAGE, &pci->hp_phys[i], err, sizeof(err));
		if (rc < 0)
			rb_guest_seterr("pci:%s: DMA memory: %s", pci->bdf, err);
	}
	close(fd);
	free(ent);
	return rc;
}

static int pci_setup_queue(struct rb_guest_dev *dev, struct rb_pci *pci, unsigned i)
{
	const struct pci_region *c = &pci->common;
	struct rb_guest_queue *q = &dev->q[i];
	uint16_t noff;
	int64_t off;

	wr16(c, COMMON_Q_SELECT, (uint16_t)i);
	if (rd16(c, COMMON_Q_ENABLE)) {
		rb_guest_seterr("pci:%s: virtqueue %u is enabled right after a reset", pci->bdf, i);
		return -EIO;
	}
	wr16(c, COMMON_Q_SIZE, dev->qsize);
	wr16(c, COMMON_Q_MSIX, VIRTIO_NO_VECTOR);
	/* 64-bit registers as two 32-bit halves: what every device decodes. */
	wr32(c, COMMON_Q_DESCLO, (uint32_t)q->desc_addr);
	wr32(c, COMMON_Q_DESCHI, (uint32_t)(q->desc_addr >> 32));
	wr32(c, COMMON_Q_AVAILLO, (uint32_t)q->avail_addr);
	wr32(c, COMMON_Q_AVAILHI, (uint32_t)(q->avail_addr >> 32));
	wr32(c, COMMON_Q_USEDLO, (uint32_t)q->used_addr);
	wr32(c, COMMON_Q_USEDHI, (uint32_t)(q->used_addr >> 32));
	noff = rd16(c, COMMON_Q_NOFF);
	off = pci_notify_offset(noff, pci->notify_mult, pci->notify.len);
	if (off < 0) {
		rb_guest_seterr("pci:%s: virtqueue %u: notify offset %u * %u is outside the notify "
				"region (%u bytes)",
				pci->bdf, i, noff, pci->notify_mult, pci->notify.len);
		return -EIO;
	}
	q->notify = (volatile uint16_t *)(pci->notify.p + off);
	wr16(c, COMMON_Q_ENABLE, 1);
	return 0;
}

static void pci_free(struct rb_guest_dev *dev, struct rb_pci *pci)
{
	if (pci->started && pci->common.p) {
		/* A reset stops the device before its rings and buffers go;
		 * on failure nothing better is possible, so it is not checked. */
		wr8(&pci->common, COMMON_STATUS, 0);
		for (int i = 0; i < RESET_TIMEOUT_MS && rd8(&pci->common, COMMON_STATUS); i++)
			nanosleep(&(struct timespec){0, 1000000}, NULL);
	}
	/* Safe for queues never allocated (all NULL); before dma_fini,
	 * which the ring frees need. */
	if (pci->dma_inited) {
		rb_guest_queues_free(dev);
		rb_guest_dma_fini(dev);
	}
	for (unsigned i = 0; i < RB_GUEST_MAX_QUEUES; i++)
		dev->q[i].notify = NULL;
	if (pci->dma)
		munmap(pci->dma, pci->dma_size);
	free(pci->hp_phys);
	for (unsigned i = 0; i < PCI_NUM_BARS; i++)
		if (pci->bar[i])
			munmap(pci->bar[i], pci->bar_map_len[i]);
	if (pci->cfg_fd >= 0)
		close(pci->cfg_fd);
	free(pci);
	dev->tp = NULL;
}

static int pci_open(struct rb_guest_dev *dev, const char *addr)
{
	struct rb_pci *pci;
	int rc;

	pci = calloc(1, sizeof(*pci));
	if (!pci) {
		rb_guest_seterr("pci: out of memory");
		return -ENOMEM;
	}
	pci->cfg_fd = -1;
	dev->tp = pci;
	if (pci_parse_bdf(addr, pci->bdf) < 0) {
		rb_guest_seterr("pci:%s: not a PCI address (want DDDD:BB:DD.F, e.g. pci:0000:00:05.0)",
				addr);
		rc = -EINVAL;
		goto fail;
	}
	rc = pci_check_driver(pci->bdf);
	if (rc < 0)
		goto fail;
	rc = pci_probe(pci);
	if (rc < 0)
		goto fail;

	pci->started = true;
	rc = pci_reset(pci);
	if (rc < 0)
		goto fail;
	pci_set_status(pci, STATUS_ACKNOWLEDGE);
	pci_set_status(pci, STATUS_DRIVER);
	wr16(&pci->common, COMMON_MSIX, VIRTIO_NO_VECTOR);
	rc = pci_negotiate(dev, pci);
	if (rc < 0)
		goto fail;
	rc = pci_read_config(dev, pci);
	if (rc < 0)
		goto fail;
	rc = pci_pick_queues(dev, pci);
	if (rc < 0)
		goto fail;

	rc = pci_dma_map(dev, pci);
	if (rc < 0)
		goto fail;
	rc = rb_guest_dma_init(dev, pci->dma, pci->dma_size);
	if (rc < 0)
		goto fail;
	pci->dma_inited = true;
	rc = rb_guest_queues_alloc(dev);
	if (rc < 0)
		goto fail;
	for (unsigned i = 0; i < dev->nq; i++) {
		rc = pci_setup_queue(dev, pci, i);
		if (rc < 0)
			goto fail;
	}
	pci_set_status(pci, STATUS_DRIVER_OK);
	if ((rd8(&pci->common, COMMON_STATUS) & (STATUS_NEEDS_RESET | STATUS_DRIVER_OK)) !=
	    STATUS_DRIVER_OK) {
		rb_guest_seterr("pci:%s: the device did not start (status 0x%02x after DRIVER_OK)",
				pci->bdf, rd8(&pci->common, COMMON_STATUS));
		rc = -EIO;
		goto fail;
	}
	return 0;

fail:
	if (pci->started && pci->common.p)
		pci_set_status(pci, STATUS_FAILED);
	pci_free(dev, pci);
	return rc;
}

static void pci_close(struct rb_guest_dev *dev)
{
	if (dev->tp)
		pci_free(dev, dev->tp);
}

const struct rb_guest_transport rb_guest_pci = {
	.name = "pci",
	.open = pci_open,
	.close = pci_close,
	.kick = pci_kick,
	.wait = pci_wait,
	.dma_addr = pci_dma_addr,
};
