#pragma once
// What a training run reports (rank 0 only; other ranks hold an inactive log): metrics.jsonl lines, TensorBoard
// scalars, the progress bar, and the interval averages behind each line (mean loss and images per second since the
// previous line; wall time since this session started).
#include "config/config.h"
#include "io/run_dir.h"

#include <chrono>
#include <cstdint>
#include <memory>

namespace onestep {

class EventWriter;
class Progress;

class TrainingLog {
 public:
  // `active`: this process writes (rank 0). Opens metrics.jsonl and a new event file of the run.
  TrainingLog(RunDir& run, bool active);
  ~TrainingLog();
  TrainingLog(const TrainingLog&) = delete;
  TrainingLog& operator=(const TrainingLog&) = delete;

  // A training session from `step` to `until_step`; with `bar`, a progress bar.
  void begin_session(int64_t step, int64_t until_step, bool bar);
  // One finite step of `images` samples with mean loss `loss`, counted into the current interval.
  void count_step(double loss, int64_t images);
  // The interval's line for `step`: its mean loss, images/s, `values` (lr, grad_norm, images_seen, the objective's
  // statistics, evaluation results) and the times; written everywhere, then a new interval starts.
  void write_interval(int64_t step, const Json& values);
  // A skipped step: {"step", "nonfinite_loss": true, "streak"}.
  void write_nonfinite(int64_t step, int64_t streak);
  void end_session();
  // A resumed run continues after `step`: the records and events the interrupted session wrote after it go.
  void resume_after(int64_t step);

  EventWriter* events() { return events_.get(); }  // nullptr when inactive

 private:
  using Clock = std::chrono::steady_clock;
  std::unique_ptr<MetricsLog> metrics_;
  std::unique_ptr<EventWriter> events_;
  std::unique_ptr<Progress> bar_;
  Clock::time_point session_start_, interval_start_;
  int64_t interval_images_ = 0, interval_steps_ = 0;
  double interval_loss_ = 0;
};

}  // namespace onestep
