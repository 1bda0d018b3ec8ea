#include "molt/web/compression.hpp"

#include <zlib.h>

#include <limits>
#include <memory>
#include <stdexcept>
#include <string>

namespace molt::web {

namespace {

// Types that shrink: text of every kind, and WebAssembly (binary, but it halves). Images,
// video, archives and fonts are compressed already.
bool compressible(std::string_view content_type) {
  const std::string_view media = trim_ows(content_type.substr(0, content_type.find(';')));
  if (media.size() >= 5 && iequals(media.substr(0, 5), "text/"))
    return !iequals(media, "text/event-stream");  // each event must arrive as it is sent
  for (const std::string_view type :
       {"application/json", "application/javascript", "application/xml", "image/svg+xml",
        "application/x-ndjson", "application/manifest+json", "application/wasm"})
    if (iequals(media, type)) return true;
  const auto ends_with = [&](std::string_view suffix) {
    return media.size() > suffix.size() &&
           iequals(media.substr(media.size() - suffix.size()), suffix);
  };
  return ends_with("+json") || ends_with("+xml");
}

// A gzip stream (RFC 1952) through zlib.
class Gzip {
 public:
  explicit Gzip(int level) {
    // 15 + 16: the largest window, with gzip's header and trailer.
    if (deflateInit2(&stream_, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
      throw std::runtime_error("zlib: deflateInit2 failed");
  }
  ~Gzip() { deflateEnd(&stream_); }
  Gzip(const Gzip&) = delete;
  Gzip& operator=(const Gzip&) = delete;

  // `input` compressed, flushed so that all of it can be sent now (Z_SYNC_FLUSH), or ended
  // (Z_FINISH).
  std::string deflate(std::string_view input, int flush) {
    if (input.size() > std::numeric_limits<uInt>::max())
      throw std::length_error("gzip: a piece over 4 GiB");
    std::string out;
    stream_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
    stream_.avail_in = static_cast<uInt>(input.size());
    out.resize(deflateBound(&stream_, static_cast<uLong>(input.size())) + 64);
    std::size_t used = 0;
    while (true) {
      stream_.next_out = reinterpret_cast<Bytef*>(out.data() + used);
      stream_.avail_out = static_cast<uInt>(out.size() - used);
      const int rc = ::deflate(&stream_, flush);
      used = out.size() - stream_.avail_out;
      if (rc == Z_STREAM_END || (rc == Z_OK && stream_.avail_out != 0) ||
          (rc == Z_BUF_ERROR && stream_.avail_in == 0 && flush != Z_FINISH))
        break;
      if (rc != Z_OK && rc != Z_BUF_ERROR) throw std::runtime_error("zlib: deflate failed");
      out.resize(out.size() * 2);  // it did not fit: more room, and go on
    }
    out.resize(used);
    return out;
  }

 private:
  z_stream stream_{};
};

// The answer compressed, or as it was.
Response compressed(Response response, int level) {
  if (response.streaming()) {
    // zlib's state (about 256 KiB) is made at the first piece: a HEAD, whose producer is
    // never pulled, makes none.
    auto gzip = std::make_shared<std::unique_ptr<Gzip>>();
    auto ended = std::make_shared<bool>(false);
    response.set_chunks([inner = response.chunks(), gzip, ended,
                         level]() -> boost::asio::awaitable<std::optional<std::string>> {
      while (!*ended) {
        std::optional<std::string> piece = co_await inner();
        if (!*gzip) *gzip = std::make_unique<Gzip>(level);
        if (!piece) {
          *ended = true;
          co_return (*gzip)->deflate({}, Z_FINISH);
        }
        if (piece->empty()) continue;
        co_return (*gzip)->deflate(*piece, Z_SYNC_FLUSH);
      }
      co_return std::nullopt;
    });
    response.clear_stream_length();  // its length is the compressed one, not known ahead
  } else {
    Gzip gzip(level);
    response.body() = gzip.deflate(response.body(), Z_FINISH);
  }
  response.set_header("Content-Encoding", "gzip");
  return response;
}

}  // namespace

bool accepts_gzip(std::string_view accept_encoding) {
  std::optional<double> gzip, any;
  while (!accept_encoding.empty()) {
    std::string_view coding = next_list_element(accept_encoding);
    std::string_view params;
    if (const std::size_t semicolon = coding.find(';'); semicolon != std::string_view::npos) {
      params = coding.substr(semicolon + 1);
      coding = trim_ows(coding.substr(0, semicolon));
    }
    if (iequals(coding, "gzip") || iequals(coding, "x-gzip"))
      gzip = list_quality(params);
    else if (coding == "*")
      any = list_quality(params);
  }
  return gzip ? *gzip > 0 : any.value_or(0) > 0;
}

Middleware compression(CompressionOptions options) {
  if (options.level < 1 || options.level > 9)
    throw std::invalid_argument("compression: a level is 1 (fastest) to 9 (smallest)");
  return [options](const Request& request, Ctx&, Next next) -> boost::asio::awaitable<Response> {
    Response response = co_await next();
    const int status = response.status();
    if (status < 200 || status == 204 || status == 206 || !compressible(response.content_type()) ||
        response.header("Content-Encoding") || response.header("Content-Range") ||
        response.stream_keepalive())  // its keep-alive pieces go out as they are
      co_return response;
    // Whatever the answer, a cache must keep the forms apart by what clients accept.
    response.add_vary("Accept-Encoding");
    std::string joined;
    const auto accept = request.header_list("Accept-Encoding", joined);
    if (!accept || !accepts_gzip(*accept)) co_return response;
    const auto weaken_etag = [&] {
      if (const auto etag = response.header("ETag"); etag && !etag->starts_with("W/"))
        response.set_header("ETag", "W/" + std::string(*etag));
    };
    // A 304 stands for the 200 it validates, which would be compressed: the same Vary and ETag
    // (RFC 9110 §15.4.5). (Its body's size is not known: one under minimum_bytes would not
    // have been.)
    if (status == 304) {
      weaken_etag();
      co_return response;
    }
    if (!response.streaming() && response.body().size() < options.minimum_bytes) co_return response;
    weaken_etag();
    co_return compressed(std::move(response), options.level);
  };
}

}  // namespace molt::web
