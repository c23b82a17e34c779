/* SPDX-License-Identifier: MIT */
/*
 * Instructions only -mcpu=v4 has: signed division and modulo, sign-extending
 * moves and loads, unconditional byte swaps.  r1 = two s64 operands.
 */
typedef unsigned long long u64;
typedef long long s64;
#define SEC(name) __attribute__((section(name), used))

SEC("sdiv") u64 sdiv_prog(void *mem, u64 len)
{
	const volatile s64 *v = mem;

	if (len < 16 || v[1] == 0)
		return 0;
	return (u64)(v[0] / v[1]);
}

SEC("smod") u64 smod_prog(void *mem, u64 len)
{
	const volatile s64 *v = mem;

	if (len < 16 || v[1] == 0)
		return 0;
	return (u64)(v[0] % v[1]);
}

/* ldsx for the byte straight from memory, movsx for the computed values. */
SEC("sext") u64 sext_prog(void *mem, u64 len)
{
	const volatile signed char *b = mem;
	const volatile s64 *v = mem;
	s64 x;

	if (len < 16)
		return 0;
	x = v[1];
	return (u64)((s64)b[0] + (s64)(signed char)(x + 1) +
		     (s64)(short)(x * 3) + (s64)(int)(x << 4));
}

SEC("bswap") u64 bswap_prog(void *mem, u64 len)
{
	const volatile u64 *v = mem;

	if (len < 16)
		return 0;
	return __builtin_bswap64(v[0]) ^ __builtin_bswap32((unsigned)v[1]) ^
	       __builtin_bswap16((unsigned short)(v[1] >> 32));
}
