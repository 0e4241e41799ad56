// The classic hold model on ns-3's simulator core, for comparison with
// qossim's `examples/hold_model.rs`.
//
// Prefill `pending` events at Exp(1 us) times, then each event schedules one
// new event at now + Exp(1 us) (nanosecond resolution, rounded half up), so
// the queue size stays constant. Warm-up is the prefill plus the first
// `pending` holds; the wall time of the following `events` holds is measured.
// Run once per ns-3 scheduler, selected with Simulator::SetScheduler.
//
// Draws come from std::mt19937_64 + std::exponential_distribution (not ns-3's
// RandomVariableStream) so the figure measures the scheduler and event
// dispatch, not the random-number machinery. ListScheduler is O(n) per
// insertion, so it runs `--list-events` holds (default 100000) instead.
//
// Usage: hold [--pending N] [--events N] [--list-events N] [--seed N]
// Prints one line per scheduler: ns3_<scheduler>_events_per_s=<n>

#include "ns3/core-module.h"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <random>
#include <string>

using namespace ns3;

namespace
{

std::mt19937_64 g_rng;
std::exponential_distribution<double> g_exp(1.0 / 1000.0); // mean 1000 ns
uint64_t g_done = 0;
uint64_t g_warmUpEnd = 0;
uint64_t g_stopAfter = 0;
std::chrono::steady_clock::time_point g_t0;
std::chrono::steady_clock::time_point g_t1;

uint64_t
Draw()
{
    return static_cast<uint64_t>(g_exp(g_rng) + 0.5);
}

void
Hold()
{
    if (g_done == g_warmUpEnd)
    {
        g_t0 = std::chrono::steady_clock::now();
    }
    if (g_done < g_stopAfter)
    {
        ++g_done;
        Simulator::Schedule(NanoSeconds(Draw()), &Hold);
        if (g_done == g_stopAfter)
        {
            g_t1 = std::chrono::steady_clock::now();
            Simulator::Stop();
        }
    }
}

double
RunOnce(const std::string& scheduler, uint64_t pending, uint64_t events, uint64_t seed)
{
    ObjectFactory factory;
    factory.SetTypeId(scheduler);
    Simulator::SetScheduler(factory);
    g_rng.seed(seed);
    g_exp.reset();
    g_done = 0;
    g_warmUpEnd = pending;
    g_stopAfter = pending + events;
    for (uint64_t i = 0; i < pending; ++i)
    {
        Simulator::Schedule(NanoSeconds(Draw()), &Hold);
    }
    Simulator::Run();
    Simulator::Destroy();
    double s = std::chrono::duration<double>(g_t1 - g_t0).count();
    return s > 0 ? static_cast<double>(events) / s : 0.0;
}

uint64_t
ParseU64(const char* flag, const char* v)
{
    char* end = nullptr;
    unsigned long long x = std::strtoull(v, &end, 10);
    if (end == v || *end != '\0')
    {
        std::cerr << "hold: bad value for " << flag << ": " << v << "\n";
        std::exit(2);
    }
    return x;
}

} // namespace

int
main(int argc, char** argv)
{
    uint64_t pending = 10000;
    uint64_t events = 10000000;
    uint64_t listEvents = 100000;
    uint64_t seed = 1;
    std::string only;
    for (int i = 1; i < argc; ++i)
    {
        if (i + 1 >= argc)
        {
            std::cerr << "hold: missing value for " << argv[i] << "\n";
            return 2;
        }
        const char* v = argv[i + 1];
        if (!std::strcmp(argv[i], "--pending"))
            pending = ParseU64(argv[i], v);
        else if (!std::strcmp(argv[i], "--events"))
            events = ParseU64(argv[i], v);
        else if (!std::strcmp(argv[i], "--list-events"))
            listEvents = ParseU64(argv[i], v);
        else if (!std::strcmp(argv[i], "--seed"))
            seed = ParseU64(argv[i], v);
        else if (!std::strcmp(argv[i], "--only"))
            only = v;
        else
        {
            std::cerr << "hold: unknown option " << argv[i] << "\n";
            return 2;
        }
        ++i;
    }
    if (pending == 0 || events == 0 || listEvents == 0)
    {
        std::cerr << "hold: --pending, --events and --list-events must be at least 1\n";
        return 2;
    }
    const char* schedulers[] = {"MapScheduler",
                                "HeapScheduler",
                                "CalendarScheduler",
                                "PriorityQueueScheduler",
                                "ListScheduler"};
    for (const char* name : schedulers)
    {
        if (!only.empty() && only != name)
        {
            continue;
        }
        uint64_t n = std::strcmp(name, "ListScheduler") ? events : listEvents;
        double rate = RunOnce(std::string("ns3::") + name, pending, n, seed);
        std::cout << "ns3_" << name << "_events=" << n << "\n";
        std::cout << "ns3_" << name << "_events_per_s=" << static_cast<uint64_t>(rate)
                  << std::endl;
    }
    return 0;
}
