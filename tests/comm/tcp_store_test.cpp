// The rendezvous store on its own: values, blocking waits, counters, and the
// disconnect markers that name dead ranks.
#include <thread>
#include <unistd.h>

#include "absl/strings/match.h"
#include "runtime/comm/failure_report.h"
#include "runtime/comm/tcp_store.h"
#include "runtime/comm/tcp_store_server.h"
#include "tests/comm/multiprocess.h"
#include "gtest/gtest.h"

namespace galaxy::comm {
namespace {

using namespace std::chrono_literals;

struct StoreFixture : ::testing::Test {
  void SetUp() override {
    auto s = TcpStoreServer::start("127.0.0.1", 0);
    ASSERT_TRUE(s.ok()) << s.status();
    server = std::move(*s);
    client = connectClient();
  }
  std::unique_ptr<TcpStore> connectClient() {
    auto c = TcpStore::connect("127.0.0.1", server->port(), 2s);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }
  std::unique_ptr<TcpStoreServer> server;
  std::unique_ptr<TcpStore> client;
};

TEST_F(StoreFixture, BinaryValuesRoundTrip) {
  const std::string value("a\0b\xff", 4);
  ASSERT_TRUE(client->put("k", value).ok());
  auto other = connectClient();
  auto got = other->fetch("k", 0ms);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, value);
  // Gloo's interface sees the same bytes.
  EXPECT_EQ(other->get("k"), std::vector<char>(value.begin(), value.end()));
}

TEST_F(StoreFixture, GetBlocksUntilAnotherClientSets) {
  auto other = connectClient();
  std::thread setter([&] {
    std::this_thread::sleep_for(100ms);
    ASSERT_TRUE(other->put("late", "v").ok());
  });
  auto got = client->fetch("late", 2s);
  setter.join();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "v");
}

TEST_F(StoreFixture, TimeoutsNameTheMissingKeys) {
  ASSERT_TRUE(client->put("here", "1").ok());
  auto m = client->missing({"here", "gone"}, 50ms);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(*m, std::vector<std::string>{"gone"});
  auto got = client->fetch("gone", 50ms);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(absl::StrContains(got.status().message(), "'gone'"));
  EXPECT_THROW(client->wait({"gone"}, 50ms), std::exception);
}

TEST_F(StoreFixture, AddIsAtomicAcrossClients) {
  auto other = connectClient();
  std::thread t([&] {
    for (int i = 0; i < 100; ++i)
      ASSERT_TRUE(other->add("n", 1).ok());
  });
  for (int i = 0; i < 100; ++i)
    ASSERT_TRUE(client->add("n", 2).ok());
  t.join();
  EXPECT_EQ(*client->add("n", 0), 300);
}

TEST_F(StoreFixture, DisconnectMarkerFiresOnlyWhenAClientDies) {
  // A polite client (destructor says goodbye) leaves no marker...
  {
    auto polite = connectClient();
    ASSERT_TRUE(polite->setOnDisconnect("dead/polite", "x").ok());
  }
  // ...a process that dies does.
  const int port = server->port();
  auto results = testing::runRanks(1, [&](int) -> absl::Status {
    auto c = TcpStore::connect("127.0.0.1", port, 2s);
    if (!c.ok())
      return c.status();
    if (auto s = (*c)->setOnDisconnect("dead/child", "pid 1"); !s.ok())
      return s;
    _exit(3);
  });
  EXPECT_EQ(results[0].exitCode, 3);
  auto got = client->fetch("dead/child", 2s);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "pid 1");
  EXPECT_EQ(client->fetch("dead/polite", 100ms).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST(TcpStore, LostServerIsReportedNotHung) {
  auto s = TcpStoreServer::start("127.0.0.1", 0);
  ASSERT_TRUE(s.ok());
  auto c = TcpStore::connect("127.0.0.1", (*s)->port(), 1s);
  ASSERT_TRUE(c.ok());
  s->reset(); // server goes away while a client is connected
  auto got = (*c)->fetch("k", 500ms);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(got.status().message(), "rendezvous store"))
      << got.status();
}

TEST(FailureReport, PrefersDeadOverSilentAndTimeoutOverAbort) {
  using P = PeerReport;
  std::vector<P> peers = {{1, P::kDead, "10.0.0.2, pid 7"},
                          {2, P::kSilent, ""}};
  EXPECT_EQ(composeFailure("allreduce", false, "h:1", 60s, "x", peers),
            "rank 1 (10.0.0.2, pid 7) exited or closed the connection during "
            "allreduce [gloo: x]");
  peers = {{0, P::kAborted, "timed out after 60 s in allreduce"},
           {2, P::kSilent, ""}};
  EXPECT_EQ(composeFailure("allreduce", false, "h:1", 60s, "closed", peers),
            "timed out after 60 s in allreduce waiting for rank 2 [gloo: "
            "closed]");
  peers = {{0, P::kAborted, "allreduce: boom"}};
  EXPECT_EQ(composeFailure("allreduce", false, "h:1", 60s, "closed", peers),
            "allreduce failed because rank 0 gave up: allreduce: boom [gloo: "
            "closed]");
  peers = {{2, P::kLeft, "h, pid 3"}, {1, P::kSilent, ""}};
  EXPECT_EQ(composeFailure("send", false, "h:1", 60s, "closed", peers),
            "rank 2 (h, pid 3) shut down its communicator during send (do all "
            "ranks run the same collectives?) [gloo: closed]");
  EXPECT_TRUE(absl::StartsWith(
      composeFailure("barrier", true, "h:1", 60s, "closed", {}),
      "rank 0 (master h:1) exited or closed the connection during barrier"));
}

} // namespace
} // namespace galaxy::comm
