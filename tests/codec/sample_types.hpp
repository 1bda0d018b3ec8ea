#pragma once
// Described types shared by the JSON and MsgPack codec tests, so that both codecs are held to
// the same cases and the same error texts.

#include <boost/describe.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "molt/codec/defaults.hpp"
#include "molt/codec/rules.hpp"

namespace molt::codec::sample {

enum class Color { red, green, blue };
BOOST_DESCRIBE_ENUM(Color, red, green, blue)

struct Item {
  std::string name;
  double score = 0;
  std::optional<std::int32_t> rank;
  friend bool operator==(const Item&, const Item&) = default;
};
BOOST_DESCRIBE_STRUCT(Item, (), (name, score, rank))

struct Payload {
  std::vector<Item> items;
  std::map<std::string, std::int64_t> counts;
  Color color = Color::red;
  std::optional<std::string> note;
  boost::json::value extra;
  bool flag = false;
  friend bool operator==(const Payload&, const Payload&) = default;
};
BOOST_DESCRIBE_STRUCT(Payload, (), (items, counts, color, note, extra, flag))

struct Nested {
  Payload payload;
  std::vector<std::vector<int>> grid;
  std::map<std::string, Item> by_name;
  std::optional<Item> best;
  friend bool operator==(const Nested&, const Nested&) = default;
};
BOOST_DESCRIBE_STRUCT(Nested, (), (payload, grid, by_name, best))

struct Base {
  std::string id;
};
BOOST_DESCRIBE_STRUCT(Base, (), (id))

struct Derived : Base {
  std::uint32_t version = 0;
};
BOOST_DESCRIBE_STRUCT(Derived, (Base), (version))

// Binary data beside text.
struct Blob {
  std::string name;
  Bytes data;
  std::optional<Bytes> thumbnail;
  friend bool operator==(const Blob&, const Blob&) = default;
};
BOOST_DESCRIBE_STRUCT(Blob, (), (name, data, thumbnail))

// Fields a sender may leave out: they keep their initializers (MOLT_DEFAULTS). `text` is
// still required.
struct Review {
  std::string text;
  int stars = 3;
  std::vector<std::string> tags{"new"};
  std::optional<int> votes = 0;
  friend bool operator==(const Review&, const Review&) = default;
};
BOOST_DESCRIBE_STRUCT(Review, (), (text, stars, tags, votes))
MOLT_DEFAULTS(Review, stars, tags, votes)

struct Shelf {
  Review top;
  std::vector<Review> rest;
  friend bool operator==(const Shelf&, const Shelf&) = default;
};
BOOST_DESCRIBE_STRUCT(Shelf, (), (top, rest))

// A MOLT_DEFAULTS list with a name that is not a member: decoding it does not compile.
struct Misnamed {
  int stars = 3;
};
BOOST_DESCRIBE_STRUCT(Misnamed, (), (stars))
MOLT_DEFAULTS(Misnamed, star)

// A PATCH body: absent leaves a field as it is, null clears it.
struct NotePatch {
  std::optional<std::optional<std::string>> description;
  std::optional<std::optional<std::int64_t>> due;
};
BOOST_DESCRIBE_STRUCT(NotePatch, (), (description, due))

// Declared limits on members (MOLT_RULES): both decoders hold a body to them.
struct Listing {
  std::int64_t user_id = 0;
  std::string title;
  std::string status = "open";
  double score = 0;
  std::vector<std::string> tags;
  std::optional<std::int32_t> rank;
  std::map<std::string, std::string> labels;
  friend bool operator==(const Listing&, const Listing&) = default;
};
BOOST_DESCRIBE_STRUCT(Listing, (), (user_id, title, status, score, tags, rank, labels))
MOLT_DEFAULTS(Listing, status, score, tags, labels)
MOLT_RULES(Listing, rule(&Listing::user_id, at_least(1)), rule(&Listing::title, length(1, 20)),
           rule(&Listing::status, one_of("open", "closed")),
           rule(&Listing::score, between(0, 10.5)), rule(&Listing::tags, max_length(3)),
           rule(&Listing::rank, more_than(0), less_than(100)),
           rule(&Listing::labels, min_length(0), max_length(2)))

inline Payload make_payload() {
  Payload p;
  p.items = {{"apple", 0.93, 1}, {"pear", 27.125, std::nullopt}, {"fig", -1e-05, -3}};
  p.counts = {{"a", 1}, {"b", -9223372036854775807LL - 1}, {"c", 9223372036854775807LL}};
  p.color = Color::green;
  p.note = "hello";
  p.extra = boost::json::value{{"k", boost::json::array{1, "two", nullptr, true, 2.5}}};
  p.flag = true;
  return p;
}

}  // namespace molt::codec::sample
