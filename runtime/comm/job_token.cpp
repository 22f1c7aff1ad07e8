#include "runtime/comm/job_token.h"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <sys/random.h>
#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/comm/sha256.h"

namespace galaxy::comm {

absl::StatusOr<std::string> randomBytes(size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(out.data() + got, n - got, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return absl::InternalError(
          absl::StrCat("getrandom: ", std::strerror(errno)));
    got += static_cast<size_t>(r);
  }
  return out;
}

absl::StatusOr<std::string> generateJobToken() {
  absl::StatusOr<std::string> b = randomBytes(32);
  if (!b.ok())
    return b.status();
  return crypto::toHex(reinterpret_cast<const uint8_t *>(b->data()), b->size());
}

absl::StatusOr<std::string> readJobTokenFile(const std::string &path,
                                             std::string *warning) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0)
    return absl::InvalidArgumentError(
        absl::StrFormat("--job-token-file %s: %s", path, std::strerror(errno)));
  if (!S_ISREG(st.st_mode))
    return absl::InvalidArgumentError(
        absl::StrFormat("--job-token-file %s is not a regular file", path));
  if (st.st_size > static_cast<off_t>(kMaxJobTokenBytes) + 64)
    return absl::InvalidArgumentError(absl::StrFormat(
        "--job-token-file %s holds %d bytes; a token is at most %d", path,
        st.st_size, kMaxJobTokenBytes));
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in && !in.eof())
    return absl::InvalidArgumentError(
        absl::StrFormat("--job-token-file %s cannot be read", path));
  std::string token = ss.str();
  while (!token.empty() &&
         std::isspace(static_cast<unsigned char>(token.back())))
    token.pop_back();
  if (token.empty())
    return absl::InvalidArgumentError(absl::StrFormat(
        "--job-token-file %s is empty (write a secret into it, e.g. `openssl "
        "rand -hex 32 > %s`)",
        path, path));
  if (token.size() > kMaxJobTokenBytes)
    return absl::InvalidArgumentError(absl::StrFormat(
        "--job-token-file %s: the token is longer than %d bytes", path,
        kMaxJobTokenBytes));
  if (warning && (st.st_mode & (S_IRGRP | S_IROTH)))
    *warning = absl::StrFormat(
        "--job-token-file %s can be read by other users (mode %o): `chmod "
        "600 %s`",
        path, st.st_mode & 0777, path);
  return token;
}

} // namespace galaxy::comm
