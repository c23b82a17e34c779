/* SPDX-License-Identifier: MIT */
/*
 * RosenBridge eBPF engine: load programs (raw instructions or clang-built ELF
 * objects), run them in the interpreter under an instruction budget and
 * run-time bounds checks, disassemble them.  Nothing here trusts the program:
 * every load, store and helper argument is checked against the memory the
 * caller granted for that run.
 */
#ifndef ROSEN_BPF_H
#define ROSEN_BPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Instruction encoding (RFC 9669) ---------------------------------- */

struct rb_bpf_insn {
	uint8_t code;
	uint8_t dst : 4;
	uint8_t src : 4;
	int16_t off;
	int32_t imm;
};

#define RB_BPF_STACK_SIZE 512u      /* bytes per frame */
#define RB_BPF_MAX_FRAMES 8u        /* entry frame + 7 nested local calls */
#define RB_BPF_MAX_INSNS 65536u     /* largest program accepted */
#define RB_BPF_MAX_HELPERS 256u     /* helper ids 0..255 */
#define RB_BPF_MAX_REGIONS 8u       /* caller-granted regions per run */
#define RB_BPF_DEFAULT_BUDGET 1000000u

/* Classes (low 3 bits). */
enum {
	RB_BPF_LD = 0x00, RB_BPF_LDX = 0x01, RB_BPF_ST = 0x02, RB_BPF_STX = 0x03,
	RB_BPF_ALU = 0x04, RB_BPF_JMP = 0x05, RB_BPF_JMP32 = 0x06,
	RB_BPF_ALU64 = 0x07,
};
/* Source bit for ALU/JMP. */
enum { RB_BPF_K = 0x00, RB_BPF_X = 0x08 };
/* ALU ops (high 4 bits). */
enum {
	RB_BPF_ADD = 0x00, RB_BPF_SUB = 0x10, RB_BPF_MUL = 0x20, RB_BPF_DIV = 0x30,
	RB_BPF_OR = 0x40, RB_BPF_AND = 0x50, RB_BPF_LSH = 0x60, RB_BPF_RSH = 0x70,
	RB_BPF_NEG = 0x80, RB_BPF_MOD = 0x90, RB_BPF_XOR = 0xa0, RB_BPF_MOV = 0xb0,
	RB_BPF_ARSH = 0xc0, RB_BPF_END = 0xd0,
};
/* JMP ops (high 4 bits). */
enum {
	RB_BPF_JA = 0x00, RB_BPF_JEQ = 0x10, RB_BPF_JGT = 0x20, RB_BPF_JGE = 0x30,
	RB_BPF_JSET = 0x40, RB_BPF_JNE = 0x50, RB_BPF_JSGT = 0x60,
	RB_BPF_JSGE = 0x70, RB_BPF_CALL = 0x80, RB_BPF_EXIT = 0x90,
	RB_BPF_JLT = 0xa0, RB_BPF_JLE = 0xb0, RB_BPF_JSLT = 0xc0,
	RB_BPF_JSLE = 0xd0,
};
/* Load/store sizes and modes. */
enum { RB_BPF_W = 0x00, RB_BPF_H = 0x08, RB_BPF_B = 0x10, RB_BPF_DW = 0x18 };
enum {
	RB_BPF_IMM = 0x00, RB_BPF_ABS = 0x20, RB_BPF_IND = 0x40,
	RB_BPF_MEM = 0x60, RB_BPF_MEMSX = 0x80, RB_BPF_ATOMIC = 0xc0,
};
/* Atomic operations (imm of STX|ATOMIC). */
enum {
	RB_BPF_FETCH = 0x01, RB_BPF_XCHG = 0xe0 | RB_BPF_FETCH,
	RB_BPF_CMPXCHG = 0xf0 | RB_BPF_FETCH,
};
/* src_reg values of a CALL. */
enum { RB_BPF_CALL_HELPER = 0, RB_BPF_CALL_LOCAL = 1, RB_BPF_CALL_BTF = 2 };
/*
 * src_reg of an lddw the ELF loader emitted for a reference into one of the
 * program's data sections: imm of the first slot = section (enum
 * rb_bpf_data_kind), imm of the second slot = byte offset.  The engine turns
 * it into a host address when it prepares the program; the verifier of a
 * later issue reads it as a typed pointer.
 */
#define RB_BPF_PSEUDO_DATA 2

/* ---- Helpers ------------------------------------------------------------ */

struct rb_bpf_call;  /* per-call view a helper gets of the running program */

typedef uint64_t (*rb_bpf_helper_fn)(struct rb_bpf_call *call, uint64_t a1,
				     uint64_t a2, uint64_t a3, uint64_t a4,
				     uint64_t a5);

struct rb_bpf_helpers;  /* id -> {name, fn}; shared by many programs */

struct rb_bpf_helpers *rb_bpf_helpers_new(void);
void rb_bpf_helpers_free(struct rb_bpf_helpers *h);
/* Registers helper `id`.  -EINVAL for an id >= RB_BPF_MAX_HELPERS, a NULL fn
 * or an empty name; -EEXIST when the id is taken. */
int rb_bpf_helpers_register(struct rb_bpf_helpers *h, uint32_t id,
			    const char *name, rb_bpf_helper_fn fn);
/* Name of a registered helper, or NULL. */
const char *rb_bpf_helpers_name(const struct rb_bpf_helpers *h, uint32_t id);

/* For helpers: the opaque pointer the caller passed in rb_bpf_run_opts.user. */
void *rb_bpf_call_user(const struct rb_bpf_call *call);
/* For helpers: true when [addr, addr+len) lies inside one region the program
 * may access (granted regions, its stack frames, its data sections); with
 * `write`, only writable ones.  Helpers must check every pointer argument. */
bool rb_bpf_call_mem_ok(const struct rb_bpf_call *call, uint64_t addr,
			uint64_t len, bool write);
/* For helpers: end the program after this helper returns, with r0 = value. */
void rb_bpf_call_stop(struct rb_bpf_call *call, uint64_t value);
/* For helpers: fail the program with a message (e.g. a bad argument). */
void rb_bpf_call_fail(struct rb_bpf_call *call, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- Programs ----------------------------------------------------------- */

enum rb_bpf_data_kind {
	RB_BPF_DATA_RODATA = 0, /* read-only to the program */
	RB_BPF_DATA_DATA = 1,   /* read-write */
	RB_BPF_DATA_BSS = 2,    /* read-write, zero-filled */
	RB_BPF_DATA_KINDS = 3,
};

struct rb_bpf_data_section {
	const void *bytes; /* NULL for .bss (zero-filled) */
	size_t len;
};

struct rb_bpf_prog;

/*
 * Validates and prepares a program from raw instructions.  Rejects (with a
 * message naming the instruction index): unknown opcodes, bad registers,
 * writes to r10, jumps or local calls out of range or into the middle of an
 * lddw, an lddw split at the end, unknown helper ids (helpers may be NULL:
 * then every helper call is unknown), BTF-id calls, a program whose last
 * instruction can fall off the end.  `data` (may be NULL) gives the contents
 * of the sections RB_BPF_PSEUDO_DATA lddws refer to.  Returns 0 or -errno.
 */
int rb_bpf_prog_new(const struct rb_bpf_insn *insns, size_t n_insns,
		    const struct rb_bpf_helpers *helpers,
		    const struct rb_bpf_data_section data[RB_BPF_DATA_KINDS],
		    struct rb_bpf_prog **out, char *err, size_t errlen);

/*
 * Loads the program in section `section` of a clang -target bpf ELF object:
 * links the .text subprograms it calls, resolves relocations against
 * .rodata/.data/.bss; then rb_bpf_prog_new() validates it and checks the
 * helper ids.  -ENOENT (message names it) when there is no such executable
 * section, -E2BIG when the linked program or a data section is too large,
 * -EINVAL for malformed input, never a crash.  Maps, externs, function
 * pointers and pointers in initialised data are rejected with a message.
 */
int rb_bpf_prog_load_elf(const void *elf, size_t len, const char *section,
			 const struct rb_bpf_helpers *helpers,
			 struct rb_bpf_prog **out, char *err, size_t errlen);

void rb_bpf_prog_free(struct rb_bpf_prog *prog);

size_t rb_bpf_prog_len(const struct rb_bpf_prog *prog);
/* The program's instructions as loaded (relocated, subprograms appended). */
const struct rb_bpf_insn *rb_bpf_prog_insns(const struct rb_bpf_prog *prog);

/* Names of the non-empty executable sections of an ELF object, .text
 * included (for tools): calls fn(name, n_insns, arg) for each, only after
 * checking them all.  Returns 0 or -errno with a message. */
int rb_bpf_elf_sections(const void *elf, size_t len,
			void (*fn)(const char *name, size_t n_insns, void *arg),
			void *arg, char *err, size_t errlen);

/* ---- Running ------------------------------------------------------------ */

struct rb_bpf_region {
	uint64_t addr; /* host address */
	uint64_t len;
	bool writable;
};

struct rb_bpf_run_opts {
	uint64_t args[5];                    /* r1..r5 */
	const struct rb_bpf_region *regions; /* memory granted for this run */
	unsigned n_regions;                  /* <= RB_BPF_MAX_REGIONS */
	uint64_t budget;                     /* instructions; 0 = default */
	void *user;                          /* for helpers */
};

enum rb_bpf_status {
	RB_BPF_OK = 0,
	RB_BPF_E_FAULT,   /* load/store outside the granted memory */
	RB_BPF_E_BUDGET,  /* instruction budget exhausted */
	RB_BPF_E_HELPER,  /* a helper failed the program / unknown callx id */
	RB_BPF_E_DEPTH,   /* local calls nested deeper than RB_BPF_MAX_FRAMES */
	RB_BPF_E_ARG,     /* bad run options */
};

struct rb_bpf_result {
	enum rb_bpf_status status;
	uint64_t r0;       /* the program's return value when status == OK */
	uint32_t pc;       /* instruction index of the fault */
	uint64_t executed; /* instructions executed */
	char msg[256];     /* what went wrong, for a person */
};

/* Runs the program in the interpreter.  Returns 0 when it exited normally,
 * otherwise -EFAULT/-E2BIG/-EINVAL..., with res->status and res->msg saying
 * why.  Never touches memory outside the granted regions. */
int rb_bpf_run(const struct rb_bpf_prog *prog,
	       const struct rb_bpf_run_opts *opts, struct rb_bpf_result *res);

const char *rb_bpf_status_name(enum rb_bpf_status s);

/* The interpreter, even when the program has been compiled (the reference). */
int rb_bpf_run_interp(const struct rb_bpf_prog *prog, const struct rb_bpf_run_opts *opts,
		      struct rb_bpf_result *res);

/* ---- x86-64 JIT ----------------------------------------------------------------- */

enum rb_bpf_jit_mode {
	RB_BPF_JIT_CHECKED,   /* every load/store checked at run time, like the
			       * interpreter: for programs nobody verified */
	RB_BPF_JIT_UNCHECKED, /* no per-access checks: only for programs the
			       * verifier accepted */
};

/*
 * Compiles the program to x86-64 machine code (in memory never writable
 * and executable at once); rb_bpf_run() then runs the code.  The budget is
 * exact, as in the interpreter: the same instructions counted, the same
 * stopping instruction.  0 or -errno with a message.
 */
int rb_bpf_jit(struct rb_bpf_prog *prog, enum rb_bpf_jit_mode mode, char *err, size_t errlen);

/*
 * The unchecked JIT's defence in depth, so that one verifier bug is not
 * enough to reach host memory: r0 and r6..r9 cleared at entry (r1..r5
 * are the run's arguments: rosenbridged passes the context and zeros)
 * and r1..r5 after every helper call; each frame's stack (as deep as the verifier
 * saw it used) zeroed at entry and at every local call; with the facts
 * rb_bpf_verify() recorded: operands the verifier proved constant emitted
 * as that constant, numbers added to pointers checked against their proven
 * range, instructions the verifier never reached compiled as a fault.
 * RB_BPF_JIT_NO_HARDENING turns all of that off: for benchmarks that
 * measure its cost, never for guest programs.
 */
enum { RB_BPF_JIT_NO_HARDENING = 1 };
int rb_bpf_jit_ex(struct rb_bpf_prog *prog, enum rb_bpf_jit_mode mode, unsigned flags,
		  char *err, size_t errlen);
bool rb_bpf_prog_is_jitted(const struct rb_bpf_prog *prog);

/* ---- Disassembly -------------------------------------------------------- */

/* Formats instruction `pc` (and its lddw partner) as text; returns the number
 * of slots consumed (1 or 2). */
int rb_bpf_disasm_insn(const struct rb_bpf_insn *insns, size_t n, size_t pc,
		       const struct rb_bpf_helpers *helpers, char *buf,
		       size_t buflen);

/* ---- Verifier ----------------------------------------------------------- */
/*
 * The static verifier proves at load time, for every path through a
 * program, that it only touches the memory its program type grants, in
 * bounds and as allowed (reads of initialised bytes only, no writes to
 * read-only regions, no pointer stored where the guest could read it back,
 * helpers called as their prototypes say, r0 a number at exit).  Loops it
 * cannot bound are allowed: the run-time instruction budget ends them.
 *
 * A program type is plain data: the context layout (which fields may be
 * read or written, which hold pointers and to what), the regions those
 * pointers lead to (each with a size fixed at load), and the helpers the
 * type may call.  Besides those regions a program sees its context, its
 * stack (512 bytes per frame) and its own .rodata (read-only), .data and
 * .bss sections; helpers may return more (e.g. registered guest memory).
 */

#define RB_BPF_VERIFY_MAX_REGIONS 8u      /* regions per program type */
#define RB_BPF_VERIFY_MAX_INSNS 1000000u  /* default work limit */

/* A region the context points to.  The run-time region must be at least
 * `size` bytes: the verifier proves accesses against this size only. */
struct rb_bpf_region_type {
	const char *name; /* in logs: "data", "scratch", "meta" */
	uint32_t size;
	bool writable;
};

enum rb_bpf_field_kind {
	RB_BPF_FIELD_SCALAR = 0, /* a number */
	RB_BPF_FIELD_PTR,        /* the start of region `region` */
	/* Somewhere in [start, start + size] of region `region`: an end
	 * marker to compare pointers with or subtract from; never
	 * dereferenced, never known exactly (e.g. meta_end). */
	RB_BPF_FIELD_PTR_END,
};

enum { RB_BPF_ACC_READ = 1, RB_BPF_ACC_WRITE = 2 };

/*
 * One context field (or array of `count` equal elements).  Accesses must
 * stay inside one element and be aligned to their own size; scalar fields
 * may be read or written in narrower aligned pieces; pointer fields only
 * read whole (8 bytes, never written).  Bytes no field covers are
 * inaccessible.
 */
struct rb_bpf_ctx_field {
	const char *name;
	uint32_t offset; /* of element 0 */
	uint8_t size;    /* of one element: 1, 2, 4 or 8 (pointer fields: 8) */
	uint8_t count;   /* elements: 1 for a plain field */
	uint8_t access;  /* RB_BPF_ACC_* */
	uint8_t kind;    /* enum rb_bpf_field_kind */
	uint8_t region;  /* pointer fields: index into rb_bpf_type.regions */
};

enum rb_bpf_arg_kind {
	RB_BPF_ARG_NONE = 0, /* not used by the helper (not checked) */
	RB_BPF_ARG_SCALAR,   /* a number: a pointer here would leak an address */
	RB_BPF_ARG_CTX,      /* the context pointer as the program got it */
	RB_BPF_ARG_MEM_W,    /* memory the helper writes: stack, writable
	                      * regions, .data/.bss; never the context */
	RB_BPF_ARG_MEM_R,    /* initialised memory the helper reads */
};

enum rb_bpf_ret_kind {
	RB_BPF_RET_SCALAR = 0,
	/* NULL or a pointer to a region of (at least) the smallest value the
	 * size argument `ret_size_arg` can have; must be compared with 0
	 * before use. */
	RB_BPF_RET_MEM_OR_NULL,
};

struct rb_bpf_helper_arg {
	uint8_t kind;     /* enum rb_bpf_arg_kind */
	uint8_t size_arg; /* MEM_*: 1..5 = the size is that argument, a
	                   * bounded number; 0 = `size` bytes */
	uint32_t size;
	/* MEM_W: the helper writes every byte of the buffer on every path,
	 * failures included (it fills or zeroes it).  Only then does the
	 * verifier count the bytes as initialised afterwards; otherwise they
	 * keep whatever state they had (a helper that returns early must not
	 * turn stale stack into "written" bytes the program may copy out). */
	bool filled;
};

struct rb_bpf_helper_proto {
	uint32_t id;
	const char *name;
	struct rb_bpf_helper_arg arg[5]; /* r1..r5 */
	uint8_t ret;                     /* enum rb_bpf_ret_kind */
	uint8_t ret_size_arg;            /* RET_MEM_OR_NULL: 1..5 */
	bool ret_writable;
	const char *ret_region;          /* its name in logs */
};

struct rb_bpf_type {
	const char *name; /* "xrp", "cq", ... */
	uint32_t ctx_size;
	const struct rb_bpf_region_type *regions;
	unsigned n_regions; /* <= RB_BPF_VERIFY_MAX_REGIONS */
	const struct rb_bpf_ctx_field *fields;
	unsigned n_fields;
	const struct rb_bpf_helper_proto *helpers; /* the only ones callable */
	unsigned n_helpers;
};

#define RB_BPF_VERIFY_MAX_WORK 24000000u         /* default work limit (~0.5 s here) */
#define RB_BPF_VERIFY_MAX_MEM (64u << 20)         /* default memory limit */

/*
 * Limits on what one verification may cost.  The walk is bounded in
 * instructions, in work (each instruction walked is 1 unit; copying or
 * comparing one frame of a state, RB_BPF_VERIFY_FRAME_WORK units: with 8
 * frames a state is ~60 KB, so counting instructions alone does not bound
 * the time), in memory (kept states, the work list and temporary copies)
 * and, as a backstop, in thread CPU time.  Over any of them the program is
 * rejected as too complex (-E2BIG) with a log naming the limit.
 */
#define RB_BPF_VERIFY_FRAME_WORK 16u
struct rb_bpf_verify_opts {
	uint64_t max_insns;  /* instructions walked (with repeats) before the
	                      * program is "too complex"; 0 = default */
	uint64_t max_work;   /* work units; 0 = RB_BPF_VERIFY_MAX_WORK */
	uint64_t max_mem;    /* bytes of verifier state; 0 = RB_BPF_VERIFY_MAX_MEM */
	uint64_t max_cpu_ns; /* CPU time of the verifying thread; 0 = none */
};

struct rb_bpf_verify_stats {
	uint64_t insns_processed; /* instructions walked, with repeats */
	uint64_t states_stored;   /* states kept for pruning */
	uint64_t states_pruned;   /* paths cut because a kept state covered them */
	uint64_t states_joined;   /* states merged (loops widened) */
	uint64_t frames_copied;   /* state frames copied */
	uint64_t frames_compared; /* state frames compared while pruning */
	uint64_t work;            /* work units spent (see above) */
	uint64_t peak_mem;        /* most bytes of verifier state held at once */
	uint64_t elapsed_ns;
};

/*
 * Verifies `prog` as a program of `type` (r1 = a pointer to its context).
 * When it is accepted, what the verifier proved of each instruction is
 * recorded in `prog` (which instructions run, the proven ranges of the
 * numbers added to pointers, operands proven constant, each function's
 * stack depth): the unchecked JIT builds its second line of defence from
 * it.  Returns 0 when every path is safe; -EACCES when one is not (the log names
 * the instruction, what the verifier knew of every register and of the
 * stack, the last branches taken and the reason); -E2BIG when proving it
 * would take more work than the limit ("too complex"); -EINVAL for a
 * malformed type; -ENOMEM.  The log is always NUL-terminated (empty when
 * accepted).
 */
int rb_bpf_verify(struct rb_bpf_prog *prog, const struct rb_bpf_type *type,
		  char *log, size_t loglen);
/* The same with limits (opts may be NULL) and statistics (stats may be
 * NULL; filled whether or not the program is accepted). */
int rb_bpf_verify_ex(struct rb_bpf_prog *prog, const struct rb_bpf_type *type,
		     const struct rb_bpf_verify_opts *opts,
		     struct rb_bpf_verify_stats *stats, char *log, size_t loglen);

#ifdef __cplusplus
}
#endif
#endif /* ROSEN_BPF_H */
