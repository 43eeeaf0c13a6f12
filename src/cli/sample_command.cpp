// `onestep sample`: draws samples from a checkpoint with the consistency multistep sampler (1 or 2 steps, or any
// sigma list) or EDM's Heun/Euler sampler, and writes a PNG grid, a directory of PNGs, a uint8 .npz (NHWC,
// "arr_0", as FID tools read it) or a float32 .npy.
#include "cli/commands.h"
#include "core/error.h"
#include "core/random.h"
#include "core/progress.h"
#include "data/data_shape.h"
#include "data/dataset.h"
#include "distributed/communicator.h"
#include "distributed/sharding.h"
#include "io/image_io.h"
#include "io/npy.h"
#include "precond/model.h"
#include "samplers/sampler.h"
#include "samplers/sampling_job.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>

namespace onestep::cli {
namespace {

namespace fs = std::filesystem;

// Sampler options left empty (or not `given`) come from the checkpoint's recorded [sample] section.
struct SampleOptions {
  std::string ckpt, weights, sigmas, sampler, out, latents, device = "cpu", renoise;
  std::string cpu_wait = "auto";
  int64_t steps = 0, n = 0, batch = 256, seed = 0, class_label = -1;
  double sigma_mid = 0.821, sigma_max = 80.0;
  bool sigma_mid_given = false, sigma_max_given = false, n_given = false;
  bool float32 = false;
  DistributedOptions distributed;
};

std::vector<double> parse_sigmas(const std::string& text) {
  std::vector<double> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      size_t used = 0;
      out.push_back(std::stod(item, &used));
      require(used == item.size(), "");
    } catch (...) {
      fail("sample: --sigmas must be comma-separated numbers, got '", text, "'");
    }
  }
  require(!out.empty(), "sample: --sigmas is empty");
  return out;
}

// The command line over the [sample] section the run recorded in the checkpoint (train_command.cpp), over the
// built-in defaults (consistency, 1 step from 80, sigma_mid 0.821; Heun/Euler 18 levels from 80). A model tuned to
// start lower (points-ect: one step from t = 5) then samples as it was evaluated without being told.
SamplerConfig sampler_config(const SampleOptions& o, const Json& recorded_root) {
  SamplerConfig recorded;
  if (recorded_root.contains("sample")) {
    try {
      recorded = SamplerConfig::from_config(Json{{"sample", recorded_root["sample"]}});
    } catch (const Error& e) {
      fail("sample: checkpoint '", o.ckpt, "' records an invalid [sample] section: ", e.what());
    }
  }
  const bool recorded_consistency = recorded.kind == SamplerKind::Consistency;
  SamplerConfig c = recorded;
  if (!o.sampler.empty()) c.kind = parse_enum<SamplerKind>(o.sampler, "sample: --sampler");
  if (o.float32) c.float64 = false;
  if (!o.renoise.empty()) c.renoise = parse_enum<Renoise>(o.renoise, "sample: --renoise");
  if (c.kind != SamplerKind::Consistency) {
    require(o.sigmas.empty(), "sample: --sigmas is for the consistency sampler; heun/euler take --steps");
    c.sigma_max = o.sigma_max_given ? o.sigma_max : recorded_consistency ? 80.0 : recorded.sigma_max;
    return with_steps(c, o.steps != 0 ? o.steps : recorded_consistency ? 18 : recorded.steps, 0.0);
  }
  if (!o.sigmas.empty()) {
    require(o.steps == 0, "sample: give --steps or --sigmas, not both");
    c.sigmas = parse_sigmas(o.sigmas);
  } else if (o.steps == 0 && !o.sigma_max_given && !o.sigma_mid_given && recorded_consistency) {
    c.sigmas = recorded.sigmas;
  } else {
    // As `onestep eval` takes them: 1 step from [sample] sigma_max, the second level from sigmas[1].
    c.sigma_max = o.sigma_max_given ? o.sigma_max : recorded.sigma_max;
    const double mid = o.sigma_mid_given                                     ? o.sigma_mid
                       : recorded_consistency && recorded.sigmas.size() >= 2 ? recorded.sigmas[1]
                                                                             : 0.821;
    return with_steps(c, o.steps == 0 ? 1 : o.steps, mid);
  }
  c.sigma_max = c.sigmas.front();
  c.validate();
  return c;
}

// "consistency, sigmas 5, 0.821" / "heun, 40 levels from 80": what the note about recorded settings names.
std::string describe_sampler(const SamplerConfig& c) {
  std::ostringstream out;
  out << enum_name(c.kind);
  if (c.kind == SamplerKind::Consistency) {
    out << ", sigmas";
    for (size_t i = 0; i < c.sigmas.size(); ++i) out << (i ? ", " : " ") << c.sigmas[i];
  } else {
    out << ", " << c.steps << " levels from " << c.sigma_max;
  }
  return out.str();
}

void write_output(const fs::path& out, const torch::Tensor& samples, bool is_image, Denoiser& model) {
  const std::string ext = out.extension().string();
  if (ext == ".npy") {
    write_npy(out, samples.to(torch::kFloat32).contiguous());
    return;
  }
  if (!is_image && ext == ".png" && samples.size(1) == 2) {
    write_png(out, points_density_image(model->point_scaling(), model->precond().sigma_data, samples));
    return;
  }
  require(is_image, "sample: the model makes ", samples.size(1),
          "-D points; write them with --out FILE.npy (or a density image, FILE.png, for 2-D)");
  torch::Tensor images = float_to_images(samples);
  if (ext == ".png") {
    write_png_grid(out, images);
  } else if (ext == ".npz") {
    write_npz(out, {{"arr_0", images.permute({0, 2, 3, 1}).contiguous()}});
  } else {
    require(ext.empty(), "sample: --out must end in .png, .npz or .npy, or be a directory; got '", out.string(), "'");
    fs::create_directories(out);
    for (int64_t i = 0; i < images.size(0); ++i) {
      char name[32];
      std::snprintf(name, sizeof(name), "%06lld.png", static_cast<long long>(i));
      write_png(out / name, images[i]);
    }
  }
}

// What the command line left to the checkpoint, said on stderr: the recorded sampler and the re-noising rule.
void print_notes(const SampleOptions& o, const SamplerConfig& config, bool recorded, const DenoiserImpl& model) {
  if (recorded)
    std::cerr << "note: sampling " << describe_sampler(config) << " (what the command line leaves open is the [sample] "
              << "section recorded with " << o.ckpt << ")\n";
  if (config.kind != SamplerKind::Consistency || config.sigmas.size() <= 1 || config.renoise != Renoise::Auto) return;
  if (model.trained_with().empty())
    std::cerr << "note: " << o.ckpt << " records no training method; re-noising as iCT, sqrt(s^2 - sigma_min^2) z "
              << "(--renoise ect for ECT checkpoints)\n";
  else
    std::cerr << "note: re-noising as " << enum_name(resolved_renoise(config, model)) << " (the model was trained with "
              << model.trained_with() << "; --renoise to choose)\n";
}

// The job of --n samples from --seed: the latents of --latents when given, every sample of --class when given.
SamplingJob sampling_job(const SampleOptions& o, const DenoiserImpl& model) {
  const std::vector<int64_t> shape = model.sample_shape();
  SamplingJob job;
  job.n = o.n;
  job.batch = o.batch;
  job.seed = static_cast<uint64_t>(o.seed);
  require(job.n >= 0, "sample: --n must be >= 1 (or omitted for the default), got ", job.n);
  if (!o.latents.empty()) {
    job.latents = read_npy(o.latents);
    require(job.latents.is_floating_point(), "sample: latents '", o.latents, "' hold ", job.latents.scalar_type(),
            " values; --latents takes a float .npy (float32 or float64) of noise");
    job.latents = job.latents.to(torch::kFloat32);
    const torch::Tensor& z = job.latents;
    std::vector<int64_t> got(z.sizes().begin() + std::min<int64_t>(1, z.dim()), z.sizes().end());
    require(z.dim() >= 2 && got == shape, "sample: latents '", o.latents, "' have shape ", z.sizes(),
            " but the model samples [N, ", torch::IntArrayRef(shape), "] (",
            model_shape_keys_text(model.model_config()), " in ", o.ckpt, "): write latents of that shape");
    require(torch::isfinite(z).all().item<bool>(), "sample: latents '", o.latents, "' contain NaN or inf");
    if (job.n == 0) job.n = z.size(0);
    require(job.n <= z.size(0), "sample: --n ", job.n, " but '", o.latents, "' holds only ", z.size(0), " latents");
  } else if (job.n == 0) {
    job.n = 64;
  }
  require(job.n >= 1, "sample: --n must be >= 1, got ", job.n);
  if (model.label_dim() > 0)
    require(o.class_label < model.label_dim(), "sample: --class ", o.class_label, " but the model has ",
            model.label_dim(), " classes");
  else
    require(o.class_label < 0, "sample: --class given but the model is unconditional");
  job.class_label = o.class_label;
  return job;
}

// All n samples on rank 0 (in the data's own units), an undefined tensor on the other ranks. Under a launcher each
// rank makes its whole batches (samplers/sampling_job.h) and rank 0 gathers them.
torch::Tensor make_samples(Denoiser& model, const SamplerConfig& config, const SamplingJob& job,
                           Communicator* communicator) {
  const bool main_rank = communicator == nullptr || communicator->is_main();
  std::unique_ptr<Progress> progress;
  if (main_rank) progress = std::make_unique<Progress>("sample", own_samples(communicator, job.n, job.batch).size(),
                                                       "samples");
  std::vector<torch::Tensor> parts;
  int64_t done = 0;
  run_sampling_job(model, config, job, communicator, [&](int64_t, const torch::Tensor& samples) {
    parts.push_back(samples.cpu());
    done += samples.size(0);
    if (progress) progress->update(done);
  });
  if (progress) progress->finish();
  std::vector<int64_t> empty_shape = {0};
  const std::vector<int64_t> shape = model->sample_shape();
  empty_shape.insert(empty_shape.end(), shape.begin(), shape.end());
  torch::Tensor samples = parts.empty() ? torch::empty(empty_shape) : torch::cat(parts);
  samples = gather_rows_to_main(communicator, samples, job.n, job.batch, "gather of the samples");
  if (!main_rank) return {};
  // Points go back to the data's own units (the identity for images and unscaled models).
  samples = model->point_scaling().to_user(samples);
  require(torch::isfinite(samples).all().item<bool>(), "sample: the model produced NaN or inf samples");
  return samples;
}

void run(const SampleOptions& o) {
  require(!o.ckpt.empty(), "sample: --ckpt is required");
  require(!o.out.empty(), "sample: --out is required");
  require(o.batch >= 1, "sample: --batch must be >= 1, got ", o.batch);
  // --n 0 is not "the default" (64, or all --latents): only leaving --n out is.
  require(!o.n_given || o.n >= 1, "sample: --n must be >= 1 (or omitted for the default), got ", o.n);
  const Json recorded = recorded_run_config(o.ckpt);
  const SamplerConfig config = sampler_config(o, recorded);
  // On the CPU, hundreds of small parallel regions per second (a 2-D MLP at 79 evaluations): spinning OpenMP threads
  // on busy cores made a Heun-40 sample 28x slower in wall time (core/cpu_wait.h).
  const LaunchEnv launch = launch_environment();
  const torch::Device device = configure_command_process(o.device, o.cpu_wait, launch);
  // Under a launcher the batches are split over the ranks (distributed/sharding.h) and rank 0 writes them all.
  const std::shared_ptr<Communicator> communicator = join_launched_job(o.distributed, launch, device);
  const bool main_rank = communicator == nullptr || communicator->is_main();
  Denoiser model = load_model(o.ckpt, o.weights);
  model->to(device);
  if (main_rank) print_notes(o, config, recorded.contains("sample"), *model);
  const SamplingJob job = sampling_job(o, *model);
  const torch::Tensor samples = make_samples(model, config, job, communicator.get());
  if (!main_rank) return;
  write_output(o.out, samples, model->sample_shape().size() == 3, model);
  std::cout << "wrote " << job.n << " samples to " << o.out;
  if (communicator) std::cout << " (made by " << communicator->world_size() << " processes)";
  std::cout << "\n";
}

}  // namespace

torch::Tensor points_density_image(const PointScaling& scaling, double sigma_data, const torch::Tensor& points) {
  if (scaling.is_identity()) return onestep::points_density_image(points);
  return onestep::points_density_image(scaling.to_model(points), 256, 3.0 * sigma_data);
}

void register_sample_command(CLI::App& app) {
  auto o = std::make_shared<SampleOptions>();
  auto* command = app.add_subcommand("sample", "draw samples from a checkpoint (consistency 1-/2-step, Heun, Euler)");
  command->add_option("--ckpt", o->ckpt,
                      "model .safetensors or a training checkpoint (runs/<name>/checkpoints/ckpt-*.safetensors)")
      ->required();
  command->add_option("--weights", o->weights,
                      "weight set of a training checkpoint: raw or an EMA name, e.g. 0.9999 (default: the first EMA)");
  command->add_option("--sampler", o->sampler,
                      "consistency | heun | euler (default: as the run recorded in --ckpt, else consistency)");
  command->add_option("--steps", o->steps,
                      "consistency: 1 (sigma 80) or 2 (80, then --sigma-mid); heun/euler: Karras levels (default: as "
                      "recorded, else 18)");
  command->add_option("--sigmas", o->sigmas, "consistency: the noise levels visited, e.g. 80,0.821");
  command->add_option("--sigma-mid", o->sigma_mid,
                      "middle noise level of the 2-step sampler (default: as recorded, else 0.821)");
  command->add_option("--sigma-max", o->sigma_max, "first noise level (default: as recorded, else 80)");
  command->add_option("--n", o->n, "number of samples (default 64, or all latents of --latents)");
  command->add_option("--batch", o->batch, "samples per network call (default 256)");
  command->add_option("--seed", o->seed, "seed of the latents, the fresh noise and random class labels");
  command->add_option("--out", o->out, "FILE.png (grid) | DIR (one PNG each) | FILE.npz (uint8 NHWC) | FILE.npy")
      ->required();
  command->add_option("--latents", o->latents, "initial noise as a float .npy of shape [N, ...sample shape]");
  command->add_option("--class", o->class_label, "class label for a conditional model (default: random)");
  command->add_option("--device", o->device, "auto | cpu | cuda (default cpu)");
  add_cpu_wait_option(*command, o->cpu_wait);
  command->add_option("--renoise", o->renoise,
                      "multistep re-noising: auto (as the model's training method) | ict: sqrt(s^2 - sigma_min^2) z | "
                      "ect: s z (default: as recorded, else auto)")
      ->check(CLI::IsMember({"auto", "ict", "ect"}));
  add_distributed_options(*command, o->distributed);
  command->add_flag("--float32", o->float32,
                    "sampler arithmetic in float32 (default float64, as EDM's and ECT's samplers; the network is "
                    "float32 either way)");
  command->footer(
      "Examples:\n"
      "  onestep sample --ckpt runs/ict/model.safetensors --steps 1 --n 64 --out grid.png\n"
      "  onestep sample --ckpt runs/ect/checkpoints/latest --weights 0.9999 --steps 2 \\\n"
      "      --n 50000 --batch 500 --out samples.npz\n"
      "  onestep sample --ckpt runs/edm/model.safetensors --sampler heun --steps 18 --out samples/\n"
      "  onestep sample --ckpt runs/points-ict/model.safetensors --n 10000 --out points.npy\n"
      "  onestep sample --ckpt runs/points-ict/model.safetensors --n 10000 --out points.png   (density image)\n"
      "Options left out come from the [sample] section that `onestep train` records in its model file and\n"
      "checkpoints (a note names them), else: consistency, --steps 1 from 80, --steps 2 via 0.821; Heun 18 levels.\n"
      "Latents from --latents make a sample reproducible across tools.");
  command->callback([o, command] {
    o->sigma_mid_given = command->count("--sigma-mid") > 0;
    o->sigma_max_given = command->count("--sigma-max") > 0;
    o->n_given = command->count("--n") > 0;
    run(*o);
  });
}

}  // namespace onestep::cli
