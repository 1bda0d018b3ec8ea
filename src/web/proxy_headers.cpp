// proxy_headers(): the client and scheme a trusted reverse proxy names.
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>
#include <charconv>
#include <memory>
#include <optional>
#include <stdexcept>
#include <variant>

#include "molt/web/middleware.hpp"

namespace molt::web {
namespace {

namespace ip = boost::asio::ip;

// More hops than any real chain of proxies has: a longer list (a client's own entries behind
// a proxy that appends, under "*") is not read further.
constexpr int kMaxHops = 32;

// An IPv4 client seen through an IPv6 socket (`::ffff:10.0.0.1`) is that IPv4 client.
ip::address unmapped(const ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    return ip::make_address_v4(ip::v4_mapped, address.to_v6());
  return address;
}

// An address without a zone id: `fe80::1%eth0` names an interface of the host that wrote it,
// which no other host can check (and Asio would look the name up with a system call).
std::optional<ip::address> parse_address(std::string_view text) {
  if (text.find('%') != std::string_view::npos) return std::nullopt;
  boost::system::error_code ec;
  const ip::address address = ip::make_address(text, ec);
  if (ec) return std::nullopt;
  return unmapped(address);
}

// The socket's peer as the connection wrote it: a link-local peer carries its interface
// (`fe80::1%eth0`), which has no say in whether the proxy is trusted.
std::optional<ip::address> parse_peer(std::string_view text) {
  return parse_address(text.substr(0, text.find('%')));
}

// One X-Forwarded-For entry: an address, as proxies write it; some add the client's port
// (`203.0.113.7:5173`, `[2001:db8::7]:5173`), which is dropped.
std::optional<ip::address> parse_forwarded_entry(std::string_view entry) {
  if (entry.starts_with('[')) {
    const std::size_t close = entry.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    const std::string_view rest = entry.substr(close + 1);
    if (!rest.empty() && !rest.starts_with(':')) return std::nullopt;
    return parse_address(entry.substr(1, close - 1));
  }
  const std::size_t colon = entry.find(':');
  if (colon != std::string_view::npos && entry.find(':', colon + 1) == std::string_view::npos)
    return parse_address(entry.substr(0, colon));  // IPv4 with a port: IPv6 has two colons
  return parse_address(entry);
}

[[noreturn]] void refuse_entry(std::string_view entry, std::string_view why) {
  throw std::invalid_argument("proxy_headers: '" + std::string(entry) + "' " + std::string(why));
}

class TrustedProxies {
 public:
  explicit TrustedProxies(const std::vector<std::string>& entries) {
    for (const std::string& entry : entries) add(entry);
  }

  bool contains(const ip::address& address) const {
    if (any_) return true;
    for (const Network& network : networks_) {
      if (const auto* v4 = std::get_if<ip::network_v4>(&network)) {
        if (address.is_v4() &&
            ip::network_v4(address.to_v4(), v4->prefix_length()).network() == v4->network())
          return true;
      } else if (const auto* v6 = std::get_if<ip::network_v6>(&network)) {
        if (address.is_v6() &&
            ip::network_v6(address.to_v6(), v6->prefix_length()).network() == v6->network())
          return true;
      }
    }
    return false;
  }

 private:
  using Network = std::variant<ip::network_v4, ip::network_v6>;

  void add(std::string_view entry) {
    const std::string_view text = trim_ows(entry);
    if (text == "*") {
      any_ = true;
      return;
    }
    if (text.find('%') != std::string_view::npos)
      refuse_entry(entry,
                   "has a zone id, which is not taken: the address alone matches a "
                   "peer on any interface");
    const std::size_t slash = text.find('/');
    boost::system::error_code ec;
    ip::address address = ip::make_address(text.substr(0, slash), ec);
    if (ec) refuse_entry(entry, "is not an IP address or network (such as 10.0.0.0/8)");
    unsigned prefix = address.is_v4() ? 32 : 128;
    if (slash != std::string_view::npos) {
      const std::string_view digits = text.substr(slash + 1);
      unsigned parsed = 0;
      const auto [end, error] =
          std::from_chars(digits.data(), digits.data() + digits.size(), parsed);
      if (digits.empty() || error != std::errc() || end != digits.data() + digits.size() ||
          parsed > prefix)
        refuse_entry(entry, "has no valid prefix length (0 to " + std::to_string(prefix) + ")");
      prefix = parsed;
    }
    // Mapped peers (`::ffff:10.0.0.1`) are compared as IPv4: so are networks of them.
    if (address.is_v6() && address.to_v6().is_v4_mapped()) {
      if (prefix < 96)
        refuse_entry(entry,
                     "reaches past the IPv4-mapped addresses; write an IPv4 network as "
                     "such (10.0.0.0/8)");
      address = unmapped(address);
      prefix -= 96;
    }
    const Network network = address.is_v4() ? Network(ip::network_v4(address.to_v4(), prefix))
                                            : Network(ip::network_v6(address.to_v6(), prefix));
    const ip::address base =
        std::visit([](const auto& net) { return ip::address(net.network()); }, network);
    // Bits past the prefix are a typing slip (10.0.0.1/8): which network was meant?
    if (base != address)
      refuse_entry(entry, "has bits set past its prefix; the network is " + base.to_string() + "/" +
                              std::to_string(prefix));
    networks_.push_back(network);
  }

  bool any_ = false;
  std::vector<Network> networks_;
};

// The client that X-Forwarded-For names, read from the right as each proxy appends the
// address it was reached from: the first entry that is not a trusted proxy. An entry that is
// no address ("unknown", garbage, a zone id), or one past kMaxHops, ends the walk: the client
// is then the nearest address known for certain. std::nullopt when the list names no one
// before such an entry.
std::optional<ip::address> forwarded_client(std::string_view list, const TrustedProxies& trusted) {
  std::optional<ip::address> nearest;
  std::string_view rest = list;
  for (int hops = 0; !rest.empty() && hops < kMaxHops;) {
    const std::size_t comma = rest.rfind(',');
    const std::string_view entry =
        trim_ows(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(0, comma);
    if (entry.empty()) continue;  // an empty list element (`a, , b`) counts for nothing
    ++hops;
    const auto address = parse_forwarded_entry(entry);
    if (!address) break;
    nearest = *address;
    if (!trusted.contains(*address)) break;
  }
  return nearest;
}

// The scheme the last proxy names: "http", "https" (or "ws", "wss" for a WebSocket).
std::optional<bool> forwarded_https(std::string_view list) {
  const std::size_t comma = list.rfind(',');
  const std::string_view last =
      trim_ows(comma == std::string_view::npos ? list : list.substr(comma + 1));
  if (iequals(last, "https") || iequals(last, "wss")) return true;
  if (iequals(last, "http") || iequals(last, "ws")) return false;
  return std::nullopt;
}

}  // namespace

Middleware proxy_headers(ProxyHeadersOptions options) {
  auto trusted = std::make_shared<const TrustedProxies>(options.trusted_proxies);
  return [trusted](const Request& request, Ctx&, Next next) -> boost::asio::awaitable<Response> {
    const auto peer = parse_peer(request.peer_address());
    if (peer && trusted->contains(*peer)) {
      // Every request the chain sees belongs to its connection (or test client), which lets
      // the chain's first middleware say who sent it; the rest of the chain reads it.
      Request& forwarded = const_cast<Request&>(request);
      std::string for_lines, proto_lines;
      if (const auto list = request.header_list("X-Forwarded-For", for_lines))
        if (const auto client = forwarded_client(*list, *trusted))
          forwarded.set_client_address(client->to_string());
      if (const auto proto = request.header_list("X-Forwarded-Proto", proto_lines))
        if (const auto https = forwarded_https(*proto)) forwarded.set_https(*https);
    }
    co_return co_await next();
  };
}

}  // namespace molt::web
