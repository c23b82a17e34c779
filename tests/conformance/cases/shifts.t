# LSH RSH ARSH in ALU64 and ALU.  RFC 9669 4.1: "Shift operations use a mask
# of 0x3F (63) for 64-bit operations and 0x1F (31) for 32-bit operations";
# dst <<= (src & mask).  ARSH is sign-extending; RSH is logical.  ALU (32-bit)
# shifts operate on the low 32 bits and zero the upper half.

== lsh-imm
-- asm
mov r0, 1
lsh r0, 4
exit
-- result 0x10

== lsh-imm-63
-- asm
mov r0, 1
lsh r0, 63
exit
-- result 0x8000000000000000

== lsh-imm-0
-- asm
mov r0, 7
lsh r0, 0
exit
-- result 7

== lsh-imm-32-crosses-halves
-- asm
mov32 r0, 0xffffffff
lsh r0, 32
exit
-- result 0xffffffff00000000

== lsh-imm-bits-shifted-out
-- asm
lddw r0, 0xff00000000000001
lsh r0, 8
exit
-- result 0x100

== lsh-imm-64-masked-to-0
-- asm
mov r0, 1
lsh r0, 64
exit
-- result 1

== lsh-imm-65-masked-to-1
-- asm
mov r0, 1
lsh r0, 65
exit
-- result 2

== lsh-reg
-- asm
mov r0, 1
mov r1, 40
lsh r0, r1
exit
-- result 0x10000000000

== lsh-reg-64-masked
-- asm
mov r0, 1
mov r1, 64
lsh r0, r1
exit
-- result 1

== lsh-reg-65-masked
-- asm
mov r0, 1
mov r1, 65
lsh r0, r1
exit
-- result 2

== lsh-reg-upper-bits-of-amount-masked
-- asm
mov r0, 1
lddw r1, 0x1000000000000004
lsh r0, r1
exit
-- result 0x10

== lsh-reg-minus-one-is-63
-- asm
mov r0, 1
mov r1, -1
lsh r0, r1
exit
-- result 0x8000000000000000

== rsh-imm
-- asm
lddw r0, 0x8000000000000000
rsh r0, 63
exit
-- result 1

== rsh-imm-logical
-- asm
lddw r0, 0xffffffffffffffff
rsh r0, 4
exit
-- result 0x0fffffffffffffff

== rsh-imm-64-masked-to-0
-- asm
lddw r0, 0x8000000000000000
rsh r0, 64
exit
-- result 0x8000000000000000

== rsh-reg-32
-- asm
lddw r0, 0x123456789abcdef0
mov r1, 32
rsh r0, r1
exit
-- result 0x12345678

== rsh-reg-68-masked-to-4
-- asm
lddw r0, 0x123456789abcdef0
mov r1, 68
rsh r0, r1
exit
-- result 0x0123456789abcdef

== rsh-reg-upper-amount-bits-masked
-- asm
mov r0, 2
lddw r1, 0xffffffff00000001
rsh r0, r1
exit
-- result 1

== rsh-reg-0
-- asm
lddw r0, 0xfedcba9876543210
mov r1, 0
rsh r0, r1
exit
-- result 0xfedcba9876543210

== arsh-imm-sign-fill
-- asm
lddw r0, 0x8000000000000000
arsh r0, 63
exit
-- result 0xffffffffffffffff

== arsh-imm-positive
-- asm
lddw r0, 0x7000000000000000
arsh r0, 60
exit
-- result 7

== arsh-imm-negative
-- asm
mov r0, -16
arsh r0, 2
exit
-- result -4

== arsh-imm-64-masked-to-0
-- asm
mov r0, -16
arsh r0, 64
exit
-- result -16

== arsh-imm-uses-bit-63-not-31
-- asm
mov32 r0, 0x80000000
arsh r0, 4
exit
-- result 0x08000000

== arsh-reg
-- asm
mov r0, -256
mov r1, 4
arsh r0, r1
exit
-- result -16

== arsh-reg-66-masked-to-2
-- asm
mov r0, -256
mov r1, 66
arsh r0, r1
exit
-- result -64

== arsh-reg-63-positive
-- asm
lddw r0, 0x7fffffffffffffff
mov r1, 63
arsh r0, r1
exit
-- result 0

== arsh-reg-0
-- asm
mov r0, -3
mov r1, 0
arsh r0, r1
exit
-- result -3

== lsh32-imm-31
-- asm
mov r0, 1
lsh32 r0, 31
exit
-- result 0x80000000

== lsh32-imm-clears-upper
-- asm
lddw r0, 0x100000001
lsh32 r0, 1
exit
-- result 2

== lsh32-imm-bit-shifted-out-dropped
-- asm
mov32 r0, 0x80000001
lsh32 r0, 1
exit
-- result 2

== lsh32-imm-32-masked-to-0
-- asm
mov r0, 1
lsh32 r0, 32
exit
-- result 1

== lsh32-imm-0-clears-upper
-- asm
lddw r0, 0xffffffff00000003
lsh32 r0, 0
exit
-- result 3

== lsh32-reg-32-masked
-- asm
mov r0, 1
mov r1, 32
lsh32 r0, r1
exit
-- result 1

== lsh32-reg-33-masked
-- asm
mov r0, 1
mov r1, 33
lsh32 r0, r1
exit
-- result 2

== lsh32-reg-upper-amount-bits-ignored
-- asm
mov r0, 1
lddw r1, 0x100000003
lsh32 r0, r1
exit
-- result 8

== rsh32-imm-logical-low-half
-- asm
lddw r0, 0xffffffffffffffff
rsh32 r0, 4
exit
-- result 0x0fffffff

== rsh32-imm-upper-not-shifted-in
-- asm
lddw r0, 0x100000000
rsh32 r0, 1
exit
-- result 0

== rsh32-imm-0-clears-upper
-- asm
lddw r0, 0x1122334455667788
rsh32 r0, 0
exit
-- result 0x55667788

== rsh32-imm-32-masked
-- asm
lddw r0, 0x1122334455667788
rsh32 r0, 32
exit
-- result 0x55667788

== rsh32-reg-63-masked-to-31
-- asm
mov32 r0, 0x80000000
mov r1, 63
rsh32 r0, r1
exit
-- result 1

== rsh32-reg
-- asm
mov32 r0, 0x12345678
mov r1, 8
rsh32 r0, r1
exit
-- result 0x123456

== arsh32-imm-31
-- asm
mov32 r0, 0x80000000
arsh32 r0, 31
exit
-- result 0xffffffff

== arsh32-imm-sign-from-bit-31
-- asm
lddw r0, 0x8000000070000000
arsh32 r0, 4
exit
-- result 0x07000000

== arsh32-imm-negative
-- asm
mov32 r0, -16
arsh32 r0, 2
exit
-- result 0xfffffffc

== arsh32-imm-0-clears-upper
-- asm
lddw r0, 0xffffffff80000000
arsh32 r0, 0
exit
-- result 0x80000000

== arsh32-imm-32-masked-to-0
-- asm
mov32 r0, 0x80000000
arsh32 r0, 32
exit
-- result 0x80000000

== arsh32-reg-33-masked-to-1
-- asm
mov32 r0, 0x80000000
mov r1, 33
arsh32 r0, r1
exit
-- result 0xc0000000

== arsh32-reg-positive
-- asm
lddw r0, 0xffffffff7ffffff0
mov r1, 4
arsh32 r0, r1
exit
-- result 0x07ffffff

== arsh32-reg-upper-amount-bits-ignored
-- asm
mov32 r0, -256
lddw r1, 0xffffffff00000004
arsh32 r0, r1
exit
-- result 0xfffffff0

== lsh-reg-self
-- asm
mov r0, 3
lsh r0, r0
exit
-- result 24

== arsh32-reg-self
-- asm
mov32 r1, 0x80000004
arsh32 r1, r1
mov r0, r1
exit
-- result 0xf8000000

== rsh-reg-self-masked
-- asm
lddw r0, 0x8000000000000041
rsh r0, r0
exit
-- result 0x4000000000000020
