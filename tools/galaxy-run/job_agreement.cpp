#include "tools/galaxy-run/job_agreement.h"

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/comm/job_token.h"
#include "runtime/comm/sha256.h"

namespace galaxy::run {
namespace {

// A file's identity without its path (ranks on other hosts see other
// paths): its size and the SHA-256 of its first MiB.
std::string fileIdentity(const std::string &path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0)
    return "unreadable";
  std::ifstream in(path, std::ios::binary);
  std::string head(std::min<off_t>(st.st_size, off_t(1) << 20), '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(std::max<std::streamsize>(in.gcount(), 0)));
  return absl::StrFormat("%d bytes, sha256 of the first MiB %s",
                         static_cast<int64_t>(st.st_size),
                         crypto::toHex(crypto::sha256(head)).substr(0, 16));
}

// Facts for the output roles only rank 0 carries out but every rank takes
// part in (collective gathers).
struct Role {
  const char *flag;
  std::string Args::*field;
};
constexpr Role kLeadRoles[] = {
    {"--save", &Args::save},
    {"--save-merged", &Args::saveMerged},
    {"--save-adapter", &Args::saveAdapter},
    {"--dump-taps", &Args::dumpTaps},
};

} // namespace

comm::JoinFacts jobFacts(const Args &args, const plan::Plan &plan) {
  comm::JoinFacts f;
  auto agree = [&](std::string name, std::string value) {
    f.push_back({std::move(name), std::move(value), false});
  };
  // The compile id alone would say "different compiles"; the config keys
  // say how they differ (learning_rate 0.001 vs 0.5, parallel_mode tp vs
  // galaxy), compared only then: a pipeline's stages may differ in them.
  agree("plan compile id", plan.compile_id());
  nlohmann::json cfg =
      nlohmann::json::parse(plan.config_json(), nullptr, /*allow_exceptions=*/
                            false);
  if (cfg.is_object())
    for (auto it = cfg.begin(); it != cfg.end(); ++it)
      f.push_back({absl::StrCat("config ", it.key()),
                   it.value().is_string() ? it.value().get<std::string>()
                                          : it.value().dump(),
                   /*fromLead=*/false, /*explains=*/true});
  auto file = [&](const char *flag, const std::string &path) {
    agree(absl::StrCat(flag, " file"),
          path.empty() ? "(none)" : fileIdentity(path));
  };
  file("--data", args.data);
  file("--eval", args.eval);
  file("--init", args.init);
  file("--init-adapter", args.initAdapter.empty()
                             ? ""
                             : args.initAdapter + "/adapter_model.safetensors");
  file("--vocab", args.vocab);
  file("--tokenizer", args.tokenizer);
  file("--taps", args.taps);
  file("--eval-taps", args.evalTaps);
  file("--generate", args.generate);
  agree("--steps", absl::StrCat(args.steps));
  agree("--epochs", absl::StrCat(args.epochs));
  agree("--seed", absl::StrCat(args.seed));
  agree("--shuffle", args.shuffle ? "yes" : "no");
  agree("--backend", args.backend);
  agree("--profile", args.profile ? "yes" : "no");
  // Checkpointing adds a collective per step (the stop-flag all-reduce) and
  // a gather per checkpoint, and resuming sets every rank's first step: all
  // ranks must be given them (paths may differ between hosts).
  agree("--checkpoint-dir", args.checkpointDir.empty() ? "(none)" : "given");
  agree("--checkpoint-every", absl::StrCat(args.checkpointEvery));
  agree("--resume", args.resume.empty() ? "(none)" : "given");
  agree("--max-new-tokens", absl::StrCat(args.maxNewTokens));
  agree("--eos-id", absl::StrCat(args.eosId));
  agree("--temperature", absl::StrCat(args.sampling.temperature));
  agree("--top-k", absl::StrCat(args.sampling.topK));
  agree("--top-p", absl::StrCat(args.sampling.topP));
  for (const Role &r : kLeadRoles)
    f.push_back({r.flag, args.*r.field, true});
  return f;
}

void adoptLeadRoles(Args &args, const comm::JoinFacts &lead, int rank) {
  if (rank == 0)
    return;
  for (const Role &r : kLeadRoles) {
    const std::string want = comm::factValue(lead, r.flag);
    std::string &mine = args.*r.field;
    if (mine == want)
      continue;
    if (!mine.empty())
      std::cerr << absl::StrFormat(
          "galaxy-run: rank %d: %s is rank 0's to carry out; this rank takes "
          "part in %s\n",
          rank, r.flag,
          want.empty() ? std::string("no such write (rank 0 was not given it)")
                       : absl::StrCat("rank 0's ", r.flag, " ", want));
    mine = want;
  }
}

std::string jobToken(const Args &args) {
  if (!args.jobTokenFile.empty()) {
    std::string warning;
    absl::StatusOr<std::string> t =
        comm::readJobTokenFile(args.jobTokenFile, &warning);
    if (!t.ok())
      fail(2, std::string(t.status().message()));
    if (!warning.empty())
      std::cerr << "galaxy-run: warning: " << warning << "\n";
    return *t;
  }
  if (const char *t = std::getenv(comm::kJobTokenEnv); t && *t) {
    if (std::string(t).size() > comm::kMaxJobTokenBytes)
      fail(2, absl::StrCat(comm::kJobTokenEnv, " is longer than ",
                           comm::kMaxJobTokenBytes, " bytes"));
    return t;
  }
  return "";
}

int joinExitCode(const absl::Status &s) {
  return s.code() == absl::StatusCode::kFailedPrecondition ||
                 s.code() == absl::StatusCode::kPermissionDenied
             ? 2
             : 1;
}

void warnWithoutToken(const std::string &master) {
  std::cerr << absl::StrFormat(
      "galaxy-run: warning: this job has no job token, so any process that "
      "can reach %s can join it as a rank; set %s (the same secret for "
      "every rank) or --job-token-file FILE (docs/launching.md)\n",
      master, comm::kJobTokenEnv);
}

std::string launcherJobToken(const Args &args) {
  std::string token = jobToken(args);
  if (!token.empty())
    return token;
  absl::StatusOr<std::string> t = comm::generateJobToken();
  if (!t.ok())
    fail(1, absl::StrCat("cannot make a job token: ", t.status().message()));
  return *t;
}

} // namespace galaxy::run
