#pragma once
// Described types shared by the fuzz targets and make_seeds, so that the seeds are written by
// the same descriptions the targets decode.

#include <boost/describe.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "molt/codec/bytes.hpp"

namespace fuzz_types {

// fuzz_typed_decode: every shape the typed codecs support, nested.
BOOST_DEFINE_ENUM_CLASS(Color, red, green, blue)

struct Inner {
  std::string name;
  std::optional<double> weight;
  std::uint8_t level = 0;
  Color color = Color::red;
};
BOOST_DESCRIBE_STRUCT(Inner, (), (name, weight, level, color))

struct Record {
  std::int64_t id = 0;
  std::uint32_t count = 0;
  bool active = false;
  double ratio = 0;
  std::optional<std::string> note;
  Inner main;
  std::optional<Inner> spare;
  std::vector<Inner> children;
  std::map<std::string, std::int32_t> scores;
  std::optional<std::vector<std::optional<Color>>> palette;
  boost::json::value extra;
  std::optional<molt::codec::Bytes> blob;
};
BOOST_DESCRIBE_STRUCT(Record, (),
                      (id, count, active, ratio, note, main, spare, children, scores, palette,
                       extra, blob))

// fuzz_worker_stream: the inputs and outputs of its typed exports.
struct Point {
  std::int32_t x = 0;
  std::optional<std::string> label;
  std::vector<std::int64_t> tags;
};
BOOST_DESCRIBE_STRUCT(Point, (), (x, label, tags))

struct PointSummary {
  std::int32_t x = 0;
  std::optional<std::string> label;
  std::uint64_t tag_count = 0;
};
BOOST_DESCRIBE_STRUCT(PointSummary, (), (x, label, tag_count))

BOOST_DEFINE_ENUM_CLASS(Kind, circle, square)

struct Shape {
  Kind kind = Kind::circle;
  std::map<std::string, double> dims;
  boost::json::value extra;
};
BOOST_DESCRIBE_STRUCT(Shape, (), (kind, dims, extra))

}  // namespace fuzz_types
