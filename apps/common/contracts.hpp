#pragma once
// The demo contracts of DESIGN.md §5 as described structs: one description gives the MsgPack
// decoding of the request and the JSON (Python-identical) encoding of the answer.

#include <boost/describe.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace molt_worker {

struct ListItemsRequest {
  std::int64_t user_id = 0;
  std::optional<std::string> q;
  std::optional<std::string> status;
  std::optional<std::string> cursor;
  std::optional<std::int64_t> limit;  // default 50, clamped to 1..500
};
BOOST_DESCRIBE_STRUCT(ListItemsRequest, (), (user_id, q, status, cursor, limit))

struct Item {
  std::int64_t id = 0;
  std::string created_at;
  std::string status;
  std::string title;
  double score = 0;
  bool unread = false;
};
BOOST_DESCRIBE_STRUCT(Item, (), (id, created_at, status, title, score, unread))

struct StatusCounts {
  std::int64_t open = 0;
  std::int64_t closed = 0;
};
BOOST_DESCRIBE_STRUCT(StatusCounts, (), (open, closed))

struct ListItemsResponse {
  std::vector<Item> items;
  std::optional<std::string> next_cursor;
  StatusCounts counts;
};
BOOST_DESCRIBE_STRUCT(ListItemsResponse, (), (items, next_cursor, counts))

struct ComputeRequest {
  std::vector<double> values;
  std::optional<double> scale;   // default 1.0
  std::optional<double> offset;  // default 0.0
};
BOOST_DESCRIBE_STRUCT(ComputeRequest, (), (values, scale, offset))

struct ComputeResponse {
  std::int64_t count = 0;
  double sum = 0;
  std::vector<double> scaled;
};
BOOST_DESCRIBE_STRUCT(ComputeResponse, (), (count, sum, scaled))

}  // namespace molt_worker
