#pragma once
// What a caller's statement may not do on a pooled PostgreSQL connection: change the session
// that later calls share (SET, RESET, LISTEN, PREPARE, DISCARD, ...), or the transactions
// molt::db runs around each call (BEGIN, COMMIT, SAVEPOINT, ...). Refused by the statement's
// first keyword, before it is sent. Internal to molt::db; nothing here talks to a server.

#include <string_view>

namespace molt::db::pg {

// Why `sql` is refused, or nullptr. Leading blanks, comments (`--`, nested `/* */`) and
// empty statements (`;`) are skipped. `SET LOCAL`, `SET TRANSACTION` and `SET CONSTRAINTS`
// end with the transaction they are in and are allowed, except that outside a transaction of
// the API (`in_transaction` false) nothing may change the transaction's mode
// (`SET TRANSACTION`, `SET LOCAL transaction_read_only`, ...): the call reads only because
// its transaction does.
const char* session_statement_refusal(std::string_view sql, bool in_transaction);

// Why a read (query(), a batch, query_in_parts) may not run `sql`, or nullptr: a DO block or
// a CALL, whose body may commit the read-only transaction the read runs in and go on writing
// in a new one, or replace the session's prepared statements.
const char* read_refusal(std::string_view sql);

// True when `sql` may change the session in ways the server does not report: a DO block or a
// CALL (whatever runs inside), or set_config() anywhere in it (a word in a literal counts too:
// the answer errs towards true). The connection is then closed when the call ends instead of
// going back to the pool.
bool may_change_session(std::string_view sql);

// False when `sql` cannot give rows by its form: it begins with INSERT, UPDATE, DELETE, MERGE
// or a definition (CREATE, ALTER, DROP, TRUNCATE) and has no RETURNING anywhere (a word in a
// literal or a name counts too: the answer errs towards true). Everything else may.
bool may_return_rows(std::string_view sql);

}  // namespace molt::db::pg
