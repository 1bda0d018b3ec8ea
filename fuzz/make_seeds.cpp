// make_seeds <dir>: writes the seed corpora of the fuzz targets into <dir>/<target>/, using the
// real encoders so that the seeds stay valid as the wire format evolves. A few well-formed
// inputs give libFuzzer the structure (envelope keys, struct fields) it would take long to
// guess; it mutates from there.

#include <boost/json/parse.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fuzz_types.hpp"
#include "molt/codec/json.hpp"
#include "molt/codec/msgpack.hpp"
#include "molt/ipc/envelope.hpp"
#include "molt/ipc/frame.hpp"

namespace {

using namespace molt;
namespace fs = std::filesystem;

void write_seed(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
}

ipc::Request request(std::uint64_t id, std::string entry, ipc::Codec codec, std::string payload,
                     std::uint64_t timeout_ms = 0) {
  return {id, std::move(entry), timeout_ms, codec, std::move(payload)};
}

std::string frames(const std::vector<ipc::Request>& requests, ipc::Wire wire) {
  std::string out;
  for (const auto& r : requests) ipc::append_request_frame(out, r, wire);
  return out;
}

// A length header announcing more than any fuzz target's 4096-byte limit.
std::string oversized_header() {
  return std::string("\x00\x00\x01\x00", 4);
}

fuzz_types::Record sample_record() {
  using fuzz_types::Color;
  fuzz_types::Record r;
  r.id = -42;
  r.count = 7;
  r.active = true;
  r.ratio = 0.25;
  r.note = "hello";
  r.main = {"main", 1.5, 3, Color::green};
  r.spare = fuzz_types::Inner{"spare", std::nullopt, 0, Color::blue};
  r.children = {{"a", 2.0, 1, Color::red}, {"b", std::nullopt, 255, Color::blue}};
  r.scores = {{"x", 1}, {"y", -2}};
  r.palette = std::vector<std::optional<Color>>{Color::red, std::nullopt};
  r.extra = boost::json::parse(R"({"k":[1,-2,3.5,"s",null,true,{"n":{}}]})");
  return r;
}

void typed_decode_seeds(const fs::path& dir) {
  const fuzz_types::Record r = sample_record();
  write_seed(dir, "record.json", codec::to_json(r));
  write_seed(dir, "record.msgpack", codec::to_msgpack(r));
  fuzz_types::Record minimal;
  minimal.extra = nullptr;
  write_seed(dir, "minimal.json", codec::to_json(minimal));
  write_seed(dir, "minimal.msgpack", codec::to_msgpack(minimal));
}

void frames_seeds(const fs::path& dir) {
  const std::vector<ipc::Request> mixed = {
      request(1, "__ping__", ipc::Codec::Raw, ""),
      request(2, "list_items", ipc::Codec::MsgPack, "\x81\xa7user_id\x07", 250),
      request(3, "__cancel__", ipc::Codec::Json, R"({"request_id":2})"),
  };
  // The first byte of a fuzz_frames input says how many chunk sizes follow (see the target).
  write_seed(dir, "msgpack", std::string(1, '\0') + frames(mixed, ipc::Wire::MsgPack));
  write_seed(dir, "json", std::string(1, '\0') + frames(mixed, ipc::Wire::Json));
  write_seed(dir, "chunked", std::string("\x03\x01\x05\x02", 4) + frames(mixed, ipc::Wire::Json));
  std::string skipping = std::string(1, '\0') + oversized_header() + std::string(64, 'z');
  skipping += frames({request(9, "health", ipc::Codec::Json, "{}")}, ipc::Wire::MsgPack);
  write_seed(dir, "oversized", skipping);
  std::string truncated = frames({request(4, "compute", ipc::Codec::MsgPack, "")}, ipc::Wire::Json);
  truncated.resize(truncated.size() - 3);
  write_seed(dir, "truncated", std::string(1, '\0') + truncated);
}

void worker_stream_seeds(const fs::path& dir) {
  fuzz_types::Point point{5, "five", {1, 2, 3}};
  fuzz_types::Shape shape{fuzz_types::Kind::square, {{"side", 2.5}}, boost::json::parse("[1]")};
  const std::vector<ipc::Request> typed = {
      request(1, "point", ipc::Codec::MsgPack, codec::to_msgpack(point)),
      request(2, "shape", ipc::Codec::Json, codec::to_json(shape)),
      request(3, "bytes", ipc::Codec::Raw, "abc"),
      request(4, "__ping__", ipc::Codec::Raw, ""),
  };
  write_seed(dir, "typed-msgpack", frames(typed, ipc::Wire::MsgPack));
  write_seed(dir, "typed-json", frames(typed, ipc::Wire::Json));
  // Work that waits, a queue that fills, a cancel and a deadline meeting it.
  const std::vector<ipc::Request> racing = {
      request(10, "bytes", ipc::Codec::Raw, "S1"),
      request(11, "bytes", ipc::Codec::Raw, "S2"),
      request(12, "bytes", ipc::Codec::Raw, "S3"),
      request(13, "bytes", ipc::Codec::Raw, "C", 1),
      request(14, "bytes", ipc::Codec::Raw, "X"),
      request(15, "bytes", ipc::Codec::Raw, "S4"),
      request(16, "bytes", ipc::Codec::Raw, "S5"),
      request(17, "bytes", ipc::Codec::Raw, "S6"),
      request(18, "__cancel__", ipc::Codec::MsgPack,
              codec::to_msgpack(std::map<std::string, int>{{"request_id", 12}})),
      request(19, "__cancel__", ipc::Codec::Raw, ""),
      request(10, "bytes", ipc::Codec::Raw, "duplicate id"),
  };
  write_seed(dir, "racing", frames(racing, ipc::Wire::MsgPack));
  point.x = 13;  // refused by the handler
  const std::vector<ipc::Request> refused = {
      request(20, "point", ipc::Codec::MsgPack, codec::to_msgpack(point)),
      request(21, "point", ipc::Codec::Json, "{}"),
      request(22, "nope", ipc::Codec::Raw, ""),
      request(23, "shape", ipc::Codec::Json, R"({"kind":"hexagon","dims":{},"extra":0})"),
  };
  write_seed(dir, "refused", frames(refused, ipc::Wire::Json));
}

// Requests (mode byte 0) and patterns (mode byte 1) for fuzz_router.
void router_seeds(const fs::path& dir) {
  const char* requests[] = {"GET /users/42",
                            "GET /users/me",
                            "POST /users/7/posts/hello%20x",
                            "GET /static/css/a%2Fb.css",
                            "GET /a/b/d",
                            "HEAD /files/%C3%A9",
                            "GET /static/../x",
                            "OPTIONS /"};
  const char* patterns[] = {"/users/{id:int}", "/s/{rest:path}",    "/a/{b}/c/{d:str}",
                            "/x/{y",           "/caf\xc3\xa9/menu", "/"};
  int n = 0;
  for (const char* request : requests)
    write_seed(dir, "request" + std::to_string(n++), std::string(1, '\0') + request);
  for (const char* pattern : patterns)
    write_seed(dir, "pattern" + std::to_string(n++), std::string(1, '\1') + pattern);
}

// Whole connections for fuzz_http: pipelined, chunked, 100-continue, HEAD, streamed bodies
// (read whole, answered early, over the route's limit).
void http_seeds(const fs::path& dir) {
  write_seed(dir, "pipelined",
             "GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: "
             "3\r\n\r\nabc");
  write_seed(
      dir, "chunked",
      "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
  write_seed(
      dir, "continue",
      "POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi");
  write_seed(dir, "params", "HEAD /users/12/a%2Fb/c?q=x+y HTTP/1.1\r\nHost: a\r\n\r\n");
  write_seed(dir, "http10",
             "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n");
  write_seed(dir, "stream",
             "POST /stream HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello worldGET / "
             "HTTP/1.1\r\nHost: a\r\n\r\n");
  write_seed(dir, "stream_chunked",
             "POST /stream HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: "
             "100-continue\r\n\r\n3\r\nabc\r\n2\r\nqz\r\n4\r\nrest\r\n0\r\n\r\nGET / "
             "HTTP/1.1\r\nHost: a\r\n\r\n");
  write_seed(dir, "forwarded",
             "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.7:80, unknown, "
             "[2001:db8::1]:443, 127.0.0.2\r\nX-Forwarded-For: ::ffff:127.0.0.3\r\n"
             "X-Forwarded-Proto: http, wss\r\n\r\n");
}

// Form bodies for fuzz_form: mode byte 0 urlencoded, 1 multipart (boundary "B").
void form_seeds(const fs::path& dir) {
  write_seed(dir, "urlencoded", std::string(1, '\0') + "a=x&n=%2B42&on=on&tags=a&tags=b+c");
  write_seed(
      dir, "multipart",
      std::string(1, '\1') +
          "--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n"
          "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f \\\"1\\\"\"\r\n"
          "Content-Type: image/png\r\n\r\n\x89PNG\r\n--B--\r\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds <dir>\n");
    return 2;
  }
  const fs::path root = argv[1];
  frames_seeds(root / "fuzz_frames");
  worker_stream_seeds(root / "fuzz_worker_stream");
  typed_decode_seeds(root / "fuzz_typed_decode");
  router_seeds(root / "fuzz_router");
  http_seeds(root / "fuzz_http");
  form_seeds(root / "fuzz_form");
  return 0;
}
