#include "molt/web/static_files.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>

#include "molt/web/openapi.hpp"
#include "molt/web/test_client.hpp"

namespace molt::web {
namespace {

namespace fs = std::filesystem;

// A folder of files under a fresh temporary folder, and a secret beside it (outside).
class StaticFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::temp_directory_path() /
            ("molt-static-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::create_directories(base_ / "public" / "docs");
    fs::create_directories(base_ / "public" / "empty");
    write("public/hello.txt", "hello, world\n");
    write("public/app.js", "console.log(1);");
    write("public/docs/index.html", "<h1>docs</h1>");
    write("public/data.bin", big_);
    write("secret.txt", "the secret");
    fs::create_symlink(base_ / "secret.txt", base_ / "public" / "leak.txt");
    fs::create_symlink(base_ / "public" / "hello.txt", base_ / "public" / "alias.txt");
  }
  void TearDown() override { fs::remove_all(base_); }

  void write(const std::string& name, const std::string& text) {
    std::ofstream(base_ / name, std::ios::binary) << text;
  }
  fs::path folder() const { return base_ / "public"; }

  static inline int counter_ = 0;
  fs::path base_;
  // Larger than a piece (8 KiB below), so that it is streamed.
  const std::string big_ = [] {
    std::string text(100'000, '\0');
    std::mt19937 random(7);
    for (char& c : text) c = static_cast<char>(random());
    return text;
  }();
};

TEST_F(StaticFilesTest, ServesFilesWithTheirTypeLengthAndValidators) {
  App app;
  serve_files(app, "/static", folder(), {.max_age = std::chrono::hours(1), .piece_bytes = 8192});
  TestClient client(app);
  const auto text = client.get("/static/hello.txt");
  ASSERT_EQ(text.status, 200);
  EXPECT_EQ(text.body, "hello, world\n");
  EXPECT_EQ(text.header("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(text.header("Content-Length"), "13");
  EXPECT_EQ(text.header("Accept-Ranges"), "bytes");
  EXPECT_EQ(text.header("Cache-Control"), "public, max-age=3600");
  EXPECT_TRUE(text.header("ETag").has_value());
  EXPECT_NE(text.header("Last-Modified").value_or("").find(" GMT"), std::string::npos);
  EXPECT_EQ(client.get("/static/app.js").header("Content-Type"), "text/javascript; charset=utf-8");

  const auto big = client.get("/static/data.bin");  // streamed in pieces of 8 KiB
  ASSERT_EQ(big.status, 200);
  EXPECT_EQ(big.header("Content-Length"), "100000");
  EXPECT_FALSE(big.header("Transfer-Encoding").has_value());
  EXPECT_EQ(big.header("Content-Type"), "application/octet-stream");
  EXPECT_TRUE(big.body == big_);

  const auto head = client.request("HEAD", "/static/data.bin");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.header("Content-Length"), "100000");
  EXPECT_EQ(head.body, "");
}

TEST_F(StaticFilesTest, NothingOutsideTheFolderIsServed) {
  App app;
  serve_files(app, "/static", folder());
  TestClient client(app);
  EXPECT_EQ(client.get("/static/leak.txt").status, 404);              // a link out of the folder
  EXPECT_EQ(client.get("/static/alias.txt").body, "hello, world\n");  // a link inside it
  for (const char* path :
       {"/static/../secret.txt", "/static/%2E%2E/secret.txt", "/static/docs%2F..%2F..%2Fsecret.txt",
        "/static//etc/passwd", "/static/%2Fetc%2Fpasswd", "/static/nope.txt", "/static/docs",
        "/static/empty", "/static/hello.txt%00.png"}) {
    const auto answer = client.get(path);
    EXPECT_TRUE(answer.status == 404 || answer.status == 400) << path << " " << answer.status;
    EXPECT_EQ(answer.body.find("secret"), std::string::npos) << path;
    EXPECT_EQ(answer.body.find("root:"), std::string::npos) << path;
  }
}

TEST_F(StaticFilesTest, LinksOutAreFollowedOnlyWhenAllowed) {
  App app;
  serve_files(app, "/static", folder(), {.follow_links_out = true});
  TestClient client(app);
  EXPECT_EQ(client.get("/static/leak.txt").body, "the secret");
  EXPECT_EQ(client.get("/static/..%2Fsecret.txt").status, 400);  // still no climbing out
}

TEST_F(StaticFilesTest, AFolderAnswersWithItsIndexWhenAsked) {
  App app;
  serve_files(app, "/", folder(), {.index_html = true});
  TestClient client(app);
  const auto docs = client.get("/docs/");
  EXPECT_EQ(docs.status, 200);
  EXPECT_EQ(docs.body, "<h1>docs</h1>");
  EXPECT_EQ(docs.header("Content-Type"), "text/html; charset=utf-8");
  // As Starlette: a folder's URL ends in '/', so that its page's relative links work.
  const auto bare = client.get("/docs?v=2");
  EXPECT_EQ(bare.status, 307);
  EXPECT_EQ(bare.header("Location"), "/docs/?v=2");
  EXPECT_EQ(client.get("/empty/").status, 404);
  EXPECT_EQ(client.get("/").status, 404);  // the folder has no index.html of its own
  EXPECT_EQ(client.get("/hello.txt").status, 200);
}

TEST_F(StaticFilesTest, ConditionalRequestsAreAnswered304) {
  App app;
  serve_files(app, "/static", folder());
  TestClient client(app);
  const auto first = client.get("/static/hello.txt");
  const std::string etag = first.header("ETag").value();
  const std::string modified = first.header("Last-Modified").value();
  const auto same = client.get("/static/hello.txt", {{"If-None-Match", "\"x\", " + etag}});
  EXPECT_EQ(same.status, 304);
  EXPECT_EQ(same.body, "");
  EXPECT_EQ(same.header("ETag"), etag);
  EXPECT_EQ(client.get("/static/hello.txt", {{"If-None-Match", "W/" + etag}}).status, 304);
  EXPECT_EQ(client.get("/static/hello.txt", {{"If-None-Match", "*"}}).status, 304);
  EXPECT_EQ(client.get("/static/hello.txt", {{"If-None-Match", "\"other\""}}).status, 200);
  EXPECT_EQ(client.get("/static/hello.txt", {{"If-Modified-Since", modified}}).status, 304);
  EXPECT_EQ(
      client.get("/static/hello.txt", {{"If-Modified-Since", "Sat, 01 Jan 2000 00:00:00 GMT"}})
          .status,
      200);
  EXPECT_EQ(client.get("/static/hello.txt", {{"If-Modified-Since", "not a date"}}).status, 200);
  // The obsolete date forms a recipient must still read (RFC 9110 §5.6.7).
  EXPECT_EQ(
      client.get("/static/hello.txt", {{"If-Modified-Since", "Friday, 31-Dec-99 23:59:59 GMT"}})
          .status,
      200);
  EXPECT_EQ(
      client.get("/static/hello.txt", {{"If-Modified-Since", "Sun Jan  1 00:00:00 2090"}}).status,
      304);
  // Every If-None-Match line counts.
  EXPECT_EQ(client.get("/static/hello.txt", {{"If-None-Match", "\"zzz\""}, {"If-None-Match", etag}})
                .status,
            304);
  // If-None-Match decides when both are there.
  EXPECT_EQ(client
                .get("/static/hello.txt",
                     {{"If-None-Match", "\"other\""}, {"If-Modified-Since", modified}})
                .status,
            200);
}

TEST_F(StaticFilesTest, OneRangeIsAnswered206) {
  App app;
  serve_files(app, "/static", folder(), {.piece_bytes = 8192});
  TestClient client(app);
  const auto part = client.get("/static/hello.txt", {{"Range", "bytes=0-4"}});
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.body, "hello");
  EXPECT_EQ(part.header("Content-Range"), "bytes 0-4/13");
  EXPECT_EQ(part.header("Content-Length"), "5");
  EXPECT_EQ(client.get("/static/hello.txt", {{"Range", "bytes=7-"}}).body, "world\n");
  EXPECT_EQ(client.get("/static/hello.txt", {{"Range", "bytes=-3"}}).body, "ld\n");
  EXPECT_EQ(client.get("/static/hello.txt", {{"Range", "bytes=10-999"}}).body, "ld\n");
  const auto big = client.get("/static/data.bin", {{"Range", "bytes=50000-99999"}});
  EXPECT_EQ(big.status, 206);
  EXPECT_TRUE(big.body == big_.substr(50000));
  const auto past = client.get("/static/hello.txt", {{"Range", "bytes=13-20"}});
  EXPECT_EQ(past.status, 416);
  EXPECT_EQ(past.header("Content-Range"), "bytes */13");
  EXPECT_FALSE(past.header("ETag").has_value());  // nothing a cache would keep
  EXPECT_EQ(client.get("/static/hello.txt", {{"Range", "Bytes=0-1"}}).body, "he");
  EXPECT_EQ(client.get("/static/hello.txt", {{"Range", "bytes=12-99999999999999999999999"}}).body,
            "\n");
  EXPECT_EQ(client.get("/static/hello.txt", {{"Range", "bytes=99999999999999999999999-"}}).status,
            416);
  // Several ranges, or one not understood: the whole file.
  for (const char* ignored : {"bytes=0-1,3-4", "bytes=5-2", "items=0-1", "bytes=x-"})
    EXPECT_EQ(client.get("/static/hello.txt", {{"Range", ignored}}).status, 200) << ignored;
  // If-Range: the range only while the file is the one the client has.
  const std::string etag = client.get("/static/hello.txt").header("ETag").value();
  EXPECT_EQ(client.get("/static/hello.txt", {{"Range", "bytes=0-4"}, {"If-Range", etag}}).status,
            206);
  EXPECT_EQ(
      client.get("/static/hello.txt", {{"Range", "bytes=0-4"}, {"If-Range", "\"old\""}}).status,
      200);
}

TEST_F(StaticFilesTest, AFifoOrAFolderIsNotAFile) {
  ASSERT_EQ(::mkfifo((folder() / "pipe").c_str(), 0600), 0);
  App app;
  serve_files(app, "/static", folder());
  TestClient client(app);
  EXPECT_EQ(client.get("/static/pipe").status, 404);  // and the call returns: no open() hangs
  EXPECT_EQ(client.get("/static/docs").status, 404);
}

TEST_F(StaticFilesTest, AFolderBehindALinkIsResolvedForEachRequest) {
  // A deploy that swaps `current` from one release to the next.
  fs::create_directories(base_ / "release-1");
  fs::create_directories(base_ / "release-2");
  write("release-1/app.js", "v1");
  write("release-2/app.js", "v2");
  fs::create_directory_symlink(base_ / "release-1", base_ / "current");
  App app;
  serve_files(app, "/static", base_ / "current");
  TestClient client(app);
  EXPECT_EQ(client.get("/static/app.js").body, "v1");
  fs::create_directory_symlink(base_ / "release-2", base_ / "next");
  fs::rename(base_ / "next", base_ / "current");
  EXPECT_EQ(client.get("/static/app.js").body, "v2");
}

TEST_F(StaticFilesTest, AFileThatCannotBeReadIsA403NotA404) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads every file";
  fs::permissions(folder() / "hello.txt", fs::perms::none);
  App app;
  serve_files(app, "/static", folder());
  TestClient client(app);
  EXPECT_EQ(client.get("/static/hello.txt").status, 403);
  fs::permissions(folder() / "hello.txt", fs::perms::owner_all);
}

TEST_F(StaticFilesTest, OutOfFileDescriptorsIsA503NotA404) {
  App app;
  serve_files(app, "/static", folder());
  TestClient client(app);
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  // A descriptor's number must be below the limit: none is free below the lowest free one.
  const int lowest_free = ::dup(0);
  ::close(lowest_free);
  rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(lowest_free);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);
  const auto answer = client.get("/static/hello.txt");
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  EXPECT_EQ(answer.status, 503) << answer.body;
  EXPECT_EQ(client.get("/static/hello.txt").status, 200);
}

TEST_F(StaticFilesTest, AFolderThatIsNotThereFailsAtStartup) {
  App app;
  EXPECT_THROW(serve_files(app, "/static", base_ / "missing"), std::invalid_argument);
  EXPECT_THROW(serve_files(app, "/static", base_ / "secret.txt"), std::invalid_argument);
}

TEST_F(StaticFilesTest, TheFilesAreNotInTheOpenApiDocument) {
  App app;
  serve_files(app, "/static", folder(), {.index_html = true});
  EXPECT_TRUE(openapi_document(app, {}).at("paths").as_object().empty());
}

}  // namespace
}  // namespace molt::web
