# Byte swap (END, code 0xd).  RFC 9669 4.2: ALU TO_LE (source 0, opcode 0xd4):
# dst = htole16/32/64(dst); ALU TO_BE (source 1, 0xdc): dst = htobe16/32/64;
# ALU64 (0xd7): dst = bswap16/32/64(dst) unconditionally.  The functions take
# and return an unsigned N-bit number, so the 16/32-bit forms truncate dst
# (upper bits become 0).  Host is little-endian: htole is a truncation only.

== le16
-- asm
lddw r0, 0x1122334455667788
le16 r0
exit
-- result 0x7788

== le32
-- asm
lddw r0, 0x1122334455667788
le32 r0
exit
-- result 0x55667788

== le64
-- asm
lddw r0, 0x1122334455667788
le64 r0
exit
-- result 0x1122334455667788

== be16
-- asm
lddw r0, 0x1122334455667788
be16 r0
exit
-- result 0x8877

== be32
-- asm
lddw r0, 0x1122334455667788
be32 r0
exit
-- result 0x88776655

== be64
-- asm
lddw r0, 0x1122334455667788
be64 r0
exit
-- result 0x8877665544332211

== bswap16
-- asm
lddw r0, 0x1122334455667788
bswap16 r0
exit
-- result 0x8877

== bswap32
-- asm
lddw r0, 0x1122334455667788
bswap32 r0
exit
-- result 0x88776655

== bswap64
-- asm
lddw r0, 0x1122334455667788
bswap64 r0
exit
-- result 0x8877665544332211

== le16-small-unchanged
-- asm
mov r0, 0x1234
le16 r0
exit
-- result 0x1234

== le32-clears-upper
-- asm
lddw r0, 0xffffffff01020304
le32 r0
exit
-- result 0x01020304

== le16-clears-upper
-- asm
lddw r0, 0xffffffffffff8001
le16 r0
exit
-- result 0x8001

== be16-small
-- asm
mov r0, 0x1234
be16 r0
exit
-- result 0x3412

== be16-clears-upper
-- asm
lddw r0, 0xffffffffffff0102
be16 r0
exit
-- result 0x0201

== be32-clears-upper
-- asm
lddw r0, 0xffffffff01020304
be32 r0
exit
-- result 0x04030201

== be32-high-bit-no-sign-extension
-- asm
mov r0, 0x80
be32 r0
exit
-- result 0x80000000

== be64-sequence
-- asm
lddw r0, 0x0102030405060708
be64 r0
exit
-- result 0x0807060504030201

== be32-twice-restores
-- asm
mov32 r0, 0x12345678
be32 r0
be32 r0
exit
-- result 0x12345678

== bswap16-clears-upper
-- asm
lddw r0, 0xffffffffffff0102
bswap16 r0
exit
-- result 0x0201

== bswap32-no-sign-extension
-- asm
mov32 r0, 0x80000001
bswap32 r0
exit
-- result 0x01000080

== bswap32-clears-upper
-- asm
lddw r0, 0xaabbccdd00000080
bswap32 r0
exit
-- result 0x80000000

== bswap64-high-bit
-- asm
mov r0, 0x80
bswap64 r0
exit
-- result 0x8000000000000000

== bswap64-twice-restores
-- asm
lddw r0, 0xfedcba9876543210
bswap64 r0
bswap64 r0
exit
-- result 0xfedcba9876543210

== be16-other-register
-- asm
mov r3, 0xabcd
be16 r3
mov r0, r3
exit
-- result 0xcdab

== bswap16-other-register
-- asm
lddw r7, 0x123456789abcdef0
bswap16 r7
mov r0, r7
exit
-- result 0xf0de
