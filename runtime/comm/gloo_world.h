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
#include "runtime/comm/heartbeat.h"
#include "runtime/comm/rendezvous.h"
#include "runtime/comm/tcp_store.h"
#include "runtime/comm/tcp_store_server.h"

namespace galaxy::comm {

// The rendezvous state (server, store, heartbeat, master, leadInfo) is the
// base, so it is destroyed after everything else: the store server last, once
// this process's own store client has said goodbye to it.
struct GlooWorld : Rendezvous {
  // Records that this rank left on purpose (peers still in a collective then
  // learn why its connections closed); after a failure, rank 0 keeps the
  // store up a little for the other ranks' diagnosis.
  ~GlooWorld();

  std::shared_ptr<gloo::transport::Device> device;
  std::chrono::milliseconds timeout{60000};
  int worldRank = 0;
  int worldSize = 1;
  std::string selfInfo; // "127.0.0.1, pid 42": how peers name this rank
  std::string token;    // the job token, for the pair check

  std::atomic<bool> failed{false}; // some communicator of this world failed

  std::mutex mu;
  // How many splits with a given member list this process made; members make
  // the same splits in the same order, so (list, count) names a group.
  std::map<std::string, int> splitCounts;
};

} // namespace galaxy::comm
