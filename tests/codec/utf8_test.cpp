#include "molt/codec/utf8.hpp"

#include <gtest/gtest.h>

#include <string>

namespace molt::codec {
namespace {

TEST(Utf8Test, AcceptsWellFormedText) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("list_items"));
  EXPECT_TRUE(is_valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));  // é € 😀
  EXPECT_TRUE(is_valid_utf8("\xf4\x8f\xbf\xbf"));                           // U+10FFFF
}

TEST(Utf8Test, RejectsIllFormedSequences) {
  EXPECT_FALSE(is_valid_utf8("\xff"));
  EXPECT_FALSE(is_valid_utf8("\xc3"));              // truncated
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("a\x80z"));            // stray continuation
}

// Long ASCII runs are checked eight bytes at a time: a bad byte or a multi-byte sequence is
// found wherever it falls against those words.
TEST(Utf8Test, FindsABadByteAtEveryOffsetOfALongText) {
  for (std::size_t at = 0; at < 40; ++at) {
    std::string text(40, 'a');
    text[at] = '\xff';
    EXPECT_FALSE(is_valid_utf8(text)) << at;
    text[at] = 'a';
    text.insert(at, "\xc3\xa9");  // é
    EXPECT_TRUE(is_valid_utf8(text)) << at;
    text.erase(at + 1, 1);  // its first byte alone
    EXPECT_FALSE(is_valid_utf8(text)) << at;
  }
}

TEST(Utf8Test, ReplacesEachBadByteAndKeepsTheRest) {
  EXPECT_EQ(replace_invalid_utf8("ok"), "ok");
  EXPECT_EQ(replace_invalid_utf8("a\xff"
                                 "b"),
            "a\xef\xbf\xbd"
            "b");
  EXPECT_EQ(replace_invalid_utf8("\xc3\xa9\xc3"), "\xc3\xa9\xef\xbf\xbd");
  EXPECT_TRUE(is_valid_utf8(replace_invalid_utf8("\xed\xa0\x80 \xf8\x88")));
}

TEST(Utf8Test, ACutNeverSplitsACharacter) {
  EXPECT_EQ(utf8_cut("abc", 10), 3u);
  EXPECT_EQ(utf8_cut("abc", 2), 2u);
  const std::string_view e_acute = "a\xc3\xa9b";  // "aéb": é is bytes 1-2
  EXPECT_EQ(utf8_cut(e_acute, 2), 1u);            // not between é's two bytes
  EXPECT_EQ(utf8_cut(e_acute, 3), 3u);
  EXPECT_EQ(utf8_cut("\xe2\x82\xac", 2), 0u);  // "€" whole or nothing
  EXPECT_EQ(utf8_cut("", 0), 0u);
}

}  // namespace
}  // namespace molt::codec
