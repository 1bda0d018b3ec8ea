// multipart/form-data read as it arrives: MultipartParser fed in every split, and
// MultipartReader in handlers behind the server's own reader, in small reads as from a socket.
#include "molt/web/multipart.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "molt/web/app.hpp"
#include "molt/web/form.hpp"
#include "molt/web/test_client.hpp"

namespace molt::web {
namespace {

using boost::asio::awaitable;

constexpr char kType[] = "multipart/form-data; boundary=XyZ";

// What a parser made of a body: one line per event ("part a file=x type=t", "data ...",
// "end", "done"), consecutive data joined, or "error <message>" where it threw.
std::string events(std::string_view body, const std::vector<std::size_t>& cuts,
                   std::string_view type = kType) {
  std::string out;
  try {
    MultipartParser parser(type);
    std::size_t fed = 0, cut = 0;
    bool in_data = false;
    while (true) {
      const MultipartParser::Event event = parser.next();
      if (event != MultipartParser::Event::Data && event != MultipartParser::Event::NeedInput)
        in_data = false;
      switch (event) {
        case MultipartParser::Event::NeedInput: {
          if (cut == cuts.size() && fed == body.size()) {
            parser.finish();
            break;
          }
          const std::size_t to =
              cut < cuts.size() ? std::max(fed, std::min(cuts[cut++], body.size())) : body.size();
          // Each piece in a buffer of its own, overwritten once the parser asks for more.
          static std::string piece;
          piece.assign(body.substr(fed, to - fed));
          parser.feed(piece);
          fed = to;
          break;
        }
        case MultipartParser::Event::Part: {
          const FormPart& part = parser.part();
          out += "part " + part.name + (part.filename ? " file=" + *part.filename : "") +
                 (part.content_type.empty() ? "" : " type=" + part.content_type) + "\n";
          break;
        }
        case MultipartParser::Event::Data:
          if (parser.data().empty()) return out + "empty data\n";
          if (in_data)
            out.pop_back();  // the line goes on
          else
            out += "data ";
          out += std::string(parser.data()) + "\n";
          in_data = true;
          break;
        case MultipartParser::Event::PartEnd:
          out += "end\n";
          break;
        case MultipartParser::Event::Done:
          return out + "done\n";
      }
    }
  } catch (const HttpError& e) {
    return out + "error " + std::to_string(e.status()) + " " + e.message() + "\n";
  }
}

std::string whole(std::string_view body) {
  return events(body, {});
}

// The bodies every split must read alike: good ones, and bad ones that fail in each state.
const std::vector<std::string> kBodies = {
    "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\none\r\n--XyZ--",
    "preamble\r\n--XyZ \t\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\r\n--XyZ\r\n"
    "Content-Disposition: form-data; name=\"f\"; filename=\"x.bin\"\r\nContent-Type: "
    "application/pdf\r\n\r\n\r\n--Xy\r\r\n--XyZ\r\n\r\n--XyZ--\r\nepilogue --XyZ junk",
    "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\r\n-\r\n--\r\n--X\r\n--XyZ--",
    "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nnever ends\r\n--Xy",
    "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n",
    "--XyZgarbage\r\n",
    "--XyZ  x\r\n",
    "--XyZ\r\n\r\nno head",
    "--XyZ\r\nX-Other: 1\r\n\r\n1\r\n--XyZ--",
    "no delimiter at all, --XyZ not after a line",
    "--XyZ",
    "--XyZ-",
    "--X",
};

TEST(MultipartParser, EverySplitOfABodyReadsAsTheWholeBody) {
  for (const std::string& body : kBodies) {
    const std::string expected = whole(body);
    for (std::size_t at = 0; at <= body.size(); ++at)
      ASSERT_EQ(events(body, {at}), expected) << "split at " << at << " of: " << body;
    std::vector<std::size_t> bytes;
    for (std::size_t at = 0; at <= body.size(); ++at) bytes.push_back(at);
    ASSERT_EQ(events(body, bytes), expected) << "byte by byte: " << body;
  }
}

TEST(MultipartParser, ReadsPartsPreambleAndEpilogue) {
  EXPECT_EQ(whole(kBodies[1]),
            "part a\nend\npart f file=x.bin type=application/pdf\ndata \r\n--Xy\r\nend\n"
            "error 400 the form is malformed: a part has no Content-Disposition\n");
  EXPECT_EQ(whole(kBodies[0]), "part a\ndata one\nend\ndone\n");
  EXPECT_EQ(whole(kBodies[2]), "part a\ndata \r\n-\r\n--\r\n--X\nend\ndone\n");
  EXPECT_EQ(whole(kBodies[3]),
            "part a\ndata never ends\nerror 400 the form is malformed: the body ends inside a "
            "part\n");
  EXPECT_EQ(whole(kBodies[4]),
            "error 400 the form is malformed: a part's head does not end (or passes 16 KiB)\n");
  EXPECT_EQ(whole(kBodies[5]),
            "error 400 the form is malformed: a boundary line does not end where it should\n");
  EXPECT_EQ(whole(kBodies[6]),
            "error 400 the form is malformed: a boundary line does not end where it should\n");
  EXPECT_EQ(whole(kBodies[9]),
            "error 400 the form is malformed: no part begins (the boundary is not in the body)\n");
  EXPECT_EQ(whole("--XyZ--"), "done\n");
}

TEST(MultipartParser, RefusesABadBoundaryAndInputItDidNotAskFor) {
  EXPECT_EQ(events("", {}, "multipart/form-data"),
            "error 400 the form is malformed: multipart/form-data needs a boundary of 1 to 70 "
            "characters\n");
  EXPECT_EQ(events("", {}, "multipart/form-data; boundary=" + std::string(71, 'b')),
            "error 400 the form is malformed: multipart/form-data needs a boundary of 1 to 70 "
            "characters\n");
  MultipartParser parser(kType);
  EXPECT_THROW(parser.feed("x"), std::logic_error);
  EXPECT_EQ(parser.next(), MultipartParser::Event::NeedInput);
  EXPECT_THROW(parser.next(), std::logic_error);
}

TEST(MultipartParser, AHeadPast16KiBFailsWithoutWaitingForItsEnd) {
  MultipartParser parser(kType);
  ASSERT_EQ(parser.next(), MultipartParser::Event::NeedInput);
  parser.feed("--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\nX: ");
  std::size_t fed = 0;
  const std::string byte = "h";
  try {
    while (parser.next() == MultipartParser::Event::NeedInput && fed < 100'000) {
      parser.feed(byte);
      ++fed;
    }
    FAIL() << "no error";
  } catch (const HttpError& e) {
    EXPECT_EQ(e.status(), 400);
  }
  EXPECT_LT(fed, MultipartParser::kMaxPartHead + 10);
}

// A file part of `size` bytes, fed in pieces of `piece`: the parser gives it all, in pieces no
// larger than what it was fed plus a delimiter's length.
TEST(MultipartParser, ALargePartStreamsThroughInPieces) {
  const std::size_t size = 1 << 20, piece = 1000;
  std::string content;
  for (std::size_t i = 0; i < size; ++i) content += static_cast<char>("\r\n-XyZ"[i % 6]);
  const std::string body =
      "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"big\"\r\n\r\n" + content +
      "\r\n--XyZ--\r\n";
  MultipartParser parser(kType);
  std::string got, input;
  std::size_t fed = 0, largest = 0;
  bool done = false;
  while (!done) {
    switch (parser.next()) {
      case MultipartParser::Event::NeedInput:
        if (fed == body.size()) {
          parser.finish();
        } else {
          input = body.substr(fed, piece);
          fed += input.size();
          parser.feed(input);
        }
        break;
      case MultipartParser::Event::Data:
        got += parser.data();
        largest = std::max(largest, parser.data().size());
        break;
      case MultipartParser::Event::Done:
        done = true;
        break;
      default:
        break;
    }
  }
  EXPECT_EQ(got, content);
  EXPECT_LE(largest, piece);
}

// Bytes carried from one input to the next (a '\r' that may begin a delimiter) do not make the
// parser copy the next input: the rest of it is read in place.
TEST(MultipartParser, AfterACarriedTailTheInputIsReadInPlace) {
  MultipartParser parser(kType);
  ASSERT_EQ(parser.next(), MultipartParser::Event::NeedInput);
  parser.feed("--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\na\r");
  ASSERT_EQ(parser.next(), MultipartParser::Event::Part);
  ASSERT_EQ(parser.next(), MultipartParser::Event::Data);
  EXPECT_EQ(parser.data(), "a");
  ASSERT_EQ(parser.next(), MultipartParser::Event::NeedInput);
  const std::string input = std::string(1 << 20, 'y') + "\r\n--XyZ--";
  parser.feed(input);
  std::string got;
  std::size_t in_place = 0;
  for (auto event = parser.next(); event == MultipartParser::Event::Data; event = parser.next()) {
    got += parser.data();
    if (parser.data().data() >= input.data() && parser.data().data() < input.data() + input.size())
      in_place += parser.data().size();
  }
  EXPECT_EQ(got, "\r" + std::string(1 << 20, 'y'));
  EXPECT_GE(in_place, (1u << 20) - 200);
}

// Form::parse reads a whole body through the same parser.
TEST(MultipartParser, FormParseAgreesWithIt) {
  const Form form = Form::parse(kType, kBodies[0]);
  ASSERT_EQ(form.fields().size(), 1u);
  EXPECT_EQ(form.value("a"), "one");
  EXPECT_THROW(Form::parse(kType, kBodies[3]), HttpError);
}

// ---- MultipartReader in handlers -------------------------------------------------------

// Every part as "name[:filename]=<bytes or text>;" with text parts through text() and file
// parts through read(), and the number of read() pieces of the files.
awaitable<Response> describe_parts(const Request& request, Ctx& ctx) {
  MultipartReader parts(request, ctx.body());
  std::string out;
  std::size_t pieces = 0;
  while (auto part = co_await parts.next_part()) {
    out += part->name;
    if (part->is_file()) {
      out += ":" + *part->filename + "(" + part->content_type + ")=";
      while (auto piece = co_await parts.read()) {
        out.append(*piece);
        ++pieces;
      }
    } else {
      out += "=" + co_await parts.text(64);
    }
    out += ";";
  }
  co_return Response::text(out + " pieces=" + std::to_string(pieces));
}

// Reads only the heads: the parts' bytes are skipped.
awaitable<Response> heads_only(const Request& request, Ctx& ctx) {
  MultipartReader parts(request, ctx.body());
  std::string out;
  while (auto part = co_await parts.next_part()) out += part->name + ",";
  co_return Response::text(out);
}

// Reads on after the body's error: the same error again, not a misuse of the parser.
awaitable<Response> reads_on_after_an_error(const Request& request, Ctx& ctx) {
  MultipartReader parts(request, ctx.body());
  int first = 0;
  try {
    while (auto part = co_await parts.next_part()) {
    }
  } catch (const HttpError& e) {
    first = e.status();
  }
  try {
    co_await parts.next_part();
  } catch (const HttpError& e) {
    co_return Response::text(std::to_string(first) + " then " + std::to_string(e.status()));
  }
  co_return Response::text("no second error");
}

App& reader_app() {
  static App app;
  static bool ready = false;
  if (!ready) {
    app.post("/stream", describe_parts, "stream",
             {.max_body_bytes = 64 << 20, .stream_body = true});
    app.post("/whole", describe_parts, "whole");
    app.post("/heads", heads_only, "heads", {.max_body_bytes = 64 << 20, .stream_body = true});
    app.post("/again", reads_on_after_an_error, "again",
             {.max_body_bytes = 100, .stream_body = true});
    ready = true;
  }
  return app;
}

TestResponse post(TestClient& client, std::string_view target, std::string body,
                  std::string type = kType) {
  return client.request("POST", target, body, {{"Content-Type", type}});
}

TEST(MultipartReader, ReadsTextAndFilesAsTheyArriveInAnyReadSize) {
  const std::string body =
      "--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nh\xC3\xA9llo\r\n"
      "--XyZ\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"a.txt\"\r\n"
      "Content-Type: text/plain\r\n\r\nline one\r\n--XyQ, \r\n--Xy\r\nline two\r\n"
      "--XyZ\r\nContent-Disposition: form-data; name=\"empty\"; filename=\"\"\r\n\r\n\r\n"
      "--XyZ\r\nContent-Disposition: form-data; name=\"tag\"\r\n\r\n\r\n"
      "--XyZ--\r\n";
  const std::string expected =
      "title=h\xC3\xA9llo;doc:a.txt(text/plain)=line one\r\n--XyQ, \r\n--Xy\r\nline two;tag=;";
  for (const std::size_t read_size : {1, 2, 5, 13, 64, 4096}) {
    TestClient client(reader_app());
    client.set_read_size(read_size);
    const TestResponse answer = post(client, "/stream", body);
    ASSERT_EQ(answer.status, 200) << answer.body;
    EXPECT_EQ(answer.body.substr(0, answer.body.find(" pieces=")), expected) << read_size;
  }
  TestClient client(reader_app());
  const TestResponse answer = post(client, "/whole", body);
  EXPECT_EQ(answer.body, expected + " pieces=1");  // the body already in memory: one piece
}

TEST(MultipartReader, ALargeFileArrivesInPiecesNoLargerThanTheStreamBuffer) {
  TestClient client(reader_app());
  const std::string data(3 << 20, 'd');
  const TestResponse answer =
      client.post_multipart("/stream", {{"note", "hi"}}, {{"file", "big.bin", data}});
  ASSERT_EQ(answer.status, 200) << answer.body.substr(0, 200);
  const std::size_t pieces = std::stoul(answer.body.substr(answer.body.find(" pieces=") + 8));
  EXPECT_GE(pieces, data.size() / Limits{}.stream_buffer_bytes);
  EXPECT_NE(answer.body.find("file:big.bin(application/octet-stream)=" + data + ";"),
            std::string::npos);
}

TEST(MultipartReader, PartsLeftUnreadAreSkipped) {
  TestClient client(reader_app());
  client.set_read_size(100);
  const TestResponse answer = client.post_multipart(
      "/heads", {{"a", "1"}, {"b", "2"}}, {{"f", "x", std::string(100'000, 'x')}, {"g", "y", "z"}});
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.body, "a,b,f,g,");
}

TEST(MultipartReader, BadBodiesAndTypesAreTheirHttpErrors) {
  TestClient client(reader_app());
  client.set_read_size(3);
  const std::string part = "--XyZ\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\n";
  EXPECT_EQ(post(client, "/stream", part + "x", "text/plain").status, 415);
  EXPECT_EQ(post(client, "/stream", part + "x", "multipart/form-data").status, 400);
  const TestResponse cut = post(client, "/stream", part + "text, then the body ends");
  EXPECT_EQ(cut.status, 400);
  EXPECT_NE(cut.body.find("the body ends inside a part"), std::string::npos) << cut.body;
  const TestResponse not_text = post(client, "/stream", part + "\xFF\r\n--XyZ--");
  EXPECT_EQ(not_text.status, 400);
  EXPECT_NE(not_text.body.find("field 't' is not UTF-8 text"), std::string::npos);
  const TestResponse long_text =
      post(client, "/stream", part + std::string(65, 'a') + "\r\n--XyZ--");
  EXPECT_EQ(long_text.status, 413);
  EXPECT_NE(long_text.body.find("field 't' passes 64 bytes"), std::string::npos);
  EXPECT_EQ(post(client, "/stream", part + std::string(64, 'a') + "\r\n--XyZ--").status, 200);
}

TEST(MultipartReader, ABodyErrorIsThrownAgainByTheNextCall) {
  TestClient client(reader_app());
  // A chunked body past the route's 100 bytes: 413 from the body, then again.
  const std::string part =
      "--XyZ\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\n" + std::string(200, 'x');
  char size[16];
  std::snprintf(size, sizeof(size), "%zx", part.size());
  const std::string raw =
      client.raw("POST /again HTTP/1.1\r\nHost: t\r\nContent-Type: " + std::string(kType) +
                 "\r\nTransfer-Encoding: chunked\r\n\r\n" + size + "\r\n" + part + "\r\n0\r\n\r\n");
  const auto answers = TestClient::parse_responses(raw);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].body, "413 then 413");
}

TEST(MultipartReader, AtMostAThousandParts) {
  TestClient client(reader_app());
  std::string body;
  for (int i = 0; i < 1001; ++i)
    body += "--XyZ\r\nContent-Disposition: form-data; name=\"p\"\r\n\r\n\r\n";
  body += "--XyZ--";
  const TestResponse answer = post(client, "/heads", body);
  EXPECT_EQ(answer.status, 400);
  EXPECT_NE(answer.body.find("more than 1000 fields"), std::string::npos);
  body.erase(0, body.find("--XyZ", 1));
  EXPECT_EQ(post(client, "/heads", body).status, 200);
}

}  // namespace
}  // namespace molt::web
