#include "runtime/io/sentencepiece.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <type_traits>

#include "absl/strings/str_cat.h"

namespace galaxy::io {
namespace {

// The shim's C interface (sentencepiece_shim.cpp), resolved once.
struct ShimApi {
  int (*abiVersion)();
  void *(*open)(const char *, char *, size_t);
  void (*close)(void *);
  int32_t (*vocabSize)(void *);
  int32_t (*bosId)(void *);
  void (*piece)(void *, int32_t, char *, size_t);
  int64_t (*encode)(void *, const char *, size_t, int32_t *, int64_t, char *,
                    size_t);
  int64_t (*decode)(void *, const int32_t *, int64_t, char *, int64_t, char *,
                    size_t);
};

constexpr int kShimAbiVersion = 2;
constexpr size_t kErrBytes = 1024;

// GALAXY_SENTENCEPIECE_SHIM overrides where the build put the shim (for a
// moved build tree).
std::string shimPath() {
  const char *env = std::getenv("GALAXY_SENTENCEPIECE_SHIM");
  return env && *env ? env : GALAXY_SENTENCEPIECE_SHIM;
}

absl::StatusOr<const ShimApi *> loadShim() {
  static std::once_flag once;
  static ShimApi api;
  static absl::Status status;
  std::call_once(once, [] {
    const std::string path = shimPath();
    // RTLD_DEEPBIND: the library's references bind to its own bundled
    // protobuf first; RTLD_LOCAL: none of its symbols reach the global scope.
    void *lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!lib) {
      status = absl::FailedPreconditionError(absl::StrCat(
          "cannot load the SentencePiece library ", path, ": ", dlerror(),
          " (install libsentencepiece-dev (scripts/setup.sh) and rebuild)"));
      return;
    }
    bool missing = false;
    auto sym = [&](auto &fn, const char *name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(
          dlsym(lib, name));
      missing = missing || !fn;
    };
    sym(api.abiVersion, "galaxy_spm_abi_version");
    sym(api.open, "galaxy_spm_open");
    sym(api.close, "galaxy_spm_close");
    sym(api.vocabSize, "galaxy_spm_vocab_size");
    sym(api.bosId, "galaxy_spm_bos_id");
    sym(api.piece, "galaxy_spm_piece");
    sym(api.encode, "galaxy_spm_encode");
    sym(api.decode, "galaxy_spm_decode");
    if (missing || api.abiVersion() != kShimAbiVersion)
      status = absl::FailedPreconditionError(absl::StrCat(
          path, " is not the SentencePiece shim this program was built with; "
                "rebuild"));
  });
  if (!status.ok())
    return status;
  return &api;
}

} // namespace

struct SentencePieceTokenizer::Handle {
  const ShimApi *api = nullptr;
  void *model = nullptr;
  ~Handle() {
    if (model)
      api->close(model);
  }
};

SentencePieceTokenizer::SentencePieceTokenizer(SentencePieceTokenizer &&) =
    default;
SentencePieceTokenizer &
SentencePieceTokenizer::operator=(SentencePieceTokenizer &&) = default;
SentencePieceTokenizer::~SentencePieceTokenizer() = default;

absl::StatusOr<SentencePieceTokenizer>
SentencePieceTokenizer::fromFile(const std::string &modelPath) {
  absl::StatusOr<const ShimApi *> api = loadShim();
  if (!api.ok())
    return api.status();
  char err[kErrBytes] = "";
  void *model = (*api)->open(modelPath.c_str(), err, sizeof err);
  if (!model)
    return absl::InvalidArgumentError(
        absl::StrCat("cannot load SentencePiece model ", modelPath, ": ", err,
                     " (give the model's own tokenizer.model)"));
  SentencePieceTokenizer t;
  t.h_ = std::make_unique<Handle>();
  t.h_->api = *api;
  t.h_->model = model;
  t.path_ = modelPath;
  t.vocabSize_ = (*api)->vocabSize(model);
  t.bosId_ = (*api)->bosId(model);
  if (t.bosId_ < 0)
    return absl::InvalidArgumentError(absl::StrCat(
        "SentencePiece model ", modelPath,
        " has no BOS piece; Hugging Face's LlamaTokenizer starts every text "
        "with one"));
  return t;
}

std::string SentencePieceTokenizer::piece(int32_t id) const {
  char buf[256] = "";
  h_->api->piece(h_->model, id, buf, sizeof buf);
  return buf;
}

absl::StatusOr<std::vector<int32_t>>
SentencePieceTokenizer::pieces(std::string_view text) const {
  std::vector<int32_t> ids(text.size() + 16);
  char err[kErrBytes] = "";
  for (int attempt = 0; attempt < 2; ++attempt) {
    const int64_t n =
        h_->api->encode(h_->model, text.data(), text.size(), ids.data(),
                        int64_t(ids.size()), err, sizeof err);
    if (n < 0)
      return absl::InvalidArgumentError(
          absl::StrCat("SentencePiece ", path_, ": ", err));
    const bool fits = n <= int64_t(ids.size());
    ids.resize(size_t(n));
    if (fits)
      return ids;
  }
  return absl::InternalError(absl::StrCat(
      "SentencePiece ", path_, ": the id count changed between two encodings"));
}

absl::StatusOr<std::string>
SentencePieceTokenizer::decode(const std::vector<int32_t> &ids) const {
  for (int32_t id : ids)
    if (id < 0 || id >= vocabSize_)
      return absl::InvalidArgumentError(
          absl::StrCat("SentencePiece ", path_, ": id ", id,
                       " is outside its vocabulary [0, ", vocabSize_, ")"));
  std::string text(ids.size() * 8 + 16, '\0');
  char err[kErrBytes] = "";
  for (int attempt = 0; attempt < 2; ++attempt) {
    const int64_t n =
        h_->api->decode(h_->model, ids.data(), int64_t(ids.size()), text.data(),
                        int64_t(text.size()), err, sizeof err);
    if (n < 0)
      return absl::InvalidArgumentError(
          absl::StrCat("SentencePiece ", path_, ": ", err));
    const bool fits = n <= int64_t(text.size());
    text.resize(size_t(n));
    if (fits)
      return text;
  }
  return absl::InternalError(absl::StrCat(
      "SentencePiece ", path_, ": the text changed between two decodings"));
}

absl::StatusOr<std::vector<int32_t>>
SentencePieceTokenizer::encode(std::string_view text, int64_t maxLen) const {
  absl::StatusOr<std::vector<int32_t>> p = pieces(text);
  if (!p.ok())
    return p.status();
  std::vector<int32_t> ids;
  ids.reserve(p->size() + 1);
  ids.push_back(bosId_);
  ids.insert(ids.end(), p->begin(), p->end());
  if (maxLen >= 0 && int64_t(ids.size()) > maxLen)
    ids.resize(size_t(maxLen));
  return ids;
}

} // namespace galaxy::io
