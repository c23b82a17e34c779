# JMP class (0x05): 64-bit comparisons.  RFC 9669 4.3: PC += offset if the
# condition holds; offsets count instructions from the next one.  JGT JGE JLT
# JLE unsigned, JSGT JSGE JSLT JSLE signed, JSET = (dst & src) != 0.  In the
# K form the 32-bit imm is sign-extended to 64 bits.
# Pattern: r0 = 1 if the branch is taken, 0 if not.

== jeq-imm-equal
-- asm
mov r0, 0
mov r1, 5
jeq r1, 5, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jeq-imm-different
-- asm
mov r0, 0
mov r1, 5
jeq r1, 6, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jeq-imm-imm-sign-extended
-- asm
mov r0, 0
mov r1, -1
jeq r1, -1, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jeq-imm-imm-sign-extended-not-u32
-- asm
mov r0, 0
mov32 r1, -1
jeq r1, -1, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jeq-imm-imm-0x80000000
-- asm
mov r0, 0
mov r1, 0x80000000
jeq r1, 0x80000000, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jeq-reg-equal
-- asm
mov r0, 0
mov r1, 5
mov r2, 5
jeq r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jeq-reg-upper-half-differs
-- asm
mov r0, 0
lddw r1, 0x100000005
mov r2, 5
jeq r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jeq-reg-int64-min
-- asm
mov r0, 0
lddw r1, 0x8000000000000000
lddw r2, 0x8000000000000000
jeq r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jne-imm-different
-- asm
mov r0, 0
mov r1, 5
jne r1, 6, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jne-imm-equal
-- asm
mov r0, 0
mov r1, 5
jne r1, 5, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jne-imm-imm-sign-extended
-- asm
mov r0, 0
mov32 r1, -1
jne r1, -1, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jne-reg-upper-half-differs
-- asm
mov r0, 0
lddw r1, 0x100000005
mov r2, 5
jne r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jne-reg-equal
-- asm
mov r0, 0
mov r1, 7
mov r2, 7
jne r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jgt-imm-greater
-- asm
mov r0, 0
mov r1, 6
jgt r1, 5, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jgt-imm-equal
-- asm
mov r0, 0
mov r1, 5
jgt r1, 5, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jgt-imm-less
-- asm
mov r0, 0
mov r1, 4
jgt r1, 5, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jgt-imm-unsigned-minus-one-is-max
-- asm
mov r0, 0
mov r1, -1
jgt r1, 1, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jgt-imm-unsigned-imm-minus-one
-- asm
mov r0, 0
mov r1, 1
jgt r1, -1, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jgt-imm-64bit-dst
-- asm
mov r0, 0
lddw r1, 0x100000000
jgt r1, 0x7fffffff, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jgt-reg-greater
-- asm
mov r0, 0
mov r1, 6
mov r2, 5
jgt r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jgt-reg-equal
-- asm
mov r0, 0
mov r1, 5
mov r2, 5
jgt r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jgt-reg-unsigned-high-bit
-- asm
mov r0, 0
lddw r1, 0x8000000000000000
lddw r2, 0x7fffffffffffffff
jgt r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jge-imm-equal
-- asm
mov r0, 0
mov r1, 5
jge r1, 5, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jge-imm-less
-- asm
mov r0, 0
mov r1, 4
jge r1, 5, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jge-imm-greater
-- asm
mov r0, 0
mov r1, 6
jge r1, 5, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jge-imm-unsigned-minus-one
-- asm
mov r0, 0
mov r1, -1
jge r1, 1, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jge-imm-unsigned-imm-minus-one
-- asm
mov r0, 0
mov r1, 1
jge r1, -1, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jge-imm-both-minus-one
-- asm
mov r0, 0
mov r1, -1
jge r1, -1, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jge-reg-equal
-- asm
mov r0, 0
mov r1, 5
mov r2, 5
jge r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jge-reg-less
-- asm
mov r0, 0
mov r1, 4
mov r2, 5
jge r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jge-reg-64bit
-- asm
mov r0, 0
lddw r1, 0x100000000
lddw r2, 0xffffffff
jge r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jlt-imm-less
-- asm
mov r0, 0
mov r1, 4
jlt r1, 5, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jlt-imm-equal
-- asm
mov r0, 0
mov r1, 5
jlt r1, 5, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jlt-imm-unsigned-minus-one
-- asm
mov r0, 0
mov r1, -1
jlt r1, 1, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jlt-imm-unsigned-imm-minus-one
-- asm
mov r0, 0
mov r1, 1
jlt r1, -1, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jlt-reg-less
-- asm
mov r0, 0
mov r1, 4
mov r2, 5
jlt r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jlt-reg-equal
-- asm
mov r0, 0
mov r1, 5
mov r2, 5
jlt r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jlt-reg-unsigned-high-bit
-- asm
mov r0, 0
lddw r1, 0x7fffffffffffffff
lddw r2, 0x8000000000000000
jlt r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jle-imm-equal
-- asm
mov r0, 0
mov r1, 5
jle r1, 5, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jle-imm-greater
-- asm
mov r0, 0
mov r1, 6
jle r1, 5, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jle-imm-unsigned-imm-minus-one
-- asm
mov r0, 0
mov r1, 1
jle r1, -1, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jle-imm-unsigned-minus-one
-- asm
mov r0, 0
mov r1, -1
jle r1, 1, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jle-reg-less
-- asm
mov r0, 0
mov r1, 4
mov r2, 5
jle r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jle-reg-greater
-- asm
mov r0, 0
mov r1, 6
mov r2, 5
jle r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jsgt-imm-greater
-- asm
mov r0, 0
mov r1, 6
jsgt r1, 5, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jsgt-imm-equal
-- asm
mov r0, 0
mov r1, 5
jsgt r1, 5, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jsgt-imm-signed-minus-one
-- asm
mov r0, 0
mov r1, -1
jsgt r1, 1, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jsgt-imm-signed-imm-minus-one
-- asm
mov r0, 0
mov r1, 1
jsgt r1, -1, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jsgt-imm-both-negative
-- asm
mov r0, 0
mov r1, -1
jsgt r1, -2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jsgt-imm-0xffffffff-positive-in-64bit
-- asm
mov r0, 0
mov32 r1, -1
jsgt r1, 0, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jsgt-reg-int64-min
-- asm
mov r0, 0
lddw r1, 0x8000000000000000
lddw r2, 0x7fffffffffffffff
jsgt r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jsgt-reg-int64-max
-- asm
mov r0, 0
lddw r1, 0x7fffffffffffffff
lddw r2, 0x8000000000000000
jsgt r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jsge-imm-equal
-- asm
mov r0, 0
mov r1, 5
jsge r1, 5, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jsge-imm-signed-minus-one
-- asm
mov r0, 0
mov r1, -1
jsge r1, 1, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jsge-imm-both-minus-one
-- asm
mov r0, 0
mov r1, -1
jsge r1, -1, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jsge-imm-signed-imm-minus-one
-- asm
mov r0, 0
mov r1, 1
jsge r1, -1, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jsge-imm-less
-- asm
mov r0, 0
mov r1, 4
jsge r1, 5, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jsge-reg-equal-negative
-- asm
mov r0, 0
mov r1, -5
mov r2, -5
jsge r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jsge-reg-less-negative
-- asm
mov r0, 0
mov r1, -6
mov r2, -5
jsge r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jslt-imm-signed-minus-one
-- asm
mov r0, 0
mov r1, -1
jslt r1, 1, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jslt-imm-signed-imm-minus-one
-- asm
mov r0, 0
mov r1, 1
jslt r1, -1, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jslt-imm-equal
-- asm
mov r0, 0
mov r1, 5
jslt r1, 5, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jslt-imm-int64-min
-- asm
mov r0, 0
lddw r1, 0x8000000000000000
jslt r1, 0, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jslt-reg-both-negative
-- asm
mov r0, 0
mov r1, -2
mov r2, -1
jslt r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jslt-reg-both-negative-greater
-- asm
mov r0, 0
mov r1, -1
mov r2, -2
jslt r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jsle-imm-equal-negative
-- asm
mov r0, 0
mov r1, -1
jsle r1, -1, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jsle-imm-signed-imm-minus-one
-- asm
mov r0, 0
mov r1, 1
jsle r1, -1, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jsle-imm-less-negative
-- asm
mov r0, 0
mov r1, -2
jsle r1, -1, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jsle-imm-greater
-- asm
mov r0, 0
mov r1, 6
jsle r1, 5, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jsle-reg-int64-min
-- asm
mov r0, 0
lddw r1, 0x8000000000000000
lddw r2, 0x7fffffffffffffff
jsle r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jsle-reg-int64-max
-- asm
mov r0, 0
lddw r1, 0x7fffffffffffffff
lddw r2, 0x8000000000000000
jsle r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jset-imm-common-bit
-- asm
mov r0, 0
mov r1, 10
jset r1, 2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jset-imm-no-common-bit
-- asm
mov r0, 0
mov r1, 10
jset r1, 5, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jset-imm-imm-sign-extended
-- asm
mov r0, 0
lddw r1, 0x8000000000000000
jset r1, -1, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jset-imm-upper-half-only
-- asm
mov r0, 0
lddw r1, 0x100000000
jset r1, 0x7fffffff, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jset-imm-zero
-- asm
mov r0, 0
mov r1, 0
jset r1, -1, yes
exit
yes:
mov r0, 1
exit
-- result 0

== jset-reg-upper-half-bit
-- asm
mov r0, 0
lddw r1, 0x100000000
lddw r2, 0x100000000
jset r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 1

== jset-reg-disjoint
-- asm
mov r0, 0
mov r1, 240
mov r2, 15
jset r1, r2, yes
exit
yes:
mov r0, 1
exit
-- result 0

== ja-forward
-- asm
mov r0, 1
ja skip
mov r0, 2
skip:
exit
-- result 1

== ja-raw-offset-counts-from-next
-- asm
mov r0, 0
ja +2
add r0, 1
add r0, 2
add r0, 4
exit
-- result 4

== ja-offset-zero-is-noop
-- asm
mov r0, 3
ja +0
add r0, 1
exit
-- result 4

== ja-backward
-- asm
mov r0, 0
ja start
back:
add r0, 10
exit
start:
add r0, 1
ja back
-- result 11

== ja-to-last-exit
-- asm
mov r0, 9
ja end
mov r0, 1
mov r0, 2
end:
exit
-- result 9

== jeq-offset-zero-either-way
-- asm
mov r0, 5
jeq r0, 5, +0
add r0, 1
jeq r0, 5, +0
add r0, 1
exit
-- result 7

== jne-backward-loop-sum
-- asm
mov r0, 0
mov r1, 10
loop:
add r0, r1
sub r1, 1
jne r1, 0, loop
exit
-- result 55

== jslt-backward-loop-negative-counter
-- asm
mov r0, 0
mov r1, -5
loop:
add r0, 2
add r1, 1
jslt r1, 0, loop
exit
-- result 10

== jlt-reg-loop-unsigned
-- asm
mov r0, 0
mov r1, 0
mov r2, 7
loop:
add r1, 1
add r0, r1
jlt r1, r2, loop
exit
-- result 28

== jset-loop-over-bits
-- asm
lddw r1, 0x8000000000000101
mov r0, 0
loop:
mov r2, r1
and r2, 1
add r0, r2
rsh r1, 1
jne r1, 0, loop
exit
-- result 3

== jump-chain
-- asm
mov r0, 0
ja a
c:
add r0, 4
ja done
b:
add r0, 2
ja c
a:
add r0, 1
ja b
done:
exit
-- result 7

== cond-jump-dst-not-modified
-- asm
lddw r1, 0x1122334455667788
mov r2, 3
jgt r1, r2, +0
jset r1, -1, +0
jsle32 r1, 7, +0
mov r0, r1
exit
-- result 0x1122334455667788

== jeq-src-equals-dst-register
-- asm
mov r0, 0
lddw r1, 0xdeadbeefcafebabe
jeq r1, r1, +1
exit
mov r0, 1
exit
-- result 1

== jgt-imm-0x80000000-is-sign-extended
# imm 0x80000000 becomes 0xffffffff80000000 in a 64-bit comparison
-- asm
mov r0, 0
mov32 r1, 0xffffffff
jgt r1, 0x80000000, +1
exit
mov r0, 1
exit
-- result 0

== jlt-imm-minus-one-is-u64-max
-- asm
mov r0, 0
mov32 r1, 0xffffffff
jlt r1, -1, +1
exit
mov r0, 1
exit
-- result 1
