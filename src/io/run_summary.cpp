#include "io/run_summary.h"

#include "core/error.h"
#include "core/progress.h"
#include "io/run_dir.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

namespace onestep {

namespace fs = std::filesystem;

namespace {

bool is_quality_metric(const std::string& key) {
  const bool prefix = key.rfind("fd_", 0) == 0 || key.rfind("fid_", 0) == 0 || key.rfind("swd_", 0) == 0;
  return prefix && key.size() > 4 && key.compare(key.size() - 4, 4, "step") == 0;
}

// A value of the effective configuration, as text; "?" when absent.
std::string config_text(const Json& config, const std::string& section, const std::string& key) {
  if (!config.is_object() || !config.contains(section) || !config[section].is_object() ||
      !config[section].contains(key))
    return "?";
  const Json& v = config[section][key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v.get<double>());
    return buf;
  }
  return v.dump();
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string utc_time(double unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

}  // namespace

bool is_run_directory(const fs::path& dir) {
  const RunPaths run{dir};
  return fs::is_directory(dir) && (fs::exists(run.config()) || fs::exists(run.metrics()));
}

namespace {

// Tracks the train/resume sessions of metrics.jsonl. wall_s counts from the start of each train/resume invocation,
// so time - wall_s is that start: another start (or, without time, a drop of wall_s) is another session.
// Consecutive lines of one session agree on their start to clock drift (microseconds); a resumed session starts at
// least a process start-up later.
struct SessionClock {
  double session_wall = 0, previous_wall = -1, previous_start = 0;
  void add(const Json& record, RunSummary& s) {
    if (!record.contains("wall_s") || !record["wall_s"].is_number()) return;
    const double wall = record["wall_s"].get<double>();
    const bool timed = record.contains("time") && record["time"].is_number();
    const double start = timed ? record["time"].get<double>() - wall : 0.0;
    const bool new_session =
        previous_wall < 0 || wall < previous_wall || (timed && std::abs(start - previous_start) > 0.05);
    if (new_session) {
      s.wall_seconds += session_wall;
      ++s.sessions;
    }
    session_wall = previous_wall = wall;
    previous_start = start;
  }
};

// The quality metrics of one record (fd_*step, fid_*step, swd_*step): last and best values.
void add_metrics(const Json& record, int64_t step, RunSummary& s) {
  for (const auto& [key, value] : record.items()) {
    if (!is_quality_metric(key) || !value.is_number()) continue;
    const double v = value.get<double>();
    auto it = std::find_if(s.metrics.begin(), s.metrics.end(), [&](const auto& m) { return m.key == key; });
    if (it == s.metrics.end()) {
      s.metrics.push_back({key, v, v, step, step});
      continue;
    }
    it->last = v;
    it->last_step = step;
    if (v < it->best) {
      it->best = v;
      it->best_step = step;
    }
  }
}

void read_metrics_log(const fs::path& path, RunSummary& s) {
  std::ifstream metrics(path);
  std::string line;
  SessionClock clock;
  while (std::getline(metrics, line)) {
    if (line.empty()) continue;
    const Json record = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!record.is_object() || !record.contains("step") || !record["step"].is_number_integer()) {
      ++s.unreadable_lines;  // a torn last line of a killed run, or not a record at all
      continue;
    }
    const int64_t step = record["step"].get<int64_t>();
    s.steps_done = std::max(s.steps_done, step);
    if (record.value("nonfinite_loss", false)) {
      ++s.nonfinite_lines;
      continue;
    }
    clock.add(record, s);
    if (record.contains("time") && record["time"].is_number()) s.last_logged_unix = record["time"].get<double>();
    if (record.contains("loss") && record["loss"].is_number()) {
      s.last_loss = record["loss"].get<double>();
      s.last_loss_step = step;
    }
    if (record.contains("images_per_s") && record["images_per_s"].is_number())
      s.images_per_s = record["images_per_s"].get<double>();
    if (record.contains("images_seen") && record["images_seen"].is_number_integer())
      s.images_seen = record["images_seen"].get<int64_t>();
    add_metrics(record, step, s);
  }
  s.wall_seconds += clock.session_wall;
}

// The checkpoint files, the one `latest` names, and the step of the newest: a run resumed past its log still
// counts its checkpointed steps.
void read_checkpoints(const RunPaths& run, RunSummary& s) {
  if (!fs::is_directory(run.checkpoints())) return;
  for (const auto& entry : fs::directory_iterator(run.checkpoints())) {
    const std::string name = entry.path().filename().string();
    if (checkpoint_layout::is_checkpoint_file_name(name)) s.checkpoints.push_back(name);
  }
  std::sort(s.checkpoints.begin(), s.checkpoints.end());
  if (fs::exists(run.latest_pointer())) {
    try {
      s.latest_checkpoint = follow_checkpoint_pointer(run.latest_pointer()).filename().string();
    } catch (const Error&) {
      s.latest_checkpoint = "(stale pointer)";
    }
  }
  if (!s.checkpoints.empty())
    if (const auto step = checkpoint_layout::checkpoint_step(s.checkpoints.back()))
      s.steps_done = std::max(s.steps_done, *step);
}

void read_samples(const fs::path& dir, RunSummary& s) {
  if (!fs::is_directory(dir)) return;
  std::vector<std::string> samples;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file()) samples.push_back(entry.path().filename().string());
  std::sort(samples.begin(), samples.end());
  s.sample_files = static_cast<int64_t>(samples.size());
  if (!samples.empty()) s.last_sample = samples.back();
}

}  // namespace

RunSummary summarize_run(const fs::path& dir) {
  require(fs::exists(dir), "runs: '", dir.string(), "' does not exist");
  require(is_run_directory(dir), "runs: '", dir.string(), "' is not a run directory (no config.toml or metrics.jsonl)");
  const RunPaths run{dir};
  RunSummary s;
  s.root = dir;
  if (fs::exists(run.config())) {
    s.config = load_toml_file(run.config());
    if (s.config.contains("train") && s.config["train"].contains("steps") &&
        s.config["train"]["steps"].is_number_integer())
      s.steps_planned = s.config["train"]["steps"].get<int64_t>();
  }
  read_metrics_log(run.metrics(), s);
  read_checkpoints(run, s);
  s.has_model = fs::exists(run.model());
  read_samples(run.samples(), s);
  return s;
}

std::string format_run_summary(const RunSummary& s) {
  std::ostringstream out;
  out << "run " << s.root.string() << "\n";
  if (s.config.is_null()) {
    out << "config: none (no config.toml)\n";
  } else {
    out << "config: " << config_text(s.config, "objective", "method") << " on "
        << config_text(s.config, "data", "dataset") << ", " << config_text(s.config, "model", "arch") << ", batch "
        << config_text(s.config, "train", "batch") << ", lr " << config_text(s.config, "train", "lr") << ", "
        << config_text(s.config, "train", "optimizer") << ", device " << config_text(s.config, "train", "device")
        << "\n";
  }
  out << "steps: " << s.steps_done;
  if (s.steps_planned > 0) {
    char pct[32];
    std::snprintf(pct, sizeof pct, " (%.0f%%)", 100.0 * static_cast<double>(s.steps_done) / s.steps_planned);
    out << " of " << s.steps_planned << pct;
  }
  if (s.images_seen > 0) out << ", " << s.images_seen << " images";
  out << "\n";
  out << "wall time: " << format_duration(s.wall_seconds) << " in " << s.sessions
      << (s.sessions == 1 ? " session" : " sessions");
  if (s.last_logged_unix) out << ", last logged " << utc_time(*s.last_logged_unix);
  out << "\n";
  if (s.last_loss) {
    out << "last loss: " << number(*s.last_loss) << " (step " << s.last_loss_step << ")";
    if (s.images_per_s) out << ", " << format_rate(*s.images_per_s) << " images/s";
    out << "\n";
  } else {
    out << "last loss: none logged\n";
  }
  if (s.nonfinite_lines > 0) out << "non-finite losses: " << s.nonfinite_lines << " steps skipped\n";
  if (s.unreadable_lines > 0) out << "metrics.jsonl: " << s.unreadable_lines << " unreadable line(s) skipped\n";
  if (s.metrics.empty()) out << "evaluations: none logged\n";
  for (const auto& m : s.metrics)
    out << m.key << ": last " << number(m.last) << " (step " << m.last_step << "), best " << number(m.best)
        << " (step " << m.best_step << ")\n";
  out << "checkpoints: ";
  if (s.checkpoints.empty()) out << "none";
  for (size_t i = 0; i < s.checkpoints.size(); ++i)
    out << (i ? ", " : "") << s.checkpoints[i] << (s.checkpoints[i] == s.latest_checkpoint ? " (latest)" : "");
  if (s.latest_checkpoint == "(stale pointer)") out << "; checkpoints/latest names a missing file";
  out << "\n";
  out << "model.safetensors: " << (s.has_model ? "written (training finished)" : "not yet") << "; samples: "
      << s.sample_files;
  if (!s.last_sample.empty()) out << " (last " << s.last_sample << ")";
  out << "\n";
  return out.str();
}

std::string format_run_table_header() {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%-28s %-6s %-15s %-10s %-22s %-9s %s", "run", "method", "steps", "loss",
                "best metric", "wall", "ckpts");
  return buf;
}

std::string format_run_table_row(const RunSummary& s) {
  const std::string steps = std::to_string(s.steps_done) + "/" + (s.steps_planned ? std::to_string(s.steps_planned)
                                                                                   : std::string("?"));
  std::string best = "-";
  if (!s.metrics.empty()) {
    const auto& m = s.metrics.front();
    best = m.key + " " + number(m.best);
  }
  fs::path name = s.root.lexically_normal();
  if (name.filename().empty()) name = name.parent_path();  // "runs/ict/"
  char buf[256];
  std::snprintf(buf, sizeof buf, "%-28s %-6s %-15s %-10s %-22s %-9s %zu", name.filename().string().c_str(),
                config_text(s.config, "objective", "method").c_str(), steps.c_str(),
                s.last_loss ? number(*s.last_loss).c_str() : "-", best.c_str(),
                format_duration(s.wall_seconds).c_str(), s.checkpoints.size());
  return buf;
}

}  // namespace onestep
