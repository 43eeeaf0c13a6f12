// The [data] configuration section.
#include "data/dataset.h"

#include "core/error.h"

namespace onestep {

DataConfig DataConfig::from_config(const Json& root) {
  DataConfig c;
  SectionReader r(root, "data");
  c.dataset = r.get_string("dataset", c.dataset,
                           {"fashion-mnist", "mnist", "idx", "cifar10", "folder", "zip", "imagenet-npz", "points",
                            "eight-gaussians", "two-moons", "checkerboard", "swiss-roll", "thin-rings", "thin-spiral",
                            "skewed-checkerboard", "mixed-widths"});
  c.path = r.get_string("path", c.path);
  c.split = r.get_string("split", c.split, {"train", "test"});
  c.resolution = r.get_int("resolution", c.resolution);
  c.resize = r.get_string("resize", c.resize, {"pad", "resize"});
  c.flip = r.get_bool("flip", c.flip);
  c.labels = r.get_bool("labels", c.labels);
  c.subset = r.get_int("subset", c.subset);
  c.num_points = r.get_int("num_points", c.num_points);
  c.seed = r.get_int("seed", c.seed);
  c.class_names = r.get_strings("class_names", c.class_names);
  c.normalize = r.get_string("normalize", c.normalize, {"isotropic", "per-dimension", "none"});
  r.finish();
  require(c.resolution >= 0, "data.resolution must be >= 0 (0 = native), got ", c.resolution);
  require(c.subset >= 0, "data.subset must be >= 0 (0 = all), got ", c.subset);
  require(c.num_points > 0, "data.num_points must be > 0, got ", c.num_points);
  require(c.seed >= 0, "data.seed must be >= 0, got ", c.seed);
  return c;
}

bool DataConfig::is_toy_distribution() const {
  return dataset == "eight-gaussians" || dataset == "two-moons" || dataset == "checkerboard" ||
         dataset == "swiss-roll" || dataset == "thin-rings" || dataset == "thin-spiral" ||
         dataset == "skewed-checkerboard" || dataset == "mixed-widths";
}

Json DataConfig::to_json() const {
  Json out{{"dataset", dataset}, {"path", path},         {"split", split},   {"resolution", resolution},
           {"resize", resize},   {"flip", flip},         {"labels", labels}, {"subset", subset},
           {"num_points", num_points}, {"seed", seed}, {"normalize", normalize}};
  if (!class_names.empty()) out["class_names"] = class_names;
  return out;
}

Json LoaderState::to_json() const { return Json{{"epoch", epoch}, {"position", position}}; }

LoaderState LoaderState::from_json(const Json& j) {
  require(j.is_object() && j.contains("epoch") && j.contains("position") && j["epoch"].is_number_integer() &&
              j["position"].is_number_integer(),
          "loader state must be {\"epoch\": int, \"position\": int}, got ", j.dump());
  LoaderState s;
  s.epoch = j["epoch"].get<int64_t>();
  s.position = j["position"].get<int64_t>();
  require(s.epoch >= 0 && s.position >= 0, "loader state has negative epoch/position: ", j.dump());
  return s;
}

}  // namespace onestep
