/* SPDX-License-Identifier: MIT */
/*
 * Programs that misbehave on purpose; the engine must stop each one with an
 * error instead of letting it touch host memory or run forever.
 */
typedef unsigned long long u64;
typedef unsigned char u8;
#define SEC(name) __attribute__((section(name), used))

static const u64 ro_table[4] = { 1, 2, 3, 4 };

/* Reads 64 bytes past the end of the memory it was given. */
SEC("read_oob") u64 read_oob_prog(void *mem, u64 len)
{
	const volatile u8 *p = mem;

	return p[len + 64];
}

/* Writes past the end of the memory it was given. */
SEC("write_oob") u64 write_oob_prog(void *mem, u64 len)
{
	volatile u8 *p = mem;

	p[len] = 0xff;
	return 0;
}

/* Stores into .rodata through a cast-away const. */
SEC("write_rodata") u64 write_rodata_prog(void *mem, u64 len)
{
	(void)mem;
	((volatile u64 *)ro_table)[len & 3] = 99;
	return ro_table[0];
}

__attribute__((noinline)) static u64 recurse(u64 n)
{
	volatile u64 guard = n;

	if (guard == 0)
		return 0;
	return recurse(guard - 1) + 1;
}

/* Nests local calls deeper than the engine allows (r2 = depth). */
SEC("deep_recursion") u64 deep_recursion_prog(void *mem, u64 len)
{
	(void)mem;
	return recurse(len);
}

/* Never ends: the instruction budget has to stop it. */
SEC("spin") u64 spin_prog(void *mem, u64 len)
{
	volatile u64 i = len;

	(void)mem;
	for (;;)
		i = i + 1;
	return i;
}
