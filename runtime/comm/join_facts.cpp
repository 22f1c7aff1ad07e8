#include "runtime/comm/join_facts.h"

#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace galaxy::comm {
namespace {

void putStr(std::string &out, std::string_view s) {
  const uint64_t n = s.size();
  out.append(reinterpret_cast<const char *>(&n), 8);
  out.append(s);
}

bool getStr(std::string_view &in, std::string *s) {
  uint64_t n = 0;
  if (in.size() < 8)
    return false;
  std::memcpy(&n, in.data(), 8);
  in.remove_prefix(8);
  if (n > in.size())
    return false;
  *s = std::string(in.substr(0, n));
  in.remove_prefix(n);
  return true;
}

std::string shown(const JoinFact *f) {
  return f ? absl::StrCat("'", f->value, "'") : std::string("(not given)");
}

} // namespace

std::string encodeFacts(const JoinFacts &facts) {
  std::string out;
  for (const JoinFact &f : facts) {
    out.push_back(f.fromLead ? 'L' : f.explains ? 'E' : 'A');
    putStr(out, f.name);
    putStr(out, f.value);
  }
  return out;
}

absl::StatusOr<JoinFacts> decodeFacts(std::string_view in) {
  JoinFacts facts;
  while (!in.empty()) {
    JoinFact f;
    const char kind = in[0];
    in.remove_prefix(1);
    if ((kind != 'A' && kind != 'L' && kind != 'E') || !getStr(in, &f.name) ||
        !getStr(in, &f.value))
      return absl::DataLossError("malformed join facts");
    f.fromLead = kind == 'L';
    f.explains = kind == 'E';
    facts.push_back(std::move(f));
  }
  return facts;
}

std::string compareFacts(const JoinFacts &lead, const JoinFacts &mine) {
  std::vector<std::string> diffs;
  for (bool explaining : {false, true}) {
    if (explaining && diffs.empty())
      break;
    auto find = [&](const JoinFacts &fs, const std::string &name) {
      for (const JoinFact &f : fs)
        if (f.name == name && !f.fromLead && f.explains == explaining)
          return &f;
      return static_cast<const JoinFact *>(nullptr);
    };
    auto check = [&](const std::string &name) {
      const JoinFact *a = find(lead, name), *b = find(mine, name);
      if (a && b && a->value == b->value)
        return;
      diffs.push_back(absl::StrFormat("its %s %s differs from rank 0's %s",
                                      name, shown(b), shown(a)));
    };
    for (const JoinFact &f : lead)
      if (!f.fromLead && f.explains == explaining)
        check(f.name);
    for (const JoinFact &f : mine)
      if (!f.fromLead && f.explains == explaining && !find(lead, f.name))
        check(f.name);
  }
  return absl::StrJoin(diffs, "; ");
}

std::string factValue(const JoinFacts &facts, std::string_view name) {
  for (const JoinFact &f : facts)
    if (f.name == name)
      return f.value;
  return "";
}

} // namespace galaxy::comm
