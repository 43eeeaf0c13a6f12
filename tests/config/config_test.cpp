#include "config/config.h"
#include "core/error.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "error_message.h"

#include <fstream>
#include <unistd.h>

using onestep::Json;
using ::testing::HasSubstr;

namespace {
using onestep::testing::error_of;
}  // namespace

TEST(Config, ParsesTomlIntoJson) {
  Json root = onestep::parse_toml("[model]\nchannels = 64\nmult = [1, 2]\n[train]\nlr = 1e-4\nema = true\n", "t");
  EXPECT_EQ(root["model"]["channels"].get<int64_t>(), 64);
  EXPECT_EQ(root["model"]["mult"].size(), 2u);
  EXPECT_DOUBLE_EQ(root["train"]["lr"].get<double>(), 1e-4);
  EXPECT_TRUE(root["train"]["ema"].get<bool>());
}

TEST(Config, TomlSyntaxErrorNamesSourceAndLine) {
  EXPECT_THAT(error_of([] { onestep::parse_toml("[model]\nchannels = = 3\n", "bad.toml"); }),
              HasSubstr("bad.toml:2"));
}

TEST(Config, OverridesParseTomlValuesAndBareWords) {
  Json root = onestep::parse_toml("[train]\nlr = 1e-4\n", "t");
  onestep::apply_override(root, "train.lr=3e-4");
  onestep::apply_override(root, "data.dataset=cifar10");
  onestep::apply_override(root, "model.mult=[2,2,2]");
  onestep::apply_override(root, "train.bf16=true");
  EXPECT_DOUBLE_EQ(root["train"]["lr"].get<double>(), 3e-4);
  EXPECT_EQ(root["data"]["dataset"].get<std::string>(), "cifar10");
  EXPECT_EQ(root["model"]["mult"][2].get<int64_t>(), 2);
  EXPECT_TRUE(root["train"]["bf16"].get<bool>());
  EXPECT_THAT(error_of([&] { onestep::apply_override(root, "nodot=1"); }), HasSubstr("section.key=value"));
  EXPECT_THAT(error_of([&] { onestep::apply_override(root, "train.lr"); }), HasSubstr("section.key=value"));
}

TEST(Config, SectionReaderTypesDefaultsAndUnknownKeys) {
  Json root = onestep::parse_toml("[model]\nchannels = 64\ndropuot = 0.1\nkind = 'unet'\n", "t");
  onestep::SectionReader reader(root, "model");
  EXPECT_EQ(reader.get_int("channels", 128), 64);
  EXPECT_DOUBLE_EQ(reader.get_float("dropout", 0.13), 0.13);
  EXPECT_EQ(reader.get_string("kind", "mlp", {"unet", "mlp"}), "unet");
  const std::string message = error_of([&] { reader.finish(); });
  EXPECT_THAT(message, HasSubstr("unknown key 'model.dropuot'"));
  EXPECT_THAT(message, HasSubstr("dropout"));
}

TEST(Config, SectionReaderRejectsWrongTypesAndChoices) {
  Json root = onestep::parse_toml("[m]\na = 'x'\nb = 1.5\nc = 'other'\nd = [1, 'x']\ne = 2\n", "t");
  onestep::SectionReader reader(root, "m");
  EXPECT_THAT(error_of([&] { reader.get_float("a", 0); }), HasSubstr("m.a must be a number"));
  EXPECT_THAT(error_of([&] { reader.get_int("b", 0); }), HasSubstr("m.b must be an integer"));
  EXPECT_THAT(error_of([&] { reader.get_string("c", "", {"p", "q"}); }), HasSubstr("one of p, q"));
  EXPECT_THAT(error_of([&] { reader.get_ints("d", {}); }), HasSubstr("array of integers"));
  EXPECT_DOUBLE_EQ(reader.get_float("e", 0), 2.0);  // an integer is a valid number
}

TEST(Config, UnknownSectionIsRejected) {
  Json root = onestep::parse_toml("[modle]\na = 1\n", "t");
  EXPECT_THAT(error_of([&] { onestep::check_sections(root, {"model", "train"}); }),
              HasSubstr("unknown section [modle]"));
}

TEST(Config, TomlRoundTrip) {
  Json root = onestep::parse_toml("[a]\nx = 1\ny = [0.5, 2.0]\nz = 'q'\nw = false\n", "t");
  Json again = onestep::parse_toml(onestep::to_toml(root), "round");
  EXPECT_EQ(root, again);
}

TEST(Config, ResolvePresetRejectsUnknownNames) {
  EXPECT_THAT(error_of([] { onestep::resolve_preset("no-such-preset-xyz"); }), HasSubstr("neither a file nor a preset"));
}

TEST(Config, BaseChainsMergeInOrderAndFileWins) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("onestep_cfg_base_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name) << text;
  };
  write("a.toml", "[model]\nchannels = 32\ndropout = 0.1\n[train]\nlr = 1.0\n");
  write("b.toml", "[model]\ndropout = 0.2\n");
  write("top.toml", "base = ['" + (dir / "a.toml").string() + "', '" + (dir / "b.toml").string() +
                        "']\n[train]\nlr = 2.0\n");
  Json root = onestep::load_config_file(dir / "top.toml");
  EXPECT_EQ(root["model"]["channels"].get<int64_t>(), 32);
  EXPECT_DOUBLE_EQ(root["model"]["dropout"].get<double>(), 0.2);
  EXPECT_DOUBLE_EQ(root["train"]["lr"].get<double>(), 2.0);
  EXPECT_FALSE(root.contains("base"));
  write("cycle.toml", "base = '" + (dir / "cycle.toml").string() + "'\n");
  EXPECT_THAT(error_of([&] { onestep::load_config_file(dir / "cycle.toml"); }), HasSubstr("too deep"));
  write("badbase.toml", "base = 3\n");
  EXPECT_THAT(error_of([&] { onestep::load_config_file(dir / "badbase.toml"); }), HasSubstr("'base' must be"));
  fs::remove_all(dir);
}
