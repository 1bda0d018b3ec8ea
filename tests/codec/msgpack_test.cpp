#include "molt/codec/msgpack.hpp"

#include <gtest/gtest.h>

#include <boost/json/value.hpp>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>

#include "molt/codec/json.hpp"
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

// Builds MsgPack bytes by hand, for inputs our own encoder would never produce.
std::string build(const std::function<void(Packer&)>& fill) {
  std::string out;
  StringSink sink{out};
  Packer p(sink);
  fill(p);
  return out;
}

// A str with exactly these bytes, UTF-8 or not (pack() would mend them): what a peer may send.
void str(Packer& p, std::string_view s) {
  p.pack_str(static_cast<std::uint32_t>(s.size()));
  p.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

template <class T>
std::string decode_error(std::string_view bytes) {
  try {
    decode_msgpack<T>(bytes);
  } catch (const DecodeErrors& several) {
    return several.all().front().what();  // the first problem (rules_test.cpp checks them all)
  } catch (const core::InvalidInput& e) {
    return e.what();
  }
  return "";
}

// Whether `bytes` are one whole MsgPack value: a JSON value takes any of them.
std::string unpack_error(std::string_view bytes) {
  try {
    decode_msgpack<boost::json::value>(bytes);
  } catch (const core::InvalidInput& e) {
    return e.what();
  }
  return "";
}

// A Payload map with `items` replaced by what `items` packs, the other members valid.
std::string payload_with_items(const std::function<void(Packer&)>& items) {
  return build([&](Packer& p) {
    p.pack_map(5);
    str(p, "items");
    items(p);
    str(p, "counts");
    p.pack_map(0);
    str(p, "color");
    str(p, "red");
    str(p, "extra");
    p.pack_nil();
    str(p, "flag");
    p.pack_false();
  });
}

// ---- encoding -----------------------------------------------------------------------------

TEST(MsgPackWriteTest, StructIsAMapKeyedByMemberName) {
  const std::string bytes = to_msgpack(Item{"a", 1.5, std::nullopt});
  const std::string expected = build([](Packer& p) {
    p.pack_map(3);
    str(p, "name");
    str(p, "a");
    str(p, "score");
    p.pack_double(1.5);
    str(p, "rank");
    p.pack_nil();
  });
  EXPECT_EQ(bytes, expected);
}

// A str must be UTF-8 (Python's msgpack refuses one that is not): text from a request that
// is not goes out with U+FFFD in place of each ill-formed byte, as in JSON.
TEST(MsgPackWriteTest, TextThatIsNotUtf8BecomesValidText) {
  EXPECT_EQ(to_msgpack(std::string("a\xff")), std::string("\xa4"
                                                          "a\xef\xbf\xbd"));
  EXPECT_EQ(to_msgpack(std::string("caf\xc3\xa9")), std::string("\xa5"
                                                                "caf\xc3\xa9"));
}

TEST(MsgPackWriteTest, ScalarsUseCompactForms) {
  EXPECT_EQ(to_msgpack(true), "\xc3");
  EXPECT_EQ(to_msgpack(false), "\xc2");
  EXPECT_EQ(to_msgpack(5), "\x05");
  EXPECT_EQ(to_msgpack(-1), "\xff");
  EXPECT_EQ(to_msgpack(std::string("ab")),
            "\xa2"
            "ab");
  EXPECT_EQ(to_msgpack(std::optional<int>{}), "\xc0");
  EXPECT_EQ(to_msgpack(Color::green), "\xa5green");
  EXPECT_EQ(to_msgpack(static_cast<Color>(7)), "\x07");
  EXPECT_EQ(to_msgpack(std::vector<int>{}), "\x90");
}

TEST(MsgPackWriteTest, FloatsAreAlwaysFloat64EvenWhenIntegral) {
  // Python's msgpack reads these back as float, so 6.0 stays 6.0 in a JSON answer.
  EXPECT_EQ(to_msgpack(6.0), std::string("\xcb\x40\x18\0\0\0\0\0\0", 9));
  EXPECT_EQ(to_msgpack(0.0), std::string("\xcb\0\0\0\0\0\0\0\0", 9));
  EXPECT_EQ(to_msgpack(-0.0), std::string("\xcb\x80\0\0\0\0\0\0\0", 9));
  EXPECT_EQ(to_msgpack(1.5f), std::string("\xcb\x3f\xf8\0\0\0\0\0\0", 9));
  EXPECT_EQ(to_msgpack(18446744073709551616.0), std::string("\xcb\x43\xf0\0\0\0\0\0\0", 9));
  EXPECT_EQ(to_msgpack(boost::json::value(-2.0)), std::string("\xcb\xc0\0\0\0\0\0\0\0", 9));
}

TEST(MsgPackWriteTest, IntegralDoublesInJsonValuesStayDoubles) {
  const boost::json::value v = parse_json("[1.0, -0.0, 3, 2.5]");
  const auto back = decode_msgpack<boost::json::value>(to_msgpack(v));
  ASSERT_TRUE(back.is_array());
  EXPECT_TRUE(back.get_array()[0].is_double());
  EXPECT_TRUE(back.get_array()[1].is_double());
  EXPECT_TRUE(std::signbit(back.get_array()[1].get_double()));
  EXPECT_TRUE(back.get_array()[2].is_int64() || back.get_array()[2].is_uint64());
  std::string json;
  write_json_value(json, back);
  EXPECT_EQ(json, "[1.0,-0.0,3,2.5]");
}

// ---- decoding -----------------------------------------------------------------------------

TEST(MsgPackDecodeTest, RoundTripsAWholePayload) {
  const Payload p = sample::make_payload();
  EXPECT_EQ(decode_msgpack<Payload>(to_msgpack(p)), p);
}

TEST(MsgPackDecodeTest, RoundTripsNestedStructsVectorsAndMaps) {
  Nested n;
  n.payload = sample::make_payload();
  n.grid = {{1, 2, 3}, {}, {-4}};
  n.by_name = {{"x", {"x", 1.0, 2}}, {"y", {"y", 0.0, std::nullopt}}};
  n.best = Item{"best", 99.5, std::nullopt};
  EXPECT_EQ(decode_msgpack<Nested>(to_msgpack(n)), n);
}

TEST(MsgPackDecodeTest, InheritedMembersRoundTrip) {
  Derived d;
  d.id = "z";
  d.version = 9;
  const Derived back = decode_msgpack<Derived>(to_msgpack(d));
  EXPECT_EQ(back.id, "z");
  EXPECT_EQ(back.version, 9u);
}

TEST(MsgPackDecodeTest, OptionalMemberMayBeMissingOrNil) {
  const std::string missing = build([](Packer& p) {
    p.pack_map(2);
    str(p, "name");
    str(p, "a");
    str(p, "score");
    p.pack_int(1);
  });
  const Item item = decode_msgpack<Item>(missing);
  EXPECT_FALSE(item.rank.has_value());
  EXPECT_EQ(item.score, 1.0);
}

TEST(MsgPackDecodeTest, AnOptionalOfAnOptionalTellsNilFromAbsent) {
  const std::string nil = build([](Packer& p) {
    p.pack_map(1);
    str(p, "description");
    p.pack_nil();
  });
  const NotePatch patch = decode_msgpack<NotePatch>(nil);
  ASSERT_TRUE(patch.description.has_value());
  EXPECT_FALSE(patch.description->has_value());
  EXPECT_FALSE(patch.due.has_value());
}

TEST(MsgPackDecodeTest, UnknownKeysIncludingNonStringKeysAreIgnored) {
  const std::string bytes = build([](Packer& p) {
    p.pack_map(5);
    p.pack_int(42);
    str(p, "int key");
    str(p, "name");
    str(p, "a");
    str(p, "zzz");
    p.pack_array(1);
    p.pack_map(0);
    str(p, "score");
    p.pack_double(2.0);
    p.pack_nil();
    p.pack_nil();
  });
  EXPECT_EQ(decode_msgpack<Item>(bytes), (Item{"a", 2.0, std::nullopt}));
}

TEST(MsgPackDecodeTest, LastDuplicateKeyWins) {
  const std::string bytes = build([](Packer& p) {
    p.pack_map(3);
    str(p, "name");
    str(p, "first");
    str(p, "score");
    p.pack_int(1);
    str(p, "name");
    str(p, "second");
  });
  EXPECT_EQ(decode_msgpack<Item>(bytes).name, "second");
}

// Only the last of a repeated key counts, as in Python's dict: an earlier value that does not
// decode is no error, and a later one that does not is.
TEST(MsgPackDecodeTest, AnEarlierDuplicateThatDoesNotDecodeIsOverruled) {
  const std::string overruled = build([](Packer& p) {
    p.pack_map(3);
    str(p, "name");
    p.pack_array(1);  // not a string, and then repeated
    p.pack_int(7);
    str(p, "score");
    p.pack_int(1);
    str(p, "name");
    str(p, "kept");
  });
  EXPECT_EQ(decode_msgpack<Item>(overruled).name, "kept");
  const std::string last_bad = build([](Packer& p) {
    p.pack_map(3);
    str(p, "name");
    str(p, "first");
    str(p, "score");
    p.pack_int(1);
    str(p, "name");
    p.pack_int(2);
  });
  EXPECT_EQ(decode_error<Item>(last_bad), "payload.name: expected string, got integer");
  // The same in string maps and in any-JSON objects, also when the bad value is nested.
  const std::string counts = build([](Packer& p) {
    p.pack_map(2);
    str(p, "a");
    str(p, "x");
    str(p, "a");
    p.pack_int(3);
  });
  EXPECT_EQ((decode_msgpack<Counts>(counts)), (Counts{{"a", 3}}));
  const std::string nested = build([](Packer& p) {
    p.pack_map(2);
    str(p, "k");
    p.pack_map(1);
    str(p, "bad");
    p.pack_ext(0, 1);  // an empty ext of type 1
    str(p, "k");
    p.pack_true();
  });
  EXPECT_EQ(decode_msgpack<boost::json::value>(nested), parse_json(R"({"k":true})"));
}

// Found by a review: each value that did not decode looked ahead through the rest of its map
// for its key, so thousands of failing keys repeated at the map's end cost their count
// squared (80 s for a 1 MB body, on the I/O thread). Each failure is now kept until its key
// comes again, and what is left is the error: the first of them, in the order they came.
// Fewer failing keys than an error lists (detail::Problems::kMost): a later repeat of each
// overrules its failure; past that many, decoding stops with them (see GatheredProblems).
TEST(MsgPackDecodeTest, ManyFailingKeysRepeatedLaterAreOverruledOrReportedInOrder) {
  constexpr int kKeys = 40;
  // The first values are nil (not an integer) or an ext (not JSON).
  const auto many = [](bool repeat_the_first, bool ext = false) {
    return build([&](Packer& p) {
      p.pack_map(2 * kKeys);
      for (int i = 0; i < kKeys; ++i) {
        str(p, "k" + std::to_string(i));
        if (ext)
          p.pack_ext(0, 1);
        else
          p.pack_nil();
      }
      for (int i = 0; i < kKeys; ++i) {
        str(p, "k" + std::to_string(i == 0 && !repeat_the_first ? kKeys : i));
        p.pack_int(i);
      }
    });
  };
  const Counts counts = decode_msgpack<Counts>(many(true));
  ASSERT_EQ(counts.size(), static_cast<std::size_t>(kKeys));
  EXPECT_EQ(counts.at("k39"), 39);
  const auto any = decode_msgpack<boost::json::value>(many(true, /*ext=*/true));
  EXPECT_EQ(any.as_object().size(), static_cast<std::size_t>(kKeys));
  EXPECT_EQ(any.as_object().at("k17"), 17);
  // k0's nil is never overruled (its repeat went to another key): its error, though later
  // keys failed too and were overruled.
  EXPECT_EQ(decode_error<Counts>(many(false)), "payload.k0: expected integer, got null");
}

// Keys go back out as JSON text as values do: a str or a bin, UTF-8.
TEST(MsgPackDecodeTest, MapKeysMustBeUtf8Text) {
  auto map_with_key = [](bool as_bin, std::string_view key) {
    return build([&](Packer& p) {
      p.pack_map(1);
      if (as_bin) {
        p.pack_bin(static_cast<std::uint32_t>(key.size()));
        p.pack_bin_body(key.data(), static_cast<std::uint32_t>(key.size()));
      } else {
        str(p, key);
      }
      p.pack_int(1);
    });
  };
  EXPECT_EQ((decode_msgpack<Counts>(map_with_key(true, "caf\xc3\xa9"))),
            (Counts{{"caf\xc3\xa9", 1}}));
  EXPECT_EQ(decode_error<Counts>(map_with_key(false, "\xc3(")),
            "payload: expected object with string keys, got a key that is not UTF-8");
  EXPECT_EQ(decode_error<boost::json::value>(map_with_key(true, "\xff")),
            "payload: expected object with string keys, got a key that is not UTF-8");
  EXPECT_EQ(decode_msgpack<boost::json::value>(map_with_key(true, "k")), parse_json(R"({"k":1})"));
}

TEST(MsgPackDecodeTest, ErrorNamesThePathIntoArraysOfStructs) {
  const std::string bytes = payload_with_items([](Packer& p) {
    p.pack_array(2);
    pack(p, Item{"a", 1.0, std::nullopt});
    p.pack_map(2);
    str(p, "name");
    str(p, "b");
    str(p, "score");
    str(p, "high");
  });
  EXPECT_EQ(decode_error<Payload>(bytes), "payload.items[1].score: expected number, got string");
}

// A str is text: one that is not UTF-8 is refused, as JSON's decoder refuses it (a bin is
// too: BinDecodesIntoStringWhenItIsUtf8).
TEST(MsgPackDecodeTest, AStringThatIsNotUtf8IsRefused) {
  const std::string bytes = payload_with_items([](Packer& p) {
    p.pack_array(1);
    p.pack_map(2);
    str(p, "name");
    str(p, "caf\xc3");  // a sequence cut short
    str(p, "score");
    pack(p, 1.0);
  });
  EXPECT_EQ(decode_error<Payload>(bytes),
            "payload.items[0].name: expected string, got a str that is not UTF-8");
  const std::string good = payload_with_items([](Packer& p) {
    p.pack_array(1);
    p.pack_map(2);
    str(p, "name");
    str(p, "caf\xc3\xa9 \xe2\x82\xac");
    str(p, "score");
    pack(p, 1.0);
  });
  EXPECT_EQ(decode_error<Payload>(good), "");
}

TEST(MsgPackDecodeTest, ErrorNamesAMissingRequiredMember) {
  const std::string bytes = payload_with_items([](Packer& p) {
    p.pack_array(1);
    p.pack_map(1);
    str(p, "score");
    p.pack_int(1);
  });
  EXPECT_EQ(decode_error<Payload>(bytes),
            "payload.items[0].name: expected string, got nothing (the field is required)");
  EXPECT_EQ(decode_error<Nested>("\x80"),
            "payload.payload: expected object, got nothing (the field is required)");
}

TEST(MsgPackDecodeTest, MissingDefaultedMembersKeepTheirInitializers) {
  const auto review = [](std::string_view text, auto more) {
    return [=](Packer& p) {
      p.pack_map(1 + more.first);
      str(p, "text");
      str(p, text);
      more.second(p);
    };
  };
  const auto nothing_more = std::make_pair(0u, [](Packer&) {});
  EXPECT_EQ(decode_msgpack<Review>(build(review("ok", nothing_more))),
            (Review{"ok", 3, {"new"}, 0}));
  const auto null_votes = std::make_pair(1u, [](Packer& p) {
    str(p, "votes");
    p.pack_nil();
  });
  EXPECT_EQ(decode_msgpack<Review>(build(review("ok", null_votes))),
            (Review{"ok", 3, {"new"}, std::nullopt}));
  const auto null_stars = std::make_pair(1u, [](Packer& p) {
    str(p, "stars");
    p.pack_nil();
  });
  EXPECT_EQ(decode_error<Review>(build(review("ok", null_stars))),
            "payload.stars: expected integer, got null");
  EXPECT_EQ(decode_error<Review>(build([](Packer& p) {
              p.pack_map(1);
              str(p, "stars");
              p.pack_int(5);
            })),
            "payload.text: expected string, got nothing (the field is required)");
  // Each element starts from the initializers, not from the element before it.
  const auto five_stars = std::make_pair(1u, [](Packer& p) {
    str(p, "stars");
    p.pack_int(5);
  });
  const Shelf shelf = decode_msgpack<Shelf>(build([&](Packer& p) {
    p.pack_map(2);
    str(p, "top");
    review("a", five_stars)(p);
    str(p, "rest");
    p.pack_array(2);
    review("b", five_stars)(p);
    review("c", nothing_more)(p);
  }));
  EXPECT_EQ(shelf.top, (Review{"a", 5, {"new"}, 0}));
  ASSERT_EQ(shelf.rest.size(), 2u);
  EXPECT_EQ(shelf.rest[0], (Review{"b", 5, {"new"}, 0}));
  EXPECT_EQ(shelf.rest[1], (Review{"c", 3, {"new"}, 0}));
}

TEST(MsgPackDecodeTest, NilIsNotAValueForARequiredMember) {
  const std::string bytes = build([](Packer& p) {
    p.pack_map(2);
    str(p, "name");
    p.pack_nil();
    str(p, "score");
    p.pack_int(1);
  });
  EXPECT_EQ(decode_error<Item>(bytes), "payload.name: expected string, got null");
}

TEST(MsgPackDecodeTest, ErrorNamesMapKeysAndNestedIndexes) {
  const std::string counts = build([](Packer& p) {
    p.pack_map(2);
    str(p, "a");
    p.pack_int(1);
    str(p, "apples");
    str(p, "many");
  });
  EXPECT_EQ(decode_error<Counts>(counts), "payload.apples: expected integer, got string");
  const std::string grid = build([](Packer& p) {
    p.pack_array(2);
    p.pack_array(1);
    p.pack_int(1);
    p.pack_array(2);
    p.pack_int(2);
    p.pack_double(3.5);
  });
  EXPECT_EQ(decode_error<std::vector<std::vector<int>>>(grid),
            "payload[1][1]: expected integer, got number");
}

TEST(MsgPackDecodeTest, AnEmptyMapKeyIsNotMistakenForAnIndex) {
  const std::string bytes = build([](Packer& p) {
    p.pack_map(1);
    str(p, "");
    str(p, "x");
  });
  EXPECT_EQ(decode_error<IntMap>(bytes), R"(payload."": expected integer, got string)");
}

TEST(MsgPackDecodeTest, MapsNeedStringKeys) {
  const std::string bytes = build([](Packer& p) {
    p.pack_map(1);
    p.pack_int(1);
    p.pack_int(2);
  });
  EXPECT_EQ(decode_error<IntMap>(bytes),
            "payload: expected object with string keys, got a integer key");
  EXPECT_NE(decode_error<boost::json::value>(bytes), "");
}

TEST(MsgPackDecodeTest, WrongKinds) {
  EXPECT_EQ(decode_error<Payload>("\x90"), "payload: expected object, got array");
  EXPECT_EQ(decode_error<std::vector<int>>("\x80"), "payload: expected array, got object");
  EXPECT_EQ(decode_error<std::string>("\xc3"), "payload: expected string, got boolean");
  EXPECT_EQ(decode_error<bool>("\x01"), "payload: expected boolean, got integer");
  EXPECT_EQ(decode_error<double>("\xa1x"), "payload: expected number, got string");
  EXPECT_EQ(decode_error<int>("\xc0"), "payload: expected integer, got null");
  EXPECT_EQ(decode_error<int>(to_msgpack(1.0)), "payload: expected integer, got number");
  EXPECT_EQ(decode_error<int>(to_msgpack(1.5)), "payload: expected integer, got number");
  EXPECT_EQ(decode_error<std::string>(build([](Packer& p) { p.pack_array(0); })),
            "payload: expected string, got array");
}

TEST(MsgPackDecodeTest, EnumsByName) {
  EXPECT_EQ(decode_msgpack<Color>(to_msgpack(std::string("blue"))), Color::blue);
  EXPECT_EQ(decode_error<Color>(to_msgpack(std::string("purple"))),
            R"(payload: expected one of "red", "green", "blue", got "purple")");
  EXPECT_EQ(decode_error<Color>("\x02"),
            R"(payload: expected one of "red", "green", "blue", got integer)");
}

TEST(MsgPackDecodeTest, EnumNameIsComparedByItsLengthNotUpToANul) {
  // Strings point into the input, so the bytes after a name are whatever follows it: "gre"
  // followed by the integers 'e' and 'n' must not read as "green".
  EXPECT_EQ(decode_error<std::vector<Color>>(std::string("\x93\xa3gre\x65\x6e", 7)),
            R"(payload[0]: expected one of "red", "green", "blue", got "gre")");
  const std::string bytes = build([](Packer& p) {
    p.pack_array(2);
    str(p, "red");
    str(p, "blue");
  });
  EXPECT_EQ(decode_msgpack<std::vector<Color>>(bytes),
            (std::vector<Color>{Color::red, Color::blue}));
}

TEST(MsgPackDecodeTest, NumbersIntoFloatingPoint) {
  EXPECT_EQ(decode_msgpack<double>(std::string("\xca\x3f\xc0\x00\x00", 5)), 1.5);  // float32
  EXPECT_EQ(decode_msgpack<double>(build([](Packer& p) { p.pack_double(-0.25); })), -0.25);
  EXPECT_EQ(decode_msgpack<double>("\x07"), 7.0);
  EXPECT_EQ(decode_msgpack<double>("\xff"), -1.0);
  EXPECT_EQ(decode_msgpack<float>(build([](Packer& p) { p.pack_double(0.5); })), 0.5f);
}

template <class T, class V>
std::string pack_then_decode_error(V value) {
  return decode_error<T>(build([&](Packer& p) {
    if constexpr (std::is_signed_v<V>)
      p.pack_int64(value);
    else
      p.pack_uint64(value);
  }));
}

template <class T, class V>
T pack_then_decode(V value) {
  return decode_msgpack<T>(build([&](Packer& p) {
    if constexpr (std::is_signed_v<V>)
      p.pack_int64(value);
    else
      p.pack_uint64(value);
  }));
}

TEST(MsgPackDecodeTest, IntegerRangesAreChecked) {
  const std::string out_of_range = "payload: expected integer in range, got out-of-range integer";
  EXPECT_EQ(pack_then_decode<std::int8_t>(127), 127);
  EXPECT_EQ(pack_then_decode<std::int8_t>(-128), -128);
  EXPECT_EQ((pack_then_decode_error<std::int8_t>(128)), out_of_range);
  EXPECT_EQ((pack_then_decode_error<std::int8_t>(-129)), out_of_range);
  EXPECT_EQ(pack_then_decode<std::uint8_t>(255), 255);
  EXPECT_EQ((pack_then_decode_error<std::uint8_t>(256)), out_of_range);
  EXPECT_EQ(pack_then_decode<std::int16_t>(-32768), -32768);
  EXPECT_EQ((pack_then_decode_error<std::int16_t>(32768)), out_of_range);
  EXPECT_EQ(pack_then_decode<std::uint16_t>(65535), 65535);
  EXPECT_EQ((pack_then_decode_error<std::uint16_t>(65536)), out_of_range);
  EXPECT_EQ((pack_then_decode_error<std::uint16_t>(-1)),
            "payload: expected non-negative integer, got negative integer");
  EXPECT_EQ(pack_then_decode<std::int32_t>(std::numeric_limits<std::int32_t>::min()),
            std::numeric_limits<std::int32_t>::min());
  EXPECT_EQ((pack_then_decode_error<std::int32_t>(std::int64_t{1} << 31)), out_of_range);
  EXPECT_EQ(pack_then_decode<std::uint32_t>(4294967295u), 4294967295u);
  EXPECT_EQ((pack_then_decode_error<std::uint32_t>(std::uint64_t{1} << 32)), out_of_range);
  EXPECT_EQ(pack_then_decode<std::int64_t>(std::numeric_limits<std::int64_t>::min()),
            std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ((pack_then_decode_error<std::int64_t>(std::uint64_t{1} << 63)), out_of_range);
  EXPECT_EQ(pack_then_decode<std::uint64_t>(std::numeric_limits<std::uint64_t>::max()),
            std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ((pack_then_decode_error<std::uint64_t>(std::int64_t{-1})),
            "payload: expected non-negative integer, got negative integer");
}

TEST(MsgPackDecodeTest, AnyIntegerEncodingIsAccepted) {
  // Other encoders pick other widths: int8 5, int16 5, uint64 5, int64 -3.
  EXPECT_EQ(decode_msgpack<std::uint8_t>(std::string("\xd0\x05", 2)), 5);
  EXPECT_EQ(decode_msgpack<std::uint8_t>(std::string("\xd1\x00\x05", 3)), 5);
  EXPECT_EQ(decode_msgpack<std::int8_t>(std::string("\xcf\0\0\0\0\0\0\0\x05", 9)), 5);
  EXPECT_EQ(decode_msgpack<std::int8_t>(std::string("\xd3\xff\xff\xff\xff\xff\xff\xff\xfd", 9)),
            -3);
}

// Python sends bytes as bin. A std::string takes them when they are UTF-8 text; other bytes
// are refused, since what a string holds goes back out in JSON, which cannot carry them.
TEST(MsgPackDecodeTest, BinDecodesIntoStringWhenItIsUtf8) {
  auto bin = [](std::string_view bytes) {
    return build([&](Packer& p) {
      p.pack_bin(static_cast<std::uint32_t>(bytes.size()));
      p.pack_bin_body(bytes.data(), static_cast<std::uint32_t>(bytes.size()));
    });
  };
  EXPECT_EQ(decode_msgpack<std::string>(bin("caf\xc3\xa9")), "caf\xc3\xa9");
  EXPECT_EQ(decode_error<std::string>(bin(std::string_view("\0\x01\xff\x80 text", 9))),
            "payload: expected string, got bytes that are not UTF-8");
  const std::string in_struct = build([&](Packer& p) {
    p.pack_map(2);
    str(p, "name");
    p.pack_bin(2);
    p.pack_bin_body("\xc3(", 2);
    str(p, "score");
    p.pack_int(0);
  });
  EXPECT_EQ(decode_error<Item>(in_struct),
            "payload.name: expected string, got bytes that are not UTF-8");
  EXPECT_EQ(decode_error<boost::json::value>(bin("\xff")),
            "payload: expected string, got bytes that are not UTF-8");
}

// Binary data has its own type: any bytes, written as bin; a str is taken too.
TEST(MsgPackDecodeTest, BytesTakeAnyBinAndRoundTrip) {
  const sample::Blob blob{"logo", Bytes{std::string("\0\x01\xff\x80", 4)}, Bytes{"png"}};
  const std::string bytes = to_msgpack(blob);
  EXPECT_NE(bytes.find(std::string("\xc4\x04\0\x01\xff\x80", 6)), std::string::npos);
  EXPECT_EQ(decode_msgpack<sample::Blob>(bytes), blob);
  EXPECT_EQ(decode_msgpack<Bytes>(to_msgpack(std::string_view("text"))).data, "text");
  EXPECT_EQ(decode_error<sample::Blob>(build([](Packer& p) {
              p.pack_map(2);
              str(p, "name");
              str(p, "x");
              str(p, "data");
              p.pack_int(1);
            })),
            "payload.data: expected bytes, got integer");
}

TEST(MsgPackDecodeTest, AJsonValueStrMustBeUtf8) {
  EXPECT_EQ(decode_error<boost::json::value>(build([](Packer& p) {
              p.pack_map(1);
              str(p, "k");
              str(p, "\xed\xa0\x80");  // a surrogate
            })),
            "payload.k: expected string, got a str that is not UTF-8");
}

TEST(MsgPackDecodeTest, JsonValueMemberTakesAnyJsonCompatibleValue) {
  const std::string bytes = build([](Packer& p) {
    p.pack_map(3);
    str(p, "a");
    p.pack_array(5);
    p.pack_int(-1);
    p.pack_uint64(18446744073709551615ull);
    p.pack_double(2.5);
    p.pack_nil();
    p.pack_true();
    str(p, "b");
    p.pack_map(1);
    str(p, "c");
    str(p, "d");
    str(p, "bin");
    p.pack_bin(2);
    p.pack_bin_body("hi", 2);
  });
  const auto v = decode_msgpack<boost::json::value>(bytes);
  EXPECT_EQ(v, parse_json(R"({"a":[-1,18446744073709551615,2.5,null,true],"b":{"c":"d"},)"
                          R"("bin":"hi"})"));
  // And a json::value packs back to the same value.
  EXPECT_EQ(decode_msgpack<boost::json::value>(to_msgpack(v)), v);
}

TEST(MsgPackDecodeTest, ExtIsRefusedAsJson) {
  const std::string ext = build([](Packer& p) {
    p.pack_ext(1, 5);
    p.pack_ext_body("x", 1);
  });
  EXPECT_EQ(decode_error<boost::json::value>(ext),
            "payload: expected a JSON-compatible value, got ext");
}

TEST(MsgPackDecodeTest, DecodingReplacesPreviousContainerContents) {
  const std::string one = to_msgpack(std::vector<int>{1});
  MsgPackReader reader(one);
  std::vector<int> v{9, 9, 9};
  from_msgpack(reader, v, kRootPath);
  EXPECT_EQ(v, std::vector<int>{1});
  EXPECT_TRUE(reader.at_end());
}

// ---- whole values -----------------------------------------------------------------------------

TEST(UnpackMsgPackTest, RejectsEveryTruncationOfAValue) {
  const std::string whole = to_msgpack(sample::make_payload());
  for (std::size_t n = 0; n < whole.size(); ++n) {
    const std::string error = unpack_error(whole.substr(0, n));
    EXPECT_NE(error, "") << "prefix of " << n << " bytes was accepted";
  }
  EXPECT_EQ(unpack_error(whole), "");
  EXPECT_EQ(unpack_error(""), "invalid MsgPack: truncated value");
}

TEST(UnpackMsgPackTest, RejectsTrailingBytes) {
  const std::string whole = to_msgpack(Item{"a", 1.0, 2});
  EXPECT_EQ(unpack_error(whole + '\xc0'), "invalid MsgPack: 1 unexpected bytes after the value");
  EXPECT_NE(unpack_error(whole + whole), "");
  EXPECT_NE(unpack_error("\x01\x02"), "");
}

TEST(UnpackMsgPackTest, HugeContainerClaimsInATinyBufferAreRefusedBeforeAllocating) {
  // Without a limit these would reserve 2^32-1 (or 2^16-1) element slots before noticing
  // the bytes are missing; the message shows the size limit caught them.
  const std::string claims = "more elements than it holds";
  EXPECT_NE(unpack_error(std::string("\xdd\xff\xff\xff\xff\x00\x00", 7)).find(claims),
            std::string::npos);
  EXPECT_NE(unpack_error(std::string("\xdf\xff\xff\xff\xff\x00\x00", 7)).find(claims),
            std::string::npos);
  EXPECT_NE(unpack_error(std::string("\xdc\xff\xff\x00", 4)).find(claims), std::string::npos);
  EXPECT_NE(unpack_error(std::string("\x91\xdd\xff\xff\xff\xff", 6)).find(claims),
            std::string::npos);
  // Strings and binaries claiming more than there is are merely truncated.
  EXPECT_NE(unpack_error(std::string("\xdb\xff\xff\xff\xff"
                                     "abc",
                                     8)),
            "");
  EXPECT_NE(unpack_error(std::string("\xc6\xff\xff\xff\xff"
                                     "abc",
                                     8)),
            "");
}

TEST(UnpackMsgPackTest, HonestLargeContainersAreAccepted) {
  std::vector<int> many(10000, 0);
  EXPECT_EQ(decode_msgpack<std::vector<int>>(to_msgpack(many)), many);
  IntMap map;
  for (int i = 0; i < 1000; ++i) map[std::to_string(i)] = i;
  EXPECT_EQ((decode_msgpack<IntMap>(to_msgpack(map))), map);
  EXPECT_EQ(decode_msgpack<IntMap>("\x80").size(), 0u);
  EXPECT_EQ(decode_msgpack<std::vector<int>>("\x90").size(), 0u);
}

TEST(UnpackMsgPackTest, NestingUpTo64IsAcceptedAndDeeperIsRefused) {
  auto nested = [](int depth) {
    std::string s(depth - 1, '\x91');
    return s + '\x90';
  };
  EXPECT_EQ(unpack_error(nested(64)), "");
  EXPECT_EQ(unpack_error(nested(65)), "invalid MsgPack: nested deeper than 64 levels");
  EXPECT_NE(unpack_error(nested(100000)), "");
  std::string maps;
  for (int i = 0; i < 65; ++i) maps += "\x81\xa1k";
  maps += '\x01';
  EXPECT_NE(unpack_error(maps), "");
}

TEST(UnpackMsgPackTest, RejectsTheNeverUsedByte) {
  EXPECT_NE(unpack_error("\xc1"), "");
}

TEST(MsgPackKindTest, NamesEveryType) {
  auto kind = [](const std::string& bytes) {
    MsgPackReader reader(bytes);
    MsgPackValue value;
    reader.read(value);
    return std::string(value.kind_name());
  };
  EXPECT_EQ(kind("\xc0"), "null");
  EXPECT_EQ(kind("\xc3"), "boolean");
  EXPECT_EQ(kind("\x01"), "integer");
  EXPECT_EQ(kind("\xff"), "integer");
  EXPECT_EQ(kind(std::string("\xca\x3f\xc0\x00\x00", 5)), "number");
  EXPECT_EQ(kind(to_msgpack(1.0)), "number");
  EXPECT_EQ(kind("\xa1x"), "string");
  EXPECT_EQ(kind(std::string("\xc4\x01x", 3)), "bytes");
  EXPECT_EQ(kind("\x90"), "array");
  EXPECT_EQ(kind("\x80"), "object");
  EXPECT_EQ(kind(std::string("\xd4\x01\x00", 3)), "ext");
}

}  // namespace
}  // namespace molt::codec
