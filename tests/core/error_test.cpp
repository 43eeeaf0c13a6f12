#include "core/error.h"

#include <gtest/gtest.h>

TEST(Error, FailJoinsPiecesIntoOneMessage) {
  try {
    onestep::fail("file ", "x.bin", ": truncated at byte ", 42);
    FAIL() << "fail() returned";
  } catch (const onestep::Error& e) {
    EXPECT_STREQ(e.what(), "file x.bin: truncated at byte 42");
  }
}

TEST(Error, RequirePassesAndFails) {
  EXPECT_NO_THROW(onestep::require(true, "never"));
  EXPECT_THROW(onestep::require(false, "bad"), onestep::Error);
}
