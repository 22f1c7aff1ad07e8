// SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 2104): the job token's
// challenge-response on store connections, galaxyc's compile id and the data
// files' identity in the join check. OpenSSL's libcrypto computes them (its
// SHA-NI code, 1.8 GB/s by `openssl speed` here, hashes a 70B-shaped
// compile's 200 MB of plans in ~0.1 s; the portable loop it replaced took
// ~0.66 s of CPU); only libcrypto, so galaxyc can use it without linking the
// communicator.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

struct evp_md_ctx_st; // OpenSSL's EVP_MD_CTX

namespace galaxy::crypto {

using Digest = std::array<uint8_t, 32>;

class Sha256 {
public:
  Sha256();
  void update(const void *data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  Digest finish(); // the object is spent afterwards

private:
  struct Free {
    void operator()(evp_md_ctx_st *c) const;
  };
  std::unique_ptr<evp_md_ctx_st, Free> ctx_;
};

Digest sha256(std::string_view data);
Digest hmacSha256(std::string_view key, std::string_view message);

// Equal sizes and bytes, in time independent of where they differ.
bool constantTimeEqual(std::string_view a, std::string_view b);

std::string toHex(const uint8_t *p, size_t n);
inline std::string toHex(const Digest &d) { return toHex(d.data(), d.size()); }
inline std::string_view asBytes(const Digest &d) {
  return {reinterpret_cast<const char *>(d.data()), d.size()};
}

} // namespace galaxy::crypto
