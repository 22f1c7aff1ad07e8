// What the ranks of one galaxy-run job check at join (runtime/comm/
// join_facts.h): the plans come from one compile, and the flags that change
// what every rank computes agree. Rank 0's output roles (--save, ...) are
// adopted by the others, so a flag given to rank 0 alone — natural when
// launching by hand — runs the collective save instead of hanging.
#pragma once

#include <string>

#include "runtime/comm/join_facts.h"
#include "runtime/plan/plan.pb.h"
#include "tools/galaxy-run/common.h"

namespace galaxy::run {

// This rank's facts: the plan's compile id and config keys, the data files'
// identity (size and SHA-256 of the first MiB, not their paths), the flags
// that change the computation, and rank 0's output roles (from-lead facts).
comm::JoinFacts jobFacts(const Args &args, const plan::Plan &plan);

// Adopts rank 0's output roles from `lead`; tells the user on stderr when
// this rank's own flags said otherwise.
void adoptLeadRoles(Args &args, const comm::JoinFacts &lead, int rank);

// The job token of this process: --job-token-file, else GALAXY_JOB_TOKEN,
// else "" (none). Exits 2 on an unreadable file.
std::string jobToken(const Args &args);

// The token a launcher (--nproc) hands its children: the user's, else a fresh
// one for this run. Children get it in their environment (readable only by
// this user), never on a command line (`ps` shows those to everyone).
std::string launcherJobToken(const Args &args);

// Exit status for a failed join: 2 when this rank was refused (wrong token,
// facts that differ from rank 0's, a taken slot: the command line is at
// fault), else 1.
int joinExitCode(const absl::Status &s);

// The warning a multi-rank job without a token prints on rank 0.
void warnWithoutToken(const std::string &master);

} // namespace galaxy::run
