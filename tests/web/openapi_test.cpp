#include "molt/web/openapi.hpp"

#include <gtest/gtest.h>

#include <boost/describe.hpp>
#include <boost/json/parse.hpp>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "molt/codec/defaults.hpp"
#include "molt/codec/rules.hpp"
#include "molt/web/test_client.hpp"
#include "molt/web/typed.hpp"

namespace openapi_sample {
enum class Status { open, closed };
BOOST_DESCRIBE_ENUM(Status, open, closed)
struct NewNote {
  std::string title;
  Status status = Status::open;
};
BOOST_DESCRIBE_STRUCT(NewNote, (), (title, status))
MOLT_DEFAULTS(NewNote, status)
struct Note {
  std::int64_t id = 0;
  std::string title;
  Status status = Status::open;
  std::optional<std::string> owner;
};
BOOST_DESCRIBE_STRUCT(Note, (), (id, title, status, owner))
struct Page {
  std::vector<Note> notes;
};
BOOST_DESCRIBE_STRUCT(Page, (), (notes))
struct NoteFilter {
  std::string owner;
  std::optional<Status> status;
  std::vector<std::string> tag;
  int limit = 20;
};
BOOST_DESCRIBE_STRUCT(NoteFilter, (), (owner, status, tag, limit))
MOLT_DEFAULTS(NoteFilter, limit)
MOLT_RULES(NoteFilter, rule(&NoteFilter::limit, between(1, 100)),
           rule(&NoteFilter::tag, each(max_length(10))))
struct Slug {
  std::string slug;
};
BOOST_DESCRIBE_STRUCT(Slug, (), (slug))
MOLT_RULES(Slug, rule(&Slug::slug, pattern("([a-z]")))
}  // namespace openapi_sample

namespace molt::web {
namespace {

using boost::asio::awaitable;
using openapi_sample::NewNote;
using openapi_sample::Note;
using openapi_sample::Page;

boost::json::value parse(std::string_view text) {
  return boost::json::parse(text);
}

Response ok(const Request&, Ctx&) {
  return Response::text("ok");
}

// A small notes service, documented as a user would.
void add_notes(App& app) {
  app.get("/notes", ok, "notes.list",
          {.doc = RouteDoc("List notes")
                      .tag("notes")
                      .query<std::int64_t>("limit", "at most this many")
                      .required_query<std::string>("owner")
                      .returns<Page>()});
  app.post("/notes", ok, "notes.create",
           {.doc = RouteDoc("Create a note")
                       .description("Stores a note; its status is open unless told.")
                       .tag("notes")
                       .body<NewNote>("the note")
                       .returns<Note>(201)
                       .error(409, "A note of that title exists")});
  app.get("/notes/{id:int}", ok, "notes.show",
          {.doc = RouteDoc("One note")
                      .path_param("id", "the note's id")
                      .returns<Note>()
                      .error(404, "No such note")});
  app.del("/notes/{id:int}", ok, {},
          {.doc = RouteDoc("Remove a note").deprecated().returns_raw(204, "")});
  app.get("/files/{rest:path}", ok);
  app.get("/internal", ok, {}, {.doc = RouteDoc().hidden()});
  app.route("PURGE", "/cache", answering_at_once(ok));  // no room for it in OpenAPI 3.1
}

TEST(OpenApi, TheDocumentListsEveryRouteWithWhatItDeclares) {
  App app;
  add_notes(app);
  const boost::json::object document = openapi_document(app, {"Notes", "2.1.0", "A notes service"});
  EXPECT_EQ(document.at("openapi"), "3.1.0");
  EXPECT_EQ(document.at("info"),
            parse(R"({"title":"Notes","version":"2.1.0","description":"A notes service"})"));
  const auto& paths = document.at("paths").as_object();
  EXPECT_EQ(paths.size(), 3u);  // /notes, /notes/{id}, /files/{rest}: not /internal nor PURGE

  EXPECT_EQ(paths.at("/notes").at("get"), parse(R"({
    "tags": ["notes"], "summary": "List notes", "operationId": "notes.list",
    "parameters": [
      {"name": "limit", "in": "query", "required": false,
       "schema": {"type": "integer", "format": "int64"}, "description": "at most this many"},
      {"name": "owner", "in": "query", "required": true, "schema": {"type": "string"}}],
    "responses": {
      "200": {"description": "OK", "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/Page"}},
        "application/msgpack": {"schema": {"$ref": "#/components/schemas/Page"}}}},
      "400": {"description": "The input is not valid", "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/ErrorAnswer"}}}}}})"));

  const auto& create = paths.at("/notes").at("post").as_object();
  EXPECT_EQ(create.at("description"), "Stores a note; its status is open unless told.");
  EXPECT_EQ(create.at("requestBody"), parse(R"({"required": true, "description": "the note",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewNote"}},
                "application/msgpack": {"schema": {"$ref": "#/components/schemas/NewNote"}}}})"));
  EXPECT_EQ(create.at("responses").at("201").at("description"), "Created");
  EXPECT_EQ(create.at("responses").at("409"),
            parse(R"({"description": "A note of that title exists",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorAnswer"}}}})"));
  EXPECT_FALSE(create.at("responses").as_object().contains("200"));

  const auto& show = paths.at("/notes/{id}").at("get").as_object();
  EXPECT_EQ(show.at("parameters"), parse(R"([{"name": "id", "in": "path", "required": true,
    "schema": {"type": "integer", "format": "int64", "minimum": 0},
    "description": "the note's id"}])"));
  // No 400: a path whose id is not an integer matches no route (a 404).
  EXPECT_FALSE(show.at("responses").as_object().contains("400"));
  const auto& remove = paths.at("/notes/{id}").at("delete").as_object();
  EXPECT_EQ(remove.at("operationId"), "delete_notes_id");
  EXPECT_EQ(remove.at("deprecated"), true);
  EXPECT_EQ(remove.at("responses").at("204"), parse(R"({"description": "No Content"})"));

  // Undocumented: what the pattern says, and a plain 200.
  EXPECT_EQ(paths.at("/files/{rest}").at("get"), parse(R"({"operationId": "get_files_rest",
    "parameters": [{"name": "rest", "in": "path", "required": true, "schema": {"type": "string"}}],
    "responses": {"200": {"description": "OK"}}})"));

  const auto& schemas = document.at("components").at("schemas").as_object();
  EXPECT_EQ(schemas.at("NewNote").at("required"), parse(R"(["title"])"));
  EXPECT_EQ(schemas.at("NewNote").at("properties").at("status"),
            parse(R"({"$ref": "#/components/schemas/Status", "default": "open"})"));
  EXPECT_EQ(schemas.at("Status").at("enum"), parse(R"(["open", "closed"])"));
  EXPECT_EQ(schemas.at("ErrorAnswer").at("required"), parse(R"(["error"])"));
  EXPECT_EQ(schemas.at("ErrorDetail").at("required"), parse(R"(["code", "message"])"));
}

TEST(OpenApi, GroupsPrefixTheirPaths) {
  App app;
  auto api = app.group("/api");
  api.group("/v1").get("/ping", ok, "ping");
  const auto document = openapi_document(app, {});
  EXPECT_TRUE(document.at("paths").as_object().contains("/api/v1/ping"));
  // No described type anywhere: only the error shape (ErrorAnswer, ErrorDetail and the
  // FieldError of its list), which every document names.
  EXPECT_EQ(document.at("components").at("schemas").as_object().size(), 3u);
}

TEST(OpenApi, OperationIdsAreUnique) {
  App app;
  app.get("/a-b", ok);
  app.get("/a_b", ok);
  app.get("/x", ok, "get_y");
  app.get("/y", ok);
  const auto paths = openapi_document(app, {}).at("paths");
  EXPECT_EQ(paths.at("/a-b").at("get").at("operationId"), "get_a_b");
  EXPECT_EQ(paths.at("/a_b").at("get").at("operationId"), "get_a_b_2");
  EXPECT_EQ(paths.at("/x").at("get").at("operationId"), "get_y");
  EXPECT_EQ(paths.at("/y").at("get").at("operationId"), "get_y_2");
}

// A query parameter model (query_as<T>(request)): each member a parameter, with its rules.
TEST(OpenApi, AStructOfQueryParametersListsEachMember) {
  App app;
  app.get("/notes", ok, "notes.filter",
          {.doc = RouteDoc("Filter notes").query<openapi_sample::NoteFilter>()});
  const auto document = openapi_document(app, {});
  EXPECT_EQ(document.at("paths").at("/notes").at("get").at("parameters"), parse(R"([
    {"name": "owner", "in": "query", "required": true, "schema": {"type": "string"}},
    {"name": "status", "in": "query", "required": false, "schema": {"anyOf": [
      {"$ref": "#/components/schemas/Status"}, {"type": "null"}]}},
    {"name": "tag", "in": "query", "required": false, "schema": {"type": "array",
      "items": {"type": "string", "maxLength": 10}}},
    {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer",
      "format": "int32", "minimum": 1, "maximum": 100, "default": 20}}])"));
  EXPECT_TRUE(document.at("components").at("schemas").as_object().contains("Status"));
  // A name declared twice, by the struct and by hand, is refused as any repeated one.
  EXPECT_THROW(RouteDoc().query<openapi_sample::NoteFilter>().query<int>("limit"),
               std::invalid_argument);
}

// Found by a review: the document is written at the first request for it, so a pattern RE2
// refuses was a 500 there, not a failure at startup. The route's doc writes its types' schemas
// where it is declared.
TEST(OpenApi, APatternThatIsNoRegularExpressionFailsWhereTheRouteIsDeclared) {
  EXPECT_THROW(RouteDoc().body<openapi_sample::Slug>(), std::invalid_argument);
  EXPECT_THROW(RouteDoc().returns<openapi_sample::Slug>(), std::invalid_argument);
  EXPECT_THROW(RouteDoc().query<openapi_sample::Slug>(), std::invalid_argument);
}

TEST(OpenApi, ADocThatCannotBeRightIsRefusedWhereItIsWritten) {
  EXPECT_THROW(RouteDoc().query<int>("n").query<int>("n"), std::invalid_argument);
  EXPECT_THROW(RouteDoc().query<int>("n").required_query<int>("n"), std::invalid_argument);
  EXPECT_THROW(RouteDoc().error(999, "?"), std::invalid_argument);
  EXPECT_THROW(RouteDoc().returns<Note>(42), std::invalid_argument);
  EXPECT_THROW(RouteDoc().returns_raw(600, "text/plain"), std::invalid_argument);
}

TEST(OpenApi, BehindAPrefixTheDocumentNamesItsServer) {
  App app;
  serve_openapi(app, {.root_path = "/api"});
  TestClient client(app);
  const auto document = client.get("/openapi.json").json();
  EXPECT_EQ(document.at("servers"), parse(R"([{"url": "/api"}])"));
  EXPECT_NE(client.get("/docs").body.find("SwaggerUIBundle({url: \"/api/openapi.json\""),
            std::string::npos);
}

// Refused where the route is added, at startup, not when the document is first asked for.
TEST(OpenApi, ADocOfAPathParameterThePatternLacksIsAnErrorWhenTheRouteIsAdded) {
  App app;
  try {
    app.get("/notes/{id:int}", ok, {}, {.doc = RouteDoc().path_param("note_id", "its id")});
    FAIL() << "no error";
  } catch (const RouteError& e) {
    EXPECT_NE(std::string(e.what()).find("'note_id'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("GET /notes/{id:int}"), std::string::npos) << e.what();
  }
  // In a group, the pattern checked is the whole one.
  auto group = app.group("/users/{user}");
  EXPECT_NO_THROW(group.get("/notes", ok, {}, {.doc = RouteDoc().path_param("user", "whose")}));
}

TEST(OpenApi, ARefusedRouteLeavesTheAppAsItWas) {
  App app;
  serve_openapi(app);
  EXPECT_THROW(
      app.get("/notes/{id:int}", ok, {}, {.doc = RouteDoc().path_param("note_id", "its id")}),
      RouteError);
  app.get("/notes/{id:int}", ok, {}, {.doc = RouteDoc().path_param("id", "its id")});
  TestClient client(app);
  const TestResponse answer = client.get("/openapi.json");
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.body.find("note_id"), std::string::npos);
  EXPECT_NE(answer.body.find("its id"), std::string::npos);
}

TEST(OpenApi, ServedAtItsPathsOnceEveryRouteIsIn) {
  App app;
  serve_openapi(app, {.title = "Notes <&> \"docs\"", .version = "1.0.0"});
  add_notes(app);  // after serve_openapi: still in the document
  TestClient client(app);
  const TestResponse document = client.get("/openapi.json");
  ASSERT_EQ(document.status, 200);
  EXPECT_EQ(document.header("Content-Type"), "application/json");
  const auto parsed = document.json();
  EXPECT_EQ(parsed.at("info").at("title"), "Notes <&> \"docs\"");
  EXPECT_TRUE(parsed.at("paths").as_object().contains("/notes/{id}"));
  EXPECT_FALSE(parsed.at("paths").as_object().contains("/openapi.json"));
  EXPECT_FALSE(parsed.at("paths").as_object().contains("/docs"));
  EXPECT_EQ(client.get("/openapi.json").body, document.body);

  const TestResponse page = client.get("/docs");
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(page.header("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("<title>Notes &lt;&amp;&gt; &quot;docs&quot;</title>"),
            std::string::npos)
      << page.body;
  EXPECT_NE(page.body.find("SwaggerUIBundle({url: \"/openapi.json\""), std::string::npos);
  EXPECT_NE(page.body.find("https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"),
            std::string::npos);
}

TEST(OpenApi, TheDocsPageCannotBeBrokenOutOfByItsSettings) {
  App app;
  serve_openapi(app, {.json_path = "/x</script><script>alert(1)</script>",
                      .swagger_ui_url = "https://cdn.example/\"><script>alert(2)</script>"});
  TestClient client(app);
  const std::string page = client.get("/docs").body;
  EXPECT_EQ(page.find("alert(1)</script>"), std::string::npos) << page;
  EXPECT_NE(page.find("\\u003c/script>"), std::string::npos) << page;
  EXPECT_EQ(page.find("\"><script>alert(2)"), std::string::npos) << page;
}

TEST(OpenApi, NoDocsPageWhenToldSo) {
  App app;
  serve_openapi(app, {.docs_path = ""});
  TestClient client(app);
  EXPECT_EQ(client.get("/docs").status, 404);
  EXPECT_EQ(client.get("/openapi.json").status, 200);
}

}  // namespace
}  // namespace molt::web
