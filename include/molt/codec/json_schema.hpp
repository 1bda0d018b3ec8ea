#pragma once
// JSON Schema (draft 2020-12, the dialect of OpenAPI 3.1) of the types the codecs take, from
// the same descriptions: what a client may send and what it will get back.
//
//   molt::codec::SchemaSet schemas("#/components/schemas/");
//   boost::json::value body = schemas.schema_of<NewItem>();
//       // {"$ref":"#/components/schemas/NewItem"}, and in schemas.definitions():
//       // {"NewItem":{"type":"object",...}}
//   boost::json::object alone = molt::codec::json_schema<NewItem>();  // with its own $defs
//
// A described struct or enum is a named definition, referred to by "$ref" (so a recursive
// type stays finite); everything else is written in place. A struct's "required" members are
// the ones its decoder requires: not a std::optional, not listed in MOLT_DEFAULTS (whose
// initial value is the member's "default"). Unknown members are ignored by the decoder, so the
// schema allows them. The schema is of the JSON form: a Bytes member is a base64 string there
// (MsgPack carries bin).

#include <boost/core/demangle.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeindex>
#include <utility>
#include <vector>

#include "molt/codec/json.hpp"
#include "molt/codec/rules.hpp"
#include "molt/codec/traits.hpp"

namespace molt::codec {

// The schema of a type the codecs do not know, from a function of its own namespace found by
// argument-dependent lookup (an exact tag, so a derived type does not take its base's):
//   boost::json::value molt_json_schema(molt::codec::SchemaTag<UploadedFile>);
template <class T>
struct SchemaTag {};

class SchemaSet {
 public:
  // `ref_prefix` is where the definitions will be: "#/$defs/" in a schema document of their
  // own, "#/components/schemas/" in OpenAPI.
  explicit SchemaSet(std::string ref_prefix = "#/$defs/") : ref_prefix_(std::move(ref_prefix)) {}

  // The schema of T; the definitions of the named types it uses are added to definitions().
  template <class T>
  boost::json::value schema_of();
  // The schema of the member of T that the Boost.Describe descriptor D describes, with T's
  // rules for it and its MOLT_DEFAULTS initial value as "default".
  template <class T, class D>
  boost::json::value member_schema();

  // Name -> schema of every described struct and enum met so far.
  const boost::json::object& definitions() const { return definitions_; }

 private:
  struct Claim {
    std::string name;
    bool fresh;  // first met now: its definition is to be written
  };
  // The definition name of the C++ type `type` (demangled `cxx_name`): its own name without
  // namespaces ("NewItem", "Page_Item" for Page<Item>), qualified when another type has it.
  Claim claim_name(std::type_index type, std::string_view cxx_name);
  boost::json::value ref_to(std::string_view name) const;

  template <class T>
  boost::json::value named();
  template <class T>
  boost::json::object struct_definition(std::string_view name);

  std::string ref_prefix_;
  boost::json::object definitions_;
  std::vector<std::pair<std::type_index, std::string>> names_;
};

namespace detail {
boost::json::value integer_schema(std::size_t bytes, bool is_signed);
boost::json::value number_schema(std::size_t bytes);
boost::json::value simple_schema(std::string_view type);
// {"anyOf":[inner,{"type":"null"}]}
boost::json::value nullable_schema(boost::json::value inner);

// The keywords of a member's rules (rules.hpp), on `schema`, the schema of a member of type M.
// A bound already there (a type's own range, another rule) is kept when it is the tighter.
template <class M, class B>
void add_check(boost::json::object& schema, const rules::Bound<B>& bound) {
  const char* keyword = bound.low ? (bound.exclusive ? "exclusiveMinimum" : "minimum")
                                  : (bound.exclusive ? "exclusiveMaximum" : "maximum");
  const boost::json::value value(bound.value);
  if (const boost::json::value* there = schema.if_contains(keyword)) {
    const double was = there->to_number<double>();
    const double now = value.to_number<double>();
    if (bound.low ? now <= was : now >= was) return;
  }
  schema[keyword] = value;
}
template <class M, class B, class C>
void add_check(boost::json::object& schema, const rules::Range<B, C>& range) {
  add_check<M>(schema, range.low);
  add_check<M>(schema, range.high);
}
template <class M>
void add_check(boost::json::object& schema, const rules::Length& length) {
  const bool text = std::is_same_v<M, std::string>;
  const bool array = traits::is_vector<M>::value;
  const char* min = text ? "minLength" : array ? "minItems" : "minProperties";
  const char* max = text ? "maxLength" : array ? "maxItems" : "maxProperties";
  if (length.min > 0 &&
      (!schema.contains(min) || schema.at(min).to_number<std::size_t>() < length.min))
    schema[min] = length.min;
  if (length.max &&
      (!schema.contains(max) || schema.at(max).to_number<std::size_t>() > *length.max))
    schema[max] = *length.max;
}
template <class M, class V, std::size_t N>
void add_check(boost::json::object& schema, const rules::OneOf<V, N>& one_of) {
  boost::json::array values;
  for (const V& value : one_of.values) {
    if constexpr (std::is_enum_v<V>)
      values.emplace_back(boost::describe::enum_to_string(value, ""));
    else
      values.emplace_back(value);
  }
  schema["enum"] = std::move(values);
}

// The keywords of `checks` on `schema`, the schema of a value of type M: an optional's on its
// value ({"anyOf":[value, null]}).
template <class M, class... Checks>
void add_checks(boost::json::object& schema, const std::tuple<Checks...>& checks);

template <class M>
void add_check(boost::json::object& schema, const rules::Pattern& pattern) {
  (void)pattern_found(pattern.expression, {});  // a broken one fails here
  if (!schema.contains("pattern")) {
    schema["pattern"] = pattern.expression;
    return;
  }
  // A member's second pattern: both must match, and "pattern" holds one.
  boost::json::value& all = schema["allOf"];
  if (!all.is_array()) all = boost::json::array();
  all.as_array().push_back(boost::json::object{{"pattern", pattern.expression}});
}

// An array's element type, a map's value type.
template <class M, bool = traits::is_vector<M>::value>
struct element_of {
  using type = typename M::value_type;
};
template <class M>
struct element_of<M, false> {
  using type = typename M::mapped_type;
};

// each(...)'s checks on the schema of the elements (an array's items, a map's values).
template <class M, class... Checks>
void add_check(boost::json::object& schema, const rules::Each<Checks...>& each) {
  static_assert(traits::is_vector<M>::value || traits::is_string_map<M>::value,
                "each(...): for arrays and maps");
  add_checks<typename element_of<M>::type>(
      schema.at(traits::is_vector<M>::value ? "items" : "additionalProperties").as_object(),
      each.checks);
}

template <class M, class... Checks>
void add_checks(boost::json::object& schema, const std::tuple<Checks...>& checks) {
  boost::json::object* target = &schema;
  if constexpr (traits::is_optional<M>::value)
    target = &schema.at("anyOf").as_array().at(0).as_object();
  using Value = typename traits::without_optional<M>::type;
  std::apply([&](const auto&... check) { (add_check<Value>(*target, check), ...); }, checks);
}

template <class T, class M, class P>
void add_rules(boost::json::value& schema, P pointer) {
  // A described enum is a $ref: one_of narrows it in place ({"$ref":..., "enum":[...]}).
  detail::for_each_rule<T>([&](const auto& rule) {
    if constexpr (std::is_same_v<decltype(rule.member), P>)
      if (rule.member == pointer) add_checks<M>(schema.as_object(), rule.checks);
  });
}

}  // namespace detail

template <class T>
boost::json::value SchemaSet::schema_of() {
  namespace json = boost::json;
  if constexpr (requires { molt_json_schema(SchemaTag<T>{}); }) {
    return molt_json_schema(SchemaTag<T>{});
  } else if constexpr (std::is_same_v<T, bool>) {
    return detail::simple_schema("boolean");
  } else if constexpr (traits::is_integer_v<T>) {
    return detail::integer_schema(sizeof(T), std::is_signed_v<T>);
  } else if constexpr (std::is_floating_point_v<T>) {
    return detail::number_schema(sizeof(T));
  } else if constexpr (std::is_same_v<T, std::string>) {
    return detail::simple_schema("string");
  } else if constexpr (std::is_same_v<T, Bytes>) {
    json::value schema = detail::simple_schema("string");
    schema.as_object()["contentEncoding"] = "base64";
    return schema;
  } else if constexpr (std::is_same_v<T, json::value>) {
    return json::object();  // any JSON
  } else if constexpr (traits::is_optional<T>::value) {
    using Inner = typename T::value_type;
    // optional<optional<U>> tells null from absent; both are "U or null" to a schema.
    if constexpr (traits::is_optional<Inner>::value)
      return schema_of<Inner>();
    else
      return detail::nullable_schema(schema_of<Inner>());
  } else if constexpr (traits::is_vector<T>::value) {
    return json::object{{"type", "array"}, {"items", schema_of<typename T::value_type>()}};
  } else if constexpr (traits::is_string_map<T>::value) {
    return json::object{{"type", "object"},
                        {"additionalProperties", schema_of<typename T::mapped_type>()}};
  } else if constexpr (traits::is_described_enum_v<T> || traits::is_described_struct_v<T>) {
    return named<T>();
  } else {
    static_assert(sizeof(T) == 0, "molt::codec: this type has no JSON schema; describe it");
  }
}

template <class T>
boost::json::value SchemaSet::named() {
  namespace json = boost::json;
  Claim claim = claim_name(std::type_index(typeid(T)), boost::core::demangle(typeid(T).name()));
  if (claim.fresh) {
    json::object definition;
    if constexpr (traits::is_described_enum_v<T>) {
      json::array names;
      boost::mp11::mp_for_each<boost::describe::describe_enumerators<T>>(
          [&](auto e) { names.emplace_back(e.name); });
      definition = {{"title", claim.name}, {"type", "string"}, {"enum", std::move(names)}};
    } else {
      definition = struct_definition<T>(claim.name);
    }
    definitions_[claim.name] = std::move(definition);
  }
  return ref_to(claim.name);
}

template <class T>
boost::json::object SchemaSet::struct_definition(std::string_view name) {
  namespace json = boost::json;
  json::object properties;
  json::array required;
  boost::mp11::mp_for_each<boost::describe::describe_members<
      T, boost::describe::mod_public | boost::describe::mod_inherited>>([&](auto member) {
    using M = std::remove_cvref_t<decltype(std::declval<T&>().*member.pointer)>;
    if constexpr (!traits::keeps_default<T>(decltype(member)::name) &&
                  !traits::is_optional<M>::value)
      required.emplace_back(member.name);
    properties[member.name] = member_schema<T, decltype(member)>();
  });
  json::object definition{
      {"title", name}, {"type", "object"}, {"properties", std::move(properties)}};
  if (!required.empty()) definition["required"] = std::move(required);
  return definition;
}

template <class T, class D>
boost::json::value SchemaSet::member_schema() {
  using M = std::remove_cvref_t<decltype(std::declval<T&>().*D::pointer)>;
  boost::json::value schema = schema_of<M>();
  if constexpr (traits::has_rules<T>()) detail::add_rules<T, M>(schema, D::pointer);
  if constexpr (traits::keeps_default<T>(D::name)) {
    static const T fresh{};
    schema.as_object()["default"] = parse_json(to_json(fresh.*D::pointer));
  }
  return schema;
}

// A schema document of its own for T: "$schema", T's schema, and "$defs" for its named types.
template <class T>
boost::json::object json_schema() {
  SchemaSet schemas;
  boost::json::object document{{"$schema", "https://json-schema.org/draft/2020-12/schema"}};
  boost::json::value schema = schemas.schema_of<T>();
  for (auto& [key, value] : schema.as_object()) document[key] = std::move(value);
  if (!schemas.definitions().empty()) document["$defs"] = schemas.definitions();
  return document;
}

}  // namespace molt::codec
