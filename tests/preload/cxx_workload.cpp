// cxx_workload.cpp - C++ allocation workload for the LD_PRELOAD tests.
//
// Linked normally (not against numaslab).  Exercises new/delete, new[]/
// delete[], sized delete, aligned new (64, 256, 4096), nothrow new, bad_alloc,
// make_shared, STL container churn and 16 threads passing unique_ptr<Blob>
// through mutex-protected queues with content checks.  Exits non-zero on any
// mismatch.  With EXPECT_NUMASLAB=1 it also requires ns_node_of (looked up
// with dlsym) to own the objects it news.
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

std::atomic<int> g_failures{0};
std::mutex g_print_mu;

#define CHECK(cond, ...)                                                          \
    do {                                                                          \
        if (!(cond) && g_failures.fetch_add(1) < 20) {                            \
            std::lock_guard<std::mutex> lk_(g_print_mu);                          \
            std::fprintf(stderr, "cxx_workload: FAIL %s:%d: %s: ", __FILE__,      \
                         __LINE__, #cond);                                        \
            std::fprintf(stderr, __VA_ARGS__);                                    \
            std::fputc('\n', stderr);                                             \
        }                                                                         \
    } while (0)

using node_of_fn = int (*)(const void *);
node_of_fn g_node_of = nullptr;
bool g_expect = false;

void check_owned(const char *what, const void *p)
{
    if (!g_expect)
        return;
    int n = g_node_of(p);
    CHECK(n >= 0, "ns_node_of(%s %p) = %d: not a numaslab block", what, p, n);
}

uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// ------------------------------------------------------------ aligned new
struct alignas(64) A64 { unsigned char b[64]; };
struct alignas(256) A256 { unsigned char b[200]; };
struct alignas(4096) A4096 { unsigned char b[5000]; };

template <class T> void aligned_round(const char *name, int count)
{
    constexpr std::size_t al = alignof(T);
    std::vector<T *> singles;
    std::vector<T *> arrays;
    for (int i = 0; i < count; i++) {
        T *p = new T;
        CHECK(reinterpret_cast<uintptr_t>(p) % al == 0, "new %s = %p misaligned", name, (void *)p);
        std::memset(p->b, i & 0xff, sizeof p->b);
        singles.push_back(p);
        T *a = new T[(i % 5) + 1];
        CHECK(reinterpret_cast<uintptr_t>(a) % al == 0, "new %s[] = %p misaligned", name, (void *)a);
        for (int k = 0; k <= i % 5; k++) {
            CHECK(reinterpret_cast<uintptr_t>(&a[k]) % al == 0, "element misaligned");
            std::memset(a[k].b, (i + k) & 0xff, sizeof a[k].b);
        }
        arrays.push_back(a);
    }
    check_owned(name, singles[0]);
    for (int i = 0; i < count; i++) {
        for (unsigned char c : singles[i]->b)
            if (c != (i & 0xff)) {
                CHECK(false, "new %s #%d content changed", name, i);
                break;
            }
        for (int k = 0; k <= i % 5; k++)
            CHECK(arrays[i][k].b[sizeof arrays[i][k].b - 1] == ((i + k) & 0xff), "new %s[] #%d changed", name, i);
        delete singles[i];
        delete[] arrays[i];
    }
    // explicit aligned operator new / sized aligned delete
    void *raw = ::operator new(3 * al, std::align_val_t(al));
    CHECK(reinterpret_cast<uintptr_t>(raw) % al == 0, "operator new(align %zu) misaligned", al);
    std::memset(raw, 0xab, 3 * al);
    ::operator delete(raw, 3 * al, std::align_val_t(al));
    void *nt = ::operator new(al, std::align_val_t(al), std::nothrow);
    CHECK(nt && reinterpret_cast<uintptr_t>(nt) % al == 0, "nothrow aligned new %zu", al);
    ::operator delete(nt, std::align_val_t(al));
}

void test_aligned()
{
    aligned_round<A64>("A64", 2000);
    aligned_round<A256>("A256", 1000);
    aligned_round<A4096>("A4096", 200);
    // big over-aligned allocations
    for (std::size_t al : {8192u, 65536u, 1u << 21}) {
        void *p = ::operator new(al * 3 + 17, std::align_val_t(al));
        CHECK(reinterpret_cast<uintptr_t>(p) % al == 0, "operator new(align %zu) = %p", al, p);
        std::memset(p, 1, al * 3 + 17);
        ::operator delete(p, std::align_val_t(al));
    }
}

// ------------------------------------------------------- plain new/delete
void test_new_delete()
{
    std::mt19937_64 rng(1);
    std::vector<std::pair<char *, std::size_t>> live;
    for (int i = 0; i < 200000; i++) {
        if (!live.empty() && (rng() & 1)) {
            std::size_t j = rng() % live.size();
            auto [p, n] = live[j];
            CHECK(n == 0 || (p[0] == (char)n && (n < 2 || p[n - 1] == (char)(n * 3))), "new[] block of %zu changed", n);
            if (i & 2)
                delete[] p;
            else
                ::operator delete[](p, n ? n : 1);           // sized delete[]
            live[j] = live.back();
            live.pop_back();
        } else {
            std::size_t n = (rng() % 8 == 0) ? rng() % 300000 : rng() % 512;
            char *p = new char[n ? n : 1];
            if (n) {
                p[n - 1] = (char)(n * 3);
                p[0] = (char)n;
            }
            live.emplace_back(p, n);
        }
    }
    for (auto [p, n] : live)
        delete[] p;

    struct Obj {
        uint64_t a, b;
        std::string s;
        explicit Obj(uint64_t x) : a(x), b(mix(x)), s(std::to_string(x) + std::string(x % 100, 'q')) {}
    };
    std::vector<Obj *> objs;
    for (uint64_t i = 0; i < 50000; i++)
        objs.push_back(new Obj(i));
    check_owned("new Obj", objs[123]);
    for (uint64_t i = 0; i < objs.size(); i++) {
        CHECK(objs[i]->b == mix(i) && objs[i]->s.size() == std::to_string(i).size() + i % 100, "Obj %lu", (unsigned long)i);
        objs[i]->~Obj();
        ::operator delete(objs[i], sizeof(Obj));                             // sized delete
    }

    // deleting null pointers is a no-op
    ::operator delete(nullptr);
    delete static_cast<Obj *>(nullptr);
    delete[] static_cast<char *>(nullptr);

    // nothrow new and bad_alloc for impossible sizes
    std::size_t huge = std::size_t(1) << 50;
    char *nt = new (std::nothrow) char[huge];
    CHECK(nt == nullptr, "new(nothrow) char[1<<50] = %p", (void *)nt);
    bool threw = false;
    try {
        volatile std::size_t h2 = huge;
        char *q = new char[h2];
        q[0] = 1;
        delete[] q;
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw, "new char[1<<50] did not throw bad_alloc");
}

// ---------------------------------------------------------- STL churn
void test_containers()
{
    std::mt19937_64 rng(2);
    std::map<std::string, std::vector<int>> m;
    std::unordered_map<uint64_t, std::string> um;
    uint64_t expect_sum = 0;
    for (int round = 0; round < 6; round++) {
        for (int i = 0; i < 30000; i++) {
            uint64_t k = rng() % 50000;
            std::string key = "k" + std::to_string(k) + std::string(k % 40, 'x');
            auto &v = m[key];
            v.push_back(i);
            um[k] = key + "/" + std::to_string(v.size());
        }
        // erase a third, then verify what's left against um
        for (auto it = m.begin(); it != m.end();) {
            if (std::hash<std::string>{}(it->first) % 3 == static_cast<std::size_t>(round % 3))
                it = m.erase(it);
            else
                ++it;
        }
        um.rehash(um.size() * 2);
        for (auto &[k, s] : um) {
            std::string key = s.substr(0, s.rfind('/'));
            CHECK(key == "k" + std::to_string(k) + std::string(k % 40, 'x'), "um[%lu] = %s", (unsigned long)k, s.c_str());
        }
    }
    for (auto &[k, v] : m)
        expect_sum += std::accumulate(v.begin(), v.end(), uint64_t(0));
    uint64_t sum2 = 0;
    std::vector<std::pair<std::string, std::vector<int>>> flat(m.begin(), m.end());
    std::sort(flat.begin(), flat.end(), [](auto &a, auto &b) { return a.second.size() > b.second.size(); });
    for (auto &e : flat)
        sum2 += std::accumulate(e.second.begin(), e.second.end(), uint64_t(0));
    CHECK(sum2 == expect_sum, "map sums differ: %lu vs %lu", (unsigned long)sum2, (unsigned long)expect_sum);

    // strings growing and shrinking
    std::string big;
    for (int i = 0; i < 200000; i++)
        big += std::to_string(i);
    std::string copy = big;
    big.resize(10);
    big.shrink_to_fit();
    CHECK(copy.size() > 1000000 && copy.compare(0, 10, big) == 0, "string growth");
    std::vector<std::vector<uint64_t>> vv(2000);
    for (int i = 0; i < 400000; i++)
        vv[rng() % vv.size()].push_back(i);
    std::size_t total = 0;
    for (auto &v : vv)
        total += v.size();
    CHECK(total == 400000, "vector of vectors lost elements: %zu", total);

    // shared_ptr / make_shared, weak_ptr expiry
    std::vector<std::shared_ptr<std::vector<int>>> sp;
    std::vector<std::weak_ptr<std::vector<int>>> wp;
    for (int i = 0; i < 20000; i++) {
        sp.push_back(std::make_shared<std::vector<int>>(i % 64, i));
        wp.push_back(sp.back());
    }
    check_owned("make_shared", sp[10].get());
    for (int i = 0; i < 20000; i += 2)
        sp[i].reset();
    for (int i = 0; i < 20000; i++) {
        CHECK(wp[i].expired() == (i % 2 == 0), "weak_ptr %d", i);
        if (i % 2)
            CHECK(sp[i]->size() == std::size_t(i % 64) && (sp[i]->empty() || sp[i]->back() == i), "shared vector %d", i);
    }
}

// ------------------------------------------------ threads passing blobs
struct Blob {
    uint32_t origin;
    uint32_t seq;
    uint32_t hops;
    std::vector<unsigned char> data;
    std::string tag;
    Blob(uint32_t o, uint32_t s, std::size_t n) : origin(o), seq(s), hops(0), data(n), tag("blob-" + std::to_string(o) + "-" + std::to_string(s))
    {
        fill();
    }
    unsigned char byte_at(std::size_t i) const { return static_cast<unsigned char>(mix((uint64_t(origin) << 40) ^ (uint64_t(seq) << 8) ^ hops ^ (i * 131)) >> 56); }
    void fill()
    {
        for (std::size_t i = 0; i < data.size(); i += 61)
            data[i] = byte_at(i);
        if (!data.empty())
            data.back() = byte_at(data.size() - 1);
    }
    bool ok() const
    {
        if (tag != "blob-" + std::to_string(origin) + "-" + std::to_string(seq))
            return false;
        for (std::size_t i = 0; i < data.size(); i += 61)
            if (data[i] != byte_at(i))
                return false;
        return data.empty() || data.back() == byte_at(data.size() - 1);
    }
};

struct Queue {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::unique_ptr<Blob>> q;
};

void test_threads()
{
    constexpr int T = 16;
    constexpr uint32_t PER_THREAD = 3000;
    constexpr uint32_t MAX_HOPS = 6;
    std::vector<Queue> queues(T);
    std::atomic<uint64_t> retired{0};
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> bad{0};
    const uint64_t total = uint64_t(T) * PER_THREAD;

    auto worker = [&](int id) {
        std::mt19937 rng(id * 7919 + 1);
        uint32_t made = 0;
        while (!stop.load()) {
            std::unique_ptr<Blob> b;
            {
                std::unique_lock<std::mutex> lk(queues[id].mu);
                if (queues[id].q.empty() && made >= PER_THREAD)
                    queues[id].cv.wait_for(lk, std::chrono::milliseconds(5));
                if (!queues[id].q.empty()) {
                    b = std::move(queues[id].q.front());
                    queues[id].q.pop_front();
                }
            }
            if (!b && made < PER_THREAD) {
                std::size_t n = (rng() % 16 == 0) ? rng() % 200000 : rng() % 2048;
                b = std::make_unique<Blob>(id, made++, n);
                check_owned("Blob from a thread", b.get());
            }
            if (!b)
                continue;
            if (!b->ok()) {
                bad.fetch_add(1);
                CHECK(false, "thread %d got a corrupt blob %u/%u after %u hops", id, b->origin, b->seq, b->hops);
            }
            if (b->hops >= MAX_HOPS) {
                b.reset();                                // freed far from where it was made
                if (retired.fetch_add(1) + 1 == total)
                    stop.store(true);
                continue;
            }
            b->hops++;
            if (rng() % 4 == 0)                          // resize: realloc-like churn
                b->data.resize(rng() % 4096);
            b->fill();
            int to = static_cast<int>(rng() % T);
            {
                std::lock_guard<std::mutex> lk(queues[to].mu);
                queues[to].q.push_back(std::move(b));
            }
            queues[to].cv.notify_one();
        }
    };
    std::vector<std::thread> threads;
    for (int i = 0; i < T; i++)
        threads.emplace_back(worker, i);
    for (auto &t : threads)
        t.join();
    CHECK(retired.load() == total, "retired %lu blobs, want %lu", (unsigned long)retired.load(), (unsigned long)total);
    CHECK(bad.load() == 0, "%lu corrupt blobs", (unsigned long)bad.load());
    for (auto &q : queues)
        CHECK(q.q.empty(), "a queue still holds %zu blobs", q.q.size());

    // threads that only exit (thread caches are set up and torn down)
    for (int round = 0; round < 20; round++) {
        std::vector<std::thread> ts;
        for (int i = 0; i < 8; i++)
            ts.emplace_back([i] {
                std::vector<std::string> v;
                for (int k = 0; k < 500; k++)
                    v.emplace_back(std::string(k % 97 + i, 'a' + i));
                CHECK(v[499].size() == std::size_t(499 % 97 + i), "thread-local strings");
            });
        for (auto &t : ts)
            t.join();
    }

    // exceptions allocate through malloc (__cxa_allocate_exception)
    int caught = 0;
    for (int i = 0; i < 1000; i++) {
        try {
            throw std::runtime_error(std::string(i % 300, 'e'));
        } catch (const std::runtime_error &e) {
            caught += std::strlen(e.what()) == std::size_t(i % 300);
        }
    }
    CHECK(caught == 1000, "exceptions: %d of 1000 intact", caught);
}

} // namespace

int main()
{
    const char *e = std::getenv("EXPECT_NUMASLAB");
    g_expect = e && std::strcmp(e, "1") == 0;
    g_node_of = reinterpret_cast<node_of_fn>(dlsym(RTLD_DEFAULT, "ns_node_of"));
    if (g_expect) {
        if (!g_node_of) {
            std::fprintf(stderr, "cxx_workload: FAIL: EXPECT_NUMASLAB=1 but ns_node_of is not found (preload not in effect)\n");
            return 1;
        }
        int on_stack = 0;
        CHECK(g_node_of(&on_stack) == -1, "ns_node_of(stack) = %d", g_node_of(&on_stack));
        int *p = new int(42);
        check_owned("new int", p);
        delete p;
    } else if (g_node_of) {
        std::fprintf(stderr, "cxx_workload: note: ns_node_of is present but EXPECT_NUMASLAB is not set\n");
    }

    test_aligned();
    test_new_delete();
    test_containers();
    test_threads();

    int f = g_failures.load();
    std::printf("cxx_workload: %s (%d failure%s%s)\n", f ? "FAIL" : "ok", f, f == 1 ? "" : "s",
                g_expect ? ", numaslab in use" : "");
    return f ? 1 : 0;
}
