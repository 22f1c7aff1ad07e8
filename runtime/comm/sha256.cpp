#include "runtime/comm/sha256.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdio>
#include <cstdlib>

namespace galaxy::crypto {
namespace {

// libcrypto fails these only when out of memory or misbuilt: nothing a caller
// could recover from, and a wrong digest must never be returned.
void check(int ok, const char *what) {
  if (ok != 1) {
    std::fprintf(stderr, "galaxy: OpenSSL %s failed\n", what);
    std::abort();
  }
}

} // namespace

void Sha256::Free::operator()(evp_md_ctx_st *c) const { EVP_MD_CTX_free(c); }

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  check(ctx_ != nullptr, "EVP_MD_CTX_new");
  check(EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr),
        "EVP_DigestInit_ex(sha256)");
}

void Sha256::update(const void *data, size_t n) {
  check(EVP_DigestUpdate(ctx_.get(), data, n), "EVP_DigestUpdate");
}

Digest Sha256::finish() {
  Digest d;
  unsigned int len = 0;
  check(EVP_DigestFinal_ex(ctx_.get(), d.data(), &len), "EVP_DigestFinal_ex");
  check(len == d.size(), "SHA-256 digest length");
  return d;
}

Digest sha256(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.finish();
}

Digest hmacSha256(std::string_view key, std::string_view message) {
  Digest d;
  unsigned int len = 0;
  check(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
             reinterpret_cast<const unsigned char *>(message.data()),
             message.size(), d.data(), &len) != nullptr,
        "HMAC(sha256)");
  check(len == d.size(), "HMAC-SHA-256 length");
  return d;
}

bool constantTimeEqual(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string toHex(const uint8_t *p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = kDigits[p[i] >> 4];
    s[2 * i + 1] = kDigits[p[i] & 15];
  }
  return s;
}

} // namespace galaxy::crypto
