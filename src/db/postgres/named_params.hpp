#pragma once
// Named parameters (`:name`, the spelling both backends accept in molt::db) turned into the
// `$1..$n` placeholders PostgreSQL understands, and the values put in the matching order.
// Internal to molt::db; nothing here talks to a server.

#include <string>
#include <string_view>
#include <vector>

#include "molt/db/value.hpp"

namespace molt::db::pg {

struct RewrittenSql {
  std::string sql;                 // `:name` replaced by `$k`
  std::vector<std::string> names;  // names[k - 1] is the name behind `$k`
  std::size_t highest_number = 0;  // the largest n of a `$n` the caller wrote
};

// Replaces every `:name` outside string literals, quoted identifiers, dollar-quoted bodies
// and comments by `$k`, the same name always getting the same k (numbered by first use).
// `::` casts and array slices (`a[1:2]`) are left alone. Throws core::SqlError when
// the SQL also uses `$n` placeholders. Unterminated quotes and comments are copied as they
// are: the server reports the syntax error better than we could.
RewrittenSql rewrite_named_params(std::string_view sql);

// The values of `params` in `$k` order for SQL rewritten above. Throws core::SqlError
// for a name without a value, a value whose name the SQL does not use, a name given twice,
// or positional values for SQL that names its parameters. SQL without names takes
// positional values in order, as many as its highest `$n` asks for.
std::vector<Param> order_named_params(const RewrittenSql& rewritten, const Params& params);

}  // namespace molt::db::pg
