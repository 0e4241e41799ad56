// ns-3's UdpEcho over one lossy point-to-point link, for comparison with
// qossim's `examples/udp_echo.rs` (CoAP NON echo over the same link).
//
// Two nodes, PointToPoint 250 kbit/s, 50 ms; a RateErrorModel (packet unit,
// rate = --loss) on each device's receive side, so each direction loses
// independently; UdpEchoClient sends --packets/(2 - loss) echo requests of 32
// bytes every 10 ms; the server echoes them. Transmissions are counted on
// both devices' PhyTxBegin traces; wall time covers Simulator::Run only.
//
// Usage: udp_echo [--loss P] [--packets N]
// Prints round_trip_success=<replies/requests> and packets_per_s=<n>.

#include "ns3/applications-module.h"
#include "ns3/core-module.h"
#include "ns3/internet-module.h"
#include "ns3/network-module.h"
#include "ns3/point-to-point-module.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>

using namespace ns3;

static uint64_t g_tx = 0;
static uint64_t g_replies = 0;

static void
CountTx(Ptr<const Packet>)
{
    g_tx++;
}

static void
CountReply(Ptr<const Packet>)
{
    g_replies++;
}

int
main(int argc, char** argv)
{
    double loss = 0.1;
    uint64_t packets = 200000;
    for (int i = 1; i + 1 < argc; i += 2)
    {
        if (!std::strcmp(argv[i], "--loss"))
            loss = std::atof(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--packets"))
            packets = std::strtoull(argv[i + 1], nullptr, 10);
    }
    uint64_t requests = static_cast<uint64_t>(packets / (2.0 - loss) + 0.5);
    RngSeedManager::SetSeed(1);

    NodeContainer nodes;
    nodes.Create(2);
    PointToPointHelper p2p;
    p2p.SetDeviceAttribute("DataRate", StringValue("250kbps"));
    p2p.SetChannelAttribute("Delay", StringValue("50ms"));
    p2p.SetQueue("ns3::DropTailQueue", "MaxSize", StringValue("1000p"));
    NetDeviceContainer devs = p2p.Install(nodes);
    for (uint32_t d = 0; d < 2; d++)
    {
        Ptr<RateErrorModel> em = CreateObject<RateErrorModel>();
        em->SetAttribute("ErrorUnit", StringValue("ERROR_UNIT_PACKET"));
        em->SetAttribute("ErrorRate", DoubleValue(loss));
        devs.Get(d)->SetAttribute("ReceiveErrorModel", PointerValue(em));
        devs.Get(d)->TraceConnectWithoutContext("PhyTxBegin", MakeCallback(&CountTx));
    }
    InternetStackHelper stack;
    stack.Install(nodes);
    Ipv4AddressHelper addr;
    addr.SetBase("10.0.0.0", "255.255.255.0");
    Ipv4InterfaceContainer ifs = addr.Assign(devs);

    UdpEchoServerHelper server(9);
    ApplicationContainer sa = server.Install(nodes.Get(1));
    sa.Start(Seconds(0.5));
    UdpEchoClientHelper client(ifs.GetAddress(1), 9);
    client.SetAttribute("MaxPackets", UintegerValue(requests));
    client.SetAttribute("Interval", TimeValue(MilliSeconds(10)));
    client.SetAttribute("PacketSize", UintegerValue(32));
    ApplicationContainer ca = client.Install(nodes.Get(0));
    ca.Start(Seconds(1.0));
    ca.Get(0)->TraceConnectWithoutContext("Rx", MakeCallback(&CountReply));
    Simulator::Stop(Seconds(2.0 + requests * 0.01 + 10.0));

    auto t0 = std::chrono::steady_clock::now();
    Simulator::Run();
    auto t1 = std::chrono::steady_clock::now();
    Simulator::Destroy();
    double wall = std::chrono::duration<double>(t1 - t0).count();
    std::cout << "ns3_requests=" << requests << " ns3_replies=" << g_replies << "\n";
    std::cout << "ns3_round_trip_success=" << double(g_replies) / double(requests) << "\n";
    std::cout << "ns3_transmissions=" << g_tx << " ns3_wall_s=" << wall << "\n";
    std::cout << "ns3_packets_per_s=" << static_cast<uint64_t>(g_tx / wall) << "\n";
    return 0;
}
