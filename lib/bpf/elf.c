/* SPDX-License-Identifier: MIT */
/*
 * ELF loader: turns one program section of a clang -target bpf object (plus
 * the .text subprograms it calls, data references rewritten) into input for
 * rb_bpf_prog_new.  Never trusts the file: each offset, size, index is checked.
 */
#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rosen/bpf.h>

/* Instructions are copied straight out of the file, which is little-endian;
 * struct rb_bpf_insn's bitfields only match that layout on such a host. */
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the ELF loader assumes a little-endian host"
#endif
_Static_assert(sizeof(struct rb_bpf_insn) == 8, "instructions are 8 bytes");

#define INSN_SIZE sizeof(struct rb_bpf_insn)
#define OP_LDDW (RB_BPF_LD | RB_BPF_IMM | RB_BPF_DW)
#define OP_CALL (RB_BPF_JMP | RB_BPF_CALL)

/* Relocation types clang emits into code sections (glibc's elf.h has the
 * same numbers as R_BPF_*; spelled out here so the meaning is visible). */
enum {
	RELOC_NONE = 0,  /* R_BPF_NONE: nothing to do */
	RELOC_LDDW = 1,  /* R_BPF_64_64: address of a symbol in an lddw pair */
	RELOC_CALL = 10, /* R_BPF_64_32: target of a local call */
};

/* .bss sizes are just numbers in the file: cap every data image so a hostile
 * object cannot make the engine allocate gigabytes.  Also keeps offsets well
 * inside the 32-bit imm of the lddw's second slot. */
#define MAX_DATA_IMAGE (64u << 20)

enum sec_role {
	SEC_OTHER,
	SEC_CODE,   /* executable PROGBITS: a program or subprograms */
	SEC_RODATA, /* .rodata, .rodata.* */
	SEC_DATA,   /* .data, .data.* */
	SEC_BSS,    /* .bss, .bss.* */
	SEC_MAPS,   /* map definitions: known only to say they are unsupported */
};

struct sec_info {
	const char *name; /* into libelf's copy of .shstrtab; NULL when invalid */
	GElf_Shdr shdr;
	enum sec_role role;
	size_t data_off;  /* data roles: where the section starts in its image */
	/* code: index of its first insn in the linked program; -1 if unlinked */
	long insn_base;
};

struct loader {
	unsigned char *copy; /* private copy: libelf wants a writable buffer */
	size_t file_len;
	Elf *elf;
	size_t n_secs;
	struct sec_info *secs;
	size_t symtab;       /* index of .symtab, 0 when there is none */
	Elf_Data *syms;
	size_t n_syms;
	char *err;
	size_t errlen;
};

/* The program being linked. */
struct linked {
	struct rb_bpf_insn *insns;
	size_t n;
	unsigned char *touched;  /* per insn: a relocation already rewrote it */
	bool uses[RB_BPF_DATA_KINDS];
};

__attribute__((format(printf, 3, 4)))
static int fail(struct loader *ld, int rc, const char *fmt, ...)
{
	va_list ap;

	if (ld->err && ld->errlen) {
		va_start(ap, fmt);
		vsnprintf(ld->err, ld->errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static const char *sec_name(const struct loader *ld, size_t idx)
{
	const char *n = idx < ld->n_secs ? ld->secs[idx].name : NULL;

	return n ? n : "<bad name>";
}

/* True when `name` is `base` or `base` followed by a ".suffix". */
static bool name_is(const char *name, const char *base)
{
	size_t n = strlen(base);

	return name && strncmp(name, base, n) == 0 &&
	       (name[n] == '\0' || name[n] == '.');
}

static enum sec_role classify(const char *name, const GElf_Shdr *sh)
{
	bool bytes = sh->sh_type == SHT_PROGBITS || sh->sh_type == SHT_NOBITS;
	bool alloc = sh->sh_flags & SHF_ALLOC;

	if ((sh->sh_flags & SHF_EXECINSTR) && sh->sh_type == SHT_PROGBITS)
		return SEC_CODE;
	if (name && (strcmp(name, ".maps") == 0 || strcmp(name, "maps") == 0 ||
		     strncmp(name, "maps/", 5) == 0))
		return SEC_MAPS;
	if (!bytes || !alloc)
		return SEC_OTHER;
	if (name_is(name, ".rodata"))
		return SEC_RODATA;
	if (name_is(name, ".data"))
		return SEC_DATA;
	if (name_is(name, ".bss"))
		return SEC_BSS;
	return SEC_OTHER;
}

static bool role_is_data(enum sec_role r)
{
	return r == SEC_RODATA || r == SEC_DATA || r == SEC_BSS;
}

static enum rb_bpf_data_kind role_kind(enum sec_role r)
{
	return r == SEC_RODATA ? RB_BPF_DATA_RODATA :
	       r == SEC_DATA   ? RB_BPF_DATA_DATA : RB_BPF_DATA_BSS;
}

/* Checks the identification bytes ourselves: libelf would accept 32-bit and
 * big-endian objects, and a precise message helps the person loading. */
static int check_ident(struct loader *ld, const unsigned char *p, size_t len)
{
	if (!p || len < EI_NIDENT)
		return fail(ld, -EINVAL,
			    "file too short to be an ELF object (%zu bytes)", len);
	if (memcmp(p, ELFMAG, SELFMAG) != 0)
		return fail(ld, -EINVAL, "not an ELF file (bad magic)");
	if (p[EI_CLASS] != ELFCLASS64)
		return fail(ld, -EINVAL,
			    "not a 64-bit ELF object (class %u); expected clang -target bpf output",
			    p[EI_CLASS]);
	if (p[EI_DATA] != ELFDATA2LSB)
		return fail(ld, -EINVAL,
			    "not a little-endian ELF object (data encoding %u)",
			    p[EI_DATA]);
	if (len < sizeof(Elf64_Ehdr))
		return fail(ld, -EINVAL,
			    "truncated ELF header (%zu bytes)", len);
	return 0;
}

static int check_ehdr(struct loader *ld)
{
	GElf_Ehdr eh;

	if (elf_kind(ld->elf) != ELF_K_ELF || !gelf_getehdr(ld->elf, &eh))
		return fail(ld, -EINVAL, "cannot read the ELF header: %s",
			    elf_errmsg(-1));
	if (eh.e_machine != EM_BPF)
		return fail(ld, -EINVAL,
			    "e_machine is %u, not EM_BPF (%u): not an eBPF object",
			    eh.e_machine, EM_BPF);
	if (eh.e_type != ET_REL)
		return fail(ld, -EINVAL,
			    "e_type is %u, not ET_REL: expected an object from clang -c",
			    eh.e_type);
	return 0;
}

/* Reads every section header once; the rest of the loader works on secs[]. */
static int read_sections(struct loader *ld)
{
	size_t shstrndx;

	if (elf_getshdrnum(ld->elf, &ld->n_secs) != 0 ||
	    elf_getshdrstrndx(ld->elf, &shstrndx) != 0)
		return fail(ld, -EINVAL, "cannot read the section headers: %s",
			    elf_errmsg(-1));
	if (ld->n_secs == 0)
		return fail(ld, -EINVAL, "object has no sections");
	ld->secs = calloc(ld->n_secs, sizeof(*ld->secs));
	if (!ld->secs)
		return fail(ld, -ENOMEM, "out of memory");
	for (size_t i = 0; i < ld->n_secs; i++) {
		struct sec_info *s = &ld->secs[i];
		Elf_Scn *scn = elf_getscn(ld->elf, i);

		s->insn_base = -1;
		if (!scn || !gelf_getshdr(scn, &s->shdr))
			return fail(ld, -EINVAL,
				    "cannot read section header %zu: %s",
				    i, elf_errmsg(-1));
		/* An index 0 "section" is the null entry: no name, no role. */
		if (i == 0)
			continue;
		s->name = elf_strptr(ld->elf, shstrndx, s->shdr.sh_name);
		s->role = classify(s->name, &s->shdr);
	}
	return 0;
}

/*
 * The bytes of section `idx` (NULL for NOBITS or empty sections).  Checks the
 * file range itself rather than relying on libelf alone, so the message says
 * which section is cut off.
 */
static int sec_bytes(struct loader *ld, size_t idx, const void **bytes,
		     size_t *size)
{
	const GElf_Shdr *sh = &ld->secs[idx].shdr;
	Elf_Scn *scn;
	Elf_Data *d;

	*bytes = NULL;
	*size = 0;
	if (sh->sh_type == SHT_NOBITS || sh->sh_size == 0) {
		*size = sh->sh_type == SHT_NOBITS ? sh->sh_size : 0;
		return 0;
	}
	if (sh->sh_offset > ld->file_len ||
	    sh->sh_size > ld->file_len - sh->sh_offset)
		return fail(ld, -EINVAL,
			    "section '%s' (offset %#llx, size %#llx) lies beyond the end of the file (%zu bytes)",
			    sec_name(ld, idx), (unsigned long long)sh->sh_offset,
			    (unsigned long long)sh->sh_size, ld->file_len);
	scn = elf_getscn(ld->elf, idx);
	d = scn ? elf_getdata(scn, NULL) : NULL;
	if (!d || !d->d_buf || d->d_size != sh->sh_size)
		return fail(ld, -EINVAL, "cannot read section '%s': %s",
			    sec_name(ld, idx), elf_errmsg(-1));
	*bytes = d->d_buf;
	*size = d->d_size;
	return 0;
}

/* Finds the one symbol table; relocations are meaningless without it. */
static int find_symtab(struct loader *ld)
{
	const void *bytes;
	size_t size;
	Elf_Scn *scn;
	int rc;

	for (size_t i = 1; i < ld->n_secs; i++) {
		if (ld->secs[i].shdr.sh_type != SHT_SYMTAB)
			continue;
		if (ld->symtab)
			return fail(ld, -EINVAL,
				    "object has two symbol tables");
		ld->symtab = i;
	}
	if (!ld->symtab)
		return 0;
	rc = sec_bytes(ld, ld->symtab, &bytes, &size);
	if (rc)
		return rc;
	if (size % sizeof(Elf64_Sym) != 0 ||
	    size / sizeof(Elf64_Sym) > INT_MAX)
		return fail(ld, -EINVAL,
			    "symbol table size %#zx is not a whole number of symbols",
			    size);
	scn = elf_getscn(ld->elf, ld->symtab);
	ld->syms = scn ? elf_getdata(scn, NULL) : NULL;
	if (size && !ld->syms)
		return fail(ld, -EINVAL, "cannot read the symbol table: %s",
			    elf_errmsg(-1));
	ld->n_syms = size / sizeof(Elf64_Sym);
	return 0;
}

static void loader_close(struct loader *ld)
{
	if (ld->elf)
		elf_end(ld->elf);
	free(ld->copy);
	free(ld->secs);
}

static int loader_open(struct loader *ld, const void *elf, size_t len)
{
	int rc = check_ident(ld, elf, len);

	if (rc)
		return rc;
	if (elf_version(EV_CURRENT) == EV_NONE)
		return fail(ld, -EINVAL,
			    "libelf is unusable: %s", elf_errmsg(-1));
	ld->copy = malloc(len);
	if (!ld->copy)
		return fail(ld, -ENOMEM,
			    "out of memory copying a %zu-byte object",
			    len);
	memcpy(ld->copy, elf, len);
	ld->file_len = len;
	ld->elf = elf_memory((char *)ld->copy, len);
	if (!ld->elf)
		return fail(ld, -EINVAL, "libelf rejects the object: %s",
			    elf_errmsg(-1));
	rc = check_ehdr(ld);
	if (!rc)
		rc = read_sections(ld);
	if (!rc)
		rc = find_symtab(ld);
	return rc;
}

/* Fetches relocation symbol `symi` and checks the section it lives in. */
static int get_sym(struct loader *ld, size_t symi, GElf_Sym *sym,
		   const char **name)
{
	const char *n = NULL;

	if (!ld->syms)
		return fail(ld, -EINVAL, "relocations but no symbol table");
	if (symi == 0 || symi >= ld->n_syms)
		return fail(ld, -EINVAL,
			    "relocation refers to symbol %zu; the table has %zu",
			    symi, ld->n_syms);
	if (!gelf_getsym(ld->syms, (int)symi, sym))
		return fail(ld, -EINVAL, "cannot read symbol %zu: %s", symi,
			    elf_errmsg(-1));
	if (sym->st_name)
		n = elf_strptr(ld->elf, ld->secs[ld->symtab].shdr.sh_link,
			       sym->st_name);
	/* Section symbols have no name of their own: use the section's. */
	if (!n || !*n)
		n = sym->st_shndx < ld->n_secs ? sec_name(ld, sym->st_shndx) : "?";
	*name = n;
	if (sym->st_shndx == SHN_UNDEF)
		return fail(ld, -EINVAL,
			    "symbol '%s' is undefined (extern functions, variables and kfuncs are not supported)",
			    n);
	if (sym->st_shndx >= SHN_LORESERVE || sym->st_shndx >= ld->n_secs)
		return fail(ld, -EINVAL,
			    "symbol '%s' has section index %#x, which is not a section of this object",
			    n, sym->st_shndx);
	return 0;
}

typedef int (*rel_fn)(struct loader *ld, size_t target, const GElf_Rel *rel,
		      void *ctx);

/*
 * Calls fn for every relocation (other than R_BPF_NONE) that applies to
 * section `target`, after checking the relocation section is one we can read
 * against our symbol table.
 */
static int for_each_rel(struct loader *ld, size_t target, rel_fn fn, void *ctx)
{
	for (size_t r = 1; r < ld->n_secs; r++) {
		const GElf_Shdr *sh = &ld->secs[r].shdr;
		const void *bytes;
		size_t size;
		Elf_Data *d;
		int rc;

		if ((sh->sh_type != SHT_REL && sh->sh_type != SHT_RELA) ||
		    sh->sh_info != target)
			continue;
		if (sh->sh_type == SHT_RELA)
			return fail(ld, -EINVAL,
				    "section '%s': RELA relocations are not supported (clang emits REL)",
				    sec_name(ld, r));
		if (sh->sh_link != ld->symtab || !ld->symtab)
			return fail(ld, -EINVAL,
				    "relocation section '%s' does not use the object's symbol table",
				    sec_name(ld, r));
		rc = sec_bytes(ld, r, &bytes, &size);
		if (rc)
			return rc;
		if (size % sizeof(Elf64_Rel) != 0 ||
		    size / sizeof(Elf64_Rel) > INT_MAX)
			return fail(ld, -EINVAL,
				    "relocation section '%s' size %#zx is not a whole number of entries",
				    sec_name(ld, r), size);
		if (!size)
			continue;
		d = elf_getdata(elf_getscn(ld->elf, r), NULL);
		if (!d)
			return fail(ld, -EINVAL, "cannot read '%s': %s",
				    sec_name(ld, r), elf_errmsg(-1));
		for (size_t i = 0; i < size / sizeof(Elf64_Rel); i++) {
			GElf_Rel rel;

			if (!gelf_getrel(d, (int)i, &rel))
				return fail(ld, -EINVAL,
					    "cannot read relocation %zu of '%s': %s",
					    i, sec_name(ld, r), elf_errmsg(-1));
			if (GELF_R_TYPE(rel.r_info) == RELOC_NONE)
				continue;
			rc = fn(ld, target, &rel, ctx);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* Where relocation `rel` of code section `sec` points: an instruction index
 * inside that section. */
static int rel_insn(struct loader *ld, size_t sec, const GElf_Rel *rel,
		    size_t *idx)
{
	uint64_t size = ld->secs[sec].shdr.sh_size;

	if (rel->r_offset % INSN_SIZE != 0 || rel->r_offset >= size)
		return fail(ld, -EINVAL,
			    "section '%s': relocation at offset %#llx is outside the section or not on an instruction",
			    sec_name(ld, sec), (unsigned long long)rel->r_offset);
	*idx = rel->r_offset / INSN_SIZE;
	return 0;
}

/* State of the pass that decides which code sections get linked. */
struct plan {
	size_t n;           /* instructions so far */
	size_t queue[64];   /* code sections whose calls are still to scan */
	size_t n_queue;
};

static int add_code_section(struct loader *ld, struct plan *p, size_t sec)
{
	struct sec_info *s = &ld->secs[sec];
	uint64_t n = s->shdr.sh_size / INSN_SIZE;

	if (s->shdr.sh_size % INSN_SIZE != 0)
		return fail(ld, -EINVAL,
			    "section '%s' size %#llx is not a multiple of 8 (one instruction)",
			    sec_name(ld, sec), (unsigned long long)s->shdr.sh_size);
	if (n > RB_BPF_MAX_INSNS - p->n)
		return fail(ld, -E2BIG,
			    "linking section '%s' makes the program longer than %u instructions",
			    sec_name(ld, sec), RB_BPF_MAX_INSNS);
	if (p->n_queue == sizeof(p->queue) / sizeof(p->queue[0]))
		return fail(ld, -E2BIG,
			    "program calls into too many code sections");
	s->insn_base = (long)p->n;
	p->n += n;
	p->queue[p->n_queue++] = sec;
	return 0;
}

/* rel_fn: links the code section a local call lands in, the first time. */
static int plan_call(struct loader *ld, size_t sec, const GElf_Rel *rel,
		     void *ctx)
{
	GElf_Sym sym;
	const char *name;
	size_t idx;
	int rc;

	if (GELF_R_TYPE(rel->r_info) != RELOC_CALL)
		return 0;
	rc = rel_insn(ld, sec, rel, &idx);
	if (!rc)
		rc = get_sym(ld, GELF_R_SYM(rel->r_info), &sym, &name);
	if (rc)
		return rc;
	if (ld->secs[sym.st_shndx].role != SEC_CODE)
		return fail(ld, -EINVAL,
			    "section '%s' insn %zu: call to '%s', which is in non-code section '%s'",
			    sec_name(ld, sec), idx, name,
			    sec_name(ld, sym.st_shndx));
	if (ld->secs[sym.st_shndx].insn_base >= 0)
		return 0;
	return add_code_section(ld, ctx, sym.st_shndx);
}

/* Lays out the program: the entry section first, then every code section
 * (normally just .text) reachable through call relocations, in the order
 * they are found. */
static int plan_code(struct loader *ld, size_t entry, size_t *n_insns)
{
	struct plan p = { 0 };
	int rc = add_code_section(ld, &p, entry);

	for (size_t q = 0; !rc && q < p.n_queue; q++)
		rc = for_each_rel(ld, p.queue[q], plan_call, &p);
	*n_insns = p.n;
	return rc;
}

/* Rewrites the lddw at `pc` (relocated against `sym`) into a reference into
 * the data image of its section's kind. */
static int reloc_lddw(struct loader *ld, struct linked *lk, size_t sec,
		      size_t idx, const GElf_Sym *sym, const char *name)
{
	const struct sec_info *s = &ld->secs[sec];
	const struct sec_info *t = &ld->secs[sym->st_shndx];
	size_t pc = (size_t)s->insn_base + idx;
	struct rb_bpf_insn *lo = &lk->insns[pc], *hi = lo + 1;
	uint64_t addend, off;

	if (idx + 1 >= s->shdr.sh_size / INSN_SIZE || lo->code != OP_LDDW ||
	    lo->src != 0 || lk->touched[pc + 1])
		return fail(ld, -EINVAL,
			    "section '%s' insn %zu: R_BPF_64_64 relocation is not on a plain lddw (opcode %#x)",
			    sec_name(ld, sec), idx, lo->code);
	if (t->role == SEC_MAPS)
		return fail(ld, -EINVAL,
			    "section '%s' insn %zu: reference to '%s' in '%s': maps are not supported",
			    sec_name(ld, sec), idx, name, t->name);
	if (t->role == SEC_CODE)
		return fail(ld, -EINVAL,
			    "section '%s' insn %zu: address of function '%s' taken: function pointers are not supported",
			    sec_name(ld, sec), idx, name);
	if (!role_is_data(t->role))
		return fail(ld, -EINVAL,
			    "section '%s' insn %zu: reference to '%s' in section '%s', which is not .rodata*, .data* or .bss*",
			    sec_name(ld, sec), idx, name,
			    sec_name(ld, sym->st_shndx));
	/* clang leaves the offset from the symbol in the lddw's 64-bit
	 * immediate (for section symbols that is the object's offset). */
	addend = (uint64_t)(uint32_t)lo->imm | (uint64_t)(uint32_t)hi->imm << 32;
	if (sym->st_value > t->shdr.sh_size ||
	    addend > t->shdr.sh_size - sym->st_value)
		return fail(ld, -EINVAL,
			    "section '%s' insn %zu: reference to '%s' + %#llx lies outside section '%s' (%#llx bytes)",
			    sec_name(ld, sec), idx, name,
			    (unsigned long long)addend, t->name,
			    (unsigned long long)t->shdr.sh_size);
	off = t->data_off + sym->st_value + addend;
	lo->src = RB_BPF_PSEUDO_DATA;
	lo->imm = (int32_t)role_kind(t->role);
	hi->imm = (int32_t)(uint32_t)off;
	lk->touched[pc + 1] = 1;
	lk->uses[role_kind(t->role)] = true;
	return 0;
}

/* Points the local call at `pc` at its target in the linked program. */
static int reloc_call(struct loader *ld, struct linked *lk, size_t sec,
		      size_t idx, const GElf_Sym *sym, const char *name)
{
	const struct sec_info *s = &ld->secs[sec];
	const struct sec_info *t = &ld->secs[sym->st_shndx];
	size_t pc = (size_t)s->insn_base + idx;
	struct rb_bpf_insn *in = &lk->insns[pc];
	uint64_t t_n = t->shdr.sh_size / INSN_SIZE;
	int64_t target;

	if (in->code != OP_CALL || in->src != RB_BPF_CALL_LOCAL)
		return fail(ld, -EINVAL,
			    "section '%s' insn %zu: R_BPF_64_32 relocation is not on a local call (opcode %#x, src %u)",
			    sec_name(ld, sec), idx, in->code, in->src);
	if (t->role != SEC_CODE || t->insn_base < 0)
		return fail(ld, -EINVAL,
			    "section '%s' insn %zu: call to '%s' in section '%s', which is not linked",
			    sec_name(ld, sec), idx, name, sec_name(ld, sym->st_shndx));
	if (sym->st_value % INSN_SIZE != 0 || sym->st_value / INSN_SIZE > t_n)
		return fail(ld, -EINVAL,
			    "section '%s' insn %zu: call target '%s' has value %#llx, not an instruction of '%s'",
			    sec_name(ld, sec), idx, name,
			    (unsigned long long)sym->st_value, t->name);
	/* clang encodes the call as symbol + (imm + 1) instructions, both for
	 * function symbols (imm = -1) and section symbols (imm = offset/8 - 1). */
	target = (int64_t)(sym->st_value / INSN_SIZE) + in->imm + 1;
	if (target < 0 || (uint64_t)target >= t_n)
		return fail(ld, -EINVAL,
			    "section '%s' insn %zu: call to '%s' lands outside section '%s'",
			    sec_name(ld, sec), idx, name, t->name);
	target += t->insn_base;
	in->imm = (int32_t)(target - (int64_t)(pc + 1));
	return 0;
}

/* rel_fn: applies one relocation of a linked code section. */
static int apply_rel(struct loader *ld, size_t sec, const GElf_Rel *rel,
		     void *ctx)
{
	struct linked *lk = ctx;
	unsigned type = GELF_R_TYPE(rel->r_info);
	GElf_Sym sym;
	const char *name;
	size_t idx, pc;
	int rc;

	if (type != RELOC_LDDW && type != RELOC_CALL)
		return fail(ld, -EINVAL,
			    "section '%s': relocation type %u is not supported (only R_BPF_64_64 on lddw and R_BPF_64_32 on calls)",
			    sec_name(ld, sec), type);
	rc = rel_insn(ld, sec, rel, &idx);
	if (!rc)
		rc = get_sym(ld, GELF_R_SYM(rel->r_info), &sym, &name);
	if (rc)
		return rc;
	pc = (size_t)ld->secs[sec].insn_base + idx;
	if (lk->touched[pc])
		return fail(ld, -EINVAL,
			    "section '%s' insn %zu: two relocations on one instruction",
			    sec_name(ld, sec), idx);
	lk->touched[pc] = 1;
	if (type == RELOC_LDDW)
		return reloc_lddw(ld, lk, sec, idx, &sym, name);
	return reloc_call(ld, lk, sec, idx, &sym, name);
}

/* An lddw with a non-zero src_reg that no relocation produced would be
 * misread as one of ours (or a map reference the engine does not have). */
static int check_unrelocated(struct loader *ld, const struct linked *lk)
{
	for (size_t pc = 0; pc < lk->n; pc++) {
		if (lk->insns[pc].code == OP_LDDW && lk->insns[pc].src != 0 &&
		    !lk->touched[pc])
			return fail(ld, -EINVAL,
				    "linked insn %zu: lddw with src_reg %u but no relocation (maps are not supported)",
				    pc, lk->insns[pc].src);
	}
	return 0;
}

/* Copies every linked code section into place and relocates it. */
static int link_code(struct loader *ld, struct linked *lk)
{
	int rc;

	lk->insns = calloc(lk->n, INSN_SIZE);
	lk->touched = calloc(lk->n, 1);
	if (!lk->insns || !lk->touched)
		return fail(ld, -ENOMEM, "out of memory");
	for (size_t i = 1; i < ld->n_secs; i++) {
		const void *bytes;
		size_t size;

		if (ld->secs[i].insn_base < 0)
			continue;
		rc = sec_bytes(ld, i, &bytes, &size);
		if (rc)
			return rc;
		/* An empty section has no bytes (NULL): memcpy must not see
		 * NULL even for 0 bytes (found by tests/fuzz/fuzz_elf). */
		if (size)
			memcpy(lk->insns + ld->secs[i].insn_base, bytes, size);
	}
	for (size_t i = 1; i < ld->n_secs; i++) {
		if (ld->secs[i].insn_base < 0)
			continue;
		rc = for_each_rel(ld, i, apply_rel, lk);
		if (rc)
			return rc;
	}
	return check_unrelocated(ld, lk);
}

/* Alignment a section keeps inside its image: what it asks for, up to the
 * 8 bytes eBPF loads need (larger values would only waste image space). */
static size_t image_align(uint64_t a)
{
	if (a <= 1)
		return 1;
	if (a >= 8 || (a & (a - 1)) != 0)
		return 8;
	return (size_t)a;
}

/* Gives every data section its offset in the image of its kind and returns
 * the image sizes. */
static int layout_data(struct loader *ld, size_t sizes[RB_BPF_DATA_KINDS])
{
	for (int k = 0; k < RB_BPF_DATA_KINDS; k++)
		sizes[k] = 0;
	for (size_t i = 1; i < ld->n_secs; i++) {
		struct sec_info *s = &ld->secs[i];
		size_t *total, a, off;

		if (!role_is_data(s->role))
			continue;
		total = &sizes[role_kind(s->role)];
		a = image_align(s->shdr.sh_addralign);
		off = (*total + a - 1) & ~(a - 1);
		if (s->shdr.sh_size > MAX_DATA_IMAGE - off)
			return fail(ld, -E2BIG,
				    "data section '%s' (%#llx bytes) makes its image larger than %u bytes",
				    sec_name(ld, i), (unsigned long long)s->shdr.sh_size,
				    MAX_DATA_IMAGE);
		s->data_off = off;
		*total = off + s->shdr.sh_size;
	}
	return 0;
}

/* rel_fn for data sections: any relocation means a pointer stored in
 * initialised data, which would hold a meaningless file offset at run time. */
static int reject_data_rel(struct loader *ld, size_t sec, const GElf_Rel *rel,
			   void *ctx)
{
	(void)ctx;
	return fail(ld, -EINVAL,
		    "data section '%s' has relocations (offset %#llx): pointers in initialised globals are not supported",
		    sec_name(ld, sec), (unsigned long long)rel->r_offset);
}

/* Builds the images of the kinds the program references (unreferenced ones
 * are unreachable from it, so they are not handed over at all). */
static int build_data(struct loader *ld, const struct linked *lk,
		      const size_t sizes[RB_BPF_DATA_KINDS],
		      unsigned char *images[RB_BPF_DATA_KINDS],
		      struct rb_bpf_data_section data[RB_BPF_DATA_KINDS])
{
	for (int k = 0; k < RB_BPF_DATA_KINDS; k++) {
		data[k].bytes = NULL;
		data[k].len = lk->uses[k] ? sizes[k] : 0;
		/* .bss stays NULL: the engine zero-fills it. */
		if (!lk->uses[k] || k == RB_BPF_DATA_BSS || !sizes[k])
			continue;
		images[k] = calloc(1, sizes[k]);
		if (!images[k])
			return fail(ld, -ENOMEM,
				    "out of memory for a %zu-byte data image",
				    sizes[k]);
		data[k].bytes = images[k];
	}
	for (size_t i = 1; i < ld->n_secs; i++) {
		const struct sec_info *s = &ld->secs[i];
		const void *bytes;
		size_t size;
		int rc;

		if (!role_is_data(s->role) || !lk->uses[role_kind(s->role)])
			continue;
		rc = for_each_rel(ld, i, reject_data_rel, NULL);
		if (rc)
			return rc;
		if (s->role == SEC_BSS)
			continue;
		rc = sec_bytes(ld, i, &bytes, &size);
		if (rc)
			return rc;
		if (bytes)
			memcpy(images[role_kind(s->role)] + s->data_off, bytes, size);
	}
	return 0;
}

/* The one executable section called `name`: -ENOENT when there is none. */
static int find_program(struct loader *ld, const char *name, size_t *idx)
{
	bool other = false;

	*idx = 0;
	for (size_t i = 1; i < ld->n_secs; i++) {
		if (!ld->secs[i].name || strcmp(ld->secs[i].name, name) != 0)
			continue;
		if (ld->secs[i].role != SEC_CODE) {
			other = true;
			continue;
		}
		if (*idx)
			return fail(ld, -EINVAL,
				    "two executable sections are named '%s'", name);
		*idx = i;
	}
	if (!*idx)
		return fail(ld, -ENOENT,
			    other ? "section '%s' is not an executable (program) section"
			    : "no section named '%s' in the object",
			    name);
	if (ld->secs[*idx].shdr.sh_size == 0)
		return fail(ld, -EINVAL, "section '%s' is empty", name);
	return 0;
}

int rb_bpf_prog_load_elf(const void *elf, size_t len, const char *section,
			 const struct rb_bpf_helpers *helpers,
			 struct rb_bpf_prog **out, char *err, size_t errlen)
{
	struct loader ld = { .err = err, .errlen = errlen };
	struct linked lk = { 0 };
	unsigned char *images[RB_BPF_DATA_KINDS] = { 0 };
	struct rb_bpf_data_section data[RB_BPF_DATA_KINDS];
	size_t sizes[RB_BPF_DATA_KINDS];
	size_t entry;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (out)
		*out = NULL;
	if (!out || !section)
		return fail(&ld, -EINVAL,
			    "no %s given", out ? "section name" : "output pointer");
	rc = loader_open(&ld, elf, len);
	if (!rc)
		rc = find_program(&ld, section, &entry);
	if (!rc)
		rc = layout_data(&ld, sizes);
	if (!rc)
		rc = plan_code(&ld, entry, &lk.n);
	if (!rc)
		rc = link_code(&ld, &lk);
	if (!rc)
		rc = build_data(&ld, &lk, sizes, images, data);
	if (!rc)
		rc = rb_bpf_prog_new(lk.insns, lk.n, helpers, data, out, err,
				     errlen);
	for (int k = 0; k < RB_BPF_DATA_KINDS; k++)
		free(images[k]);
	free(lk.insns);
	free(lk.touched);
	loader_close(&ld);
	return rc;
}

int rb_bpf_elf_sections(const void *elf, size_t len,
			void (*fn)(const char *name, size_t n_insns, void *arg),
			void *arg, char *err, size_t errlen)
{
	struct loader ld = { .err = err, .errlen = errlen };
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!fn)
		return fail(&ld, -EINVAL, "no callback given");
	rc = loader_open(&ld, elf, len);
	/* Check every section before reporting any, so a caller never sees a
	 * partial list followed by an error. */
	for (size_t i = 1; !rc && i < ld.n_secs; i++) {
		const void *bytes;
		size_t size;

		if (ld.secs[i].role != SEC_CODE)
			continue;
		if (!ld.secs[i].name)
			rc = fail(&ld, -EINVAL,
				    "executable section %zu has no valid name", i);
		else if (ld.secs[i].shdr.sh_size % INSN_SIZE != 0)
			rc = fail(&ld, -EINVAL,
				    "section '%s' size %#llx is not a multiple of 8 (one instruction)",
				    ld.secs[i].name,
				    (unsigned long long)ld.secs[i].shdr.sh_size);
		else
			rc = sec_bytes(&ld, i, &bytes, &size);
	}
	/* Empty code sections (clang always emits .text) hold no program. */
	for (size_t i = 1; !rc && i < ld.n_secs; i++) {
		if (ld.secs[i].role == SEC_CODE && ld.secs[i].shdr.sh_size)
			fn(ld.secs[i].name, ld.secs[i].shdr.sh_size / INSN_SIZE, arg);
	}
	loader_close(&ld);
	return rc;
}
