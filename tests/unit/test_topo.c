/* test_topo.c - the topology logic on synthetic hwloc topologies (2, 4 and
 * 8 nodes, asymmetric distances), on this one-node host. */
#include <hwloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <numaslab.h>
#include "numa/numa.h"

/* A synthetic machine of `nodes` NUMA nodes with `cpus` PUs each and the
 * given distance matrix (row-major, nodes x nodes). */
/* A node list as options_parse_nodes reads it (the test's lists parse). */
static const nodeset_t *nodes(const char *list)
{
    static nodeset_t set;
    assert_true(options_parse_nodes(list, &set));
    return &set;
}

static hwloc_topology_t make(unsigned nodes, unsigned cpus, const hwloc_uint64_t *dist)
{
    hwloc_topology_t t;
    char desc[64];
    snprintf(desc, sizeof desc, "numa:%u pu:%u", nodes, cpus);
    assert_int_equal(hwloc_topology_init(&t), 0);
    assert_int_equal(hwloc_topology_set_synthetic(t, desc), 0);
    assert_int_equal(hwloc_topology_load(t), 0);
    if (dist) {
        hwloc_obj_t objs[16];
        for (unsigned i = 0; i < nodes; i++)
            objs[i] = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, i);
        hwloc_distances_add_handle_t h =
            hwloc_distances_add_create(t, "test", HWLOC_DISTANCES_KIND_FROM_USER | HWLOC_DISTANCES_KIND_MEANS_LATENCY, 0);
        assert_non_null(h);
        assert_int_equal(hwloc_distances_add_values(t, h, nodes, objs, (hwloc_uint64_t *)dist, 0), 0);
        assert_int_equal(hwloc_distances_add_commit(t, h, 0), 0);
    }
    return t;
}

static void two_nodes(void **state)
{
    (void)state;
    hwloc_topology_t t = make(2, 2, NULL);
    topo_t *tp;
    assert_int_equal(topo_from_hwloc(t, nodes("all"), &tp), 0);
    assert_int_equal(tp->slots, 2);
    assert_int_equal(tp->nused, 2);
    assert_int_equal(tp->ncpus, 4);
    /* cpus 0,1 on node 0; 2,3 on node 1 */
    assert_int_equal(tp->cpu_node[0], 0);
    assert_int_equal(tp->cpu_node[1], 0);
    assert_int_equal(tp->cpu_node[2], 1);
    assert_int_equal(tp->cpu_node[3], 1);
    /* no distances anywhere: local 10, remote 20 (or the SLIT's values) */
    assert_int_equal(tp->dist[0], 10);
    assert_true(tp->dist[1] > 10);
    assert_int_equal(tp->order[0], 0);
    assert_int_equal(tp->order[1], 1);
    assert_int_equal(tp->order[2], 1);
    assert_int_equal(tp->order[3], 0);
    hwloc_topology_destroy(t);
}

/* 4 nodes in a line: 0-1-2-3, distance grows with hops */
static void four_nodes_line(void **state)
{
    (void)state;
    const hwloc_uint64_t d[16] = {10, 20, 30, 40, 20, 10, 20, 30, 30, 20, 10, 20, 40, 30, 20, 10};
    hwloc_topology_t t = make(4, 1, d);
    topo_t *tp;
    assert_int_equal(topo_from_hwloc(t, nodes("all"), &tp), 0);
    assert_int_equal(tp->slots, 4);
    for (unsigned a = 0; a < 4; a++)
        for (unsigned b = 0; b < 4; b++)
            assert_int_equal(tp->dist[a * 4 + b], d[a * 4 + b]);
    /* from node 3: 3, 2, 1, 0 */
    const uint16_t want3[4] = {3, 2, 1, 0};
    for (unsigned i = 0; i < 4; i++)
        assert_int_equal(tp->order[3 * 4 + i], want3[i]);
    /* from node 1: 1, then 0 and 2 tie at 20 (lower id first), then 3 */
    const uint16_t want1[4] = {1, 0, 2, 3};
    for (unsigned i = 0; i < 4; i++)
        assert_int_equal(tp->order[1 * 4 + i], want1[i]);
    hwloc_topology_destroy(t);
}

/* 8 nodes, asymmetric: node 5 is closest to node 2, not to its id neighbours;
 * NUMASLAB_NODES keeps a subset and CPUs of excluded nodes map to the
 * nearest kept node. */
static void eight_nodes_subset(void **state)
{
    (void)state;
    hwloc_uint64_t d[64];
    for (unsigned a = 0; a < 8; a++)
        for (unsigned b = 0; b < 8; b++)
            d[a * 8 + b] = a == b ? 10 : 30 + 2 * (a > b ? a - b : b - a);
    d[5 * 8 + 2] = 12;      /* asymmetric: 5 -> 2 is short, 2 -> 5 is not */
    hwloc_topology_t t = make(8, 2, d);
    topo_t *tp;
    assert_int_equal(topo_from_hwloc(t, nodes("0-2,7"), &tp), 0);
    assert_int_equal(tp->nused, 4);
    assert_true(tp->used[0] && tp->used[1] && tp->used[2] && tp->used[7]);
    assert_false(tp->used[5]);
    /* cpus 10,11 are node 5's: nearest kept node is 2 (distance 12) */
    assert_int_equal(tp->cpu_node[10], 2);
    assert_int_equal(tp->cpu_node[11], 2);
    /* node 6's cpus (12,13): 7 at 32 beats 2 at 38 */
    assert_int_equal(tp->cpu_node[12], 7);
    /* a kept node's cpus stay home */
    assert_int_equal(tp->cpu_node[14], 7);
    assert_int_equal(tp->cpu_node[2], 1);
    /* order lists only kept nodes, then the UINT16_MAX end mark */
    assert_int_equal(tp->order[5 * 8 + 0], 2);
    assert_int_equal(tp->order[5 * 8 + 4], UINT16_MAX);
    hwloc_topology_destroy(t);
}

static void bad_node_list_uses_all(void **state)
{
    (void)state;
    hwloc_topology_t t = make(2, 1, NULL);
    topo_t *tp;
    assert_int_equal(topo_from_hwloc(t, nodes("all"), &tp), 0);
    assert_int_equal(tp->nused, 2);
    assert_int_equal(topo_from_hwloc(t, nodes("9"), &tp), 0);         /* no such node: all */
    assert_int_equal(tp->nused, 2);
    hwloc_topology_destroy(t);
}

/* A task policy as topo_read_policy would find it. */
static topo_policy_t policy(int mode, const char *list, const char *allowed)
{
    topo_policy_t p;
    memset(&p, 0, sizeof p);
    p.mode = mode;
    if (list)
        assert_true(options_parse_nodes(list, &p.nodes));
    if (allowed)
        assert_true(options_parse_nodes(allowed, &p.allowed));
    return p;
}

/* numactl --membind=1: only node 1, mappings bound to the set, every CPU's
 * home is node 1; an explicit NUMASLAB_NODES wins over the policy. */
static void policy_bind(void **state)
{
    (void)state;
    hwloc_topology_t t = make(2, 2, NULL);
    topo_t *tp;
    topo_policy_t pol = policy(2, "1", NULL);
    assert_int_equal(topo_from_hwloc_policy(t, nodes("all"), &pol, &tp), 0);
    assert_int_equal(tp->nused, 1);
    assert_true(tp->used[1] && !tp->used[0]);
    assert_int_equal(tp->bind_mode, TOPO_BIND_SET);
    for (unsigned c = 0; c < 4; c++)
        assert_int_equal(tp->cpu_node[c], 1);
    assert_non_null(strstr(topo_policy_text(tp), "bind"));
    topo_discard(tp);
    assert_int_equal(topo_from_hwloc_policy(t, nodes("0"), &pol, &tp), 0);
    assert_true(tp->used[0] && !tp->used[1]);
    assert_int_equal(tp->bind_mode, TOPO_BIND_PREFERRED);
    assert_non_null(strstr(topo_policy_text(tp), "NUMASLAB_NODES"));
    topo_discard(tp);
    hwloc_topology_destroy(t);
}

/* numactl --interleave=all: both nodes, every mapping interleaved; with
 * NUMASLAB_INTERLEAVE given, the option decides (large blocks only). */
static void policy_interleave(void **state)
{
    (void)state;
    hwloc_topology_t t = make(2, 2, NULL);
    topo_t *tp;
    topo_policy_t pol = policy(3, "0-1", NULL);
    assert_int_equal(topo_from_hwloc_policy(t, nodes("all"), &pol, &tp), 0);
    assert_int_equal(tp->nused, 2);
    assert_int_equal(tp->bind_mode, TOPO_BIND_INTERLEAVE);
    assert_int_equal(tp->cpu_node[0], 0);
    assert_int_equal(tp->cpu_node[3], 1);
    topo_discard(tp);
    setenv("NUMASLAB_INTERLEAVE", "0", 1);
    options_init();             /* the option table records it as given */
    assert_true(options_given("INTERLEAVE"));
    assert_int_equal(topo_from_hwloc_policy(t, nodes("all"), &pol, &tp), 0);
    unsetenv("NUMASLAB_INTERLEAVE");
    options_init();
    assert_false(options_given("INTERLEAVE"));
    assert_int_equal(tp->bind_mode, TOPO_BIND_PREFERRED);
    topo_discard(tp);
    hwloc_topology_destroy(t);
}

/* numactl --preferred=2 on 4 nodes: node 2 is every thread's home, all
 * nodes stay usable (to spill to). */
static void policy_preferred(void **state)
{
    (void)state;
    hwloc_topology_t t = make(4, 1, NULL);
    topo_t *tp;
    topo_policy_t pol = policy(1, "2", NULL);
    assert_int_equal(topo_from_hwloc_policy(t, nodes("all"), &pol, &tp), 0);
    assert_int_equal(tp->nused, 4);
    for (unsigned c = 0; c < 4; c++)
        assert_int_equal(tp->cpu_node[c], 2);
    assert_int_equal(tp->first_used, 2);
    assert_int_equal(tp->bind_mode, TOPO_BIND_PREFERRED);
    assert_non_null(strstr(topo_policy_text(tp), "preferred"));
    topo_discard(tp);
    hwloc_topology_destroy(t);
}

/* a cpuset that allows nodes 1 and 3 of 4: the others are never used,
 * not even when NUMASLAB_NODES names them (it names none allowed: all
 * allowed ones, with a warning) */
static void policy_cpuset(void **state)
{
    (void)state;
    hwloc_topology_t t = make(4, 1, NULL);
    topo_t *tp;
    topo_policy_t pol = policy(0, NULL, "1,3");
    assert_int_equal(topo_from_hwloc_policy(t, nodes("all"), &pol, &tp), 0);
    assert_true(!tp->used[0] && tp->used[1] && !tp->used[2] && tp->used[3]);
    assert_int_equal(tp->cpu_node[0], 1);           /* nearest allowed: 1 (tie by id) */
    assert_non_null(strstr(topo_policy_text(tp), "cpuset"));
    topo_discard(tp);
    assert_int_equal(topo_from_hwloc_policy(t, nodes("0,2"), &pol, &tp), 0);   /* warns */
    assert_true(!tp->used[0] && tp->used[1] && !tp->used[2] && tp->used[3]);
    topo_discard(tp);
    hwloc_topology_destroy(t);
}

/* On this host (one node): bootstrap view, every query answers node 0. */
static void host_is_one_node(void **state)
{
    (void)state;
    void *p = ns_malloc(100);
    assert_non_null(p);
    assert_int_equal(node_heap_load_topology(), 0);
    assert_int_equal(topo_current_node(), 0);
    assert_true(topo_node_valid(0));
    assert_false(topo_node_valid(1));
    assert_int_equal(ns_node_of(p), 0);
    ns_free(p);
}

int main(void)
{
    ns_free(ns_malloc(1));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_nodes),
        cmocka_unit_test(four_nodes_line),
        cmocka_unit_test(eight_nodes_subset),
        cmocka_unit_test(bad_node_list_uses_all),
        cmocka_unit_test(host_is_one_node),
        cmocka_unit_test(policy_bind),
        cmocka_unit_test(policy_interleave),
        cmocka_unit_test(policy_preferred),
        cmocka_unit_test(policy_cpuset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
