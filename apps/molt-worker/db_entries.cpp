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

#include <chrono>
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

const msgpack::object* field(const msgpack::object& map, std::string_view name) {
  const msgpack::object* found = nullptr;
  for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
    const auto& kv = map.via.map.ptr[i];
    if (kv.key.type == msgpack::type::STR &&
        std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == name)
      found = &kv.val;
  }
  return found && found->type != msgpack::type::NIL ? found : nullptr;
}

std::string text(const msgpack::object& o, const PathSegment& at) {
  std::string out;
  molt::codec::from_msgpack_object(o, out, at);
  return out;
}

// A plain value (bool, int, float, str, bin); null and containers are refused here.
Param plain_value(const msgpack::object& o, const PathSegment& at) {
  switch (o.type) {
    case msgpack::type::BOOLEAN:
      return {o.via.boolean};
    case msgpack::type::POSITIVE_INTEGER:
      if (o.via.u64 > static_cast<std::uint64_t>(INT64_MAX))
        throw DecodeError(at, "a 64-bit signed integer", "a larger integer");
      return {static_cast<std::int64_t>(o.via.u64)};
    case msgpack::type::NEGATIVE_INTEGER:
      return {o.via.i64};
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      return {o.via.f64};
    case msgpack::type::STR:
      return {std::string(o.via.str.ptr, o.via.str.size)};
    case msgpack::type::BIN:
      return {molt::db::Bytes{std::string(o.via.bin.ptr, o.via.bin.size)}};
    case msgpack::type::NIL:
      throw DecodeError(at, "a typed null ({type, value: null})", "a bare null");
    default:
      throw DecodeError(at, "null, bool, int, float, str or bytes", molt::codec::msgpack_kind(o));
  }
}

// {type, value}: the value must be of that type, or null.
Param typed_value(const msgpack::object& o, const PathSegment& at) {
  const msgpack::object* type_field = field(o, "type");
  if (!type_field)
    throw DecodeError(at.field("type"), "one of bool, int, float, str, bytes", "nothing");
  const std::string type_name = text(*type_field, at.field("type"));
  const auto type = molt::db::parse_value_type(type_name);
  if (!type)
    throw DecodeError(at.field("type"), "one of bool, int, float, str, bytes",
                      "\"" + type_name + "\"");
  const msgpack::object* value = field(o, "value");
  if (!value) return Param::null(*type);
  Param p = plain_value(*value, at.field("value"));
  const ValueType got = molt::db::type_of(p.value);
  if (got != *type && !(*type == ValueType::Float && got == ValueType::Int))
    throw DecodeError(at.field("value"), type_name, std::string(molt::db::to_string(got)));
  if (*type == ValueType::Float && got == ValueType::Int)
    p.value = static_cast<double>(std::get<std::int64_t>(p.value));
  return p;
}

Param param_value(const msgpack::object& o, const PathSegment& at) {
  return o.type == msgpack::type::MAP ? typed_value(o, at) : plain_value(o, at);
}

Params read_params(const msgpack::object& o, const PathSegment& at) {
  if (o.type != msgpack::type::MAP) throw DecodeError(at, "object", molt::codec::msgpack_kind(o));
  const msgpack::object* mode_field = field(o, "mode");
  const std::string mode = mode_field ? text(*mode_field, at.field("mode")) : "positional";
  if (mode != "positional" && mode != "named")
    throw DecodeError(at.field("mode"), "\"positional\" or \"named\"", "\"" + mode + "\"");
  Params params;
  const msgpack::object* values = field(o, "values");
  if (!values) return params;
  const PathSegment values_at = at.field("values");
  if (values->type != msgpack::type::ARRAY)
    throw DecodeError(values_at, "array", molt::codec::msgpack_kind(*values));
  std::set<std::string, std::less<>> seen;
  for (std::uint32_t i = 0; i < values->via.array.size; ++i) {
    const msgpack::object& v = values->via.array.ptr[i];
    const PathSegment here = values_at.element(i);
    if (mode == "positional") {
      params.values.push_back(param_value(v, here));
      continue;
    }
    if (v.type != msgpack::type::MAP)
      throw DecodeError(here, "{name, value, type?}", molt::codec::msgpack_kind(v));
    const msgpack::object* name = field(v, "name");
    if (!name) throw DecodeError(here.field("name"), "string", "nothing");
    std::string n = text(*name, here.field("name"));
    if (!seen.insert(n).second)
      throw InvalidInput(here.render() + ": the name '" + n + "' is given twice");
    params.names.push_back(std::move(n));
    params.values.push_back(
        field(v, "type") ? typed_value(v, here)
        : field(v, "value")
            ? plain_value(*field(v, "value"), here.field("value"))
            : throw DecodeError(here.field("value"), "a value or a type", "nothing"));
  }
  if (mode == "named" && params.values.empty()) params.names.clear();
  return params;
}

DbRequest read_request(std::string_view payload) {
  msgpack::zone zone;
  const msgpack::object root = molt::codec::unpack_msgpack(payload, zone);
  const PathSegment& at = molt::codec::kRootPath;
  if (root.type != msgpack::type::MAP)
    throw DecodeError(at, "object", molt::codec::msgpack_kind(root));
  DbRequest r;
  if (const auto* alias = field(root, "db_alias")) {
    const std::string name = text(*alias, at.field("db_alias"));
    if (name != "default")
      throw InvalidInput("payload.db_alias: unknown database '" + name + "' (only 'default')");
  }
  const msgpack::object* sql = field(root, "sql");
  if (!sql) throw DecodeError(at.field("sql"), "string", "nothing (the field is required)");
  r.sql = text(*sql, at.field("sql"));
  if (const auto* p = field(root, "params")) r.params = read_params(*p, at.field("params"));
  const auto limit = static_cast<std::size_t>(db_settings().max_rows);
  r.max_rows = limit;
  if (const auto* m = field(root, "max_rows")) {
    std::int64_t asked = 0;
    molt::codec::from_msgpack_object(*m, asked, at.field("max_rows"));
    if (asked < 1) throw InvalidInput("payload.max_rows: must be at least 1");
    r.max_rows = std::min(limit, static_cast<std::size_t>(asked));
  }
  if (const auto* f = field(root, "result_format")) {
    const std::string format = text(*f, at.field("result_format"));
    if (format == "json")
      r.format = ResultFormat::Json;
    else if (format == "arrow_ipc")
      throw InvalidInput(
          "payload.result_format: arrow_ipc is not supported yet (use msgpack or json)");
    else if (format != "msgpack")
      throw DecodeError(at.field("result_format"), "\"msgpack\" or \"json\"", "\"" + format + "\"");
  }
  if (const auto* w = field(root, "allow_write"))
    molt::codec::from_msgpack_object(*w, r.allow_write, at.field("allow_write"));
  if (const auto* t = field(root, "tag")) r.tag = text(*t, at.field("tag"));
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

std::string encode_rows(const molt::db::Rows& rows, ResultFormat format) {
  std::string out;
  const std::size_t width = rows.columns().size();
  if (format == ResultFormat::Json) {
    out = "{\"columns\":";
    molt::codec::write_json(out, rows.columns());
    out += ",\"rows\":[";
    for (std::size_t r = 0; r < rows.size(); ++r) {
      out += r ? ",[" : "[";
      for (std::size_t c = 0; c < width; ++c) {
        if (c) out += ',';
        write_cell_json(out, rows.at(r, c));
      }
      out += ']';
    }
    out += "],\"row_count\":";
    molt::codec::append_integer(out, static_cast<std::int64_t>(rows.size()));
    out += '}';
    return out;
  }
  molt::codec::StringSink sink{out};
  molt::codec::Packer p(sink);
  p.pack_map(3);
  molt::codec::pack(p, std::string_view("columns"));
  molt::codec::pack(p, rows.columns());
  molt::codec::pack(p, std::string_view("rows"));
  p.pack_array(static_cast<std::uint32_t>(rows.size()));
  for (std::size_t r = 0; r < rows.size(); ++r) {
    p.pack_array(static_cast<std::uint32_t>(width));
    for (std::size_t c = 0; c < width; ++c) pack_cell(p, rows.at(r, c));
  }
  molt::codec::pack(p, std::string_view("row_count"));
  p.pack_int64(static_cast<std::int64_t>(rows.size()));
  return out;
}

std::string encode_exec(const molt::db::ExecResult& result, ResultFormat format) {
  std::string out;
  if (format == ResultFormat::Json) {
    out = "{\"rows_affected\":";
    molt::codec::append_integer(out, result.rows_affected);
    if (result.last_insert_id) {
      out += ",\"last_insert_id\":";
      molt::codec::append_integer(out, *result.last_insert_id);
    }
    out += '}';
    return out;
  }
  molt::codec::StringSink sink{out};
  molt::codec::Packer p(sink);
  p.pack_map(result.last_insert_id ? 2 : 1);
  molt::codec::pack(p, std::string_view("rows_affected"));
  p.pack_int64(result.rows_affected);
  if (result.last_insert_id) {
    molt::codec::pack(p, std::string_view("last_insert_id"));
    p.pack_int64(*result.last_insert_id);
  }
  return out;
}

std::string db_query(std::string_view payload, molt::worker::ExportContext& ctx) {
  const DbRequest r = read_request(payload);
  const auto started = std::chrono::steady_clock::now();
  const molt::db::Rows rows = database().query(r.sql, r.params, options_for(r, ctx));
  add_db_metrics(ctx, r, started, static_cast<std::int64_t>(rows.size()));
  if (r.format == ResultFormat::Json) ctx.set_codec_out(molt::ipc::Codec::Json);
  return encode_rows(rows, r.format);
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
