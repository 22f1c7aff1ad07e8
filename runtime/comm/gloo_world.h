// Process-wide state shared by a Gloo world communicator and every
// communicator split from it.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "gloo/transport/device.h"
#include "runtime/comm/tcp_store.h"
#include "runtime/comm/tcp_store_server.h"

namespace galaxy::comm {

struct GlooWorld {
  // Records that this rank left on purpose (peers still in a collective then
  // learn why its connections closed); after a failure, rank 0 keeps the
  // store up a little for the other ranks' diagnosis.
  ~GlooWorld();

  // Declared first so it is destroyed last: this process's own store client
  // says goodbye to it on destruction.
  std::unique_ptr<TcpStoreServer> server; // rank 0 only
  std::unique_ptr<TcpStore> store;
  std::shared_ptr<gloo::transport::Device> device;
  std::chrono::milliseconds timeout{60000};
  int worldRank = 0;
  int worldSize = 1;
  std::string master;   // "host:port", for messages
  std::string selfInfo; // "127.0.0.1, pid 42": how peers name this rank

  std::atomic<bool> failed{false}; // some communicator of this world failed

  std::mutex mu;
  // How many splits with a given member list this process made; members make
  // the same splits in the same order, so (list, count) names a group.
  std::map<std::string, int> splitCounts;
};

// Store key a world rank's "I died" marker lives under; the server sets it
// when that rank's store connection drops without a goodbye.
std::string deadKey(int worldRank);
// Store key set when a world rank shuts its communicators down on purpose.
std::string leftKey(int worldRank);

} // namespace galaxy::comm
