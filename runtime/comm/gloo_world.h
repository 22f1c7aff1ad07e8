// Process-wide state shared by a Gloo world communicator and every
// communicator split from it.
#pragma once

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
  // Leaving on purpose is recorded too, so peers still in a collective learn
  // why this rank's connections closed.
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

  std::mutex mu;
  // How many splits with a given member list this process made; members make
  // the same splits in the same order, so (list, count) names a group.
  std::map<std::string, int> splitCounts;
};

// Store key a world rank's "I died" marker lives under; the server sets it
// when that rank's store connection drops without a goodbye.
std::string deadKey(int worldRank);

} // namespace galaxy::comm
