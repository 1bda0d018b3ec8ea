#include "item_import.hpp"

#include "molt/codec/json.hpp"
#include "molt/core/status.hpp"

namespace molt_demo {

bool ItemImport::feed(std::string_view piece) {
  if (!error_.empty()) return false;
  while (!piece.empty()) {
    const std::size_t end = piece.find('\n');
    if (end == std::string_view::npos) {
      if (partial_.size() + piece.size() > kMaxLine) {
        ++line_;
        return fail("longer than " + std::to_string(kMaxLine) + " bytes");
      }
      partial_.append(piece);
      return true;
    }
    bool ok;
    if (partial_.empty()) {
      ok = take(piece.substr(0, end));
    } else {
      partial_.append(piece.substr(0, end));
      ok = take(partial_);
      partial_.clear();
    }
    if (!ok) return false;
    piece.remove_prefix(end + 1);
  }
  return true;
}

bool ItemImport::finish() {
  if (!error_.empty()) return false;
  if (partial_.empty()) return true;
  const bool ok = take(partial_);
  partial_.clear();
  return ok;
}

bool ItemImport::take(std::string_view line) {
  ++line_;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.find_first_not_of(" \t") == std::string_view::npos) return true;  // blank
  if (line.size() > kMaxLine) return fail("longer than " + std::to_string(kMaxLine) + " bytes");
  try {
    auto parsed = molt::codec::decode_json<ImportLine>(line, "item");
    NewItem item{user_id_, std::move(parsed.title), std::move(parsed.status), parsed.score};
    ItemsStore::validate(item);
    batch_.push_back(std::move(item));
  } catch (const molt::core::InvalidInput& error) {
    return fail(error.what());
  }
  return true;
}

bool ItemImport::fail(std::string_view why) {
  error_ = "line " + std::to_string(line_) + ": " + std::string(why);
  return false;
}

}  // namespace molt_demo
