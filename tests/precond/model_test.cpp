#include "config/config.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "networks/layers.h"
#include "precond/model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "error_message.h"

#include <filesystem>

using onestep::Json;
using ::testing::HasSubstr;

namespace {
Json tiny_root() {
  return Json{{"model",
               {{"arch", "songunet"},
                {"variant", "ncsnpp"},
                {"img_resolution", 8},
                {"img_channels", 1},
                {"model_channels", 8},
                {"channel_mult", {1, 2}},
                {"num_blocks", 1},
                {"attn_resolutions", {4}},
                {"label_dim", 3}}},
              {"precond", {{"sigma_min", 0.003}, {"train_scalings", "edm"}}}};
}
std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("onestep_model_" + std::to_string(::getpid()) + "_" + name);
}
using onestep::testing::error_of;
}  // namespace

TEST(Model, SaveLoadRoundTripWithoutBeingToldTheArchitecture) {
  torch::manual_seed(3);
  auto model = onestep::build_model(tiny_root());
  for (auto& p : model->parameters()) p.data().normal_(0, 0.2);
  const auto path = temp_path("rt.safetensors");
  EXPECT_EQ(model->trained_with(), "");
  model->set_trained_with("ect");
  onestep::save_model(path, model, {{"step", "42"}});
  auto loaded = onestep::load_model(path);
  EXPECT_EQ(loaded->trained_with(), "ect");  // metadata "onestep" -> "method"
  EXPECT_EQ(loaded->precond().sigma_min, 0.003);
  EXPECT_EQ(loaded->precond().train_scalings, onestep::Scalings::Edm);
  EXPECT_EQ(loaded->label_dim(), 3);
  EXPECT_EQ(loaded->sample_shape(), (std::vector<int64_t>{1, 8, 8}));
  EXPECT_EQ(loaded->model_config(), model->model_config());
  model->eval();
  loaded->eval();
  auto x = torch::randn({2, 1, 8, 8});
  auto labels = torch::eye(3).slice(0, 0, 2);
  auto sigma = torch::tensor({0.1f, 10.0f});
  EXPECT_TRUE(torch::equal(model->forward(x, sigma, onestep::Scalings::Consistency, labels),
                           loaded->forward(x, sigma, onestep::Scalings::Consistency, labels)));
  EXPECT_EQ(onestep::load_safetensors(path).metadata.at("step"), "42");
  std::filesystem::remove(path);
}

TEST(Model, PrefixSelectsAWeightSetAndLoadIsStrict) {
  torch::manual_seed(4);
  auto model = onestep::build_model(tiny_root());
  const auto plain = temp_path("plain.safetensors");
  onestep::save_model(plain, model);
  auto content = onestep::load_safetensors(plain);

  // A training checkpoint with two weight sets: "ema.0.9999." selects the second.
  std::vector<std::pair<std::string, torch::Tensor>> both;
  for (const auto& [name, t] : content.tensors) both.emplace_back(name, t);
  for (const auto& [name, t] : content.tensors) both.emplace_back("ema.0.9999." + name, t + 1);
  const auto ckpt = temp_path("ckpt.safetensors");
  onestep::save_safetensors(ckpt, both, content.metadata);
  auto ema = onestep::load_model(ckpt, "ema.0.9999.");
  EXPECT_TRUE(torch::equal(ema->named_parameters()["model.map_layer0.weight"],
                           model->named_parameters()["model.map_layer0.weight"] + 1));
  EXPECT_THAT(error_of([&] { onestep::load_model(ckpt); }), HasSubstr("unexpected tensor 'ema.0.9999.model."));
  EXPECT_THAT(error_of([&] { onestep::load_model(ckpt, "ema.0.5."); }), HasSubstr("no tensor starts with 'ema.0.5.'"));

  // Missing, mis-shaped and unexpected tensors each name the tensor.
  auto rewrite = [&](const std::function<void(std::vector<std::pair<std::string, torch::Tensor>>&)>& edit) {
    std::vector<std::pair<std::string, torch::Tensor>> tensors(content.tensors.begin(), content.tensors.end());
    edit(tensors);
    const auto path = temp_path("edit.safetensors");
    onestep::save_safetensors(path, tensors, content.metadata);
    std::string message = error_of([&] { onestep::load_model(path); });
    std::filesystem::remove(path);
    return message;
  };
  EXPECT_THAT(rewrite([](auto& t) {
                std::erase_if(t, [](const auto& p) { return p.first == "model.dec.8x8_aux_conv.bias"; });
              }),
              HasSubstr("missing tensor 'model.dec.8x8_aux_conv.bias'"));
  EXPECT_THAT(rewrite([](auto& t) {
                for (auto& p : t)
                  if (p.first == "model.map_layer1.weight") p.second = torch::zeros({2, 2});
              }),
              HasSubstr("tensor 'model.map_layer1.weight' has shape"));
  EXPECT_THAT(rewrite([](auto& t) { t.emplace_back("model.extra", torch::zeros({1})); }),
              HasSubstr("unexpected tensor 'model.extra'"));

  // No configuration metadata, or a broken one.
  const auto bare = temp_path("bare.safetensors");
  onestep::save_safetensors(bare, {{"model.x", torch::zeros({1})}});
  EXPECT_THAT(error_of([&] { onestep::load_model(bare); }), HasSubstr("no 'onestep' metadata"));
  onestep::save_safetensors(bare, {{"model.x", torch::zeros({1})}}, {{"onestep", "{oops"}});
  EXPECT_THAT(error_of([&] { onestep::load_model(bare); }), HasSubstr("not valid JSON"));
  onestep::save_safetensors(bare, {{"model.x", torch::zeros({1})}},
                            {{"onestep", R"({"model":{"arch":"songunet","num_blocks":0}})"}});
  EXPECT_THAT(error_of([&] { onestep::load_model(bare); }), HasSubstr("num_blocks"));
  for (const auto& p : {plain, ckpt, bare}) std::filesystem::remove(p);
}

TEST(Model, BuildRejectsUnknownPrecondKeys) {
  Json root = tiny_root();
  root["precond"]["sigma_mni"] = 0.1;
  EXPECT_THAT(error_of([&] { onestep::build_model(root); }), HasSubstr("sigma_mni"));
}

// ECT starts from EDM's public CIFAR-10 checkpoint, whose network has EDM's augmentation conditioning
// (augment_dim 9, model.map_augment.weight); ECT configures none and its loader drops that mapping
// (require_all=False). Any other difference is refused, naming the tensors. A small synthetic checkpoint stands in.
TEST(Model, InitDropsEdmsAugmentationMappingAndRefusesOtherMismatches) {
  Json with_augment = tiny_root();
  with_augment["model"]["augment_dim"] = 9;
  torch::manual_seed(5);
  auto edm = onestep::build_model(with_augment);
  for (auto& p : edm->parameters()) p.data().normal_(0, 0.2);
  const auto path = temp_path("augment.safetensors");
  onestep::save_model(path, edm);
  auto source = onestep::load_model(path);  // as --init reads it
  ASSERT_NE(source->named_parameters().find("model.map_augment.weight"), nullptr);

  auto target = onestep::build_model(tiny_root());
  const auto dropped = onestep::copy_init_weights(target, source, path.string());
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_THAT(dropped[0], HasSubstr("model.map_augment.weight ["));
  auto from = source->named_parameters();
  for (const auto& item : target->named_parameters())
    EXPECT_TRUE(torch::equal(item.value(), from[item.key()])) << item.key();

  Json wider = tiny_root();
  wider["model"]["model_channels"] = 16;
  auto other = onestep::build_model(wider);
  const std::string shapes = error_of([&] { onestep::copy_init_weights(other, source, "edm.safetensors"); });
  EXPECT_THAT(shapes, HasSubstr("--init edm.safetensors: does not match the configured model (architectures differ"));
  EXPECT_THAT(shapes, HasSubstr("shapes differ (checkpoint vs configured): 'model."));
  Json unconditional = tiny_root();
  unconditional["model"]["label_dim"] = 0;
  auto no_labels = onestep::build_model(unconditional);
  EXPECT_THAT(error_of([&] { onestep::copy_init_weights(no_labels, source, "edm.safetensors"); }),
              HasSubstr("the configured model has no 'model.map_label."));
  // A model that wants an augmentation mapping does not get a silently fresh one.
  auto wants_augment = onestep::build_model(with_augment);
  auto plain = onestep::build_model(tiny_root());
  EXPECT_THAT(error_of([&] { onestep::copy_init_weights(wants_augment, plain, "plain.safetensors"); }),
              HasSubstr("the checkpoint lacks 'model.map_augment.weight'"));
  std::filesystem::remove(path);
}

// The metadata is checked against the stored tensors before the network is built, and the build
// never allocates more values than the file stores; each message names the wrong key.
TEST(Model, MetadataThatContradictsTheStoredTensorsNamesTheKeyBeforeAllocating) {
  auto metadata_edit = [](const std::filesystem::path& source, const std::string& key, const Json& value) {
    auto content = onestep::load_safetensors(source);
    Json meta = Json::parse(content.metadata.at("onestep"));
    meta["model"][key] = value;
    content.metadata["onestep"] = meta.dump();
    const auto path = temp_path("meta_" + key + ".safetensors");
    onestep::save_safetensors(path, content.tensors, content.metadata);
    std::string message = error_of([&] { onestep::load_model(path); });
    std::filesystem::remove(path);
    return message;
  };
  auto mlp = onestep::build_model(Json{{"model", {{"arch", "mlp"}, {"hidden", 16}, {"num_layers", 2},
                                                  {"noise_channels", 8}}}});
  const auto mlp_path = temp_path("mlp.safetensors");
  onestep::save_model(mlp_path, mlp);
  EXPECT_EQ(metadata_edit(mlp_path, "hidden", 16), "(no error)");
  // Past the bound table (config/bounds.h) the metadata is refused before its shapes are compared.
  EXPECT_THAT(metadata_edit(mlp_path, "num_layers", 1000000000),
              HasSubstr("model.num_layers = 1000000000 is out of range: it must be at most 1000"));
  EXPECT_THAT(metadata_edit(mlp_path, "num_layers", 999),
              HasSubstr("model.num_layers = 999, but the file stores 2 hidden layers"));
  EXPECT_THAT(metadata_edit(mlp_path, "num_layers", 3), HasSubstr("model.num_layers = 3"));
  EXPECT_THAT(metadata_edit(mlp_path, "hidden", 1000000), HasSubstr("model.hidden = 1000000"));
  EXPECT_THAT(metadata_edit(mlp_path, "in_dim", 3), HasSubstr("model.in_dim = 3"));
  EXPECT_THAT(metadata_edit(mlp_path, "noise_channels", 1 << 20), HasSubstr("model.noise_channels = 1048576"));
  EXPECT_THAT(metadata_edit(mlp_path, "label_dim", 10), HasSubstr("model.label_dim = 10"));
  EXPECT_THAT(metadata_edit(mlp_path, "label_dim", 10), HasSubstr("meta_label_dim.safetensors': model.label_dim"));
  std::filesystem::remove(mlp_path);

  auto unet = onestep::build_model(tiny_root());
  const auto unet_path = temp_path("unet.safetensors");
  onestep::save_model(unet_path, unet);
  EXPECT_EQ(metadata_edit(unet_path, "num_blocks", 1), "(no error)");
  EXPECT_THAT(metadata_edit(unet_path, "img_resolution", 1 << 20), HasSubstr("model.img_resolution = 1048576"));
  EXPECT_THAT(metadata_edit(unet_path, "img_channels", 3), HasSubstr("model.img_channels = 3"));
  EXPECT_THAT(metadata_edit(unet_path, "model_channels", 100000), HasSubstr("model.model_channels = 100000"));
  EXPECT_THAT(metadata_edit(unet_path, "channel_mult", Json{1, 2000}), HasSubstr("model.channel_mult = 2000 is out of"));
  EXPECT_THAT(metadata_edit(unet_path, "channel_mult", Json{1, 60}), HasSubstr("model.channel_mult[1] = 60"));
  EXPECT_THAT(metadata_edit(unet_path, "channel_mult", Json{1, 2, 2}), HasSubstr("model.channel_mult has 3 levels"));
  EXPECT_THAT(metadata_edit(unet_path, "num_blocks", 100000), HasSubstr("model.num_blocks = 100000"));
  EXPECT_THAT(metadata_edit(unet_path, "attn_resolutions", Json{8, 4}), HasSubstr("model.attn_resolutions"));
  EXPECT_THAT(metadata_edit(unet_path, "channel_mult_emb", 100000), HasSubstr("model.channel_mult_emb = 100000"));
  EXPECT_THAT(metadata_edit(unet_path, "label_dim", 1000000000), HasSubstr("model.label_dim = 1000000000"));
  EXPECT_THAT(metadata_edit(unet_path, "augment_dim", 9), HasSubstr("model.augment_dim = 9"));
  std::filesystem::remove(unet_path);
}

TEST(Model, ParameterBudgetRefusesALayerBeforeAllocatingIt) {
  {
    onestep::ParameterBudget budget(100, "too large for the file");
    EXPECT_EQ(error_of([] { onestep::Linear(4, 20, true, onestep::InitSpec{}); }), "(no error)");  // 80 + 20 values
    EXPECT_THAT(error_of([] { onestep::Linear(1, 1, false, onestep::InitSpec{}); }),
                HasSubstr("too large for the file (the network needs more than 100 parameter values)"));
    const int64_t huge = int64_t{1} << 40;
    EXPECT_THAT(error_of([&] { onestep::Linear(huge, huge, false, onestep::InitSpec{}); }),
                HasSubstr("more than 2^63 values"));
  }
  // The budget ended with its scope.
  EXPECT_EQ(error_of([] { onestep::Linear(1, 1, false, onestep::InitSpec{}); }), "(no error)");
}

// A point model's scaling (data.normalize) travels in the "onestep" metadata; an identity writes nothing, so
// files of image models and unscaled point models are unchanged.
TEST(Model, PointScalingTravelsInTheMetadata) {
  Json root{{"model", {{"arch", "mlp"}, {"in_dim", 2}, {"hidden", 8}, {"num_layers", 1}, {"noise_channels", 4}}}};
  auto model = onestep::build_model(root);
  const auto plain = temp_path("plain.safetensors");
  onestep::save_model(plain, model);
  EXPECT_EQ(onestep::load_safetensors(plain).metadata.at("onestep").find("point_scaling"), std::string::npos);
  EXPECT_TRUE(onestep::load_model(plain)->point_scaling().is_identity());

  onestep::PointScaling scaling;
  scaling.mean = {100.0, -50.0};
  scaling.scale = {0.125, 0.25};
  model->set_point_scaling(scaling);
  const auto scaled = temp_path("scaled.safetensors");
  onestep::save_model(scaled, model);
  const auto loaded = onestep::load_model(scaled);
  EXPECT_EQ(loaded->point_scaling().mean, scaling.mean);
  EXPECT_EQ(loaded->point_scaling().scale, scaling.scale);
  // to_user of the model's origin is the data mean; of (1, 1) is mean + 1 / scale = (108, -46).
  const auto user = loaded->point_scaling().to_user(torch::tensor({0.0f, 0.0f, 1.0f, 1.0f}).reshape({2, 2}));
  EXPECT_FLOAT_EQ(user[0][0].item<float>(), 100.0f);
  EXPECT_FLOAT_EQ(user[1][0].item<float>(), 108.0f);
  EXPECT_FLOAT_EQ(user[1][1].item<float>(), -46.0f);
  std::filesystem::remove(plain);
  std::filesystem::remove(scaled);
}
