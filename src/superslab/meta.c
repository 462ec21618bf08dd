/* meta.c - the allocator's own metadata: thread caches, large_t records,
 * node pools.  Objects are rounded to 64 bytes and carved from 1 MiB chunks
 * mapped from the OS; freed objects go to a free list per rounded size.  A
 * handful of distinct sizes exist, so the size table is tiny.  All under
 * meta_lock (taken after every other lock, takes none).
 */
#include <pthread.h>
#include <string.h>

#include "../hugepage/hugepage.h"
#include "superslab.h"

#define META_CHUNK ((size_t)1 << 20)
#define META_SIZES 16

static pthread_mutex_t meta_lock = PTHREAD_MUTEX_INITIALIZER;
static size_t free_size[META_SIZES];    /* rounded object size, 0: unused */
static void *free_list[META_SIZES];
static char *chunk_cur, *chunk_end;

static void **list_for(size_t size)
{
    for (int i = 0; i < META_SIZES; i++) {
        if (free_size[i] == size)
            return &free_list[i];
        if (free_size[i] == 0) {
            free_size[i] = size;
            return &free_list[i];
        }
    }
    return NULL;    /* more distinct sizes than expected: no recycling */
}

void *meta_alloc(size_t size)
{
    size = (size + 63) & ~(size_t)63;
    void *p = NULL;
    lock_take(&meta_lock, LOCK_META);
    void **list = list_for(size);
    if (list && *list) {
        p = *list;
        *list = *(void **)p;
    } else {
        if ((size_t)(chunk_end - chunk_cur) < size) {
            size_t csize = size > META_CHUNK ? (size + META_CHUNK - 1) & ~(META_CHUNK - 1) : META_CHUNK;
            /* hardened: a guard page on each side, so that no user
             * mapping (a large block) lies right next to metadata */
            size_t guard = ns_config_hardened ? ns_page_size() : 0;
            void *m;
            if (hp_map(csize + 2 * guard, guard ? guard : NS_PAGE_MIN, 0, &m) == 0) {
                if (guard) {
                    hp_guard(m, guard);
                    hp_guard((char *)m + guard + csize, guard);
                }
                chunk_cur = (char *)m + guard;
                chunk_end = chunk_cur + csize;
            }
        }
        if ((size_t)(chunk_end - chunk_cur) >= size) {
            p = chunk_cur;
            chunk_cur += size;
        }
    }
    lock_drop(&meta_lock, LOCK_META);
    if (p)
        memset(p, 0, size);
    return p;
}

void meta_free(void *p, size_t size)
{
    if (!p)
        return;
    size = (size + 63) & ~(size_t)63;
    lock_take(&meta_lock, LOCK_META);
    void **list = list_for(size);
    if (list) {
        *(void **)p = *list;
        *list = p;
    }
    lock_drop(&meta_lock, LOCK_META);
}

void meta_lock_all(void) { lock_take(&meta_lock, LOCK_META); }
void meta_unlock_all(bool child)
{
    lock_after_fork(&meta_lock, LOCK_META, child);
}
