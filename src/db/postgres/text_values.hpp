#pragma once
// Result cells in PostgreSQL's text format turned into molt::db Values, chosen by the
// column's type OID (see pg_types.hpp), and the parser for one-dimensional array literals.
// Internal to molt::db; nothing here talks to a server.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "molt/db/value.hpp"
#include "pg_types.hpp"

namespace molt::db::pg {

// One cell: `data`/`length` as the server sent them (not NUL-terminated), `is_null` for SQL
// NULL, which is never the same as empty text. bool -> bool; int2/int4/int8/oid -> int64;
// float4/float8 -> double (NaN, Infinity, -Infinity included); bytea (hex format) -> Bytes;
// numeric stays text so no digit is lost; a one-dimensional array of a type known to
// array_element_oid() -> Array, its elements decoded by these same rules; every other type,
// known or not, is the text the server sent. Text the type cannot have is
// core::Error(InternalError) naming OID and text; an array with more than one dimension or
// explicit bounds is core::SqlError (cast it to text to read it).
Value decode_text_cell(std::uint32_t oid, const char* data, int length, bool is_null);

// The elements of a one-dimensional array literal such as `{1,NULL,"a b"}`: an unquoted
// NULL is a null element, a quoted "NULL" the text. nullopt for a literal this parser does
// not take: more than one dimension, explicit bounds (`[0:1]={...}`), or malformed text.
std::optional<std::vector<std::optional<std::string>>> parse_text_array(std::string_view literal);

// The element type of a known array type (1007 int4[] -> 23 int4); nullopt otherwise.
std::optional<std::uint32_t> array_element_oid(std::uint32_t array_oid) noexcept;

}  // namespace molt::db::pg
