// connectGloo: validates the launch options, hosts or joins the rendezvous
// store, creates the Gloo TCP device and the world communicator.
#include <csignal>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gloo/transport/tcp/device.h"
#include "runtime/comm/communicator.h"
#include "runtime/comm/gloo_communicator.h"

namespace galaxy::comm {

absl::StatusOr<std::unique_ptr<Communicator>>
connectGloo(const CommOptions &o) {
  if (o.world < 1)
    return absl::InvalidArgumentError(
        absl::StrFormat("world size %d must be at least 1", o.world));
  if (o.rank < 0 || o.rank >= o.world)
    return absl::InvalidArgumentError(absl::StrFormat(
        "rank %d is out of range for world size %d (ranks are 0..%d)", o.rank,
        o.world, o.world - 1));
  if (o.timeout.count() <= 0)
    return absl::InvalidArgumentError("communicator timeout must be positive");
  // A single rank needs no well-known port: host the store on a free one so
  // concurrent single-rank runs never collide (joinRendezvous does the same).
  const bool alone = o.world == 1;
  const std::string masterHost = alone ? "127.0.0.1" : o.masterHost;
  const int port = alone ? 0 : o.masterPort;
  if (!alone && (port <= 0 || port > 65535))
    return absl::InvalidArgumentError(absl::StrFormat(
        "master port %d is not a TCP port (1..65535); pass --master HOST:PORT",
        port));

  // Gloo writes to sockets without MSG_NOSIGNAL: a peer that dies mid-write
  // would kill this process with SIGPIPE instead of raising an error we can
  // report. Ignore it unless the program installed its own handler.
  struct sigaction old {};
  if (sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL)
    signal(SIGPIPE, SIG_IGN);

  auto world = std::make_shared<GlooWorld>();
  world->timeout = o.timeout;
  world->worldRank = o.rank;
  world->worldSize = o.world;
  world->token = o.token;
  std::string localHost = o.localHost;
  if (localHost.empty() && o.iface.empty()) {
    absl::StatusOr<std::string> addr = localAddressFor(masterHost);
    if (!addr.ok())
      return addr.status();
    localHost = *addr;
  }
  world->selfInfo = absl::StrFormat(
      "%s, pid %d", localHost.empty() ? o.iface : localHost, getpid());
  CommOptions ro = o;
  ro.masterHost = masterHost;
  ro.masterPort = port;
  absl::StatusOr<Rendezvous> rv = joinRendezvous(ro, world->selfInfo);
  if (!rv.ok())
    return rv.status();
  static_cast<Rendezvous &>(*world) = std::move(*rv);

  gloo::transport::tcp::attr attr;
  if (!o.iface.empty())
    attr.iface = o.iface;
  else
    attr.hostname = localHost;
  try {
    world->device = gloo::transport::tcp::CreateDevice(attr);
  } catch (const std::exception &e) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "cannot create the Gloo TCP device on %s: %s (check the interface or "
        "local address)",
        o.iface.empty() ? localHost : o.iface, e.what()));
  }
  std::vector<int> ranks(o.world);
  for (int r = 0; r < o.world; ++r)
    ranks[r] = r;
  absl::StatusOr<std::unique_ptr<GlooCommunicator>> comm =
      GlooCommunicator::create(std::move(world), std::move(ranks), "world/");
  if (!comm.ok())
    return comm.status();
  return std::unique_ptr<Communicator>(std::move(*comm));
}

} // namespace galaxy::comm
