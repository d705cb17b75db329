// See include/AllocationCounter.h. glibc exports its allocators as __libc_*; defining malloc & co.
// here interposes them for the whole test process. Under AddressSanitizer or ThreadSanitizer
// (Tools/sanitize.sh), which interpose the allocators themselves, nothing is defined and the test skips.
#define _GNU_SOURCE
#include "AllocationCounter.h"
#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <stdatomic.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define FN2E_NO_INTERPOSE 1
#endif
#endif
#if !defined(__GLIBC__) && !defined(__linux__)
#define FN2E_NO_INTERPOSE 1
#endif

static atomic_int counting;
static atomic_long over, blas;
static size_t limit;
static size_t sizes[16];

/// `caller`: the return address of the allocator's call, to tell OpenBLAS's own allocations apart.
static void note(size_t n, void *caller) {
    if (atomic_load_explicit(&counting, memory_order_relaxed) && n > limit) {
        Dl_info info;
        if (dladdr(caller, &info) && info.dli_fname && strstr(info.dli_fname, "openblas")) {
            atomic_fetch_add(&blas, 1);
            return;
        }
        long i = atomic_fetch_add(&over, 1);
        if (i < 16) sizes[i] = n;
    }
}

void allocation_counter_start(size_t bound) {
    limit = bound;
    atomic_store(&over, 0);
    atomic_store(&blas, 0);
    atomic_store(&counting, 1);
}

long allocation_counter_stop(void) {
    atomic_store(&counting, 0);
    return atomic_load(&over);
}

long allocation_counter_blas(void) { return atomic_load(&blas); }

size_t allocation_counter_size(long i) { return i >= 0 && i < 16 ? sizes[i] : 0; }

#ifdef FN2E_NO_INTERPOSE
int allocation_counter_available(void) { return 0; }
#else
int allocation_counter_available(void) { return 1; }

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

#define CALLER __builtin_return_address(0)
void *malloc(size_t n) { note(n, CALLER); return __libc_malloc(n); }
void *calloc(size_t count, size_t n) { note(count * n, CALLER); return __libc_calloc(count, n); }
void *realloc(void *p, size_t n) { note(n, CALLER); return __libc_realloc(p, n); }
void *memalign(size_t alignment, size_t n) { note(n, CALLER); return __libc_memalign(alignment, n); }
void *aligned_alloc(size_t alignment, size_t n) { note(n, CALLER); return __libc_memalign(alignment, n); }
int posix_memalign(void **out, size_t alignment, size_t n) {
    note(n, CALLER);
    void *p = __libc_memalign(alignment, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
#endif
