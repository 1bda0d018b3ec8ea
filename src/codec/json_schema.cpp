#include "molt/codec/json_schema.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>

namespace molt::codec {

namespace {

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// `cxx_name` with every `namespace::` dropped ("ns::Page<ns::Item>" -> "Page<Item>").
std::string without_namespaces(std::string_view cxx_name) {
  constexpr std::string_view kAnonymous = "(anonymous namespace)::";
  std::string out;
  std::size_t word = 0;  // where the name being copied starts in `out`
  for (std::size_t i = 0; i < cxx_name.size(); ++i) {
    if (cxx_name.compare(i, kAnonymous.size(), kAnonymous) == 0) {
      i += kAnonymous.size() - 1;
    } else if (cxx_name.compare(i, 2, "::") == 0) {
      out.resize(word);
      ++i;
    } else {
      out += cxx_name[i];
      if (!is_name_char(cxx_name[i])) word = out.size();
    }
  }
  return out;
}

// A definition name OpenAPI takes (^[a-zA-Z0-9._-]+$): each run of other characters becomes
// one '_', none at the ends ("Page<Item, 3>" -> "Page_Item_3").
std::string schema_name(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (is_name_char(c) || c == '.' || c == '-')
      out += c;
    else if (!out.empty() && out.back() != '_')
      out += '_';
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out.empty() ? std::string("Type") : out;
}

}  // namespace

SchemaSet::Claim SchemaSet::claim_name(std::type_index type, std::string_view cxx_name) {
  for (const auto& [known, name] : names_)
    if (known == type) return {name, false};
  const auto taken = [&](const std::string& name) {
    return std::any_of(names_.begin(), names_.end(),
                       [&](const auto& entry) { return entry.second == name; });
  };
  // Two types of one name in different namespaces: the later one is named in full
  // ("billing::Item" -> "billing.Item"), as FastAPI qualifies a model by its module.
  std::string name = schema_name(without_namespaces(cxx_name));
  if (taken(name)) {
    std::string qualified(cxx_name);
    for (std::size_t at = qualified.find("::"); at != std::string::npos;
         at = qualified.find("::", at + 1))
      qualified.replace(at, 2, ".");
    name = schema_name(qualified);
  }
  for (int suffix = 2; taken(name); ++suffix)
    name = schema_name(cxx_name) + "_" + std::to_string(suffix);
  names_.emplace_back(type, name);
  return {name, true};
}

boost::json::value SchemaSet::ref_to(std::string_view name) const {
  return boost::json::object{{"$ref", ref_prefix_ + std::string(name)}};
}

namespace detail {

boost::json::value simple_schema(std::string_view type) {
  return boost::json::object{{"type", type}};
}

boost::json::value integer_schema(std::size_t bytes, bool is_signed) {
  boost::json::object schema{{"type", "integer"}};
  // int64 is told by its format (its bounds are past what JavaScript numbers hold exactly);
  // narrower types by their bounds, which validators check (int32 by its format too).
  if (is_signed && bytes == 8) {
    schema["format"] = "int64";
  } else if (is_signed) {
    if (bytes == 4) schema["format"] = "int32";
    const std::int64_t max = (std::int64_t{1} << (8 * bytes - 1)) - 1;
    schema["minimum"] = -max - 1;
    schema["maximum"] = max;
  } else {
    schema["minimum"] = 0;
    schema["maximum"] = bytes == 8 ? std::numeric_limits<std::uint64_t>::max()
                                   : (std::uint64_t{1} << (8 * bytes)) - 1;
  }
  return schema;
}

boost::json::value number_schema(std::size_t bytes) {
  return boost::json::object{{"type", "number"}, {"format", bytes == 4 ? "float" : "double"}};
}

boost::json::value nullable_schema(boost::json::value inner) {
  return boost::json::object{
      {"anyOf", boost::json::array{std::move(inner), boost::json::object{{"type", "null"}}}}};
}

}  // namespace detail

}  // namespace molt::codec
