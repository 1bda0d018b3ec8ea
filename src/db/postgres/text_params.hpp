#pragma once
// Parameters encoded for PQsendQueryParams: a type OID, the value as text (or raw bytes
// for bytea, sent in binary format so no escaping is needed), or none for NULL.
// Internal to molt::db; nothing here talks to a server.

#include <cstdint>
#include <optional>
#include <string>

#include "molt/db/value.hpp"
#include "pg_types.hpp"

namespace molt::db::pg {

struct EncodedParam {
  std::uint32_t oid = kUnspecified;  // 0 lets the server infer the type from the SQL
  std::optional<std::string> text;   // nullopt: SQL NULL
  bool binary = false;               // text holds raw bytes in binary format (bytea)
};

// bool -> "t"/"f" (bool); int -> decimal (int8); double -> shortest round-trip text with
// NaN/Infinity/-Infinity (float8); text as is (text); Bytes -> raw bytes, binary (bytea).
// A null takes the OID of its null_type, ValueType::Null none. Text with a NUL byte throws
// core::SqlError: PostgreSQL text cannot hold one; so does an Array (arrays come out of
// queries only).
EncodedParam encode_param(const Param& param);

}  // namespace molt::db::pg
