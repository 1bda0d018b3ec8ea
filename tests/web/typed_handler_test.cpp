#include "molt/web/typed_handler.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/describe.hpp>
#include <boost/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "molt/codec/defaults.hpp"
#include "molt/codec/msgpack.hpp"
#include "molt/codec/rules.hpp"
#include "molt/web/test_client.hpp"

namespace typed_handler_test {

struct NewNote {
  std::string text;
  bool pinned = false;
};
BOOST_DESCRIBE_STRUCT(NewNote, (), (text, pinned))
MOLT_DEFAULTS(NewNote, pinned)
MOLT_RULES(NewNote, rule(&NewNote::text, length(1, 100)))

struct Note {
  std::int64_t id;
  std::string text;
  bool pinned;
};
BOOST_DESCRIBE_STRUCT(Note, (), (id, text, pinned))

struct NoteFilter {
  std::optional<std::string> q;
  int limit = 10;
};
BOOST_DESCRIBE_STRUCT(NoteFilter, (), (q, limit))
MOLT_DEFAULTS(NoteFilter, limit)
MOLT_RULES(NoteFilter, rule(&NoteFilter::limit, between(1, 100)))

struct Signup {
  std::string name;
  int age;
};
BOOST_DESCRIBE_STRUCT(Signup, (), (name, age))

enum class Color { red, green };
BOOST_DESCRIBE_ENUM(Color, red, green)

}  // namespace typed_handler_test

namespace {

using boost::asio::awaitable;
using molt::web::App;
using molt::web::Body;
using molt::web::CookieParam;
using molt::web::Ctx;
using molt::web::FormBody;
using molt::web::HeaderParam;
using molt::web::Path;
using molt::web::Query;
using molt::web::QueryParam;
using molt::web::Request;
using molt::web::Response;
using molt::web::RouteDoc;
using molt::web::State;
using molt::web::Status;
using molt::web::TestClient;
using typed_handler_test::Color;
using typed_handler_test::NewNote;
using typed_handler_test::Note;
using typed_handler_test::NoteFilter;
using typed_handler_test::Signup;

// What the handlers share: notes by id, and a count of the handler runs.
struct Notebook {
  std::vector<Note> notes{{1, "first", false}, {2, "second", true}};
  int runs = 0;
};

// A dependency of the app's own (FastAPI's Depends): the caller named by an API key.
struct Caller {
  std::string name;
  static Caller from_request(const Request& request, Ctx&) {
    const auto key = request.header("X-Api-Key");
    if (key != "sesame") throw molt::web::HttpError(401, "unauthorized", "an API key is required");
    return {"ali"};
  }
  static void describe(RouteDoc& doc) {
    doc.required_header<std::string>("X-Api-Key", "the caller's key")
        .error(401, "no token or a wrong one");
  }
};

// One read by a coroutine that suspends, as a lookup on a pool would.
struct SlowCaller {
  std::string name;
  static awaitable<SlowCaller> from_request(const Request& request, Ctx& ctx) {
    std::string name = Caller::from_request(request, ctx).name;
    co_await boost::asio::post(co_await boost::asio::this_coro::executor,
                               boost::asio::use_awaitable);
    co_return SlowCaller{name + " (awaited, a name long enough for the heap)"};
  }
};

// Handlers of every shape: a coroutine or not, answering a value, a Status, a Response or
// nothing, taking the request and the Ctx or not.
awaitable<Note> show_note(Path<"id", std::int64_t> id, State<Notebook> book) {
  ++book->runs;
  for (const Note& note : book->notes)
    if (note.id == *id) co_return note;
  throw molt::web::HttpError(404, "not_found", "no such note");
}

awaitable<Status<201, Note>> add_note(Body<NewNote> note, State<Notebook> book, Caller caller) {
  ++book->runs;
  Note added{static_cast<std::int64_t>(book->notes.size()) + 1, note->text + " by " + caller.name,
             note->pinned};
  book->notes.push_back(added);
  co_return Status<201, Note>{added};
}

std::vector<Note> list_notes(Query<NoteFilter> filter, State<Notebook> book) {
  ++book->runs;
  std::vector<Note> out;
  for (const Note& note : book->notes) {
    if (filter->q && note.text.find(*filter->q) == std::string::npos) continue;
    if (static_cast<int>(out.size()) == filter->limit) break;
    out.push_back(note);
  }
  return out;
}

// A note that comes back after a suspension, as a database call on a pool does.
awaitable<Note> note_later(std::string text) {
  co_await boost::asio::post(co_await boost::asio::this_coro::executor, boost::asio::use_awaitable);
  co_return Note{9, std::move(text), false};
}

App& notes_app() {
  static App app;
  static bool ready = false;
  if (!ready) {
    app.set_state(Notebook{});
    app.get("/notes/{id}", show_note, "notes.show",
            {.doc = RouteDoc("One note").path_param("id", "the note's number")});
    app.post("/notes", add_note);
    app.get("/notes", list_notes);
    app.del("/notes/{id}", [](Path<"id", std::int64_t> id, State<Notebook> book) {
      std::erase_if(book->notes, [&](const Note& note) { return note.id == *id; });
    });
    app.get("/raw/{name}",
            [](const Request& request, Path<"name", std::string> name,
               Ctx& ctx) -> awaitable<Response> {
              co_return Response::text(std::string(request.method()) + " " + *name + " " +
                                       std::string(ctx.route_name()));
            });
    app.get("/params", [](QueryParam<"n", int> n, QueryParam<"tag", std::vector<std::string>> tags,
                          QueryParam<"color", std::optional<Color>> color,
                          HeaderParam<"X-Trace", std::optional<std::string>> trace,
                          CookieParam<"theme", std::optional<std::string>> theme) {
      std::string out = std::to_string(*n);
      for (const std::string& tag : *tags) out += " #" + tag;
      if (*color) out += *color == Color::red ? " red" : " green";
      if (*trace) out += " trace=" + **trace;
      if (*theme) out += " theme=" + **theme;
      return Response::text(out);
    });
    app.get("/whoami",
            [](SlowCaller caller, QueryParam<"n", std::optional<int>> n,
               SlowCaller again) -> awaitable<std::string> {
              co_return caller.name + (*n ? " " + std::to_string(**n) : "") +
                  (again.name == caller.name ? "" : " (twice?)");
            });
    app.post("/signup",
             [](FormBody<Signup> form) { return Status<202, Signup>{std::move(*form)}; });
    app.get("/ping", [] { return std::string("pong"); });
    // The answer built around an awaited value: GCC 12 destroyed such a value twice when the
    // answer was an aggregate (a crash), so Status has a constructor.
    app.get("/later", []() -> awaitable<Status<203, Note>> {
      co_return Status<203, Note>{co_await note_later(std::string(100, 'x'))};
    });
    ready = true;
  }
  return app;
}

TEST(TypedHandlerTest, PathParametersAreReadAsTheirType) {
  TestClient client(notes_app());
  const auto found = client.get("/notes/2");
  EXPECT_EQ(found.status, 200) << found.body;
  EXPECT_EQ(found.body, R"({"id":2,"text":"second","pinned":true})");
  EXPECT_EQ(found.header("Vary"), "Accept");
  // Not an integer: the handler never runs, the 400 names the parameter.
  const int runs = notes_app().find_state<Notebook>()->runs;
  const auto bad = client.get("/notes/two");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("path.id"), std::string::npos) << bad.body;
  EXPECT_NE(bad.body.find("integer"), std::string::npos) << bad.body;
  EXPECT_EQ(notes_app().find_state<Notebook>()->runs, runs);
  EXPECT_EQ(client.get("/notes/99999999999999999999").status, 400);  // out of range
  EXPECT_EQ(client.get("/notes/7").status, 404);                     // the handler's own answer
  const auto raw = client.get("/raw/a%20b");
  EXPECT_EQ(raw.body, "GET a b ");
}

TEST(TypedHandlerTest, BodiesAndDependenciesAreReadInOrderBeforeTheHandler) {
  TestClient client(notes_app());
  const int runs = notes_app().find_state<Notebook>()->runs;
  // Bad input is gathered, and reading goes on; a failure of another kind (the dependency's
  // 401) answers at once, bad input before it or not.
  EXPECT_EQ(client.request("POST", "/notes", R"({"text":""})").status, 401);
  const auto bad_body =
      client.request("POST", "/notes", R"({"text":""})", {{"X-Api-Key", "sesame"}});
  EXPECT_EQ(bad_body.status, 400);
  EXPECT_NE(bad_body.body.find("body.text"), std::string::npos) << bad_body.body;
  EXPECT_EQ(bad_body.body.find("\"errors\""), std::string::npos);  // one error: no list
  // Within one body, every member that does not fit is named (as FastAPI's 422 lists them),
  // in JSON and in MsgPack alike: first the members that did not decode, then the rules the
  // others break.
  const auto two_wrong =
      client.request("POST", "/notes", R"({"text":"","pinned":"yes"})", {{"X-Api-Key", "sesame"}});
  EXPECT_EQ(two_wrong.status, 400);
  const auto listed = boost::json::parse(two_wrong.body).at("error").at("errors").as_array();
  ASSERT_EQ(listed.size(), 2u) << two_wrong.body;
  EXPECT_EQ(listed.at(0).at("field"), "body.pinned");  // what did not decode, then the rules
  EXPECT_EQ(listed.at(1).at("field"), "body.text");
  const auto packed_wrong = client.request(
      "POST", "/notes", molt::codec::to_msgpack(boost::json::parse(R"({"text":"","pinned":3})")),
      {{"X-Api-Key", "sesame"}, {"Content-Type", "application/msgpack"}});
  EXPECT_EQ(packed_wrong.status, 400);
  EXPECT_EQ(boost::json::parse(packed_wrong.body).at("error").at("errors").as_array().size(), 2u)
      << packed_wrong.body;
  const auto no_token = client.request("POST", "/notes", R"({"text":"hi"})");
  EXPECT_EQ(no_token.status, 401) << no_token.body;
  const auto wrong_type =
      client.request("POST", "/notes", "text=hi", {{"Content-Type", "text/plain"}});
  EXPECT_EQ(wrong_type.status, 415);
  EXPECT_EQ(notes_app().find_state<Notebook>()->runs, runs);

  const auto added =
      client.request("POST", "/notes", R"({"text":"hi"})", {{"X-Api-Key", "sesame"}});
  EXPECT_EQ(added.status, 201) << added.body;
  const auto note = boost::json::parse(added.body).as_object();
  EXPECT_EQ(note.at("text"), "hi by ali");
  EXPECT_EQ(note.at("pinned"), false);  // the default
  // MsgPack by Accept, as respond() answers.
  const auto packed = client.request("POST", "/notes", R"({"text":"x","pinned":true})",
                                     {{"X-Api-Key", "sesame"}, {"Accept", "application/msgpack"}});
  EXPECT_EQ(packed.status, 201);
  EXPECT_EQ(packed.header("Content-Type"), "application/msgpack");
  EXPECT_EQ(molt::codec::decode_msgpack<Note>(packed.body).text, "x by ali");
}

TEST(TypedHandlerTest, QueryModelsAndPlainHandlers) {
  TestClient client(notes_app());
  const auto listed = client.get("/notes?q=first");
  EXPECT_EQ(listed.status, 200);
  EXPECT_EQ(listed.body, R"([{"id":1,"text":"first","pinned":false}])");
  const auto limited = client.get("/notes?limit=1");
  EXPECT_EQ(boost::json::parse(limited.body).as_array().size(), 1u);
  const auto bad = client.get("/notes?limit=0");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("query.limit"), std::string::npos) << bad.body;
  EXPECT_EQ(client.get("/ping").body, R"("pong")");
}

TEST(TypedHandlerTest, AnAnswerAroundAnAwaitedValue) {
  TestClient client(notes_app());
  for (int i = 0; i < 3; ++i) {
    const auto later = client.get("/later");
    EXPECT_EQ(later.status, 203);
    EXPECT_EQ(later.body, R"({"id":9,"text":")" + std::string(100, 'x') + R"(","pinned":false})");
  }
}

TEST(TypedHandlerTest, AVoidHandlerAnswers204) {
  TestClient client(notes_app());
  const auto before = notes_app().find_state<Notebook>()->notes.size();
  const auto deleted = client.request("DELETE", "/notes/1", "");
  EXPECT_EQ(deleted.status, 204);
  EXPECT_EQ(deleted.body, "");
  EXPECT_EQ(notes_app().find_state<Notebook>()->notes.size(), before - 1);
}

TEST(TypedHandlerTest, NamedQueryHeaderAndCookieParameters) {
  TestClient client(notes_app());
  EXPECT_EQ(client.get("/params?n=3").body, "3");
  EXPECT_EQ(client
                .request("GET", "/params?n=%2B4&tag=a&tag=b%20c&color=green", "",
                         {{"x-trace", "t1"}, {"Cookie", "theme=dark; other=1"}})
                .body,
            "4 #a #b c green trace=t1 theme=dark");
  const auto missing = client.get("/params");
  EXPECT_EQ(missing.status, 400);
  EXPECT_NE(missing.body.find("query.n"), std::string::npos) << missing.body;
  EXPECT_NE(missing.body.find("required"), std::string::npos) << missing.body;
  const auto color = client.get("/params?n=1&color=blue");
  EXPECT_EQ(color.status, 400);
  EXPECT_NE(color.body.find("query.color"), std::string::npos) << color.body;
  // Several wrong at once: one 400 naming each, the first as its field (FastAPI's list).
  const auto several = client.get("/params?n=x&color=blue");
  EXPECT_EQ(several.status, 400);
  const auto error = boost::json::parse(several.body).at("error");
  EXPECT_EQ(error.at("field"), "query.n");
  const auto& errors = error.at("errors").as_array();
  ASSERT_EQ(errors.size(), 2u) << several.body;
  EXPECT_EQ(errors.at(0).at("field"), "query.n");
  EXPECT_EQ(errors.at(1).at("field"), "query.color");
  EXPECT_NE(std::string(errors.at(1).at("message").as_string()).find("red"), std::string::npos);
  const auto escape = client.get("/params?n=1&tag=%ff");
  EXPECT_EQ(escape.status, 400);
  EXPECT_NE(escape.body.find("query.tag"), std::string::npos) << escape.body;
}

TEST(TypedHandlerTest, AsyncDependenciesAndForms) {
  TestClient client(notes_app());
  const auto who = client.request("GET", "/whoami", "", {{"X-Api-Key", "sesame"}});
  EXPECT_EQ(who.status, 200);
  EXPECT_EQ(who.body, R"x("ali (awaited, a name long enough for the heap)")x");
  EXPECT_EQ(client.request("GET", "/whoami?n=x", "", {{"X-Api-Key", "sesame"}}).status, 400);
  EXPECT_EQ(client.request("GET", "/whoami?n=4", "", {{"X-Api-Key", "sesame"}}).body,
            R"x("ali (awaited, a name long enough for the heap) 4")x");
  EXPECT_EQ(client.get("/whoami").status, 401);
  const auto signed_up = client.request("POST", "/signup", "name=Ada&age=36",
                                        {{"Content-Type", "application/x-www-form-urlencoded"}});
  EXPECT_EQ(signed_up.status, 202);
  EXPECT_EQ(signed_up.body, R"({"name":"Ada","age":36})");
  const auto bad = client.request("POST", "/signup", "name=Ada&age=old",
                                  {{"Content-Type", "application/x-www-form-urlencoded"}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("form.age"), std::string::npos) << bad.body;
}

TEST(TypedHandlerTest, TheSignatureGoesIntoTheOpenApiDocument) {
  const boost::json::object document = molt::web::openapi_document(notes_app(), {});
  const auto& paths = document.at("paths").as_object();
  // The path parameter's type from Path<"id", std::int64_t>, its words from the doc given.
  const auto& show = paths.at("/notes/{id}").at("get").as_object();
  EXPECT_EQ(show.at("summary"), "One note");
  const auto& id = show.at("parameters").as_array().at(0).as_object();
  EXPECT_EQ(id.at("name"), "id");
  EXPECT_EQ(id.at("description"), "the note's number");
  EXPECT_EQ(id.at("schema").at("type"), "integer");
  EXPECT_TRUE(show.at("responses").as_object().contains("200"));
  EXPECT_TRUE(show.at("responses").as_object().contains("400"));  // path.id may be wrong
  // The body, the Status's code, and what the dependency declared.
  const auto& add = paths.at("/notes").at("post").as_object();
  EXPECT_TRUE(add.contains("requestBody"));
  const auto& answers = add.at("responses").as_object();
  EXPECT_TRUE(answers.contains("201"));
  EXPECT_TRUE(answers.contains("401"));
  EXPECT_FALSE(answers.contains("200"));
  const auto& auth = add.at("parameters").as_array().at(0).as_object();
  EXPECT_EQ(auth.at("name"), "X-Api-Key");
  EXPECT_EQ(auth.at("in"), "header");
  EXPECT_EQ(auth.at("required"), true);
  // The query model's members; a void handler's 204; named parameters where they are.
  const auto& list = paths.at("/notes").at("get").as_object();
  EXPECT_EQ(list.at("parameters").as_array().size(), 2u);
  EXPECT_TRUE(paths.at("/notes/{id}").at("delete").at("responses").as_object().contains("204"));
  const auto& params = paths.at("/params").at("get").at("parameters").as_array();
  ASSERT_EQ(params.size(), 5u);
  EXPECT_EQ(params.at(0).at("in"), "query");
  EXPECT_EQ(params.at(0).at("required"), true);
  EXPECT_EQ(params.at(1).at("required"), false);  // a list may be absent
  EXPECT_EQ(params.at(3).at("in"), "header");
  EXPECT_EQ(params.at(4).at("in"), "cookie");
  EXPECT_EQ(params.at(4).at("name"), "theme");
  const auto& signup = paths.at("/signup").at("post").as_object();
  EXPECT_TRUE(signup.at("requestBody")
                  .at("content")
                  .as_object()
                  .contains("application/x-www-form-urlencoded"));
}

TEST(TypedHandlerTest, APathParameterThePatternLacksFailsWhenTheRouteIsAdded) {
  App app;
  EXPECT_THROW(app.get("/notes/{note_id}", show_note), molt::web::RouteError);
  EXPECT_THROW(app.get("/notes", [](Path<"id", int>) { return 1; }), molt::web::RouteError);
  // Two readers of one name are refused too.
  EXPECT_THROW(app.get("/x", [](QueryParam<"limit", int>, Query<NoteFilter>) { return 1; }),
               std::invalid_argument);
  // So is a doc's own description of a parameter the pattern lacks, typed handler or not.
  EXPECT_THROW(app.get("/y", [](const Request&, Ctx&) { return Response(204); }, {},
                       {.doc = RouteDoc().path_param("id", "none")}),
               molt::web::RouteError);
}

}  // namespace

namespace {

// Another dependency reading the same key, as sub-dependencies do (FastAPI's usual pattern).
struct Admin {
  bool admin;
  static Admin from_request(const Request& request, Ctx& ctx) {
    return {Caller::from_request(request, ctx).name == "ali"};
  }
  static void describe(RouteDoc& doc) {
    doc.required_header<std::string>("X-Api-Key", "the caller's key").error(403, "not an admin");
  }
};
// The same header read as another type: a doc that cannot say both.
struct KeyNumber {
  static KeyNumber from_request(const Request&, Ctx&) { return {}; }
  static void describe(RouteDoc& doc) { doc.required_header<int>("x-api-key"); }
};

// A reader that could also be built from the request: its from_request still reads it.
struct Token {
  std::string value;
  explicit Token(std::string v) : value(std::move(v)) {}
  Token(const Request&) : value("built by the constructor") {}  // NOLINT: implicit on purpose
  static Token from_request(const Request& request, Ctx&) {
    if (!request.header("X-Token"))
      throw molt::web::HttpError(401, "unauthorized", "an X-Token header is required");
    return Token(std::string(*request.header("X-Token")));
  }
};

const boost::json::object& operation(const boost::json::object& document, const char* path,
                                     const char* method) {
  return document.at("paths").at(path).at(method).as_object();
}

TEST(TypedHandlerTest, ReadersDeclaringOneThingAlikeShareItAndUnlikeAreRefused) {
  App app;
  app.get("/both",
          [](Caller caller, Admin admin) { return caller.name + (admin.admin ? "!" : ""); });
  const auto document = molt::web::openapi_document(app, {});
  const auto& both = operation(document, "/both", "get");
  EXPECT_EQ(both.at("parameters").as_array().size(), 1u);
  EXPECT_TRUE(both.at("responses").as_object().contains("401"));
  EXPECT_TRUE(both.at("responses").as_object().contains("403"));
  TestClient client(app);
  EXPECT_EQ(client.request("GET", "/both", "", {{"X-Api-Key", "sesame"}}).body, R"("ali!")");
  EXPECT_THROW(app.get("/unlike", [](Caller, KeyNumber) { return 1; }), std::invalid_argument);
}

TEST(TypedHandlerTest, ABodyReadWholeIsRefusedOnAStreamingRoute) {
  App app;
  try {
    app.post("/s", [](Body<NewNote> note) { return note->text; }, {}, {.stream_body = true});
    FAIL() << "no error";
  } catch (const molt::web::RouteError& e) {
    EXPECT_NE(std::string(e.what()).find("POST /s"), std::string::npos) << e.what();
  }
  EXPECT_THROW(
      app.post("/f", [](FormBody<Signup> form) { return form->name; }, {}, {.stream_body = true}),
      molt::web::RouteError);
  EXPECT_NO_THROW(app.post("/raw", [](Ctx&) { return 1; }, {}, {.stream_body = true}));
}

TEST(TypedHandlerTest, AReaderBuiltFromTheRequestIsStillReadByItsFromRequest) {
  App app;
  app.get("/t",
          [](Token token, Ctx&) -> awaitable<Response> { co_return Response::text(token.value); });
  TestClient client(app);
  EXPECT_EQ(client.get("/t").status, 401);
  EXPECT_EQ(client.request("GET", "/t", "", {{"X-Token", "abc"}}).body, "abc");
}

TEST(TypedHandlerTest, TheSignatureSaysTypesAndAnswersAndTheDocItsWords) {
  App app;
  app.get("/tags", [](QueryParam<"tag", std::vector<std::string>> tags) { return tags->size(); });
  // The doc's words stay; the handler's types win (an integer, required).
  app.get("/typed", [](HeaderParam<"X-Count", int> count) { return *count; }, {},
          {.doc = RouteDoc("Count")
                      .header<std::string>("x-count", "how many")
                      .returns<int>(200, "the count")});
  app.get("/auth", [](HeaderParam<"Authorization", std::optional<std::string>>) { return 1; });
  const auto document = molt::web::openapi_document(app, {});
  const auto& tag = operation(document, "/tags", "get").at("parameters").at(0).as_object();
  EXPECT_EQ(tag.at("schema").at("type"), "array");
  EXPECT_EQ(tag.at("schema").at("items").at("type"), "string");
  const auto& typed = operation(document, "/typed", "get");
  const auto& count = typed.at("parameters").at(0).as_object();
  EXPECT_EQ(count.at("description"), "how many");
  EXPECT_EQ(count.at("schema").at("type"), "integer");
  EXPECT_EQ(count.at("required"), true);
  EXPECT_EQ(typed.at("responses").at("200").at("description"), "the count");
  // OpenAPI ignores a header parameter named Authorization: the document leaves it out.
  EXPECT_FALSE(operation(document, "/auth", "get").contains("parameters"));
  // A doc that names another success status than the handler's answer is refused.
  EXPECT_THROW(app.get("/created", [] { return 1; }, {}, {.doc = RouteDoc().returns<int>(201)}),
               std::invalid_argument);
  EXPECT_THROW(app.del("/gone", [] {}, {}, {.doc = RouteDoc().returns<int>()}),
               std::invalid_argument);
  EXPECT_NO_THROW(app.del("/gone", [] {}, {}, {.doc = RouteDoc().error(404, "no such thing")}));
}

TEST(TypedHandlerTest, AMalformedPatternIsNamedWithItsMethod) {
  App app;
  try {
    app.get("/a/{id", [](Path<"id", int> id) { return *id; });
    FAIL() << "no error";
  } catch (const molt::web::RouteError& e) {
    EXPECT_NE(std::string(e.what()).find("GET /a/{id"), std::string::npos) << e.what();
  }
}

}  // namespace

namespace {

using molt::web::ApiKeyCookie;
using molt::web::ApiKeyHeader;
using molt::web::BearerToken;

TEST(TypedHandlerTest, BearerTokensAndApiKeys) {
  App app;
  app.get("/me", [](BearerToken bearer) { return bearer.token; });
  app.get("/key", [](ApiKeyHeader<"X-Api-Key"> key) { return key.key; });
  app.get("/sid", [](ApiKeyCookie<"sid"> key) { return key.key; });
  TestClient client(app);
  const auto none = client.get("/me");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.header("WWW-Authenticate"), "Bearer");
  EXPECT_NE(none.body.find("not_authenticated"), std::string::npos) << none.body;
  const auto bearer = [&](const std::string& value) {
    return client.request("GET", "/me", "", {{"Authorization", value}});
  };
  EXPECT_EQ(bearer("Bearer abc.DEF-_~+/==").body, R"("abc.DEF-_~+/==")");
  EXPECT_EQ(bearer("bearer   t0k ").body, R"("t0k")");  // the scheme in any case
  EXPECT_EQ(bearer("Basic dXNlcjpwYXNz").status, 401);
  EXPECT_EQ(bearer("Bearer").status, 401);
  EXPECT_EQ(bearer("Bearer   ").status, 401);
  // A request the scheme cannot read is a 400 (RFC 6750 §3.1).
  EXPECT_EQ(bearer("Bearer a=b").status, 400);  // '=' only at the end
  EXPECT_EQ(bearer("Bearer \xc3\xa9t\xc3\xa9").status, 400);
  const auto spaced = bearer("Bearer a b");
  EXPECT_EQ(spaced.status, 400);
  EXPECT_EQ(spaced.header("WWW-Authenticate"), R"(Bearer error="invalid_request")");
  EXPECT_EQ(spaced.body.find("a b"), std::string::npos);  // no token text in the answer
  // Two Authorization lines: a proxy might have checked the other one.
  const auto twice = client.request("GET", "/me", "",
                                    {{"Authorization", "Bearer a"}, {"authorization", "Bearer b"}});
  EXPECT_EQ(twice.status, 400);

  const auto no_key = client.get("/key");
  EXPECT_EQ(no_key.status, 401);
  EXPECT_EQ(no_key.header("WWW-Authenticate"), "APIKey");
  EXPECT_EQ(client.request("GET", "/key", "", {{"X-Api-Key", ""}}).status, 401);
  EXPECT_EQ(client.request("GET", "/key", "", {{"x-api-key", "k1"}}).body, R"("k1")");
  EXPECT_EQ(client.get("/sid").status, 401);
  EXPECT_EQ(client.request("GET", "/sid", "", {{"Cookie", "a=1; sid=s2"}}).body, R"("s2")");

  // The document lists each scheme once, and each route's requirement and 401.
  const auto document = molt::web::openapi_document(app, {});
  const auto& schemes = document.at("components").at("securitySchemes").as_object();
  EXPECT_EQ(schemes.at("bearer").at("type"), "http");
  EXPECT_EQ(schemes.at("bearer").at("scheme"), "bearer");
  EXPECT_EQ(schemes.at("apiKey.header.x-api-key").at("in"), "header");
  EXPECT_EQ(schemes.at("apiKey.header.x-api-key").at("name"), "X-Api-Key");
  EXPECT_EQ(schemes.at("apiKey.cookie.sid").at("in"), "cookie");
  const auto& me = operation(document, "/me", "get");
  EXPECT_EQ(me.at("security"), boost::json::parse(R"([{"bearer":[]}])"));
  EXPECT_TRUE(me.at("responses").as_object().contains("401"));
}

TEST(TypedHandlerTest, AnHttpErrorCarriesItsHeaders) {
  App app;
  struct Busy : molt::web::HttpError {
    Busy() : HttpError(503, "busy", "come back later", {{"Retry-After", "1"}}) {}
  };
  app.on_exception<Busy>([](const Busy& busy, const Request&) {
    Response answer = Response::text("mapped", 503);
    answer.set_header("Retry-After", busy.headers().at(0).second);
    return answer;
  });
  app.get("/slow", [](const Request&, Ctx&) -> Response {
    throw molt::web::HttpError(429, "too_many", "slow down", {{"Retry-After", "3"}});
  });
  app.get("/split", [](const Request&, Ctx&) -> Response {
    throw molt::web::HttpError(429, "too_many", "x",
                               {{"Retry-After", "3\r\nX: y"},
                                {"Content-Length", "0"},
                                {"content-type", "text/html"},
                                {"Cache-Control", "no-store"}});
  });
  app.get("/busy", [](const Request&, Ctx&) -> Response { throw Busy(); });
  TestClient client(app);
  const auto slow = client.get("/slow");
  EXPECT_EQ(slow.status, 429);
  EXPECT_EQ(slow.header("Retry-After"), "3");
  // A header that would split the answer, or frame it twice, is dropped (and logged).
  const auto split = client.get("/split");
  EXPECT_EQ(split.status, 429);
  EXPECT_FALSE(split.header("X").has_value());
  EXPECT_EQ(split.header("Content-Type"), "application/json");
  EXPECT_EQ(split.header("Cache-Control"), "no-store");
  EXPECT_EQ(
      std::count_if(split.headers.begin(), split.headers.end(),
                    [](const auto& h) { return molt::web::iequals(h.first, "Content-Length"); }),
      1);
  // A subclass keeps its type, and its map.
  const auto busy = client.get("/busy");
  EXPECT_EQ(busy.body, "mapped");
  EXPECT_EQ(busy.header("Retry-After"), "1");
}

TEST(TypedHandlerTest, ADependencysErrorBesideTheDocsOwnSuccessAnswer) {
  App app;
  // The doc's words for the handler's 201; the dependency's 401 is no second success.
  EXPECT_NO_THROW(app.post("/notes",
                           [](Caller) -> awaitable<Status<201, Note>> {
                             co_return Status<201, Note>{Note{1, "", false}};
                           },
                           {}, {.doc = RouteDoc().returns<Note>(201, "the note as stored")}));
  const auto document = molt::web::openapi_document(app, {});
  const auto& answers = operation(document, "/notes", "post").at("responses").as_object();
  EXPECT_EQ(answers.at("201").at("description"), "the note as stored");
  EXPECT_TRUE(answers.contains("401"));
}

}  // namespace

namespace {

TEST(TypedHandlerTest, SecuritySchemesAreAllNeededAndOneNameIsOneScheme) {
  App app;
  app.get("/both", [](molt::web::BearerToken, molt::web::ApiKeyHeader<"X-Api-Key">) { return 1; });
  // A doc adds words to a reader's scheme.
  app.get("/me", [](molt::web::BearerToken bearer) { return bearer.token; }, {},
          {.doc = RouteDoc("me").security(
               "bearer", {.type = "http", .scheme = "bearer", .bearer_format = "JWT"})});
  const auto document = molt::web::openapi_document(app, {});
  EXPECT_EQ(operation(document, "/both", "get").at("security"),
            boost::json::parse(R"([{"bearer":[],"apiKey.header.x-api-key":[]}])"));
  EXPECT_EQ(document.at("components").at("securitySchemes").at("bearer").at("bearerFormat"), "JWT");
  // Another scheme under a name a route gave already: refused, naming that route.
  try {
    app.get("/other", [] { return 1; }, {},
            {.doc = RouteDoc().security("bearer", {.type = "http", .scheme = "basic"})});
    FAIL() << "no error";
  } catch (const molt::web::RouteError& e) {
    EXPECT_NE(std::string(e.what()).find("GET /both"), std::string::npos) << e.what();
  }
  // What OpenAPI would not take is refused where it is written.
  using Scheme = molt::web::SecurityScheme;
  EXPECT_THROW(RouteDoc().security("my key", {.type = "apiKey", .in = "header", .name = "k"}),
               std::invalid_argument);
  EXPECT_THROW(RouteDoc().security("h", Scheme{.type = "http"}), std::invalid_argument);
  EXPECT_THROW(RouteDoc().security("k", {.type = "apiKey", .in = "path", .name = "k"}),
               std::invalid_argument);
  EXPECT_THROW(RouteDoc().security("k", {.type = "apiKey", .in = "header"}), std::invalid_argument);
  EXPECT_THROW(RouteDoc().security("o", Scheme{.type = "oauth2"}), std::invalid_argument);
  EXPECT_THROW(RouteDoc()
                   .security("k", {.type = "apiKey", .in = "header", .name = "k"})
                   .security("k", {.type = "apiKey", .in = "cookie", .name = "k"}),
               std::invalid_argument);
}

}  // namespace

namespace {

TEST(TypedHandlerTest, EveryBadInputIsNamedBesideAnAwaitedReader) {
  App app;
  app.get("/sum",
          [](QueryParam<"a", int> a, SlowCaller, QueryParam<"b", int> b,
             Body<NewNote> note) -> awaitable<int> { co_return *a + *b + int(note->pinned); });
  TestClient client(app);
  const auto answer =
      client.request("GET", "/sum?a=x", R"({"text":""})", {{"X-Api-Key", "sesame"}});
  EXPECT_EQ(answer.status, 400);
  const boost::json::value parsed = boost::json::parse(answer.body);
  const auto& errors = parsed.at("error").at("errors").as_array();
  ASSERT_EQ(errors.size(), 3u) << answer.body;
  EXPECT_EQ(errors.at(0).at("field"), "query.a");
  EXPECT_EQ(errors.at(1).at("field"), "query.b");
  EXPECT_EQ(errors.at(2).at("field"), "body.text");
  EXPECT_EQ(client
                .request("GET", "/sum?a=1&b=2", R"({"text":"t","pinned":true})",
                         {{"X-Api-Key", "sesame"}})
                .body,
            "4");
  // The reader that awaits still answers its own failure at once.
  EXPECT_EQ(client.request("GET", "/sum?a=x", R"({"text":""})").status, 401);
}

}  // namespace
