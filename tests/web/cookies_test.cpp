#include "molt/web/cookies.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "molt/web/test_client.hpp"

namespace molt::web {
namespace {

// An app whose /echo answers `name=value|` for every cookie, and /session the one cookie.
struct CookieApp {
  App app;
  CookieApp() {
    app.get("/echo", [](const Request& request, Ctx&) {
      std::string out;
      for (const auto& [name, value] : cookies(request))
        out.append(name).append("=").append(value).append("|");
      return Response::text(out);
    });
    app.get("/session", [](const Request& request, Ctx&) {
      const auto session = cookie(request, "session");
      return session ? Response::text(std::string(*session)) : Response(204);
    });
  }
};

TEST(Cookies, ReadByNameFromEveryCookieHeader) {
  CookieApp fixture;
  TestClient client(fixture.app);
  EXPECT_EQ(client.get("/echo", {{"Cookie", "a=1; b=two;c=\"quoted\"; ; flag; d="}}).body,
            "a=1|b=two|c=quoted|d=|");
  EXPECT_EQ(client.get("/echo", {{"Cookie", "a=1"}, {"cookie", "b=2"}}).body, "a=1|b=2|");
  EXPECT_EQ(client.get("/session", {{"Cookie", "sessionx=no; session=yes; session=older"}}).body,
            "yes");
  EXPECT_EQ(client.get("/session", {{"Cookie", "Session=case-counts"}}).status, 204);
  EXPECT_EQ(client.get("/session").status, 204);
  // A value may hold '=' (base64 padding): only the first one splits.
  EXPECT_EQ(client.get("/session", {{"Cookie", "session=YWI=; x=1"}}).body, "YWI=");
}

TEST(Cookies, SetWithTheirAttributes) {
  Response response;
  set_cookie(response, "session", "abc123",
             {.max_age = std::chrono::hours(1),
              .domain = "example.com",
              .secure = true,
              .http_only = true,
              .same_site = SameSite::Strict});
  set_cookie(response, "theme", "dark");
  set_cookie(response, "raw", "1", {.path = "", .same_site = SameSite::Unset});
  ASSERT_EQ(response.headers().size(), 3u);
  EXPECT_EQ(response.headers()[0].second,
            "session=abc123; Max-Age=3600; Path=/; Domain=example.com; Secure; HttpOnly; "
            "SameSite=Strict");
  EXPECT_EQ(response.headers()[1].second, "theme=dark; Path=/; SameSite=Lax");
  EXPECT_EQ(response.headers()[2].second, "raw=1");
  for (const auto& [name, value] : response.headers()) EXPECT_EQ(name, "Set-Cookie");
}

TEST(Cookies, DeletedWithTheSamePath) {
  Response response;
  delete_cookie(response, "session", {.path = "/app"});
  EXPECT_EQ(response.headers().at(0).second, "session=; Max-Age=0; Path=/app; SameSite=Lax");
}

TEST(Cookies, WhatCannotBeACookieIsRefusedBeforeAnythingIsAdded) {
  Response response;
  EXPECT_THROW(set_cookie(response, "", "v"), std::invalid_argument);
  EXPECT_THROW(set_cookie(response, "a b", "v"), std::invalid_argument);
  EXPECT_THROW(set_cookie(response, "a=b", "v"), std::invalid_argument);
  for (const std::string& bad :
       std::vector<std::string>{"two words", "a;b", "a,b", "say \"hi\"", "back\\slash",
                                "line\r\nSet-Cookie: admin=1", std::string("nul\0", 4), "\xC3\xA9"})
    EXPECT_THROW(set_cookie(response, "v", bad), std::invalid_argument) << bad;
  EXPECT_THROW(set_cookie(response, "v", "1", {.path = "/; Domain=evil.example"}),
               std::invalid_argument);
  EXPECT_THROW(set_cookie(response, "v", "1", {.domain = "x\r\nInjected: 1"}),
               std::invalid_argument);
  EXPECT_THROW(set_cookie(response, "v", "1", {.domain = "a b.example"}), std::invalid_argument);
  EXPECT_THROW(set_cookie(response, "v", "1", {.same_site = SameSite::None}),
               std::invalid_argument);
  EXPECT_TRUE(response.headers().empty());
  try {
    set_cookie(response, "v", "a b");
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("cookie 'v'"), std::string::npos) << e.what();
  }
  try {
    set_cookie(response, "a\r\nb", "1");
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("cookie 'a??b'"), std::string::npos) << e.what();
  }
}

TEST(Cookies, SetCookieHeadersReachTheClientOneLineEach) {
  App app;
  app.post("/login", [](const Request&, Ctx&) {
    Response response(204);
    set_cookie(response, "session", "s1", {.http_only = true});
    set_cookie(response, "csrf", "c1");
    return response;
  });
  TestClient client(app);
  const TestResponse answer = client.request("POST", "/login");
  int lines = 0;
  for (const auto& [name, value] : answer.headers) lines += iequals(name, "Set-Cookie");
  EXPECT_EQ(lines, 2);
}

TEST(Cookies, TheTestClientKeepsThemAsABrowserWould) {
  App app;
  app.post("/login", [](const Request&, Ctx&) {
    Response response(204);
    set_cookie(response, "session", "s1", {.http_only = true});
    set_cookie(response, "admin_view", "on", {.path = "/admin"});
    return response;
  });
  app.post("/logout", [](const Request&, Ctx&) {
    Response response(204);
    delete_cookie(response, "session");
    return response;
  });
  app.get("/me", [](const Request& request, Ctx&) {
    const auto session = cookie(request, "session");
    if (!session) throw HttpError(401, "unauthorized", "log in first");
    return Response::text(std::string(*session) + (cookie(request, "admin_view") ? "+admin" : ""));
  });
  app.get("/admin/me", [](const Request& request, Ctx&) {
    return Response::text(std::string(cookie(request, "admin_view").value_or("none")));
  });
  TestClient client(app);
  EXPECT_EQ(client.get("/me").status, 401);
  client.request("POST", "/login");
  EXPECT_EQ(client.get("/me?x=1").body, "s1");  // no admin_view outside /admin
  EXPECT_EQ(client.get("/admin/me").body, "on");
  EXPECT_EQ(client.get("/me", {{"Cookie", "session=mine"}}).body, "mine");  // a header of its own
  client.request("POST", "/logout");
  EXPECT_EQ(client.get("/me").status, 401);
  ASSERT_EQ(client.cookies().size(), 1u);
  EXPECT_EQ(client.cookies()[0].name, "admin_view");
  client.set_cookie("session", "planted");
  EXPECT_EQ(client.get("/me").body, "planted");
  client.clear_cookies();
  EXPECT_EQ(client.get("/me").status, 401);
}

TEST(Cookies, TheTestClientOrdersExpiresAndKeepsSecureCookiesHome) {
  App app;
  app.post("/set", [](const Request& request, Ctx&) {
    Response response(204);
    for (const auto& line : request.query_params("line")) response.add_header("Set-Cookie", line);
    return response;
  });
  app.get("/a/b/echo", [](const Request& request, Ctx&) {
    return Response::text(std::string(request.header("Cookie").value_or("")));
  });
  TestClient client(app);
  const auto set = [&](std::string_view line) {
    std::string encoded;
    for (const char c : line) {
      if (c == ' ')
        encoded += "%20";
      else if (c == ';')
        encoded += "%3B";
      else if (c == ',')
        encoded += "%2C";
      else
        encoded += c;
    }
    ASSERT_EQ(client.request("POST", "/set?line=" + encoded).status, 204);
  };
  set("s=root; Path=/");
  set("s=deeper; Path=/a");
  set("s=root2; Path=/");  // re-set: stays where it was
  set("old=1; Path=/");
  set("old=1; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
  set("kept=1; Path=/; Max-Age=60; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
  set("sec=1; Path=/; Secure");
  EXPECT_EQ(client.get("/a/b/echo").body, "s=deeper; s=root2; kept=1");
  EXPECT_EQ(client.get("http://testserver/a/b/echo").body, "s=deeper; s=root2; kept=1");
  ASSERT_EQ(client.cookies().size(), 4u);  // sec is kept, not sent
  EXPECT_TRUE(client.cookies().back().secure);
}

}  // namespace
}  // namespace molt::web
