#include "routes.hpp"

#include <boost/describe.hpp>

#include "item_import.hpp"
#include "molt/web/blocking.hpp"
#include "molt/web/openapi.hpp"
#include "molt/web/typed_handler.hpp"
#include "molt/web/websocket.hpp"

namespace molt_demo {

struct Message {
  std::string message;
};
BOOST_DESCRIBE_STRUCT(Message, (), (message))

struct Health {
  bool ok = true;
  std::string version;
  double uptime_s = 0;
  std::string database;
};
BOOST_DESCRIBE_STRUCT(Health, (), (ok, version, uptime_s, database))

struct Imported {
  std::int64_t imported = 0;
};
BOOST_DESCRIBE_STRUCT(Imported, (), (imported))

namespace {

using boost::asio::awaitable;
using molt::web::Body;
using molt::web::Ctx;
using molt::web::HttpError;
using molt::web::Path;
using molt::web::Request;
using molt::web::Response;
using molt::web::RouteDoc;
using molt::web::Status;

// ?user_id=&q=&status=&cursor=&limit= -> the list_items request; 400 naming what is wrong.
ListItemsRequest list_request(const Request& request) {
  ListItemsRequest out;
  out.user_id = molt::web::query_required<std::int64_t>(request, "user_id");
  out.q = request.query_param("q");
  out.status = request.query_param("status");
  out.cursor = request.query_param("cursor");
  out.limit = molt::web::query_as<std::int64_t>(request, "limit");
  return out;
}

// The query of list_items, for the routes that take it (the export takes no limit).
RouteDoc with_list_query(RouteDoc doc, bool limit = true) {
  doc.required_query<std::int64_t>("user_id", "whose items")
      .query<std::string>("q", "only items whose title contains this")
      .query<std::string>("status", "only items of this status (open or closed; another has none)")
      .query<std::string>("cursor", "where the previous page ended (its next_cursor)");
  if (limit) doc.query<std::int64_t>("limit", "items a page, 1 to 500 (50 when absent)");
  return doc;
}

molt::core::Deadline query_deadline(const Services& services) {
  return molt::core::Deadline::after(services.query_timeout);
}

// Stores the items gathered so far (one transaction) and empties the batch.
awaitable<std::int64_t> insert_batch(Services& services, std::vector<NewItem>& batch) {
  if (batch.empty()) co_return 0;
  const auto stored = co_await molt::web::run_blocking(services.pool, [&] {
    return services.items.create_all(batch, query_deadline(services)).size();
  });
  batch.clear();
  co_return static_cast<std::int64_t>(stored);
}

// A page of items, read by `read(deadline)`: on the I/O thread within its budget when the
// store is in-process (run_short), else on the pool.
template <typename Read>
awaitable<std::invoke_result_t<Read&, molt::core::Deadline>> read_page(Services& services,
                                                                       Read read) {
  const auto deadline = query_deadline(services);
  if (services.items.reads_in_process())
    co_return co_await molt::web::run_short(services.pool, services.item_pages, deadline, read);
  co_return co_await molt::web::run_blocking(services.pool, [&] { return read(deadline); });
}

// GET /items: JSON straight from the rows (the same bytes as write_json(page)), MsgPack
// when the client prefers it.
molt::web::Handler list_items(Services& services) {
  return [&services](const Request& request, Ctx& ctx) -> awaitable<Response> {
    const ListItemsRequest query = list_request(request);
    const auto token = ctx.token();
    Response answer;
    if (molt::web::prefers_msgpack(request)) {
      answer = molt::web::msgpack(co_await read_page(
          services, [&](molt::core::Deadline d) { return services.items.list(query, d, token); }));
    } else {
      answer = Response::json_text(co_await read_page(services, [&](molt::core::Deadline d) {
        return services.items.list_json(query, d, token);
      }));
    }
    answer.add_vary("Accept");
    co_return answer;
  };
}

}  // namespace

void add_gateway(molt::web::App& app, Services& services, const GatewaySettings& settings) {
  if (!settings.items_path.empty())
    app.get(settings.items_path, list_items(services), "items.list.gateway",
            {.doc = with_list_query(RouteDoc("A page of a user's items, at Django's own URL")
                                        .tag("items")
                                        .returns<ListItemsResponse>())});
  // Bodies stream through to the upstream, so that an upload is never held here whole.
  app.fallback(molt::web::proxy_to(settings.upstream),
               {.max_body_bytes = settings.max_body_bytes, .stream_body = true});
}

void add_routes(molt::web::App& app, Services& services) {
  app.get("/health",
          [&services](const Request& request, Ctx&) -> awaitable<Response> {
            const std::chrono::duration<double> up =
                std::chrono::steady_clock::now() - services.started;
            co_return molt::web::respond(
                request, Health{true, "0.1.0", up.count(), std::string(services.items.backend())});
          },
          "health",
          {.doc = RouteDoc("Whether the service is up").tag("service").returns<Health>()});

  // The benchmark endpoints of the TechEmpower kind.
  app.get("/json",
          [](const Request&, Ctx&) -> awaitable<Response> {
            co_return molt::web::json(Message{"Hello, World!"});
          },
          "json",
          {.doc = RouteDoc("Hello, World! as JSON").tag("benchmark").returns_json<Message>()});
  app.get(
      "/plaintext",
      [](const Request&, Ctx&) -> awaitable<Response> {
        co_return Response::text("Hello, World!");
      },
      "plaintext",
      {.doc = RouteDoc("Hello, World! as text").tag("benchmark").returns_raw(200, "text/plain")});

  // list_items (DESIGN.md §5): the same JSON as molt-worker and the Django baseline.
  app.get("/items", list_items(services), "items.list",
          {.doc = with_list_query(RouteDoc("A page of a user's items")
                                      .tag("items")
                                      .returns<ListItemsResponse>()
                                      .error(400, "A bad query parameter or cursor"))});

  // Typed handlers (typed_handler.hpp): what they read and answer is in their signature, and
  // from there in the OpenAPI document; the docs add words.
  app.get("/items/{id:int}",
          [&services](Path<"id", std::int64_t> id) -> awaitable<Item> {
            const auto item = co_await molt::web::run_blocking(
                services.pool, [&] { return services.items.find(*id, query_deadline(services)); });
            if (!item) throw HttpError(404, "not_found", "no item " + std::to_string(*id));
            co_return *item;
          },
          "items.show",
          {.doc = RouteDoc("One item")
                      .tag("items")
                      .path_param("id", "the item's id")
                      .error(404, "No item has this id")});

  // A JSON POST: validated (400 naming the field before the handler runs), 201 with the stored
  // item.
  app.post(
      "/items",
      [&services](Body<NewItem> item) -> awaitable<Status<201, Item>> {
        Item created = co_await molt::web::run_blocking(
            services.pool, [&] { return services.items.create(*item, query_deadline(services)); });
        co_return Status<201, Item>{std::move(created)};
      },
      "items.create",
      {.doc = RouteDoc("Store an item").tag("items").returns<Item>(201, "The item as stored")});

  // A streamed upload, the counterpart of the export: NDJSON items for a user, checked and
  // stored as the body arrives (one transaction per piece of it), so an import of any size
  // holds one piece in memory. A slow database slows the upload down: the body is read only
  // as the handler asks. A bad line stops the import with a 400 naming it; the lines before
  // it are stored, and the answer says how many.
  app.post("/items/import",
           [&services](const Request& request, Ctx& ctx) -> awaitable<Response> {
             const auto user_id = molt::web::query_as<std::int64_t>(request, "user_id");
             if (!user_id || *user_id <= 0)
               throw HttpError(400, "invalid_input",
                               "query parameter 'user_id' is required (a positive integer)");
             ItemImport import(*user_id);
             std::int64_t imported = 0;
             bool ok = true;
             while (const auto piece = co_await ctx.body().next()) {
               ok = import.feed(*piece);
               const std::int64_t stored = co_await insert_batch(services, import.batch());
               imported += stored;
               if (!ok) break;
             }
             if (ok) {
               ok = import.finish();
               const std::int64_t stored = co_await insert_batch(services, import.batch());
               imported += stored;
             }
             if (!ok)
               throw HttpError(400, "invalid_input",
                               import.error() +
                                   " (items imported before it: " + std::to_string(imported) + ")");
             co_return molt::web::respond(request, Imported{imported}, 201);
           },
           "items.import",
           {.max_body_bytes = 256 << 20,
            .stream_body = true,
            .doc = RouteDoc("Import items, one JSON object a line")
                       .tag("items")
                       .description("Each line is an item (title, status, score) for the user; "
                                    "a line of /items/export fits. The lines before a bad one "
                                    "are stored, and the 400 says how many.")
                       .required_query<std::int64_t>("user_id", "whose items they are")
                       .raw_body("application/x-ndjson")
                       .returns<Imported>(201)});

  // Streaming: every item of a user as NDJSON, one page per piece. The next page is read only
  // once the previous one is written, so a slow client slows the queries, not the memory.
  // The export is of the items there were when it began: it stops at the highest id of then,
  // so that an import into the same user, fed by this export, cannot feed it in turn.
  app.get("/items/export",
          [&services](const Request& request, Ctx& ctx) -> awaitable<Response> {
            struct Export {
              ListItemsRequest query;
              std::int64_t last_id = 0;
              std::optional<ListItemsResponse> first;  // read before the answer starts
              bool done = false;
            };
            auto state = std::make_shared<Export>();
            state->query = list_request(request);
            state->query.limit = 200;
            const auto token = ctx.token();
            // The first page is read here, so that a bad cursor or user is a 400 before any of
            // the answer goes out (once the head is out, a failure can only cut the stream).
            auto [last_id, first] = co_await molt::web::run_blocking(services.pool, [&] {
              const auto deadline = query_deadline(services);
              return std::pair(services.items.last_id(deadline),
                               services.items.list(state->query, deadline, token));
            });
            state->last_id = last_id;
            state->first = std::move(first);
            co_return Response::stream(
                [&services, state, token]() -> awaitable<std::optional<std::string>> {
                  if (state->done) co_return std::nullopt;
                  ListItemsResponse page;
                  if (state->first) {
                    page = std::move(*std::exchange(state->first, std::nullopt));
                  } else {
                    page = co_await molt::web::run_blocking(services.pool, [&] {
                      return services.items.list(state->query, query_deadline(services), token);
                    });
                  }
                  std::string lines;
                  for (const auto& item : page.items) {
                    if (item.id > state->last_id) {
                      state->done = true;
                      break;
                    }
                    molt::codec::write_json(lines, item);
                    lines.push_back('\n');
                  }
                  state->query.cursor = page.next_cursor;
                  state->done = state->done || !page.next_cursor.has_value();
                  co_return lines;
                },
                "application/x-ndjson");
          },
          "items.export",
          {.doc = with_list_query(RouteDoc("Every item of a user, one JSON object a line")
                                      .tag("items")
                                      .returns_raw(200, "application/x-ndjson"),
                                  false)});

  // The WebSocket benchmark's endpoint (bench/run_ws_bench.py): each message back as it came.
  app.websocket(
      "/ws/echo",
      [](molt::web::WebSocket& socket, Ctx&) -> awaitable<void> {
        co_await socket.accept();
        for (;;) {
          const molt::web::WebSocketMessage message = co_await socket.receive();
          if (message.binary)
            co_await socket.send_bytes(message.data);
          else
            co_await socket.send_text(message.data);
        }
      },
      "echo");

  // A WebSocket: each message asks for a page as GET /items's query does
  // ({"user_id":7,"limit":5}) and is answered with the page, the same JSON. A request that is
  // wrong is answered with the error GET /items would give, {"error":{"code","message"}},
  // and the socket stays open for the next.
  app.websocket(
      "/ws/items",
      [&services](molt::web::WebSocket& socket, Ctx& ctx) -> awaitable<void> {
        co_await socket.accept();
        const auto token = ctx.token();
        for (;;) {
          std::optional<std::string> page;
          Response problem;
          try {
            const auto query = co_await socket.receive_json<ListItemsRequest>();
            page = co_await read_page(services, [&](molt::core::Deadline d) {
              return services.items.list_json(query, d, token);
            });
          } catch (const molt::codec::DecodeError& e) {
            problem = Response::error(400, "invalid_input", e.message(), e.path());
          } catch (const molt::core::Error& e) {
            if (e.code() != molt::core::StatusCode::InvalidInput) throw;
            // A bad cursor, a search too long.
            problem = Response::error(400, "invalid_input", e.message());
          }
          co_await socket.send_text(page ? *page : problem.body());
        }
      },
      "items.live");
}

}  // namespace molt_demo
