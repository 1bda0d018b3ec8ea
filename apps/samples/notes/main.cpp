// notes: the smallest whole service on molt::web, the skeleton docs/web.md starts from.
// A SQLite table of notes behind three typed handlers, JSON in and out with declared limits,
// an admin route behind a bearer token (a dependency) in a group with its own middleware, the
// database on a blocking pool, its OpenAPI document at /openapi.json (and /docs), and a
// graceful stop on SIGTERM or SIGINT.
//
//   notes [--port 8081] [--db notes.sqlite3]
//   curl -X POST localhost:8081/notes -H 'Content-Type: application/json' -d '{"text": "hi"}'
//   curl localhost:8081/notes/1
//   curl -X DELETE localhost:8081/admin/notes -H 'Authorization: Bearer let-me-in'
#include <CLI/CLI.hpp>
#include <boost/describe.hpp>
#include <cstdio>
#include <optional>
#include <string>

#include "molt/db/sqlite.hpp"
#include "molt/web/blocking.hpp"
#include "molt/web/middleware.hpp"
#include "molt/web/openapi.hpp"
#include "molt/web/server.hpp"
#include "molt/web/typed_handler.hpp"

namespace {

using boost::asio::awaitable;
using molt::web::Body;
using molt::web::Ctx;
using molt::web::Path;
using molt::web::Request;
using molt::web::Response;
using molt::web::RouteDoc;
using molt::web::State;
using molt::web::Status;

struct NewNote {
  std::string text;
  bool pinned = false;
};
BOOST_DESCRIBE_STRUCT(NewNote, (), (text, pinned))
MOLT_DEFAULTS(NewNote, pinned)  // a body may leave `pinned` out; `text` is required
MOLT_RULES(NewNote, rule(&NewNote::text, length(1, 1000)))  // else a 400 naming body.text

struct Note {
  std::int64_t id;
  std::string text;
  bool pinned;
};
BOOST_DESCRIBE_STRUCT(Note, (), (id, text, pinned))

// What every handler shares, set once as app state: the database and the pool that runs it.
struct Notes {
  std::shared_ptr<molt::db::Database> db;
  molt::core::BlockingPool* pool;
};

// Typed handlers (typed_handler.hpp): the parameters say what is read (a 400 names what does
// not fit, before the handler runs), the return type what is answered, and both go into the
// OpenAPI document.
awaitable<Status<201, Note>> add_note(Body<NewNote> note, State<Notes> notes) {
  const auto id = co_await molt::web::run_blocking(*notes->pool, [&] {
    return notes->db
        ->execute("INSERT INTO notes(text, pinned) VALUES (?, ?)",
                  molt::db::Params::positional({{note->text}, {note->pinned}}), {})
        .last_insert_id.value_or(0);
  });
  co_return Status<201, Note>{{id, note->text, note->pinned}};
}

awaitable<Note> get_note(Path<"id", std::int64_t> id, State<Notes> notes, Ctx& ctx) {
  molt::db::QueryOptions call;
  call.cancel = ctx.token();  // a client that leaves stops the query
  const auto rows = co_await molt::web::run_blocking(*notes->pool, [&] {
    return notes->db->query("SELECT id, text, pinned FROM notes WHERE id = ?",
                            molt::db::Params::positional({{*id}}), call);
  });
  if (rows.empty()) throw molt::web::HttpError(404, "not_found", "no such note");
  co_return Note{rows.get<std::int64_t>(0, "id"), rows.get<std::string>(0, "text"),
                 rows.get<std::int64_t>(0, "pinned") != 0};
}

// The admin, by a bearer token: a dependency of the sample's own, which the admin routes name.
// Its doc (the bearer scheme, the 401 and 403) goes into theirs.
struct Admin {
  static Admin from_request(const Request& request, Ctx& ctx) {
    if (molt::web::BearerToken::from_request(request, ctx).token != "let-me-in")
      throw molt::web::HttpError(403, "forbidden", "this token is not the admin's");
    return {};
  }
  static void describe(RouteDoc& doc) {
    molt::web::BearerToken::describe(doc);
    doc.error(403, "Not the admin's token");
  }
};

awaitable<void> clear_notes(Admin, State<Notes> notes) {  // nothing to say: a 204
  co_await molt::web::run_blocking(*notes->pool,
                                   [&] { return notes->db->execute("DELETE FROM notes", {}, {}); });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"notes: the smallest molt::web service"};
  molt::web::ServerOptions options;
  options.port = 8081;
  std::string path = "notes.sqlite3";
  cli.add_option("--port", options.port)->capture_default_str();
  cli.add_option("--db", path)->capture_default_str();
  CLI11_PARSE(cli, argc, argv);
  try {
    auto db = molt::db::open_sqlite({.path = path, .read_write = true, .create = true});
    db->execute(
        "CREATE TABLE IF NOT EXISTS notes(id INTEGER PRIMARY KEY, text TEXT NOT NULL, "
        "pinned INTEGER NOT NULL)",
        {}, {});
    molt::web::Server::block_stop_signals();  // before any thread starts: see server.hpp
    molt::core::BlockingPool pool(4, 64);     // 4 threads, 64 queued calls, then 503

    molt::web::App app;
    app.set_state(Notes{db, &pool});
    app.use(molt::web::request_id());
    app.use(molt::web::access_log());
    // A doc adds words to what the handlers' signatures declare.
    app.post("/notes", add_note, "notes.add", {.doc = RouteDoc("Add a note")});
    app.get("/notes/{id:int}", get_note, "notes.get",
            {.doc = RouteDoc("One note").error(404, "No such note")});
    auto admin = app.group("/admin");
    // The group's own middleware: no cache keeps an admin's answer.
    admin.use([](const Request&, Ctx&, molt::web::Next next) -> awaitable<Response> {
      Response answer = co_await next();
      answer.set_header("Cache-Control", "no-store");
      co_return answer;
    });
    admin.del("/notes", clear_notes, "notes.clear", {.doc = RouteDoc("Remove every note")});
    molt::web::serve_openapi(app, {.title = "notes", .version = "1.0.0"});

    molt::web::Server server(app, options);
    server.start();
    std::fprintf(stderr, "notes: serving http://127.0.0.1:%u\n", unsigned(server.port()));
    server.wait_for_signal();  // SIGTERM/SIGINT: drains in-flight requests, then returns
    pool.close();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "notes: %s\n", error.what());
    return 2;
  }
  return 0;
}
