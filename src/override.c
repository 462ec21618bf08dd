/* override.c - the standard malloc family, for LD_PRELOAD and for programs
 * linked with libnumaslab.  malloc and free inline the fast paths; the rest
 * call the ns_* entry points.  Memory allocated by libc itself (strdup,
 * getline, open_memstream, ...) goes through these symbols, so it is ours
 * and free() accepts it. */
#include "api.h"
#include <numaslab.h>

#ifdef NS_LINETRACE
void linetrace_op(void);        /* bench/numa/linetrace.c counts operations */
#define OP() linetrace_op()
#else
#define OP() ((void)0)
#endif

NS_API void *malloc(size_t size) { OP(); return api_malloc(size); }
NS_API void free(void *p) { OP(); api_free(p); }
NS_API void cfree(void *p) { OP(); api_free(p); }
NS_API void *calloc(size_t count, size_t size) { OP(); return ns_calloc(count, size); }
NS_API void *realloc(void *p, size_t size) { OP(); return ns_realloc(p, size); }
NS_API void *reallocarray(void *p, size_t count, size_t size) { OP(); return ns_reallocarray(p, count, size); }
NS_API int posix_memalign(void **out, size_t align, size_t size) { OP(); return ns_posix_memalign(out, align, size); }
NS_API void *aligned_alloc(size_t align, size_t size) { OP(); return ns_aligned_alloc(align, size); }
NS_API void *memalign(size_t align, size_t size) { OP(); return ns_memalign(align, size); }
NS_API void *valloc(size_t size) { OP(); return ns_valloc(size); }
NS_API void *pvalloc(size_t size) { OP(); return ns_pvalloc(size); }
NS_API size_t malloc_usable_size(void *p) { OP(); return ns_malloc_usable_size(p); }
NS_API int malloc_trim(size_t pad) { OP(); return ns_malloc_trim(pad); }
