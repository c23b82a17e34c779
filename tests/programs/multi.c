/* SPDX-License-Identifier: MIT */
/*
 * Several programs in one object (and no .text subprograms, so the section
 * list is exactly these three).  r1 = array of u64, r2 = its length in bytes.
 */
typedef unsigned long long u64;
#define SEC(name) __attribute__((section(name), used))

SEC("sum") u64 sum_prog(void *mem, u64 len)
{
	const u64 *w = mem;
	u64 s = 0;

	for (u64 i = 0; i < len / 8 && i < 32; i++)
		s += w[i];
	return s;
}

SEC("xor") u64 xor_prog(void *mem, u64 len)
{
	const u64 *w = mem;
	u64 s = 0;

	for (u64 i = 0; i < len / 8 && i < 32; i++)
		s ^= w[i];
	return s;
}

SEC("max") u64 max_prog(void *mem, u64 len)
{
	const u64 *w = mem;
	u64 m = 0;

	for (u64 i = 0; i < len / 8 && i < 32; i++)
		if (w[i] > m)
			m = w[i];
	return m;
}
