# DIV MOD SDIV SMOD (offset 1 = signed) in ALU64 and ALU.  RFC 9669 4.1:
#  DIV  dst = (src != 0) ? (dst / src) : 0
#  SDIV dst = (src != 0) ? (dst s/ src) : 0
#  MOD  dst = (src != 0) ? (dst % src) : dst
#  SMOD dst = (src != 0) ? (dst s% src) : dst
#  "If execution would result in modulo by zero, for ALU64 the value of the
#  destination register is unchanged whereas for ALU the upper 32 bits of the
#  destination register are zeroed."  Overflow wraps (INT_MIN s/ -1 = INT_MIN,
#  INT_MIN s% -1 = 0).  Unsigned: ALU imm is a u32; ALU64 imm is sign-extended
#  then taken as u64.  Signed: ALU imm is an s32; ALU64 imm sign-extended s64.
#  Signed modulo is truncated (C): a % n = a - n * trunc(a / n), -13 % 3 = -1.
# Division by an immediate 0 is given the RFC result (dst = 0 / unchanged).

== div-imm
-- asm
mov r0, 12
div r0, 4
exit
-- result 3

== div-imm-truncates
-- asm
mov r0, 13
div r0, 4
exit
-- result 3

== div-imm-neg-is-huge-unsigned
-- asm
mov r0, 10
div r0, -1
exit
-- result 0

== div-imm-neg-by-itself
-- asm
mov r0, -1
div r0, -1
exit
-- result 1

== div-imm-neg-2
-- asm
mov r0, -1
div r0, -2
exit
-- result 1

== div-imm-0x80000000-sign-extended
-- asm
mov r0, -1
div r0, 0x80000000
exit
-- result 1

== div-imm-zero
-- asm
mov r0, 5
div r0, 0
exit
-- result 0

== div-imm-64bit-dividend
-- asm
lddw r0, 0x123456789abcdef0
div r0, 0x10
exit
-- result 0x0123456789abcdef

== div-reg
-- asm
lddw r0, 0x100000000
mov r1, 2
div r0, r1
exit
-- result 0x80000000

== div-reg-unsigned
-- asm
mov r0, -1
mov r1, 2
div r0, r1
exit
-- result 0x7fffffffffffffff

== div-reg-64bit-divisor
-- asm
lddw r0, 0x300000000
lddw r1, 0x100000000
div r0, r1
exit
-- result 3

== div-reg-large
-- asm
lddw r0, 0x123456789abcdef0
lddw r1, 0x100000000
div r0, r1
exit
-- result 0x12345678

== div-reg-zero
-- asm
mov r0, 5
mov r1, 0
div r0, r1
exit
-- result 0

== div-reg-zero-64bit-dividend
-- asm
lddw r0, 0xffffffffffffffff
mov r1, 0
div r0, r1
exit
-- result 0

== div-reg-smaller-dividend
-- asm
mov r0, 3
mov r1, 4
div r0, r1
exit
-- result 0

== div32-imm
-- asm
mov r0, 12
div32 r0, 4
exit
-- result 3

== div32-imm-upper-of-dst-ignored
-- asm
lddw r0, 0x10000000c
div32 r0, 4
exit
-- result 3

== div32-imm-neg-is-u32
-- asm
mov32 r0, 0xffffffff
div32 r0, -1
exit
-- result 1

== div32-imm-neg-small-dividend
-- asm
mov r0, 10
div32 r0, -1
exit
-- result 0

== div32-imm-neg-2
-- asm
mov32 r0, -1
div32 r0, -2
exit
-- result 1

== div32-imm-0x80000000
-- asm
mov32 r0, 0xffffffff
div32 r0, 0x80000000
exit
-- result 1

== div32-imm-zero
-- asm
lddw r0, 0xffffffffffffffff
div32 r0, 0
exit
-- result 0

== div32-reg
-- asm
mov32 r0, 0xffffffff
mov r1, 16
div32 r0, r1
exit
-- result 0x0fffffff

== div32-reg-upper-of-divisor-ignored
-- asm
mov r0, 100
lddw r1, 0x100000004
div32 r0, r1
exit
-- result 25

== div32-reg-zero
-- asm
lddw r0, 0x100000005
mov r1, 0
div32 r0, r1
exit
-- result 0

== div32-reg-zero-in-low-half
-- asm
mov r0, 5
lddw r1, 0x100000000
div32 r0, r1
exit
-- result 0

== div32-reg-neg-dividend-unsigned
-- asm
mov r0, -8
mov r1, 2
div32 r0, r1
exit
-- result 0x7ffffffc

== mod-imm
-- asm
mov r0, 13
mod r0, 4
exit
-- result 1

== mod-imm-neg-is-huge-unsigned
-- asm
mov r0, 13
mod r0, -1
exit
-- result 13

== mod-imm-neg-2
-- asm
mov r0, -1
mod r0, -2
exit
-- result 1

== mod-imm-0x80000000-sign-extended
-- asm
lddw r0, 0xffffffff80000005
mod r0, 0x80000000
exit
-- result 5

== mod-imm-zero
-- asm
lddw r0, 0x1122334455667788
mod r0, 0
exit
-- result 0x1122334455667788

== mod-reg
-- asm
lddw r0, 0x123456789abcdef0
lddw r1, 0x100000000
mod r0, r1
exit
-- result 0x9abcdef0

== mod-reg-unsigned
-- asm
mov r0, -1
mov r1, 10
mod r0, r1
exit
-- result 5

== mod-reg-zero
-- asm
lddw r0, 0x1122334455667788
mov r1, 0
mod r0, r1
exit
-- result 0x1122334455667788

== mod-reg-self
-- asm
mov r0, 7
mod r0, r0
exit
-- result 0

== mod-reg-smaller-dividend
-- asm
mov r0, 3
mov r1, 4
mod r0, r1
exit
-- result 3

== mod32-imm
-- asm
mov r0, 13
mod32 r0, 4
exit
-- result 1

== mod32-imm-upper-of-dst-ignored
-- asm
lddw r0, 0x10000000d
mod32 r0, 4
exit
-- result 1

== mod32-imm-neg-is-u32
-- asm
mov32 r0, 0xffffffff
mod32 r0, -2
exit
-- result 1

== mod32-imm-neg-small-dividend
-- asm
mov r0, 13
mod32 r0, -1
exit
-- result 13

== mod32-imm-zero-clears-upper
-- asm
lddw r0, 0x1122334455667788
mod32 r0, 0
exit
-- result 0x55667788

== mod32-reg
-- asm
mov r0, 100
mov r1, 7
mod32 r0, r1
exit
-- result 2

== mod32-reg-upper-of-divisor-ignored
-- asm
mov r0, 100
lddw r1, 0x100000007
mod32 r0, r1
exit
-- result 2

== mod32-reg-unsigned
-- asm
mov32 r0, -1
mov r1, 10
mod32 r0, r1
exit
-- result 5

== mod32-reg-zero-clears-upper
-- asm
lddw r0, 0x1122334455667788
mov r1, 0
mod32 r0, r1
exit
-- result 0x55667788

== mod32-reg-zero-in-low-half-clears-upper
-- asm
lddw r0, 0x1122334455667788
lddw r1, 0x100000000
mod32 r0, r1
exit
-- result 0x55667788

== mod32-reg-result-clears-upper
-- asm
lddw r0, 0xffffffff0000000a
mov r1, 3
mod32 r0, r1
exit
-- result 1

== sdiv-imm
-- asm
mov r0, 12
sdiv r0, 4
exit
-- result 3

== sdiv-imm-neg-dividend-truncates
-- asm
mov r0, -7
sdiv r0, 2
exit
-- result -3

== sdiv-imm-neg-divisor
-- asm
mov r0, 7
sdiv r0, -2
exit
-- result -3

== sdiv-imm-both-neg
-- asm
mov r0, -7
sdiv r0, -2
exit
-- result 3

== sdiv-imm-0xffffffff-is-minus-one
-- asm
mov r0, 10
sdiv r0, 0xffffffff
exit
-- result -10

== sdiv-imm-neg-vs-div
-- asm
lddw r0, 0xfffffffffffffff0
mov r1, r0
sdiv r0, 4
div r1, 4
sub r1, r0
mov r0, r1
exit
-- result 0x4000000000000000

== sdiv-imm-int64-min-by-minus-one
-- asm
lddw r0, 0x8000000000000000
sdiv r0, -1
exit
-- result 0x8000000000000000

== sdiv-imm-int64-min-by-one
-- asm
lddw r0, 0x8000000000000000
sdiv r0, 1
exit
-- result 0x8000000000000000

== sdiv-imm-int64-min-by-two
-- asm
lddw r0, 0x8000000000000000
sdiv r0, 2
exit
-- result 0xc000000000000000

== sdiv-imm-zero
-- asm
mov r0, -5
sdiv r0, 0
exit
-- result 0

== sdiv-imm-small-by-larger
-- asm
mov r0, -3
sdiv r0, 4
exit
-- result 0

== sdiv-reg
-- asm
mov r0, -100
mov r1, 7
sdiv r0, r1
exit
-- result -14

== sdiv-reg-both-neg
-- asm
mov r0, -100
mov r1, -7
sdiv r0, r1
exit
-- result 14

== sdiv-reg-int64-min-by-minus-one
-- asm
lddw r0, 0x8000000000000000
mov r1, -1
sdiv r0, r1
exit
-- result 0x8000000000000000

== sdiv-reg-64bit-operands
-- asm
lddw r0, 0xfffffff000000000
lddw r1, 0x0000000100000000
sdiv r0, r1
exit
-- result -16

== sdiv-reg-zero
-- asm
mov r0, -5
mov r1, 0
sdiv r0, r1
exit
-- result 0

== smod-imm
-- asm
mov r0, 13
smod r0, 4
exit
-- result 1

== smod-imm-neg-dividend
-- asm
mov r0, -13
smod r0, 3
exit
-- result -1

== smod-imm-neg-divisor
-- asm
mov r0, 13
smod r0, -3
exit
-- result 1

== smod-imm-both-neg
-- asm
mov r0, -13
smod r0, -3
exit
-- result -1

== smod-imm-exact-negative
-- asm
mov r0, -12
smod r0, 4
exit
-- result 0

== smod-imm-int64-min-by-minus-one
-- asm
lddw r0, 0x8000000000000000
smod r0, -1
exit
-- result 0

== smod-imm-int64-min-by-three
-- asm
lddw r0, 0x8000000000000000
smod r0, 3
exit
-- result -2

== smod-imm-zero-unchanged
-- asm
lddw r0, 0x8000000000000001
smod r0, 0
exit
-- result 0x8000000000000001

== smod-reg
-- asm
mov r0, -100
mov r1, 7
smod r0, r1
exit
-- result -2

== smod-reg-neg-divisor
-- asm
mov r0, 100
mov r1, -7
smod r0, r1
exit
-- result 2

== smod-reg-int64-min-by-minus-one
-- asm
lddw r0, 0x8000000000000000
mov r1, -1
smod r0, r1
exit
-- result 0

== smod-reg-zero-unchanged
-- asm
mov r0, -5
mov r1, 0
smod r0, r1
exit
-- result -5

== smod-reg-vs-mod
-- asm
mov r0, -1
mov r1, 10
smod r0, r1
exit
-- result -1

== sdiv32-imm
-- asm
mov32 r0, -7
sdiv32 r0, 2
exit
-- result 0xfffffffd

== sdiv32-imm-upper-of-dst-ignored
-- asm
lddw r0, 0x7fffffff00000010
sdiv32 r0, -4
exit
-- result 0xfffffffc

== sdiv32-imm-neg-divisor
-- asm
mov r0, 7
sdiv32 r0, -2
exit
-- result 0xfffffffd

== sdiv32-imm-both-neg
-- asm
mov r0, -7
sdiv32 r0, -2
exit
-- result 3

== sdiv32-imm-int32-min-by-minus-one
-- asm
mov32 r0, 0x80000000
sdiv32 r0, -1
exit
-- result 0x80000000

== sdiv32-imm-int32-min-by-itself
-- asm
mov32 r0, 0x80000000
sdiv32 r0, 0x80000000
exit
-- result 1

== sdiv32-imm-zero
-- asm
lddw r0, 0xfffffffffffffff9
sdiv32 r0, 0
exit
-- result 0

== sdiv32-reg
-- asm
mov32 r0, -100
mov32 r1, 7
sdiv32 r0, r1
exit
-- result 0xfffffff2

== sdiv32-reg-divisor-sign-from-bit-31
-- asm
mov r0, 100
lddw r1, 0x00000000fffffff9
sdiv32 r0, r1
exit
-- result 0xfffffff2

== sdiv32-reg-int32-min-by-minus-one
-- asm
mov32 r0, 0x80000000
mov32 r1, -1
sdiv32 r0, r1
exit
-- result 0x80000000

== sdiv32-reg-zero
-- asm
mov r0, -7
mov r1, 0
sdiv32 r0, r1
exit
-- result 0

== sdiv32-reg-zero-in-low-half
-- asm
mov r0, -7
lddw r1, 0xffffffff00000000
sdiv32 r0, r1
exit
-- result 0

== smod32-imm-neg-dividend
-- asm
mov32 r0, -13
smod32 r0, 3
exit
-- result 0xffffffff

== smod32-imm-neg-divisor
-- asm
mov r0, 13
smod32 r0, -3
exit
-- result 1

== smod32-imm-both-neg
-- asm
mov r0, -13
smod32 r0, -3
exit
-- result 0xffffffff

== smod32-imm-upper-of-dst-ignored
-- asm
lddw r0, 0x123456780000000d
smod32 r0, -4
exit
-- result 1

== smod32-imm-dividend-sign-from-bit-31
-- asm
lddw r0, 0x00000000fffffff3
smod32 r0, 5
exit
-- result 0xfffffffd

== smod32-imm-int32-min-divisor
-- asm
mov r0, 5
smod32 r0, 0x80000000
exit
-- result 5

== smod32-imm-int32-min-by-minus-one
-- asm
mov32 r0, 0x80000000
smod32 r0, -1
exit
-- result 0

== smod32-imm-zero-clears-upper
-- asm
lddw r0, 0x11223344fffffffb
smod32 r0, 0
exit
-- result 0xfffffffb

== smod32-reg
-- asm
mov32 r0, -100
mov r1, 7
smod32 r0, r1
exit
-- result 0xfffffffe

== smod32-reg-int32-min-by-minus-one
-- asm
mov32 r0, 0x80000000
mov r1, -1
smod32 r0, r1
exit
-- result 0

== smod32-reg-zero-clears-upper
-- asm
lddw r0, 0x11223344fffffffb
mov r1, 0
smod32 r0, r1
exit
-- result 0xfffffffb

== smod32-reg-zero-in-low-half-clears-upper
-- asm
lddw r0, 0x1122334400000007
lddw r1, 0x0000000500000000
smod32 r0, r1
exit
-- result 7

== div-reg-self
-- asm
lddw r0, 0xfedcba9876543210
div r0, r0
exit
-- result 1

== div-reg-self-zero
-- asm
mov r0, 0
div r0, r0
exit
-- result 0

== mod-reg-self-zero-unchanged
-- asm
mov r0, 0
mod r0, r0
exit
-- result 0

== sdiv-reg-self-int64-min
-- asm
lddw r0, 0x8000000000000000
sdiv r0, r0
exit
-- result 1

== sdiv-imm-0x80000000-sign-extended
-- asm
mov r0, 0x80000000
sdiv r0, 0x80000000
exit
-- result 1

== smod-imm-0x80000000-sign-extended
-- asm
mov32 r0, 0x80000000
smod r0, 0x80000000
exit
-- result 0

== div32-reg-self
-- asm
lddw r0, 0x1234567800000007
div32 r0, r0
exit
-- result 1

== mod32-reg-self-zero-clears-upper
-- asm
lddw r0, 0x1234567800000000
mod32 r0, r0
exit
-- result 0
