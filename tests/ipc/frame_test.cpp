#include "molt/ipc/frame.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace molt::ipc {
namespace {

std::string header(std::uint32_t n) {
  std::string h(4, '\0');
  for (int i = 0; i < 4; ++i) h[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return h;
}

std::string frame(std::string_view body) {
  std::string out;
  append_frame(out, body);
  return out;
}

// What a reader reports, in a form tests can compare.
struct Seen {
  bool oversized;
  std::string body;
  std::uint64_t declared;
  friend bool operator==(const Seen&, const Seen&) = default;
};

std::ostream& operator<<(std::ostream& os, const Seen& s) {
  return os << (s.oversized ? "Oversized(" : "Frame(") << s.declared << ", " << s.body.size()
            << " bytes)";
}

std::vector<Seen> drain(FrameReader& reader) {
  std::vector<Seen> out;
  while (auto event = reader.next()) {
    out.push_back({event->kind == FrameEvent::Kind::Oversized, std::string(event->bytes),
                   event->declared_size});
  }
  return out;
}

Seen body(std::string_view b) {
  return {false, std::string(b), b.size()};
}
Seen oversized(std::uint64_t n) {
  return {true, "", n};
}

TEST(AppendFrameTest, WritesALittleEndianLengthThenTheBody) {
  EXPECT_EQ(frame("abc"), std::string("\x03\0\0\0abc", 7));
  EXPECT_EQ(frame(""), std::string(4, '\0'));
  const std::string big(0x010203, 'x');
  EXPECT_EQ(frame(big).substr(0, 4), std::string("\x03\x02\x01\x00", 4));
  EXPECT_EQ(frame(big).size(), big.size() + 4);
}

TEST(AppendFrameTest, AppendsAfterExistingBytes) {
  std::string out = "xy";
  append_frame(out, "a");
  append_frame(out, "bc");
  EXPECT_EQ(out, std::string("xy\x01\0\0\0a\x02\0\0\0bc", 2 + 5 + 6));
}

TEST(FrameBuilderTest, FinishWritesTheLengthOfWhatWasAppended) {
  std::string out = "prefix";
  FrameBuilder builder(out);
  builder.body() += "hello";
  builder.body() += ", world";
  builder.finish();
  EXPECT_EQ(out, "prefix" + header(12) + "hello, world");
}

TEST(FrameBuilderTest, EmptyBodyAndConsecutiveFrames) {
  std::string out;
  {
    FrameBuilder empty(out);
    empty.finish();
  }
  FrameBuilder second(out);
  out += "zz";
  second.finish();
  EXPECT_EQ(out, header(0) + header(2) + "zz");
}

TEST(FrameReaderTest, NothingUntilAFrameIsComplete) {
  FrameReader reader;
  EXPECT_FALSE(reader.next());
  EXPECT_FALSE(reader.mid_frame());
  reader.feed(std::string("\x05\0", 2));
  EXPECT_FALSE(reader.next());
  EXPECT_TRUE(reader.mid_frame());
  reader.feed(std::string("\0\0hell", 6));
  EXPECT_FALSE(reader.next());
  EXPECT_TRUE(reader.mid_frame());
  reader.feed("o");
  EXPECT_EQ(drain(reader), std::vector<Seen>{body("hello")});
  EXPECT_FALSE(reader.mid_frame());
}

TEST(FrameReaderTest, FrameSplitByteByByte) {
  const std::string stream = frame("first") + frame("") + frame("third one");
  FrameReader reader;
  std::vector<Seen> seen;
  for (char c : stream) {
    reader.feed(std::string_view(&c, 1));
    for (auto& s : drain(reader)) seen.push_back(s);
  }
  EXPECT_EQ(seen, (std::vector<Seen>{body("first"), body(""), body("third one")}));
  EXPECT_FALSE(reader.mid_frame());
}

TEST(FrameReaderTest, SeveralFramesInOneFeed) {
  FrameReader reader;
  reader.feed(frame("a") + frame("bb") + frame("ccc") + std::string("\x04\0", 2));
  EXPECT_EQ(drain(reader), (std::vector<Seen>{body("a"), body("bb"), body("ccc")}));
  EXPECT_TRUE(reader.mid_frame()) << "half a header is still buffered";
  reader.feed(std::string("\0\0dddd", 6));
  EXPECT_EQ(drain(reader), std::vector<Seen>{body("dddd")});
  EXPECT_FALSE(reader.mid_frame());
}

TEST(FrameReaderTest, BodiesKeepEveryByteValue) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  FrameReader reader;
  reader.feed(frame(all));
  EXPECT_EQ(drain(reader), std::vector<Seen>{body(all)});
}

TEST(FrameReaderTest, FrameOfExactlyTheLimitIsAccepted) {
  FrameReader reader(8);
  EXPECT_EQ(reader.max_frame(), 8u);
  reader.feed(frame("12345678"));
  EXPECT_EQ(drain(reader), std::vector<Seen>{body("12345678")});
}

TEST(FrameReaderTest, OversizedFrameIsReportedOnceAtItsHeaderThenSkipped) {
  FrameReader reader(8);
  reader.feed(header(9));
  // Reported as soon as the header is known, before any of its body arrived.
  EXPECT_EQ(drain(reader), std::vector<Seen>{oversized(9)});
  EXPECT_TRUE(reader.mid_frame());
  reader.feed("abc");
  EXPECT_EQ(drain(reader), std::vector<Seen>{});
  reader.feed("defg");
  EXPECT_EQ(drain(reader), std::vector<Seen>{});
  EXPECT_TRUE(reader.mid_frame());
  // The last two skipped bytes arrive together with a whole valid frame.
  reader.feed("hi" + frame("ok"));
  EXPECT_EQ(drain(reader), std::vector<Seen>{body("ok")});
  EXPECT_FALSE(reader.mid_frame());
}

TEST(FrameReaderTest, OversizedFrameSkippedByteByByte) {
  FrameReader reader(4);
  const std::string stream =
      frame("too long!") + frame("fine") + frame("also too long") + frame("") + frame("ok");
  std::vector<Seen> seen;
  for (char c : stream) {
    reader.feed(std::string_view(&c, 1));
    for (auto& s : drain(reader)) seen.push_back(s);
  }
  EXPECT_EQ(seen,
            (std::vector<Seen>{oversized(9), body("fine"), oversized(13), body(""), body("ok")}));
  EXPECT_FALSE(reader.mid_frame());
}

TEST(FrameReaderTest, OversizedFrameInOneFeedWithFollowers) {
  FrameReader reader(4);
  reader.feed(frame("0123456789") + frame("next"));
  EXPECT_EQ(drain(reader), (std::vector<Seen>{oversized(10), body("next")}));
}

TEST(FrameReaderTest, HugeDeclaredLengthIsNotBuffered) {
  FrameReader reader;  // the 64 MiB default
  EXPECT_EQ(reader.max_frame(), kDefaultMaxFrame);
  reader.feed(header(0xffffffffu));
  EXPECT_EQ(drain(reader), std::vector<Seen>{oversized(0xffffffffu)});
  // A megabyte of its body goes straight to the floor.
  const std::string chunk(1 << 20, 'x');
  for (int i = 0; i < 4; ++i) {
    reader.feed(chunk);
    EXPECT_EQ(drain(reader), std::vector<Seen>{});
  }
  EXPECT_TRUE(reader.mid_frame()) << "still inside the oversized frame at EOF";
  EXPECT_LE(reader.prepare(1).size(), 2u * chunk.size()) << "buffer grew with skipped bytes";
}

TEST(FrameReaderTest, DefaultLimitIs64MiB) {
  EXPECT_EQ(kDefaultMaxFrame, 64u * 1024 * 1024);
  FrameReader reader;
  reader.feed(header(64u * 1024 * 1024 + 1));
  EXPECT_EQ(drain(reader), std::vector<Seen>{oversized(64u * 1024 * 1024 + 1)});
}

TEST(FrameReaderTest, PrepareAndCommitReadsInPlace) {
  FrameReader reader;
  const std::string stream = frame("direct");
  auto room = reader.prepare(3);
  ASSERT_GE(room.size(), 3u);
  std::memcpy(room.data(), stream.data(), 3);
  reader.commit(3);
  EXPECT_FALSE(reader.next());
  room = reader.prepare(stream.size() - 3);
  ASSERT_GE(room.size(), stream.size() - 3);
  std::memcpy(room.data(), stream.data() + 3, stream.size() - 3);
  reader.commit(stream.size() - 3);
  EXPECT_EQ(drain(reader), std::vector<Seen>{body("direct")});
}

TEST(FrameReaderTest, LongRunsDoNotGrowTheBuffer) {
  FrameReader reader;
  const std::string one = frame(std::string(100, 'q'));
  for (int i = 0; i < 10000; ++i) {
    reader.feed(one);
    ASSERT_EQ(drain(reader).size(), 1u);
  }
  EXPECT_LE(reader.prepare(1).size(), 256u * 1024) << "consumed bytes were not reclaimed";
}

TEST(FrameReaderTest, RandomChunkingGivesTheSameEvents) {
  std::mt19937 rng(99);
  constexpr std::size_t kMax = 64;
  std::string stream;
  std::vector<Seen> expected;
  for (int i = 0; i < 300; ++i) {
    const std::size_t n = rng() % 100;
    std::string b(n, '\0');
    for (auto& c : b) c = static_cast<char>(rng());
    stream += frame(b);
    expected.push_back(n > kMax ? oversized(n) : body(b));
  }
  for (int round = 0; round < 20; ++round) {
    FrameReader reader(kMax);
    std::vector<Seen> seen;
    for (std::size_t at = 0; at < stream.size();) {
      const std::size_t n = std::min<std::size_t>(1 + rng() % 300, stream.size() - at);
      reader.feed(std::string_view(stream).substr(at, n));
      at += n;
      for (auto& s : drain(reader)) seen.push_back(s);
    }
    ASSERT_EQ(seen, expected) << "round " << round;
    EXPECT_FALSE(reader.mid_frame());
  }
}

}  // namespace
}  // namespace molt::ipc
