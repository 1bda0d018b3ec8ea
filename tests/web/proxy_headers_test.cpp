// proxy_headers(): who the client is behind a trusted reverse proxy, and who may say so.
#include <gtest/gtest.h>

#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "molt/web/middleware.hpp"
#include "molt/web/server.hpp"
#include "molt/web/test_client.hpp"
#include "socket_client.hpp"

namespace {

using boost::asio::awaitable;
using molt::web::App;
using molt::web::Ctx;
using molt::web::ProxyHeadersOptions;
using molt::web::Request;
using molt::web::Response;
using molt::web::TestClient;

// The client, the socket's peer and the scheme, as the handler sees them.
void add_whoami(App& app) {
  app.get("/whoami", [](const Request& request, Ctx&) -> awaitable<Response> {
    co_return Response::text(std::string(request.remote_address()) + " " +
                             std::string(request.peer_address()) + " " +
                             std::string(request.scheme()));
  });
}

// What /whoami answers to a request from `peer` with `headers`, behind proxy_headers(options).
std::string whoami(ProxyHeadersOptions options, std::string peer,
                   const TestClient::Headers& headers) {
  App app;
  app.use(molt::web::proxy_headers(std::move(options)));
  add_whoami(app);
  TestClient client(app);
  client.set_peer_address(std::move(peer));
  const auto answer = client.get("/whoami", headers);
  EXPECT_EQ(answer.status, 200) << answer.body;
  return answer.body;
}

ProxyHeadersOptions trusting(std::vector<std::string> proxies) {
  return {.trusted_proxies = std::move(proxies)};
}

TEST(ProxyHeadersTest, ATrustedProxyNamesTheClientAndTheScheme) {
  EXPECT_EQ(whoami(trusting({"10.0.0.0/8"}), "10.1.2.3",
                   {{"X-Forwarded-For", "203.0.113.7"}, {"X-Forwarded-Proto", "https"}}),
            "203.0.113.7 10.1.2.3 https");
  // No headers: the peer, over plain HTTP.
  EXPECT_EQ(whoami(trusting({"10.0.0.0/8"}), "10.1.2.3", {}), "10.1.2.3 10.1.2.3 http");
  // The defaults trust the loopback proxy, as uvicorn's do.
  EXPECT_EQ(whoami({}, "127.0.0.1", {{"X-Forwarded-For", "203.0.113.7"}}),
            "203.0.113.7 127.0.0.1 http");
  EXPECT_EQ(whoami({}, "::1", {{"X-Forwarded-For", "2001:db8::7"}}), "2001:db8::7 ::1 http");
}

TEST(ProxyHeadersTest, AnyOtherPeerCannotChooseItsAddressOrScheme) {
  const TestClient::Headers spoofed = {{"X-Forwarded-For", "198.51.100.1"},
                                       {"X-Forwarded-Proto", "https"}};
  EXPECT_EQ(whoami(trusting({"10.0.0.0/8"}), "11.0.0.1", spoofed), "11.0.0.1 11.0.0.1 http");
  EXPECT_EQ(whoami({}, "192.0.2.1", spoofed), "192.0.2.1 192.0.2.1 http");
  // No socket (a test client by default): no peer to trust.
  EXPECT_EQ(whoami(trusting({"*"}), "", spoofed), "  http");
}

// Each proxy appends the address it was reached from, so what the client wrote is on the left:
// the client is the first address from the right that is not one of the trusted proxies.
TEST(ProxyHeadersTest, TheListIsReadFromTheRightPastTrustedProxiesOnly) {
  const auto options = trusting({"10.0.0.0/8", "192.168.1.1"});
  EXPECT_EQ(whoami(options, "10.0.0.1",
                   {{"X-Forwarded-For", "6.6.6.6, 203.0.113.7, 192.168.1.1, 10.9.9.9"}}),
            "203.0.113.7 10.0.0.1 http");
  // Every hop trusted: the leftmost is the client.
  EXPECT_EQ(whoami(options, "10.0.0.1", {{"X-Forwarded-For", "10.5.5.5, 192.168.1.1"}}),
            "10.5.5.5 10.0.0.1 http");
  // "*" trusts every hop, so the leftmost.
  EXPECT_EQ(whoami(trusting({"*"}), "192.0.2.1", {{"X-Forwarded-For", "203.0.113.7, 10.0.0.1"}}),
            "203.0.113.7 192.0.2.1 http");
  // Several header lines are one list, in order; empty elements count for nothing.
  EXPECT_EQ(
      whoami(options, "10.0.0.1",
             {{"X-Forwarded-For", "6.6.6.6, 203.0.113.7"}, {"X-Forwarded-For", ",10.2.2.2,"}}),
      "203.0.113.7 10.0.0.1 http");
}

TEST(ProxyHeadersTest, PortsBracketsAndMappedAddressesAreUnderstood) {
  const auto options = trusting({"10.0.0.0/8", "fd00::/8"});
  EXPECT_EQ(whoami(options, "10.0.0.1", {{"X-Forwarded-For", "203.0.113.7:5173"}}),
            "203.0.113.7 10.0.0.1 http");
  EXPECT_EQ(whoami(options, "10.0.0.1", {{"X-Forwarded-For", "[2001:DB8:0::7]:443"}}),
            "2001:db8::7 10.0.0.1 http");  // written as Asio writes addresses
  EXPECT_EQ(whoami(options, "fd00::2", {{"X-Forwarded-For", "[2001:db8::7], [fd00::3]"}}),
            "2001:db8::7 fd00::2 http");
  // An IPv4 proxy seen through an IPv6 socket is that IPv4 proxy; so is a client named so.
  EXPECT_EQ(whoami(options, "::ffff:10.0.0.1", {{"X-Forwarded-For", "::ffff:203.0.113.7"}}),
            "203.0.113.7 ::ffff:10.0.0.1 http");
}

// Found by a review. A link-local proxy's peer address carries its interface (`fe80::1%eth0`),
// which has no say in the trust; in the list, a zone id is another host's interface, and
// nothing to trust (nor to look up with a system call per entry).
TEST(ProxyHeadersTest, ZoneIdsAreNoPartOfTheTrustAndNoClientAddress) {
  const TestClient::Headers named = {{"X-Forwarded-For", "203.0.113.7"}};
  EXPECT_EQ(whoami(trusting({"fe80::/10"}), "fe80::1%eth0", named),
            "203.0.113.7 fe80::1%eth0 http");
  EXPECT_EQ(whoami(trusting({"fe80::1"}), "fe80::1%2", named), "203.0.113.7 fe80::1%2 http");
  for (const char* entry : {"2001:db8::7%garbage", "[2001:db8::7%5]:443", "fe80::1%lo"})
    EXPECT_EQ(whoami(trusting({"10.0.0.0/8"}), "10.0.0.1",
                     {{"X-Forwarded-For", std::string("198.51.100.1, ") + entry}}),
              "10.0.0.1 10.0.0.1 http")
        << entry;
}

// A client behind a proxy that appends writes as many entries as it likes on the left: past
// 32 hops the list is not read (under "*" each would be parsed).
TEST(ProxyHeadersTest, AListIsReadForAtMost32Hops) {
  std::string list;
  for (int i = 40; i > 0; --i) list += "10.0.0." + std::to_string(i) + (i > 1 ? ", " : "");
  EXPECT_EQ(whoami(trusting({"*"}), "10.0.0.99", {{"X-Forwarded-For", list}}),
            "10.0.0.32 10.0.0.99 http");
}

// "unknown" (nginx's word when it does not know), an obfuscated name or garbage cannot be
// the client's address: the walk stops there, at the nearest address known for certain.
TEST(ProxyHeadersTest, AnEntryThatIsNoAddressStopsAtTheNearestKnownOne) {
  const auto options = trusting({"10.0.0.0/8"});
  EXPECT_EQ(whoami(options, "10.0.0.1", {{"X-Forwarded-For", "203.0.113.7, unknown, 10.0.0.5"}}),
            "10.0.0.5 10.0.0.1 http");
  for (const char* garbage : {"unknown", "_hidden", "[2001:db8::7", "[::1]x", "1.2.3.4:5:6",
                              "999.1.1.1", "1.2.3.4 5.6.7.8"})
    EXPECT_EQ(whoami(options, "10.0.0.1", {{"X-Forwarded-For", garbage}}), "10.0.0.1 10.0.0.1 http")
        << garbage;
}

TEST(ProxyHeadersTest, TheLastProxysSchemeCountsAndOnlyKnownOnes) {
  const auto options = trusting({"10.0.0.0/8"});
  const auto scheme = [&](const char* proto) {
    return whoami(options, "10.0.0.1", {{"X-Forwarded-Proto", proto}});
  };
  EXPECT_EQ(scheme("HTTPS"), "10.0.0.1 10.0.0.1 https");
  EXPECT_EQ(scheme("wss"), "10.0.0.1 10.0.0.1 https");
  EXPECT_EQ(scheme("https, http"), "10.0.0.1 10.0.0.1 http");
  EXPECT_EQ(scheme("http, https"), "10.0.0.1 10.0.0.1 https");
  EXPECT_EQ(scheme("ftp"), "10.0.0.1 10.0.0.1 http");
  EXPECT_EQ(scheme("https;x"), "10.0.0.1 10.0.0.1 http");
}

TEST(ProxyHeadersTest, AMistypedTrustedEntryFailsAtStartupSayingWhy) {
  const auto refusal = [](std::vector<std::string> entries) -> std::string {
    try {
      (void)molt::web::proxy_headers(trusting(std::move(entries)));
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "accepted";
  };
  EXPECT_NE(refusal({"10.0.0.1/8"}).find("the network is 10.0.0.0/8"), std::string::npos)
      << refusal({"10.0.0.1/8"});
  EXPECT_NE(refusal({"localhost"}).find("'localhost' is not an IP address"), std::string::npos);
  for (const char* bad : {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1", "::1/129", "10.0.0.0/8x", ""})
    EXPECT_NE(refusal({bad}), "accepted") << bad;
  EXPECT_NE(refusal({"fe80::1%lo"}).find("zone id"), std::string::npos);
  EXPECT_NE(refusal({"::ffff:0.0.0.0/95"}).find("reaches past the IPv4-mapped addresses"),
            std::string::npos);
  EXPECT_EQ(refusal({" 10.0.0.0/8 ", "::/0", "0.0.0.0/0", "fe80::1", "*", "::ffff:10.0.0.0/104"}),
            "accepted");
  // A mapped network is its IPv4 network, as mapped peers are compared.
  EXPECT_EQ(whoami(trusting({"::ffff:10.0.0.0/104"}), "10.9.9.9", {{"X-Forwarded-For", "1.2.3.4"}}),
            "1.2.3.4 10.9.9.9 http");
  EXPECT_EQ(whoami(trusting({"::ffff:10.0.0.0/104"}), "11.0.0.1", {{"X-Forwarded-For", "1.2.3.4"}}),
            "11.0.0.1 11.0.0.1 http");
}

// The access log after it names the client; a later request on the same connection without
// the headers is the peer's again (the connection keeps the peer, not the last client).
TEST(ProxyHeadersTest, OnARealSocketTheLogSeesTheClientAndTheNextRequestStartsAfresh) {
  std::mutex mutex;
  std::vector<std::string> lines;
  App app;
  app.use(molt::web::proxy_headers());
  app.use(molt::web::access_log([&](std::string_view line) {
    const std::lock_guard lock(mutex);
    lines.emplace_back(line);
  }));
  add_whoami(app);
  molt::web::ServerOptions options;
  options.port = 0;
  options.threads = 1;
  molt::web::Server server(app, options);
  server.start();
  molt::web::testing::Client client(server.port());
  client.send(
      "GET /whoami HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 203.0.113.7\r\n"
      "X-Forwarded-Proto: https\r\n\r\n"
      "GET /whoami HTTP/1.1\r\nHost: t\r\n\r\n");
  const auto answers = TestClient::parse_responses(client.receive(2));
  server.stop();
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0].body, "203.0.113.7 127.0.0.1 https");
  EXPECT_EQ(answers[1].body, "127.0.0.1 127.0.0.1 http");
  const std::lock_guard lock(mutex);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find(R"("client":"203.0.113.7")"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find(R"("client":"127.0.0.1")"), std::string::npos) << lines[1];
}

TEST(ProxyHeadersTest, AWebSocketHandshakeIsReadTheSameWay) {
  App app;
  app.use(molt::web::proxy_headers(trusting({"10.0.0.0/8"})));
  app.websocket("/ws", [](molt::web::WebSocket& socket, Ctx&) -> awaitable<void> {
    co_await socket.accept();
    co_await socket.send_text(std::string(socket.request().remote_address()) + " " +
                              std::string(socket.request().scheme()));
  });
  TestClient client(app);
  client.set_peer_address("10.0.0.1");
  auto socket = client.websocket_connect(
      "/ws", {{"X-Forwarded-For", "203.0.113.7"}, {"X-Forwarded-Proto", "wss"}});
  EXPECT_EQ(socket.receive_text(), "203.0.113.7 https");
}

}  // namespace
