#pragma once
// Typed JSON: parse with Boost.JSON, decode into described types with path-naming errors;
// write described types straight to bytes (no DOM), numbers in Python's notation.

#include <algorithm>
#include <array>
#include <boost/json/parse.hpp>
#include <boost/json/storage_ptr.hpp>
#include <boost/json/value.hpp>
#include <cmath>
#include <concepts>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "molt/codec/base64.hpp"
#include "molt/codec/decode_error.hpp"
#include "molt/codec/number_format.hpp"
#include "molt/codec/rules.hpp"
#include "molt/codec/traits.hpp"

namespace molt::codec {

// ---- writing ----------------------------------------------------------------------------

// `text` as a JSON string. Text that is not UTF-8 (a request path, a header, a message that
// quotes input) has each ill-formed sequence replaced by U+FFFD: the JSON stays valid
// whatever a handler puts in it.
void write_json_string(std::string& out, std::string_view text);
// For loops that size their room once: the most bytes a string of `size` bytes can take
// quoted (every byte escaped as \u00XX), and the writer that fills room at `at` and returns
// where it ended.
constexpr std::size_t json_string_room(std::size_t size) {
  return 2 + 6 * size;
}
char* write_json_string(char* at, std::string_view text);
void write_json_value(std::string& out, const boost::json::value& value);

template <class T>
void write_json(std::string& out, const T& value) {
  if constexpr (std::is_same_v<T, bool>) {
    out += value ? "true" : "false";
  } else if constexpr (traits::is_integer_v<T>) {
    if constexpr (std::is_signed_v<T>)
      append_integer(out, static_cast<std::int64_t>(value));
    else
      append_integer(out, static_cast<std::uint64_t>(value));
  } else if constexpr (std::is_floating_point_v<T>) {
    append_json_double(out, static_cast<double>(value));
  } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
    write_json_string(out, value);
  } else if constexpr (std::is_same_v<T, Bytes>) {
    out += '"';
    append_base64(out, value.data);
    out += '"';
  } else if constexpr (std::is_same_v<T, boost::json::value>) {
    write_json_value(out, value);
  } else if constexpr (traits::is_optional<T>::value) {
    if (value)
      write_json(out, *value);
    else
      out += "null";
  } else if constexpr (traits::is_vector<T>::value) {
    out += '[';
    bool first = true;
    for (const auto& v : value) {
      if (!first) out += ',';
      first = false;
      write_json(out, v);
    }
    out += ']';
  } else if constexpr (traits::is_string_map<T>::value) {
    out += '{';
    bool first = true;
    for (const auto& [k, v] : value) {
      if (!first) out += ',';
      first = false;
      write_json_string(out, k);
      out += ':';
      write_json(out, v);
    }
    out += '}';
  } else if constexpr (traits::is_described_enum_v<T>) {
    const char* name = boost::describe::enum_to_string(value, nullptr);
    if (name)
      write_json_string(out, name);
    else
      append_integer(out, static_cast<std::int64_t>(value));
  } else if constexpr (traits::is_described_struct_v<T>) {
    using Members = boost::describe::describe_members<T, boost::describe::mod_public |
                                                             boost::describe::mod_inherited>;
    // `{"name":` / `,"name":` for each member, escaped once per type rather than per value.
    static const auto prefixes = [] {
      std::array<std::string, boost::mp11::mp_size<Members>::value> text;
      std::size_t i = 0;
      boost::mp11::mp_for_each<Members>([&](auto member) {
        text[i] = i == 0 ? "{" : ",";
        write_json_string(text[i], member.name);
        text[i] += ':';
        ++i;
      });
      return text;
    }();
    if constexpr (boost::mp11::mp_size<Members>::value == 0) out += '{';
    std::size_t i = 0;
    boost::mp11::mp_for_each<Members>([&](auto member) {
      out.append(prefixes[i++]);
      write_json(out, value.*member.pointer);
    });
    out += '}';
  } else {
    static_assert(sizeof(T) == 0,
                  "molt::codec: this type has no JSON encoding: describe it "
                  "(BOOST_DESCRIBE_STRUCT), or put it in a boost::json::value (a json::object or "
                  "json::array converts to one)");
  }
}

template <class T>
std::string to_json(const T& value) {
  std::string out;
  write_json(out, value);
  return out;
}

// ---- reading ----------------------------------------------------------------------------

// What a JSON value is, in the words of a decode error.
std::string_view json_kind(const boost::json::value& value) noexcept;

// Parses `text` (a complete JSON document); a syntax error is an InvalidInput naming the offset.
// The tree's memory comes from `storage` (the default heap when not given).
boost::json::value parse_json(std::string_view text, boost::json::storage_ptr storage = {});

// An arena for the tree of one document of `text_bytes`, for decode_json: the json::value
// members of the decoded object share it, and it is given back when the last of them goes, not
// before (so only for objects that do not outlive their work, as a worker's payload). Small
// nodes take less memory than on the heap (no allocator header each) and less time.
boost::json::storage_ptr document_storage(std::size_t text_bytes);

// Decodes `v` into `out`. Given an rvalue, it consumes `v`: the JSON values that json::value
// members take are moved out of it instead of copied (a payload of rows is one tree, not two).
template <class V, class T>
requires std::same_as<std::remove_cvref_t<V>, boost::json::value>
void from_json_value(V&& v, T& out, const PathSegment& at) {
  namespace json = boost::json;
  constexpr bool consume = !std::is_lvalue_reference_v<V>;
  auto pass = [](auto& inside) -> decltype(auto) {
    if constexpr (consume)
      return std::move(inside);
    else
      return std::as_const(inside);
  };
  if constexpr (traits::is_optional<T>::value) {
    if (v.is_null()) {
      // std::optional<std::optional<U>>: null is "set to nothing", apart from an absent
      // field (a PATCH's "clear it" against "leave it").
      if constexpr (traits::is_optional<typename T::value_type>::value)
        out.emplace();
      else
        out.reset();
      return;
    }
    typename T::value_type inner{};
    from_json_value(std::forward<V>(v), inner, at);
    out.emplace(std::move(inner));  // constructed, so a json::value keeps its storage
  } else if constexpr (std::is_same_v<T, json::value>) {
    if constexpr (consume) {
      // Constructed in place, not assigned: a json::value moves only into a value of the
      // same storage, and would be copied into `out`'s (the heap's) otherwise.
      std::destroy_at(&out);
      std::construct_at(&out, std::move(v));
    } else {
      out = v;
    }
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_bool()) throw DecodeError(at, "boolean", json_kind(v));
    out = v.get_bool();
  } else if constexpr (traits::is_integer_v<T>) {
    if (v.is_int64()) {
      const std::int64_t i = v.get_int64();
      if constexpr (std::is_unsigned_v<T>) {
        if (i < 0 || static_cast<std::uint64_t>(i) > std::numeric_limits<T>::max())
          throw DecodeError(at, "integer in range", "out-of-range integer");
      } else {
        if (i < std::numeric_limits<T>::min() || i > std::numeric_limits<T>::max())
          throw DecodeError(at, "integer in range", "out-of-range integer");
      }
      out = static_cast<T>(i);
    } else if (v.is_uint64()) {
      const std::uint64_t u = v.get_uint64();
      if (u > static_cast<std::uint64_t>(std::numeric_limits<T>::max()))
        throw DecodeError(at, "integer in range", "out-of-range integer");
      out = static_cast<T>(u);
    } else {
      throw DecodeError(at, "integer", json_kind(v));
    }
  } else if constexpr (std::is_floating_point_v<T>) {
    if (v.is_double()) {
      // JSON has no infinities: one here is a number too large for a double (1e400).
      const double d = v.get_double();
      if (!std::isfinite(d) || (sizeof(T) < sizeof(double) &&
                                std::fabs(d) > static_cast<double>(std::numeric_limits<T>::max())))
        throw DecodeError(at, "number in range", "out-of-range number");
      out = static_cast<T>(d);
    } else if (v.is_int64())
      out = static_cast<T>(v.get_int64());
    else if (v.is_uint64())
      out = static_cast<T>(v.get_uint64());
    else
      throw DecodeError(at, "number", json_kind(v));
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) throw DecodeError(at, "string", json_kind(v));
    out.assign(v.get_string().data(), v.get_string().size());
  } else if constexpr (std::is_same_v<T, Bytes>) {
    if (!v.is_string()) throw DecodeError(at, "bytes (a base64 string)", json_kind(v));
    auto bytes = decode_base64(std::string_view(v.get_string()));
    if (!bytes) throw DecodeError(at, "bytes (a base64 string)", "a string that is not base64");
    out.data = std::move(*bytes);
  } else if constexpr (traits::is_vector<T>::value) {
    if (!v.is_array()) throw DecodeError(at, "array", json_kind(v));
    auto& arr = v.get_array();
    out.clear();
    out.resize(arr.size());
    detail::Problems problems;  // every element that does not fit, not the first alone
    for (std::size_t i = 0; i < arr.size(); ++i)
      problems.attempt([&] { from_json_value(pass(arr[i]), out[i], at.element(i)); });
    problems.check();
  } else if constexpr (traits::is_string_map<T>::value) {
    if (!v.is_object()) throw DecodeError(at, "object", json_kind(v));
    out.clear();
    detail::Problems problems;
    for (auto& kv : v.get_object()) {
      std::string key(kv.key());
      problems.attempt([&] { from_json_value(pass(kv.value()), out[key], at.field(kv.key())); });
    }
    problems.check();
  } else if constexpr (traits::is_described_enum_v<T>) {
    if (!v.is_string()) throw DecodeError(at, traits::enum_names_hint<T>(), json_kind(v));
    std::string_view name(v.get_string().data(), v.get_string().size());
    if (!traits::enum_from_name(name, out))
      throw DecodeError(at, traits::enum_names_hint<T>(), quoted_excerpt(name));
  } else if constexpr (traits::is_described_struct_v<T>) {
    static_assert(traits::defaults_name_members<T>(),
                  "MOLT_DEFAULTS lists a name that is not a described member of this struct");
    if (!v.is_object()) throw DecodeError(at, "object", json_kind(v));
    auto& obj = v.get_object();
    // Every member is decoded, and every one that does not fit is named; the rules are
    // checked on the members that decoded.
    detail::Problems problems;
    std::vector<std::string_view> failed;
    boost::mp11::mp_for_each<boost::describe::describe_members<
        T, boost::describe::mod_public | boost::describe::mod_inherited>>([&](auto member) {
      using M = std::remove_cvref_t<decltype(out.*member.pointer)>;
      const PathSegment here = at.field(member.name);
      const bool decoded = problems.attempt([&] {
        if (auto* field = obj.if_contains(member.name)) {
          from_json_value(pass(*field), out.*member.pointer, here);
        } else if constexpr (traits::keeps_default<T>(decltype(member)::name)) {
          detail::restore_default(out, member.pointer);
        } else if constexpr (traits::is_optional<M>::value) {
          (out.*member.pointer).reset();
        } else {
          throw DecodeError(here, traits::expected_name<M>(), "nothing (the field is required)");
        }
      });
      if (!decoded) failed.push_back(member.name);
    });
    check_rules(out, at, problems, [&](std::string_view name) {
      return std::find(failed.begin(), failed.end(), name) != failed.end();
    });
    problems.check();
  } else {
    static_assert(sizeof(T) == 0, "molt::codec: this type has no JSON decoding; describe it");
  }
}

// Errors name the field from `root`: "payload.user_id" for a worker's payload, "body.title"
// for an HTTP body. The json::value members of the result live in `storage` (the heap when not
// given; document_storage()).
template <class T>
T decode_json(std::string_view text, std::string_view root = kRootPath.key,
              boost::json::storage_ptr storage = {}) {
  T out{};
  from_json_value(parse_json(text, std::move(storage)), out, PathSegment{nullptr, root, 0});
  return out;
}

}  // namespace molt::codec
