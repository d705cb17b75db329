// Counts heap allocations larger than a bound while counting is on: malloc, calloc, realloc and the
// aligned allocators are interposed (defined in the test executable, so every library's calls come
// here) and forwarded to glibc's own. For the allocation test (TrainingTests/AllocationTests).
// Allocations made by OpenBLAS itself are counted apart: its threaded GEMM mallocs a job table
// (512 KB) on every call, bookkeeping of the library that no caller can hand memory to.
#ifndef ALLOCATION_COUNTER_H
#define ALLOCATION_COUNTER_H
#include <stddef.h>

/// Whether the allocators are interposed (not under a sanitizer, which brings its own, nor off glibc).
int allocation_counter_available(void);
/// Starts counting allocations of more than `bound` bytes (the count and sizes start from zero).
void allocation_counter_start(size_t bound);
/// Stops counting; returns how many allocations were over the bound, OpenBLAS's own left out.
long allocation_counter_stop(void);
/// How many of the allocations over the bound since the start OpenBLAS made (its GEMM's job table).
long allocation_counter_blas(void);
/// The size of over-the-bound allocation `i` (the first 16 are kept), for the failure message.
size_t allocation_counter_size(long i);
#endif
