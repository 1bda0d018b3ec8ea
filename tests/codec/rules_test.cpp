#include "molt/codec/rules.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "molt/codec/json.hpp"
#include "molt/codec/json_schema.hpp"
#include "molt/codec/msgpack.hpp"
#include "sample_types.hpp"

// Rules and inheritance, numbers of every kind, enums: the cases a review found.
namespace rules_sample {
struct Base {
  int level = 1;
};
BOOST_DESCRIBE_STRUCT(Base, (), (level))
MOLT_RULES(Base, rule(&Base::level, between(1, 5)))
struct Plain : Base {
  std::string extra;
};
BOOST_DESCRIBE_STRUCT(Plain, (Base), (extra))
struct OwnRules : Base {
  std::string extra;
};
BOOST_DESCRIBE_STRUCT(OwnRules, (Base), (extra))
MOLT_RULES(OwnRules, rule(&OwnRules::extra, max_length(3)), rule(&OwnRules::level, at_most(2)))
struct Other {
  int other = 1;
};
BOOST_DESCRIBE_STRUCT(Other, (), (other))
MOLT_RULES(Other, rule(&Other::other, at_least(1)))
struct TwoBases : Base, Other {};
BOOST_DESCRIBE_STRUCT(TwoBases, (Base, Other), ())

enum class Shade { light, dark, auto_ };
BOOST_DESCRIBE_ENUM(Shade, light, dark, auto_)
struct Numbers {
  std::uint32_t code = 5;
  double step = 1;
  std::int8_t small = 0;
  float ratio = 0;
  int twice = 5;
  Shade shade = Shade::light;
};
BOOST_DESCRIBE_STRUCT(Numbers, (), (code, step, small, ratio, twice, shade))
MOLT_DEFAULTS(Numbers, code, step, small, ratio, twice, shade)
MOLT_RULES(Numbers, rule(&Numbers::code, one_of(-1, 5)), rule(&Numbers::step, one_of(1, 2.5)),
           rule(&Numbers::small, between(0, 1000)), rule(&Numbers::ratio, at_most(0.1)),
           rule(&Numbers::twice, at_least(5), at_least(1)),
           rule(&Numbers::shade, one_of(Shade::light, Shade::dark)))

struct Slugged {
  std::string slug = "a";
  std::optional<std::string> code;
  std::string phrase = "b";
};
BOOST_DESCRIBE_STRUCT(Slugged, (), (slug, code, phrase))
MOLT_DEFAULTS(Slugged, slug, code, phrase)
MOLT_RULES(Slugged, rule(&Slugged::slug, pattern("^[a-z0-9-]+$"), max_length(20)),
           rule(&Slugged::code, pattern(R"(^\d{3}$)")),
           rule(&Slugged::phrase, pattern("b+"), pattern("^[^x]")))
struct Tagged {
  std::vector<std::string> tags;
  std::map<std::string, int> scores;
  std::optional<std::vector<std::optional<std::string>>> notes;
  std::vector<std::vector<int>> grid;
};
BOOST_DESCRIBE_STRUCT(Tagged, (), (tags, scores, notes, grid))
MOLT_DEFAULTS(Tagged, tags, scores, notes, grid)
MOLT_RULES(Tagged, rule(&Tagged::tags, max_length(3), each(length(1, 5), pattern("^[a-z]+$"))),
           rule(&Tagged::scores, each(between(0, 10))), rule(&Tagged::notes, each(max_length(4))),
           rule(&Tagged::grid, each(max_length(2), each(at_least(0)))))
struct Hopeless {
  std::string text;
};
BOOST_DESCRIBE_STRUCT(Hopeless, (), (text))
MOLT_RULES(Hopeless, rule(&Hopeless::text, pattern("^(a+)+$")))
struct Broken {
  std::string text;
};
BOOST_DESCRIBE_STRUCT(Broken, (), (text))
MOLT_RULES(Broken, rule(&Broken::text, pattern("([a-z]")))
}  // namespace rules_sample

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

TEST(Rules, ADerivedStructKeepsItsBasesRulesAndAddsItsOwn) {
  using namespace rules_sample;
  EXPECT_THROW(decode_json<Plain>(R"({"level":9,"extra":""})"), DecodeError);
  EXPECT_THROW(decode_json<OwnRules>(R"({"level":9,"extra":"ab"})"), DecodeError);  // Base's
  EXPECT_THROW(decode_json<OwnRules>(R"({"level":3,"extra":"ab"})"), DecodeError);  // its own
  EXPECT_THROW(decode_json<OwnRules>(R"({"level":0,"extra":"ab"})"), DecodeError);  // Base's
  EXPECT_THROW(decode_json<OwnRules>(R"({"level":2,"extra":"abcd"})"), DecodeError);
  EXPECT_NO_THROW(decode_json<OwnRules>(R"({"level":2,"extra":"abc"})"));
  EXPECT_THROW(decode_msgpack<TwoBases>(to_msgpack(TwoBases{{1}, {0}})), DecodeError);
  EXPECT_THROW(decode_json<TwoBases>(R"({"level":0,"other":1})"), DecodeError);
  SchemaSet schemas;
  schemas.schema_of<OwnRules>();
  const auto& level = schemas.definitions().at("OwnRules").at("properties").at("level");
  EXPECT_EQ(level.at("minimum"), 1);
  EXPECT_EQ(level.at("maximum"), 2);
}

TEST(Rules, NumbersCompareByValueNeverConverted) {
  using rules_sample::Numbers;
  // A uint32 is never -1: one_of(-1, 5) takes 5 only (it took 4294967295).
  EXPECT_THROW(decode_json<Numbers>(R"({"code":4294967295})"), DecodeError);
  // one_of(1, 2.5) is of doubles: 2.5 is there and 2 is not (2.5 was cut to 2).
  EXPECT_NO_THROW(decode_json<Numbers>(R"({"step":2.5})"));
  EXPECT_THROW(decode_json<Numbers>(R"({"step":2})"), DecodeError);
  // A float holding 0.1 is at most 0.1.
  EXPECT_NO_THROW(decode_json<Numbers>(R"({"ratio":0.1})"));
  EXPECT_NO_THROW(decode_msgpack<Numbers>(to_msgpack(Numbers{.ratio = 0.1f})));
  EXPECT_THROW(decode_json<Numbers>(R"({"ratio":0.2})"), DecodeError);
  EXPECT_THROW(decode_json<Numbers>(R"({"twice":4})"), DecodeError);
  try {
    decode_json<Numbers>(R"({"shade":"auto_"})");
    FAIL() << "no error";
  } catch (const DecodeError& e) {
    EXPECT_EQ(std::string(e.what()),
              R"(payload.shade: expected one of "light", "dark", got "auto_")");
  }
}

TEST(Rules, TheSchemaKeepsTheTighterBound) {
  SchemaSet schemas;
  schemas.schema_of<rules_sample::Numbers>();
  const auto& properties = schemas.definitions().at("Numbers").at("properties");
  EXPECT_EQ(properties.at("small").at("minimum"), 0);
  EXPECT_EQ(properties.at("small").at("maximum"), 127);  // the type's, not the rule's 1000
  EXPECT_EQ(properties.at("twice").at("minimum"), 5);
  EXPECT_EQ(properties.at("code").at("enum"), boost::json::parse("[-1, 5]"));
  EXPECT_EQ(properties.at("step").at("enum"), boost::json::parse("[1.0, 2.5]"));
  EXPECT_EQ(
      properties.at("shade"),
      boost::json::parse(R"({"$ref":"#/$defs/Shade","enum":["light","dark"],"default":"light"})"));
}

TEST(Rules, NumbersTooLargeForTheirTypeAreRefused) {
  EXPECT_THROW(decode_json<double>("1e400"), DecodeError);
  EXPECT_THROW(decode_json<double>("-1e400"), DecodeError);
  EXPECT_THROW(decode_json<float>("1e39"), DecodeError);
  EXPECT_EQ(decode_json<float>("3e38"), 3e38f);
  EXPECT_THROW(decode_msgpack<float>(to_msgpack(1e39)), DecodeError);
  EXPECT_TRUE(std::isinf(decode_msgpack<float>(to_msgpack(INFINITY))));  // carried as it is
}

TEST(Rules, MessagesQuoteNoMoreThanAFewDozenBytesOfInput) {
  const std::string key(100'000, 'k');
  try {
    decode_json<std::map<std::string, Listing>>(R"({")" + key + R"(":{"user_id":0,"title":"x"}})");
    FAIL() << "no error";
  } catch (const DecodeError& e) {
    EXPECT_LT(std::string(e.what()).size(), 200u);
  }
  try {
    decode_json<sample::Color>("\"" + std::string(100'000, 'r') + "\"");
    FAIL() << "no error";
  } catch (const DecodeError& e) {
    EXPECT_LT(std::string(e.what()).size(), 200u);
  }
}

// The message decoding `json` as a Slugged gives, through JSON and through MsgPack (the same
// value re-encoded): "" when both take it.
std::string slug_error(std::string_view json) {
  using rules_sample::Slugged;
  const auto value = boost::json::parse(json);
  std::string from_json, from_msgpack;
  try {
    (void)decode_json<Slugged>(json);
  } catch (const DecodeError& e) {
    from_json = e.what();
  }
  try {
    (void)decode_msgpack<Slugged>(to_msgpack(value));
  } catch (const DecodeError& e) {
    from_msgpack = e.what();
  }
  EXPECT_EQ(from_json, from_msgpack);
  return from_json;
}

TEST(Rules, APatternMustMatchTheText) {
  EXPECT_EQ(slug_error(R"({"slug":"my-post-2","code":"123","phrase":"abba"})"), "");
  EXPECT_EQ(slug_error(R"({"slug":"My Post"})"),
            "payload.slug: expected text matching ^[a-z0-9-]+$, got \"My Post\"");
  EXPECT_EQ(slug_error(R"({"code":"1234"})"),
            "payload.code: expected text matching ^\\d{3}$, got \"1234\"");
  EXPECT_EQ(slug_error(R"({"code":null})"), "");  // an optional's rule is for its value
  // Unanchored, it is found anywhere, as JSON Schema's and Pydantic's: "b+" in "abba".
  EXPECT_EQ(slug_error(R"({"phrase":"cbc"})"), "");
  EXPECT_EQ(slug_error(R"({"phrase":"cac"})"),
            "payload.phrase: expected text matching b+, got \"cac\"");
  EXPECT_EQ(slug_error(R"({"phrase":"xb"})"),
            "payload.phrase: expected text matching ^[^x], got \"xb\"");  // both must
}

// `^` and `$` are the text's ends, as in ECMAScript and Pydantic: Boost's Perl default (and
// Python's `$` before a final newline) would let a line break smuggle anything past them.
TEST(Rules, APatternsAnchorsAreTheTextsEndsNotALines) {
  EXPECT_NE(slug_error(R"({"slug":"ok\nDROP TABLE"})"), "");
  EXPECT_NE(slug_error(R"({"slug":"ok\n"})"), "");
  EXPECT_NE(slug_error(R"({"code":"123\n"})"), "");
  EXPECT_NE(slug_error(R"({"code":"\n123"})"), "");
  EXPECT_EQ(slug_error(R"({"phrase":"a\nb"})"), "");  // unanchored still finds it
}

// What makes a backtracking matcher run for ever (`^(a+)+$` on a's and a '!': 2^n paths) is
// a linear scan for RE2. A megabyte would take a backtracking matcher years.
TEST(Rules, APathologicalExpressionStillMatchesInLinearTime) {
  const std::string text = std::string(1 << 20, 'a') + "!";
  EXPECT_THROW((void)decode_json<rules_sample::Hopeless>(R"({"text":")" + text + R"("})"),
               DecodeError);
  EXPECT_NO_THROW((void)decode_json<rules_sample::Hopeless>(R"({"text":"aaaa"})"));
}

// Characters, not bytes: "^.{2}$" takes two characters of any width, as Pydantic counts.
TEST(Rules, APatternReadsCharacters) {
  EXPECT_TRUE(detail::pattern_found("^.{2}$", "\xc3\xa9\xe2\x82\xac"));  // é€
  EXPECT_FALSE(detail::pattern_found("^.{2}$", "ab\xc3\xa9"));
}

TEST(Rules, AnExpressionThatIsNoRegularExpressionSaysSo) {
  try {
    (void)decode_json<rules_sample::Broken>(R"({"text":"a"})");
    FAIL() << "took it";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("pattern(\"([a-z]\"): not a regular expression RE2 takes"),
              std::string::npos)
        << e.what();
  }
  SchemaSet schemas;  // and so does writing its schema, as serve_openapi does at startup
  EXPECT_THROW(schemas.schema_of<rules_sample::Broken>(), std::invalid_argument);
}

TEST(Rules, TheSchemaShowsPatterns) {
  SchemaSet schemas;
  schemas.schema_of<rules_sample::Slugged>();
  const auto& properties = schemas.definitions().at("Slugged").at("properties");
  EXPECT_EQ(properties.at("slug"),
            boost::json::parse(
                R"({"type":"string","pattern":"^[a-z0-9-]+$","maxLength":20,"default":"a"})"));
  EXPECT_EQ(properties.at("code").at("anyOf").at(0).at("pattern"), "^\\d{3}$");
  EXPECT_EQ(properties.at("phrase").at("pattern"), "b+");
  EXPECT_EQ(properties.at("phrase").at("allOf"), boost::json::parse(R"([{"pattern":"^[^x]"}])"));
}

// The message decoding `json` as a Tagged gives, through JSON and through MsgPack.
std::string tagged_error(std::string_view json) {
  const auto value = boost::json::parse(json);
  std::string from_json, from_msgpack;
  try {
    (void)decode_json<rules_sample::Tagged>(json);
  } catch (const DecodeError& e) {
    from_json = e.what();
  }
  try {
    (void)decode_msgpack<rules_sample::Tagged>(to_msgpack(value));
  } catch (const DecodeError& e) {
    from_msgpack = e.what();
  }
  EXPECT_EQ(from_json, from_msgpack);
  return from_json;
}

TEST(Rules, EachElementHoldsTheChecksAndAFailureNamesIt) {
  EXPECT_EQ(tagged_error(R"({"tags":["a","bc"],"scores":{"x":0,"y":10},"notes":["ab",null],
                             "grid":[[0,1],[]]})"),
            "");
  EXPECT_EQ(tagged_error(R"({"tags":["ok",""]})"),
            "payload.tags[1]: expected text of 1 to 5 characters, got 0 characters");
  EXPECT_EQ(tagged_error(R"({"tags":["ok","Nope"]})"),
            "payload.tags[1]: expected text matching ^[a-z]+$, got \"Nope\"");
  // The array's own check comes first, as written.
  EXPECT_EQ(tagged_error(R"({"tags":["a","b","c",""]})"),
            "payload.tags: expected an array of at most 3 elements, got 4 elements");
  EXPECT_EQ(tagged_error(R"({"scores":{"a":1,"b":11}})"),
            "payload.scores.b: expected an integer from 0 to 10, got 11");
  EXPECT_EQ(tagged_error(R"({"notes":[null,"abcde"]})"),
            "payload.notes[1]: expected text of at most 4 characters, got 5 characters");
  EXPECT_EQ(tagged_error(R"({"notes":null})"), "");
  EXPECT_EQ(tagged_error(R"({"grid":[[1],[2,-1]]})"),
            "payload.grid[1][1]: expected an integer at least 0, got -1");
  EXPECT_EQ(tagged_error(R"({"grid":[[1],[2,3,4]]})"),
            "payload.grid[1]: expected an array of at most 2 elements, got 3 elements");
  // check_rules holds a value built in code to them too.
  rules_sample::Tagged built;
  built.scores["z"] = -1;
  try {
    check_rules(built, "item");
    FAIL() << "took it";
  } catch (const DecodeError& e) {
    EXPECT_EQ(std::string(e.what()), "item.scores.z: expected an integer from 0 to 10, got -1");
  }
}

TEST(Rules, TheSchemaShowsEachElementsChecksOnItsItems) {
  SchemaSet schemas;
  schemas.schema_of<rules_sample::Tagged>();
  const auto& properties = schemas.definitions().at("Tagged").at("properties");
  const auto parse = [](std::string_view text) { return boost::json::parse(text); };
  EXPECT_EQ(properties.at("tags").at("items"),
            parse(R"({"type":"string","minLength":1,"maxLength":5,"pattern":"^[a-z]+$"})"));
  EXPECT_EQ(properties.at("tags").at("maxItems"), 3);
  EXPECT_EQ(properties.at("scores").at("additionalProperties").at("minimum"), 0);
  EXPECT_EQ(properties.at("scores").at("additionalProperties").at("maximum"), 10);
  EXPECT_EQ(properties.at("notes").at("anyOf").at(0).at("items").at("anyOf").at(0),
            parse(R"({"type":"string","maxLength":4})"));
  EXPECT_EQ(properties.at("grid").at("items").at("maxItems"), 2);
  EXPECT_EQ(properties.at("grid").at("items").at("items").at("minimum"), 0);
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
  // The rules' bounds are tighter than the type's: they replace them.
  EXPECT_EQ(properties.at("rank"), parse(R"({"anyOf":[{"type":"integer","format":"int32",
      "minimum":-2147483648,"maximum":2147483647,"exclusiveMinimum":0,"exclusiveMaximum":100},
      {"type":"null"}]})"));
  EXPECT_EQ(properties.at("labels").at("maxProperties"), 2);
  EXPECT_FALSE(properties.at("labels").as_object().contains("minProperties"));  // 0 says nothing
}

}  // namespace
}  // namespace molt::codec

namespace molt::codec {
namespace {

// The paths of every problem decoding `text` (JSON) gives, and the same for its MsgPack
// twin: the two decoders must agree.
std::vector<std::string> problems_of(std::string_view json_text) {
  std::vector<std::string> from_json, from_msgpack;
  auto paths = [](const DecodeError& e) {
    std::vector<std::string> out;
    if (const auto* several = dynamic_cast<const DecodeErrors*>(&e)) {
      for (const DecodeError& each : several->all()) out.push_back(each.path());
    } else {
      out.push_back(e.path());
    }
    return out;
  };
  try {
    decode_json<Listing>(json_text, "body");
  } catch (const DecodeError& e) {
    from_json = paths(e);
  }
  try {
    decode_msgpack<Listing>(to_msgpack(boost::json::parse(json_text)), "body");
  } catch (const DecodeError& e) {
    from_msgpack = paths(e);
  }
  EXPECT_EQ(from_json, from_msgpack) << json_text;
  return from_json;
}

using Paths = std::vector<std::string>;

TEST(GatheredProblems, EveryMemberThatDoesNotFitIsNamedInOrder) {
  EXPECT_EQ(problems_of(R"({"user_id":"seven","title":5,"score":"high"})"),
            (Paths{"body.user_id", "body.title", "body.score"}));
  // Missing required members, beside wrong ones.
  EXPECT_EQ(problems_of(R"({"score":1})"), (Paths{"body.user_id", "body.title"}));
  // A rule broken beside a type that does not fit; the member that did not decode is not also
  // checked against its rule (user_id's default 0 would break at_least(1)).
  EXPECT_EQ(problems_of(R"({"user_id":"x","title":"","status":"gone"})"),
            (Paths{"body.user_id", "body.title", "body.status"}));
  // Rules alone: each broken one.
  EXPECT_EQ(problems_of(R"({"user_id":0,"title":"t","score":11,"rank":0})"),
            (Paths{"body.user_id", "body.score", "body.rank"}));
  // Several: the message names each, for who reads only the message (a worker's answer, a
  // job's last error); path() is the first's.
  try {
    decode_json<Listing>(R"({"user_id":"seven","title":5})", "body");
    FAIL() << "decoded";
  } catch (const DecodeErrors& e) {
    EXPECT_EQ(e.message(),
              "body.user_id: expected integer, got string; body.title: expected string, got "
              "integer");
    EXPECT_EQ(e.path(), "body.user_id");
  }
  // One problem is a plain DecodeError, as before.
  try {
    decode_json<Listing>(R"({"user_id":0,"title":"t"})", "body");
    FAIL() << "decoded";
  } catch (const DecodeError& e) {
    EXPECT_EQ(dynamic_cast<const DecodeErrors*>(&e), nullptr);
    EXPECT_STREQ(e.what(), "body.user_id: expected an integer at least 1, got 0");
  }
}

TEST(GatheredProblems, ElementsAndMapValuesAreNamedEach) {
  EXPECT_EQ(problems_of(R"({"user_id":1,"title":"t","tags":["a",2,"c",false]})"),
            (Paths{"body.tags[1]", "body.tags[3]"}));
  EXPECT_EQ(problems_of(R"({"user_id":1,"title":"t","labels":{"a":1,"b":"x"}})"),
            (Paths{"body.labels.a"}));
  // The first problems of a huge input, not all of them: the error stays small.
  std::string many = R"({"user_id":1,"title":"t","tags":[)";
  for (int i = 0; i < 10'000; ++i) many += i ? ",0" : "0";
  many += "]}";
  const Paths first = problems_of(many);
  ASSERT_EQ(first.size(), detail::Problems::kMost);
  EXPECT_EQ(first.front(), "body.tags[0]");
  EXPECT_EQ(first.back(), "body.tags[49]");
}

// From a review: a MsgPack map kept every bad value until its end (a million throws for a
// map of a million); it stops at the cap, as the JSON decoder does.
TEST(GatheredProblems, AMsgPackMapOfManyBadValuesStopsAtTheCap) {
  boost::json::object labels;
  for (int i = 0; i < 20'000; ++i) labels["k" + std::to_string(i)] = i;
  boost::json::object body{{"user_id", 1}, {"title", "t"}, {"labels", labels}};
  try {
    decode_msgpack<Listing>(to_msgpack(boost::json::value(body)), "body");
    FAIL() << "decoded";
  } catch (const DecodeErrors& e) {
    EXPECT_EQ(e.all().size(), detail::Problems::kMost);
  }
}

TEST(GatheredProblems, CheckRulesOnAValueBuiltInCodeNamesEachBrokenRule) {
  Listing listing = good_listing();
  listing.user_id = 0;
  listing.score = 99;
  try {
    check_rules(listing, "listing");
    FAIL() << "no rule broken";
  } catch (const DecodeErrors& e) {
    ASSERT_EQ(e.all().size(), 2u);
    EXPECT_EQ(e.all()[0].path(), "listing.user_id");
    EXPECT_EQ(e.all()[1].path(), "listing.score");
    EXPECT_EQ(e.path(), "listing.user_id") << "the first, for who reads one";
  }
}

}  // namespace
}  // namespace molt::codec
