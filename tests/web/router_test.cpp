#include "molt/web/router.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace {

using molt::web::RouteError;
using molt::web::RouteMatch;
using molt::web::Router;

// The message of the RouteError that `add` throws, or "" when it does not throw.
std::string add_error(Router& router, std::string_view method, std::string_view pattern,
                      std::string_view name = {}) {
  try {
    router.add(method, pattern, 0, name);
  } catch (const RouteError& error) {
    return error.what();
  }
  return "";
}

TEST(RouterTest, MalformedPatternsAreRefusedWithTheReason) {
  Router router;
  EXPECT_NE(add_error(router, "GET", "users").find("starts with '/'"), std::string::npos);
  EXPECT_NE(add_error(router, "GET", "/users/{id").find("whole segment"), std::string::npos);
  EXPECT_NE(add_error(router, "GET", "/files/{name}.txt").find("whole segment"), std::string::npos);
  EXPECT_NE(add_error(router, "GET", "/x/{id:float}").find("unknown parameter kind 'float'"),
            std::string::npos);
  EXPECT_NE(add_error(router, "GET", "/x/{1d}").find("identifiers"), std::string::npos);
  EXPECT_NE(add_error(router, "GET", "/x/{}").find("identifiers"), std::string::npos);
  EXPECT_NE(add_error(router, "GET", "/x/{a}/{a}").find("appears twice"), std::string::npos);
  EXPECT_NE(add_error(router, "GET", "/s/{rest:path}/more").find("last segment"),
            std::string::npos);
  EXPECT_NE(add_error(router, "GET", "/a%20b").find("decoded"), std::string::npos);
  EXPECT_NE(add_error(router, "GET", "/a/../b").find("never match"), std::string::npos);
  EXPECT_NE(add_error(router, "GE T", "/ok").find("invalid method"), std::string::npos);
  EXPECT_NE(add_error(router, "", "/ok").find("invalid method"), std::string::npos);
  // The message names the route.
  EXPECT_EQ(add_error(router, "GET", "/x/{1d}").rfind("route 'GET /x/{1d}': ", 0), 0u);
}

TEST(RouterTest, AmbiguousAndDuplicateRoutesAreRefusedAtStartup) {
  Router router;
  ASSERT_EQ(add_error(router, "GET", "/users/{id:int}", "users.show"), "");
  EXPECT_NE(
      add_error(router, "GET", "/users/{id:int}").find("duplicates route 'GET /users/{id:int}'"),
      std::string::npos);
  EXPECT_NE(add_error(router, "GET", "/users/{name}").find("ambiguous"), std::string::npos);
  EXPECT_NE(add_error(router, "POST", "/users/{uid:int}/x").find("ambiguous"), std::string::npos);
  EXPECT_NE(add_error(router, "GET", "/users/{rest:path}").find("ambiguous"), std::string::npos);
  EXPECT_NE(add_error(router, "POST", "/other", "users.show").find("already used"),
            std::string::npos);
  // Same parameter, same kind, same name: a different method or a deeper route is fine.
  EXPECT_EQ(add_error(router, "PUT", "/users/{id:int}"), "");
  EXPECT_EQ(add_error(router, "GET", "/users/{id:int}/posts"), "");
  EXPECT_EQ(add_error(router, "GET", "/users/me"), "");
  // A refused route left nothing behind: the table still answers as before.
  EXPECT_EQ(router.match("GET", "/users/5").outcome(), RouteMatch::Outcome::Found);
  EXPECT_EQ(router.match("GET", "/users/bob").outcome(), RouteMatch::Outcome::NotFound);
}

TEST(RouterTest, ParametersAreTyped) {
  Router router;
  router.add("GET", "/users/{id:int}/files/{name}/{rest:path}", 7);
  const RouteMatch match = router.match("GET", "/users/0042/files/a%2Fb/x/y%20z");
  ASSERT_TRUE(match.found());
  EXPECT_EQ(match.route(), 7u);
  EXPECT_EQ(match.int_param("id"), 42);
  EXPECT_EQ(match.param("name"), "a/b");
  EXPECT_EQ(match.param("rest"), "x/y z");
  EXPECT_EQ(match.int_param("name"), std::nullopt);
  EXPECT_EQ(match.param("missing"), std::nullopt);
  // Found by a review: a plain {name} holding a negative integer was "not an integer".
  router.add("GET", "/p/{n}", 8);
  EXPECT_EQ(router.match("GET", "/p/-5").int_param("n"), -5);
  EXPECT_EQ(router.match("GET", "/p/-9223372036854775808").int_param("n"), INT64_MIN);
  for (const char* not_one : {"/p/-", "/p/--5", "/p/+5", "/p/5-", "/p/-9223372036854775809"})
    EXPECT_EQ(router.match("GET", not_one).int_param("n"), std::nullopt) << not_one;
  EXPECT_EQ(router.match("GET", "/users/-5/files/a/b").outcome(), RouteMatch::Outcome::NotFound);
  EXPECT_EQ(router.match("GET", "/users/9223372036854775808/files/a/b").outcome(),
            RouteMatch::Outcome::NotFound);  // one past int64
  EXPECT_TRUE(router.match("GET", "/users/9223372036854775807/files/a/b").found());
  // A %2F cannot smuggle a '.' or '..' segment into a value: "a%2F..%2Fb" is refused as
  // "/a/../b" is (url_for refuses such values too, so every match can be given back).
  for (const char* path : {"/users/1/files/a%2F..%2Fb/x", "/users/1/files/n/a%2F.",
                           "/users/1/files/n/%2E%2E%2Fetc", "/users/1/files/n/x/..%2F.."})
    EXPECT_EQ(router.match("GET", path).outcome(), RouteMatch::Outcome::BadPath) << path;
  EXPECT_TRUE(router.match("GET", "/users/1/files/n/a%2F.b%2F..c").found());
}

// A route the path matches but whose method is another does not hide a later one that takes
// the method; 405 only when none does.
TEST(RouterTest, ARouteWithAnotherMethodDoesNotHideOneThatTakesIt) {
  Router router;
  router.add("GET", "/static/{rest:path}", 1);
  router.add("POST", "/static/upload", 2);
  router.add("GET", "/users/me", 3);
  router.add("DELETE", "/users/{id}", 4);
  EXPECT_EQ(router.match("GET", "/static/upload").route(), 1u);
  EXPECT_EQ(router.match("GET", "/static/upload").param("rest"), "upload");
  EXPECT_EQ(router.match("HEAD", "/static/upload").route(), 1u);
  EXPECT_EQ(router.match("POST", "/static/upload").route(), 2u);
  EXPECT_EQ(router.match("DELETE", "/users/me").route(), 4u);
  EXPECT_EQ(router.match("DELETE", "/users/me").param("id"), "me");
  EXPECT_EQ(router.match("GET", "/users/me").route(), 3u);
  const RouteMatch refused = router.match("PUT", "/users/me");
  EXPECT_EQ(refused.outcome(), RouteMatch::Outcome::MethodNotAllowed);
  // Found by a review: Allow named only the first route the path matched (RFC 9110 §10.2.1:
  // the methods the resource supports, DELETE here too).
  EXPECT_EQ(refused.allow(), "DELETE, GET, HEAD, OPTIONS");
  EXPECT_EQ(refused.routes_at_path(), (std::vector<std::size_t>{3, 4}));
  // Found by a review: allow() was a view into the match's own string, wrong in a copy whose
  // original was gone, and in a move.
  std::optional<RouteMatch> copied;
  {
    const RouteMatch original = router.match("PUT", "/users/me");
    copied = original;
  }
  EXPECT_EQ(copied->allow(), "DELETE, GET, HEAD, OPTIONS");
  Router short_methods;
  short_methods.add("PUT", "/a/b", 1);
  short_methods.add("PUT", "/a/{x}", 2);
  const std::optional<RouteMatch> moved(short_methods.match("GET", "/a/b"));
  EXPECT_EQ(moved->allow(), "OPTIONS, PUT");
  const RouteMatch options = router.match("OPTIONS", "/static/upload");
  EXPECT_EQ(options.outcome(), RouteMatch::Outcome::Options);
  EXPECT_EQ(options.allow(), "GET, HEAD, OPTIONS, POST");
  EXPECT_EQ(router.match("PUT", "/static/x").allow(), "GET, HEAD, OPTIONS");  // one route
}

// A {rest:path} value stays inside its folder: never absolute, never with a NUL in it.
TEST(RouterTest, ARestPathValueIsNeverAbsolute) {
  Router router;
  router.add("GET", "/static/{rest:path}", 1);
  for (const char* path : {"/static//etc/passwd", "/static/%2Fetc%2Fpasswd", "/static///x"})
    EXPECT_EQ(router.match("GET", path).outcome(), RouteMatch::Outcome::NotFound) << path;
  for (const std::string& path : {std::string("/static/a%00b"), std::string("/static/x/%00"),
                                  std::string("/static/a\0b", 11)})
    EXPECT_EQ(router.match("GET", path).outcome(), RouteMatch::Outcome::BadPath) << path;
  EXPECT_EQ(router.match("GET", "/static/").param("rest"), "");  // the folder itself
  EXPECT_EQ(router.match("GET", "/static/css/a//b").param("rest"), "css/a//b");
  EXPECT_EQ(router.match("GET", "/static/a%2Fb").param("rest"), "a/b");
  // Nor can a literal with a NUL ever match: refused when added (found by fuzz_router).
  EXPECT_THROW(router.add("GET", std::string("/x\0y", 4), 2), molt::web::RouteError);
}

TEST(RouterTest, AMatchObjectCanBeReusedAcrossRequests) {
  Router router;
  router.add("GET", "/a/{x}", 1);
  router.add("GET", "/b", 2);
  RouteMatch match;
  router.match("GET", "/a/first%20value", match);
  EXPECT_EQ(match.param("x"), "first value");
  router.match("GET", "/b", match);
  EXPECT_EQ(match.route(), 2u);
  EXPECT_EQ(match.param_count(), 0u);
  router.match("GET", "/nothing", match);
  EXPECT_EQ(match.outcome(), RouteMatch::Outcome::NotFound);
}

TEST(RouterTest, TooManySegmentsIsABadPath) {
  Router router;
  router.add("GET", "/{rest:path}", 1);
  std::string path;
  for (std::size_t i = 0; i < Router::kMaxSegments; ++i) path += "/s";
  EXPECT_TRUE(router.match("GET", path).found());
  EXPECT_EQ(router.match("GET", path + "/s").outcome(), RouteMatch::Outcome::BadPath);
}

// Found by a review: /users/%FF reached the handler as the byte 0xff, which it echoed into
// JSON that no client could read. Parameters are text: a path that is not UTF-8 matches no
// route (a 404 that a fallback, the gateway's, may still take).
TEST(RouterTest, APathThatIsNotUtf8MatchesNoRoute) {
  Router router;
  router.add("GET", "/users/{name}", 1);
  for (const char* path : {"/users/%FF", "/users/%C0%AF", "/users/caf%C3", "/users/\xff"})
    EXPECT_EQ(router.match("GET", path).outcome(), RouteMatch::Outcome::NotFound) << path;
  const RouteMatch ok = router.match("GET", "/users/caf%C3%A9");
  ASSERT_TRUE(ok.found());
  EXPECT_EQ(ok.param("name"), "caf\xc3\xa9");
  // Neither a pattern nor a url_for value can make such a path.
  EXPECT_THROW(router.add("GET", "/caf\xe9", 2), molt::web::RouteError);
  router.add("GET", "/files/{name}", 3, "file");
  EXPECT_THROW(router.url_for("file", {{"name", "\xff"}}), molt::web::RouteError);
}

TEST(RouterTest, UrlForBuildsEncodedPathsThatRouteBack) {
  Router router;
  router.add("GET", "/users/{id:int}/files/{name}", 1, "file");
  router.add("GET", "/static/{rest:path}", 2, "static");
  router.add("GET", "/café/menu", 3, "menu");
  const std::string url = router.url_for("file", {{"id", "12"}, {"name", "a/b c?"}});
  EXPECT_EQ(url, "/users/12/files/a%2Fb%20c%3F");
  const RouteMatch back = router.match("GET", url);
  ASSERT_TRUE(back.found());
  EXPECT_EQ(back.param("name"), "a/b c?");
  EXPECT_EQ(router.url_for("static", {{"rest", "css/site main.css"}}),
            "/static/css/site%20main.css");
  EXPECT_EQ(router.url_for("menu", {}), "/caf%C3%A9/menu");
  EXPECT_TRUE(router.match("GET", router.url_for("menu", {})).found());

  const auto error_of = [&](std::string_view name,
                            std::vector<std::pair<std::string_view, std::string_view>> params) {
    try {
      router.url_for(name, params);
    } catch (const RouteError& error) {
      return std::string(error.what());
    }
    return std::string();
  };
  EXPECT_NE(error_of("nope", {}).find("no route named 'nope'"), std::string::npos);
  EXPECT_NE(error_of("file", {{"id", "12"}}).find("missing parameter 'name'"), std::string::npos);
  EXPECT_NE(error_of("file", {{"id", "x"}, {"name", "n"}}).find("non-negative integer"),
            std::string::npos);
  EXPECT_NE(error_of("file", {{"id", "1"}, {"name", ".."}}).find("'..'"), std::string::npos);
  // Found by a review: values whose URL the router refuses were given a URL.
  for (const std::string_view name : std::initializer_list<std::string_view>{
           "a/../b", "./x", "x/.", std::string_view("a\0b", 3)}) {
    EXPECT_NE(error_of("file", {{"id", "1"}, {"name", name}}), "") << name;
  }
  EXPECT_NE(error_of("static", {{"rest", "/etc/passwd"}}).find("never absolute"),
            std::string::npos);
  EXPECT_NE(error_of("static", {{"rest", std::string_view("x\0", 2)}}).find("NUL"),
            std::string::npos);
  EXPECT_TRUE(router.match("GET", router.url_for("file", {{"id", "1"}, {"name", "a/.b"}})).found());
  EXPECT_NE(error_of("file", {{"id", "1"}, {"name", "n"}, {"extra", "e"}}).find("unknown"),
            std::string::npos);
  EXPECT_NE(error_of("static", {{"rest", "a/../b"}}).find("'..'"), std::string::npos);
}

}  // namespace
