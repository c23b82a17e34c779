# ALU (class 0x04, 32-bit): RFC 9669 4.1: operands are the low 32 bits,
# the result is written zero-extended: {ADD, X, ALU}: dst = (u32)((u32)dst +
# (u32)src); {XOR, K, ALU}: dst = (u32)dst ^ (u32)imm.

== mov32-imm
-- asm
mov32 r0, 5
exit
-- result 5

== mov32-imm-neg-zero-extends
-- asm
mov32 r0, -1
exit
-- result 0xffffffff

== mov32-imm-0x80000000-no-sign-extension
-- asm
mov32 r0, 0x80000000
exit
-- result 0x80000000

== mov32-imm-clears-upper
-- asm
lddw r0, 0xffffffffffffffff
mov32 r0, 1
exit
-- result 1

== mov32-reg-truncates
-- asm
lddw r1, 0x1122334455667788
mov32 r0, r1
exit
-- result 0x55667788

== mov32-reg-self-zero-extends
-- asm
lddw r0, 0xffffffffffffffff
mov32 r0, r0
exit
-- result 0xffffffff

== mov-vs-mov32-neg
-- asm
mov r1, -2
mov32 r0, -2
sub r1, r0
mov r0, r1
exit
-- result 0xffffffff00000000

== add32-imm
-- asm
mov r0, 1
add32 r0, 2
exit
-- result 3

== add32-imm-wraps
-- asm
mov32 r0, 0xffffffff
add32 r0, 1
exit
-- result 0

== add32-imm-clears-upper
-- asm
lddw r0, 0x1122334400000001
add32 r0, 1
exit
-- result 2

== add32-imm-zero-clears-upper
-- asm
lddw r0, 0xdeadbeef00000000
add32 r0, 0
exit
-- result 0

== add32-imm-neg
-- asm
mov r0, 5
add32 r0, -7
exit
-- result 0xfffffffe

== add32-reg-carry-dropped
-- asm
lddw r0, 0xaaaaaaaa80000000
lddw r1, 0xbbbbbbbb80000000
add32 r0, r1
exit
-- result 0

== add32-reg-upper-of-src-ignored
-- asm
lddw r1, 0x100000005
mov r0, 1
add32 r0, r1
exit
-- result 6

== add32-reg-self
-- asm
mov32 r0, 0x80000001
add32 r0, r0
exit
-- result 2

== sub32-imm
-- asm
mov r0, 10
sub32 r0, 3
exit
-- result 7

== sub32-imm-underflow
-- asm
mov r0, 0
sub32 r0, 1
exit
-- result 0xffffffff

== sub32-imm-neg
-- asm
mov r0, 1
sub32 r0, -1
exit
-- result 2

== sub32-reg-upper-ignored
-- asm
lddw r0, 0x500000003
lddw r1, 0x200000001
sub32 r0, r1
exit
-- result 2

== sub32-reg-borrow-not-propagated
-- asm
lddw r0, 0x100000000
mov r1, 1
sub32 r0, r1
exit
-- result 0xffffffff

== mul32-imm
-- asm
mov r0, 7
mul32 r0, 6
exit
-- result 42

== mul32-imm-wraps
-- asm
mov r0, 0x10000
mul32 r0, 0x10000
exit
-- result 0

== mul32-imm-neg
-- asm
mov r0, 7
mul32 r0, -6
exit
-- result 0xffffffd6

== mul32-reg-upper-ignored
-- asm
lddw r0, 0x100000003
lddw r1, 0x300000005
mul32 r0, r1
exit
-- result 15

== mul32-reg-big
-- asm
mov32 r0, 0x12345678
mov32 r1, 0x9abcdef0
mul32 r0, r1
exit
-- result 0x242d2080

== mul32-reg-neg-times-neg
-- asm
mov r0, -3
mov r1, -5
mul32 r0, r1
exit
-- result 15

== or32-imm-clears-upper
-- asm
lddw r0, 0xffffffff00000000
or32 r0, 0x10
exit
-- result 0x10

== or32-imm-neg
-- asm
mov r0, 0
or32 r0, -16
exit
-- result 0xfffffff0

== or32-reg
-- asm
mov r0, 0x0f
lddw r1, 0x10000000f0
or32 r0, r1
exit
-- result 0xff

== and32-imm
-- asm
lddw r0, 0xffffffffffffffff
and32 r0, 0xff00
exit
-- result 0xff00

== and32-imm-neg-clears-upper
-- asm
lddw r0, 0x1122334455667788
and32 r0, -256
exit
-- result 0x55667700

== and32-reg
-- asm
lddw r0, 0xffffffffffffffff
lddw r1, 0x0000ffff0000ffff
and32 r0, r1
exit
-- result 0xffff

== xor32-imm-neg
-- asm
lddw r0, 0xffffffff00000000
xor32 r0, -1
exit
-- result 0xffffffff

== xor32-imm
-- asm
lddw r0, 0x1234567800000ff0
xor32 r0, 0xff
exit
-- result 0xf0f

== xor32-reg
-- asm
lddw r0, 0x1234567812345678
lddw r1, 0x8765432187654321
xor32 r0, r1
exit
-- result 0x95511559

== xor32-reg-self
-- asm
lddw r0, 0x1234567812345678
xor32 r0, r0
exit
-- result 0

== neg32
-- asm
mov r0, 5
neg32 r0
exit
-- result 0xfffffffb

== neg32-clears-upper
-- asm
lddw r0, 0x1234567800000001
neg32 r0
exit
-- result 0xffffffff

== neg32-int32-min
-- asm
mov32 r0, 0x80000000
neg32 r0
exit
-- result 0x80000000

== neg32-low-zero
-- asm
lddw r0, 0x100000000
neg32 r0
exit
-- result 0

== neg32-negative
-- asm
mov r0, -7
neg32 r0
exit
-- result 7

== alu32-on-r9
-- asm
lddw r9, 0xffffffffffffffff
add32 r9, 1
mov r0, r9
exit
-- result 0

== sub32-imm-0x80000000
-- asm
mov r0, 0
sub32 r0, 0x80000000
exit
-- result 0x80000000

== mul32-imm-0x80000000
-- asm
mov r0, 3
mul32 r0, 0x80000000
exit
-- result 0x80000000

== xor32-imm-0x80000000-no-sign-extension
-- asm
lddw r0, 0xffffffffffffffff
xor32 r0, 0x80000000
exit
-- result 0x7fffffff
