/* live.h - the live statistics area: the layout that a running process
 * (src/live.c) publishes and `numaslab stats PID` / `numaslab top PID`
 * (tools/numaslab.c) read.  Shared between the library and the tool only;
 * not installed.
 *
 * The area is a memfd named "numaslab-stats" of LIVE_AREA_SIZE bytes,
 * mapped MAP_SHARED by the process and, through /proc/PID/fd/N, by the
 * tool (the kernel lets only the process's own user or root open it).
 *
 * Protocol (no lock, no signal, nothing the tool can block):
 *   seq        seqlock: odd while the process writes a snapshot; a reader
 *              copies, then retries if seq changed or was odd
 *   request    the tool adds 1 to ask for a fresh snapshot and wakes the
 *              process's helper thread waiting on it (FUTEX_WAKE, shared)
 *   served     the process stores the request it answered, then wakes
 *              futex waiters on it (the tool)
 * Before the helper runs, the process checks `request` on every slow
 * path; see live.c. */
#ifndef NS_LIVE_H
#define NS_LIVE_H

#include <stdint.h>

#include <numaslab.h>

#define LIVE_MAGIC 0x7374617473736e6eull /* "nnsstats" */
#define LIVE_VERSION 1
#define LIVE_AREA_SIZE ((size_t)256 * 1024)
#define LIVE_NAME "numaslab-stats"
#define LIVE_TEXT_CAP ((size_t)64 * 1024)

typedef struct live_area {
    uint64_t magic;
    uint32_t version;
    int32_t pid;                /* the process that writes it            */
    uint32_t seq;               /* seqlock                               */
    uint32_t request;           /* tool: +1 per request                  */
    uint32_t served;            /* process: last request answered (futex)*/
    uint32_t publishes;         /* snapshots written                     */
    uint64_t published_ms;      /* CLOCK_MONOTONIC ms of the snapshot    */
    uint64_t text_len, json_len;
    uint64_t large_usable[64];  /* per node, as stats_collect gives it   */
    ns_stats_t stats;           /* the figures of the snapshot           */
    char text[LIVE_TEXT_CAP];   /* the NUMASLAB_STATS text report        */
    char json[];                /* the JSON report, up to the area's end */
} live_area_t;

#define LIVE_JSON_CAP (LIVE_AREA_SIZE - sizeof(live_area_t))
_Static_assert(sizeof(live_area_t) + 96 * 1024 < LIVE_AREA_SIZE, "room for the JSON report");

#endif
