// The rendezvous store on its own: values, blocking waits, counters, and the
// disconnect markers that name dead ranks; the job token, rank claims, join
// facts and the limits that keep strangers out (issue 19, findings 1, 2, 4).
#include <fstream>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "runtime/comm/failure_report.h"
#include "runtime/comm/join_facts.h"
#include "runtime/comm/sha256.h"
#include "runtime/comm/store_protocol.h"
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

// --- Who may join (issue 19) ----------------------------------------------

TEST(Sha256, KnownAnswers) {
  // FIPS 180-4 examples and RFC 4231 test case 2.
  EXPECT_EQ(crypto::toHex(crypto::sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(crypto::toHex(crypto::sha256(
                "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(crypto::toHex(crypto::sha256(std::string(1000000, 'a'))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_EQ(
      crypto::toHex(crypto::hmacSha256("Jefe", "what do ya want for nothing?")),
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_TRUE(crypto::constantTimeEqual("abc", "abc"));
  EXPECT_FALSE(crypto::constantTimeEqual("abc", "abd"));
  EXPECT_FALSE(crypto::constantTimeEqual("abc", "ab"));
}

struct TokenStore : ::testing::Test {
  void SetUp() override {
    StoreServerOptions o;
    o.token = "the-job-secret";
    o.handshakeTimeout = 500ms;
    o.log = [this](const std::string &m) {
      std::lock_guard<std::mutex> lock(logMu);
      log += m + "\n";
    };
    auto s = TcpStoreServer::start("127.0.0.1", 0, std::move(o));
    ASSERT_TRUE(s.ok()) << s.status();
    server = std::move(*s);
  }
  absl::StatusOr<std::unique_ptr<TcpStore>>
  connect(const std::string &token = "the-job-secret") {
    return TcpStore::connect("127.0.0.1", server->port(), 2s, token);
  }
  std::string logged() {
    std::lock_guard<std::mutex> lock(logMu);
    return log;
  }
  bool loggedWithin(const std::string &what, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!absl::StrContains(logged(), what)) {
      if (std::chrono::steady_clock::now() > end)
        return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }
  std::unique_ptr<TcpStoreServer> server;
  std::mutex logMu;
  std::string log;
};

TEST_F(TokenStore, WrongOrMissingTokenIsRefusedAndTheJobGoesOn) {
  auto job = connect();
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE((*job)->put("k", "v").ok());
  for (const std::string bad : {"wrong", ""}) {
    auto stranger = connect(bad);
    ASSERT_FALSE(stranger.ok());
    EXPECT_EQ(stranger.status().code(), absl::StatusCode::kPermissionDenied);
    EXPECT_TRUE(absl::StrContains(stranger.status().message(),
                                  "refused this rank's job token"))
        << stranger.status();
  }
  // Refusals are reported on rank 0, never with the token. The server logs
  // after it has answered, so the line may land a moment after the refusal.
  EXPECT_TRUE(loggedWithin("wrong job token", 5s)) << logged();
  EXPECT_FALSE(absl::StrContains(logged(), "the-job-secret"));
  auto got = (*job)->fetch("k", 0ms);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "v");
}

TEST_F(TokenStore, ClientRefusesAStoreThatDoesNotKnowTheToken) {
  // A rank must not join another job's store either.
  auto other = TcpStoreServer::start("127.0.0.1", 0, {.token = "other job"});
  ASSERT_TRUE(other.ok());
  auto c =
      TcpStore::connect("127.0.0.1", (*other)->port(), 2s, "the-job-secret");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(TokenStore, RankSlotIsNeverOverwritten) {
  auto r0 = connect(), r1 = connect(), dup = connect();
  ASSERT_TRUE(r0.ok() && r1.ok() && dup.ok());
  ASSERT_TRUE((*r0)->claimRank(0, "127.0.0.1, pid 10", "", 1s).ok());
  ASSERT_TRUE((*r1)->claimRank(1, "127.0.0.1, pid 11", "", 1s).ok());
  auto second = (*dup)->claimRank(1, "127.0.0.1, pid 66", "", 1s);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(second.status().message(),
                                "rank 1 is already taken by 127.0.0.1, pid 11"))
      << second.status();
  // The slot still names the first process, and the job goes on.
  auto info = (*r0)->fetch("info/1", 0ms);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(*info, "127.0.0.1, pid 11");
  EXPECT_TRUE((*r1)->put("still", "here").ok());
  // Even after its process leaves, nobody else gets rank 1.
  r1->reset();
  auto late = connect();
  ASSERT_TRUE(late.ok());
  EXPECT_FALSE((*late)->claimRank(1, "127.0.0.1, pid 77", "", 1s).ok());
}

TEST_F(TokenStore, FactsThatDifferFromRankZerosAreNamedWithBothValues) {
  JoinFacts lead = {{"config learning_rate", "0.001"},
                    {"--steps", "10"},
                    {"--save", "/tmp/w.safetensors", true}};
  JoinFacts other = {
      {"config learning_rate", "0.5"}, {"--steps", "10"}, {"--save", "", true}};
  auto r0 = connect(), bad = connect(), good = connect();
  ASSERT_TRUE(r0.ok() && bad.ok() && good.ok());
  ASSERT_TRUE((*r0)->claimRank(0, "h, pid 1", encodeFacts(lead), 1s).ok());
  auto refused = (*bad)->claimRank(1, "h, pid 2", encodeFacts(other), 1s);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(absl::StrContains(
      refused.status().message(),
      "its config learning_rate '0.5' differs from rank 0's '0.001'"))
      << refused.status();
  // A refused process does not take the slot: the right rank 1 still joins,
  // and learns rank 0's --save (a fact that is rank 0's to choose).
  JoinFacts same = lead;
  same[2].value = "";
  auto ok = (*good)->claimRank(1, "h, pid 3", encodeFacts(same), 1s);
  ASSERT_TRUE(ok.ok()) << ok.status();
  auto leadFacts = decodeFacts(ok->facts);
  ASSERT_TRUE(leadFacts.ok());
  EXPECT_EQ(factValue(*leadFacts, "--save"), "/tmp/w.safetensors");
  EXPECT_EQ(ok->info, "h, pid 1");
  // Rank 0 can tell why a rank it waits for is missing.
  auto why = (*r0)->fetch("refused/1", 0ms);
  ASSERT_TRUE(why.ok());
  EXPECT_TRUE(absl::StrContains(*why, "learning_rate"));
}

TEST(JoinFacts, CompareNamesMissingAndExtraFacts) {
  JoinFacts a = {{"--steps", "10"}, {"--seed", "1"}};
  JoinFacts b = {{"--steps", "10"}, {"--epochs", "2"}};
  EXPECT_EQ(compareFacts(a, a), "");
  EXPECT_EQ(compareFacts(a, b),
            "its --seed (not given) differs from rank 0's '1'; its --epochs "
            "'2' differs from rank 0's (not given)");
  auto round = decodeFacts(encodeFacts(b));
  ASSERT_TRUE(round.ok());
  EXPECT_EQ(compareFacts(b, *round), "");
  EXPECT_FALSE(decodeFacts("Zjunk").ok());
  // Explaining facts count only when another differs.
  JoinFacts c0 = {{"plan compile id", "x"},
                  {"config lr", "1", false, /*explains=*/true}};
  JoinFacts c1 = {{"plan compile id", "x"},
                  {"config lr", "2", false, /*explains=*/true}};
  EXPECT_EQ(compareFacts(c0, c1), "");
  c1[0].value = "y";
  EXPECT_EQ(compareFacts(c0, c1),
            "its plan compile id 'y' differs from rank 0's 'x'; its config "
            "lr '2' differs from rank 0's '1'");
}

int64_t rssKiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (absl::StartsWith(line, "VmRSS:")) {
      int64_t kb = 0;
      absl::SimpleAtoi(
          absl::StripAsciiWhitespace(line.substr(6, line.size() - 9)), &kb);
      return kb;
    }
  return -1;
}

// Finding 2: four connections each announcing a 2^30-byte field grew rank 0
// from 187 MB to 3.99 GB. Now: strangers without the token are dropped at
// the fixed-size handshake; with it (or with no token configured), a field
// past 64 MiB is refused before allocating, and an announced field below
// the cap costs only what actually arrives.
TEST(StoreLimits, AnnouncedHugeFieldsDoNotGrowTheServer) {
  auto s = TcpStoreServer::start(
      "127.0.0.1", 0,
      {.handshakeTimeout = 2000ms, .log = [](const std::string &) {}});
  ASSERT_TRUE(s.ok());
  const int port = (*s)->port();
  const int64_t before = rssKiB();
  std::vector<Fd> conns;
  auto raw = [&] {
    auto fd = connectWithRetry("127.0.0.1", port, 2s);
    EXPECT_TRUE(fd.ok());
    return std::move(*fd);
  };
  auto announce = [](int fd, uint64_t n) {
    store_wire::Writer w;
    w.u8(store_wire::kSet);
    w.u64(n); // the key's length; nothing follows
    return w.sendTo(fd);
  };
  for (int i = 0; i < 4; ++i) {
    // As in the issue: opcode 1 and 2^30 straight away (no handshake).
    conns.push_back(raw());
    ASSERT_TRUE(announce(conns.back().get(), uint64_t(1) << 30).ok());
    // Past the handshake (no token set): 2^30 is over the cap.
    conns.push_back(raw());
    ASSERT_TRUE(
        store_wire::clientHandshake(conns.back().get(), "", 2s, "s").ok());
    ASSERT_TRUE(announce(conns.back().get(), uint64_t(1) << 30).ok());
    // Just under the cap, then silence: nothing is allocated up front.
    conns.push_back(raw());
    ASSERT_TRUE(
        store_wire::clientHandshake(conns.back().get(), "", 2s, "s").ok());
    store_wire::Writer w;
    w.u8(store_wire::kSet);
    w.u64(4); // key
    w.raw("key!");
    w.u64(store_wire::kMaxValueBytes - 1); // value, never sent
    ASSERT_TRUE(w.sendTo(conns.back().get()).ok());
  }
  std::this_thread::sleep_for(300ms);
  const int64_t after = rssKiB();
  EXPECT_LT(after - before, 32 * 1024)
      << "RSS grew from " << before << " KiB to " << after << " KiB";
  // The job is not harmed: a rank still connects and uses the store.
  auto c = TcpStore::connect("127.0.0.1", port, 2s);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE((*c)->put("k", "v").ok());
  EXPECT_EQ(*(*c)->fetch("k", 0ms), "v");
}

// Connections that never finish the handshake are capped (and time out), so
// a flood neither exhausts the server nor keeps the ranks out for long.
TEST(StoreLimits, ConnectionFloodIsCappedAndRanksStillJoin) {
  auto s = TcpStoreServer::start("127.0.0.1", 0,
                                 {.maxPending = 8,
                                  .handshakeTimeout = 300ms,
                                  .log = [](const std::string &) {}});
  ASSERT_TRUE(s.ok());
  const int port = (*s)->port();
  std::vector<Fd> idle;
  for (int i = 0; i < 64; ++i) {
    auto fd = connectWithRetry("127.0.0.1", port, 2s);
    ASSERT_TRUE(fd.ok());
    idle.push_back(std::move(*fd));
  }
  auto c = TcpStore::connect("127.0.0.1", port, 5s);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE((*c)->put("k", "v").ok());
  // Of the 64, about 8 were served (a few more if some timed out while the
  // rest were still being accepted): the others were closed at once.
  int closed = 0;
  for (Fd &fd : idle) {
    setRecvTimeout(fd.get(), 100ms);
    char b[64];
    ssize_t n = recv(fd.get(), b, sizeof b, 0);
    // A served one got the 40-byte greeting, then was closed on timeout.
    closed += n == 0 || (n < 0 && errno == ECONNRESET);
  }
  EXPECT_GE(closed, 32);
}

} // namespace
} // namespace galaxy::comm
