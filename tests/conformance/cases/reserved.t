# Defined instructions whose unused fields are not zero.  RFC 9669 3: "Note
# that most instructions do not use all of the fields.  Unused fields shall
# be cleared to zero."  (The wide-encoding "reserved" word must also be 0.)
# We treat such encodings as malformed and expect them to be rejected, as the
# Linux verifier does ("uses reserved fields").

== add-imm-with-src-reg-nonzero
-- asm
mov r0, 1
.insn 0x07, 0, 1, 0, 1
exit
-- error

== add-reg-with-imm-nonzero
-- asm
mov r0, 1
mov r1, 1
.insn 0x0f, 0, 1, 0, 5
exit
-- error

== add-with-offset-nonzero
-- asm
mov r0, 1
.insn 0x07, 0, 0, 1, 1
exit
-- error

== neg-with-imm-nonzero
-- asm
mov r0, 1
.insn 0x87, 0, 0, 0, 1
exit
-- error

== end-with-src-reg-nonzero
-- asm
mov r0, 1
.insn 0xdc, 0, 1, 0, 16
exit
-- error

== exit-with-imm-nonzero
-- asm
mov r0, 1
.insn 0x95, 0, 0, 0, 1
-- error

== exit-with-dst-nonzero
-- asm
mov r0, 1
.insn 0x95, 1, 0, 0, 0
-- error

== ja-with-imm-nonzero
-- asm
mov r0, 1
.insn 0x05, 0, 0, 0, 1
exit
-- error

== ja32-with-offset-nonzero
-- asm
mov r0, 1
.insn 0x06, 0, 0, 1, 0
exit
-- error

== jeq-reg-with-imm-nonzero
-- asm
mov r0, 1
.insn 0x1d, 0, 0, 0, 1
exit
-- error

== call-helper-with-offset-nonzero
-- asm
.insn 0x85, 0, 0, 1, 2
exit
-- error

== callx-with-imm-nonzero
-- asm
mov r1, 2
.insn 0x8d, 1, 0, 0, 2
exit
-- error

== ldx-with-imm-nonzero
-- mem
01 00 00 00
-- asm
.insn 0x61, 0, 1, 0, 1
exit
-- error

== st-with-src-nonzero
-- asm
.insn 0x62, 10, 1, -4, 1
mov r0, 0
exit
-- error

== stx-with-imm-nonzero
-- asm
.insn 0x63, 10, 1, -4, 1
mov r0, 0
exit
-- error

== lddw-with-offset-nonzero
-- asm
.raw 18 00 01 00 01 00 00 00
.raw 00 00 00 00 00 00 00 00
exit
-- error
