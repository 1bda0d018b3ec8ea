#include "molt/codec/rules.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <cmath>
#include <functional>
#include <string>

#include "molt/codec/json.hpp"
#include "molt/codec/json_schema.hpp"
#include "molt/codec/msgpack.hpp"
#include "sample_types.hpp"

namespace molt::codec {
namespace {

using sample::Listing;

Listing good_listing() {
  Listing listing;
  listing.user_id = 7;
  listing.title = "a lamp";
  listing.score = 10.5;
  listing.tags = {"a", "b", "c"};
  listing.rank = 99;
  listing.labels = {{"k", "v"}};
  return listing;
}

// The message of the error decoding `listing` gives, through JSON and through MsgPack: the
// two must agree. "" when both take it.
std::string decode_error(const Listing& listing) {
  std::string from_json, from_msgpack;
  try {
    EXPECT_EQ(decode_json<Listing>(to_json(listing)), listing);
  } catch (const DecodeError& e) {
    from_json = e.what();
  }
  try {
    EXPECT_EQ(decode_msgpack<Listing>(to_msgpack(listing)), listing);
  } catch (const DecodeError& e) {
    from_msgpack = e.what();
  }
  EXPECT_EQ(from_json, from_msgpack);
  return from_json;
}

Listing changed(const std::function<void(Listing&)>& change) {
  Listing listing = good_listing();
  change(listing);
  return listing;
}

TEST(Rules, AValueWithinEveryRuleDecodes) {
  EXPECT_EQ(decode_error(good_listing()), "");
  // The edges that are inside: inclusive bounds, an absent optional, empty containers.
  EXPECT_EQ(decode_error(changed([](Listing& l) {
              l.score = 0;
              l.rank.reset();
              l.tags.clear();
              l.labels.clear();
              l.title = std::string(20, 'x');
            })),
            "");
}

TEST(Rules, EachRuleNamesTheFieldAndWhatItTakes) {
  EXPECT_EQ(decode_error(changed([](Listing& l) { l.user_id = 0; })),
            "payload.user_id: expected an integer at least 1, got 0");
  EXPECT_EQ(decode_error(changed([](Listing& l) { l.title.clear(); })),
            "payload.title: expected text of 1 to 20 characters, got 0 characters");
  EXPECT_EQ(decode_error(changed([](Listing& l) { l.status = "pending"; })),
            "payload.status: expected one of \"open\", \"closed\", got \"pending\"");
  EXPECT_EQ(decode_error(changed([](Listing& l) { l.score = 10.75; })),
            "payload.score: expected a number from 0 to 10.5, got 10.75");
  EXPECT_EQ(decode_error(changed([](Listing& l) { l.score = -0.5; })),
            "payload.score: expected a number from 0 to 10.5, got -0.5");
  EXPECT_EQ(decode_error(changed([](Listing& l) { l.tags.push_back("d"); })),
            "payload.tags: expected an array of at most 3 elements, got 4 elements");
  EXPECT_EQ(decode_error(changed([](Listing& l) { l.rank = 0; })),
            "payload.rank: expected an integer more than 0, got 0");
  EXPECT_EQ(decode_error(changed([](Listing& l) { l.rank = 100; })),
            "payload.rank: expected an integer less than 100, got 100");
  EXPECT_EQ(decode_error(changed([](Listing& l) {
              l.labels = {{"a", ""}, {"b", ""}, {"c", ""}};
            })),
            "payload.labels: expected an object of at most 2 entries, got 3 entries");
}

TEST(Rules, NaNIsInNoRange) {
  // JSON cannot carry a NaN; MsgPack can.
  const Listing nan_score = changed([](Listing& l) { l.score = std::nan(""); });
  try {
    decode_msgpack<Listing>(to_msgpack(nan_score));
    FAIL() << "no error";
  } catch (const DecodeError& e) {
    EXPECT_EQ(e.path(), "payload.score");
  }
  const Listing infinite = changed([](Listing& l) { l.score = INFINITY; });
  EXPECT_THROW(decode_msgpack<Listing>(to_msgpack(infinite)), DecodeError);
}

TEST(Rules, TextIsCountedInCharactersNotBytes) {
  // 20 characters of two bytes each: 40 bytes, within a limit of 20 characters.
  std::string twenty;
  for (int i = 0; i < 20; ++i) twenty += "\xC3\xA9";
  EXPECT_EQ(decode_error(changed([&](Listing& l) { l.title = twenty; })), "");
  EXPECT_EQ(decode_error(changed([&](Listing& l) { l.title = twenty + "!"; })),
            "payload.title: expected text of 1 to 20 characters, got 21 characters");
}

TEST(Rules, AQuotedValueIsCutShort) {
  const std::string message =
      decode_error(changed([](Listing& l) { l.status = std::string(100'000, 'z'); }));
  EXPECT_LT(message.size(), 200u) << message;
  EXPECT_NE(message.find("zzz...\""), std::string::npos) << message;
}

TEST(Rules, NestedStructsAreCheckedWhereTheyAre) {
  const std::vector<Listing> listings{good_listing(), changed([](Listing& l) { l.user_id = -3; })};
  try {
    decode_json<std::vector<Listing>>(to_json(listings), "body");
    FAIL() << "no error";
  } catch (const DecodeError& e) {
    EXPECT_EQ(e.path(), "body[1].user_id");
    EXPECT_EQ(std::string(e.what()), "body[1].user_id: expected an integer at least 1, got -3");
  }
}

TEST(Rules, CheckRulesHoldsAValueBuiltInCode) {
  EXPECT_NO_THROW(check_rules(good_listing(), PathSegment{nullptr, "item", 0}));
  Listing bad = changed([](Listing& l) { l.status = "gone"; });
  EXPECT_THROW(check_rules(bad, PathSegment{nullptr, "item", 0}), DecodeError);
  // A type without rules has nothing to break.
  EXPECT_NO_THROW(check_rules(sample::Item{}, kRootPath));
}

TEST(Rules, TheSchemaShowsThem) {
  SchemaSet schemas;
  schemas.schema_of<Listing>();
  const auto& properties = schemas.definitions().at("Listing").at("properties");
  const auto parse = [](std::string_view text) { return boost::json::parse(text); };
  EXPECT_EQ(properties.at("user_id"), parse(R"({"type":"integer","format":"int64","minimum":1})"));
  EXPECT_EQ(properties.at("title"), parse(R"({"type":"string","minLength":1,"maxLength":20})"));
  EXPECT_EQ(properties.at("status"),
            parse(R"({"type":"string","enum":["open","closed"],"default":"open"})"));
  EXPECT_EQ(
      properties.at("score"),
      parse(R"({"type":"number","format":"double","minimum":0,"maximum":10.5,"default":0.0})"));
  EXPECT_EQ(properties.at("tags"),
            parse(R"({"type":"array","items":{"type":"string"},"maxItems":3,"default":[]})"));
  EXPECT_EQ(properties.at("rank"), parse(R"({"anyOf":[{"type":"integer","format":"int32",
      "exclusiveMinimum":0,"exclusiveMaximum":100},{"type":"null"}]})"));
  EXPECT_EQ(properties.at("labels").at("maxProperties"), 2);
  EXPECT_FALSE(properties.at("labels").as_object().contains("minProperties"));  // 0 says nothing
}

}  // namespace
}  // namespace molt::codec
