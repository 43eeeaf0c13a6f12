// The README's "your own images" quick start, end to end through the executable: a folder of 32 x 32 colour images
// in two class subfolders trains on top of a preset with only data.dataset and data.path set (data.labels for a
// class-conditional model), samples a class, and is evaluated under a name that says what the number is.
#include "io/image_io.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "../data/temp_dir.h"
#include "own_images.h"
#include "run_onestep.h"
#include "test_device.h"

#include <filesystem>
#include <string>

namespace {

namespace fs = std::filesystem;
using onestep::testing::run;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(OwnImages, FolderTrainsOnAPresetSamplesAClassAndEvaluates) {
  onestep::testing::TempDir tmp("own_images");
  onestep::testing::write_pet_folder(tmp / "images");
  const std::string run_dir = (tmp / "run").string();
  const std::string model = run_dir + "/model.safetensors";
  // A few steps on top of the preset; the data decides the network's shape and classes.
  auto r = run("train --config fmnist-ict-cpu --set data.dataset=folder --set data.path=" + (tmp / "images").string() +
               " --set data.labels=true --set train.batch=4 --set train.device=" +
               onestep::testing::test_device_name() + " --run " + run_dir + " --steps 2");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("note: the data (3 x 32 x 32 images, 2 classes (cats, dogs)) sets "
                                  "model.img_channels = 3 (the preset had 1)"));
  const std::string recorded = onestep::testing::read_bytes(fs::path(run_dir) / "config.toml");
  EXPECT_THAT(recorded, HasSubstr("img_channels = 3"));
  EXPECT_THAT(recorded, HasSubstr("img_resolution = 32"));
  EXPECT_THAT(recorded, HasSubstr("label_dim = 2"));

  r = run("sample --ckpt " + model + " --class 1 --n 4 --out " + (tmp / "dogs.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(tmp / "dogs.png"));

  // No metric asked for and no detector: eval says how to get FID rather than report FD-FMNIST on photographs.
  r = run("eval --ckpt " + model + " --n 8 --batch 8 --steps 1");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("--detector inception-2015-12-05.pt"));
  EXPECT_THAT(r.output, HasSubstr("tools/convert_inception.py"));
  // Asked for: the Fashion-MNIST-feature distance, named as the proxy it is, against the run's own images.
  r = run("eval --ckpt " + model + " --metric fd-fmnist --n 8 --batch 8 --steps 1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("1-step FD in Fashion-MNIST classifier features (proxy), seed 0: "));
  EXPECT_THAT(r.output, HasSubstr("note: these are images of data.dataset = folder, not Fashion-MNIST"));
  EXPECT_THAT(r.output, Not(HasSubstr("FD-FMNIST")));
  // A detector given: FID without being asked (the detector file is then what it loads; the Frechet distance of
  // 2048-d features takes half a minute on a loaded CPU, so the run stops at the missing file here).
  r = run("eval --ckpt " + model + " --detector " + (tmp / "inception-2015-12-05.pt").string() + " --n 8 --batch 8 "
          "--steps 1");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("detector file not found: " + (tmp / "inception-2015-12-05.pt").string()));
}

// Every mismatch between a checkpoint, a configuration and the data names the keys to change.
TEST(OwnImages, MismatchesNameTheKeys) {
  onestep::testing::TempDir tmp("own_images_mismatch");
  onestep::testing::write_pet_folder(tmp / "images", 2);
  const std::string device = " --set train.device=" + onestep::testing::test_device_name();
  const std::string folder = " --set data.dataset=folder --set data.path=" + (tmp / "images").string();
  // train: an explicit value that disagrees with the data.
  auto r = run("train --config fmnist-ict-cpu" + folder + " --set model.img_resolution=28 --run " +
               (tmp / "r0").string() + " --steps 1" + device);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("model.img_resolution = 28 (set in your configuration or with --set) but the data "
                                  "(data.dataset = folder"));
  EXPECT_THAT(r.output, HasSubstr("set data.resolution = 28"));
  EXPECT_FALSE(fs::exists(tmp / "r0"));
  // --init from a checkpoint built for Fashion-MNIST (1 x 28 x 28): the keys, not the first tensor.
  r = run("train --config fmnist-ect-cpu" + folder + " --init " ONESTEP_SOURCE_DIR
          "/assets/fmnist_edm_teacher.safetensors --run " + (tmp / "r1").string() + " --steps 1" + device);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("the checkpoint's network was built for other data (img_channels 1 vs 3, "
                                  "img_resolution 28 vs 32"));
  // --resume on data that changed shape: the run's config.toml is the record.
  const std::string run_dir = (tmp / "r2").string();
  r = run("train --config fmnist-ict-cpu" + folder + " --set train.batch=2 --run " + run_dir + " --steps 1" + device);
  ASSERT_EQ(r.status, 0) << r.output;
  fs::remove_all(tmp / "images");
  onestep::testing::write_pet_folder(tmp / "images", 2, 16, 16);
  r = run("train --resume --steps 2 --run " + run_dir);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("model.img_resolution = 32 but the data"));
  EXPECT_THAT(r.output, HasSubstr("config.toml"));
  // sample --latents of another shape: the model's keys.
  onestep::write_npy(tmp / "z.npy", torch::zeros({2, 1, 28, 28}));
  r = run("sample --ckpt " + run_dir + "/model.safetensors --latents " + (tmp / "z.npy").string() + " --out " +
          (tmp / "s.png").string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("model.img_channels = 3, model.img_resolution = 32"));
  // eval against a [data] of another shape: both shapes and the flags.
  r = run("eval --ckpt " + run_dir + "/model.safetensors --metric fd-fmnist --config fmnist-ict-cpu --n 4 --batch 4 "
          "--steps 1");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("the model makes 3 x 32 x 32 images but the reference data (data.dataset = "
                                  "fashion-mnist) holds 1 x 28 x 28"));
}

}  // namespace
