#include "trainer/training_log.h"

#include "core/progress.h"
#include "io/tensorboard.h"

#include <algorithm>

namespace onestep {

TrainingLog::TrainingLog(RunDir& run, bool active) {
  if (!active) return;
  metrics_ = std::make_unique<MetricsLog>(run.metrics_path());
  events_ = std::make_unique<EventWriter>(run.root());
}

TrainingLog::~TrainingLog() = default;

void TrainingLog::begin_session(int64_t step, int64_t until_step, bool bar) {
  if (bar && metrics_) {
    bar_ = std::make_unique<Progress>("train", until_step, "it");
    bar_->resume_at(step);
  }
  session_start_ = interval_start_ = Clock::now();  // wall_s of the metrics lines counts from here (per session)
  interval_images_ = interval_steps_ = 0;
  interval_loss_ = 0;
}

void TrainingLog::count_step(double loss, int64_t images) {
  interval_loss_ += loss;
  interval_images_ += images;
  ++interval_steps_;
}

void TrainingLog::write_interval(int64_t step, const Json& values) {
  const auto now = Clock::now();
  const double seconds = std::chrono::duration<double>(now - interval_start_).count();
  Json record{{"step", step},
              {"loss", interval_loss_ / static_cast<double>(std::max<int64_t>(interval_steps_, 1))},
              {"images_per_s", seconds > 0 ? static_cast<double>(interval_images_) / seconds : 0.0},
              {"wall_s", std::chrono::duration<double>(now - session_start_).count()},
              {"time", std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count()}};
  record.update(values);
  if (metrics_) metrics_->write(record);
  if (events_) events_->write_metrics(record);
  if (bar_) bar_->update(step, {{"loss", record["loss"].get<double>()}});
  interval_start_ = Clock::now();
  interval_images_ = interval_steps_ = 0;
  interval_loss_ = 0;
}

void TrainingLog::write_nonfinite(int64_t step, int64_t streak) {
  if (metrics_) metrics_->write(Json{{"step", step}, {"nonfinite_loss", true}, {"streak", streak}});
}

void TrainingLog::end_session() {
  if (bar_) bar_->finish();
  bar_.reset();
}

void TrainingLog::resume_after(int64_t step) {
  // TensorBoard drops the events of the steps from step + 1 on that the interrupted session wrote after this
  // checkpoint, keeping the checkpoint's own step; metrics.jsonl keeps each step once.
  if (events_) events_->write_session_start(step + 1);
  if (metrics_) metrics_->truncate_after_step(step);
}

}  // namespace onestep
