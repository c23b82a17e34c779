# Programs that must be rejected (exit 1, reason on stderr).  Load-time
# rejection is expected; the runner only checks exit status 1 + stderr, so a
# run-time failure also passes.  Covers: opcode bytes with no meaning in RFC
# 9669 (including the legacy packet instructions, which we do not implement),
# instructions whose fields select an undefined operation (MOVSX with K or an
# undefined width, SDIV/SMOD offsets other than 0/1, END widths other than
# 16/32/64, unknown atomic ops, lddw with src != 0 or a malformed second
# slot), registers > 10, writes to r10, jumps/calls out of range or into the
# middle of an lddw, a split lddw, unknown helpers, BTF-id calls (src 2) and
# other call src values, an empty program and a program that falls off the end.

== empty-program
-- asm
# no instructions
-- error

== unknown-opcode-0x00
# LD IMM W (only DW is defined)
-- asm
mov r0, 0
.raw 00 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x08
# LD IMM H
-- asm
mov r0, 0
.raw 08 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x10
# LD IMM B
-- asm
mov r0, 0
.raw 10 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x20
# LD ABS W (legacy packet, not implemented)
-- asm
mov r0, 0
.raw 20 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x28
# LD ABS H (packet)
-- asm
mov r0, 0
.raw 28 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x30
# LD ABS B (packet)
-- asm
mov r0, 0
.raw 30 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x38
# LD ABS DW
-- asm
mov r0, 0
.raw 38 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x40
# LD IND W (packet)
-- asm
mov r0, 0
.raw 40 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x48
# LD IND H (packet)
-- asm
mov r0, 0
.raw 48 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x50
# LD IND B (packet)
-- asm
mov r0, 0
.raw 50 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x60
# LD MEM W
-- asm
mov r0, 0
.raw 60 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x78
# LD MEM DW
-- asm
mov r0, 0
.raw 78 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x80
# LD MEMSX W
-- asm
mov r0, 0
.raw 80 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0xc0
# LD ATOMIC W
-- asm
mov r0, 0
.raw c0 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x01
# LDX IMM W
-- asm
mov r0, 0
.raw 01 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x19
# LDX IMM DW
-- asm
mov r0, 0
.raw 19 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x21
# LDX ABS W
-- asm
mov r0, 0
.raw 21 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x41
# LDX IND W
-- asm
mov r0, 0
.raw 41 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x99
# LDX MEMSX DW
-- asm
mov r0, 0
.raw 99 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0xa1
# LDX mode 5
-- asm
mov r0, 0
.raw a1 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0xc1
# LDX ATOMIC W
-- asm
mov r0, 0
.raw c1 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0xe1
# LDX mode 7
-- asm
mov r0, 0
.raw e1 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x02
# ST IMM W
-- asm
mov r0, 0
.raw 02 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x22
# ST ABS W
-- asm
mov r0, 0
.raw 22 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x82
# ST MEMSX W
-- asm
mov r0, 0
.raw 82 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0xc2
# ST ATOMIC W
-- asm
mov r0, 0
.raw c2 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0xda
# ST ATOMIC DW
-- asm
mov r0, 0
.raw da 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x03
# STX IMM W
-- asm
mov r0, 0
.raw 03 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x83
# STX MEMSX W
-- asm
mov r0, 0
.raw 83 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x9b
# STX MEMSX DW
-- asm
mov r0, 0
.raw 9b 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0xcb
# STX ATOMIC H (8/16-bit atomics unsupported)
-- asm
mov r0, 0
.raw cb 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0xd3
# STX ATOMIC B
-- asm
mov r0, 0
.raw d3 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0xe4
# ALU code 0xe K
-- asm
mov r0, 0
.raw e4 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0xec
# ALU code 0xe X
-- asm
mov r0, 0
.raw ec 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0xf4
# ALU code 0xf K
-- asm
mov r0, 0
.raw f4 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0xfc
# ALU code 0xf X
-- asm
mov r0, 0
.raw fc 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0xe7
# ALU64 code 0xe K
-- asm
mov r0, 0
.raw e7 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0xef
# ALU64 code 0xe X
-- asm
mov r0, 0
.raw ef 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0xf7
# ALU64 code 0xf K
-- asm
mov r0, 0
.raw f7 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0xff
# ALU64 code 0xf X
-- asm
mov r0, 0
.raw ff 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x8c
# ALU NEG X (NEG is only defined for K)
-- asm
mov r0, 0
.raw 8c 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x8f
# ALU64 NEG X
-- asm
mov r0, 0
.raw 8f 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0xdf
# ALU64 END with source bit set (reserved)
-- asm
mov r0, 0
.raw df 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0xe5
# JMP code 0xe K
-- asm
mov r0, 0
.raw e5 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0xed
# JMP code 0xe X
-- asm
mov r0, 0
.raw ed 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0xf5
# JMP code 0xf K
-- asm
mov r0, 0
.raw f5 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0xfd
# JMP code 0xf X
-- asm
mov r0, 0
.raw fd 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0xe6
# JMP32 code 0xe K
-- asm
mov r0, 0
.raw e6 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0xf6
# JMP32 code 0xf K
-- asm
mov r0, 0
.raw f6 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0xfe
# JMP32 code 0xf X
-- asm
mov r0, 0
.raw fe 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x0d
# JMP JA X ({JA, K, JMP} only)
-- asm
mov r0, 0
.raw 0d 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x0e
# JMP32 JA X
-- asm
mov r0, 0
.raw 0e 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x86
# JMP32 CALL ({CALL, K, JMP} only)
-- asm
mov r0, 0
.raw 86 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x8e
# JMP32 CALL X
-- asm
mov r0, 0
.raw 8e 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x96
# JMP32 EXIT
-- asm
mov r0, 0
.raw 96 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x9d
# JMP EXIT X
-- asm
mov r0, 0
.raw 9d 00 00 00 00 00 00 00
exit
-- error

== unknown-opcode-0x9e
# JMP32 EXIT X
-- asm
mov r0, 0
.raw 9e 00 00 00 00 00 00 00
exit
-- error

== mov-imm-with-movsx-offset
# MOVSX is only defined for register source operands
-- asm
.insn 0xb7, 0, 0, 8, 0x80
exit
-- error

== mov32-imm-with-movsx-offset
-- asm
.insn 0xb4, 0, 0, 16, 0x8000
exit
-- error

== movsx-alu32-offset-32
# {MOVSX, X, ALU} is only defined for 8 and 16 bit operands
-- asm
mov r1, -1
movsx32_32 r0, r1
exit
-- error

== mov64-reg-offset-1
-- asm
mov r1, 1
.insn 0xbf, 0, 1, 1, 0
exit
-- error

== mov64-reg-offset-64
-- asm
mov r1, 1
.insn 0xbf, 0, 1, 64, 0
exit
-- error

== movsx-alu32-offset-24
-- asm
mov r1, 1
.insn 0xbc, 0, 1, 24, 0
exit
-- error

== div64-reg-offset-2
-- asm
mov r0, 6
mov r1, 3
.insn 0x3f, 0, 1, 2, 0
exit
-- error

== mod32-imm-offset-minus-one
-- asm
mov r0, 6
.insn 0x94, 0, 0, -1, 3
exit
-- error

== sdiv-offset-0x100
-- asm
mov r0, 6
.insn 0x37, 0, 0, 0x100, 3
exit
-- error

== end-le-width-8
-- asm
mov r0, 1
.insn 0xd4, 0, 0, 0, 8
exit
-- error

== end-be-width-0
-- asm
mov r0, 1
.insn 0xdc, 0, 0, 0, 0
exit
-- error

== end-be-width-128
-- asm
mov r0, 1
.insn 0xdc, 0, 0, 0, 128
exit
-- error

== bswap-width-24
-- asm
mov r0, 1
.insn 0xd7, 0, 0, 0, 24
exit
-- error

== bswap-width-48
-- asm
mov r0, 1
.insn 0xd7, 0, 0, 0, 48
exit
-- error

== atomic-unknown-op-0x10
-- asm
stdw [r10-8], 0
mov r1, 1
.insn 0xdb, 10, 1, -8, 0x10
mov r0, 0
exit
-- error

== atomic-unknown-op-0x02
-- asm
stdw [r10-8], 0
mov r1, 1
.insn 0xdb, 10, 1, -8, 0x02
mov r0, 0
exit
-- error

== atomic-xchg-without-fetch-0xe0
-- asm
stdw [r10-8], 0
mov r1, 1
.insn 0xdb, 10, 1, -8, 0xe0
mov r0, 0
exit
-- error

== atomic-cmpxchg-without-fetch-0xf0
-- asm
stdw [r10-8], 0
mov r1, 1
.insn 0xdb, 10, 1, -8, 0xf0
mov r0, 0
exit
-- error

== atomic32-unknown-op-0x81
-- asm
stw [r10-8], 0
mov r1, 1
.insn 0xc3, 10, 1, -8, 0x81
mov r0, 0
exit
-- error

== atomic-unknown-op-0x100
-- asm
stdw [r10-8], 0
mov r1, 1
.insn 0xdb, 10, 1, -8, 0x100
mov r0, 0
exit
-- error

== lddw-src-1-map-by-fd
-- asm
.insn 0x18, 0, 1, 0, 1
.raw 00 00 00 00 00 00 00 00
mov r0, 0
exit
-- error

== lddw-src-2-map-value
-- asm
.insn 0x18, 0, 2, 0, 1
.raw 00 00 00 00 00 00 00 00
mov r0, 0
exit
-- error

== lddw-src-4-code-addr
-- asm
.insn 0x18, 0, 4, 0, 1
.raw 00 00 00 00 00 00 00 00
mov r0, 0
exit
-- error

== lddw-src-7-undefined
-- asm
.insn 0x18, 0, 7, 0, 1
.raw 00 00 00 00 00 00 00 00
mov r0, 0
exit
-- error

== lddw-second-slot-opcode-nonzero
-- asm
.raw 18 00 00 00 01 00 00 00
.raw 95 00 00 00 00 00 00 00
exit
-- error

== lddw-second-slot-is-mov
-- asm
.raw 18 00 00 00 01 00 00 00
.raw b7 00 00 00 02 00 00 00
exit
-- error

== lddw-second-slot-regs-nonzero
-- asm
.raw 18 00 00 00 01 00 00 00
.raw 00 01 00 00 00 00 00 00
exit
-- error

== lddw-second-slot-offset-nonzero
-- asm
.raw 18 00 00 00 01 00 00 00
.raw 00 00 01 00 00 00 00 00
exit
-- error

== lddw-split-at-end
-- asm
mov r0, 0
exit
.raw 18 00 00 00 01 00 00 00
-- error

== lddw-alone-one-slot
-- asm
.raw 18 00 00 00 01 00 00 00
-- error

== jump-into-lddw-second-slot
-- asm
mov r0, 0
ja +1
lddw r0, 5
exit
-- error

== cond-jump-into-lddw-second-slot
-- asm
mov r0, 0
jeq r0, 0, +1
lddw r0, 5
exit
-- error

== ja32-into-lddw-second-slot
-- asm
mov r0, 0
ja32 +1
lddw r0, 5
exit
-- error

== backward-jump-into-lddw-second-slot
-- asm
mov r0, 0
lddw r1, 5
ja -2
exit
-- error

== call-local-into-lddw-second-slot
-- asm
mov r0, 0
call local +1
lddw r0, 5
exit
-- error

== dst-register-11
-- asm
.insn 0xb7, 11, 0, 0, 1
mov r0, 0
exit
-- error

== dst-register-15
-- asm
.insn 0xb7, 15, 0, 0, 1
mov r0, 0
exit
-- error

== src-register-11-alu
-- asm
mov r0, 0
.insn 0x0f, 0, 11, 0, 0
exit
-- error

== src-register-12-ldx
-- mem
00 00 00 00 00 00 00 00
-- asm
.insn 0x79, 0, 12, 0, 0
exit
-- error

== dst-register-13-stx
-- asm
mov r0, 0
.insn 0x7b, 13, 0, 0, 0
exit
-- error

== src-register-14-jmp
-- asm
mov r0, 0
.insn 0x1d, 0, 14, 0, 0
exit
-- error

== dst-register-11-jmp-imm
-- asm
mov r0, 0
.insn 0x15, 11, 0, 0, 0
exit
-- error

== callx-register-11
-- asm
mov r0, 0
.insn 0x8d, 11, 0, 0, 0
exit
-- error

== write-r10-mov
-- asm
mov r10, 0
mov r0, 0
exit
-- error

== write-r10-add
-- asm
add r10, 8
mov r0, 0
exit
-- error

== write-r10-mov32
-- asm
mov32 r10, 1
mov r0, 0
exit
-- error

== write-r10-neg
-- asm
neg r10
mov r0, 0
exit
-- error

== write-r10-be16
-- asm
be16 r10
mov r0, 0
exit
-- error

== write-r10-movsx
-- asm
mov r1, 1
movsx8 r10, r1
mov r0, 0
exit
-- error

== write-r10-ldxdw
-- mem
00 00 00 00 00 00 00 00
-- asm
ldxdw r10, [r1]
mov r0, 0
exit
-- error

== write-r10-lddw
-- asm
lddw r10, 0x1000
mov r0, 0
exit
-- error

== ja-to-one-past-end
-- asm
mov r0, 0
ja +1
exit
-- error

== ja-far-forward
-- asm
mov r0, 0
ja +100
exit
-- error

== ja-before-start
-- asm
ja -2
mov r0, 0
exit
-- error

== ja-offset-min
-- asm
mov r0, 0
ja -32768
exit
-- error

== jeq-out-of-range
-- asm
mov r0, 0
jeq r0, 0, +5
exit
-- error

== jeq-out-of-range-not-taken-still-rejected
-- asm
mov r0, 1
jeq r0, 0, +5
exit
-- error

== jset-to-one-past-end
-- asm
mov r0, 0
jset r0, 1, +1
exit
-- error

== jsgt32-before-start
-- asm
mov r0, 0
jsgt32 r0, 1, -10
exit
-- error

== jne-reg-out-of-range
-- asm
mov r0, 0
mov r1, 1
jne r0, r1, +3
exit
-- error

== ja32-far-forward
-- asm
mov r0, 0
ja32 +100
exit
-- error

== ja32-before-start
-- asm
mov r0, 0
ja32 -3
exit
-- error

== ja32-huge-offset
-- asm
mov r0, 0
ja32 +0x7fffffff
exit
-- error

== ja32-huge-negative-offset
-- asm
mov r0, 0
ja32 -0x80000000
exit
-- error

== call-local-out-of-range
-- asm
call local +10
exit
-- error

== call-local-before-start
-- asm
mov r0, 0
call local -3
exit
-- error

== call-local-one-past-end
-- asm
mov r0, 0
call local +1
exit
-- error

== unknown-helper-6
-- asm
call 6
exit
-- error

== unknown-helper-7
-- asm
call 7
exit
-- error

== unknown-helper-100
-- asm
call 100
exit
-- error

== unknown-helper-minus-one
-- asm
call -1
exit
-- error

== unknown-helper-0x7fffffff
-- asm
call 0x7fffffff
exit
-- error

== unknown-helper-not-executed
-- asm
mov r0, 0
exit
call 6
exit
-- error

== btf-call-id-1
-- asm
call btf 1
exit
-- error

== btf-call-id-0
-- asm
mov r0, 0
call btf 0
exit
-- error

== btf-call-not-executed
-- asm
mov r0, 0
exit
call btf 2
exit
-- error

== call-src-3
-- asm
mov r0, 0
.insn 0x85, 0, 3, 0, 1
exit
-- error

== call-src-15
-- asm
mov r0, 0
.insn 0x85, 0, 15, 0, 1
exit
-- error

== no-exit-falls-off-end
-- asm
mov r0, 1
-- error

== falls-off-end-after-jump
-- asm
mov r0, 0
ja +1
exit
mov r0, 1
-- error

== falls-off-end-after-call-return
-- asm
call local f
f:
mov r0, 1
-- error
