// db_query / db_exec (DESIGN.md §5): SQL with bound parameters against the configured database.
//
// Request (MsgPack): {db_alias?: "default", sql: str,
//   params?: {mode: "positional"|"named", values: [...]}, max_rows?: int,
//   result_format?: "msgpack"|"json"|"arrow_ipc", allow_write?: bool, tag?: str}
// A positional value is a bool, int, float, str or bin, or {type, value} (type one of bool,
// int, float, str, bytes), which is how a null says what it stands for: a bare null is refused.
// A named value is {name, value, type?}; names bind by name, each exactly once.
// db_query answers {columns, rows, row_count}; db_exec answers {rows_affected, last_insert_id?}.
// result_format json answers the same shape as JSON (codec json), bytes as base64 strings.
// A PostgreSQL array cell is an array of its elements in either format.

#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <optional>
#include <set>

#include "molt/codec/base64.hpp"
#include "molt/codec/json.hpp"
#include "molt/codec/msgpack.hpp"
#include "molt/worker/export_registry.hpp"
#include "settings.hpp"

namespace molt_worker {
namespace {

using molt::codec::DecodeError;
using molt::codec::PathSegment;
using molt::core::InvalidInput;
using molt::db::Param;
using molt::db::Params;
using molt::db::ValueType;

enum class ResultFormat { MsgPack, Json };

struct DbRequest {
  std::string sql;
  Params params;
  std::size_t max_rows = 0;
  ResultFormat format = ResultFormat::MsgPack;
  bool allow_write = false;
  std::string tag;
};

using molt::codec::MsgPackReader;
using molt::codec::MsgPackValue;
using Kind = MsgPackValue::Kind;

// Where the values of a map's fields are: for each of `names`, a reader placed at its value
// (the last one when a key repeats), or nothing when it is missing or null. Everything in the
// map is read past, so `reader` ends after it.
template <std::size_t N>
std::array<std::optional<MsgPackReader>, N> locate(MsgPackReader& reader, const MsgPackValue& map,
                                                   const std::array<std::string_view, N>& names,
                                                   int depth) {
  std::array<std::optional<MsgPackReader>, N> found;
  MsgPackValue key, value;
  for (std::uint32_t i = 0; i < map.count; ++i) {
    reader.read(key);
    reader.skip_inside(key, depth + 1);
    const MsgPackReader value_at = reader;
    reader.read(value);
    reader.skip_inside(value, depth + 1);
    for (std::size_t j = 0; j < N; ++j)
      if (key.is_text() && key.bytes == names[j])
        found[j] = value.kind == Kind::Nil ? std::nullopt : std::optional(value_at);
  }
  return found;
}

template <class T>
T decode_at(MsgPackReader reader, const PathSegment& at, int depth) {
  T out{};
  molt::codec::from_msgpack(reader, out, at, depth);
  return out;
}

// A plain value (bool, int, float, str, bin); null and containers are refused here.
Param plain_value(const MsgPackValue& v, const PathSegment& at) {
  switch (v.kind) {
    case Kind::Bool:
      return {v.boolean};
    case Kind::UInt:
      if (v.uint > static_cast<std::uint64_t>(INT64_MAX))
        throw DecodeError(at, "a 64-bit signed integer", "a larger integer");
      return {static_cast<std::int64_t>(v.uint)};
    case Kind::NegInt:
      return {v.sint};
    case Kind::Float:
      return {v.real};
    case Kind::Str:
      return {std::string(molt::codec::msgpack_text(v, at))};
    case Kind::Bin:
      return {molt::db::Bytes{std::string(v.bytes)}};
    case Kind::Nil:
      throw DecodeError(at, "a typed null ({type, value: null})", "a bare null");
    default:
      throw DecodeError(at, "null, bool, int, float, str or bytes", v.kind_name());
  }
}

Param plain_value_at(MsgPackReader reader, const PathSegment& at) {
  MsgPackValue v;
  reader.read(v);
  return plain_value(v, at);
}

// {type, value}: the value must be of that type, or null.
Param typed_value(const std::optional<MsgPackReader>& type_at,
                  const std::optional<MsgPackReader>& value_at, const PathSegment& at, int depth) {
  if (!type_at)
    throw DecodeError(at.field("type"), "one of bool, int, float, str, bytes", "nothing");
  const auto type_name = decode_at<std::string>(*type_at, at.field("type"), depth);
  const auto type = molt::db::parse_value_type(type_name);
  if (!type)
    throw DecodeError(at.field("type"), "one of bool, int, float, str, bytes",
                      "\"" + type_name + "\"");
  if (!value_at) return Param::null(*type);
  Param p = plain_value_at(*value_at, at.field("value"));
  const ValueType got = molt::db::type_of(p.value);
  if (got != *type && !(*type == ValueType::Float && got == ValueType::Int))
    throw DecodeError(at.field("value"), type_name, std::string(molt::db::to_string(got)));
  if (*type == ValueType::Float && got == ValueType::Int)
    p.value = static_cast<double>(std::get<std::int64_t>(p.value));
  return p;
}

// One positional value: plain, or {type, value}.
Param positional_value(MsgPackReader& reader, const PathSegment& at, int depth) {
  MsgPackValue v;
  reader.read(v);
  if (v.kind != Kind::Map) return plain_value(v, at);
  const auto [type, value] = locate<2>(reader, v, {"type", "value"}, depth);
  return typed_value(type, value, at, depth);
}

// One named value: {name, value, type?}.
Param named_value(MsgPackReader& reader, const PathSegment& at, std::string& name, int depth) {
  MsgPackValue v;
  reader.read(v);
  if (v.kind != Kind::Map) throw DecodeError(at, "{name, value, type?}", v.kind_name());
  const auto [name_at, type, value] = locate<3>(reader, v, {"name", "type", "value"}, depth);
  if (!name_at) throw DecodeError(at.field("name"), "string", "nothing");
  name = decode_at<std::string>(*name_at, at.field("name"), depth);
  if (type) return typed_value(type, value, at, depth);
  if (!value) throw DecodeError(at.field("value"), "a value or a type", "nothing");
  return plain_value_at(*value, at.field("value"));
}

Params read_params(MsgPackReader reader, const PathSegment& at, int depth) {
  MsgPackValue map;
  reader.read(map);
  if (map.kind != Kind::Map) throw DecodeError(at, "object", map.kind_name());
  const auto [mode_at, values_at] = locate<2>(reader, map, {"mode", "values"}, depth);
  const std::string mode =
      mode_at ? decode_at<std::string>(*mode_at, at.field("mode"), depth) : "positional";
  if (mode != "positional" && mode != "named")
    throw DecodeError(at.field("mode"), "\"positional\" or \"named\"", "\"" + mode + "\"");
  Params params;
  if (!values_at) return params;
  MsgPackReader values = *values_at;
  MsgPackValue array;
  values.read(array);
  const PathSegment values_path = at.field("values");
  if (array.kind != Kind::Array) throw DecodeError(values_path, "array", array.kind_name());
  std::set<std::string, std::less<>> seen;
  for (std::uint32_t i = 0; i < array.count; ++i) {
    const PathSegment here = values_path.element(i);
    if (mode == "positional") {
      params.values.push_back(positional_value(values, here, depth + 2));
      continue;
    }
    std::string name;
    params.values.push_back(named_value(values, here, name, depth + 2));
    if (!seen.insert(name).second)
      throw InvalidInput(here.render() + ": the name '" + name + "' is given twice");
    params.names.push_back(std::move(name));
  }
  if (mode == "named" && params.values.empty()) params.names.clear();
  return params;
}

DbRequest read_request(std::string_view payload) {
  MsgPackReader reader(payload);
  MsgPackValue root;
  reader.read(root);
  const PathSegment& at = molt::codec::kRootPath;
  if (root.kind != Kind::Map) throw DecodeError(at, "object", root.kind_name());
  const auto [alias, sql, params, max_rows, result_format, allow_write, tag] = locate<7>(
      reader, root,
      {"db_alias", "sql", "params", "max_rows", "result_format", "allow_write", "tag"}, 0);
  reader.expect_end();
  DbRequest r;
  if (alias) {
    const auto name = decode_at<std::string>(*alias, at.field("db_alias"), 1);
    if (name != "default")
      throw InvalidInput("payload.db_alias: unknown database '" + name + "' (only 'default')");
  }
  if (!sql) throw DecodeError(at.field("sql"), "string", "nothing (the field is required)");
  r.sql = decode_at<std::string>(*sql, at.field("sql"), 1);
  if (params) r.params = read_params(*params, at.field("params"), 1);
  const auto limit = static_cast<std::size_t>(db_settings().max_rows);
  r.max_rows = limit;
  if (max_rows) {
    const auto asked = decode_at<std::int64_t>(*max_rows, at.field("max_rows"), 1);
    if (asked < 1) throw InvalidInput("payload.max_rows: must be at least 1");
    r.max_rows = std::min(limit, static_cast<std::size_t>(asked));
  }
  if (result_format) {
    const auto format = decode_at<std::string>(*result_format, at.field("result_format"), 1);
    if (format == "json")
      r.format = ResultFormat::Json;
    else if (format == "arrow_ipc")
      throw InvalidInput(
          "payload.result_format: arrow_ipc is not supported yet (use msgpack or json)");
    else if (format != "msgpack")
      throw DecodeError(at.field("result_format"), "\"msgpack\" or \"json\"", "\"" + format + "\"");
  }
  if (allow_write) r.allow_write = decode_at<bool>(*allow_write, at.field("allow_write"), 1);
  if (tag) r.tag = decode_at<std::string>(*tag, at.field("tag"), 1);
  return r;
}

molt::db::Database& database() {
  const auto& db = configured_database();
  if (!db)
    throw InvalidInput(
        "no database is configured (set MOLT_DB_SQLITE_PATH or MOLT_DB_POSTGRES_DSN)");
  return *db;
}

molt::db::QueryOptions options_for(const DbRequest& r, molt::worker::ExportContext& ctx) {
  molt::db::QueryOptions o;
  o.deadline = ctx.deadline();
  o.cancel = ctx.token();
  o.max_rows = r.max_rows;
  o.max_bytes = ctx.max_answer_bytes();  // a larger result could not be sent anyway
  return o;
}

void add_db_metrics(molt::worker::ExportContext& ctx, const DbRequest& r,
                    std::chrono::steady_clock::time_point started, std::int64_t rows) {
  ctx.add_metric("db_us",
                 static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                               std::chrono::steady_clock::now() - started)
                                               .count()));
  ctx.add_metric("db_rows", rows);
  ctx.add_metric(
      "db_backend",
      std::string(database().backend() == molt::db::Backend::Sqlite ? "sqlite" : "postgres"));
  if (!r.tag.empty()) ctx.add_metric("db_tag", r.tag);
}

// A cell or an array element; an array is a MsgPack array of its elements.
template <class Cell>
void pack_cell(molt::codec::Packer& p, const Cell& v) {
  std::visit(
      [&](const auto& x) {
        using X = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<X, std::nullptr_t>)
          p.pack_nil();
        else if constexpr (std::is_same_v<X, molt::db::Bytes>) {
          p.pack_bin(static_cast<std::uint32_t>(x.data.size()));
          p.pack_bin_body(x.data.data(), static_cast<std::uint32_t>(x.data.size()));
        } else if constexpr (std::is_same_v<X, molt::db::Array>) {
          p.pack_array(static_cast<std::uint32_t>(x.elements.size()));
          for (const auto& element : x.elements) pack_cell(p, element);
        } else
          molt::codec::pack(p, x);
      },
      v);
}

// A cell or an array element; an array is a JSON array of its elements.
template <class Cell>
void write_cell_json(std::string& out, const Cell& v) {
  std::visit(
      [&](const auto& x) {
        using X = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<X, std::nullptr_t>)
          out += "null";
        else if constexpr (std::is_same_v<X, molt::db::Bytes>) {
          out += '"';
          molt::codec::append_base64(out, x.data);
          out += '"';
        } else if constexpr (std::is_same_v<X, molt::db::Array>) {
          out += '[';
          for (std::size_t i = 0; i < x.elements.size(); ++i) {
            if (i) out += ',';
            write_cell_json(out, x.elements[i]);
          }
          out += ']';
        } else
          molt::codec::write_json(out, x);
      },
      v);
}

// Row `r` of `rows` as a JSON array.
void write_row_json(std::string& out, const molt::db::Rows& rows, std::size_t r) {
  out += '[';
  for (std::size_t c = 0; c < rows.columns().size(); ++c) {
    if (c) out += ',';
    write_cell_json(out, rows.at(r, c));
  }
  out += ']';
}

// Row `r` of `rows` as a MsgPack array.
void pack_row(molt::codec::Packer& p, const molt::db::Rows& rows, std::size_t r) {
  const std::size_t width = rows.columns().size();
  p.pack_array(static_cast<std::uint32_t>(width));
  for (std::size_t c = 0; c < width; ++c) pack_cell(p, rows.at(r, c));
}

// "columns":[...],"rows":[[...],...] of a JSON object.
void write_rows_json(std::string& out, const molt::db::Rows& rows) {
  out += "\"columns\":";
  molt::codec::write_json(out, rows.columns());
  out += ",\"rows\":[";
  for (std::size_t r = 0; r < rows.size(); ++r) {
    if (r) out += ',';
    write_row_json(out, rows, r);
  }
  out += ']';
}

// The "columns" and "rows" entries of a MsgPack map.
void pack_rows(molt::codec::Packer& p, const molt::db::Rows& rows) {
  molt::codec::pack(p, std::string_view("columns"));
  molt::codec::pack(p, rows.columns());
  molt::codec::pack(p, std::string_view("rows"));
  p.pack_array(static_cast<std::uint32_t>(rows.size()));
  for (std::size_t r = 0; r < rows.size(); ++r) pack_row(p, rows, r);
}

// {rows_affected, last_insert_id?, columns?, rows?}: the last two when a RETURNING clause gave
// columns.
std::string encode_exec(const molt::db::ExecResult& result, ResultFormat format) {
  std::string out;
  const bool returning = !result.returned.columns().empty();
  if (format == ResultFormat::Json) {
    out = "{\"rows_affected\":";
    molt::codec::append_integer(out, result.rows_affected);
    if (result.last_insert_id) {
      out += ",\"last_insert_id\":";
      molt::codec::append_integer(out, *result.last_insert_id);
    }
    if (returning) {
      out += ',';
      write_rows_json(out, result.returned);
    }
    out += '}';
    return out;
  }
  molt::codec::StringSink sink{out};
  molt::codec::Packer p(sink);
  p.pack_map(1 + (result.last_insert_id ? 1 : 0) + (returning ? 2 : 0));
  molt::codec::pack(p, std::string_view("rows_affected"));
  p.pack_int64(result.rows_affected);
  if (result.last_insert_id) {
    molt::codec::pack(p, std::string_view("last_insert_id"));
    p.pack_int64(*result.last_insert_id);
  }
  if (returning) pack_rows(p, result.returned);
  return out;
}

// db_query's answer, {columns, rows, row_count}, written part by part as the result is read
// (Database::query_in_parts): the worker holds the answer and one part of the result, never the
// whole result as Values besides. Past the most an answer may carry, it stops there.
class ResultWriter {
 public:
  ResultWriter(ResultFormat format, std::size_t max_bytes) : format_(format), max_(max_bytes) {}

  void add(const molt::db::Rows& part) {
    if (!started_) start(part.columns());
    molt::codec::StringSink sink{out_};
    molt::codec::Packer p(sink);
    for (std::size_t r = 0; r < part.size(); ++r, ++rows_) {
      if (format_ == ResultFormat::MsgPack) {
        pack_row(p, part, r);
      } else {
        if (rows_) out_ += ',';
        write_row_json(out_, part, r);
      }
    }
    check_size();
  }

  std::int64_t rows() const { return static_cast<std::int64_t>(rows_); }

  std::string finish() {
    if (!started_) start({});
    if (format_ == ResultFormat::Json) {
      out_ += "],\"row_count\":";
      molt::codec::append_integer(out_, rows());
      out_ += '}';
    } else {
      put_rows_header();
      molt::codec::StringSink sink{out_};
      molt::codec::Packer p(sink);
      molt::codec::pack(p, std::string_view("row_count"));
      p.pack_int64(rows());
    }
    check_size();
    return std::move(out_);
  }

 private:
  // MsgPack needs the rows' count before them: room for the largest header (array 32) is kept,
  // and a smaller count's header takes less of it once the count is known (as pack_array
  // would have written it).
  static constexpr std::size_t kRowsHeaderRoom = 5;

  void start(const std::vector<std::string>& columns) {
    started_ = true;
    if (format_ == ResultFormat::Json) {
      out_ = "{\"columns\":";
      molt::codec::write_json(out_, columns);
      out_ += ",\"rows\":[";
      return;
    }
    molt::codec::StringSink sink{out_};
    molt::codec::Packer p(sink);
    p.pack_map(3);
    molt::codec::pack(p, std::string_view("columns"));
    molt::codec::pack(p, columns);
    molt::codec::pack(p, std::string_view("rows"));
    rows_header_at_ = out_.size();
    out_.append(kRowsHeaderRoom, '\0');
  }

  void put_rows_header() {
    std::string header;
    molt::codec::StringSink sink{header};
    molt::codec::Packer p(sink);
    p.pack_array(static_cast<std::uint32_t>(rows_));
    std::memcpy(out_.data() + rows_header_at_ + kRowsHeaderRoom - header.size(), header.data(),
                header.size());
    out_.erase(rows_header_at_, kRowsHeaderRoom - header.size());
  }

  // The cells fitted (QueryOptions::max_bytes), their encoding may not (JSON escapes, base64,
  // MsgPack headers): still the query's result, too large to carry.
  void check_size() const {
    if (max_ != 0 && out_.size() > max_)
      throw InvalidInput("the result passes " + std::to_string(max_) +
                         " bytes encoded, the most an answer may carry: ask for fewer rows or "
                         "columns");
  }

  ResultFormat format_;
  std::size_t max_;
  bool started_ = false;
  std::size_t rows_ = 0;
  std::size_t rows_header_at_ = 0;
  std::string out_;
};

std::string db_query(std::string_view payload, molt::worker::ExportContext& ctx) {
  const DbRequest r = read_request(payload);
  const auto started = std::chrono::steady_clock::now();
  ResultWriter writer(r.format, ctx.max_answer_bytes());
  database().query_in_parts(r.sql, r.params, options_for(r, ctx),
                            [&writer](const molt::db::Rows& part) { writer.add(part); });
  add_db_metrics(ctx, r, started, writer.rows());
  if (r.format == ResultFormat::Json) ctx.set_codec_out(molt::ipc::Codec::Json);
  return writer.finish();
}

std::string db_exec(std::string_view payload, molt::worker::ExportContext& ctx) {
  const DbRequest r = read_request(payload);
  if (!r.allow_write)
    throw InvalidInput("db_exec changes data only with allow_write=true in the payload");
  const auto started = std::chrono::steady_clock::now();
  const molt::db::ExecResult result = database().execute(r.sql, r.params, options_for(r, ctx));
  add_db_metrics(ctx, r, started, result.rows_affected);
  if (r.format == ResultFormat::Json) ctx.set_codec_out(molt::ipc::Codec::Json);
  return encode_exec(result, r.format);
}

}  // namespace
}  // namespace molt_worker

void molt_register_db_entries(molt::worker::ExportRegistry& registry) {
  registry.add_raw("db_query", molt::ipc::Codec::MsgPack, molt::ipc::Codec::MsgPack,
                   &molt_worker::db_query);
  registry.add_raw("db_exec", molt::ipc::Codec::MsgPack, molt::ipc::Codec::MsgPack,
                   &molt_worker::db_exec);
}
