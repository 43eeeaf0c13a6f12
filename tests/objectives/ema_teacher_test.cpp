// The original CT's EMA teacher (objectives/ema_teacher.h). Its checkpointed state and its place in a training step
// are tested with the objective in objectives_test.cpp.
#include "cpu_autocast.h"
#include "objectives/ema_teacher.h"
#include "test_networks.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

using namespace onestep;
using namespace onestep::testing;

// Autocast caches the bf16 copy of each weight keyed by the parameter. The EMA teacher swaps its weights into the
// same parameters, so without clearing that cache its forward pass would run the student's cached copies (and the
// student's next forward pass the teacher's).
TEST(EmaTeacher, UnderBf16AutocastTheTeacherRunsItsOwnWeights) {
  torch::manual_seed(11);
  Denoiser model(edm_precond(), std::make_shared<DropoutNetImpl>(2), points_model_config(2));
  model->eval();
  EmaTeacher teacher;
  teacher.update(model, 0.0);  // first call: the teacher holds the current weights
  std::map<std::string, torch::Tensor> teacher_weights;
  for (const auto& p : model->named_parameters()) teacher_weights[p.key()] = p.value().detach().clone();
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.add_(0.1);
  }
  torch::manual_seed(11);  // the same architecture, holding the teacher's weights
  Denoiser separate(edm_precond(), std::make_shared<DropoutNetImpl>(2), points_model_config(2));
  separate->eval();
  {
    torch::NoGradGuard no_grad;
    for (auto& p : separate->named_parameters()) p.value().copy_(teacher_weights.at(p.key()));
  }
  const auto x = torch::randn({5, 2});
  const auto sigma = torch::full({5}, 1.0f);
  CpuBf16Autocast autocast;
  const auto student = model->forward(x, sigma, Scalings::Edm);  // caches the student's bf16 weights
  const auto got = teacher.evaluate(model, [&] { return model->forward(x, sigma, Scalings::Edm); });
  const auto expected = separate->forward(x, sigma, Scalings::Edm);
  EXPECT_TRUE(torch::equal(got, expected)) << (got - expected).abs().max().item<double>();
  EXPECT_FALSE(torch::equal(got, student));
  // The student's own weights again afterwards.
  EXPECT_TRUE(torch::equal(model->forward(x, sigma, Scalings::Edm), student));
}

