/* SPDX-License-Identifier: MIT */
/*
 * Local (bpf-to-bpf) calls into .text.  The entry calls a global function
 * (relocated against its symbol) and a static one (against the .text section
 * symbol); inside .text, fold calls static mix (plain pc-relative call, no
 * relocation) and chain calls global square_plus twice (relocated in
 * .rel.text).  r1 = bytes, r2 = length.
 */
typedef unsigned long long u64;
typedef unsigned char u8;
#define SEC(name) __attribute__((section(name), used))

__attribute__((noinline)) static u64 mix(u64 h, u64 byte)
{
	return (h ^ byte) * 0x100000001b3ULL;
}

/* FNV-1a over at most 64 bytes. */
__attribute__((noinline)) u64 fold(const u8 *p, u64 n)
{
	u64 h = 0xcbf29ce484222325ULL;

	if (n > 64)
		n = 64;
	for (u64 i = 0; i < n; i++)
		h = mix(h, p[i]);
	return h;
}

__attribute__((noinline)) u64 square_plus(u64 x)
{
	return x * x + 1;
}

__attribute__((noinline)) static u64 chain(u64 x)
{
	return square_plus(x) + square_plus(x + 1);
}

SEC("subprog") u64 subprog_prog(void *mem, u64 len)
{
	return fold(mem, len) ^ chain(len);
}
