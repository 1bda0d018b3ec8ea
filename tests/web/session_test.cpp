#include "molt/web/session.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "molt/web/test_client.hpp"

namespace molt::web {
namespace {

const std::string kKey = "a test key of more than thirty-two bytes, never a real one";

TEST(Signer, GivesBackWhatItSignedAndNothingElse) {
  const Signer signer(kKey);
  const std::string token = signer.sign("user:42; any bytes \x01\xff");
  EXPECT_EQ(token.find_first_of(" ;,\"\\="), std::string::npos) << token;  // a cookie value as is
  EXPECT_EQ(signer.unsign(token, std::chrono::hours(1)), "user:42; any bytes \x01\xff");
  EXPECT_EQ(signer.unsign(signer.sign(""), std::chrono::hours(1)), "");
  // Tampered anywhere: the value, the time, the signature.
  for (std::size_t i = 0; i < token.size(); ++i) {
    std::string changed = token;
    changed[i] = changed[i] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(signer.unsign(changed, std::chrono::hours(1))) << i;
  }
  EXPECT_FALSE(signer.unsign(token + "x", std::chrono::hours(1)));
  EXPECT_FALSE(signer.unsign("", std::chrono::hours(1)));
  EXPECT_FALSE(signer.unsign("no dots at all", std::chrono::hours(1)));
  // Another key, or too old.
  EXPECT_FALSE(Signer(kKey + "!").unsign(token, std::chrono::hours(1)));
  EXPECT_FALSE(signer.unsign(token, std::chrono::seconds(-1)));
  EXPECT_THROW(Signer("short"), std::invalid_argument);
  // One key, two uses: a token signed for one purpose is refused for the other.
  const std::string link = Signer(kKey, "email-confirm").sign(R"({"user":"eve"})");
  EXPECT_TRUE(Signer(kKey, "email-confirm").unsign(link, std::chrono::hours(1)));
  EXPECT_FALSE(Signer(kKey, "molt.web.session").unsign(link, std::chrono::hours(1)));
  EXPECT_FALSE(signer.unsign(link, std::chrono::hours(1)));
}

App& session_app() {
  static App app;
  static bool ready = false;
  if (!ready) {
    app.use(sessions({.secret_key = kKey, .max_age = std::chrono::hours(1)}));
    app.post("/login", [](const Request& request, Ctx& ctx) {
      session(ctx).set("user", std::string(request.query_param("user").value_or("ann")));
      return Response(204);
    });
    app.get("/me", [](const Request&, Ctx& ctx) {
      const auto user = session(ctx).get("user");
      if (!user) throw HttpError(401, "unauthorized", "log in first");
      return Response::text(std::string(*user));
    });
    app.post("/logout", [](const Request&, Ctx& ctx) {
      session(ctx).clear();
      return Response(204);
    });
    app.post("/hoard", [](const Request&, Ctx& ctx) {
      session(ctx).set("big", std::string(5000, 'x'));
      return Response(204);
    });
    ready = true;
  }
  return app;
}

TEST(Sessions, LiveInASignedCookieFromLoginToLogout) {
  TestClient client(session_app());
  EXPECT_EQ(client.get("/me").status, 401);
  const auto login = client.request("POST", "/login?user=bob");
  const std::string set = login.header("Set-Cookie").value_or("");
  EXPECT_TRUE(set.starts_with("session=")) << set;
  EXPECT_NE(set.find("; Max-Age=3600; Path=/; HttpOnly; SameSite=Lax"), std::string::npos) << set;
  EXPECT_EQ(client.get("/me").body, "bob");
  EXPECT_FALSE(client.get("/me").header("Set-Cookie"));  // unchanged: not sent again
  const auto logout = client.request("POST", "/logout");
  EXPECT_NE(logout.header("Set-Cookie").value_or("").find("Max-Age=0"), std::string::npos);
  EXPECT_EQ(client.get("/me").status, 401);
}

TEST(Sessions, AForgedOrForeignCookieIsAnEmptySession) {
  TestClient client(session_app());
  client.request("POST", "/login?user=bob");
  const std::string real = client.cookies().at(0).value;
  client.clear_cookies();
  // The value is readable (signed, not encrypted), but changing it breaks the signature.
  const std::string forged = real.substr(0, 4) + (real[4] == 'A' ? "B" : "A") + real.substr(5);
  EXPECT_EQ(client.get("/me", {{"Cookie", "session=" + forged}}).status, 401);
  EXPECT_EQ(
      client.get("/me", {{"Cookie", "session=" + Signer(kKey + "?").sign(R"({"user":"eve"})")}})
          .status,
      401);
  EXPECT_EQ(
      client.get("/me", {{"Cookie", "session=" + Signer(kKey).sign(R"({"user":"eve"})")}}).status,
      401);  // this key, but not signed for sessions
  EXPECT_EQ(
      client
          .get("/me", {{"Cookie", "session=" + Signer(kKey, "molt.web.session").sign("not json")}})
          .status,
      401);
  EXPECT_EQ(client.get("/me", {{"Cookie", "session=" + real}}).body, "bob");
}

TEST(Sessions, OneTooLargeForACookieIsAFailureNotALoss) {
  TestClient client(session_app());
  EXPECT_EQ(client.request("POST", "/hoard").status, 500);
  EXPECT_TRUE(client.cookies().empty());
}

TEST(Sessions, AHandlerWithoutTheMiddlewareIsToldSo) {
  App app;
  app.get("/me", [](const Request&, Ctx& ctx) {
    session(ctx);
    return Response(204);
  });
  TestClient client(app);
  EXPECT_EQ(client.get("/me").status, 500);
  EXPECT_THROW(sessions({.secret_key = "short"}), std::invalid_argument);
  EXPECT_THROW(sessions({.secret_key = kKey, .same_site = SameSite::None}), std::invalid_argument);
  EXPECT_THROW(sessions({.secret_key = kKey, .cookie_name = "a b"}), std::invalid_argument);
  EXPECT_NO_THROW(sessions({.secret_key = kKey, .https_only = true, .same_site = SameSite::None}));
}

}  // namespace
}  // namespace molt::web
