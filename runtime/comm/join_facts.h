// What the ranks of one job must agree on, compared when each rank claims its
// slot in the rendezvous store (tcp_store_server.h): the plans' compile id,
// steps, data files, seeds... A rank whose facts differ from rank 0's is
// refused with every differing fact named, both values shown, before Gloo
// connects anything. Facts marked `fromLead` are not compared: they are rank
// 0's choices that the other ranks adopt (e.g. which collective saves to run).
// Facts marked `explains` are compared only when another fact differs, to
// say how (the config keys behind two compile ids: a pipeline's stages may
// legitimately differ in them within one compile).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace galaxy::comm {

struct JoinFact {
  std::string name;  // "plan compile id", "--steps", ...
  std::string value; // as the user would recognise it
  bool fromLead = false;
  bool explains = false;
};
using JoinFacts = std::vector<JoinFact>;

std::string encodeFacts(const JoinFacts &facts);
absl::StatusOr<JoinFacts> decodeFacts(std::string_view bytes);

// Empty when `mine` (rank `rank`'s) agrees with rank 0's `lead` on every
// compared fact; else "its plan compile id 'a' differs from rank 0's 'b';
// ..." naming each differing fact (a fact only one side has counts too).
std::string compareFacts(const JoinFacts &lead, const JoinFacts &mine);

// The value of `name` among `facts` ("" when absent).
std::string factValue(const JoinFacts &facts, std::string_view name);

} // namespace galaxy::comm
