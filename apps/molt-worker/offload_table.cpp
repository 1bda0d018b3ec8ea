// offload_table (json -> json): a table-shaped computation over rows sent in the request.
//
// Input:  {"rows": [{...}, ...],            objects with scalar values
//          "group_by": "status",            optional; one group per distinct value
//          "value": "score",                optional; numeric column to aggregate
//          "where": {"column": "unread", "op": "eq", "value": true}}   optional filter,
//                                           op one of eq, ne, lt, le, gt, ge, contains
// Output: {"row_count": N, "matched": M,
//          "groups": [{"key": "open", "count": c, "sum": s, "mean": m, "min": a, "max": b}]}
// Groups are ordered by key (numbers before strings); sum/mean/min/max appear with "value".

#include <boost/json.hpp>
#include <map>
#include <variant>

#include "molt/codec/json.hpp"
#include "molt/worker/export_registry.hpp"

namespace molt_worker {
namespace {

namespace json = boost::json;
using molt::core::InvalidInput;

struct Filter {
  std::string column;
  std::string op;
  json::value value;
};
BOOST_DESCRIBE_STRUCT(Filter, (), (column, op, value))

struct TableRequest {
  std::vector<json::value> rows;
  std::optional<std::string> group_by;
  std::optional<std::string> value;
  std::optional<Filter> where;
};
BOOST_DESCRIBE_STRUCT(TableRequest, (), (rows, group_by, value, where))

struct Group {
  json::value key;
  std::int64_t count = 0;
  std::optional<double> sum, mean, min, max;
};
BOOST_DESCRIBE_STRUCT(Group, (), (key, count, sum, mean, min, max))

struct TableResponse {
  std::int64_t row_count = 0;
  std::int64_t matched = 0;
  std::vector<Group> groups;
};
BOOST_DESCRIBE_STRUCT(TableResponse, (), (row_count, matched, groups))

std::optional<double> as_number(const json::value& v) {
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  if (v.is_double()) return v.get_double();
  return std::nullopt;
}

// Orders scalar keys: null < bool < number < string.
using Key = std::variant<std::monostate, bool, double, std::string>;
Key key_of(const json::value& v, std::size_t row) {
  if (v.is_null()) return std::monostate{};
  if (v.is_bool()) return v.get_bool();
  if (auto n = as_number(v)) return *n;
  if (v.is_string()) return std::string(v.get_string());
  throw InvalidInput("payload.rows[" + std::to_string(row) + "]: group_by column must be scalar");
}

bool matches(const json::value& cell, const Filter& f) {
  if (f.op == "eq")
    return cell == f.value ||
           (as_number(cell) && as_number(f.value) && *as_number(cell) == *as_number(f.value));
  if (f.op == "ne") return !matches(cell, {f.column, "eq", f.value});
  if (f.op == "contains")
    return cell.is_string() && f.value.is_string() &&
           std::string_view(cell.get_string()).find(std::string_view(f.value.get_string())) !=
               std::string_view::npos;
  const auto a = as_number(cell), b = as_number(f.value);
  if (!a || !b) return false;
  if (f.op == "lt") return *a < *b;
  if (f.op == "le") return *a <= *b;
  if (f.op == "gt") return *a > *b;
  return *a >= *b;  // "ge", validated before
}

TableResponse offload_table(const TableRequest& req, molt::worker::ExportContext& ctx) {
  if (req.where) {
    static constexpr std::string_view kOps[] = {"eq", "ne", "lt", "le", "gt", "ge", "contains"};
    if (std::find(std::begin(kOps), std::end(kOps), req.where->op) == std::end(kOps))
      throw InvalidInput(
          "payload.where.op: expected one of eq, ne, lt, le, gt, ge, contains, got '" +
          req.where->op + "'");
  }
  std::map<Key, Group> groups;
  TableResponse out;
  out.row_count = static_cast<std::int64_t>(req.rows.size());
  static const json::value kNull;
  for (std::size_t i = 0; i < req.rows.size(); ++i) {
    if (i % 4096 == 0) ctx.check();
    const json::value& row = req.rows[i];
    if (!row.is_object())
      throw InvalidInput("payload.rows[" + std::to_string(i) + "]: expected object, got " +
                         std::string(molt::codec::json_kind(row)));
    const auto& obj = row.get_object();
    auto cell = [&](const std::string& column) -> const json::value& {
      const json::value* v = obj.if_contains(column);
      return v ? *v : kNull;
    };
    if (req.where && !matches(cell(req.where->column), *req.where)) continue;
    ++out.matched;
    const json::value& key = req.group_by ? cell(*req.group_by) : kNull;
    Group& g = groups[key_of(key, i)];
    if (g.count == 0) g.key = key;
    ++g.count;
    if (req.value) {
      const auto n = as_number(cell(*req.value));
      if (!n)
        throw InvalidInput("payload.rows[" + std::to_string(i) + "]." + *req.value +
                           ": expected number");
      g.sum = g.sum.value_or(0) + *n;
      g.min = g.min ? std::min(*g.min, *n) : *n;
      g.max = g.max ? std::max(*g.max, *n) : *n;
    }
  }
  for (auto& [k, g] : groups) {
    if (g.sum) g.mean = *g.sum / static_cast<double>(g.count);
    out.groups.push_back(std::move(g));
  }
  return out;
}

}  // namespace
}  // namespace molt_worker

void molt_register_offload_table(molt::worker::ExportRegistry& registry) {
  registry.add<molt_worker::TableRequest, molt_worker::TableResponse>(
      "offload_table", molt::ipc::Codec::Json, molt::ipc::Codec::Json, &molt_worker::offload_table);
}
