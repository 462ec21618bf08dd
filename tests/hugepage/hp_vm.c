/* hp_vm.c - hugetlb pages per NUMA node, run inside a 2-node qemu VM
 * (tests/numa-vm/run-in-numa-vm.sh --nodes 2 --hugepages 32: the kernel
 * splits the pages over the nodes).  NUMASLAB_PAGES=auto (set by vm.sh).
 *
 * A thread pinned to node 1's CPUs allocates 12 MiB of small blocks: they
 * belong to node 1 (ns_node_of), their SuperSlabs are hugetlb
 * (node[1].ss_hugetlb, smaps Private_Hugetlb), node 1's free_hugepages
 * drops by that many, node 0's only by node 0's own new hugetlb SuperSlabs,
 * and the pages are on node 1 (get_mempolicy MPOL_F_NODE|MPOL_F_ADDR).
 * After free + ns_release() node 1's pages are free again.
 * No node 1 or no hugetlb pages on it: skip (77).
 */
#define _GNU_SOURCE
#include "hp_util.h"

#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>

#define MPOL_F_NODE_ (1 << 0)
#define MPOL_F_ADDR_ (1 << 1)

static cpu_set_t node1_cpus;
static hp_blks_t blocks;
static int wrong_node, pinned = -1;

static bool parse_cpulist(const char *path, cpu_set_t *set)
{
    char buf[1024];
    CPU_ZERO(set);
    if (!hp_read_file(path, buf, sizeof buf))
        return false;
    char *p = buf;
    bool any = false;
    while (*p && *p != '\n') {
        long a = strtol(p, &p, 10), b = a;
        if (*p == '-')
            b = strtol(p + 1, &p, 10);
        for (long c = a; c <= b && c < CPU_SETSIZE; c++) {
            CPU_SET((int)c, set);
            any = true;
        }
        if (*p == ',')
            p++;
        else
            break;
    }
    return any;
}

static void *node1_thread(void *arg)
{
    (void)arg;
    if (sched_setaffinity(0, sizeof node1_cpus, &node1_cpus) != 0)
        return NULL;
    for (int i = 0; i < 1000 && !CPU_ISSET(sched_getcpu(), &node1_cpus); i++)
        sched_yield();
    pinned = sched_getcpu();
    uint64_t rng = 99, bytes = 0;
    while (bytes < 12 * MiB) {
        size_t sz = hp_rand_size(&rng, 64, 1024);
        if (!hp_alloc_one(&blocks, sz, (uint32_t)blocks.n))
            break;
        if (ns_node_of(blocks.b[blocks.n - 1].p) != 1)
            wrong_node++;
        bytes += sz;
    }
    return NULL;
}

static int page_node(uintptr_t a)
{
    int node = -1;
    if (syscall(SYS_get_mempolicy, &node, NULL, 0UL, (void *)a, (unsigned long)(MPOL_F_NODE_ | MPOL_F_ADDR_)) != 0)
        return -2;
    return node;
}

int main(void)
{
    printf("hp_vm: NUMASLAB_PAGES=%s, THP '%s'\n", hp_pages_mode(), hp_thp_mode());
    if (access("/sys/devices/system/node/node1", F_OK) != 0)
        hp_skip("no NUMA node 1: run inside tests/numa-vm/run-in-numa-vm.sh --nodes 2");
    if (!parse_cpulist("/sys/devices/system/node/node1/cpulist", &node1_cpus))
        hp_skip("node 1 has no CPU (use --cpus 2 or more)");
    long long f0[2] = {hp_node_free_hugepages(0), hp_node_free_hugepages(1)};
    ns_stats_t st;
    hp_tot_t t;
    hp_stats(&st, &t);
    uint64_t h0[2] = {st.node[0].ss_hugetlb, st.node[1].ss_hugetlb};
    hp_note("numaslab nodes %d; free hugetlb pages: node0 %lld, node1 %lld", st.nodes, f0[0], f0[1]);
    if (f0[1] < 8)
        hp_skip("only %lld free hugetlb pages on node 1 (run-in-numa-vm.sh --hugepages 32)", f0[1]);
    CHECK(st.nodes >= 2, "numaslab sees %d nodes (>= 2)", st.nodes);

    hp_blks_init(&blocks, 12 * MiB / 64 + 16);
    pthread_t th;
    pthread_create(&th, NULL, node1_thread, NULL);
    pthread_join(th, NULL);
    CHECK(pinned >= 0 && CPU_ISSET(pinned, &node1_cpus), "the thread runs on node 1 (cpu %d)", pinned);
    CHECK(blocks.n > 0 && wrong_node == 0, "its %zu blocks belong to node 1 (%d elsewhere)", blocks.n, wrong_node);

    hp_ssset_t set;
    hp_ssset_of(&set, &blocks);
    hp_stats(&st, &t);
    hp_print_tot("after", &t);
    hp_check_kernel("after", &st, &t, &set, true);
    long long f1[2] = {hp_node_free_hugepages(0), hp_node_free_hugepages(1)};
    uint64_t d1 = st.node[1].ss_hugetlb - h0[1], d0 = st.node[0].ss_hugetlb - h0[0];
    hp_note("node1: ss_hugetlb +%llu, free_hugepages %lld -> %lld; node0: ss_hugetlb +%llu, free %lld -> %lld",
            (unsigned long long)d1, f0[1], f1[1], (unsigned long long)d0, f0[0], f1[0]);
    CHECK(d1 + 1 >= set.n && st.node[1].ss_thp + st.node[1].ss_base == 0,
          "node 1's %zu SuperSlabs are hugetlb (node[1].ss_hugetlb +%llu, thp %llu, base %llu)", set.n,
          (unsigned long long)d1, (unsigned long long)st.node[1].ss_thp, (unsigned long long)st.node[1].ss_base);
    CHECK(llabs(f0[1] - f1[1] - (long long)d1) <= 1, "node 1's free_hugepages dropped by %lld == %llu (+-1)",
          f0[1] - f1[1], (unsigned long long)d1);
    CHECK(llabs(f0[0] - f1[0] - (long long)d0) <= 1,
          "node 0's free_hugepages dropped only by node 0's own hugetlb SuperSlabs (%lld, %llu)", f0[0] - f1[0],
          (unsigned long long)d0);
    size_t on1 = 0;
    for (size_t k = 0; k < set.n; k++)
        on1 += page_node(set.base[k]) == 1;
    CHECK(on1 == set.n, "get_mempolicy: the pages of %zu of %zu SuperSlabs are on node 1", on1, set.n);
    hp_mem_t m;
    hp_smaps(&set, &m);
    hp_print_mem("node 1 heap", &m);
    CHECK(m.vmas_ht == m.vmas && m.hugetlb >= set.n * SS_SIZE, "smaps: node 1's heap is hugetlb (%.1f MiB)",
          m.hugetlb / (double)MiB);

    size_t bad = hp_verify_all(&blocks);
    CHECK(bad == 0, "all %zu blocks intact (%zu corrupted)", blocks.n, bad);
    for (size_t i = 0; i < blocks.n; i++)
        free(blocks.b[i].p);
    ns_release();
    hp_stats(&st, &t);
    hp_print_tot("freed + ns_release()", &t);
    hp_check_kernel("freed + ns_release()", &st, &t, &set, false);
    long long f2 = hp_node_free_hugepages(1);
    CHECK(f2 + (long long)st.node[1].ss_hugetlb >= f0[1] + (long long)h0[1] - 1,
          "node 1's hugetlb pages are free again (%lld, %llu still in use; %lld at the start)", f2,
          (unsigned long long)st.node[1].ss_hugetlb, f0[1]);
    return hp_finish("hp_vm");
}
