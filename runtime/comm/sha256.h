// SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 2104): the job token's
// challenge-response on store connections, galaxyc's compile id and the data
// files' identity in the join check. No dependency beyond the standard
// library, so galaxyc can use it without linking the communicator.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace galaxy::crypto {

using Digest = std::array<uint8_t, 32>;

class Sha256 {
public:
  Sha256();
  void update(const void *data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  Digest finish(); // the object is spent afterwards

private:
  void block(const uint8_t *p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t used_ = 0;
  uint64_t bytes_ = 0;
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
