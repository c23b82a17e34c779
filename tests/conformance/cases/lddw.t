# LD IMM DW (opcode 0x18, src 0), wide encoding: RFC 9669 5.4:
# dst = (next_imm << 32) | imm, both halves taken as unsigned 32-bit values
# (the low imm is not sign-extended).  lddw occupies two instruction slots,
# which count for jump offsets.

== lddw
-- asm
lddw r0, 0x1122334455667788
exit
-- result 0x1122334455667788

== lddw-zero
-- asm
mov r0, 5
lddw r0, 0
exit
-- result 0

== lddw-all-ones
-- asm
lddw r0, 0xffffffffffffffff
exit
-- result 0xffffffffffffffff

== lddw-low-half-not-sign-extended
-- asm
lddw r0, 0x80000000
exit
-- result 0x80000000

== lddw-low-0xffffffff
-- asm
lddw r0, 0xffffffff
exit
-- result 0xffffffff

== lddw-upper-one
-- asm
lddw r0, 0x100000000
exit
-- result 0x100000000

== lddw-int64-min
-- asm
lddw r0, 0x8000000000000000
exit
-- result 0x8000000000000000

== lddw-upper-and-low-ones
-- asm
lddw r0, 0x00000001ffffffff
exit
-- result 0x1ffffffff

== lddw-upper-only
-- asm
lddw r0, 0xffffffff00000000
exit
-- result 0xffffffff00000000

== lddw-raw-negative-imm
# imm = -1, next_imm = 0
-- asm
.raw 18 00 00 00 ff ff ff ff
.raw 00 00 00 00 00 00 00 00
exit
-- result 0xffffffff

== lddw-raw-negative-next-imm
# imm = 1, next_imm = -2
-- asm
.raw 18 00 00 00 01 00 00 00
.raw 00 00 00 00 fe ff ff ff
exit
-- result 0xfffffffe00000001

== lddw-other-registers
-- asm
lddw r1, 0x1000000000000001
lddw r9, 0x0200000000000020
lddw r5, 0x0030000000000300
add r1, r9
add r1, r5
mov r0, r1
exit
-- result 0x1230000000000321

== lddw-counts-two-slots-for-ja
-- asm
mov r0, 3
ja over
lddw r0, 1
over:
exit
-- result 3

== lddw-raw-ja-plus-2-skips-it
-- asm
mov r0, 3
ja +2
lddw r0, 1
exit
-- result 3

== lddw-counts-two-slots-for-cond-jump
-- asm
mov r0, 3
jeq r0, 3, +2
lddw r0, 1
add r0, 1
exit
-- result 4

== lddw-backward-jump-over
-- asm
mov r1, 3
mov r0, 0
loop:
lddw r2, 0x100000001
add r0, r2
sub r1, 1
jne r1, 0, loop
exit
-- result 0x300000003

== lddw-last-before-exit
-- asm
ja +0
lddw r0, 0x7fffffffffffffff
exit
-- result 0x7fffffffffffffff
