#include "molt/web/typed.hpp"

#include <gtest/gtest.h>

#include <boost/describe.hpp>
#include <optional>
#include <string>
#include <vector>

#include "molt/codec/defaults.hpp"
#include "molt/codec/rules.hpp"
#include "molt/web/test_client.hpp"

namespace typed_test {

struct NewItem {
  std::string title;
  std::optional<double> score;
  std::vector<std::string> tags;
};
BOOST_DESCRIBE_STRUCT(NewItem, (), (title, score, tags))

struct Created {
  std::int64_t id;
  std::string title;
  double score;
};
BOOST_DESCRIBE_STRUCT(Created, (), (id, title, score))

enum class Sort { id, title };
BOOST_DESCRIBE_ENUM(Sort, id, title)
struct ItemFilter {
  std::int64_t user_id = 0;
  std::optional<std::string> status;
  std::vector<std::string> tag;
  int limit = 50;
  bool open = false;
  Sort sort = Sort::id;
  std::vector<std::string> fields{"id", "title"};
};
BOOST_DESCRIBE_STRUCT(ItemFilter, (), (user_id, status, tag, limit, open, sort, fields))
MOLT_DEFAULTS(ItemFilter, limit, open, sort, fields)
MOLT_RULES(ItemFilter, rule(&ItemFilter::limit, between(1, 500)),
           rule(&ItemFilter::tag, each(pattern("^[a-z ]+$"))))

}  // namespace typed_test

namespace {

using boost::asio::awaitable;
using molt::web::App;
using molt::web::Ctx;
using molt::web::Request;
using molt::web::Response;
using molt::web::TestClient;
using typed_test::Created;
using typed_test::NewItem;

App& items_app() {
  static App app;
  static bool ready = false;
  if (!ready) {
    app.post("/items", [](const Request& request, Ctx&) -> awaitable<Response> {
      const auto item = molt::web::body_as<NewItem>(request);
      co_return molt::web::respond(request, Created{7, item.title, item.score.value_or(0.5)}, 201);
    });
    app.get("/page", [](const Request& request, Ctx&) -> awaitable<Response> {
      const int limit = molt::web::query_as(request, "limit", 50);
      const bool exact = molt::web::query_as(request, "exact", false);
      std::string tags;
      for (const std::string& tag : request.query_params("tag")) tags += " #" + tag;
      co_return Response::text(std::to_string(limit) + (exact ? " exact" : "") + tags);
    });
    ready = true;
  }
  return app;
}

TEST(TypedTest, JsonInJsonOut) {
  TestClient client(items_app());
  const auto created = client.request("POST", "/items", R"({"title":"café","tags":["a"]})",
                                      {{"Content-Type", "application/json; charset=utf-8"}});
  EXPECT_EQ(created.status, 201);
  EXPECT_EQ(created.header("Content-Type"), "application/json");
  EXPECT_EQ(created.body, R"({"id":7,"title":"café","score":0.5})");
}

TEST(TypedTest, MsgPackByContentTypeAndAccept) {
  TestClient client(items_app());
  const std::string body = molt::codec::to_msgpack(NewItem{"x", 2.25, {}});
  const auto created = client.request("POST", "/items", body,
                                      {{"Content-Type", "application/msgpack"},
                                       {"Accept", "application/msgpack, application/json"}});
  EXPECT_EQ(created.status, 201);
  EXPECT_EQ(created.header("Content-Type"), "application/msgpack");
  const auto decoded = molt::codec::decode_msgpack<Created>(created.body);
  EXPECT_EQ(decoded.title, "x");
  EXPECT_EQ(decoded.score, 2.25);
  // JSON when the client names it beside a wildcard, or accepts anything.
  const auto json = client.request(
      "POST", "/items", body,
      {{"Content-Type", "application/msgpack"}, {"Accept", "*/*, application/json"}});
  EXPECT_EQ(json.header("Content-Type"), "application/json");
}

// Accept's q-values decide (RFC 9110 §12.5.1); at equal weights a type named outright beats
// one a wildcard matched, then the type named first wins; JSON when neither is named or
// acceptable. Negotiated answers say Vary: Accept.
TEST(TypedTest, AcceptWeightsChooseTheFormat) {
  TestClient client(items_app());
  const std::string body = R"({"title":"x","tags":[]})";
  const auto format = [&](const std::string& accept) {
    const auto answer = client.request("POST", "/items", body, {{"Accept", accept}});
    EXPECT_EQ(answer.status, 201) << accept << ": " << answer.body;
    EXPECT_EQ(answer.header("Vary"), "Accept") << accept;
    return std::string(answer.header("Content-Type").value_or(""));
  };
  EXPECT_EQ(format("application/json;q=0, application/msgpack"), "application/msgpack");
  EXPECT_EQ(format("application/json;q=0.5, application/msgpack;q=0.9"), "application/msgpack");
  EXPECT_EQ(format("application/msgpack;q=0.4, application/json"), "application/json");
  EXPECT_EQ(format("application/msgpack ; q=0.8 , */*;q=0.1"), "application/msgpack");
  EXPECT_EQ(format("application/x-msgpack"), "application/msgpack");
  EXPECT_EQ(format("application/*"), "application/json");
  EXPECT_EQ(format("application/msgpack;q=0, */*"), "application/json");
  EXPECT_EQ(format("application/msgpack;q=abc, application/json;q=0.1"), "application/json");
  EXPECT_EQ(format("text/html"), "application/json");
  EXPECT_EQ(format("APPLICATION/MSGPACK"), "application/msgpack");
  EXPECT_EQ(format("*/*"), "application/json");
  EXPECT_EQ(format("*/*, application/json"), "application/json");
  EXPECT_EQ(format("application/*, application/json"), "application/json");
  EXPECT_EQ(format("text/html, */*;q=0.8, application/json;q=0.8"), "application/json");
  EXPECT_EQ(format("*/*, application/msgpack"), "application/msgpack");
  EXPECT_EQ(format("application/msgpack, application/json"), "application/msgpack");
  EXPECT_EQ(format("application/json, application/msgpack"), "application/json");
  // Found by a review: MsgPack's other name weighed more was not heard; an empty weight took
  // everything (a malformed one takes nothing); only the first of several Accept lines was read.
  EXPECT_EQ(format("application/msgpack;q=0.5, application/x-msgpack;q=1, application/json;q=0.8"),
            "application/msgpack");
  EXPECT_EQ(format("application/msgpack;q=, application/json;q=0.9"), "application/json");
  const auto two_lines =
      client.request("POST", "/items", body,
                     {{"Accept", "application/json;q=0.1"}, {"Accept", "application/msgpack"}});
  EXPECT_EQ(two_lines.header("Content-Type"), "application/msgpack");
}

TEST(TypedTest, BadBodiesAreClear400sOr415) {
  TestClient client(items_app());
  const auto wrong_type = client.request("POST", "/items", R"({"title":5})");
  EXPECT_EQ(wrong_type.status, 400);
  EXPECT_NE(wrong_type.body.find("body.title: expected string"), std::string::npos)
      << wrong_type.body;
  // Where it is, apart, for a client to point at the field (FastAPI's `loc`).
  EXPECT_NE(wrong_type.body.find(R"("field":"body.title")"), std::string::npos) << wrong_type.body;
  EXPECT_EQ(client.request("POST", "/items", "{not json").status, 400);
  EXPECT_EQ(client.request("POST", "/items", R"({"score":1})").status, 400);  // title missing
  EXPECT_EQ(client.request("POST", "/items", "x", {{"Content-Type", "text/plain"}}).status, 415);
  // Whitespace before the parameters is allowed (RFC 9110 §5.6.6).
  EXPECT_EQ(client
                .request("POST", "/items", R"({"title":"x","tags":[]})",
                         {{"Content-Type", "application/json ; charset=utf-8"}})
                .status,
            201);
  // A +json type is JSON (RFC 6839); a JSON-looking type that is not application/ is not.
  for (const char* type : {"application/vnd.api+json", "application/merge-patch+JSON"})
    EXPECT_EQ(
        client.request("POST", "/items", R"({"title":"x","tags":[]})", {{"Content-Type", type}})
            .status,
        201)
        << type;
  for (const char* type : {"text/x+json", "application/+json", "application/json-seq"})
    EXPECT_EQ(client.request("POST", "/items", R"({"title":"x"})", {{"Content-Type", type}}).status,
              415)
        << type;
}

TEST(TypedTest, QueryParametersAreTyped) {
  TestClient client(items_app());
  EXPECT_EQ(client.get("/page").body, "50");
  EXPECT_EQ(client.get("/page?limit=7&exact=true").body, "7 exact");
  EXPECT_EQ(client.get("/page?tag=a&limit=3&tag=b+c&tag").body, "3 #a #b c #");
  EXPECT_EQ(client.get("/page?tag=a&tag=%FF").status, 400);  // every value is checked
  const auto bad = client.get("/page?limit=seven");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(
      bad.body,
      R"({"error":{"code":"invalid_input","message":"query parameter 'limit' must be an integer in range"}})");
  EXPECT_EQ(client.get("/page?limit=99999999999").status, 400);
  EXPECT_EQ(client.get("/page?exact=maybe").status, 400);
  // Found by a review: FastAPI (Pydantic) takes these spellings of a bool, and "+7".
  for (const char* yes : {"True", "1", "yes", "ON", "t", "y"})
    EXPECT_EQ(client.get(std::string("/page?limit=7&exact=") + yes).body, "7 exact") << yes;
  for (const char* no : {"False", "0", "no", "off", "F", "n"})
    EXPECT_EQ(client.get(std::string("/page?limit=7&exact=") + no).body, "7") << no;
  EXPECT_EQ(client.get("/page?limit=%2B7").body, "7");
  for (const char* not_one : {"/page?limit=%2B", "/page?limit=%2B-7", "/page?limit=%2B%2B7"})
    EXPECT_EQ(client.get(not_one).status, 400) << not_one;
  // A malformed escape in the value is a 400 naming it, not "absent"; one in another pair's
  // name does not hide the parameter.
  const auto malformed = client.get("/page?limit=%zz");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_NE(malformed.body.find("query parameter 'limit' is not valid percent-encoding"),
            std::string::npos)
      << malformed.body;
  EXPECT_EQ(client.get("/page?%zz=1&limit=7").body, "7");
}

// FastAPI's query parameter models: a struct from the query string.
TEST(TypedTest, AStructFromTheQueryStringTakesItsMembersByName) {
  using typed_test::ItemFilter;
  const auto filter = [](const char* target) {
    molt::web::Request request;
    request.set_start_line("GET", target, 11);
    return molt::web::query_as<ItemFilter>(request);
  };
  const ItemFilter full = filter("/p?user_id=7&tag=a&status=open&tag=b+c&limit=%2B5&open=on&x=1");
  EXPECT_EQ(full.user_id, 7);
  EXPECT_EQ(full.status, "open");
  EXPECT_EQ(full.tag, (std::vector<std::string>{"a", "b c"}));
  EXPECT_EQ(full.limit, 5);
  EXPECT_TRUE(full.open);
  EXPECT_EQ(full.sort, typed_test::Sort::id);
  EXPECT_EQ(filter("/p?user_id=7&sort=title").sort, typed_test::Sort::title);
  const ItemFilter bare = filter("/p?user_id=7");
  EXPECT_EQ(bare.status, std::nullopt);
  EXPECT_TRUE(bare.tag.empty());
  EXPECT_EQ(bare.limit, 50);  // MOLT_DEFAULTS
  EXPECT_FALSE(bare.open);
  EXPECT_EQ(bare.fields, (std::vector<std::string>{"id", "title"}));  // a list's default too
  EXPECT_EQ(filter("/p?user_id=7&fields=score").fields, (std::vector<std::string>{"score"}));
  EXPECT_EQ(filter("/p?user_id=7&status=").status, "");    // an empty value is the empty text
  EXPECT_EQ(filter("/p?user_id=1&user_id=9").user_id, 9);  // the last, as query_as reads one
}

TEST(TypedTest, AStructFromTheQueryStringNamesTheParameterItCannotRead) {
  App app;
  app.get("/items", [](const Request& request, Ctx&) -> awaitable<Response> {
    const auto filter = molt::web::query_as<typed_test::ItemFilter>(request);
    co_return Response::text(std::to_string(filter.user_id));
  });
  TestClient client(app);
  EXPECT_EQ(client.get("/items?user_id=7").body, "7");
  const auto message = [&](const char* target) {
    const auto answer = client.get(target);
    EXPECT_EQ(answer.status, 400) << target;
    return answer.json().at("error").at("message").as_string();
  };
  EXPECT_EQ(message("/items"),
            "query.user_id: expected a value, got nothing (the field is required)");
  EXPECT_EQ(message("/items?user_id=x"), "query.user_id: expected an integer in range, got \"x\"");
  EXPECT_EQ(message("/items?user_id="), "query.user_id: expected an integer in range, got \"\"");
  EXPECT_EQ(message("/items?user_id=7&limit=0"),
            "query.limit: expected an integer from 1 to 500, got 0");
  EXPECT_EQ(message("/items?user_id=7&tag=ok&tag=NO"),
            "query.tag[1]: expected text matching ^[a-z ]+$, got \"NO\"");
  EXPECT_EQ(message("/items?user_id=7&open=maybe"),
            "query.open: expected true or false (or 1/0, yes/no, on/off), got \"maybe\"");
  EXPECT_EQ(message("/items?user_id=7&sort=Title"),
            "query.sort: expected one of \"id\", \"title\", got \"Title\"");
  // A value that is no percent-encoded UTF-8 is named as any other bad value.
  EXPECT_EQ(message("/items?user_id=7&tag=%FF"),
            "query.tag: expected percent-encoded UTF-8, got a malformed escape or bytes that "
            "are not");
  EXPECT_EQ(message("/items?user_id=%zz"),
            "query.user_id: expected percent-encoded UTF-8, got a malformed escape or bytes "
            "that are not");
}

TEST(TypedTest, QueryNumbersAreFinite) {
  for (const char* target : {"/p?x=nan", "/p?x=inf", "/p?x=-infinity", "/p?x=NAN"}) {
    molt::web::Request request;
    request.set_start_line("GET", target, 11);
    EXPECT_THROW(molt::web::query_as<double>(request, "x"), molt::web::HttpError) << target;
  }
  molt::web::Request request;
  request.set_start_line("GET", "/p?x=-2.5e3", 11);
  EXPECT_EQ(molt::web::query_as<double>(request, "x"), -2500.0);
}

TEST(TypedTest, ARequiredQueryParameterIsThereOrA400SayingSo) {
  const auto answer = [](const char* target) {
    molt::web::Request request;
    request.set_start_line("GET", target, 11);
    try {
      return std::to_string(molt::web::query_required<std::int64_t>(request, "user_id"));
    } catch (const molt::web::HttpError& e) {
      return std::to_string(e.status()) + " " + e.what();
    }
  };
  molt::web::Request sorted;
  sorted.set_start_line("GET", "/p?sort=title", 11);
  EXPECT_EQ(molt::web::query_as(sorted, "sort", "id"), "title");  // a literal default: text
  EXPECT_EQ(molt::web::query_as(sorted, "order", "asc"), "asc");
  EXPECT_EQ(answer("/p?user_id=7"), "7");
  EXPECT_EQ(answer("/p?q=7"), "400 query parameter 'user_id' is required");
  EXPECT_EQ(answer("/p?user_id=x"), "400 query parameter 'user_id' must be an integer in range");
}

}  // namespace
