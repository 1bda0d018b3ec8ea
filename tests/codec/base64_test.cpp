#include "molt/codec/base64.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace molt::codec {
namespace {

std::string encode(std::string_view bytes) {
  std::string out;
  append_base64(out, bytes);
  return out;
}

TEST(Base64Test, Rfc4648Vectors) {
  EXPECT_EQ(encode(""), "");
  EXPECT_EQ(encode("f"), "Zg==");
  EXPECT_EQ(encode("fo"), "Zm8=");
  EXPECT_EQ(encode("foo"), "Zm9v");
  EXPECT_EQ(encode("foob"), "Zm9vYg==");
  EXPECT_EQ(encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(decode_base64(""), "");
  EXPECT_EQ(decode_base64("Zg=="), "f");
  EXPECT_EQ(decode_base64("Zm8="), "fo");
  EXPECT_EQ(decode_base64("Zm9v"), "foo");
  EXPECT_EQ(decode_base64("Zm9vYg=="), "foob");
  EXPECT_EQ(decode_base64("Zm9vYmE="), "fooba");
  EXPECT_EQ(decode_base64("Zm9vYmFy"), "foobar");
}

TEST(Base64Test, UsesTheStandardAlphabetWithPlusAndSlash) {
  EXPECT_EQ(encode(std::string("\xfb\xff\xbf", 3)), "+/+/");
  EXPECT_EQ(decode_base64("+/+/"), std::string("\xfb\xff\xbf", 3));
}

TEST(Base64Test, AppendsToExistingOutput) {
  std::string out = "prefix:";
  append_base64(out, "hi");
  EXPECT_EQ(out, "prefix:aGk=");
}

TEST(Base64Test, EveryByteValueRoundTrips) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  EXPECT_EQ(decode_base64(encode(all)), all);
}

TEST(Base64Test, RandomBytesOfEveryLengthRoundTrip) {
  std::mt19937 rng(7);
  for (std::size_t length = 0; length < 300; ++length) {
    std::string bytes(length, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng());
    const std::string text = encode(bytes);
    EXPECT_EQ(text.size(), (length + 2) / 3 * 4);
    const auto decoded = decode_base64(text);
    ASSERT_TRUE(decoded.has_value()) << text;
    EXPECT_EQ(*decoded, bytes) << "length " << length;
  }
}

TEST(Base64Test, RejectsLengthsThatAreNotAMultipleOfFour) {
  for (const char* text : {"Z", "Zg", "Zg=", "Zm9vY", "Zm9vYg=", "Zm9vYmFy="})
    EXPECT_FALSE(decode_base64(text).has_value()) << text;
}

TEST(Base64Test, RejectsCharactersOutsideTheAlphabet) {
  for (const char* text : {"Zm9*", "Zm9v\nYmFy", "Zm 9", "Zm-_", "Zm9.", "Zm9v YmF"})
    EXPECT_FALSE(decode_base64(text).has_value()) << text;
  EXPECT_FALSE(decode_base64(std::string("Zm9\0", 4)).has_value());
  EXPECT_FALSE(decode_base64("Zm9\xff").has_value());
  EXPECT_FALSE(decode_base64("Zm9\x80").has_value());
}

TEST(Base64Test, RejectsMisplacedPadding) {
  for (const char* text :
       {"====", "Z===", "=Zg=", "==Zg", "Zg=a", "Z=g=", "Zg==Zg==", "Zm8=Zm8=", "Zm9=Zm9v"})
    EXPECT_FALSE(decode_base64(text).has_value()) << text;
}

}  // namespace
}  // namespace molt::codec
