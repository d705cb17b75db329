// What the C kernels share: one clone per x86 instruction set, chosen when the library loads (Swift
// compiles for baseline x86-64, so its own vectors run as SSE everywhere).
#ifndef FN2E_CLONES_H
#define FN2E_CLONES_H

#if defined(__x86_64__) && defined(__linux__)
#define CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))
#define WIDE __builtin_cpu_supports("avx512f")  // 32 vector registers
#else
#define CLONES
#define WIDE 0
#endif
#define INLINE static inline __attribute__((always_inline))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
