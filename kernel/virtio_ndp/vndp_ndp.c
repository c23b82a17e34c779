// SPDX-License-Identifier: (GPL-2.0 OR MIT)
/*
 * virtio_ndp's NDP control requests: PROBE at device probe, and LOAD,
 * UNLOAD, REG_MEM, UNREG_MEM for an open file, which owns what it creates.
 * Every argument is copied from user space once, checked, then sent; the
 * device's answers are clamped before anything is sized by them.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/virtio_config.h>

#include "vndp.h"

/* Everything small the device reads or writes for one control request. */
struct vndp_ctl {
	struct virtio_blk_outhdr hdr;
	union {
		struct rb_ndp_load load;
		struct rb_ndp_unload unload;
		struct rb_ndp_reg_mem reg;
		struct rb_ndp_unreg_mem unreg;
		struct rb_ndp_reg_file reg_file;
		struct rb_ndp_unreg_file unreg_file;
	} in;
	union {
		struct rb_ndp_probe probe;
		struct rb_ndp_load_result load;
		struct rb_ndp_reg_result reg;
		u32 status;
	} out;
};

static struct vndp_ctl *vndp_ctl_new(struct vndp_disk *vd, u32 type)
{
	struct vndp_ctl *c = kzalloc(sizeof(*c), GFP_KERNEL);

	if (c)
		c->hdr.type = cpu_to_virtio32(vd->vdev, type);
	return c;
}

/*
 * Sends header + in_len bytes of c->in, gets out_len bytes of c->out back.
 * 0, or -errno: -EOPNOTSUPP when the device does not serve the type, -EIO
 * when it failed the request.
 */
static int vndp_ctl_exec(struct vndp_disk *vd, struct vndp_ctl *c,
			 size_t in_len, size_t out_len)
{
	struct scatterlist out[2], in[1];
	int st;

	sg_init_table(out, in_len ? 2 : 1);
	sg_set_buf(&out[0], &c->hdr, sizeof(c->hdr));
	if (in_len)
		sg_set_buf(&out[1], &c->in, in_len);
	sg_init_one(in, &c->out, out_len);
	st = vndp_exec_sync(vd, out, in, true);
	return st < 0 ? st : vndp_blk_errno(st);
}

int vndp_ndp_probe(struct vndp_disk *vd)
{
	struct rb_ndp_probe *p;
	struct vndp_ctl *c;
	int err;

	vd->ndp = false;
	c = vndp_ctl_new(vd, RB_NDP_T_PROBE);
	if (!c)
		return -ENOMEM;
	err = vndp_ctl_exec(vd, c, 0, sizeof(c->out.probe));
	if (err == -EOPNOTSUPP || err == -EIO) {
		/* A plain virtio-blk device: UNSUPP (or IOERR). */
		err = 0;
		goto out;
	}
	if (err)
		goto out;
	p = &c->out.probe;
	if (vndp_le32(p->magic) != RB_NDP_MAGIC ||
	    vndp_le32(p->version) != RB_NDP_VERSION)
		goto out;
	/* Our buffers are sized by these: never beyond the wire format's. */
	vd->probe.magic = RB_NDP_MAGIC;
	vd->probe.version = RB_NDP_VERSION;
	vd->probe.max_programs = vndp_le32(p->max_programs);
	vd->probe.max_elf_bytes = min(vndp_le32(p->max_elf_bytes),
				      RB_NDP_MAX_ELF_BYTES);
	vd->probe.max_meta = min(vndp_le32(p->max_meta), RB_NDP_MAX_META);
	vd->probe.max_scratch = min(vndp_le32(p->max_scratch),
				    RB_NDP_MAX_SCRATCH);
	vd->probe.max_data = min(vndp_le32(p->max_data), RB_NDP_MAX_DATA);
	vd->probe.max_hops = min(vndp_le32(p->max_hops), RB_NDP_MAX_HOPS);
	vd->probe.prog_types = vndp_le32(p->prog_types);
	vd->probe.caps = vndp_le32(p->caps);
	vd->probe.max_files = min(vndp_le32(p->max_files), RB_NDP_MAX_FILES);
	vd->probe.max_extents = min(vndp_le32(p->max_extents),
				    RB_NDP_MAX_EXTENTS);
	if (!vd->probe.max_files || !vd->probe.max_extents)
		vd->probe.caps &= ~RB_NDP_CAP_FILES;
	vd->ndp = true;
out:
	kfree(c);
	return err;
}

/* ---- ownership lists ---------------------------------------------------- */

static struct vndp_owned *vndp_owned_take(struct vndp_file *f,
					  struct list_head *list,
					  unsigned int *count, u32 id)
{
	struct vndp_owned *o;

	mutex_lock(&f->lock);
	list_for_each_entry(o, list, node) {
		if (o->id == id) {
			list_del(&o->node);
			(*count)--;
			mutex_unlock(&f->lock);
			return o;
		}
	}
	mutex_unlock(&f->lock);
	return NULL;
}

static void vndp_owned_put(struct vndp_file *f, struct list_head *list,
			   unsigned int *count, struct vndp_owned *o)
{
	mutex_lock(&f->lock);
	list_add(&o->node, list);
	(*count)++;
	mutex_unlock(&f->lock);
}

/* Reserves a slot (so a file cannot own more than VNDP_MAX_OWNED). */
static struct vndp_owned *vndp_owned_reserve(struct vndp_file *f,
					     unsigned int *count)
{
	struct vndp_owned *o = NULL;

	mutex_lock(&f->lock);
	if (*count < VNDP_MAX_OWNED) {
		o = kzalloc(sizeof(*o), GFP_KERNEL);
		if (o)
			(*count)++;
	}
	mutex_unlock(&f->lock);
	return o;
}

static void vndp_owned_unreserve(struct vndp_file *f, unsigned int *count,
				 struct vndp_owned *o)
{
	mutex_lock(&f->lock);
	(*count)--;
	mutex_unlock(&f->lock);
	kfree(o);
}

static void vndp_owned_commit(struct vndp_file *f, struct list_head *list,
			      struct vndp_owned *o, u32 id)
{
	o->id = id;
	mutex_lock(&f->lock);
	list_add(&o->node, list);
	mutex_unlock(&f->lock);
}

/* Takes the gate for a call that needs an NDP device. */
static int vndp_enter_ndp(struct vndp_disk *vd)
{
	down_read(&vd->gate);
	if (vd->dead) {
		up_read(&vd->gate);
		return -ENODEV;
	}
	if (!vd->ndp) {
		up_read(&vd->gate);
		return -EOPNOTSUPP;
	}
	return 0;
}

/* ---- LOAD / UNLOAD ------------------------------------------------------ */

struct vndp_load_bufs {
	struct vndp_ctl *c;
	void *elf;
	size_t elf_len;
	char *log;
	struct scatterlist *sg;
};

static void vndp_load_free(struct vndp_load_bufs *b)
{
	kfree(b->sg);
	kfree(b->log);
	if (b->elf)
		free_pages_exact(b->elf, b->elf_len);
	kfree(b->c);
}

/* Sends a LOAD built in b; the ELF is one contiguous buffer. */
static int vndp_load_send(struct vndp_disk *vd, struct vndp_load_bufs *b,
			  u32 log_len)
{
	unsigned int nelf = DIV_ROUND_UP(b->elf_len, vd->seg_bytes);
	unsigned int i, nout = 2 + nelf, nin = log_len ? 2 : 1;
	struct scatterlist *out, *in;
	size_t off;
	int st;

	/* With the status byte; only a device with a small size_max. */
	if (nout + nin + 1 > vd->ring)
		return -E2BIG;
	b->sg = kcalloc(nout + nin, sizeof(*b->sg), GFP_KERNEL);
	if (!b->sg)
		return -ENOMEM;
	out = b->sg;
	in = b->sg + nout;
	sg_init_table(out, nout);
	sg_init_table(in, nin);
	sg_set_buf(&out[0], &b->c->hdr, sizeof(b->c->hdr));
	sg_set_buf(&out[1], &b->c->in.load, sizeof(b->c->in.load));
	for (i = 0, off = 0; i < nelf; i++, off += vd->seg_bytes)
		sg_set_buf(&out[2 + i], b->elf + off,
			   min_t(size_t, vd->seg_bytes, b->elf_len - off));
	sg_set_buf(&in[0], &b->c->out.load, sizeof(b->c->out.load));
	if (log_len)
		sg_set_buf(&in[1], b->log, log_len);
	st = vndp_exec_sync(vd, out, in, true);
	return st < 0 ? st : vndp_blk_errno(st);
}

long vndp_ioc_load(struct vndp_file *f, void __user *arg)
{
	struct vndp_disk *vd = f->vd;
	struct vndp_load_bufs b = {};
	struct vndp_load a;
	struct vndp_owned *o;
	u32 log_len, written = 0;
	long err;

	if (copy_from_user(&a, arg, sizeof(a)))
		return -EFAULT;
	if (a.flags || a.reserved || !a.elf_len || !a.section[0] ||
	    !memchr(a.section, 0, sizeof(a.section)))
		return -EINVAL;
	if (a.log_len > VNDP_LOG_MAX)
		return -E2BIG;
	log_len = a.log_ptr ? a.log_len : 0;

	/* vd->ndp and vd->probe are set at probe and never change. */
	if (READ_ONCE(vd->dead))
		return -ENODEV;
	if (!vd->ndp)
		return -EOPNOTSUPP;
	if (a.elf_len > vd->probe.max_elf_bytes)
		return -E2BIG;
	if (a.prog_type < RB_NDP_PROG_SQ || a.prog_type > 31 ||
	    !(vd->probe.prog_types & (1u << a.prog_type)))
		return -EINVAL;

	/*
	 * The object is copied before the gate is taken: a fault on user
	 * memory may take as long as user space likes (userfaultfd, FUSE),
	 * and remove must never wait for it.
	 */
	err = -ENOMEM;
	b.c = vndp_ctl_new(vd, RB_NDP_T_LOAD);
	b.elf_len = a.elf_len;
	b.elf = alloc_pages_exact(b.elf_len, GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (log_len)
		b.log = kzalloc(log_len, GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (!b.c || !b.elf || (log_len && !b.log))
		goto out_free_bufs;
	err = -EFAULT;
	if (copy_from_user(b.elf, u64_to_user_ptr(a.elf_ptr), a.elf_len))
		goto out_free_bufs;
	b.c->in.load.prog_type = vndp_le32(a.prog_type);
	b.c->in.load.elf_len = vndp_le32(a.elf_len);
	memcpy(b.c->in.load.section, a.section, sizeof(a.section));

	err = vndp_enter_ndp(vd);
	if (err)
		goto out_free_bufs;
	o = vndp_owned_reserve(f, &f->nprogs);
	if (!o) {
		err = -ENOSPC;
		goto out_gate;
	}
	err = vndp_load_send(vd, &b, log_len);
	if (err)
		goto out_unreserve;
	a.status = vndp_le32(b.c->out.load.status);
	a.handle = 0;
	if (log_len) {
		written = min(vndp_le32(b.c->out.load.log_len), log_len);
		if (written)
			b.log[written - 1] = '\0';
	}
	a.log_written = written;
	if (a.status == RB_NDP_S_OK) {
		a.handle = vndp_le32(b.c->out.load.handle);
		vndp_owned_commit(f, &f->progs, o, a.handle);
		o = NULL;
	}
out_unreserve:
	if (o)
		vndp_owned_unreserve(f, &f->nprogs, o);
out_gate:
	up_read(&vd->gate);
	if (!err) {
		/* The program stays this file's even if these copies fail. */
		if (written && copy_to_user(u64_to_user_ptr(a.log_ptr), b.log,
					    written))
			err = -EFAULT;
		else if (copy_to_user(arg, &a, sizeof(a)))
			err = -EFAULT;
	}
out_free_bufs:
	vndp_load_free(&b);
	return err;
}

static int vndp_send_unload(struct vndp_disk *vd, u32 handle, u32 *status)
{
	struct vndp_ctl *c = vndp_ctl_new(vd, RB_NDP_T_UNLOAD);
	int err;

	if (!c)
		return -ENOMEM;
	c->in.unload.handle = vndp_le32(handle);
	err = vndp_ctl_exec(vd, c, sizeof(c->in.unload), sizeof(c->out.status));
	*status = vndp_le32(c->out.status);
	kfree(c);
	return err;
}

long vndp_ioc_unload(struct vndp_file *f, void __user *arg)
{
	struct vndp_disk *vd = f->vd;
	struct vndp_unload a;
	struct vndp_owned *o;
	long err;

	if (copy_from_user(&a, arg, sizeof(a)))
		return -EFAULT;
	if (a.flags || a.reserved)
		return -EINVAL;
	err = vndp_enter_ndp(vd);
	if (err)
		return err;
	o = vndp_owned_take(f, &f->progs, &f->nprogs, a.handle);
	if (!o) {
		err = -ENOENT;
		goto out;
	}
	err = vndp_send_unload(vd, a.handle, &a.status);
	if (err)
		vndp_owned_put(f, &f->progs, &f->nprogs, o);
	else
		kfree(o); /* OK, or NO_PROGRAM: gone either way */
out:
	up_read(&vd->gate);
	if (!err && copy_to_user(arg, &a, sizeof(a)))
		err = -EFAULT;
	return err;
}

/* ---- REG_MEM / UNREG_MEM ------------------------------------------------ */

long vndp_ioc_reg_mem(struct vndp_file *f, void __user *arg)
{
	struct vndp_disk *vd = f->vd;
	struct vndp_reg_mem a;
	struct vndp_owned *o;
	struct vndp_dma *dma;
	struct vndp_ctl *c;
	unsigned int ci;
	long err;

	if (copy_from_user(&a, arg, sizeof(a)))
		return -EFAULT;
	if (a.flags || a.reserved || !a.len)
		return -EINVAL;
	if (a.len > RB_NDP_MAX_REGION_BYTES)
		return -E2BIG;
	err = vndp_enter_ndp(vd);
	if (err)
		return err;
	/* Pairs with smp_store_release() in vndp_ioc_dma_alloc(). */
	dma = smp_load_acquire(&f->dma);
	err = -EINVAL;
	if (!vndp_dma_range_ok(dma, a.dma_off, a.len))
		goto out_gate;
	/* One guest-physical range: inside one chunk. */
	ci = a.dma_off >> dma->chunk_shift;
	if (ci != (a.dma_off + a.len - 1) >> dma->chunk_shift)
		goto out_gate;
	o = vndp_owned_reserve(f, &f->nkeys);
	err = -ENOSPC;
	if (!o)
		goto out_gate;
	c = vndp_ctl_new(vd, RB_NDP_T_REG_MEM);
	err = -ENOMEM;
	if (!c)
		goto out_unreserve;
	c->in.reg.gpa = vndp_le64(page_to_phys(dma->chunk[ci].page) +
				  (a.dma_off & ((1ull << dma->chunk_shift) - 1)));
	c->in.reg.len = vndp_le64(a.len);
	err = vndp_ctl_exec(vd, c, sizeof(c->in.reg), sizeof(c->out.reg));
	if (err)
		goto out_free;
	a.status = vndp_le32(c->out.reg.status);
	a.key = 0;
	if (a.status == RB_NDP_S_OK) {
		a.key = vndp_le32(c->out.reg.key);
		vndp_owned_commit(f, &f->keys, o, a.key);
		o = NULL;
	}
out_free:
	kfree(c);
out_unreserve:
	if (o)
		vndp_owned_unreserve(f, &f->nkeys, o);
out_gate:
	up_read(&vd->gate);
	if (!err && copy_to_user(arg, &a, sizeof(a)))
		err = -EFAULT;
	return err;
}

static int vndp_send_unreg(struct vndp_disk *vd, u32 key, u32 *status)
{
	struct vndp_ctl *c = vndp_ctl_new(vd, RB_NDP_T_UNREG_MEM);
	int err;

	if (!c)
		return -ENOMEM;
	c->in.unreg.key = vndp_le32(key);
	err = vndp_ctl_exec(vd, c, sizeof(c->in.unreg), sizeof(c->out.status));
	*status = vndp_le32(c->out.status);
	kfree(c);
	return err;
}

long vndp_ioc_unreg_mem(struct vndp_file *f, void __user *arg)
{
	struct vndp_disk *vd = f->vd;
	struct vndp_reg_mem a;
	struct vndp_owned *o;
	long err;

	if (copy_from_user(&a, arg, sizeof(a)))
		return -EFAULT;
	if (a.flags || a.reserved)
		return -EINVAL;
	err = vndp_enter_ndp(vd);
	if (err)
		return err;
	o = vndp_owned_take(f, &f->keys, &f->nkeys, a.key);
	if (!o) {
		err = -ENOENT;
		goto out;
	}
	err = vndp_send_unreg(vd, a.key, &a.status);
	if (err)
		vndp_owned_put(f, &f->keys, &f->nkeys, o);
	else
		kfree(o);
out:
	up_read(&vd->gate);
	if (!err && copy_to_user(arg, &a, sizeof(a)))
		err = -EFAULT;
	return err;
}

/* ---- REG_FILE / UNREG_FILE (the file logic is vndp_file.c's) ----------- */

/*
 * Scatterlist entries for [buf, buf + len) of kvmalloc'd memory: per page
 * when it is vmalloc'd, else pieces of at most seg_bytes.  Returns the
 * number used or -E2BIG.
 */
static int vndp_kv_sg(void *buf, size_t len, unsigned int seg_bytes,
		      struct scatterlist *sg, unsigned int max)
{
	bool vm = is_vmalloc_addr(buf);
	unsigned int n = 0;

	while (len) {
		size_t piece = vm ? min_t(size_t, len,
					  PAGE_SIZE - offset_in_page(buf)) :
				    min_t(size_t, len, seg_bytes);

		if (n == max)
			return -E2BIG;
		if (vm)
			sg_set_page(&sg[n++], vmalloc_to_page(buf), piece,
				    offset_in_page(buf));
		else
			sg_set_buf(&sg[n++], buf, piece);
		buf += piece;
		len -= piece;
	}
	return n;
}

/*
 * REG_FILE of n extents (little-endian already, kvmalloc'd); with the
 * disk's gate held.  0 with *status (and *key when OK), or -errno.
 */
int vndp_send_reg_file(struct vndp_disk *vd, u64 size,
		       struct rb_ndp_extent *ext, u32 n, u32 *status, u32 *key)
{
	size_t bytes = (size_t)n * sizeof(*ext);
	unsigned int max = vd->ring > 3 ? vd->ring - 3 : 0, used;
	struct scatterlist *out, in[1];
	struct vndp_ctl *c;
	int err;

	c = vndp_ctl_new(vd, RB_NDP_T_REG_FILE);
	out = kcalloc(max + 2, sizeof(*out), GFP_KERNEL);
	err = -ENOMEM;
	if (!c || !out)
		goto out;
	sg_init_table(out, max + 2);
	sg_set_buf(&out[0], &c->hdr, sizeof(c->hdr));
	c->in.reg_file.file_size = vndp_le64(size);
	c->in.reg_file.n_extents = vndp_le32(n);
	sg_set_buf(&out[1], &c->in.reg_file, sizeof(c->in.reg_file));
	/* The chain, with the reply and the status byte, fits the ring. */
	err = vndp_kv_sg(ext, bytes, vd->seg_bytes, out + 2, max);
	if (err < 0)
		goto out;
	used = err;
	sg_mark_end(&out[used + 1]);
	sg_init_one(in, &c->out.reg, sizeof(c->out.reg));
	err = vndp_exec_sync(vd, out, in, true);
	if (err >= 0)
		err = vndp_blk_errno(err);
	if (!err) {
		*status = vndp_le32(c->out.reg.status);
		*key = vndp_le32(c->out.reg.key);
	}
out:
	kfree(out);
	kfree(c);
	return err;
}

int vndp_send_unreg_file(struct vndp_disk *vd, u32 key, u32 *status)
{
	struct vndp_ctl *c = vndp_ctl_new(vd, RB_NDP_T_UNREG_FILE);
	int err;

	if (!c)
		return -ENOMEM;
	c->in.unreg_file.key = vndp_le32(key);
	err = vndp_ctl_exec(vd, c, sizeof(c->in.unreg_file),
			    sizeof(c->out.status));
	*status = vndp_le32(c->out.status);
	kfree(c);
	return err;
}

/*
 * Unloads every program and unregisters every range f owns, on a live NDP
 * device, with vd->gate held (for write, or for read by f's release).
 * Returns true when a range may still be registered (the device failed
 * the UNREG), so the area must never be freed.
 */
static bool vndp_ndp_drop(struct vndp_file *f, bool live)
{
	struct vndp_disk *vd = f->vd;
	struct vndp_owned *o, *t;
	bool registered = false;
	u32 st;

	list_for_each_entry_safe(o, t, &f->progs, node) {
		if (live && vndp_send_unload(vd, o->id, &st))
			pr_warn("%s: could not unload program %u\n", vd->name,
				o->id);
		list_del(&o->node);
		kfree(o);
	}
	list_for_each_entry_safe(o, t, &f->keys, node) {
		if (live && vndp_send_unreg(vd, o->id, &st))
			registered = true;
		list_del(&o->node);
		kfree(o);
	}
	f->nprogs = 0;
	f->nkeys = 0;
	vndp_files_drop(f, live);
	return registered;
}

/*
 * Release: what the file still owns goes (unless remove took it already),
 * and the file leaves the disk's list.  Returns true when the DMA area
 * must not be freed.
 */
bool vndp_ndp_release(struct vndp_file *f)
{
	struct vndp_disk *vd = f->vd;

	down_read(&vd->gate);
	if (vndp_ndp_drop(f, !vd->dead && vd->ndp))
		f->dma_pinned = true;
	spin_lock(&vd->files_lock);
	list_del(&f->node);
	spin_unlock(&vd->files_lock);
	up_read(&vd->gate);
	return f->dma_pinned;
}

/*
 * Remove, with vd->gate held for write and dead set, before the queue goes:
 * the device keeps programs and registered memory across a reset, so every
 * open file's are given back now (requests still in flight keep what they
 * use on the device; the DMA area itself lives until the file's release).
 * Pollers are woken to see the disk gone.
 */
void vndp_ndp_remove(struct vndp_disk *vd)
{
	struct vndp_file *f;

	lockdep_assert_held_write(&vd->gate);
	list_for_each_entry(f, &vd->files, node) {
		if (vndp_ndp_drop(f, vd->ndp))
			f->dma_pinned = true;
		wake_up(&f->wq);
	}
}
