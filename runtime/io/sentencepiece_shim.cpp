// libgalaxy_sentencepiece.so: Debian's libsentencepiece behind a C interface,
// loaded by sentencepiece.cpp with dlopen(RTLD_LOCAL | RTLD_DEEPBIND).
//
// Why a separate, privately loaded library: libsentencepiece.so carries and
// exports its own protobuf-lite 3.14, whose symbols clash with the system
// libprotobuf 3.21 that every plan reader links. Linked directly, the process
// aborts at start-up in protobuf's version check; loaded this way, its
// references bind to its own copy and nothing of it enters the global scope.
//
// Rules this file keeps because of RTLD_DEEPBIND: no iostreams (std::cerr here
// would be libstdc++'s own object, not the executable's copy-relocated one,
// and writing to it crashes), so sentencepiece's logging is turned off; no
// abseil headers (sentencepiece declares absl::string_view itself); only C
// types cross the interface, and memory is owned on the side that allocated
// it.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <sentencepiece_processor.h>

namespace sentencepiece::logging {
// Exported by libsentencepiece but not in its installed headers. Levels:
// 0 INFO, 1 WARNING, 2 ERROR, 3 FATAL.
void SetMinLogLevel(int v);
} // namespace sentencepiece::logging

namespace {

void setError(char *err, size_t cap, const std::string &msg) {
  if (err && cap > 0)
    std::snprintf(err, cap, "%s", msg.c_str());
}

} // namespace

extern "C" {

// Interface version: sentencepiece.cpp refuses a shim of another version.
__attribute__((visibility("default"))) int galaxy_spm_abi_version() {
  return 2;
}

// The model at `path`, or null with the reason in `err`.
__attribute__((visibility("default"))) void *
galaxy_spm_open(const char *path, char *err, size_t errCap) {
  // Errors come back as statuses; nothing may print (see the file comment).
  sentencepiece::logging::SetMinLogLevel(3);
  auto sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const sentencepiece::util::Status s = sp->Load(path);
  if (!s.ok()) {
    setError(err, errCap, s.ToString());
    return nullptr;
  }
  return sp.release();
}

__attribute__((visibility("default"))) void galaxy_spm_close(void *h) {
  delete static_cast<sentencepiece::SentencePieceProcessor *>(h);
}

__attribute__((visibility("default"))) int32_t galaxy_spm_vocab_size(void *h) {
  return static_cast<sentencepiece::SentencePieceProcessor *>(h)
      ->GetPieceSize();
}

// -1 when the model has no such piece.
__attribute__((visibility("default"))) int32_t galaxy_spm_bos_id(void *h) {
  return static_cast<sentencepiece::SentencePieceProcessor *>(h)->bos_id();
}

// The piece of `id` copied into `out` (NUL-terminated, cut at cap - 1 bytes).
__attribute__((visibility("default"))) void
galaxy_spm_piece(void *h, int32_t id, char *out, size_t cap) {
  auto *sp = static_cast<sentencepiece::SentencePieceProcessor *>(h);
  setError(out, cap,
           id >= 0 && id < sp->GetPieceSize() ? sp->IdToPiece(id) : "?");
}

// The ids of `text` (bytes [text, text + len)), without BOS/EOS: the count,
// of which the first min(count, cap) are written to `out`; -1 with the reason
// in `err` when encoding fails.
__attribute__((visibility("default"))) int64_t
galaxy_spm_encode(void *h, const char *text, size_t len, int32_t *out,
                  int64_t cap, char *err, size_t errCap) {
  auto *sp = static_cast<sentencepiece::SentencePieceProcessor *>(h);
  std::vector<int> ids;
  const sentencepiece::util::Status s =
      sp->Encode(std::string_view(text, len), &ids);
  if (!s.ok()) {
    setError(err, errCap, s.ToString());
    return -1;
  }
  for (int64_t i = 0; i < cap && i < int64_t(ids.size()); ++i)
    out[i] = ids[i];
  return int64_t(ids.size());
}

// The text of `ids` (control pieces such as BOS/EOS dropped, the leading
// space marker of the first piece removed: DecodeIds): its byte count, of
// which the first min(count, cap) are written to `out`; -1 with the reason in
// `err` when decoding fails (an id outside the vocabulary).
__attribute__((visibility("default"))) int64_t
galaxy_spm_decode(void *h, const int32_t *ids, int64_t n, char *out,
                  int64_t cap, char *err, size_t errCap) {
  auto *sp = static_cast<sentencepiece::SentencePieceProcessor *>(h);
  std::vector<int> v(ids, ids + n);
  std::string text;
  const sentencepiece::util::Status s = sp->Decode(v, &text);
  if (!s.ok()) {
    setError(err, errCap, s.ToString());
    return -1;
  }
  if (cap > 0)
    std::memcpy(out, text.data(),
                size_t(std::min<int64_t>(cap, int64_t(text.size()))));
  return int64_t(text.size());
}

} // extern "C"
