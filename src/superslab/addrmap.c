/* addrmap.c - 2 MiB granule -> owner, for the whole 47-bit address space.
 *
 * Readers (free, usable_size, ns_node_of) take no lock: a leaf, once
 * published, is never freed, and an entry changes only while no live block
 * lies in its granule.  Writers serialise on map_lock (lock order: last,
 * after bin, ss_lock and large_lock; it takes no other lock).
 */
#include <errno.h>
#include <pthread.h>

#include "../hugepage/hugepage.h"
#include "superslab.h"

#define LEAF_ENTRIES ((size_t)1 << NS_MAP_LEAF_BITS)

uintptr_t *addrmap_root[(size_t)1 << NS_MAP_ROOT_BITS];
uint8_t ssmap[NS_SSMAP_SIZE];

/* Set before a SuperSlab's first block is handed out, cleared after its last
 * one came back: a free() that reads the byte owns a block in it. */
void ssmap_set(uintptr_t ss, uint8_t tag)
{
    __atomic_store_n(&ssmap[ss >> NS_SS_SHIFT], tag, __ATOMIC_RELEASE);
}
static pthread_mutex_t map_lock = PTHREAD_MUTEX_INITIALIZER;

static uintptr_t *leaf_for(uintptr_t a, bool create)
{
    size_t i = a >> (NS_SS_SHIFT + NS_MAP_LEAF_BITS);
    uintptr_t *leaf = __atomic_load_n(&addrmap_root[i], __ATOMIC_ACQUIRE);
    if (leaf || !create)
        return leaf;
    void *m;
    if (hp_map(LEAF_ENTRIES * sizeof(uintptr_t), NS_PAGE_MIN, 0, &m) != 0)
        return NULL;
    __atomic_store_n(&addrmap_root[i], (uintptr_t *)m, __ATOMIC_RELEASE);
    return m;
}

int addrmap_set(uintptr_t base, size_t size, uintptr_t value)
{
    if ((base + size) >> NS_VA_BITS)
        return ENOMEM;      /* outside the map: never hand it out */
    lock_take(&map_lock, LOCK_ADDRMAP);
    for (uintptr_t a = base; a < base + size; a += NS_SS_SIZE) {
        uintptr_t *leaf = leaf_for(a, true);
        if (!leaf) {
            lock_drop(&map_lock, LOCK_ADDRMAP);
            addrmap_clear(base, a - base);
            return ENOMEM;
        }
        __atomic_store_n(&leaf[(a >> NS_SS_SHIFT) & (LEAF_ENTRIES - 1)], value, __ATOMIC_RELEASE);
    }
    lock_drop(&map_lock, LOCK_ADDRMAP);
    return 0;
}

void addrmap_clear(uintptr_t base, size_t size)
{
    lock_take(&map_lock, LOCK_ADDRMAP);
    for (uintptr_t a = base; a < base + size; a += NS_SS_SIZE) {
        uintptr_t *leaf = leaf_for(a, false);
        if (leaf)
            __atomic_store_n(&leaf[(a >> NS_SS_SHIFT) & (LEAF_ENTRIES - 1)], 0, __ATOMIC_RELEASE);
    }
    lock_drop(&map_lock, LOCK_ADDRMAP);
}

void addrmap_each_superslab(void (*fn)(superslab_t *ss, void *arg), void *arg)
{
    for (size_t r = 0; r < ((size_t)1 << NS_MAP_ROOT_BITS); r++) {
        uintptr_t *leaf = __atomic_load_n(&addrmap_root[r], __ATOMIC_ACQUIRE);
        if (!leaf)
            continue;
        for (size_t i = 0; i < LEAF_ENTRIES; i++) {
            uintptr_t v = __atomic_load_n(&leaf[i], __ATOMIC_RELAXED);
            if ((v & NS_MAP_TAGS) == NS_MAP_SS)
                fn((superslab_t *)(v & ~NS_MAP_TAGS), arg);
        }
    }
}

void addrmap_lock(void) { lock_take(&map_lock, LOCK_ADDRMAP); }
void addrmap_unlock(bool child)
{
    lock_after_fork(&map_lock, LOCK_ADDRMAP, child);
}
