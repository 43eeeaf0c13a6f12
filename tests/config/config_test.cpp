#include "config/bounds.h"
#include "config/config.h"
#include "core/error.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "error_message.h"

#include <cmath>
#include <fstream>
#include <set>
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

// A choice parsed into an enum (config/enum_names.h) refuses what get_string with the same choices refuses, with
// the same one-line message, and writes the configuration's spelling back.
namespace {
enum class Fruit { Apple, Pear };
}  // namespace
template <>
struct onestep::EnumTable<Fruit> {
  static constexpr onestep::EnumNames<Fruit, 2> names{{{Fruit::Apple, "apple"}, {Fruit::Pear, "pear"}}};
};

TEST(Config, GetEnumParsesTheTableAndErrsAsGetStringDoes) {
  Json root = onestep::parse_toml("[m]\na = 'pear'\nb = 'plum'\nc = 3\n", "t");
  onestep::SectionReader reader(root, "m");
  EXPECT_EQ(reader.get_enum("a", Fruit::Apple), Fruit::Pear);
  EXPECT_EQ(reader.get_enum("absent", Fruit::Pear), Fruit::Pear);
  const std::string enum_error = error_of([&] { reader.get_enum("b", Fruit::Apple); });
  EXPECT_EQ(enum_error, "config: m.b must be one of apple, pear (got 'plum')");
  EXPECT_EQ(enum_error, error_of([&] { reader.get_string("b", "apple", {"apple", "pear"}); }));
  EXPECT_THAT(error_of([&] { reader.get_enum("c", Fruit::Apple); }), HasSubstr("m.c must be a string"));
  EXPECT_STREQ(onestep::enum_name(Fruit::Pear), "pear");
  EXPECT_EQ(onestep::enum_from_name<Fruit>("apple"), Fruit::Apple);
  EXPECT_EQ(onestep::enum_from_name<Fruit>("Apple"), std::nullopt);  // spellings are exact
  EXPECT_EQ(error_of([] { onestep::parse_enum<Fruit>("fig", "--fruit"); }),
            "--fruit must be one of apple, pear (got 'fig')");
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

// One bound table (config/bounds.h) for every size a configuration can set, checked by SectionReader where the
// config is read: each row at its bound is accepted and one past it refused, naming the key.
TEST(ConfigBounds, EveryRowAcceptsItsBoundAndRefusesOnePast) {
  const std::set<std::string> arrays = {"model.channel_mult", "model.attn_resolutions", "eval.steps"};
  const std::set<std::string> floats = {"objective.huber_c"};
  ASSERT_GE(onestep::config_bounds().size(), 30u);
  for (const onestep::ConfigBound& row : onestep::config_bounds()) {
    const std::string key = row.key;
    const std::string section = key.substr(0, key.find('.')), name = key.substr(key.find('.') + 1);
    auto read = [&](double value) {
      Json root;
      if (floats.count(key)) root[section][name] = value;
      else if (arrays.count(key)) root[section][name] = Json::array({static_cast<int64_t>(value)});
      else root[section][name] = static_cast<int64_t>(value);
      onestep::SectionReader reader(root, section);
      if (floats.count(key)) reader.get_float(name, 0);
      else if (arrays.count(key)) reader.get_ints(name, {});
      else reader.get_int(name, 0);
    };
    for (const double bound : {row.min, row.max}) {
      if (std::isinf(bound)) continue;
      EXPECT_NO_THROW(read(bound)) << key << " at " << bound;
      const double past = bound == row.min ? bound - 1 : bound + 1;
      EXPECT_THAT(error_of([&] { read(past); }), HasSubstr("config: " + key + " = ")) << key << " past " << bound;
      EXPECT_THAT(error_of([&] { read(past); }), HasSubstr(" is out of range: it must be ")) << key;
    }
  }
}

// The values the tester found: threads that ran libgomp out of memory, wrapped to a negative int or hung; a layer
// count that built layers until memory ran out; negative seeds and Huber constants; NaN for an integer key.
TEST(ConfigBounds, IssueValuesAreOneLineErrorsNamingTheKey) {
  auto error_for = [](const std::string& assignment, const std::string& section, const std::string& key) {
    Json root = Json::object();
    onestep::apply_override(root, assignment);
    onestep::SectionReader reader(root, section);
    return error_of([&] {
      if (key == "huber_c") reader.get_float(key, 0);
      else reader.get_int(key, 0);
    });
  };
  EXPECT_EQ(error_for("train.threads=99999999999", "train", "threads"),
            "config: train.threads = 99999999999 is out of range: it must be in [0, 1024] (CPU threads (0 = "
            "LibTorch's default); more than any machine's cores)");
  EXPECT_THAT(error_for("train.threads=2147483648", "train", "threads"), HasSubstr("train.threads = 2147483648 is"));
  EXPECT_THAT(error_for("train.threads=100000", "train", "threads"), HasSubstr("train.threads = 100000 is out of"));
  EXPECT_EQ(error_for("train.threads=1024", "train", "threads"), "(no error)");
  EXPECT_EQ(error_for("model.num_layers=99999999999", "model", "num_layers"),
            "config: model.num_layers = 99999999999 is out of range: it must be at most 1000 (hidden layers)");
  EXPECT_THAT(error_for("eval.seed=-1", "eval", "seed"), HasSubstr("eval.seed = -1 is out of range"));
  EXPECT_THAT(error_for("train.sample_every=-2", "train", "sample_every"), HasSubstr("in [-1, "));
  EXPECT_EQ(error_for("train.sample_every=-1", "train", "sample_every"), "(no error)");  // -1 = never
  EXPECT_EQ(error_for("objective.huber_c=-1", "objective", "huber_c"),
            "config: objective.huber_c = -1 is out of range: it must be at least 0 (the pseudo-Huber constant c (0 = "
            "the plain distance))");
  EXPECT_EQ(error_for("train.steps=nan", "train", "steps"), "config: train.steps must be an integer, got a number nan");
  EXPECT_EQ(error_for("train.steps=-inf", "train", "steps"),
            "config: train.steps must be an integer, got a number -inf");
}
