#include "molt/codec/json_schema.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cctype>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sample_types.hpp"

// A type that contains itself, and two types of one name in different namespaces.
namespace molt::codec::sample_tree {
struct Node {
  std::string label;
  std::vector<Node> children;
};
BOOST_DESCRIBE_STRUCT(Node, (), (label, children))
struct Item {
  std::int64_t id = 0;
};
BOOST_DESCRIBE_STRUCT(Item, (), (id))
template <class T>
struct Page {
  std::vector<T> items;
  std::optional<std::string> next_cursor;
};
BOOST_DESCRIBE_STRUCT(Page<sample::Item>, (), (items, next_cursor))
struct BothItems {
  sample::Item first;
  Item second;
};
BOOST_DESCRIBE_STRUCT(BothItems, (), (first, second))
}  // namespace molt::codec::sample_tree

namespace molt::codec {
namespace {

boost::json::value parse(std::string_view text) {
  return boost::json::parse(text);
}

template <class T>
std::string schema_text() {
  SchemaSet schemas;
  return boost::json::serialize(schemas.schema_of<T>());
}

TEST(JsonSchema, ScalarsAreWrittenInPlace) {
  EXPECT_EQ(schema_text<bool>(), R"({"type":"boolean"})");
  EXPECT_EQ(schema_text<std::int64_t>(), R"({"type":"integer","format":"int64"})");
  EXPECT_EQ(schema_text<std::int32_t>(),
            R"({"type":"integer","format":"int32","minimum":-2147483648,"maximum":2147483647})");
  EXPECT_EQ(schema_text<std::int16_t>(), R"({"type":"integer","minimum":-32768,"maximum":32767})");
  EXPECT_EQ(schema_text<std::uint8_t>(), R"({"type":"integer","minimum":0,"maximum":255})");
  EXPECT_EQ(schema_text<std::uint64_t>(),
            R"({"type":"integer","minimum":0,"maximum":18446744073709551615})");
  EXPECT_EQ(schema_text<double>(), R"({"type":"number","format":"double"})");
  EXPECT_EQ(schema_text<float>(), R"({"type":"number","format":"float"})");
  EXPECT_EQ(schema_text<std::string>(), R"({"type":"string"})");
  EXPECT_EQ(schema_text<Bytes>(), R"({"type":"string","contentEncoding":"base64"})");
  EXPECT_EQ(schema_text<boost::json::value>(), "{}");
}

TEST(JsonSchema, ContainersWrapTheirElements) {
  EXPECT_EQ(schema_text<std::vector<std::string>>(),
            R"({"type":"array","items":{"type":"string"}})");
  EXPECT_EQ((schema_text<std::map<std::string, double>>()),
            R"({"type":"object","additionalProperties":{"type":"number","format":"double"}})");
  EXPECT_EQ(schema_text<std::optional<bool>>(),
            R"({"anyOf":[{"type":"boolean"},{"type":"null"}]})");
  // null and absent are told apart by the decoder, but both are "or null" to a schema.
  EXPECT_EQ(schema_text<std::optional<std::optional<bool>>>(),
            R"({"anyOf":[{"type":"boolean"},{"type":"null"}]})");
}

TEST(JsonSchema, AStructIsANamedDefinitionWithWhatItsDecoderRequires) {
  SchemaSet schemas("#/components/schemas/");
  EXPECT_EQ(schemas.schema_of<sample::Item>(), parse(R"({"$ref":"#/components/schemas/Item"})"));
  EXPECT_EQ(schemas.definitions().at("Item"), parse(R"({
    "title": "Item", "type": "object",
    "properties": {
      "name": {"type": "string"},
      "score": {"type": "number", "format": "double"},
      "rank": {"anyOf": [{"type": "integer", "format": "int32", "minimum": -2147483648,
                          "maximum": 2147483647}, {"type": "null"}]}
    },
    "required": ["name", "score"]})"));
}

TEST(JsonSchema, DefaultedMembersAreOptionalAndShowTheirInitialValue) {
  SchemaSet schemas;
  schemas.schema_of<sample::Review>();
  const auto& review = schemas.definitions().at("Review").as_object();
  EXPECT_EQ(review.at("required"), parse(R"(["text"])"));
  EXPECT_EQ(review.at("properties").at("stars"),
            parse(R"({"type":"integer","format":"int32","minimum":-2147483648,
                      "maximum":2147483647,"default":3})"));
  EXPECT_EQ(review.at("properties").at("tags"),
            parse(R"({"type":"array","items":{"type":"string"},"default":["new"]})"));
  EXPECT_EQ(review.at("properties").at("votes").at("default"), parse("0"));
}

TEST(JsonSchema, EnumsAreTheirNames) {
  SchemaSet schemas;
  EXPECT_EQ(schemas.schema_of<sample::Color>(), parse(R"({"$ref":"#/$defs/Color"})"));
  EXPECT_EQ(schemas.definitions().at("Color"),
            parse(R"({"title":"Color","type":"string","enum":["red","green","blue"]})"));
}

TEST(JsonSchema, NestedTypesAreDefinedOnceEach) {
  SchemaSet schemas;
  schemas.schema_of<sample::Nested>();
  schemas.schema_of<std::vector<sample::Nested>>();
  const auto& defs = schemas.definitions();
  EXPECT_EQ(defs.size(), 4u);  // Nested, Payload, Item, Color
  const auto& nested = defs.at("Nested").at("properties");
  EXPECT_EQ(nested.at("by_name"),
            parse(R"({"type":"object","additionalProperties":{"$ref":"#/$defs/Item"}})"));
  EXPECT_EQ(nested.at("best"), parse(R"({"anyOf":[{"$ref":"#/$defs/Item"},{"type":"null"}]})"));
  EXPECT_EQ(defs.at("Payload").at("properties").at("color"), parse(R"({"$ref":"#/$defs/Color"})"));
}

TEST(JsonSchema, InheritedMembersAreThere) {
  SchemaSet schemas;
  schemas.schema_of<sample::Derived>();
  const auto& derived = schemas.definitions().at("Derived").as_object();
  EXPECT_TRUE(derived.at("properties").as_object().contains("id"));
  EXPECT_EQ(derived.at("required"), parse(R"(["id","version"])"));
}

TEST(JsonSchema, ARecursiveTypeRefersToItself) {
  SchemaSet schemas;
  schemas.schema_of<sample_tree::Node>();
  EXPECT_EQ(schemas.definitions().at("Node").at("properties").at("children"),
            parse(R"({"type":"array","items":{"$ref":"#/$defs/Node"}})"));
}

TEST(JsonSchema, NamesAreUniqueAndFitOpenApi) {
  SchemaSet schemas;
  schemas.schema_of<sample_tree::BothItems>();
  schemas.schema_of<sample_tree::Page<sample::Item>>();
  const auto& defs = schemas.definitions();
  EXPECT_EQ(defs.at("BothItems").at("properties").at("first"), parse(R"({"$ref":"#/$defs/Item"})"));
  EXPECT_EQ(defs.at("BothItems").at("properties").at("second"),
            parse(R"({"$ref":"#/$defs/molt.codec.sample_tree.Item"})"));
  EXPECT_TRUE(defs.contains("Page_Item"));
  for (const auto& entry : defs)
    for (const char c : std::string_view(entry.key()))
      EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')
          << entry.key();
}

TEST(JsonSchema, ADocumentOfItsOwnCarriesItsDefinitions) {
  const boost::json::object document = json_schema<sample::Shelf>();
  EXPECT_EQ(document.at("$schema"), "https://json-schema.org/draft/2020-12/schema");
  EXPECT_EQ(document.at("$ref"), "#/$defs/Shelf");
  EXPECT_TRUE(document.at("$defs").as_object().contains("Review"));
  EXPECT_EQ(json_schema<std::vector<int>>().at("type"), "array");
  EXPECT_FALSE(json_schema<std::vector<int>>().contains("$defs"));
}

}  // namespace
}  // namespace molt::codec
