# LDX MEMSX (mode 0x80): sign-extending loads of 1, 2, 4 bytes.
# RFC 9669 5.2: dst = *(signed size *)(src + offset), size s8 / s16 / s32,
# sign-extended to 64 bits.

== ldxsb-negative
-- mem
80 ff 7f 00 00 80 ff ff 01 02 03 04 05 06 07 88
-- asm
ldxsb r0, [r1]
exit
-- result 0xffffffffffffff80

== ldxsb-minus-one
-- mem
80 ff 7f 00 00 80 ff ff 01 02 03 04 05 06 07 88
-- asm
ldxsb r0, [r1+1]
exit
-- result 0xffffffffffffffff

== ldxsb-positive
-- mem
80 ff 7f 00 00 80 ff ff 01 02 03 04 05 06 07 88
-- asm
ldxsb r0, [r1+2]
exit
-- result 0x7f

== ldxsb-zero
-- mem
80 ff 7f 00 00 80 ff ff 01 02 03 04 05 06 07 88
-- asm
lddw r0, 0xffffffffffffffff
ldxsb r0, [r1+3]
exit
-- result 0

== ldxsb-last-byte
-- mem
80 ff 7f 00 00 80 ff ff 01 02 03 04 05 06 07 88
-- asm
ldxsb r0, [r1+15]
exit
-- result 0xffffffffffffff88

== ldxsb-overwrites-dst
-- mem
80 ff 7f 00 00 80 ff ff 01 02 03 04 05 06 07 88
-- asm
lddw r0, 0x1122334455667788
ldxsb r0, [r1+2]
exit
-- result 0x7f

== ldxsh-negative
-- mem
80 ff 7f 00 00 80 ff ff 01 02 03 04 05 06 07 88
-- asm
ldxsh r0, [r1]
exit
-- result 0xffffffffffffff80

== ldxsh-positive
-- mem
80 ff 7f 00 00 80 ff ff 01 02 03 04 05 06 07 88
-- asm
ldxsh r0, [r1+2]
exit
-- result 0x7f

== ldxsh-int16-min
-- mem
80 ff 7f 00 00 80 ff ff 01 02 03 04 05 06 07 88
-- asm
ldxsh r0, [r1+4]
exit
-- result 0xffffffffffff8000

== ldxsh-unaligned
-- mem
80 ff 7f 00 00 80 ff ff 01 02 03 04 05 06 07 88
-- asm
ldxsh r0, [r1+1]
exit
-- result 0x7fff

== ldxsh-last
-- mem
80 ff 7f 00 00 80 ff ff 01 02 03 04 05 06 07 88
-- asm
ldxsh r0, [r1+14]
exit
-- result 0xffffffffffff8807

== ldxsw-negative
-- mem
80 ff 7f 00 00 80 ff ff 01 02 03 04 05 06 07 88
-- asm
ldxsw r0, [r1+4]
exit
-- result 0xffffffffffff8000

== ldxsw-positive
-- mem
80 ff 7f 00 00 80 ff ff 01 02 03 04 05 06 07 88
-- asm
ldxsw r0, [r1]
exit
-- result 0x007fff80

== ldxsw-last
-- mem
80 ff 7f 00 00 80 ff ff 01 02 03 04 05 06 07 88
-- asm
ldxsw r0, [r1+12]
exit
-- result 0xffffffff88070605

== ldxsw-positive-offset-8
-- mem
80 ff 7f 00 00 80 ff ff 01 02 03 04 05 06 07 88
-- asm
ldxsw r0, [r1+8]
exit
-- result 0x04030201

== ldxsw-unaligned-negative
-- mem
80 ff 7f 00 00 80 ff ff 01 02 03 04 05 06 07 88
-- asm
ldxsw r0, [r1+5]
exit
-- result 0x01ffff80

== ldxsw-unaligned-negative-2
-- mem
80 ff 7f 00 00 80 ff ff 01 02 03 04 05 06 07 88
-- asm
ldxsw r0, [r1+11]
exit
-- result 0x07060504

== ldxsw-int32-min
-- mem
00 00 00 80
-- asm
ldxsw r0, [r1]
exit
-- result 0xffffffff80000000

== ldxsb-negative-offset
-- mem
80 ff 7f 00 00 80 ff ff 01 02 03 04 05 06 07 88
-- asm
add r1, 16
ldxsb r0, [r1-16]
exit
-- result -128

== ldxb-vs-ldxsb
-- mem
80
-- asm
ldxb r2, [r1]
ldxsb r3, [r1]
sub r3, r2
mov r0, r3
exit
-- result 0xffffffffffffff00

== ldxsb-stack
-- asm
stb [r10-1], 0xfe
ldxsb r0, [r10-1]
exit
-- result -2

== ldxsh-stack
-- asm
sth [r10-2], 0x8001
ldxsh r0, [r10-2]
exit
-- result 0xffffffffffff8001

== ldxsw-stack
-- asm
stw [r10-4], 0x80000000
ldxsw r0, [r10-4]
exit
-- result 0xffffffff80000000

== ldxsw-stack-from-stxdw
-- asm
lddw r1, 0x00000000fffffffd
stxdw [r10-8], r1
ldxsw r0, [r10-8]
exit
-- result -3
