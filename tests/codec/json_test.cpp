#include "molt/codec/json.hpp"

#include <gtest/gtest.h>

#include <array>
#include <boost/json/serialize.hpp>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "molt/codec/utf8.hpp"
#include "sample_types.hpp"

namespace molt::codec {
namespace {

using sample::Color;
using sample::Derived;
using sample::Item;
using sample::Nested;
using sample::NotePatch;
using sample::Payload;
using sample::Review;
using sample::Shelf;
using Counts = std::map<std::string, std::int64_t>;
using IntMap = std::map<std::string, int>;

// The message of the InvalidInput that decoding `text` as T throws; "" when it does not throw.
template <class T>
std::string decode_error(std::string_view text) {
  try {
    decode_json<T>(text);
  } catch (const DecodeErrors& several) {
    return several.all().front().what();  // the first problem (rules_test.cpp checks them all)
  } catch (const core::InvalidInput& e) {
    return e.what();
  }
  return "";
}

// ---- writing ------------------------------------------------------------------------------

TEST(JsonWriteTest, StructMembersInDeclarationOrderWithNullForEmptyOptional) {
  EXPECT_EQ(to_json(Item{"a", 1.5, std::nullopt}), R"({"name":"a","score":1.5,"rank":null})");
  EXPECT_EQ(to_json(Item{"b", 2.0, 7}), R"({"name":"b","score":2.0,"rank":7})");
}

TEST(JsonWriteTest, WholePayload) {
  EXPECT_EQ(to_json(sample::make_payload()),
            R"({"items":[{"name":"apple","score":0.93,"rank":1},)"
            R"({"name":"pear","score":27.125,"rank":null},)"
            R"({"name":"fig","score":-1e-05,"rank":-3}],)"
            R"("counts":{"a":1,"b":-9223372036854775808,"c":9223372036854775807},)"
            R"("color":"green","note":"hello","extra":{"k":[1,"two",null,true,2.5]},"flag":true})");
}

// Found by a review: a path parameter or header echoed into a typed answer went out as the
// bytes it came as, invalid JSON (json.loads refused it) with a 200.
// JSON has no NaN or infinities; Python's bare tokens were what this wrote, and JSON.parse
// refuses them. Found by a review in the worker's offload_table.
TEST(JsonWriteTest, NonFiniteNumbersAreStringsAndTheRestAsPythonWritesThem) {
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(to_json(std::vector<double>{inf, -inf, std::nan(""), 1.5, 1e16}),
            R"(["Infinity","-Infinity","NaN",1.5,1e+16])");
  EXPECT_EQ(to_json(boost::json::value(inf)), R"("Infinity")");
}

TEST(JsonWriteTest, TextFromOutsideStaysValidJson) {
  std::string out;
  molt::codec::write_json_string(out, "a\xff\"b");
  EXPECT_EQ(out, "\"a\xef\xbf\xbd\\\"b\"");
  out.clear();
  molt::codec::write_json_string(out, "caf\xc3\xa9");
  EXPECT_EQ(out, "\"caf\xc3\xa9\"");
  out.clear();
  molt::codec::write_json_string(out, "user \xc0\xaf and a cut \xe2\x82");
  EXPECT_EQ(out, "\"user \xef\xbf\xbd\xef\xbf\xbd and a cut \xef\xbf\xbd\xef\xbf\xbd\"");
  EXPECT_TRUE(molt::codec::is_valid_utf8(out));
}

TEST(JsonWriteTest, Scalars) {
  EXPECT_EQ(to_json(true), "true");
  EXPECT_EQ(to_json(false), "false");
  EXPECT_EQ(to_json(std::int8_t{-128}), "-128");
  EXPECT_EQ(to_json(std::uint16_t{65535}), "65535");
  EXPECT_EQ(to_json(std::numeric_limits<std::uint64_t>::max()), "18446744073709551615");
  EXPECT_EQ(to_json(std::numeric_limits<std::int64_t>::min()), "-9223372036854775808");
  EXPECT_EQ(to_json(27.125), "27.125");
  EXPECT_EQ(to_json(1e16), "1e+16");
  EXPECT_EQ(to_json(0.5f), "0.5");
  EXPECT_EQ(to_json(std::string("x")), R"("x")");
  EXPECT_EQ(to_json(std::optional<int>{}), "null");
  EXPECT_EQ(to_json(std::vector<int>{}), "[]");
  EXPECT_EQ(to_json(IntMap{}), "{}");
  EXPECT_EQ(to_json(std::vector<std::vector<int>>{{1, 2}, {}, {3}}), "[[1,2],[],[3]]");
}

TEST(JsonWriteTest, EnumsAsNamesAndUndescribedValuesAsNumbers) {
  EXPECT_EQ(to_json(Color::blue), R"("blue")");
  EXPECT_EQ(to_json(static_cast<Color>(7)), "7");
}

TEST(JsonWriteTest, InheritedMembersComeFirst) {
  Derived d;
  d.id = "x1";
  d.version = 3;
  EXPECT_EQ(to_json(d), R"({"id":"x1","version":3})");
}

TEST(JsonWriteTest, JsonValueNumbersUsePythonNotation) {
  const boost::json::value v = parse_json(R"([27.125, 1.0, 1e-5, 1e16, 0.1, -0.0, 12, -3])");
  std::string out;
  write_json_value(out, v);
  EXPECT_EQ(out, "[27.125,1.0,1e-05,1e+16,0.1,-0.0,12,-3]");
}

TEST(JsonWriteTest, JsonValueOfEveryKind) {
  const boost::json::value v =
      parse_json(R"({"n":null,"t":true,"f":false,"u":18446744073709551615,"s":"a\"b","a":[{}]})");
  std::string out;
  write_json_value(out, v);
  EXPECT_EQ(out, R"({"n":null,"t":true,"f":false,"u":18446744073709551615,"s":"a\"b","a":[{}]})");
}

TEST(JsonStringTest, EscapesQuotesBackslashesAndControlCharacters) {
  std::string out;
  write_json_string(out, "say \"hi\" \\ bye");
  EXPECT_EQ(out, R"("say \"hi\" \\ bye")");

  out.clear();
  write_json_string(out, "a\nb\rc\td\be\ff");
  EXPECT_EQ(out, R"("a\nb\rc\td\be\ff")");
}

TEST(JsonStringTest, EveryControlCharacterAsPythonWritesIt) {
  // json.dumps(chr(c), ensure_ascii=False) for c < 0x20.
  const char* expected[32] = {
      R"("\u0000")", R"("\u0001")", R"("\u0002")", R"("\u0003")", R"("\u0004")", R"("\u0005")",
      R"("\u0006")", R"("\u0007")", R"("\b")",     R"("\t")",     R"("\n")",     R"("\u000b")",
      R"("\f")",     R"("\r")",     R"("\u000e")", R"("\u000f")", R"("\u0010")", R"("\u0011")",
      R"("\u0012")", R"("\u0013")", R"("\u0014")", R"("\u0015")", R"("\u0016")", R"("\u0017")",
      R"("\u0018")", R"("\u0019")", R"("\u001a")", R"("\u001b")", R"("\u001c")", R"("\u001d")",
      R"("\u001e")", R"("\u001f")"};
  for (int c = 0; c < 32; ++c) {
    std::string out;
    write_json_string(out, std::string(1, static_cast<char>(c)));
    EXPECT_EQ(out, expected[c]) << "char " << c;
  }
}

TEST(JsonStringTest, LeavesPrintableAsciiSlashDelAndUtf8Alone) {
  std::string out;
  write_json_string(out, "a/b~\x7f caf\xc3\xa9 \xe2\x82\xac");
  EXPECT_EQ(out, "\"a/b~\x7f caf\xc3\xa9 \xe2\x82\xac\"");
}

TEST(JsonStringTest, EscapesInsideLongerTextKeepTheRestIntact) {
  std::string out = "prefix";
  write_json_string(out, std::string("ab\0cd\x1f"
                                     "ef\"",
                                     9));
  EXPECT_EQ(out, R"(prefix"ab\u0000cd\u001fef\"")");
}

// A plain byte-at-a-time escaper, to hold the real one (whatever its speed tricks) against:
// ill-formed UTF-8 replaced first, then each byte escaped or kept.
std::string reference_quoted(std::string_view raw) {
  const std::string text = molt::codec::replace_invalid_utf8(raw);
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

TEST(JsonStringTest, PlainStringsOfEveryLengthAreQuotedAsIs) {
  const char* const sequences[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\x7f"};
  for (std::size_t n = 0; n < 200; ++n) {
    std::string text;
    for (std::size_t i = 0; i < n; ++i) {
      if (i % 2)
        text += static_cast<char>('a' + i % 26);
      else
        text += sequences[i / 2 % 4];
    }
    std::string out = "x";
    write_json_string(out, text);
    EXPECT_EQ(out, "x\"" + text + "\"") << "length " << n;
  }
}

TEST(JsonStringTest, OneSpecialByteAtEveryPositionOfEveryLength) {
  for (unsigned char special : {'"', '\\', '\n', '\x00', '\x1f', '\x7f', '\x80', '\xff', ' '}) {
    for (std::size_t n = 1; n < 80; ++n) {
      for (std::size_t at = 0; at < n; ++at) {
        std::string text(n, 'k');
        text[at] = static_cast<char>(special);
        std::string out;
        write_json_string(out, text);
        ASSERT_EQ(out, reference_quoted(text))
            << "byte " << int(special) << " at " << at << " of " << n;
      }
    }
  }
}

TEST(JsonStringTest, RandomBytesMatchTheReferenceEscaper) {
  std::mt19937 rng(1234);
  const std::string alphabet = "ab\"\\\n\t\x01\x1f\x20\x7f\x80\xc3\xa9\xff/";
  for (int round = 0; round < 3000; ++round) {
    std::string text(rng() % 150, '\0');
    for (auto& c : text)
      c = rng() % 4 ? alphabet[rng() % alphabet.size()] : static_cast<char>(rng());
    std::string out = "prefix";
    write_json_string(out, text);
    ASSERT_EQ(out, "prefix" + reference_quoted(text)) << "round " << round;
  }
}

TEST(JsonStringTest, WrittenStringsParseBackToTheSameBytes) {
  std::string all;
  for (int c = 1; c < 128; ++c) all += static_cast<char>(c);
  all += "\xc3\xa9\xf0\x9f\x98\x80";
  const boost::json::value v = parse_json(to_json(all));
  ASSERT_TRUE(v.is_string());
  EXPECT_EQ(std::string(v.get_string()), all);
}

// ---- reading ------------------------------------------------------------------------------

// Python writes the shortest text that reads back as the same double; reading it must give
// that double, in JSON as in MsgPack (Boost 1.81's own reading was one unit off for some).
TEST(JsonDecodeTest, NumbersReadAsTheNearestDouble) {
  EXPECT_EQ(decode_json<double>("0.9385958677423489"), 0.9385958677423489);
  EXPECT_EQ(decode_json<double>("9.999999999999999"), 9.999999999999999);
  EXPECT_EQ(decode_json<double>("10.0000000000000018"), 10.000000000000002);
  EXPECT_EQ(decode_json<double>("-2.5e-310"), -2.5e-310);  // subnormal
  EXPECT_EQ(parse_json("[1.5e3, -0.0]"), boost::json::parse("[1500.0, -0.0]"));
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  int off = 0;
  for (int i = 0; i < 20000; ++i) {
    const double value = i % 2 ? unit(rng) : unit(rng) * std::pow(10.0, (i % 40) - 20);
    std::array<char, 64> text{};
    const auto written = std::to_chars(text.data(), text.data() + text.size(), value);
    const std::string_view shortest(text.data(),
                                    static_cast<std::size_t>(written.ptr - text.data()));
    if (decode_json<double>(shortest) != value) ++off;
  }
  EXPECT_EQ(off, 0);
}

TEST(JsonDecodeTest, RoundTripsAWholePayload) {
  const Payload p = sample::make_payload();
  EXPECT_EQ(decode_json<Payload>(to_json(p)), p);
}

TEST(JsonDecodeTest, RoundTripsNestedStructsVectorsAndMaps) {
  Nested n;
  n.payload = sample::make_payload();
  n.grid = {{1, 2, 3}, {}, {-4}};
  n.by_name = {{"x", {"x", 1.0, 2}}, {"", {"", 0.0, std::nullopt}}};
  n.best = Item{"best", 99.5, std::nullopt};
  EXPECT_EQ(decode_json<Nested>(to_json(n)), n);
}

TEST(JsonDecodeTest, OptionalMemberMayBeMissingOrNull) {
  const Item missing = decode_json<Item>(R"({"name":"a","score":1})");
  EXPECT_FALSE(missing.rank.has_value());
  EXPECT_EQ(missing.score, 1.0);
  const Item null = decode_json<Item>(R"({"name":"a","score":1.5,"rank":null})");
  EXPECT_FALSE(null.rank.has_value());
  const Item present = decode_json<Item>(R"({"name":"a","score":1.5,"rank":-4})");
  EXPECT_EQ(present.rank, -4);
}

// From a FastAPI user's review: a PATCH could not tell "clear it" (null) from "leave it"
// (absent), as Pydantic's model_fields_set does.
TEST(JsonDecodeTest, AnOptionalOfAnOptionalTellsNullFromAbsent) {
  const NotePatch patch = decode_json<NotePatch>(R"({"description":null})");
  ASSERT_TRUE(patch.description.has_value());  // given: set it to nothing
  EXPECT_FALSE(patch.description->has_value());
  EXPECT_FALSE(patch.due.has_value());  // absent: leave it
  const NotePatch given = decode_json<NotePatch>(R"({"description":"two litres","due":7})");
  EXPECT_EQ(**given.description, "two litres");
  EXPECT_EQ(**given.due, 7);
  EXPECT_EQ(to_json(patch), R"({"description":null,"due":null})");
}

TEST(JsonDecodeTest, UnknownKeysAreIgnored) {
  const Item item =
      decode_json<Item>(R"({"zzz":[1,{"deep":true}],"name":"a","score":2,"other":null})");
  EXPECT_EQ(item, (Item{"a", 2.0, std::nullopt}));
}

TEST(JsonDecodeTest, LastDuplicateKeyWins) {
  EXPECT_EQ(decode_json<Item>(R"({"name":"first","score":1,"name":"second"})").name, "second");
}

TEST(JsonDecodeTest, JsonValueMemberTakesAnything) {
  Payload p = sample::make_payload();
  for (const char* extra : {"null", "1", "\"s\"", "[1,[2]]", R"({"a":{"b":[]}})", "2.5"}) {
    p.extra = parse_json(extra);
    const Payload back = decode_json<Payload>(to_json(p));
    EXPECT_EQ(back.extra, parse_json(extra)) << extra;
  }
}

TEST(JsonDecodeTest, InheritedMembersAreRead) {
  const Derived d = decode_json<Derived>(R"({"version":4,"id":"abc"})");
  EXPECT_EQ(d.id, "abc");
  EXPECT_EQ(d.version, 4u);
  EXPECT_EQ(decode_error<Derived>(R"({"version":4})"),
            "payload.id: expected string, got nothing (the field is required)");
}

TEST(JsonDecodeTest, ErrorNamesThePathIntoArraysOfStructs) {
  EXPECT_EQ(decode_error<Payload>(
                R"({"items":[{"name":"a","score":1},{"name":"b","score":"high"}],"counts":{},)"
                R"("color":"red","extra":null,"flag":false})"),
            "payload.items[1].score: expected number, got string");
}

TEST(JsonDecodeTest, ErrorNamesAMissingRequiredMember) {
  EXPECT_EQ(decode_error<Payload>(
                R"({"items":[{"score":1}],"counts":{},"color":"red","extra":null,"flag":false})"),
            "payload.items[0].name: expected string, got nothing (the field is required)");
  EXPECT_EQ(decode_error<Payload>(R"({"counts":{},"color":"red","extra":null,"flag":false})"),
            "payload.items: expected array, got nothing (the field is required)");
  EXPECT_EQ(decode_error<Payload>(R"({"items":[],"counts":{},"color":"red","flag":false})"),
            "payload.extra: expected value, got nothing (the field is required)");
  EXPECT_EQ(decode_error<Nested>("{}"),
            "payload.payload: expected object, got nothing (the field is required)");
}

TEST(JsonDecodeTest, MissingDefaultedMembersKeepTheirInitializers) {
  const Review minimal = decode_json<Review>(R"({"text":"ok"})");
  EXPECT_EQ(minimal, (Review{"ok", 3, {"new"}, 0}));
  EXPECT_EQ(decode_json<Review>(R"({"text":"ok","stars":5,"tags":[],"votes":null})"),
            (Review{"ok", 5, {}, std::nullopt}));
  // Listing a field lets it be missing, not null; an unlisted one stays required.
  EXPECT_EQ(decode_error<Review>(R"({"text":"ok","stars":null})"),
            "payload.stars: expected integer, got null");
  EXPECT_EQ(decode_error<Review>(R"({"stars":5})"),
            "payload.text: expected string, got nothing (the field is required)");
  // Each element starts from the initializers, not from the element before it.
  const Shelf shelf = decode_json<Shelf>(
      R"({"top":{"text":"a","stars":1,"tags":["x"]},"rest":[{"text":"b","stars":2},{"text":"c"}]})");
  EXPECT_EQ(shelf.top, (Review{"a", 1, {"x"}, 0}));
  ASSERT_EQ(shelf.rest.size(), 2u);
  EXPECT_EQ(shelf.rest[0], (Review{"b", 2, {"new"}, 0}));
  EXPECT_EQ(shelf.rest[1], (Review{"c", 3, {"new"}, 0}));
}

TEST(JsonDecodeTest, DefaultsMustNameDescribedMembers) {
  static_assert(traits::defaults_name_members<Review>());
  static_assert(traits::defaults_name_members<Item>());  // no list at all
  static_assert(!traits::defaults_name_members<sample::Misnamed>());
  static_assert(traits::keeps_default<Review>("votes") && !traits::keeps_default<Review>("text"));
  static_assert(!traits::keeps_default<Review>("star") && !traits::keeps_default<Item>("score"));
}

TEST(JsonDecodeTest, NullIsNotAValueForARequiredMember) {
  EXPECT_EQ(decode_error<Item>(R"({"name":null,"score":1})"),
            "payload.name: expected string, got null");
  EXPECT_EQ(
      decode_error<Payload>(R"({"items":[],"counts":{},"color":"red","extra":null,"flag":null})"),
      "payload.flag: expected boolean, got null");
}

TEST(JsonDecodeTest, OptionalOfTheWrongTypeIsAnError) {
  EXPECT_EQ(decode_error<Item>(R"({"name":"a","score":1,"rank":"first"})"),
            "payload.rank: expected integer, got string");
}

TEST(JsonDecodeTest, ErrorNamesMapKeysAndNestedIndexes) {
  EXPECT_EQ(decode_error<Payload>(R"({"items":[],"counts":{"a":1,"apples":"many"},)"
                                  R"("color":"red","extra":null,"flag":false})"),
            "payload.counts.apples: expected integer, got string");
  EXPECT_EQ(
      decode_error<Nested>(R"({"payload":{"items":[],"counts":{},"color":"red",)"
                           R"("extra":null,"flag":false},"grid":[[1],[2,3.5]],"by_name":{}})"),
      "payload.grid[1][1]: expected integer, got number");
  EXPECT_EQ(decode_error<Nested>(R"({"payload":{"items":[],"counts":{},"color":"red",)"
                                 R"("extra":null,"flag":false},"grid":[],)"
                                 R"("by_name":{"k":{"name":"k","score":[]}}})"),
            "payload.by_name.k.score: expected number, got array");
  EXPECT_EQ(decode_error<Nested>(R"({"payload":{"items":[],"counts":{},"color":"red",)"
                                 R"("extra":null,"flag":false},"grid":[],"by_name":{},)"
                                 R"("best":{"name":1,"score":1}})"),
            "payload.best.name: expected string, got integer");
}

TEST(JsonDecodeTest, AnEmptyMapKeyIsNotMistakenForAnIndex) {
  EXPECT_EQ(decode_error<IntMap>(R"({"":"x"})"), R"(payload."": expected integer, got string)");
  EXPECT_EQ(decode_error<std::vector<IntMap>>(R"([{"":1},{"":null}])"),
            R"(payload[1]."": expected integer, got null)");
}

TEST(JsonDecodeTest, WrongContainerKinds) {
  EXPECT_EQ(decode_error<Payload>("[]"), "payload: expected object, got array");
  EXPECT_EQ(decode_error<std::vector<int>>(R"({"a":1})"), "payload: expected array, got object");
  EXPECT_EQ(decode_error<IntMap>("[1]"), "payload: expected object, got array");
  EXPECT_EQ(decode_error<std::string>("true"), "payload: expected string, got boolean");
  EXPECT_EQ(decode_error<bool>("1"), "payload: expected boolean, got integer");
  EXPECT_EQ(decode_error<double>("\"1.5\""), "payload: expected number, got string");
}

TEST(JsonDecodeTest, EnumsByName) {
  EXPECT_EQ(decode_json<Color>(R"("blue")"), Color::blue);
  EXPECT_EQ(decode_error<Color>(R"("purple")"),
            R"(payload: expected one of "red", "green", "blue", got "purple")");
  EXPECT_EQ(decode_error<Color>("2"),
            R"(payload: expected one of "red", "green", "blue", got integer)");
  EXPECT_EQ(decode_error<Color>(R"("Blue")"),
            R"(payload: expected one of "red", "green", "blue", got "Blue")");
}

TEST(JsonDecodeTest, NumbersIntoFloatingPoint) {
  EXPECT_EQ(decode_json<double>("3"), 3.0);
  EXPECT_EQ(decode_json<double>("-3"), -3.0);
  EXPECT_EQ(decode_json<double>("18446744073709551615"), 18446744073709551615.0);
  EXPECT_EQ(decode_json<double>("2.5e-3"), 0.0025);
  EXPECT_EQ(decode_json<float>("0.5"), 0.5f);
}

TEST(JsonDecodeTest, IntegerRangesAreChecked) {
  EXPECT_EQ(decode_json<std::int8_t>("127"), 127);
  EXPECT_EQ(decode_json<std::int8_t>("-128"), -128);
  EXPECT_EQ(decode_error<std::int8_t>("128"),
            "payload: expected integer in range, got out-of-range integer");
  EXPECT_EQ(decode_error<std::int8_t>("-129"),
            "payload: expected integer in range, got out-of-range integer");
  EXPECT_EQ(decode_json<std::uint8_t>("255"), 255);
  EXPECT_NE(decode_error<std::uint8_t>("256"), "");
  EXPECT_EQ(decode_json<std::uint16_t>("65535"), 65535);
  EXPECT_EQ(decode_error<std::uint16_t>("65536"),
            "payload: expected integer in range, got out-of-range integer");
  EXPECT_NE(decode_error<std::uint16_t>("-1"), "");
  EXPECT_EQ(decode_json<std::int32_t>("-2147483648"), std::numeric_limits<std::int32_t>::min());
  EXPECT_NE(decode_error<std::int32_t>("2147483648"), "");
  EXPECT_EQ(decode_json<std::uint32_t>("4294967295"), 4294967295u);
  EXPECT_NE(decode_error<std::uint32_t>("4294967296"), "");
  EXPECT_EQ(decode_json<std::int64_t>("-9223372036854775808"),
            std::numeric_limits<std::int64_t>::min());
  EXPECT_NE(decode_error<std::int64_t>("9223372036854775808"), "");
  EXPECT_EQ(decode_json<std::uint64_t>("18446744073709551615"),
            std::numeric_limits<std::uint64_t>::max());
  EXPECT_NE(decode_error<std::uint64_t>("-1"), "");
}

TEST(JsonDecodeTest, IntegersRefuseFractionsBooleansAndStrings) {
  EXPECT_EQ(decode_error<int>("1.5"), "payload: expected integer, got number");
  EXPECT_EQ(decode_error<int>("1.0"), "payload: expected integer, got number");
  EXPECT_EQ(decode_error<int>("true"), "payload: expected integer, got boolean");
  EXPECT_EQ(decode_error<int>("\"1\""), "payload: expected integer, got string");
  EXPECT_EQ(decode_error<int>("null"), "payload: expected integer, got null");
}

TEST(JsonDecodeTest, DecodeErrorIsInvalidInputWithItsParts) {
  try {
    decode_json<Item>(R"({"name":"a","score":false})");
    FAIL() << "no throw";
  } catch (const DecodeError& e) {
    EXPECT_EQ(e.code(), core::StatusCode::InvalidInput);
    EXPECT_EQ(e.path(), "payload.score");
    EXPECT_EQ(e.expected(), "number");
    EXPECT_EQ(e.got(), "boolean");
  }
}

TEST(JsonDecodeTest, DecodingReplacesPreviousContainerContents) {
  std::vector<int> v{9, 9, 9, 9};
  from_json_value(parse_json("[1,2]"), v, kRootPath);
  EXPECT_EQ(v, (std::vector<int>{1, 2}));
  IntMap m{{"old", 1}};
  from_json_value(parse_json(R"({"new":2})"), m, kRootPath);
  EXPECT_EQ(m, (IntMap{{"new", 2}}));
}

// A decode that is handed the parsed tree moves JSON subtrees into json::value members; one
// that is lent the tree copies them and leaves it whole.
TEST(JsonDecodeTest, AConsumedTreeIsMovedIntoJsonValueMembers) {
  const auto parsed = [] {
    return parse_json(
        R"({"items":[],"counts":{},"color":"red","flag":true,"extra":{"rows":[{"a":1},{"a":2}]}})");
  };
  boost::json::value tree = parsed();
  const void* rows = tree.at("extra").at("rows").get_array().data();
  Payload moved;
  from_json_value(std::move(tree), moved, kRootPath);
  EXPECT_EQ(moved.extra.at("rows").get_array().data(), rows);

  const boost::json::value lent = parsed();
  Payload copied;
  from_json_value(lent, copied, kRootPath);
  EXPECT_NE(copied.extra.at("rows").get_array().data(),
            lent.at("extra").at("rows").get_array().data());
  EXPECT_EQ(copied.extra, lent.at("extra"));
  EXPECT_EQ(
      decode_json<Payload>(
          R"({"items":[],"counts":{},"color":"red","flag":true,"extra":{"rows":[{"a":1},{"a":2}]}})")
          .extra,
      lent.at("extra"));
}

struct HeldValues {
  boost::json::value one;
  std::vector<boost::json::value> many;
  std::optional<boost::json::value> maybe;
};
BOOST_DESCRIBE_STRUCT(HeldValues, (), (one, many, maybe))

// Decoded in an arena (a worker's payload), json::value members take the tree's own nodes and
// keep the arena alive, however they are held; without one they live on the heap.
TEST(JsonDecodeTest, JsonValueMembersKeepTheDocumentsArena) {
  constexpr std::string_view text =
      R"({"one":{"a":[1,2]},"many":[{"b":"x"},[3]],"maybe":{"c":null}})";
  std::optional<HeldValues> outer;  // constructed from the result: assigning would copy
  {
    const boost::json::storage_ptr arena = document_storage(text.size());
    outer.emplace(decode_json<HeldValues>(text, "payload", arena));
    const HeldValues& held = *outer;
    EXPECT_EQ(held.one.storage().get(), arena.get());
    ASSERT_EQ(held.many.size(), 2u);
    for (const auto& value : held.many) EXPECT_EQ(value.storage().get(), arena.get());
    ASSERT_TRUE(held.maybe.has_value());
    EXPECT_EQ(held.maybe->storage().get(), arena.get());
  }
  // The arena outlives its last handle here, held by the values.
  const HeldValues& held = *outer;
  EXPECT_EQ(held.one, boost::json::parse(R"({"a":[1,2]})"));
  EXPECT_EQ(held.many[0].at("b"), "x");
  EXPECT_TRUE(held.maybe->at("c").is_null());

  const auto on_heap = decode_json<HeldValues>(text);
  EXPECT_EQ(on_heap.one.storage().get(), boost::json::storage_ptr().get());
  EXPECT_EQ(on_heap.one, held.one);
}

// JSON has no bytes: Bytes travel as padded base64 strings.
TEST(JsonDecodeTest, BytesTravelAsBase64) {
  const sample::Blob blob{"logo", Bytes{std::string("\0\x01\xff\x80", 4)}, std::nullopt};
  EXPECT_EQ(to_json(blob), R"({"name":"logo","data":"AAH/gA==","thumbnail":null})");
  EXPECT_EQ(decode_json<sample::Blob>(to_json(blob)), blob);
  EXPECT_EQ(decode_error<sample::Blob>(R"({"name":"x","data":"AAH/gA"})"),
            "payload.data: expected bytes (a base64 string), got a string that is not base64");
  EXPECT_EQ(decode_error<sample::Blob>(R"({"name":"x","data":[1]})"),
            "payload.data: expected bytes (a base64 string), got array");
}

TEST(JsonDecodeTest, SyntaxErrorsAreInvalidInput) {
  EXPECT_NE(decode_error<Item>("{").find("invalid JSON at offset"), std::string::npos);
  EXPECT_NE(decode_error<Item>("").find("invalid JSON"), std::string::npos);
}

// ---- parse_json ---------------------------------------------------------------------------

std::string parse_error(std::string_view text) {
  try {
    parse_json(text);
  } catch (const core::InvalidInput& e) {
    return e.what();
  }
  return "";
}

TEST(ParseJsonTest, AcceptsOneDocumentWithSurroundingWhitespace) {
  EXPECT_EQ(parse_json(" \n\t{\"a\":[1,2]}\r\n "), parse_json(R"({"a":[1,2]})"));
  EXPECT_EQ(parse_json("3"), boost::json::value(3));
}

TEST(ParseJsonTest, RejectsTrailingGarbage) {
  for (const char* text : {"{} x", "{}{}", "[1] [2]", "1 2", "{},", "{}]"}) {
    const std::string error = parse_error(text);
    EXPECT_NE(error, "") << text;
  }
  EXPECT_NE(parse_error(std::string("{}\0", 3)), "");
  EXPECT_EQ(parse_error("{} x"), "invalid JSON at offset 3: extra data");
}

TEST(ParseJsonTest, RejectsIncompleteAndMalformedDocuments) {
  for (const char* text : {"", " ", "{", "[1,", R"({"a":})", "[1,]", R"({'a':1})", "tru",
                           R"({"a" 1})", "01", "NaN", "// c\n{}"})
    EXPECT_NE(parse_error(text), "") << text;
}

TEST(ParseJsonTest, RejectsInvalidUtf8InStrings) {
  EXPECT_NE(parse_error("\"\xff\""), "");
  EXPECT_NE(parse_error("\"\xc3\""), "");
}

TEST(ParseJsonTest, NestingUpTo64IsAcceptedAndDeeperIsRefused) {
  auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  EXPECT_EQ(parse_error(nested(64)), "");
  EXPECT_NE(parse_error(nested(65)), "");
  EXPECT_NE(parse_error(nested(100000)), "") << "a deep document must not blow the stack";
  std::string objects;
  for (int i = 0; i < 65; ++i) objects += "{\"a\":";
  objects += "1" + std::string(65, '}');
  EXPECT_NE(parse_error(objects), "");
}

}  // namespace
}  // namespace molt::codec
