# JMP32 class (0x06): the same conditions on the low 32 bits of the operands
# (RFC 9669 4.3: {JSGE, X, JMP32}: if (s32)dst s>= (s32)src goto +offset).
# Pattern: r0 = 1 if the branch is taken, 0 if not.

== jeq32-imm-upper-half-ignored
-- asm
mov r0, 0
lddw r1, 0x100000005
jeq32 r1, 5, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jeq32-imm-different
-- asm
mov r0, 0
mov r1, 5
jeq32 r1, 6, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jeq32-imm-imm-minus-one-low-half
-- asm
mov r0, 0
lddw r1, 0xffffffff
jeq32 r1, -1, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jeq32-imm-low-half-zero
-- asm
mov r0, 0
lddw r1, 0xffffffff00000000
jeq32 r1, 0, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jeq32-reg-upper-halves-differ
-- asm
mov r0, 0
lddw r1, 0x100000005
lddw r2, 0x200000005
jeq32 r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jeq32-reg-low-halves-differ
-- asm
mov r0, 0
lddw r1, 0x100000005
lddw r2, 0x100000006
jeq32 r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jne32-imm-upper-half-ignored
-- asm
mov r0, 0
lddw r1, 0x100000005
jne32 r1, 5, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jne32-imm-different
-- asm
mov r0, 0
lddw r1, 0x100000005
jne32 r1, 4, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jne32-reg-upper-halves-differ
-- asm
mov r0, 0
lddw r1, 0x100000005
lddw r2, 0x200000005
jne32 r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jne32-reg-low-halves-differ
-- asm
mov r0, 0
mov r1, 1
lddw r2, 0x100000000
jne32 r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jgt32-imm-upper-half-ignored
-- asm
mov r0, 0
lddw r1, 0x100000001
jgt32 r1, 2, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jgt32-imm-unsigned-0xffffffff
-- asm
mov r0, 0
mov32 r1, -1
jgt32 r1, 1, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jgt32-imm-unsigned-imm-minus-one
-- asm
mov r0, 0
mov r1, 1
jgt32 r1, -1, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jgt32-imm-greater
-- asm
mov r0, 0
mov r1, 3
jgt32 r1, 2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jgt32-reg-upper-half-ignored
-- asm
mov r0, 0
lddw r1, 0x100000001
mov r2, 2
jgt32 r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jgt32-reg-greater-low-half
-- asm
mov r0, 0
mov r1, 3
lddw r2, 0x100000002
jgt32 r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jge32-imm-equal-low-half
-- asm
mov r0, 0
lddw r1, 0x200000005
jge32 r1, 5, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jge32-imm-less-low-half
-- asm
mov r0, 0
lddw r1, 0x100000004
jge32 r1, 5, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jge32-imm-low-half-zero
-- asm
mov r0, 0
lddw r1, 0xffffffff00000000
jge32 r1, 1, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jge32-reg-equal-low-half
-- asm
mov r0, 0
lddw r1, 0xffffffff
lddw r2, 0x1ffffffff
jge32 r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jge32-reg-less-low-half
-- asm
mov r0, 0
mov r1, 1
lddw r2, 0x100000002
jge32 r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jlt32-imm-upper-half-ignored
-- asm
mov r0, 0
lddw r1, 0x100000001
jlt32 r1, 2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jlt32-imm-unsigned-0xffffffff
-- asm
mov r0, 0
mov32 r1, -1
jlt32 r1, 1, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jlt32-imm-unsigned-imm-minus-one
-- asm
mov r0, 0
mov r1, 1
jlt32 r1, -1, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jlt32-reg-less-low-half
-- asm
mov r0, 0
lddw r1, 0x100000004
mov r2, 5
jlt32 r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jlt32-reg-equal-low-half
-- asm
mov r0, 0
mov r1, 5
lddw r2, 0x100000005
jlt32 r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jle32-imm-equal-low-half
-- asm
mov r0, 0
lddw r1, 0x100000005
jle32 r1, 5, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jle32-imm-greater
-- asm
mov r0, 0
mov r1, 6
jle32 r1, 5, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jle32-imm-low-half-zero
-- asm
mov r0, 0
lddw r1, 0xffffffff00000000
jle32 r1, 0, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jle32-reg-greater-low-half
-- asm
mov r0, 0
lddw r1, 0x200000006
lddw r2, 0x100000005
jle32 r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jle32-reg-equal-low-half
-- asm
mov r0, 0
mov r1, 5
lddw r2, 0x100000005
jle32 r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jsgt32-imm-0xffffffff-is-minus-one
-- asm
mov r0, 0
mov32 r1, -1
jsgt32 r1, 0, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jsgt32-imm-low-half-zero
-- asm
mov r0, 0
lddw r1, 0xffffffff00000000
jsgt32 r1, -1, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jsgt32-imm-imm-int32-min
-- asm
mov r0, 0
mov r1, 0
jsgt32 r1, 0x80000000, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jsgt32-imm-int32-max
-- asm
mov r0, 0
mov32 r1, 0x7fffffff
jsgt32 r1, 0x80000000, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jsgt32-imm-upper-half-ignored
-- asm
mov r0, 0
lddw r1, 0x100000001
jsgt32 r1, 1, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jsgt32-reg-int32-min
-- asm
mov r0, 0
mov32 r1, 0x80000000
mov32 r2, 0x7fffffff
jsgt32 r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jsgt32-reg-int32-max
-- asm
mov r0, 0
mov32 r1, 0x7fffffff
mov32 r2, 0x80000000
jsgt32 r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jsge32-imm-equal-minus-one
-- asm
mov r0, 0
mov32 r1, -1
jsge32 r1, -1, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jsge32-imm-minus-one-vs-zero
-- asm
mov r0, 0
mov32 r1, -1
jsge32 r1, 0, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jsge32-imm-upper-half-ignored
-- asm
mov r0, 0
lddw r1, 0x100000000
jsge32 r1, 0, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jsge32-reg-int32-min-equal
-- asm
mov r0, 0
mov32 r1, 0x80000000
mov32 r2, 0x80000000
jsge32 r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jsge32-reg-int32-min-less
-- asm
mov r0, 0
mov32 r1, 0x80000000
mov32 r2, 0x80000001
jsge32 r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jslt32-imm-0xffffffff-is-minus-one
-- asm
mov r0, 0
mov32 r1, -1
jslt32 r1, 0, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jslt32-imm-zero-vs-minus-one
-- asm
mov r0, 0
mov r1, 0
jslt32 r1, -1, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jslt32-imm-int32-min
-- asm
mov r0, 0
mov32 r1, 0x80000000
jslt32 r1, 0x7fffffff, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jslt32-reg-both-negative-low-half
-- asm
mov r0, 0
lddw r1, 0x1fffffffe
mov32 r2, -1
jslt32 r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jslt32-reg-int32-max
-- asm
mov r0, 0
mov32 r1, 0x7fffffff
mov32 r2, 0x80000000
jslt32 r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jsle32-imm-equal-minus-one
-- asm
mov r0, 0
mov32 r1, -1
jsle32 r1, -1, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jsle32-imm-zero-vs-minus-one
-- asm
mov r0, 0
lddw r1, 0x100000000
jsle32 r1, -1, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jsle32-imm-int32-min-equal
-- asm
mov r0, 0
mov32 r1, 0x80000000
jsle32 r1, 0x80000000, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jsle32-reg-both-negative
-- asm
mov r0, 0
mov32 r1, 0xfffffffe
mov32 r2, -1
jsle32 r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jsle32-reg-low-half-zero
-- asm
mov r0, 0
mov r1, 1
lddw r2, 0x100000000
jsle32 r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jset32-imm-upper-half-ignored
-- asm
mov r0, 0
lddw r1, 0xffffffff00000000
jset32 r1, -1, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jset32-imm-low-bit
-- asm
mov r0, 0
lddw r1, 0x100000001
jset32 r1, 1, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jset32-imm-bit-31
-- asm
mov r0, 0
mov32 r1, 0x80000000
jset32 r1, 0x80000000, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jset32-reg-upper-half-ignored
-- asm
mov r0, 0
lddw r1, 0xffffffff00000000
lddw r2, 0xffffffff00000000
jset32 r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jset32-reg-low-bit
-- asm
mov r0, 0
lddw r1, 0x100000003
mov r2, 2
jset32 r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== ja32-forward
-- asm
mov r0, 1
ja32 skip
mov r0, 2
skip:
exit
-- result 1

== ja32-raw-offset-counts-from-next
-- asm
mov r0, 0
ja32 +2
add r0, 1
add r0, 2
add r0, 4
exit
-- result 4

== ja32-offset-zero-is-noop
-- asm
mov r0, 3
ja32 +0
add r0, 1
exit
-- result 4

== ja32-backward-loop
-- asm
mov r0, 0
mov r1, 5
loop:
add r0, 3
sub r1, 1
jeq r1, 0, done
ja32 loop
done:
exit
-- result 15

== ja32-ignores-offset-field-when-zero
# JMP32 JA takes the target from imm; the offset field is 0 here
-- asm
mov r0, 1
.insn 0x06, 0, 0, 0, 1
mov r0, 2
exit
-- result 1

== ja32-long-forward-jump-beyond-16-bits
# 33000 instructions skipped: the offset does not fit the 16-bit offset field
-- asm
mov r0, 1
ja32 far
.rep 33000
mov r0, 2
.endr
far:
exit
-- result 1

== ja32-long-backward-jump-beyond-16-bits
-- asm
mov r0, 0
ja32 start
back:
add r0, 10
exit
.rep 33000
mov r0, 99
.endr
start:
add r0, 1
ja32 back
-- result 11

== jmp32-backward-loop-low-half-counter
-- asm
mov r0, 0
lddw r1, 0x7700000003
loop:
add r0, 1
sub32 r1, 1
jne32 r1, 0, loop
exit
-- result 3

== jgt32-imm-0x80000000-unsigned
-- asm
mov r0, 0
mov32 r1, 0xffffffff
jgt32 r1, 0x80000000, +1
exit
mov r0, 1
exit
-- result 1

== jlt32-imm-minus-one-is-u32-max
-- asm
mov r0, 0
lddw r1, 0xfffffffffffffffe
jlt32 r1, -1, +1
exit
mov r0, 1
exit
-- result 1
