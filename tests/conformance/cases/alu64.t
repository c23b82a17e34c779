# ALU64 (class 0x07): ADD SUB MUL OR AND XOR MOV NEG, imm (K) and register (X)
# forms.  RFC 9669 4.1: 64-bit wrap-around; in ALU64 the 32-bit imm is sign
# extended to 64 bits ({XOR, K, ALU64}: dst = dst ^ imm).

== mov-imm
-- asm
mov r0, 0x12345678
exit
-- result 0x12345678

== mov-imm-neg-sign-extends
-- asm
mov r0, -1
exit
-- result 0xffffffffffffffff

== mov-imm-0x80000000-sign-extends
-- asm
mov r0, 0x80000000        # imm bit pattern = INT32_MIN
exit
-- result 0xffffffff80000000

== mov-imm-0x7fffffff
-- asm
mov r0, 0x7fffffff
exit
-- result 0x7fffffff

== mov-imm-replaces-upper-half
-- asm
lddw r0, 0xffffffffffffffff
mov r0, 5
exit
-- result 5

== mov-reg
-- asm
lddw r1, 0x1122334455667788
mov r0, r1
exit
-- result 0x1122334455667788

== mov-reg-self
-- asm
lddw r0, 0x8000000000000001
mov r0, r0
exit
-- result 0x8000000000000001

== mov-reg-chain-all-registers
-- asm
mov r9, 9
mov r8, r9
mov r7, r8
mov r6, r7
mov r5, r6
mov r4, r5
mov r3, r4
mov r2, r3
mov r1, r2
mov r0, r1
exit
-- result 9

== add-imm
-- asm
mov r0, 1
add r0, 2
exit
-- result 3

== add-imm-neg
-- asm
mov r0, 5
add r0, -7
exit
-- result -2

== add-imm-neg-to-zero
-- asm
mov r0, 7
add r0, -7
exit
-- result 0

== add-imm-carries-into-upper-half
-- asm
lddw r0, 0xffffffff
add r0, 1
exit
-- result 0x100000000

== add-imm-0xffffffff-is-minus-one
-- asm
mov r0, 0
add r0, 0xffffffff
exit
-- result 0xffffffffffffffff

== add-imm-max
-- asm
mov r0, 0x7fffffff
add r0, 0x7fffffff
exit
-- result 0xfffffffe

== add-reg
-- asm
mov r0, 40
mov r1, 2
add r0, r1
exit
-- result 42

== add-reg-signed-overflow-wraps
-- asm
lddw r0, 0x7fffffffffffffff
mov r1, 1
add r0, r1
exit
-- result 0x8000000000000000

== add-reg-unsigned-wrap
-- asm
lddw r0, 0xffffffffffffffff
mov r1, 2
add r0, r1
exit
-- result 1

== add-reg-sum-r1-to-r9
-- asm
mov r1, 1
mov r2, 2
mov r3, 3
mov r4, 4
mov r5, 5
mov r6, 6
mov r7, 7
mov r8, 8
mov r9, 9
mov r0, 0
add r0, r1
add r0, r2
add r0, r3
add r0, r4
add r0, r5
add r0, r6
add r0, r7
add r0, r8
add r0, r9
exit
-- result 45

== add-reg-r10-readable
-- asm
mov r0, r10
sub r0, r10
exit
-- result 0

== sub-imm
-- asm
mov r0, 10
sub r0, 3
exit
-- result 7

== sub-imm-neg
-- asm
mov r0, 10
sub r0, -3
exit
-- result 13

== sub-imm-underflow
-- asm
mov r0, 0
sub r0, 1
exit
-- result 0xffffffffffffffff

== sub-reg-borrow-from-upper
-- asm
lddw r0, 0x100000000
mov r1, 1
sub r0, r1
exit
-- result 0xffffffff

== sub-reg-self
-- asm
lddw r0, 0x8000000000000000
sub r0, r0
exit
-- result 0

== sub-reg-neg-result
-- asm
mov r0, 3
mov r1, 5
sub r0, r1
exit
-- result -2

== mul-imm
-- asm
mov r0, 7
mul r0, 6
exit
-- result 42

== mul-imm-neg
-- asm
mov r0, 7
mul r0, -6
exit
-- result -42

== mul-imm-64bit-result
-- asm
lddw r0, 0x100000001
mul r0, 0x10000
exit
-- result 0x1000000010000

== mul-imm-zero
-- asm
lddw r0, 0x1122334455667788
mul r0, 0
exit
-- result 0

== mul-reg-64bit
-- asm
lddw r0, 0x100000000
mov r1, 0x10
mul r0, r1
exit
-- result 0x1000000000

== mul-reg-wraps-to-zero
-- asm
lddw r0, 0x100000000
mov r1, r0
mul r0, r1
exit
-- result 0

== mul-reg-wrap
-- asm
lddw r0, 0x123456789abcdef0
lddw r1, 0x0fedcba987654321
mul r0, r1
exit
-- result 0x2236d88fe5618cf0

== mul-reg-neg-times-neg
-- asm
mov r0, -3
mov r1, -5
mul r0, r1
exit
-- result 15

== or-imm
-- asm
mov r0, 0x10
or r0, 0x01
exit
-- result 0x11

== or-imm-neg-sign-extends
-- asm
mov r0, 0
or r0, -16
exit
-- result 0xfffffffffffffff0

== or-reg
-- asm
lddw r0, 0xff00000000000000
lddw r1, 0xff
or r0, r1
exit
-- result 0xff000000000000ff

== and-imm
-- asm
lddw r0, 0x1122334455667788
and r0, 0xffff
exit
-- result 0x7788

== and-imm-neg-keeps-upper
-- asm
lddw r0, 0x1122334455667788
and r0, -256
exit
-- result 0x1122334455667700

== and-imm-0x80000000-sign-extends
-- asm
lddw r0, 0xffffffffffffffff
and r0, 0x80000000
exit
-- result 0xffffffff80000000

== and-imm-0x7fffffff
-- asm
lddw r0, 0xffffffffffffffff
and r0, 0x7fffffff
exit
-- result 0x7fffffff

== and-reg
-- asm
lddw r0, 0xf0f0f0f0f0f0f0f0
lddw r1, 0x0ff00ff00ff00ff0
and r0, r1
exit
-- result 0x00f000f000f000f0

== xor-imm
-- asm
mov r0, 0x0f
xor r0, 0xff
exit
-- result 0xf0

== xor-imm-neg-sign-extends
-- asm
mov r0, 0
xor r0, -1
exit
-- result 0xffffffffffffffff

== xor-reg-self
-- asm
lddw r0, 0x1122334455667788
mov r1, r0
xor r0, r1
exit
-- result 0

== xor-reg
-- asm
lddw r0, 0xaaaaaaaaaaaaaaaa
lddw r1, 0xffffffff00000000
xor r0, r1
exit
-- result 0x55555555aaaaaaaa

== neg
-- asm
mov r0, 5
neg r0
exit
-- result -5

== neg-negative
-- asm
mov r0, -5
neg r0
exit
-- result 5

== neg-zero
-- asm
mov r0, 0
neg r0
exit
-- result 0

== neg-int64-min
-- asm
lddw r0, 0x8000000000000000
neg r0
exit
-- result 0x8000000000000000

== neg-64bit
-- asm
lddw r0, 0x100000000
neg r0
exit
-- result 0xffffffff00000000

== neg-other-register
-- asm
mov r3, 1
neg r3
mov r0, r3
exit
-- result 0xffffffffffffffff

== alu-ops-do-not-touch-other-registers
-- asm
mov r0, 1
mov r1, 2
lddw r2, 0x1111111111111111
add r1, r2
mul r1, 3
xor r1, -1
mov r0, r2
exit
-- result 0x1111111111111111

== sub-imm-0x80000000-sign-extended
-- asm
mov r0, 0
sub r0, 0x80000000
exit
-- result 0x80000000

== mul-imm-0x80000000-sign-extended
-- asm
mov r0, 2
mul r0, 0x80000000
exit
-- result 0xffffffff00000000

== xor-imm-0x80000000-sign-extended
-- asm
mov r0, 0
xor r0, 0x80000000
exit
-- result 0xffffffff80000000
