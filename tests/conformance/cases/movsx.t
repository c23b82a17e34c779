# MOVSX (MOV with offset 8/16/32, register source only).  RFC 9669 4.1:
# {MOVSX, X, ALU} sign extends 8-bit and 16-bit operands into 32-bit operands
# and zeroes the remaining upper 32 bits; {MOVSX, X, ALU64} sign extends
# 8-, 16- and 32-bit operands into 64-bit operands.
# (ALU with offset 32 is not defined by the RFC: see reserved.t.)

== movsx8-positive
-- asm
mov r1, 0x7f
movsx8 r0, r1
exit
-- result 0x7f

== movsx8-negative
-- asm
mov r1, 0x80
movsx8 r0, r1
exit
-- result 0xffffffffffffff80

== movsx8-ff
-- asm
mov r1, 0x1ff
movsx8 r0, r1
exit
-- result 0xffffffffffffffff

== movsx8-ignores-upper-bits
-- asm
lddw r1, 0x12345678abcdef01
movsx8 r0, r1
exit
-- result 1

== movsx8-self
-- asm
mov r0, 0x180
movsx8 r0, r0
exit
-- result 0xffffffffffffff80

== movsx8-overwrites-dst
-- asm
lddw r0, 0x1122334455667788
mov r1, 1
movsx8 r0, r1
exit
-- result 1

== movsx8-src-unchanged
-- asm
mov r1, 0x80
movsx8 r2, r1
mov r0, r1
exit
-- result 0x80

== movsx16-positive
-- asm
mov r1, 0x7fff
movsx16 r0, r1
exit
-- result 0x7fff

== movsx16-negative
-- asm
mov r1, 0x8000
movsx16 r0, r1
exit
-- result 0xffffffffffff8000

== movsx16-ignores-upper-bits
-- asm
lddw r1, 0xffffffffffff1234
movsx16 r0, r1
exit
-- result 0x1234

== movsx16-ffff
-- asm
mov32 r1, 0xffff
movsx16 r0, r1
exit
-- result 0xffffffffffffffff

== movsx32-positive
-- asm
lddw r1, 0xffffffff7fffffff
movsx32 r0, r1
exit
-- result 0x7fffffff

== movsx32-negative
-- asm
mov32 r1, 0x80000000
movsx32 r0, r1
exit
-- result 0xffffffff80000000

== movsx32-negative-upper-ignored
-- asm
lddw r1, 0x00000001fffffffe
movsx32 r0, r1
exit
-- result 0xfffffffffffffffe

== movsx32-on-r9
-- asm
mov32 r9, -3
movsx32 r9, r9
mov r0, r9
exit
-- result -3

== movsx8_32-negative
-- asm
mov r1, 0x80
movsx8_32 r0, r1
exit
-- result 0xffffff80

== movsx8_32-positive-ignores-upper
-- asm
mov r1, 0x17f
movsx8_32 r0, r1
exit
-- result 0x7f

== movsx8_32-clears-upper-of-dst
-- asm
lddw r0, 0xffffffffffffffff
mov r1, 0x7f
movsx8_32 r0, r1
exit
-- result 0x7f

== movsx8_32-minus-one
-- asm
lddw r1, 0xffffffffffffffff
movsx8_32 r0, r1
exit
-- result 0xffffffff

== movsx16_32-negative
-- asm
mov r1, 0x8001
movsx16_32 r0, r1
exit
-- result 0xffff8001

== movsx16_32-positive
-- asm
lddw r1, 0xffffffffffff7fff
movsx16_32 r0, r1
exit
-- result 0x7fff

== movsx16_32-from-64bit-value
-- asm
lddw r1, 0x123456789abcfedc
movsx16_32 r0, r1
exit
-- result 0xfffffedc

== movsx16_32-self
-- asm
lddw r0, 0xaaaaaaaa0000ff00
movsx16_32 r0, r0
exit
-- result 0xffffff00
